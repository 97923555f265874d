"""Run 111: SPLIT programs of one and two warps, and the backward's poll mask per entry.

A. Item 81 (run 103b's source page, bf16 64K forward): 22% of the stall samples sit on the chunk
sum's first barrier, where a program's four warps wait for each other's loads before the
cross-warp sum. No sweep has timed SPLIT layouts under four warps (tune.py's smallest is 1024 x
4). With one warp a program the chunk sum is shuffles alone (no shared memory, no barrier) and
each warp waits only for its own loads; with two, one barrier between two warps. Registers
(regs.py's compile under triton 3.9, bf16 "early"): 512 x 1 72 (28 an SM), 1024 x 1 153 (12;
16 at a 128 cap), 1024 x 2 78 (12), 2048 x 4 78 (the table's, capped at 72: 7). The bytes in
flight an SM stay about the same (28 x 1 KB against 7 x 4 KB); the slots a row grow (S = 64 or
128 at 64K: each program polls S * 8 bytes a row, 25-100% of its chunk's bytes, from L2).
Prediction: 1024 x 1 / 1024 x 2 +0.3 to +1 at 16-bit 64K-256K forward if the barrier is the
cost and the larger poll is not; 512 x 1 level or lower (the poll doubles L2 reads). Also fp32
16K (one pass there, 0.5-0.8 behind torch.compile): SPLIT in small programs (Triton 3.6's
registers: 512 x 1 122, 16 an SM; 1024 x 2 125, 8), predicted level with the one pass.
B. Item 86: the backward's unmasked poll (EVERY_LANE) lost ~1 point at fp32 16K and read lower at
16-bit 128K against another GPU's run; here masked against unmasked per entry, in one process.
Prediction: within 0.3 but fp32 16K (masked +0.5 to +1).
    PYTHONPATH=src timeout 590 python3 benchmarks/results/run111/ab_warps.py [A|B]
"""
import os
import sys

import torch

from rmsnorm_triton import heuristics, kernels, launch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
import abkit  # noqa: E402  (benchmarks/abkit.py)
from tune import fwd_error  # noqa: E402

DT = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
FWD_VARIANTS = ["512x1:early:28", "1024x1:early:16:128", "1024x2:early:12:80",
                "1024x2:early:16:64", "1024x1:early:12", "2048x2:early:8:128"]
FP32_VARIANTS = ["512x1:early:16", "1024x2:early:8", "1024x1:early:9", "2048x4:early:4"]
RES_VARIANTS = ["512x1:early:25:80", "512x1:early+dyn:25:80", "1024x2:early:12:80",
                "1024x2:early+dyn:12:80", "1024x1:early:16:128"]


def cfg_of(spec, n, size):
    shape, mode, pps, *cap = spec.split(":")
    blk, w = map(int, shape.split("x"))
    return heuristics._lookup({None: (1, blk, w, mode, int(pps), *map(int, cap))},
                              heuristics.pow2(n), size)


def groups_of(cfg, x, w, r):
    """SPLIT's (groups, chunks) as the launch takes them (fewer groups: fewer programs fit)."""
    seen = []
    real = launch.split_grid
    launch.split_grid = lambda *a: seen.append(real(*a)) or seen[-1]
    try:
        launch.forward(x, w, r, 1e-6, 0.0, "llama", x.dtype, x.dtype, False, config=cfg)
    finally:
        launch.split_grid = real
    return seen[-1] if seen else None


def part_a(dev, cbw, turns=2):
    cells = [(op, d, n) for op in ("fwd", "res") for d in ("bf16",) for n in (65536, 131072, 262144)]
    cells += [("fwd", "fp16", 65536), ("res", "fp16", 65536), ("fwd", "bf16", 40000),
              ("fwd", "fp32", 16384)]  # (the cell torch.compile leads: SPLIT there for once)
    for op, dname, n in cells:
        dt, m = DT[dname], 2**26 // n
        ins = abkit.input_sets(dt, n, dev, residual=op == "res")
        nbytes = (4 if op == "res" else 2) * m * n * dt.itemsize
        table = heuristics.fwd_config(n, dt, op == "res")
        cfgs = {"table": table}
        specs = FP32_VARIANTS if dname == "fp32" else RES_VARIANTS if op == "res" else FWD_VARIANTS
        for spec in specs:
            cfgs[spec] = cfg_of(spec, n, dt.itemsize)
        got = {}
        for turn in range(turns):
            for name, cfg in cfgs.items():
                fns = [lambda a=a, c=cfg: launch.forward(a[0], a[1], a[2], 1e-6, 0.0, "llama", dt,
                                                           dt, False, config=c) for a in ins]
                try:
                    if turn == 0:
                        x, w, r = ins[0]
                        err = fwd_error(x, w, r, fns[0]()[0])
                        assert err <= 1.0, f"{name}: error {err}x the tolerance"
                        got[name] = [groups_of(cfg, x, w, r)]
                    got[name].append(abkit.pct(fns, nbytes, dev, cbw))
                except Exception as e:  # noqa: BLE001 - a layout that does not compile or fit
                    got[name] = [f"FAILED {type(e).__name__}: {str(e)[:80]}"]
        for name, v in got.items():
            tail = " ".join(f"{p:5.1f}" for p in v[1:]) if len(v) > 1 else ""
            print(f"A {op} {dname} {n:>6} {name:>24} G,S {v[0]}  {tail}", flush=True)
        del ins


PATCH_B = [
    ("parts = _poll(PART, EPOCH, row.to(tl.int64), S, S_POW2, True, True)  # EVERY_LANE",
     "parts = _poll(PART, EPOCH, row.to(tl.int64), S, S_POW2, True, False)"),
    ("ahead = _poll(PART, EPOCH, row64 + G, S, S_POW2, row + G < M, True)  # EVERY_LANE",
     "ahead = _poll(PART, EPOCH, row64 + G, S, S_POW2, row + G < M, False)"),
    ("c1 = _total(PART, EPOCH, row64, S, parts, S_POW2, True) / N",
     "c1 = _total(PART, EPOCH, row64, S, parts, S_POW2, False) / N"),
]


def part_b(dev, cbw, turns=3):
    mods = {"unmasked": kernels, "masked": abkit.patched_kernels(PATCH_B, "k_masked")}
    for dname in ("bf16", "fp16", "fp32"):
        for n in (16384, 32768, 65536, 131072, 262144):
            if heuristics.bwd_config(n, DT[dname]).one_pass:
                continue
            dt, m = DT[dname], 2**26 // n
            ins = [(x, w, torch.randn_like(x),  # x, w, dy, rstd
                    launch.forward(x, w, None, 1e-6, 0.0, "llama", dt, dt, True)[2])
                   for x, w, _ in abkit.input_sets(dt, n, dev)]
            nbytes = 3 * m * n * ins[0][0].element_size()
            outs, got = {}, {}
            for turn in range(turns):
                for v, mod in mods.items():
                    abkit.use(mod)
                    fns = [lambda a=a: launch.backward(a[2], a[0], a[1], a[3], 0.0, None, dt,
                                                       None, True) for a in ins]
                    if turn == 0:
                        outs[v] = [t.clone() for t in fns[0]() if t is not None]
                    got.setdefault(v, []).append(abkit.pct(fns, nbytes, dev, cbw))
            abkit.use(kernels)
            assert all(torch.equal(a, b) for a, b in zip(outs["masked"], outs["unmasked"])), \
                f"bits: bwd {dname} {n}"
            print(f"B bwd {dname:>4} {n:>6}  " + "   ".join(
                f"{v} " + " ".join(f"{p:5.1f}" for p in ps) for v, ps in got.items()), flush=True)
            del ins


def main():
    dev = torch.device("cuda")
    cbw = abkit.copy_gbs(dev)
    parts = sys.argv[1:] or ["A", "B"]
    if "A" in parts:
        part_a(dev, cbw)
    if "B" in parts:
        part_b(dev, cbw)


if __name__ == "__main__":
    main()

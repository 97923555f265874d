"""Run 109: the slot poll as a load without a mask, so its value needs no predicated copy.

Run 108's source page (ncu, the bf16 64K forward as landed in run 104): 33% of the stall samples
now sit on `@P3 IMAD.MOV.U32 R30, RZ, RZ, R46` right after the late poll: Triton lowers a masked
load with `other` as a load into one register and a predicated move into the value's register,
and the move waits for the load, so the poll's trip to L2 is waited for where it is issued.
Here _poll loads every lane from a valid address (lanes past S read lane S - 1, a row past M
reads row 0) with no mask, and _total ignores lanes past S when it checks the tags and sums
(the same zeros as the masked load gave, in the same order: the same bits). Rows past M are
never finished, so what their poll reads is never used.
Prediction: the move's 33% gone; the forward without a residual +0.3-1 at 64K-256K, the fused
forward and the backward (their early poll's copy at the round's end, item 81) +0-1.
Outcome (run109.log, three turns, bits equal in every cell): the backward +0.1 to +5.7 (fp32
256K 91.4 -> 97.1, 256 slots a row; bf16 16K 85.1 -> 86.3, 64K +0.6) but fp32 16K -0.9; the
forward -0.4 to +0.1 (fp16 64K -0.4), the fused forward -0.2 to +0.2. Landed for the backward
only (kernels._poll's EVERY_LANE); run 110: gpu_check ALL OK, the backward bench.
    PYTHONPATH=src timeout 300 python3 benchmarks/results/run109/ab_unmasked.py
"""
import os
import sys

import torch

from rmsnorm_triton import kernels, launch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import abkit  # noqa: E402  (benchmarks/abkit.py)

PATCH = [
    ("""    i = tl.arange(0, S_POW2)
    return tl.load(PART + row * S + i, mask=(i < S) & live, other=EPOCH.to(tl.int64) << 32,
                   volatile=True)
""", """    i = tl.arange(0, S_POW2)
    return tl.load(PART + tl.where(live, row, 0) * S + tl.minimum(i, S - 1), volatile=True)
"""),
    ("""    while tl.sum(((parts >> 32).to(tl.int32) != EPOCH).to(tl.int32), axis=0) > 0:
        parts = _poll(PART, EPOCH, row, S, S_POW2)
    return tl.sum((parts & 0xFFFFFFFF).to(tl.uint32).to(tl.float32, bitcast=True), axis=0)
""", """    i = tl.arange(0, S_POW2)
    while tl.sum((((parts >> 32).to(tl.int32) != EPOCH) & (i < S)).to(tl.int32), axis=0) > 0:
        parts = _poll(PART, EPOCH, row, S, S_POW2)
    v = (parts & 0xFFFFFFFF).to(tl.uint32).to(tl.float32, bitcast=True)
    return tl.sum(tl.where(i < S, v, 0.0), axis=0)
"""),
]


def main():
    mods = {"masked": kernels, "unmasked": abkit.patched_kernels(PATCH, "k_unmasked")}
    dev = torch.device("cuda")
    cbw = abkit.copy_gbs(dev)
    DT = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    cells = [("fwd", d, n) for d in ("bf16", "fp16", "fp32") for n in (65536, 131072, 262144)]
    cells += [("res", d, n) for d in ("bf16", "fp32") for n in (65536, 131072, 262144)]
    cells += [("bwd", d, n) for d in ("bf16", "fp32") for n in (16384, 65536, 262144)]
    cells += [("fwd", "bf16", 40000), ("res", "fp16", 100000)]  # odd N, partial chunks
    for op, dname, n in cells:
        dt, m = DT[dname], 2**26 // n
        ins = []
        for _ in range(2):
            x = torch.randn(m, n, device=dev, dtype=dt)
            w = (1 + 0.5 * torch.randn(n, device=dev)).to(dt)
            r = torch.randn_like(x) if op == "res" else None
            rstd = launch.forward(x, w, None, 1e-6, 0.0, "llama", dt, dt, True)[2] if op == "bwd" else None
            ins.append((x, w, r, torch.randn_like(x), rstd))
        if op == "bwd":
            nbytes = 3 * m * n * x.element_size()
            call = lambda a: launch.backward(a[3], a[0], a[1], a[4], 0.0, None, dt, None, True)[0]
        else:
            nbytes = (4 if op == "res" else 2) * m * n * x.element_size()
            call = lambda a: launch.forward(a[0], a[1], a[2], 1e-6, 0.0, "llama", dt, dt, False)[0]
        outs, got = {}, {}
        for turn in range(3):
            for v, mod in mods.items():
                launch.K = mod
                launch._PLANS.clear()
                launch._BWD_PLANS.clear()  # (since the tenth session: backward plans too)
                fns = [lambda a=a: call(a) for a in ins]
                if turn == 0:
                    outs[v] = fns[0]().clone()
                got.setdefault(v, []).append(abkit.pct(fns, nbytes, dev, cbw))
        launch.K = kernels
        assert torch.equal(outs["masked"], outs["unmasked"]), f"bits: {op} {dname} {n}"
        print(f"{op} {dname:>4} {n:>6}  " + "   ".join(f"{v} " + " ".join(f"{p:5.1f}" for p in ps)
                                                   for v, ps in got.items()), flush=True)
        del ins


if __name__ == "__main__":
    main()

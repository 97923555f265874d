"""Run 104: the SPLIT kernels' slot poll issued later in the round, so no copy waits on it.

Run 103b (ncu's source page, bf16 forward 64K, rows fixed): 11% of the warps' stall samples sit
on one `MOV R30, R46` at the end of the round, waiting on a long scoreboard: R46 is the poll of
the next row's slots (`ahead`, an LDG.E.64.STRONG.SYS issued at the start of the round) and
`parts = ahead` copies it, because `parts` is still live when `ahead` is loaded. Issued at the
round's start, beside the next round's chunk loads, the copy waits for it (and for whatever
shares its scoreboard) before the round can end. Another 21% sit in _total's re-poll loop
(partners' sums not there yet: 3.7 polls a round on average) and 24% at the chunk sum's barrier.
Variants (same arithmetic, so the same bits): "late": the poll issued right after this row's
_total, into `parts` itself (no copy; it has nearly a round until its use); "end": issued after
the row's store. The backward has the same shape (its `ahead`): "late" in both variants.
Prediction: the MOV's 11% gone; the 16-bit forward at 64K-256K +1 to +3 points, the fused and
fp32 forwards and the backward +0.5 to +2; a poll later in the round may also find more sums
arrived (fewer re-polls).
    PYTHONPATH=src timeout 400 python3 benchmarks/results/run104/ab_poll.py [--forward]
(--forward: the forward cells only, "now" against "late": run 104b, a second GPU)
"""
import os
import sys

import torch

from rmsnorm_triton import kernels, launch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import abkit  # noqa: E402  (benchmarks/abkit.py)

FWD_NOW = "            ahead = _poll(PART, EPOCH, nxt.to(tl.int64), S, S_POW2, nxt < M)\n"
FWD_TOTAL = "            ms, rstd = _mean_rstd(_total(PART, EPOCH, row64, S, parts, S_POW2), N, eps, ACC)\n"
FWD_ROT = "            parts = ahead\n            row = nxt\n"
FWD_POLL = "            parts = _poll(PART, EPOCH, nxt.to(tl.int64), S, S_POW2, nxt < M)\n"
BWD = [
    ("            ahead = _poll(PART, EPOCH, row64 + G, S, S_POW2, row + G < M)  # as in rms_norm_fwd\n", ""),
    ("            c1 = _total(PART, EPOCH, row64, S, parts, S_POW2) / N\n",
     "            c1 = _total(PART, EPOCH, row64, S, parts, S_POW2) / N\n"
     "            parts = _poll(PART, EPOCH, row64 + G, S, S_POW2, row + G < M)\n"),
    ("            parts = ahead\n            row += G\n", "            row += G\n"),
]
PATCHES = {
    "late": [(FWD_NOW, ""), (FWD_TOTAL, FWD_TOTAL + FWD_POLL), (FWD_ROT, "            row = nxt\n")] + BWD,
    "end": [(FWD_NOW, ""), (FWD_ROT, FWD_POLL + "            row = nxt\n")] + BWD,
}


def main():
    forward_only = "--forward" in sys.argv
    mods = {"now": kernels, "late": abkit.patched_kernels(PATCHES["late"], "k_late")} if forward_only else \
        {"now": kernels, "late": abkit.patched_kernels(PATCHES["late"], "k_late"), "end": abkit.patched_kernels(PATCHES["end"], "k_end")}
    dev = torch.device("cuda")
    cbw = abkit.copy_gbs(dev)
    DT = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    cells = [("fwd", d, n) for d in ("bf16", "fp16", "fp32") for n in (65536, 131072, 262144)]
    cells += [("res", d, n) for d in ("bf16", "fp16", "fp32") for n in (65536, 131072, 262144)]
    cells += [] if forward_only else [("bwd", d, n) for d in ("bf16", "fp32")
                                      for n in (16384, 65536, 262144)]
    res = {}
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
        outs = {}
        for turn in range(3):
            for v, mod in mods.items():
                launch.K = mod
                launch._PLANS.clear()
                launch._BWD_PLANS.clear()  # (since the tenth session: backward plans too)
                fns = [lambda a=a: call(a) for a in ins]
                if turn == 0:
                    outs[v] = fns[0]().clone()
                pct = abkit.pct(fns, nbytes, dev, cbw)
                res.setdefault((op, dname, n, v), []).append(pct)
        launch.K = kernels
        assert all(torch.equal(outs["now"], o) for o in outs.values()), f"bits: {op} {dname} {n}"
        print(f"{op} {dname} {n}: " + "   ".join(f"{v} " + " ".join(f"{p:5.1f}" for p in res[(op, dname, n, v)])
                                              for v in mods), flush=True)
        del ins
    print(f"{'op':>4} {'dtype':>5} {'N':>7}   " + "   ".join(f"{v + ' (3 turns)':>17}" for v in mods))
    for op, dname, n in cells:
        print(f"{op:>4} {dname:>5} {n:>7}   " + "   ".join(
            " ".join(f"{p:5.1f}" for p in res[(op, dname, n, v)]) for v in mods))


if __name__ == "__main__":
    main()

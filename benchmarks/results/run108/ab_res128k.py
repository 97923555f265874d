"""Run 108: the fused 16-bit forward's table, with 128K now "+dyn" (runs 93, 95, 97, 98: +0.2 to
+0.5 with rows handed out), against every SPLIT forward with rows fixed, 3 turns alternating.
Prediction: fused 16-bit 128K +0.2-0.5 with the table; 64K as run 94 (+0.7-0.9); 256K level.
    PYTHONPATH=src timeout 200 python3 benchmarks/results/run108/ab_res128k.py
"""
import os
import sys

import torch

from rmsnorm_triton import launch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import abkit  # noqa: E402  (benchmarks/abkit.py)


def main():
    dev = torch.device("cuda")
    cbw = abkit.copy_gbs(dev)
    for dt in (torch.bfloat16, torch.float16):
        for n in (65536, 131072, 262144):
            m = 2**26 // n
            ins = [(torch.randn(m, n, device=dev, dtype=dt), (1 + 0.5 * torch.randn(n, device=dev)).to(dt),
                    torch.randn(m, n, device=dev, dtype=dt)) for _ in range(2)]
            fns = [lambda a=a: launch.forward(a[0], a[1], a[2], 1e-6, 0.0, "llama", dt, dt, False)[0]
                   for a in ins]
            got, outs = {}, {}
            for turn in range(3):
                for v, dyn in (("table", None), ("fixed", False)):
                    launch.SPLIT_DYNAMIC = dyn
                    if turn == 0:
                        outs[v] = fns[0]().clone()
                    got.setdefault(v, []).append(abkit.pct(fns, 4 * m * n * 2, dev, cbw))
            launch.SPLIT_DYNAMIC = None
            assert torch.equal(outs["table"], outs["fixed"]), f"bits {dt} {n}"
            print(f"res {str(dt)[6:]:>8} {n:>6}  " + "   ".join(
                f"{v} " + " ".join(f"{p:5.1f}" for p in ps) for v, ps in got.items()), flush=True)


if __name__ == "__main__":
    main()

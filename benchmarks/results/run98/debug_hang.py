"""Run 98b: which call of ab_claim.py's mixed sequence hangs (run 98's first try timed out
there). Each call synchronised and printed with the kernel's grid, warps, cap, DYNAMIC and
registers. It found fp32 fused 256K: the tensor claim compiled to 176 registers, its grid had
been sized on DYNAMIC = True's compile (3 programs an SM) and 2 fit. ab_claim.split_grid now
sets DYNAMIC before the grid is sized; with it the same sequence ran through in ab_claim.py
(run98.log). This script was run before that change (its lines above now wrap the fixed one)."""
import faulthandler
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ab_claim  # noqa: E402
from rmsnorm_triton import launch  # noqa: E402

faulthandler.dump_traceback_later(100, exit=True)
SEEN = []
RUN = launch.run
launch.split_grid = ab_claim.split_grid


def run(kernel, grid, args, num_warps, maxnreg=0):
    k = RUN(kernel, grid, args, num_warps, maxnreg)
    SEEN.append((getattr(kernel, "__name__", "?"), grid, num_warps, maxnreg, args[33] if len(args) > 33 else None,
                 getattr(k, "n_regs", None)))
    return k


launch.run = run
dev = torch.device("cuda")


def fwd(a, dt):
    SEEN.clear()
    y = launch.forward(a[0], a[1], a[2], 1e-6, 0.0, "llama", dt, dt, False)[0]
    print(SEEN[-1][1:] if SEEN else "-", end=" ", flush=True)
    torch.cuda.synchronize()
    return y


for i in range(60):  # ab_claim.py's mixed sequence, each call synchronised
    n = [40000, 65536, 131072, 100000, 262144][i % 5]
    m = [7, 300, 1025, 64, 33][i % 5]
    dt = [torch.bfloat16, torch.float32, torch.float16][i % 3]
    x = torch.randn(m, n, device=dev, dtype=dt)
    w = (1 + 0.5 * torch.randn(n, device=dev)).to(dt)
    r = torch.randn_like(x) if i % 4 == 0 else None
    print(i, n, m, dt, r is not None, end=": ", flush=True)
    for v in ("static", "tensor"):
        launch.K, launch.SPLIT_DYNAMIC = ab_claim.VARIANTS[v]
        launch._PLANS.clear()
        print(v, end=" ", flush=True)
        fwd((x, w, r), dt)
    if i % 4 == 1:
        print("bwd", end=" ", flush=True)
        _, _, rstd, _ = launch.forward(x, w, None, 1e-6, 0.0, "llama", dt, dt, True)
        launch.backward(torch.randn_like(x), x, w, rstd, 0.0, None, dt, None, True)
        torch.cuda.synchronize()
    print("tensor again", end=" ", flush=True)
    fwd((x, w, r), dt)
    print("ok", flush=True)

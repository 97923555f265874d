"""Why the bench and tune.py disagree at large N: the same case timed three ways in one process."""
import torch
from triton.testing import do_bench

import rmsnorm_triton as R
from rmsnorm_triton import heuristics, launch
from rmsnorm_triton.bench.providers import RmsnormTriton

for n in (65536, 131072, 262144):
    m = (1 << 26) // n
    x = torch.randn(m, n, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    cfg = heuristics.fwd_config(n, x.dtype)
    nbytes = 2 * m * n * 2
    f1 = lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False, config=cfg)
    f2 = lambda: R.rms_norm(x, w)
    p = RmsnormTriton()
    p.load()
    f3 = p.prepare("fwd", x, w, 1e-6)
    for name, f in (("launch.forward", f1), ("rms_norm", f2), ("bench provider", f3)):
        for rep in (60, 40):
            ms = do_bench(f, warmup=10, rep=rep, return_mode="median")
            print(f"N={n} {name:>15} rep={rep}: {ms * 1e3:7.1f} us {nbytes / ms / 1e6 / 29.67:5.1f}% of 2967 GB/s",
                  flush=True)
    print(cfg, flush=True)

"""Run 56: what the SPLIT forward's slot fill (launch.empty_slots, a torch.full launched before
each SPLIT kernel) costs in the bench's clock. `python fill_probe.py reuse` hands the kernel
the same slots every call (not refilled: only right with the "nowait" kernel of run 52, which
never waits on them, so its time is the kernel's without the fill)."""

import sys

import torch

from rmsnorm_triton import heuristics, launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

dev = torch.device("cuda")
c_ms, c_bytes = copy_bandwidth(dev, 512)
cbw = c_bytes / c_ms / 1e6
if sys.argv[1:] == ["reuse"]:
    made, fill = {}, launch.empty_slots

    def reused(m, c, d):
        if (m, c) not in made:
            made[m, c] = fill(m, c, d)
        return made[m, c]

    launch.empty_slots = reused
print(f"copy {cbw:.0f} GB/s; slots {'reused' if sys.argv[1:] else 'filled each call'}")
for n in (65536, 131072, 262144):
    for res in (False, True):
        m = (1 << 26) // n
        x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
        w = (1 + 0.1 * torch.randn(n, device=dev)).bfloat16()
        r = torch.randn_like(x) if res else None
        f = lambda: launch.forward(x, w, r, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)  # noqa: E731
        ms = kernel_ms(f, dev, 100)
        chunks = -(-n // heuristics.fwd_config(n, x.dtype, res).block_n)
        fill_ms = kernel_ms(lambda: torch.full((m, chunks), -1, dtype=torch.int32, device=dev), dev, 50)
        nbytes = (4 if res else 2) * m * n * 2 + n * 2
        print(f"N={n:>6} res={res!s:>5} {ms * 1e3:7.1f} us {nbytes / ms / 1e6 / cbw * 100:5.1f}%"
              f"  fill alone {fill_ms * 1e3:5.2f} us", flush=True)

"""Run 89: where the 16-bit forward and fused forward at 64K lose against Quack (ncu).

Ours: SPLIT, a row's 32 (fused: 16) programs meeting through L2 slots; Quack: CuTe DSL,
clusters meeting in distributed shared memory. Each kernel is profiled once after warm-up,
inside an NVTX range named for it, with Nsight Compute's SpeedOfLight, MemoryWorkloadAnalysis,
Occupancy and WarpStateStats sections; beside them (run 89b) a copy of the same bytes and our
4K forward, to read the 64K durations against. Usage on the GPU machine (Quack importable):
    /usr/local/cuda/bin/ncu --nvtx --nvtx-include "ours_fwd/" --nvtx-include "quack_fwd/" \
        --nvtx-include "ours_res/" --nvtx-include "quack_res/" --section SpeedOfLight ... \
        python3 benchmarks/results/run89/ncu64k.py
"""
import torch

from rmsnorm_triton import rms_norm

try:
    from quack.rmsnorm import rmsnorm
except ImportError:  # run 89b: ours and the copy only
    rmsnorm = None

dev = torch.device("cuda")
n, m = 65536, 1024
x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
r = torch.randn_like(x)
w = (1 + 0.2 * torch.randn(n, device=dev)).to(torch.bfloat16)
x4 = torch.randn(2**26 // 4096, 4096, device=dev, dtype=torch.bfloat16)
w4 = w[:4096].contiguous()
y = torch.empty_like(x)
calls = {
    "copy": lambda: y.copy_(x),  # the same bytes as the forward: 128 MiB read, 128 MiB written
    "ours_fwd4k": lambda: rms_norm(x4, w4),
    "ours_fwd": lambda: rms_norm(x, w),
    "quack_fwd": lambda: rmsnorm and rmsnorm(x, w, eps=1e-6),
    "ours_res": lambda: rms_norm(x, w, residual=r),
    "quack_res": lambda: rmsnorm and rmsnorm(x, w, residual=r, eps=1e-6, prenorm=True),
}
for f in calls.values():
    for _ in range(3):
        f()
torch.cuda.synchronize()
for name, f in calls.items():
    torch.cuda.nvtx.range_push(name)
    f()
    torch.cuda.nvtx.range_pop()
    torch.cuda.synchronize()
print("done")

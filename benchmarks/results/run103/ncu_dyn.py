"""Run 103: why rows handed out per chunk cost the 16-bit forward at 64K (runs 93, 98: 95.3 ->
91.4%) while they gain in fp32 at 64K (97.7 -> 98.4): ncu on both, rows fixed and handed out.

A row's S programs publish their partial sums and wait for each other. With rows fixed, the S
programs of a group move together; handed out per chunk, row r's chunks go to whichever program
of each chunk asks first, so a program waits on partners from many groups. Predicted reading:
in the 16-bit dynamic kernel more warp time stalled on the poll's loads ("long scoreboard" /
"lg throttle" at the volatile loads) and lower DRAM throughput over the same bytes; fp32's
(4 programs an SM, 2048 x 4 warps, 16 chunks a row) stalls less.
Outcome (run103-ncu.txt, one call each under ncu's locked clocks): bf16 rows fixed 90.98 us,
DRAM 81.2%, SM active cycles 134.9K; handed out 98.14 us, DRAM 75.4%, 146.6K active cycles
(+8.6%) at the same warp stall mix (12.2 -> 12.9 cycles an issue, a third of it waiting on
shared memory: the cross-warp sums). fp32: 179.1 against 182.1 us, handed out slower here too,
though timed back to back it reads +0.7 (runs 93, 98): its gain is between calls (the next
call's start under PDL, the last programs' tail), not inside one.
Usage on the GPU machine:
    /usr/local/cuda/bin/ncu --nvtx --nvtx-include "bf16_static/" --nvtx-include "bf16_dyn/" \
        --nvtx-include "fp32_static/" --nvtx-include "fp32_dyn/" --section SpeedOfLight \
        --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
        --section SourceCounters python3 benchmarks/results/run103/ncu_dyn.py
"""
import torch

from rmsnorm_triton import launch

dev = torch.device("cuda")
n, m = 65536, 1024
calls = {}
for name, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
    x = torch.randn(m, n, device=dev, dtype=dt)
    w = (1 + 0.2 * torch.randn(n, device=dev)).to(dt)
    for mode, dyn in (("static", False), ("dyn", True)):
        def f(x=x, w=w, dt=dt, dyn=dyn):
            launch.SPLIT_DYNAMIC = dyn
            return launch.forward(x, w, None, 1e-6, 0.0, "llama", dt, dt, False)[0]
        calls[f"{name}_{mode}"] = f
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

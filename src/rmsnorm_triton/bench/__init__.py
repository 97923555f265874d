"""`rmsnorm-triton bench`: this library against its peers, as GB/s and as a share of copy bandwidth.

    providers.py  one small class per provider (this library, torch eager, F.rms_norm,
                  torch.compile, Liger-Kernel, Quack): forward, backward, fused residual forward
    cases.py      one case: random inputs, the fewest bytes, the float64 reference, the check
    timing.py     copy bandwidth, device-time medians, eager and CUDA-graph latency per call
    records.py    the row shape and the one data file it is appended to
                  (benchmarks/data/results.csv)
    harness.py    the command line and the loop: inputs, float64 check, then timing
    report.py     the live lines, the summary, and the README's tables from the data file
    plot.py       PNGs drawn from the data file alone

Every measurement is one row with the same fields (records.FIELDS), appended as it is made;
tables and plots are drawn from the file, never from state held in the process.
"""

from .records import FIELDS, append, read

__all__ = ["FIELDS", "append", "read"]

"""`rmsnorm-triton bench`: this library against its peers, as GB/s and as a share of copy bandwidth.

    providers.py  one small class per provider (this library, torch eager, F.rms_norm,
                  torch.compile, Liger-Kernel, Quack): forward, backward, fused residual forward
    cases.py      one case: random inputs, the fewest bytes, the float64 reference, the check
    timing.py     copy bandwidth, device-time medians, eager and CUDA-graph latency per call
    report.py     the record shape, CSV/JSON files, the live lines and the summary tables
    harness.py    the command line and the loop: inputs, float64 check, then timing
    plot.py       PNGs drawn from the CSV/JSON files alone

Every measurement is one record with the same fields (report.FIELDS); plots are drawn from the
files, never from state held in the process.
"""

from .report import FIELDS, read_records, write_records

__all__ = ["FIELDS", "read_records", "write_records"]

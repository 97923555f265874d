"""The Triton kernels: one source for the GPU, Triton's interpreter and the visualizer's trace.

    common.py     rounding (with the interpreter's bf16 fix), the weight, mean and rstd, PDL
    forward.py    rms_norm_fwd: the ONE_PASS and SPLIT walks of a row, residual, offset, casting
    meet.py       SPLIT's meeting: publish / poll / total through epoch-tagged slots, counters
    loop.py       the block loop: long rows walked in blocks, and what the visualizer traces
    backward.py   rms_norm_bwd + dw_reduce (deterministic, no atomics)
    quant.py      the forward's FP8 epilogue (QUANT): static, per-token, per-group scales
    gated.py      gated_fwd, gated_bwd: RMSNorm with a gate act(z), before or after, in groups
"""

from .backward import dw_reduce, rms_norm_bwd
from .common import CAST_GEMMA, CAST_LLAMA, CAST_NONE, LOOP_ERROR
from .forward import rms_norm_fwd
from .gated import gated_bwd, gated_fwd
from .meet import N_COUNTERS

__all__ = ["rms_norm_fwd", "rms_norm_bwd", "dw_reduce", "gated_fwd", "gated_bwd", "CAST_NONE",
           "CAST_LLAMA", "CAST_GEMMA", "LOOP_ERROR", "N_COUNTERS"]

"""Argument checks: each bad value raises naming the argument, the value and what was expected.

rms_norm and fused_add_rms_norm_ run `validate` once per call signature (the launch plan of a
signature that passed is replayed without it); layernorm.py uses the pieces.
"""

import math

import torch

from . import _triton
from .kernels import CAST_GEMMA, CAST_LLAMA, CAST_NONE, common

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
CASTINGS = {"none": CAST_NONE, "llama": CAST_LLAMA, "gemma": CAST_GEMMA}
MAX_ROWS = 2**31 - 2**16  # the kernels number rows in 32 bits, a tile past the last one included


def interpreted() -> bool:
    """True when this process's kernels run through Triton's interpreter (fixed at import)."""
    return _triton.INTERPRETED


def _names(dtypes) -> str:
    return ", ".join(str(d).replace("torch.", "") for d in dtypes)


def check_tensor(name: str, t, dtypes=FLOAT_DTYPES) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in dtypes:
        raise TypeError(f"{name} has dtype {t.dtype}, expected one of {_names(dtypes)}")
    if t.is_cuda or _triton.simulated():  # (simulated: CPU tensors stand in for CUDA ones)
        return
    if t.device.type == "cpu" and interpreted() and common.LOOP_ERROR is not None:
        import numpy
        import triton

        raise RuntimeError(
            f"{name} is on the CPU, where this process runs Triton {triton.__version__}'s "
            f"interpreter, which cannot run loops with a runtime bound under NumPy "
            f"{numpy.__version__} ({common.LOOP_ERROR!r}; Triton 3.6 with NumPy 2.4 does this, "
            "Triton 3.9 does not). Install numpy<2.4 or a newer Triton, or use CUDA tensors."
        )
    if t.device.type == "cpu" and not interpreted():
        raise RuntimeError(
            f"{name} is on the CPU, but this process runs Triton compiled for the GPU, and Triton "
            "fixes that choice when it is imported. Move the tensors to CUDA, or run CPU tensors "
            "in a process started with TRITON_INTERPRET=1 (Triton's interpreter)."
        )
    if t.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} is on device {t.device}, expected a CUDA or CPU tensor")


def check_rows(name: str, t, rows: int) -> None:
    """A call of `rows` rows of t fits the kernels' 32-bit row numbers."""
    if rows > MAX_ROWS:
        raise ValueError(f"{name} has shape {tuple(t.shape)}: {rows} rows to normalize, "
                         f"expected at most {MAX_ROWS} (the kernels number rows in 32 bits); "
                         "split the call")


def check_scalar(name: str, value, minimum=None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        want = f"a finite number >= {minimum}" if minimum is not None else "a finite number"
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return float(value)


def check_dtype(name: str, dtype) -> None:
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} is {dtype!r}, expected None or one of {_names(FLOAT_DTYPES)}")


def validate(x, weight, eps, residual, offset, casting, out_dtype, residual_dtype):
    """Every check of an rms_norm call's arguments."""
    check_tensor("x", x)
    if x.dim() == 0:
        raise ValueError("x is a 0-dim tensor, expected at least 1 dim (..., N)")
    n = x.shape[-1]
    check_rows("x", x, math.prod(x.shape[:-1]))
    if weight is not None:
        check_tensor("weight", weight)
        if tuple(weight.shape) != (n,):
            raise ValueError(f"weight has shape {tuple(weight.shape)}, expected ({n},) to match "
                             "the last dim of x")
        if weight.device != x.device:
            raise ValueError(f"weight is on {weight.device} but x is on {x.device}; "
                             "expected both on one device")
    if residual is not None:
        check_tensor("residual", residual)
        if residual.shape != x.shape:
            raise ValueError(f"residual has shape {tuple(residual.shape)}, expected "
                             f"{tuple(x.shape)} (the shape of x)")
        if residual.device != x.device:
            raise ValueError(f"residual is on {residual.device} but x is on {x.device}; "
                             "expected both on one device")
    check_scalar("eps", eps)  # any finite eps, as torch.nn.RMSNorm takes
    check_scalar("offset", offset)
    if casting not in CASTINGS:
        raise ValueError(f"casting is {casting!r}, expected one of {sorted(CASTINGS)}")
    check_dtype("out_dtype", out_dtype)
    check_dtype("residual_dtype", residual_dtype)


def span(t) -> int:
    """Bytes from t's first element to just past its last (strided rows span past numel)."""
    return (1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride()))) * t.element_size()


def overlap(a, b) -> bool:
    """True when the address ranges a and b span intersect."""
    if a.numel() == 0 or b.numel() == 0:  # nothing is written; empty tensors may share ptr 0
        return False
    a0, b0 = a.data_ptr(), b.data_ptr()
    return a0 < b0 + span(b) and b0 < a0 + span(a)

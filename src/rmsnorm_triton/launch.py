"""Host launchers: argument checks, 2-D row views, the launch table, the kernel calls.

Nothing here knows about autograd; ops.py builds the differentiable op on top.
"""

import math

import torch

from . import heuristics
from . import kernels as K

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
CASTINGS = {"none": K.CAST_NONE, "llama": K.CAST_LLAMA, "gemma": K.CAST_GEMMA}


def interpreted() -> bool:
    """True when this process's kernels run through Triton's interpreter (fixed at import)."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(K.rms_norm_fwd, InterpretedFunction)


def _names(dtypes) -> str:
    return ", ".join(str(d).replace("torch.", "") for d in dtypes)


def check_tensor(name: str, t, dtypes=FLOAT_DTYPES) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in dtypes:
        raise TypeError(f"{name} has dtype {t.dtype}, expected one of {_names(dtypes)}")
    if t.device.type == "cpu" and not interpreted():
        raise RuntimeError(
            f"{name} is on the CPU, but this process runs Triton compiled for the GPU, and Triton "
            "fixes that choice when it is imported. Move the tensors to CUDA, or run CPU tensors "
            "in a process started with TRITON_INTERPRET=1 (Triton's interpreter)."
        )
    if t.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} is on device {t.device}, expected a CUDA or CPU tensor")


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


def rows_view(t: torch.Tensor, n: int) -> torch.Tensor:
    """(M, N) view with a unit last stride; strided rows stay as they are, other layouts copy once."""
    if t.dim() == 2 and t.stride(-1) == 1:
        return t
    try:
        v = t.view(-1, n)
        if v.stride(-1) == 1 or v.shape[0] == 0:
            return v
    except RuntimeError:
        pass
    return t.contiguous().view(-1, n)


def forward(x2, weight, residual2, eps, offset, casting, out_dtype, h_dtype, store_rstd,
            *, config=None, trace=False, y=None, h=None):
    """Runs rms_norm_fwd on (M, N) rows. Returns y, h (or None), rstd (or None), trace buffers.

    y and h may be given (fused_add_rms_norm_ passes x and residual themselves: every element
    is read by the program that overwrites it, before it does).
    """
    m, n = x2.shape
    acc = torch.float64 if x2.dtype == torch.float64 else torch.float32
    if y is None:
        y = torch.empty((m, n), dtype=out_dtype, device=x2.device)
    if h is None and residual2 is not None:
        h = torch.empty((m, n), dtype=h_dtype, device=x2.device)
    rstd = torch.empty((m,), dtype=acc, device=x2.device) if store_rstd or trace else None
    cfg = config or heuristics.fwd_config(n, x2.dtype)
    tr_blk = tr_row = None
    if trace:
        nb = 1 if cfg.one_pass else -(-n // cfg.block_n)
        tr_blk = torch.full((m, nb, 2), float("nan"), dtype=acc, device=x2.device)
        tr_row = torch.full((m, 4), float("nan"), dtype=acc, device=x2.device)
    if m == 0:
        return y, h, rstd, (tr_blk, tr_row)
    d = x2  # stands in for pointers a specialisation never reads
    grid = (triton_cdiv(m, cfg.block_m) if cfg.one_pass else m,)
    K.rms_norm_fwd[grid](
        x2, residual2 if residual2 is not None else d, weight if weight is not None else d,
        y, h if h is not None else d, rstd if rstd is not None else d,
        tr_blk if trace else d, tr_row if trace else d,
        x2.stride(0), residual2.stride(0) if residual2 is not None else 0, y.stride(0),
        h.stride(0) if h is not None else 0,
        m, n, eps, offset,
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, ONE_PASS=cfg.one_pass,
        HAS_W=weight is not None, HAS_R=residual2 is not None, STORE_RSTD=rstd is not None,
        CASTING=CASTINGS[casting], TRACE=trace, num_warps=cfg.num_warps,
    )
    return y, h, rstd, (tr_blk, tr_row)


def backward(dy2, xin2, weight, rstd, offset, dh2, dx_dtype, dr_dtype, need_dw, *, programs=None):
    """Runs rms_norm_bwd (+ dw_reduce). xin2 is the normalized input: x, or h with a residual.

    Returns dx (dx_dtype or None), dr (dr_dtype or None), dw (weight's dtype or None).
    dx and dr hold the same values; each is written only when asked for, never aliased.
    """
    m, n = xin2.shape
    dev = xin2.device
    dx = torch.empty((m, n), dtype=dx_dtype, device=dev) if dx_dtype is not None else None
    dr = torch.empty((m, n), dtype=dr_dtype, device=dev) if dr_dtype is not None else None
    if dx is None:  # the kernel always writes DX; let it write the residual's gradient there
        dx, dr = dr, None
    need_dw = need_dw and weight is not None
    if m == 0:
        dw = torch.zeros_like(weight) if need_dw else None
        return (dx, dr, dw) if dx_dtype is not None else (None, dx, dw)
    cfg = heuristics.bwd_config(n, xin2.dtype)
    tiles = triton_cdiv(m, cfg.block_m) if cfg.one_pass else m
    progs = min(tiles, programs or heuristics.num_programs(dev))
    part = torch.empty((progs, n), dtype=rstd.dtype, device=dev) if need_dw else None
    d = xin2  # stands in for pointers a specialisation never reads
    K.rms_norm_bwd[(progs,)](
        dy2, xin2, weight if weight is not None else d, rstd,
        dh2 if dh2 is not None else d, dx, dr if dr is not None else d, part if need_dw else d,
        dy2.stride(0), xin2.stride(0), dh2.stride(0) if dh2 is not None else 0, dx.stride(0),
        dr.stride(0) if dr is not None else 0,
        m, n, offset, progs,
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, ONE_PASS=cfg.one_pass,
        HAS_W=need_dw, HAS_DH=dh2 is not None, STORE_DR=dr is not None,
        num_warps=cfg.num_warps,
    )
    dw = None
    if need_dw:
        dw = torch.empty_like(weight)
        block_n = 256 if n >= 256 else max(16, 1 << (n - 1).bit_length())
        K.dw_reduce[(triton_cdiv(n, block_n),)](part, dw, progs, n, BLOCK_P=32, BLOCK_N=block_n,
                                                num_warps=4)
    if dx_dtype is None:
        return None, dx, dw
    return dx, dr, dw


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


"""rms_norm_fp8: RMSNorm (+ residual) with its output quantized to FP8, in one kernel.

The forward kernel's epilogue (kernels/quant.py) quantizes y where rms_norm would store it: x
(and the residual) are read once, q is written at one byte an element beside its scales. y is
exactly rms_norm's output (same casting, rounded to x's dtype) before it is quantized, so the
unfused pipeline `quantize_fp8_ref(rms_norm(x, w, ...))` (reference.py) gives the same bits.

A call's signature (plan.key, with the FP8 arguments) finds its launch plan, a plan.FwdPlan
with quant set: the first call of a signature passes the checks and makes it, later ones replay
it, as rms_norm's do. torch.compile sees `torch.ops.rmsnorm_triton.fwd_fp8` (and `fwd_fp8_`
for the residual written in place), whose fake implementations give it the shapes.
Inference only: nothing here records a gradient. Rows that the launch table walks with SPLIT
(past 32K elements) keep SPLIT with a static or per-group scale, and take the block loop with a
per-token one (its scale would need a second meeting of SPLIT's programs).
"""

from typing import Optional

import torch

from . import plan
from .checks import check_scalar, overlap, validate
from .kernels.quant import LAYOUT_MN_MAJOR, LAYOUT_ROWS, QUANT_GROUP, QUANT_STATIC, QUANT_TOKEN
from .plan import PLANS, FwdPlan

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
MODES = {"static": QUANT_STATIC, "token": QUANT_TOKEN, "group": QUANT_GROUP}
LAYOUTS = {"row": LAYOUT_ROWS, "deepgemm": LAYOUT_MN_MAJOR}
_EMPTY = (0,)


def _check(x, weight, eps, residual, offset, casting, scale, group_size, ue8m0, scale_layout,
           fp8_dtype, scale_ub, inplace_residual):
    """Refuses what the kernel cannot do, naming the argument, its value and what was expected;
    returns the mode ("static", "token" or "group")."""
    validate(x, weight, eps, residual, offset, casting, None, None)
    if x.dtype == torch.float64:
        raise TypeError("x has dtype torch.float64, expected float32, float16 or bfloat16 "
                        "(rms_norm_fp8 quantizes from at most fp32)")
    if fp8_dtype not in FP8_DTYPES:
        raise TypeError(f"fp8_dtype is {fp8_dtype!r}, expected torch.float8_e4m3fn or "
                        "torch.float8_e5m2")
    n = x.shape[-1]
    if isinstance(scale, torch.Tensor):
        mode = "static"
        if scale.dtype != torch.float32 or scale.numel() != 1:
            raise ValueError(f"scale is a tensor of shape {tuple(scale.shape)} and dtype "
                             f"{scale.dtype}, expected one float32 element (a static scale)")
        if scale.device != x.device:
            raise ValueError(f"scale is on {scale.device} but x is on {x.device}; expected "
                             "both on one device")
    elif scale in ("token", "group"):
        mode = scale
    else:
        raise ValueError(f"scale is {scale!r}, expected a one-element float32 tensor (static), "
                         "'token' or 'group'")
    if mode == "group":
        if (isinstance(group_size, bool) or not isinstance(group_size, int)
                or not 16 <= group_size <= 1024 or group_size & (group_size - 1)):
            raise ValueError(f"group_size is {group_size!r}, expected a power of two from 16 to "
                             "1024 (128 or 64 as DeepSeek-V3 and DeepGEMM use)")
        if n % group_size:
            raise ValueError(f"group_size is {group_size} but the last dim of x is {n}, "
                             f"expected a multiple of {group_size}")
    if scale_layout not in LAYOUTS:
        raise ValueError(f"scale_layout is {scale_layout!r}, expected 'row' or 'deepgemm'")
    if scale_layout == "deepgemm" and mode != "group":
        raise ValueError(f"scale_layout is 'deepgemm' with scale {_name(scale)}; DeepGEMM's "
                         "layout is for per-group scales (scale='group')")
    if mode == "static" and (ue8m0 or scale_ub is not None):
        raise ValueError(f"{'ue8m0' if ue8m0 else 'scale_ub'} was given with a static scale; "
                         "it applies to the dynamic scales ('token', 'group') only")
    if scale_ub is not None:
        check_scalar("scale_ub", scale_ub, minimum=0.0)
    if inplace_residual and residual is None:
        raise ValueError("inplace_residual=True needs a residual to write h into")
    return mode


def _name(scale):
    return "a tensor" if isinstance(scale, torch.Tensor) else repr(scale)


def _scales(m, n, shape, mode, group_size, layout, device):
    """The dynamic scales' tensor: token (..., 1); group (..., N / G), or DeepGEMM's (M, N / G)
    column-major with M padded to a multiple of 4 (the padding rows are not written)."""
    if mode == "token":
        return torch.empty((*shape[:-1], 1), dtype=torch.float32, device=device)
    groups = n // group_size
    if layout == "deepgemm":
        pad = -(-m // 4) * 4
        return torch.empty((groups, pad), dtype=torch.float32, device=device).t()[:m]
    return torch.empty((*shape[:-1], groups), dtype=torch.float32, device=device)


class Quant:
    """The FP8 epilogue of a launch plan (plan.FwdPlan's quant): the kernel's constexprs and
    scale_ub by name, how each call's scales are made, whether h goes into the residual."""

    def __init__(self, mode, group_size, ue8m0, scale_layout, scale_ub, h_inplace):
        self.mode, self.group, self.layout, self.h_inplace = (mode, group_size, scale_layout,
                                                              h_inplace)
        # SPLIT's chunks and the block loop's blocks hold whole groups: every such table entry
        # has BLOCK_N >= 2048, and group_size <= 1024
        self.splits = mode != "token"
        self.named = dict(QUANT=MODES[mode], GROUP=group_size, UE8M0=ue8m0,
                          SCALE_LAYOUT=LAYOUTS[scale_layout], scale_ub=scale_ub)

        self._shapes = {}  # x's shape -> the scales' (row-major layouts: one allocation a call)

    def scales(self, x):
        """A new tensor for x's dynamic scales; None for a static scale (the caller's)."""
        if self.mode == "static":
            return None
        shape = self._shapes.get(x.shape)
        if shape is not None:
            return torch.empty(shape, dtype=torch.float32, device=x.device)
        n = x.shape[-1]
        m = x.numel() // n if n else 0
        s = _scales(m, n, x.shape, self.mode, self.group, self.layout, x.device)
        if s.is_contiguous() and len(self._shapes) < 64:
            self._shapes[x.shape] = s.shape
        return s


def _plan(x, weight, residual, eps, offset, casting, mode, group_size, ue8m0, scale_layout,
          fp8_dtype, scale_ub, inplace_residual, key):
    """The launch plan of this signature (made and remembered here on a miss)."""
    p = PLANS.get(key) if key is not None else None
    if p is None:
        quant = Quant(mode, group_size, ue8m0, scale_layout, scale_ub, inplace_residual)
        p = FwdPlan(x, weight, residual, float(eps), float(offset), casting, fp8_dtype,
                    residual.dtype if residual is not None else x.dtype, False, quant=quant)
        if inplace_residual and p.r_view:
            raise ValueError("inplace_residual needs a residual whose rows view as (M, N) with "
                             "unit stride; got a layout that would need a copy")
        plan.remember(key, p)
    return p


def _run(p, x, weight, residual, scale, inplace_residual):
    """(q, h or None, scales) by plan p; scale: the static one, else None."""
    if inplace_residual and overlap(x, residual):
        raise ValueError("x and residual share memory; inplace_residual needs two separate "
                         "tensors")
    return p(x, weight, residual, scale)


# ---- torch.library: what torch.compile sees -------------------------------------------------
@torch.library.custom_op("rmsnorm_triton::fwd_fp8", mutates_args=())
def _fp8_op(x: torch.Tensor, weight: Optional[torch.Tensor], residual: Optional[torch.Tensor],
            scale: Optional[torch.Tensor], eps: float, offset: float, casting: str, quant: str,
            group_size: int, ue8m0: bool, scale_layout: str, fp8_dtype: torch.dtype,
            scale_ub: Optional[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p = _plan(x, weight, residual, eps, offset, casting, quant, group_size, ue8m0, scale_layout,
              fp8_dtype, scale_ub, False, _key(x, weight, residual, eps, offset, casting, scale,
                                               quant, group_size, ue8m0, scale_layout,
                                               fp8_dtype, scale_ub, "op"))
    q, h, s = _run(p, x, weight, residual, scale, False)
    s = x.new_empty(_EMPTY, dtype=torch.float32) if quant == "static" else s
    return q, s, (h if h is not None else x.new_empty(_EMPTY))


def _fake_outputs(x, residual, mode, group_size, scale_layout, fp8_dtype):
    n = x.shape[-1]
    m = x.numel() // n if n else 0
    s = (x.new_empty(_EMPTY, dtype=torch.float32) if mode == "static"
         else _scales(m, n, x.shape, mode, group_size, scale_layout, x.device))
    return x.new_empty(x.shape, dtype=fp8_dtype), s


@_fp8_op.register_fake
def _(x, weight, residual, scale, eps, offset, casting, quant, group_size, ue8m0, scale_layout,
      fp8_dtype, scale_ub):
    q, s = _fake_outputs(x, residual, quant, group_size, scale_layout, fp8_dtype)
    h = x.new_empty(x.shape, dtype=residual.dtype) if residual is not None else x.new_empty(_EMPTY)
    return q, s, h


@torch.library.custom_op("rmsnorm_triton::fwd_fp8_", mutates_args=("residual",))
def _fp8_inplace_op(x: torch.Tensor, weight: Optional[torch.Tensor], residual: torch.Tensor,
                    scale: Optional[torch.Tensor], eps: float, offset: float, casting: str,
                    quant: str, group_size: int, ue8m0: bool, scale_layout: str,
                    fp8_dtype: torch.dtype,
                    scale_ub: Optional[float]) -> tuple[torch.Tensor, torch.Tensor]:
    p = _plan(x, weight, residual, eps, offset, casting, quant, group_size, ue8m0, scale_layout,
              fp8_dtype, scale_ub, True, _key(x, weight, residual, eps, offset, casting, scale,
                                              quant, group_size, ue8m0, scale_layout, fp8_dtype,
                                              scale_ub, "op in place"))
    q, _, s = _run(p, x, weight, residual, scale, True)
    return q, (s if quant != "static" else x.new_empty(_EMPTY, dtype=torch.float32))


@_fp8_inplace_op.register_fake
def _(x, weight, residual, scale, eps, offset, casting, quant, group_size, ue8m0, scale_layout,
      fp8_dtype, scale_ub):
    return _fake_outputs(x, residual, quant, group_size, scale_layout, fp8_dtype)


def rms_norm_fp8(x, weight=None, eps=1e-6, *, residual=None, scale="token", group_size=128,
                 ue8m0=False, scale_layout="row", fp8_dtype=torch.float8_e4m3fn, scale_ub=None,
                 offset=0.0, casting="llama", inplace_residual=False):
    """RMSNorm over the last dim of x (optionally of h = x + residual), quantized to FP8.

        q, s = rms_norm_fp8(x, w)                         # per token: y ~= q.float() * s
        q, s, h = rms_norm_fp8(x, w, residual=r)          # h = x + r, the new residual
        q, s = rms_norm_fp8(x, w, scale=torch.tensor([0.05], device=x.device))   # static
        q, s = rms_norm_fp8(x, w, scale="group", ue8m0=True, scale_layout="deepgemm")

    y = rms_norm(x, weight, eps, residual=..., offset=..., casting=...) (x's dtype), then
    q = fp8(clamp(y * (1 / s), -FP8_MAX, FP8_MAX)) with 1 / s rounded once (kernels/quant.py).

    Args:
        x, weight, eps, residual, offset, casting: as rms_norm (x fp32, fp16 or bf16).
        scale: a one-element fp32 tensor on x's device (static: returned as s); "token": s per
            row, shape (..., 1), max|y| / FP8_MAX; "group": s per group_size contiguous elements
            of a row, shape (..., N / group_size). Dynamic scales are at least
            1 / (FP8_MAX * 512), so a row of zeros quantizes to zeros.
        group_size: a power of two from 16 to 1024 dividing N (128 default, 64).
        ue8m0: round each dynamic scale up to a power of two (DeepSeek-V3 / DeepGEMM).
        scale_layout: "row", or "deepgemm" (group): (M, N / G) column-major, M padded to a
            multiple of 4, as DeepGEMM's sm90 FP8 GEMM reads it without a copy.
        fp8_dtype: torch.float8_e4m3fn (max 448) or torch.float8_e5m2 (max 57344).
        scale_ub: bound on a row's (group's) max |y| before the scale is taken (vLLM's scale_ub).
        inplace_residual: write h into residual (as fused_add_rms_norm_) instead of a new tensor.
    Returns:
        (q, s), plus h when residual is given (h is residual itself with inplace_residual).
    """
    static = isinstance(scale, torch.Tensor)
    key = _key(x, weight, residual, eps, offset, casting, scale, "static" if static else scale,
               group_size, ue8m0, scale_layout, fp8_dtype, scale_ub, inplace_residual)
    try:
        p = PLANS.get(key) if key is not None else None  # a signature seen before passed the
    except TypeError:  # checks; an unhashable argument: the checks say what is wrong
        key = p = None
    if p is None:
        mode = _check(x, weight, eps, residual, offset, casting, scale, group_size, ue8m0,
                      scale_layout, fp8_dtype, scale_ub, inplace_residual)
        if torch.compiler.is_compiling():
            args = (x, weight, residual, scale if static else None, float(eps), float(offset),
                    casting, mode, int(group_size), bool(ue8m0), scale_layout, fp8_dtype,
                    None if scale_ub is None else float(scale_ub))
            if inplace_residual:
                q, s = torch.ops.rmsnorm_triton.fwd_fp8_(*args)
                h = residual
            else:
                q, s, h = torch.ops.rmsnorm_triton.fwd_fp8(*args)
            s = scale if static else s
            return (q, s) if residual is None else (q, s, h)
        p = _plan(x, weight, residual, eps, offset, casting, mode, group_size, ue8m0,
                  scale_layout, fp8_dtype, scale_ub, inplace_residual, key)
    q, h, s = _run(p, x, weight, residual, scale if static else None, inplace_residual)
    return (q, s) if residual is None else (q, s, h)


def _key(x, weight, residual, eps, offset, casting, scale, *rest):
    """The call's signature (plan.key, with the FP8 arguments); a static scale's dtype, shape
    and device too (a replay skips the checks)."""
    return plan.key(x, weight, residual, eps, offset, casting, "fp8", *rest, (
        scale.dtype, scale.shape, scale.get_device()) if isinstance(scale, torch.Tensor) else None)

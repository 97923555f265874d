"""rms_norm_fp8: RMSNorm (+ residual) with its output quantized to FP8, in one kernel.

The forward kernel's epilogue (kernels/quant.py) quantizes y where rms_norm would store it: x
(and the residual) are read once, q is written at one byte an element beside its scales. y is
exactly rms_norm's output (same casting, rounded to x's dtype) before it is quantized, so the
unfused pipeline `quantize_fp8_ref(rms_norm(x, w, ...))` (reference.py) gives the same bits.

Eager calls run the launch directly; torch.compile sees `torch.ops.rmsnorm_triton.fwd_fp8` (and
`fwd_fp8_` for the residual written in place), whose fake implementations give it the shapes.
Inference only: nothing here records a gradient.
"""

from typing import Optional

import torch

from . import heuristics, launch, ops
from . import kernels as K
from .kernels.quant import LAYOUT_MN_MAJOR, LAYOUT_ROWS, QUANT_GROUP, QUANT_STATIC, QUANT_TOKEN

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
MODES = {"token": QUANT_TOKEN, "group": QUANT_GROUP}
LAYOUTS = {"row": LAYOUT_ROWS, "deepgemm": LAYOUT_MN_MAJOR}
_EMPTY = (0,)


def _check(x, weight, eps, residual, offset, casting, scale, group_size, ue8m0, scale_layout,
           fp8_dtype, scale_ub, inplace_residual):
    """Refuses what the kernel cannot do, naming the argument, its value and what was expected;
    returns the mode ("static", "token" or "group")."""
    ops._validate(x, weight, eps, residual, offset, casting, None, None)
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
    elif scale in MODES:
        mode = scale
    else:
        raise ValueError(f"scale is {scale!r}, expected a one-element float32 tensor (static), "
                         "'token' or 'group'")
    if mode == "group":
        if (isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 16
                or group_size & (group_size - 1)):
            raise ValueError(f"group_size is {group_size!r}, expected a power of two >= 16 "
                             "(128 or 64 as DeepSeek-V3 and DeepGEMM use)")
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
        launch.check_scalar("scale_ub", scale_ub, minimum=0.0)
    if inplace_residual and residual is None:
        raise ValueError("inplace_residual=True needs a residual to write h into")
    return mode


def _check_inplace(x, residual):
    """The residual can take h in place (checked where it runs: addresses are not traced)."""
    if ops._overlap(x, residual):
        raise ValueError("x and residual share memory; inplace_residual needs two separate "
                         "tensors")
    if launch.rows_view(residual, x.shape[-1]).data_ptr() != residual.data_ptr():
        raise ValueError("inplace_residual needs a residual whose rows view as (M, N) with "
                         "unit stride; got a layout that would need a copy")


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


def _impl(x, weight, residual, scale, eps, offset, casting, mode, group_size, ue8m0,
          scale_layout, fp8_dtype, scale_ub, h=None):
    """(q, scales or None for static, h or None); h given: the residual written in place."""
    if h is not None:
        _check_inplace(x, h)
    n = x.shape[-1]
    x2 = launch.rows_view(x, n)
    r2 = launch.rows_view(residual, n) if residual is not None else None
    m = x2.shape[0]
    q = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    s = None if mode == "static" else _scales(m, n, x.shape, mode, group_size, scale_layout,
                                                x.device)
    if residual is not None and h is None:
        h = torch.empty(x.shape, dtype=residual.dtype, device=x.device)
    if m:
        quant = QUANT_STATIC if mode == "static" else MODES[mode]
        forward_fp8(x2, weight, r2, q.view(m, n), h.view(m, n) if h is not None else None,
                    scale if mode == "static" else s, float(eps), float(offset), casting, quant,
                    group_size, bool(ue8m0), LAYOUTS[scale_layout],
                    None if scale_ub is None else float(scale_ub))
    return q, s, h


def forward_fp8(x2, weight, r2, q2, h2, scales, eps, offset, casting, quant, group, ue8m0,
                layout, scale_ub):
    """rms_norm_fwd with its FP8 epilogue on (M, N) rows: the one launch of this op.

    ONE_PASS where the table says so; where it says SPLIT (rows past 32K), the block loop walks
    the row (a per-token scale would need a second meeting of SPLIT's programs). Arguments are
    built by name and launched through Triton's public kernel[grid](...)."""
    weight = launch.dense(weight)
    m, n = x2.shape
    in_dtype = r2.dtype if r2 is not None else x2.dtype
    native = launch.W_NATIVE and launch.native_weight(weight, casting, offset, in_dtype,
                                                      x2.dtype)
    cfg = heuristics.fwd_config(n, x2.dtype, r2 is not None, native)
    sms = heuristics.device_props(x2.device.index).multi_processor_count if x2.is_cuda else 1
    if cfg.one_pass and cfg.block_m > 1 and m < cfg.block_m * sms:  # a few rows (decoding):
        cfg = heuristics.with_rows(cfg, m, sms)
    one_pass = cfg.one_pass
    block_n = cfg.block_n if one_pass else max(cfg.block_n, group)
    pdl = launch.pdl_enabled(x2.device)
    named = dict(
        X=x2, R=r2 if r2 is not None else x2, W=weight if weight is not None else x2, Y=q2,
        H=h2 if h2 is not None else x2, RSTD=x2, PART=x2,
        stride_x=x2.stride(0), stride_r=r2.stride(0) if r2 is not None else 0,
        stride_y=q2.stride(0), stride_h=h2.stride(0) if h2 is not None else 0,
        M=m, N=n, eps=eps, offset=offset, NUM_GROUPS=1, EPOCH=0,
        BLOCK_M=cfg.block_m if one_pass else 1, BLOCK_N=block_n, ONE_PASS=one_pass,
        SPLIT=False, S_POW2=1, PAIRS=False, EARLY=False, HAS_W=weight is not None,
        HAS_R=r2 is not None, STORE_RSTD=False, CASTING=launch.CASTINGS[casting],
        W_FIRST=one_pass and launch.cdiv(m, cfg.block_m) <= launch.W_FIRST_WAVES * sms,
        W_NATIVE=native and one_pass and launch.native_layout(cfg, False), DYNAMIC=False,
        PDL=pdl, QUANT=quant, GROUP=group, UE8M0=ue8m0, SCALE_LAYOUT=layout, SCALE=scales,
        scale_ub=scale_ub)
    grid = (launch.cdiv(m, cfg.block_m) if one_pass else m,)
    opts = {"num_warps": cfg.num_warps}
    if pdl:
        opts["launch_pdl"] = True
    if one_pass and cfg.maxnreg:
        opts["maxnreg"] = cfg.maxnreg
    if x2.is_cuda:
        with torch.cuda.device(x2.device):
            K.rms_norm_fwd[grid](**named, **opts)
    else:
        K.rms_norm_fwd[grid](**named, num_warps=cfg.num_warps)


# ---- torch.library: what torch.compile sees -------------------------------------------------
@torch.library.custom_op("rmsnorm_triton::fwd_fp8", mutates_args=())
def _fp8_op(x: torch.Tensor, weight: Optional[torch.Tensor], residual: Optional[torch.Tensor],
            scale: Optional[torch.Tensor], eps: float, offset: float, casting: str, quant: str,
            group_size: int, ue8m0: bool, scale_layout: str, fp8_dtype: torch.dtype,
            scale_ub: Optional[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, s, h = _impl(x, weight, residual, scale, eps, offset, casting, quant, group_size, ue8m0,
                    scale_layout, fp8_dtype, scale_ub)
    e = x.new_empty(_EMPTY, dtype=torch.float32)
    return q, (s if s is not None else e), (h if h is not None else x.new_empty(_EMPTY))


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
    q, s, _ = _impl(x, weight, residual, scale, eps, offset, casting, quant, group_size, ue8m0,
                    scale_layout, fp8_dtype, scale_ub, h=residual)
    return q, (s if s is not None else x.new_empty(_EMPTY, dtype=torch.float32))


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
        group_size: a power of two >= 16 dividing N (128 default, 64).
        ue8m0: round each dynamic scale up to a power of two (DeepSeek-V3 / DeepGEMM).
        scale_layout: "row", or "deepgemm" (group): (M, N / G) column-major, M padded to a
            multiple of 4, as DeepGEMM's sm90 FP8 GEMM reads it without a copy.
        fp8_dtype: torch.float8_e4m3fn (max 448) or torch.float8_e5m2 (max 57344).
        scale_ub: bound on a row's (group's) max |y| before the scale is taken (vLLM's scale_ub).
        inplace_residual: write h into residual (as fused_add_rms_norm_) instead of a new tensor.
    Returns:
        (q, s), plus h when residual is given (h is residual itself with inplace_residual).
    """
    mode = _check(x, weight, eps, residual, offset, casting, scale, group_size, ue8m0,
                  scale_layout, fp8_dtype, scale_ub, inplace_residual)
    static = scale if mode == "static" else None
    args = (x, weight, residual, static, float(eps), float(offset), casting, mode,
            int(group_size), bool(ue8m0), scale_layout, fp8_dtype,
            None if scale_ub is None else float(scale_ub))
    if torch.compiler.is_compiling():
        if inplace_residual:
            q, s = torch.ops.rmsnorm_triton.fwd_fp8_(*args)
            h = residual
        else:
            q, s, h = torch.ops.rmsnorm_triton.fwd_fp8(*args)
    else:
        with torch.no_grad():
            q, s, h = _impl(*args, h=residual if inplace_residual else None)
    s = scale if mode == "static" else s
    return (q, s) if residual is None else (q, s, h)

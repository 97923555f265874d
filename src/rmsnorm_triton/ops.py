"""rms_norm: argument checks, autograd, and the torch.library op that torch.compile sees.

Eager calls go straight to an autograd.Function: the custom-op dispatcher costs more host time
per call than the kernel launch itself at small M (see benchmarks/results/NOTES.md). Under
torch.compile the same launchers are reached through `torch.ops.rmsnorm_triton.*`, whose fake
implementations let dynamo trace without graph breaks.
"""

import math
from typing import Optional

import torch

from . import launch
from .launch import CASTINGS, check_dtype, check_scalar, check_tensor, rows_view


def _validate(x, weight, eps, residual, offset, casting, out_dtype, residual_dtype):
    check_tensor("x", x)
    if x.dim() == 0:
        raise ValueError("x is a 0-dim tensor, expected at least 1 dim (..., N)")
    n = x.shape[-1]
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
    check_scalar("eps", eps, minimum=0.0)
    check_scalar("offset", offset)
    if casting not in CASTINGS:
        raise ValueError(f"casting is {casting!r}, expected one of {sorted(CASTINGS)}")
    check_dtype("out_dtype", out_dtype)
    check_dtype("residual_dtype", residual_dtype)


def _h_dtype(x, residual, residual_dtype):
    return residual_dtype or (residual.dtype if residual is not None else x.dtype)


def _fwd_impl(x, weight, residual, eps, offset, casting, out_dtype, residual_dtype, store_rstd):
    n = x.shape[-1]
    x2 = rows_view(x, n)
    r2 = rows_view(residual, n) if residual is not None else None
    y, h, rstd = launch.forward(
        x2, weight, r2, float(eps), float(offset), casting, out_dtype or x.dtype,
        _h_dtype(x, residual, residual_dtype), store_rstd)
    if x.dim() == 2:  # a view costs ~3 us of host time: skip it when there is nothing to reshape
        return y, h, rstd
    return y.view(x.shape), (h.view(x.shape) if h is not None else None), rstd


def _bwd_impl(dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype, need_dw):
    n = xin.shape[-1]
    dx, dr, dw = launch.backward(
        rows_view(dy, n), rows_view(xin, n), weight, rstd, float(offset),
        rows_view(dh, n) if dh is not None else None, dx_dtype, dr_dtype, need_dw)
    shape = xin.shape
    return (dx.view(shape) if dx is not None else None,
            dr.view(shape) if dr is not None else None, dw)


class _RMSNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, residual, eps, offset, casting, out_dtype, residual_dtype, ret_h,
                replay=None):
        need_grad = any(ctx.needs_input_grad[:3])
        out = replay(x, weight, residual) if replay is not None else None  # (_remember's)
        if out is not None:
            y, h, rstd = out[:3]
        else:
            y, h, rstd = _fwd_impl(x, weight, residual, eps, offset, casting, out_dtype,
                                   residual_dtype, need_grad)
        if h is None and ret_h:
            h = x.view_as(x) if residual_dtype in (None, x.dtype) else x.to(residual_dtype)
        if need_grad:
            ctx.save_for_backward(h if residual is not None else x, weight, rstd)
        ctx.offset = offset
        ctx.dtypes = (x.dtype, residual.dtype if residual is not None else None)
        ctx.ret_h = ret_h
        return (y, h) if ret_h else y

    @staticmethod
    def backward(ctx, dy, dh=None):
        # Grad mode is on here only under create_graph=True. once_differentiable would then hand
        # back a gradient with no graph when dy needs no grad (e.g. from y.sum()), so a gradient
        # penalty on it would be dropped silently: refuse instead.
        if torch.is_grad_enabled():
            raise RuntimeError("rms_norm has no double backward: its backward cannot run with "
                               "create_graph=True (the gradient would not depend on x or weight)")
        xin, weight, rstd = ctx.saved_tensors
        nx, nw, nr = ctx.needs_input_grad[:3]
        dx, dr, dw = _bwd_impl(dy, dh if ctx.ret_h else None, xin, weight, rstd, ctx.offset,
                               ctx.dtypes[0] if nx else None, ctx.dtypes[1] if nr else None, nw)
        return dx, dw, dr, None, None, None, None, None, None, None


# ---- torch.library: what torch.compile sees -------------------------------------------------
_EMPTY = (0,)


@torch.library.custom_op("rmsnorm_triton::fwd", mutates_args=())
def _fwd_op(x: torch.Tensor, weight: Optional[torch.Tensor], residual: Optional[torch.Tensor],
            eps: float, offset: float, casting: str, out_dtype: Optional[torch.dtype],
            residual_dtype: Optional[torch.dtype]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    y, h, rstd = _fwd_impl(x, weight, residual, eps, offset, casting, out_dtype, residual_dtype, True)
    return y, (h if h is not None else x.new_empty(_EMPTY)), rstd


@_fwd_op.register_fake
def _(x, weight, residual, eps, offset, casting, out_dtype, residual_dtype):
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    m = x.numel() // x.shape[-1] if x.shape[-1] else 0
    h = (x.new_empty(x.shape, dtype=_h_dtype(x, residual, residual_dtype))
         if residual is not None else x.new_empty(_EMPTY))
    return x.new_empty(x.shape, dtype=out_dtype or x.dtype), h, x.new_empty((m,), dtype=acc)


@torch.library.custom_op("rmsnorm_triton::bwd", mutates_args=())
def _bwd_op(dy: torch.Tensor, dh: Optional[torch.Tensor], xin: torch.Tensor,
            weight: Optional[torch.Tensor], rstd: torch.Tensor, offset: float,
            dx_dtype: Optional[torch.dtype], dr_dtype: Optional[torch.dtype],
            need_dw: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dx, dr, dw = _bwd_impl(dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype, need_dw)
    e = xin.new_empty(_EMPTY)
    return (dx if dx is not None else e, dr if dr is not None else e.clone(),
            dw if dw is not None else e.clone())


@_bwd_op.register_fake
def _(dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype, need_dw):
    e = xin.new_empty(_EMPTY)
    return (xin.new_empty(xin.shape, dtype=dx_dtype) if dx_dtype is not None else e,
            xin.new_empty(xin.shape, dtype=dr_dtype) if dr_dtype is not None else e.clone(),
            torch.empty_like(weight) if (need_dw and weight is not None) else e.clone())


def _op_setup(ctx, inputs, output):
    x, weight, residual, eps, offset, casting, out_dtype, residual_dtype = inputs
    _, h, rstd = output
    ctx.save_for_backward(h if residual is not None else x, weight, rstd)
    ctx.offset = offset
    ctx.dtypes = (x.dtype, residual.dtype if residual is not None else None)
    ctx.has_r = residual is not None


def _op_backward(ctx, dy, dh, drstd):
    xin, weight, rstd = ctx.saved_tensors
    nx, nw, nr = ctx.needs_input_grad[:3]
    dx, dr, dw = torch.ops.rmsnorm_triton.bwd(
        dy, dh if ctx.has_r else None, xin, weight, rstd, ctx.offset,
        ctx.dtypes[0] if nx else None, ctx.dtypes[1] if nr else None, bool(nw))
    return (dx if nx else None, dw if nw and weight is not None else None,
            dr if nr else None, None, None, None, None, None)


_fwd_op.register_autograd(_op_backward, setup_context=_op_setup)


def rms_norm(x, weight=None, eps=1e-6, *, residual=None, prenorm=False, offset=0.0,
             casting="llama", out_dtype=None, residual_dtype=None):
    """RMSNorm over the last dim of x, optionally fused with a residual add.

        y = rms_norm(x, w)                          # y = x / sqrt(mean(x**2) + eps) * w
        y, h = rms_norm(x, w, residual=r)           # h = x + r (the new residual), y = norm(h)

    Args:
        x: (..., N) fp32, fp16, bf16 (or fp64, computed in fp64). Rows may be strided.
        weight: (N,) or None. Any of those dtypes, independent of x's.
        eps: added to the mean square, >= 0.
        residual: same shape as x. With it, h = x + residual is normalized and returned.
        prenorm: also return h (h is x itself when there is no residual).
        offset: y = x_hat * (offset + weight); Gemma uses 1.0.
        casting: "llama" (x_hat cast to the input dtype before the weight, as Hugging Face's
            LlamaRMSNorm), "gemma" (all fp32, cast at the end, as GemmaRMSNorm) or "none"
            (rstd, x_hat and the weight rounded to the input dtype; the sum stays fp32).
        out_dtype: y's dtype (default x's). residual_dtype: h's dtype (default residual's).
    Returns:
        y, or (y, h) when residual is given or prenorm=True. Never aliases an input, except
        h with prenorm=True and no residual, which is x itself (as in the unfused module).
    """
    key, replay = _eager(x, weight, residual, eps, offset, casting, prenorm, out_dtype,
                         residual_dtype)
    out = replay(x, weight, residual) if replay is not None else None
    if out is not None:
        return out
    _validate(x, weight, eps, residual, offset, casting, out_dtype, residual_dtype)
    ret_h = residual is not None or bool(prenorm)
    if torch.compiler.is_compiling():
        y, h, _ = torch.ops.rmsnorm_triton.fwd(x, weight, residual, float(eps), float(offset),
                                               casting, out_dtype, residual_dtype)
        return _result(x, y, h if residual is not None else None, ret_h, residual_dtype)
    grad = torch.is_grad_enabled() and (x.requires_grad or _needs_grad(weight)
                                        or _needs_grad(residual))
    if grad:
        out = _RMSNormFn.apply(x, weight, residual, float(eps), float(offset), casting, out_dtype,
                               residual_dtype, ret_h)
    else:  # nothing to differentiate: skip autograd's bookkeeping (a few us per call)
        y, h, _ = _fwd_impl(x, weight, residual, eps, offset, casting, out_dtype, residual_dtype,
                            False)
        out = _result(x, y, h, ret_h, residual_dtype)
    if key is not None:
        _remember(key, grad, x, weight, residual, eps, offset, casting, out_dtype, residual_dtype,
                  ret_h)
    return out


# ---- the eager fast path --------------------------------------------------------------------
# An eager call whose signature (below) passed the checks before goes straight to the launch
# plan that call left (launch._PLANS): no checks, no row views, no second key; one that needs
# autograd goes through _RMSNormFn with that plan. At small M the host's Python is most of a
# call (NOTES.md, items 26, 79 and 88).
_EAGER = {}


def _eager(x, weight, residual, eps, offset, casting, prenorm, out_dtype, residual_dtype):
    """rms_norm's (key, its replay or None); the key ends with whether autograd is needed."""
    try:
        grad = torch.is_grad_enabled() and (x.requires_grad or _needs_grad(weight)
                                            or _needs_grad(residual))
    except AttributeError:  # not a tensor: the checks will say
        return None, None
    return _lookup(x, weight, residual, eps, offset, casting, prenorm, out_dtype, residual_dtype,
                   grad)


def _lookup(x, weight, residual, eps, offset, casting, *rest):
    """(key, its replay or None). The key holds everything the checks and the launch depend on
    but the addresses' high bits: each tensor's type, shape, strides, dtype, device and
    16-byte alignment, the scalars with their types (the offset's sign too), then `rest`.
    (None, None) while traced, or where an argument is not what a key can hold (the full path
    then says what is wrong)."""
    if torch.compiler.is_compiling():
        return None, None
    try:
        key = (type(x), x.shape, x.stride(), x.dtype, x.get_device(), x.data_ptr() & 15,
               _tensor_key(weight), _tensor_key(residual), type(eps), eps, type(offset), offset,
               math.copysign(1.0, offset), casting) + rest
        return key, _EAGER.get(key)
    except (AttributeError, TypeError, RuntimeError):  # not a tensor, not a number, not
        return None, None  # hashable, no data pointer (functorch's wrappers, fake tensors)


def _tensor_key(t):
    if t is None:
        return None
    return type(t), t.shape, t.stride(), t.dtype, t.get_device(), t.data_ptr() & 15


def _plan_of(x, weight, residual, eps, offset, casting, out_dtype, h_dtype, grad, inplace=False):
    """The launch plan the call just made left, where that call made no copy (rows that view
    as (M, N), a unit-stride weight): the plan then takes the caller's tensors as they are."""
    n = x.shape[-1]
    x2 = rows_view(x, n)
    r2 = rows_view(residual, n) if residual is not None else None
    if (x2.data_ptr() != x.data_ptr() or (r2 is not None and r2.data_ptr() != residual.data_ptr())
            or (weight is not None and weight.stride(0) != 1)):
        return None
    return launch.plan_for(x2, weight, r2, float(eps), float(offset), casting, out_dtype,
                           h_dtype, grad, inplace)


def _remember(key, grad, x, weight, residual, eps, offset, casting, out_dtype, residual_dtype,
              ret_h):
    """Binds the signature of an rms_norm call just made to the launch plan it left; grad: it
    needs autograd (the plan stores rstd, _RMSNormFn runs it)."""
    plan = _plan_of(x, weight, residual, eps, offset, casting, out_dtype or x.dtype,
                    _h_dtype(x, residual, residual_dtype), grad)
    if plan is None:
        return
    eps, offset = float(eps), float(offset)
    shape, like = tuple(x.shape), x.is_contiguous()

    def launch_(x, weight, residual):
        return plan(x, weight, residual, shape, like)

    def replay(x, weight, residual):
        out = launch_(x, weight, residual)
        return out and _result(x, out[0], out[1], ret_h, residual_dtype)

    def replay_grad(x, weight, residual):
        return _RMSNormFn.apply(x, weight, residual, eps, offset, casting, out_dtype,
                                residual_dtype, ret_h, launch_)

    _store(key, replay_grad if grad else replay)


def _store(key, replay):
    if len(_EAGER) >= 4096:  # many shapes (serving's varying M): start over
        _EAGER.clear()
    _EAGER[key] = replay


def _result(x, y, h, ret_h, residual_dtype):
    """y, or (y, h); h None (prenorm without a residual) is x itself, in residual_dtype."""
    if not ret_h:
        return y
    if h is None:
        h = x if residual_dtype in (None, x.dtype) else x.to(residual_dtype)
    return y, h


def _needs_grad(t) -> bool:
    return t is not None and t.requires_grad


def fused_add_rms_norm_(x, residual, weight, eps=1e-6, *, offset=0.0, casting="llama"):
    """In place, for inference: residual <- x + residual, then x <- RMSNorm(residual).

    Serving engines' semantics (vLLM's fused_add_rms_norm). x and residual must not overlap;
    both keep their dtypes and layouts; nothing else is written. Returns (x, residual).
    A call whose signature passed before replays its launch (ops._EAGER), its overlap checked.
    """
    key, replay = _lookup(x, weight, residual, eps, offset, casting, "in place")
    if replay is not None and replay(x, weight, residual) is not None:
        return x, residual
    with torch.no_grad():
        _validate(x, weight, eps, residual, offset, casting, None, None)
        if _overlap(x, residual):
            raise ValueError("x and residual share memory; fused_add_rms_norm_ needs two "
                             "separate tensors")
        n = x.shape[-1]
        x2, r2 = rows_view(x, n), rows_view(residual, n)
        if x2.data_ptr() != x.data_ptr() or r2.data_ptr() != residual.data_ptr():
            raise ValueError("fused_add_rms_norm_ needs x and residual with rows of unit stride "
                             "(a layout that views as (M, N)); got a layout that would need a "
                             "copy")
        launch.forward(x2, weight, r2, float(eps), float(offset), casting, x.dtype,
                       residual.dtype, False, y=x2, h=r2)
    plan = _plan_of(x, weight, residual, eps, offset, casting, x.dtype, residual.dtype, False,
                    True) if key is not None else None
    if plan is not None:
        span_x, span_r = _span(x), _span(residual)

        def replay(x, weight, residual):
            a, b = x.data_ptr(), residual.data_ptr()
            if a < b + span_r and b < a + span_x:  # they overlap: the full path refuses
                return None
            return plan(x, weight, residual)

        _store(key, replay)
    return x, residual


def _span(t) -> int:
    """Bytes from t's first element to just past its last (strided rows span past numel)."""
    return (1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride()))) * t.element_size()


def _overlap(a, b) -> bool:
    """True when the address ranges a and b span intersect."""
    if a.numel() == 0 or b.numel() == 0:  # nothing is written; empty tensors may share ptr 0
        return False
    a0, b0 = a.data_ptr(), b.data_ptr()
    return a0 < b0 + _span(b) and b0 < a0 + _span(a)

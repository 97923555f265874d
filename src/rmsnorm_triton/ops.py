"""rms_norm and fused_add_rms_norm_: the public ops, their autograd, the torch.library ops.

A call's signature (plan.key) finds its launch plan (plan.PLANS); the first call of a signature
passes the checks (checks.validate) and makes the plan, and every call runs it. Eager calls go
straight to an autograd.Function: the custom-op dispatcher costs more host time per call than
the launch itself at small M. Under torch.compile the same plans are reached through
`torch.ops.rmsnorm_triton.*`, whose fake implementations let dynamo trace without graph breaks.
"""

from typing import Optional

import torch

from . import plan
from .checks import overlap, span, validate
from .plan import PLANS, FwdPlan


def rms_norm(x, weight=None, eps=1e-6, *, residual=None, prenorm=False, offset=0.0,
             casting="llama", out_dtype=None, residual_dtype=None):
    """RMSNorm over the last dim of x, optionally fused with a residual add.

        y = rms_norm(x, w)                          # y = x / sqrt(mean(x**2) + eps) * w
        y, h = rms_norm(x, w, residual=r)           # h = x + r (the new residual), y = norm(h)

    Args:
        x: (..., N) fp32, fp16, bf16 (or fp64, computed in fp64). Rows may be strided.
        weight: (N,) or None. Any of those dtypes, independent of x's.
        eps: added to the mean square (any finite value, as torch takes).
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
    try:  # (spelled out: this runs on every call, and each function call costs)
        grad = torch.is_grad_enabled() and (
            x.requires_grad or (weight is not None and weight.requires_grad)
            or (residual is not None and residual.requires_grad))
    except AttributeError:  # not a tensor: the checks will say
        grad = False
    key = plan.key(x, weight, residual, eps, offset, casting, prenorm, out_dtype, residual_dtype,
                   grad)
    p = PLANS.get(key) if key is not None else None  # (traced by dynamo: PLANS is not read)
    ret_h = residual is not None or bool(prenorm)
    if p is None:
        validate(x, weight, eps, residual, offset, casting, out_dtype, residual_dtype)
        if torch.compiler.is_compiling():
            y, h, _ = torch.ops.rmsnorm_triton.fwd(x, weight, residual, float(eps), float(offset),
                                                   casting, out_dtype, residual_dtype)
            return _result(x, y, h if residual is not None else None, ret_h, residual_dtype)
        p = plan.remember(key, _forward_plan(x, weight, residual, eps, offset, casting, out_dtype,
                                             residual_dtype, grad))
    if grad:
        return _RMSNormFn.apply(x, weight, residual, p, ret_h, residual_dtype)
    y, h, _ = p(x, weight, residual)
    return _result(x, y, h, ret_h, residual_dtype) if ret_h else y


def _forward_plan(x, weight, residual, eps, offset, casting, out_dtype, residual_dtype,
                  store_rstd):
    return FwdPlan(x, weight, residual, float(eps), float(offset), casting, out_dtype or x.dtype,
                   _h_dtype(x, residual, residual_dtype), store_rstd)


def _h_dtype(x, residual, residual_dtype):
    return residual_dtype or (residual.dtype if residual is not None else x.dtype)


def _result(x, y, h, ret_h, residual_dtype):
    """y, or (y, h); h None (prenorm without a residual) is x itself, in residual_dtype."""
    if not ret_h:
        return y
    if h is None:
        h = x if residual_dtype in (None, x.dtype) else x.to(residual_dtype)
    return y, h


class _RMSNormFn(torch.autograd.Function):
    """rms_norm with autograd, run by the call's forward plan; the backward by a plan kept on it."""

    @staticmethod
    def forward(ctx, x, weight, residual, fwd_plan, ret_h, residual_dtype):
        y, h, rstd = fwd_plan(x, weight, residual)
        if h is None and ret_h:
            h = x.view_as(x) if residual_dtype in (None, x.dtype) else x.to(residual_dtype)
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(h if residual is not None else x, weight, rstd)
        ctx.plan, ctx.ret_h = fwd_plan, ret_h
        ctx.dtypes = (x.dtype, residual.dtype if residual is not None else None)
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
        p = ctx.plan
        dx, dr, dw = p.backward(dy, dh if ctx.ret_h else None, xin, weight, rstd, p.offset,
                                ctx.dtypes[0] if nx else None, ctx.dtypes[1] if nr else None, nw)
        return dx, dw, dr, None, None, None


# ---- torch.library: what torch.compile sees -------------------------------------------------
_EMPTY = (0,)


@torch.library.custom_op("rmsnorm_triton::fwd", mutates_args=())
def _fwd_op(x: torch.Tensor, weight: Optional[torch.Tensor], residual: Optional[torch.Tensor],
            eps: float, offset: float, casting: str, out_dtype: Optional[torch.dtype],
            residual_dtype: Optional[torch.dtype]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    key = plan.key(x, weight, residual, eps, offset, casting, "op", out_dtype, residual_dtype)
    p = PLANS.get(key) or plan.remember(key, _forward_plan(
        x, weight, residual, eps, offset, casting, out_dtype, residual_dtype, True))
    y, h, rstd = p(x, weight, residual)
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
    dx, dr, dw = plan.backward(dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype, need_dw)
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


# ---- in place -------------------------------------------------------------------------------
def fused_add_rms_norm_(x, residual, weight, eps=1e-6, *, offset=0.0, casting="llama"):
    """In place, for inference: residual <- x + residual, then x <- RMSNorm(residual).

    Serving engines' semantics (vLLM's fused_add_rms_norm). x and residual must not overlap;
    both keep their dtypes and layouts; nothing else is written. Returns (x, residual).
    A call whose signature passed before replays its launch plan, its overlap checked.
    """
    key = plan.key(x, weight, residual, eps, offset, casting, "in place")
    p = PLANS.get(key)
    if p is not None:
        a, b = x.data_ptr(), residual.data_ptr()
        if not (a < b + p.spans[1] and b < a + p.spans[0]):  # overlapping: the checks refuse
            p(x, weight, residual)
            return x, residual
    with torch.no_grad():
        validate(x, weight, eps, residual, offset, casting, None, None)
        if overlap(x, residual):
            raise ValueError("x and residual share memory; fused_add_rms_norm_ needs two "
                             "separate tensors")
        p = FwdPlan(x, weight, residual, float(eps), float(offset), casting, x.dtype,
                    residual.dtype, False, inplace=True)
        if p.x_view or p.r_view:
            raise ValueError("fused_add_rms_norm_ needs x and residual with rows of unit stride "
                             "(a layout that views as (M, N)); got a layout that would need a "
                             "copy")
        p.spans = (span(x), span(residual))
        plan.remember(key, p)
        p(x, weight, residual)
    return x, residual

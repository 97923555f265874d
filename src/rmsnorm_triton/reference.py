"""References the tests, the bench and the visualizer compare against.

`rms_norm_ref` is the math in float64. The Hugging Face formulas are kept as they are written in
transformers (models/llama/modeling_llama.py LlamaRMSNorm.forward and
models/gemma/modeling_gemma.py GemmaRMSNorm.forward), so that the tests need no transformers.
"""

import torch


def rms_norm_ref(x, weight=None, eps=1e-6, residual=None, offset=0.0):
    """float64 RMSNorm: returns (y, h) in float64, h = x + residual (or x)."""
    h = x.double() if residual is None else x.double() + residual.double()
    y = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        y = y * (offset + weight.double())
    return y, h


def llama_rms_norm(x, weight, eps=1e-6):
    """Hugging Face LlamaRMSNorm.forward: fp32 statistics, x_hat cast back, then the weight."""
    input_dtype = x.dtype
    hidden = x.to(torch.float32)
    variance = hidden.pow(2).mean(-1, keepdim=True)
    hidden = hidden * torch.rsqrt(variance + eps)
    return weight * hidden.to(input_dtype)


def gemma_rms_norm(x, weight, eps=1e-6):
    """Hugging Face GemmaRMSNorm.forward: everything in fp32, (1 + w), cast at the end."""
    out = x.float()
    out = out * torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + eps)
    out = out * (1.0 + weight.float())
    return out.type_as(x)


# ---- FP8 quantization of y (kernels/quant.py has the formulas) -------------------------------
def fp8_min_scale(fp8_dtype) -> float:
    """The smallest dynamic scale, 1 / (FP8_MAX * 512) as vLLM's min_scaling_factor: a row of
    zeros gets it (and zeros), never a scale of 0 and then inf or NaN."""
    return 1.0 / (torch.finfo(fp8_dtype).max * 512.0)


def ue8m0_ceil(s):
    """s (> 0, or NaN / inf) rounded up to a power of two, exactly: a mantissa of 1.0 is kept,
    any other carries. (torch.pow(2, ceil(log2(s))) rounds log2 first and misses scales within
    2^-23 above a power of two.)"""
    m, e = torch.frexp(s)  # s = m * 2^e, m in [0.5, 1)
    up = torch.ldexp(torch.ones_like(s), torch.where(m == 0.5, e - 1, e))
    return torch.where(torch.isfinite(s), up, s)


def quantize_fp8_ref(y, scale="token", group_size=128, ue8m0=False, fp8_dtype=torch.float8_e4m3fn,
                     scale_ub=None):
    """y (..., N) quantized as rms_norm_fp8 does, in torch: (q, s).

    scale: a one-element fp32 tensor (static), "token" (s of shape (..., 1)) or "group" (s of
    shape (..., N / group_size)). s = max(min(amax, scale_ub) / FP8_MAX, fp8_min_scale), rounded
    up to a power of two with ue8m0; q = fp8(clamp(y * (1 / s), -FP8_MAX, FP8_MAX)), NaN kept.
    """
    lim = torch.finfo(fp8_dtype).max
    y = y.float()
    if isinstance(scale, torch.Tensor):
        s = scale.float().reshape(())
        inv = torch.reciprocal(s)
    else:
        shape = y.shape
        if scale == "group":
            y = y.reshape(*shape[:-1], shape[-1] // group_size, group_size)
        amax = y.abs().amax(-1, keepdim=True)
        amax = torch.where(torch.isnan(y).any(-1, keepdim=True), float("nan"), amax)
        if scale_ub is not None:
            amax = torch.clamp(amax, max=scale_ub)
        s = torch.clamp(amax / lim, min=fp8_min_scale(fp8_dtype))
        if ue8m0:
            s = ue8m0_ceil(s)
        inv = torch.reciprocal(s)
    q = torch.clamp(y * inv, -lim, lim).to(fp8_dtype)
    if isinstance(scale, torch.Tensor):
        return q, scale
    if scale == "group":
        return q.reshape(shape), s.reshape(*shape[:-1], shape[-1] // group_size)
    return q, s


def gated_rms_norm_ref(x, z, weight=None, eps=1e-6, norm_before_gate=True, activation="silu",
                       group_size=None):
    """float64 gated RMSNorm, s = act(z) (silu or sigmoid), per group of group_size channels:
    norm_before_gate (Qwen3-Next's Qwen3NextRMSNormGated, FLA's FusedRMSNormGated, vLLM's
    RMSNormGated(norm_before_gate=True)): y = rmsnorm(x) * w * s; otherwise (Mamba2's
    MambaRMSNormGated, vLLM's default): y = rmsnorm(x * s) * w. z None: no gate."""
    u = x.double()
    if z is not None:
        zd = z.double()
        s = zd * torch.sigmoid(zd) if activation == "silu" else torch.sigmoid(zd)
        if not norm_before_gate:
            u = u * s
    n = u.shape[-1]
    g = u.unflatten(-1, (n // (group_size or n), group_size or n))
    y = (g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + eps)).flatten(-2)
    if weight is not None:
        y = y * weight.double()
    if z is not None and norm_before_gate:
        y = y * s
    return y

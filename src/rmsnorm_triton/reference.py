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

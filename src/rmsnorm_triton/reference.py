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

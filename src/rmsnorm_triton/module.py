"""RMSNorm: a drop-in torch.nn.RMSNorm whose forward runs this library's kernel; RMSNormGated."""

import math

import torch

from .gated import rms_norm_gated
from .ops import rms_norm


class RMSNorm(torch.nn.RMSNorm):
    """torch.nn.RMSNorm with the same constructor and state_dict; forward runs the Triton kernel.

    normalized_shape is an int or a sequence of trailing dims, as for torch.nn.RMSNorm: those
    dims form one row of N = prod(normalized_shape) elements, and the weight keeps its shape
    normalized_shape. Extra keyword arguments: offset (y = x_hat * (offset + w); Gemma: 1.0) and
    casting ("llama", "gemma" or "none"; see rms_norm).
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None, *, offset=0.0, casting="llama"):
        super().__init__(normalized_shape, eps, elementwise_affine, device=device, dtype=dtype)
        self.offset = float(offset)
        self.casting = casting

    def forward(self, x, residual=None):
        shape = self.normalized_shape
        if not shape:
            raise ValueError("normalized_shape is (), expected at least one dim, as torch's")
        if x.dim() < len(shape) or tuple(x.shape[-len(shape):]) != shape:
            raise ValueError(f"x has shape {tuple(x.shape)}, expected its trailing dims to be "
                             f"normalized_shape {shape}")
        eps = self.eps
        if eps is None:  # what torch.nn.RMSNorm computes with (ATen's rms_norm): the eps of its
            # compute type, fp32 for fp16/bf16 input, not finfo(x.dtype).eps as its docs say
            eps = torch.finfo(torch.float64 if x.dtype == torch.float64 else torch.float32).eps
        kw = dict(residual=residual, offset=self.offset, casting=self.casting)
        if len(shape) == 1:  # the rows are x's own last dim: no reshapes (each costs host time)
            return rms_norm(x, self.weight, eps, **kw)
        rows = (*x.shape[:x.dim() - len(shape)], math.prod(shape))
        if residual is not None:
            if residual.shape != x.shape:  # before the reshape, which would hide the mismatch
                raise ValueError(f"residual has shape {tuple(residual.shape)}, expected "
                                 f"{tuple(x.shape)} (the shape of x)")
            kw["residual"] = residual.reshape(rows)
        w = self.weight.reshape(-1) if self.weight is not None else None
        out = rms_norm(x.reshape(rows), w, eps, **kw)
        if residual is not None:
            return out[0].reshape(x.shape), out[1].reshape(x.shape)
        return out.reshape(x.shape)

    def extra_repr(self):
        return super().extra_repr() + f", offset={self.offset}, casting={self.casting!r}"


class RMSNormGated(torch.nn.Module):
    """Gated RMSNorm over the last dim (rms_norm_gated): forward(x, z=None).

    norm_before_gate=True: y = rmsnorm(x) * w * act(z) (Qwen3-Next, FLA); False: y =
    rmsnorm(x * act(z)) * w (Mamba2). group_size normalizes within groups of that many
    channels (None: the whole row). activation "silu" or "sigmoid"; casting as in rms_norm.
    """

    def __init__(self, hidden_size, eps=1e-6, *, norm_before_gate=True, activation="silu",
                 group_size=None, casting="llama", device=None, dtype=None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(hidden_size, device=device, dtype=dtype))
        self.eps, self.norm_before_gate, self.activation = eps, norm_before_gate, activation
        self.group_size, self.casting = group_size, casting

    def forward(self, x, z=None):
        return rms_norm_gated(x, z, self.weight, self.eps, norm_before_gate=self.norm_before_gate,
                              activation=self.activation, group_size=self.group_size,
                              casting=self.casting)

    def extra_repr(self):
        return (f"{self.weight.shape[0]}, eps={self.eps}, norm_before_gate="
                f"{self.norm_before_gate}, activation={self.activation!r}, group_size="
                f"{self.group_size}, casting={self.casting!r}")

"""RMSNorm: a drop-in torch.nn.RMSNorm whose forward runs this library's kernel."""

import torch

from .ops import rms_norm


class RMSNorm(torch.nn.RMSNorm):
    """torch.nn.RMSNorm with the same constructor and state_dict; forward runs the Triton kernel.

    Extra keyword arguments: offset (y = x_hat * (offset + w); Gemma: 1.0) and casting
    ("llama", "gemma" or "none"; see rms_norm). normalized_shape must be one dim: the kernel
    normalizes over the last dim only.
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None, *, offset=0.0, casting="llama"):
        super().__init__(normalized_shape, eps, elementwise_affine, device=device, dtype=dtype)
        if len(self.normalized_shape) != 1:
            raise ValueError(f"normalized_shape is {tuple(self.normalized_shape)}, expected one "
                             "dim (N,): rmsnorm_triton normalizes over the last dim only")
        self.offset = float(offset)
        self.casting = casting

    def forward(self, x, residual=None):
        if x.shape[-1:] != self.normalized_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}, expected a last dim of "
                             f"{self.normalized_shape[0]} (normalized_shape)")
        eps = self.eps
        if eps is None:  # what torch.nn.RMSNorm computes with (ATen's rms_norm): the eps of its
            # compute type, fp32 for fp16/bf16 input, not finfo(x.dtype).eps as its docs say
            eps = torch.finfo(torch.float64 if x.dtype == torch.float64 else torch.float32).eps
        return rms_norm(x, self.weight, eps, residual=residual, offset=self.offset,
                        casting=self.casting)

    def extra_repr(self):
        return super().extra_repr() + f", offset={self.offset}, casting={self.casting!r}"

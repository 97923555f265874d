"""Tolerances shared by the tests, `rmsnorm-triton check`, the bench and the visualizer.

One table: an output passes when |y - ref| <= rel * |ref| + abs elementwise, ref in float64.
fp32: 1e-5 relative. fp16/bf16: two roundings of the dtype (unit roundoff u = 2^-11, 2^-8):
x_hat is rounded to the input dtype, then x_hat * w is rounded again (Llama casting), so the
bound is 2u * |ref|, plus 2u * (smallest normal) for results in the subnormal range.
"""

import torch

TOLERANCE = {  # dtype: (rel, abs)
    torch.float64: (1e-12, 1e-300),
    torch.float32: (1e-5, 1e-30),
    torch.float16: (2 * 2.0**-11, 2 * 2.0**-11 * 2.0**-14),
    torch.bfloat16: (2 * 2.0**-8, 2 * 2.0**-8 * 2.0**-126),
}


def max_scaled_error(out: torch.Tensor, ref: torch.Tensor, dtype=None, grad=False,
                     weight=None) -> float:
    """max over elements of |out - ref| / (rel * |ref| + abs): <= 1 passes. NaN never passes.
    Computed on out's device (the bench checks 2^26 elements on the GPU; the CPU takes seconds).

    grad=True measures a gradient against rel * (|ref| + rms(ref)): dx is the difference of two
    terms of similar size, so where they cancel, |dx| says nothing of the rounding the terms
    carry, and an elementwise relative error there grows without bound for any correct code.

    weight: y's weight (llama casting). x_hat, rounded to the 16-bit dtype before the weight,
    can be subnormal; half its step, times |w|, then adds to y's own rounding: the absolute term
    becomes abs * max(1, (1 + |w|) / 2). (Hugging Face's own LlamaRMSNorm in torch is 1.04x the
    plain bound on 2^27 fp16 elements of N(0, 1) with a N(0, 1) weight.)
    """
    rel, abs_ = TOLERANCE[dtype or out.dtype]
    if weight is not None:
        abs_ = abs_ * torch.clamp((1 + weight.to(out.device, torch.float64).abs()) / 2, min=1)
    if out.shape != ref.shape:
        raise AssertionError(f"shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    if out.numel() == 0:
        return 0.0
    out, ref = out.double(), ref.to(out.device, torch.float64)
    scale = ref.abs()
    if grad:
        finite = ref[torch.isfinite(ref)]
        scale = scale + (finite.pow(2).mean().sqrt() if finite.numel() else 0.0)
    err = (out - ref).abs() / (rel * scale + abs_)
    same = (torch.isnan(out) & torch.isnan(ref)) | (torch.isinf(out) & (out == ref))
    err = torch.where(same, torch.zeros_like(err), err)
    return torch.nan_to_num(err, nan=float("inf")).max().item()


def normwise_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64: the benchmarks' gradient check (an elementwise
    relative error is meaningless where dx cancels to nearly zero)."""
    ref = ref.to(out.device, torch.float64)
    return ((out.double() - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def assert_close(out, ref, dtype=None, what="output"):
    e = max_scaled_error(out, ref, dtype)
    assert e <= 1.0, f"{what}: error {e:.3g}x the {dtype or out.dtype} tolerance"

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


def max_scaled_error(out: torch.Tensor, ref: torch.Tensor, dtype=None) -> float:
    """max over elements of |out - ref| / (rel * |ref| + abs): <= 1 passes. NaN never passes."""
    rel, abs_ = TOLERANCE[dtype or out.dtype]
    ref = ref.double().cpu()
    out = out.double().cpu()
    if out.shape != ref.shape:
        raise AssertionError(f"shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    if out.numel() == 0:
        return 0.0
    same_nan = torch.isnan(out) & torch.isnan(ref)
    same_inf = torch.isinf(out) & (out == ref)
    err = (out - ref).abs() / (rel * ref.abs() + abs_)
    err = torch.where(same_nan | same_inf, torch.zeros_like(err), err)
    err = torch.nan_to_num(err, nan=float("inf"))
    return err.max().item()


def assert_close(out, ref, dtype=None, what="output"):
    e = max_scaled_error(out, ref, dtype)
    assert e <= 1.0, f"{what}: error {e:.3g}x the {dtype or out.dtype} tolerance"

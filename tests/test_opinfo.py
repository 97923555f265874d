"""PyTorch's own OpInfo samples for nn.functional.rms_norm, through rmsnorm_triton.RMSNorm.

Each sample (input, normalized_shape, weight, eps) builds our module, loaded with the sample's
weight through torch.nn.RMSNorm's state_dict; its output and gradients are compared with torch's
own F.rms_norm computed in float64, within the dtype's tolerances.
"""

import math
import sys
import types
import unittest

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICES, FLOATS, assert_grad_close, reference_grads
from rmsnorm_triton import RMSNorm
from rmsnorm_triton.testing import assert_close

try:
    import expecttest  # noqa: F401
except ImportError:  # torch's test utilities subclass its TestCase; nothing here runs it
    sys.modules["expecttest"] = types.SimpleNamespace(TestCase=unittest.TestCase, ACCEPT=False)
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402

OP = next(op for op in op_db if op.name == "nn.functional.rms_norm")


def _sample_id(dtype, i, s):
    eps = s.kwargs.get("eps")
    return (f"{str(dtype)[6:]}-{i}-x{tuple(s.input.shape)}-ns{tuple(s.args[0])}"
            f"-{'w' if len(s.args) > 1 else 'nw'}-eps{eps}")


SAMPLES = [(dtype, i, s) for dtype in FLOATS
           for i, s in enumerate(OP.sample_inputs("cpu", dtype, requires_grad=True))]


def _param(dtype, i, s):
    return pytest.param(dtype, s, id=_sample_id(dtype, i, s))


def test_the_samples_cover_several_normalized_dims():
    assert len(SAMPLES) >= 3 * 6
    assert any(len(s.args[0]) > 1 for _, _, s in SAMPLES)
    assert any(len(s.args) == 1 or s.args[1] is None for _, _, s in SAMPLES)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,sample", [_param(*p) for p in SAMPLES])
def test_opinfo_sample(device, gen, dtype, sample):
    shape = tuple(sample.args[0])
    weight = sample.args[1] if len(sample.args) > 1 else None
    eps = sample.kwargs.get("eps")
    theirs = torch.nn.RMSNorm(shape, eps=eps, elementwise_affine=weight is not None,
                              device=device, dtype=dtype)
    if weight is not None:
        with torch.no_grad():
            theirs.weight.copy_(weight)
    ours = RMSNorm(shape, eps=eps, elementwise_affine=weight is not None, device=device,
                   dtype=dtype)
    ours.load_state_dict(theirs.state_dict(), strict=True)

    x = sample.input.detach().to(device).requires_grad_()
    y = ours(x)
    # torch in float64, with the eps its fp32 compute type takes for eps=None
    eff_eps = eps if eps is not None else torch.finfo(torch.float32).eps
    x64 = sample.input.detach().double().requires_grad_()
    w64 = weight.detach().double().requires_grad_() if weight is not None else None
    y64 = F.rms_norm(x64, shape, w64, eff_eps)
    assert y.dtype == theirs(x).dtype and y.shape == y64.shape
    assert_close(y, y64, what="y")

    dy = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(dtype)
    y.backward(dy.to(device))
    grads = torch.autograd.grad(y64, [x64] + ([w64] if w64 is not None else []), dy.double())
    rows = x.shape[:x.dim() - len(shape)] + (math.prod(shape),)
    w_row = weight.detach().reshape(-1) if weight is not None else None
    _, _, mag_dx, mag_dw = reference_grads(x64.detach().reshape(rows), w_row, dy.reshape(rows),
                                           eps=eff_eps)
    assert_grad_close(x.grad, grads[0], mag_dx.reshape(x.shape), what="dx")
    if weight is not None:
        assert ours.weight.grad.shape == shape
        assert_grad_close(ours.weight.grad, grads[1], mag_dw.reshape(shape), what="dw")

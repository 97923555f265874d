"""rmsnorm_triton.RMSNorm as a drop-in torch.nn.RMSNorm (issue 3)."""

import pytest
import torch

from conftest import FLOATS, assert_grad_close, randn, reference_grads
from rmsnorm_triton import RMSNorm
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import assert_close


def pair(n, device, gen, dtype=torch.float32, **kw):
    """A torch.nn.RMSNorm with a random weight, and ours loaded from its state_dict."""
    theirs = torch.nn.RMSNorm(n, device=device, dtype=dtype, **kw)
    if theirs.weight is not None:
        with torch.no_grad():
            theirs.weight.copy_(randn((n,), dtype, device, gen))
    ours = RMSNorm(n, device=device, dtype=dtype, **kw)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


# torch.nn.RMSNorm documents eps=None as torch.finfo(x.dtype).eps, but computes with the eps of
# its fp32 (fp64) compute type; small inputs (mean square ~1e-8) make the eps visible.
@pytest.mark.parametrize("scale", [1.0, 1e-4])
@pytest.mark.parametrize("eps", [None, 1e-5])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_matches_torch_module(device, gen, dtype, affine, eps, scale):
    n = 1000
    theirs, ours = pair(n, device, gen, dtype, eps=eps, elementwise_affine=affine)
    x = randn((2, 3, n), dtype, device, gen, scale=scale)
    xt, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    yt, yo = theirs(xt), ours(xo)
    assert yo.dtype == yt.dtype and yo.shape == yt.shape
    # both against float64 with torch's effective eps, then against each other
    eff_eps = eps if eps is not None else torch.finfo(
        torch.float64 if dtype == torch.float64 else torch.float32).eps
    w = theirs.weight.detach() if affine else None
    ref = rms_norm_ref(x, w, eff_eps)[0]
    assert_close(yt, ref, what="torch.nn.RMSNorm")  # the reference is right about torch
    assert_close(yo, ref, what="rmsnorm_triton.RMSNorm")
    dy = randn(x.shape, dtype, device, gen)
    yt.backward(dy)
    yo.backward(dy)
    ref_dx, ref_dw, mag_dx, mag_dw = reference_grads(x, w, dy, eps=eff_eps)
    assert_grad_close(xo.grad, ref_dx, mag_dx, what="dx")
    if affine:
        assert_grad_close(ours.weight.grad, ref_dw, mag_dw, what="dw")
        assert ours.weight.grad.dtype == theirs.weight.grad.dtype


def test_state_dict_round_trips(device, gen):
    n = 127
    theirs, ours = pair(n, device, gen)
    assert ours.state_dict().keys() == theirs.state_dict().keys() == {"weight"}
    assert torch.equal(ours.weight, theirs.weight)
    # ours -> torch's, strict
    with torch.no_grad():
        ours.weight.copy_(randn((n,), torch.float32, device, gen))
    back = torch.nn.RMSNorm(n, device=device)
    back.load_state_dict(ours.state_dict(), strict=True)
    assert torch.equal(back.weight, ours.weight)
    x = randn((4, n), torch.float32, device, gen)
    assert_close(ours(x), back(x), what="after loading ours into torch.nn.RMSNorm")
    # no weight on either side
    a, b = torch.nn.RMSNorm(n, elementwise_affine=False), RMSNorm(n, elementwise_affine=False)
    assert a.state_dict().keys() == b.state_dict().keys() == set()
    b.load_state_dict(a.state_dict(), strict=True)
    a.load_state_dict(b.state_dict(), strict=True)


def test_constructor_matches_torch(device):
    for args, kw in [((64,), {}), (([64],), {"eps": 1e-5}), ((torch.Size([64]),), {}),
                     ((64,), {"elementwise_affine": False}),
                     ((64,), {"dtype": torch.bfloat16, "device": device})]:
        a, b = torch.nn.RMSNorm(*args, **kw), RMSNorm(*args, **kw)
        assert isinstance(b, torch.nn.RMSNorm)
        assert (b.normalized_shape, b.eps, b.elementwise_affine) == (
            a.normalized_shape, a.eps, a.elementwise_affine)
        if a.weight is None:
            assert b.weight is None
        else:
            assert (b.weight.dtype, b.weight.device, b.weight.shape) == (
                a.weight.dtype, a.weight.device, a.weight.shape)
            assert torch.equal(b.weight, a.weight)  # ones: torch's own init


def test_multi_dim_normalized_shape_fails_clearly():
    with pytest.raises(ValueError, match=r"normalized_shape is \(2, 64\), expected one dim"):
        RMSNorm((2, 64))


def test_offset_and_casting_options(device, gen):
    m = RMSNorm(127, eps=1e-6, device=device, dtype=torch.bfloat16, offset=1.0, casting="gemma")
    with torch.no_grad():
        m.weight.copy_(randn((127,), torch.bfloat16, device, gen))
    x = randn((3, 127), torch.bfloat16, device, gen)
    r = randn((3, 127), torch.bfloat16, device, gen)
    y, h = m(x, residual=r)
    h_in = (x.float() + r.float()).bfloat16()
    assert torch.equal(h, h_in)
    assert_close(y, rms_norm_ref(h_in, m.weight.detach(), 1e-6, offset=1.0)[0])
    assert "offset=1.0" in repr(m) and "casting='gemma'" in repr(m)

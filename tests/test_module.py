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


# Several trailing dims: one row of prod(normalized_shape) elements, the weight kept in its shape.
# x strided in each way a view can be: transposed lead dims, a sliced normalized dim, a step.
LAYOUTS = {
    "contiguous": lambda x: x,
    "lead transposed": lambda x: x.transpose(0, 1),
    "normalized dim sliced": lambda x: x[..., 1:, :],
    "stepped": lambda x: x[::2],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("shape", [(2, 3), [3, 5, 7], torch.Size([4, 33])], ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_several_normalized_dims(device, gen, dtype, shape, layout):
    full = tuple(shape)
    if layout == "normalized dim sliced":  # x's dim -2 is one longer, then sliced back
        full = full[:-2] + (full[-2] + 1,) + full[-1:]
    theirs = torch.nn.RMSNorm(shape, device=device, dtype=dtype)
    with torch.no_grad():
        theirs.weight.copy_(randn(tuple(shape), dtype, device, gen))
    ours = RMSNorm(shape, device=device, dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    x = LAYOUTS[layout](randn((4, 3) + full, dtype, device, gen))
    assert x.shape[-len(shape):] == tuple(shape)
    x = x.requires_grad_()
    y = ours(x)
    assert y.shape == x.shape and y.dtype == theirs(x).dtype
    eps = torch.finfo(torch.float32).eps
    rows = x.shape[:x.dim() - len(shape)] + (-1,)
    w = theirs.weight.detach()
    ref = rms_norm_ref(x.detach().reshape(rows), w.reshape(-1), eps)[0].reshape(x.shape)
    assert_close(y, ref, what=f"normalized_shape {tuple(shape)}, {layout}")
    dy = randn(x.shape, dtype, device, gen)
    y.backward(dy)
    ref_dx, ref_dw, mag_dx, mag_dw = reference_grads(x.reshape(rows), w.reshape(-1),
                                                     dy.reshape(rows), eps=eps)
    assert_grad_close(x.grad, ref_dx.reshape(x.shape), mag_dx.reshape(x.shape), what="dx")
    assert ours.weight.grad.shape == tuple(shape)
    assert_grad_close(ours.weight.grad, ref_dw.reshape(shape), mag_dw.reshape(shape), what="dw")


@pytest.mark.parametrize("affine", [True, False])
def test_several_normalized_dims_with_a_residual(device, gen, affine):
    shape = (3, 43)
    m = RMSNorm(shape, eps=1e-5, elementwise_affine=affine, device=device, dtype=torch.bfloat16)
    if affine:
        with torch.no_grad():
            m.weight.copy_(randn(shape, torch.bfloat16, device, gen))
    x = randn((2, 5) + shape, torch.bfloat16, device, gen).transpose(0, 1)
    r = randn((5, 2) + shape, torch.bfloat16, device, gen)
    y, h = m(x, residual=r)
    h_in = (x.float() + r.float()).bfloat16()
    assert h.shape == y.shape == x.shape and torch.equal(h, h_in)
    w = m.weight.detach().reshape(-1) if affine else None
    ref = rms_norm_ref(h_in.reshape(5, 2, -1), w, 1e-5)[0].reshape(x.shape)
    assert_close(y, ref, what="y")


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 8)])
def test_state_dict_round_trips_with_several_dims(device, gen, shape):
    theirs = torch.nn.RMSNorm(shape, device=device)
    with torch.no_grad():
        theirs.weight.copy_(randn(shape, torch.float32, device, gen))
    ours = RMSNorm(shape, device=device)
    ours.load_state_dict(theirs.state_dict(), strict=True)  # torch's -> ours
    assert ours.weight.shape == theirs.weight.shape and torch.equal(ours.weight, theirs.weight)
    with torch.no_grad():
        ours.weight.copy_(randn(shape, torch.float32, device, gen))
    back = torch.nn.RMSNorm(shape, device=device)
    back.load_state_dict(ours.state_dict(), strict=True)  # ours -> torch's
    assert torch.equal(back.weight, ours.weight)
    x = randn((4,) + shape, torch.float32, device, gen)
    assert_close(ours(x), back(x), what="after loading ours into torch.nn.RMSNorm")


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


def test_several_normalized_dims_compile_in_one_graph(device, gen):
    """torch.compile(fullgraph=True) takes the reshapes and the op without a graph break."""
    torch._dynamo.reset()
    m = RMSNorm((4, 33), eps=1e-5, device=device)
    with torch.no_grad():
        m.weight.copy_(randn((4, 33), torch.float32, device, gen))
    x = randn((3, 4, 33), torch.float32, device, gen).requires_grad_()
    y = torch.compile(m, fullgraph=True)(x)
    assert torch.equal(y, m(x))
    y.backward(torch.ones_like(y))
    assert x.grad.shape == x.shape and m.weight.grad.shape == (4, 33)
    torch._dynamo.reset()

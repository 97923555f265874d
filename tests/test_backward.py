"""Backward (issue 3): gradcheck in float64, dx and dw against float64 autograd of the reference.

Gradient bounds: conftest.assert_grad_close, the TOLERANCE row of the gradient's dtype applied
to |ref| + the size of the terms that cancel in it. Outputs are allocated NaN-poisoned.
"""

import pytest
import torch

from conftest import FLOATS, LONG_BWD, randn, reference_grads, assert_grad_close, shares_memory
from rmsnorm_triton import plan, rms_norm, tables
from rmsnorm_triton.reference import rms_norm_ref

pytestmark = pytest.mark.usefixtures("poison")

SHAPES = [  # the backward loops past tables.MAX_ONE_PASS_BWD (8192 today)
    (300, 1),
    (37, 3),
    (2, 5, 127),  # 3-D
    (2, 1, 3, 128),  # 4-D
    (5, 1000),
    (3, 4097),
    (2, 8193),
    (1, 65537),
]


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_grid_covers_both_paths(dtype):
    paths = {tables.bwd_config(s[-1], dtype).one_pass for s in SHAPES}
    assert paths == {True, False}, "SHAPES must hold one-pass and looping rows for every dtype"


def run_backward(x, w, dy, **kw):
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_() if w is not None else None
    y = rms_norm(x, w, **kw)
    y.backward(dy)
    return y, x.grad, (w.grad if w is not None else None)


def check_grads(x, w, dy, dx, dw, eps=1e-6, offset=0.0, dh=None):
    ref_dx, ref_dw, mag_dx, mag_dw = reference_grads(x, w, dy, dh, eps, offset)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    assert_grad_close(dx, ref_dx, mag_dx, what="dx")
    if w is not None:
        assert dw.dtype == w.dtype and dw.shape == w.shape
        assert_grad_close(dw, ref_dw, mag_dw, what="dw")


# ---- gradcheck --------------------------------------------------------------------------------
GRADCHECK = [  # (shape, weight, residual, prenorm, offset)
    ((3, 5), True, False, False, 0.0),
    ((3, 5), False, False, False, 0.0),
    ((2, 1), True, False, False, 0.0),
    ((2, 3, 7), True, True, False, 0.0),
    ((4, 6), True, True, True, 1.0),
    ((4, 6), True, False, True, 0.5),
    ((3, 4), False, True, True, 0.0),
]


@pytest.mark.parametrize("shape,with_w,with_r,prenorm,offset", GRADCHECK, ids=str)
def test_gradcheck_float64(device, gen, shape, with_w, with_r, prenorm, offset):
    x = randn(shape, torch.float64, device, gen).requires_grad_()
    inputs = [x]
    if with_w:
        inputs.append(randn(shape[-1:], torch.float64, device, gen).requires_grad_())
    if with_r:
        inputs.append(randn(shape, torch.float64, device, gen).requires_grad_())

    def f(x, *rest):
        w = rest[0] if with_w else None
        r = rest[-1] if with_r else None
        return rms_norm(x, w, 1e-6, residual=r, prenorm=prenorm, offset=offset)

    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("n", [1000, 16385])  # fp64 rows loop in both directions
def test_gradcheck_float64_long_rows(device, gen, n):
    x = randn((2, n), torch.float64, device, gen).requires_grad_()
    w = randn((n,), torch.float64, device, gen).requires_grad_()
    r = randn((2, n), torch.float64, device, gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, r: rms_norm(x, w, residual=r, prenorm=True),
                                    (x, w, r), fast_mode=True)


# ---- against float64 autograd -----------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("wkind", ["same", "fp32", None])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_grads_match_float64(device, gen, dtype, wkind, shape):
    x = randn(shape, dtype, device, gen)
    w = None if wkind is None else randn(shape[-1:], dtype if wkind == "same" else torch.float32,
                                          device, gen)
    dy = randn(shape, dtype, device, gen)
    dy_before = dy.clone()
    _, dx, dw = run_backward(x, w, dy)
    check_grads(x, w, dy, dx, dw)
    assert torch.equal(dy, dy_before), "backward wrote into dy"
    for g in (dx, dw):
        assert not shares_memory(g, dy) and not shares_memory(g, x)
    assert not shares_memory(dx, dw)


@pytest.mark.parametrize("n", [127, LONG_BWD])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_strided_x_and_dy(device, gen, dtype, n):
    # x and dy are slices of wider buffers whose other columns are NaN
    def strided(m):
        wide = torch.full((m, n + 7), float("nan"), dtype=dtype, device=device)
        wide[:, :n] = randn((m, n), dtype, device, gen)
        return wide[:, :n]

    x, dy = strided(3), strided(3)
    w = randn((n,), dtype, device, gen)
    xl = x.detach().requires_grad_()  # a leaf that keeps x's strides
    wl = w.detach().requires_grad_()
    rms_norm(xl, wl).backward(dy)
    fwd = plan.PLANS[plan.key(xl, wl, None, 1e-6, 0.0, "llama", False, None, None, True)]
    bwd = fwd.bwd[plan.bwd_key(dy, None, dtype, None, True)]
    seen = [bwd.template[plan.BWD.index[s]] for s in ("stride_dy", "stride_x")]
    assert seen == [n + 7, n + 7], f"strided rows were copied: row strides {seen}"
    check_grads(x, w, dy, xl.grad, wl.grad)


@pytest.mark.parametrize("n", [127, LONG_BWD])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_transposed_x_and_dy(device, gen, poison, dtype, n):
    """x and dy 2-D with a last stride that is not 1 (views of transposed buffers): each is
    read as the values it holds, by the first call and by the replays after it."""
    w = randn((n,), dtype, device, gen)
    for _ in range(3):
        x = randn((n, 3), dtype, device, gen).t()
        dy = randn((n, 3), dtype, device, gen).t()
        assert x.stride(-1) != 1 and dy.stride(-1) != 1
        _, dx, dw = run_backward(x, w, dy)
        check_grads(x, w, dy, dx, dw)


@pytest.mark.parametrize("n", [127, LONG_BWD])
def test_broadcast_dy(device, gen, n):
    # the gradient of (y * v).sum() with v of shape (N,) arrives as v expanded: row stride 0
    x = randn((4, n), torch.float32, device, gen)
    w = randn((n,), torch.float32, device, gen)
    dy = randn((n,), torch.float32, device, gen).expand(4, n)
    _, dx, dw = run_backward(x, w, dy)
    check_grads(x, w, dy, dx, dw)


@pytest.mark.parametrize("offset", [0.0, 1.0])
@pytest.mark.parametrize("n", [127, LONG_BWD])
def test_prenorm_h_gradient_is_added(device, gen, n, offset):
    x = randn((3, n), torch.bfloat16, device, gen)
    w = randn((n,), torch.float32, device, gen)
    dy, dh = randn((3, n), torch.bfloat16, device, gen), randn((3, n), torch.bfloat16, device, gen)
    xl, wl = x.clone().requires_grad_(), w.clone().requires_grad_()
    y, h = rms_norm(xl, wl, prenorm=True, offset=offset)
    assert h.data_ptr() == xl.data_ptr() and h.shape == xl.shape  # documented: h is x itself
    torch.autograd.backward([y, h], [dy, dh])
    check_grads(x, w, dy, xl.grad, wl.grad, offset=offset, dh=dh)


@pytest.mark.parametrize("m", [5, 0])
@pytest.mark.parametrize("needs", ["x", "w"])  # "x": a frozen weight must still scale dx
def test_only_some_inputs_need_grad(device, gen, needs, m):
    x = randn((m, 1000), torch.float16, device, gen)
    w = randn((1000,), torch.float16, device, gen)
    dy = randn((m, 1000), torch.float16, device, gen)
    ref_dx, ref_dw, mag_dx, mag_dw = reference_grads(x, w, dy)
    xl = x.clone().requires_grad_(needs == "x")
    wl = w.clone().requires_grad_(needs == "w")
    rms_norm(xl, wl).backward(dy)
    if needs == "x":
        assert wl.grad is None
        assert_grad_close(xl.grad, ref_dx, mag_dx, what="dx")
    else:
        assert xl.grad is None
        assert_grad_close(wl.grad, ref_dw, mag_dw, what="dw")


def test_no_rows(device, gen):
    x = torch.empty((0, 3, 4097), dtype=torch.bfloat16, device=device, requires_grad=True)
    w = randn((4097,), torch.float32, device, gen).requires_grad_()
    rms_norm(x, w).sum().backward()
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype
    assert w.grad.dtype == w.dtype and torch.equal(w.grad, torch.zeros_like(w))


# ---- determinism, double backward -------------------------------------------------------------
@pytest.mark.parametrize("shape,dtype", [((257, 1000), torch.float32),
                                         ((9, LONG_BWD), torch.float32),
                                         ((130, 127), torch.bfloat16)], ids=str)
def test_dw_bitwise_deterministic(device, gen, shape, dtype):
    x = randn(shape, dtype, device, gen)
    w = randn(shape[-1:], dtype, device, gen)
    dy = randn(shape, dtype, device, gen)
    _, dx1, dw1 = run_backward(x, w, dy)
    _, dx2, dw2 = run_backward(x, w, dy)
    assert torch.equal(dw1, dw2) and torch.equal(dx1, dx2)
    check_grads(x, w, dy, dx1, dw1)


def test_double_backward_raises(device, gen):
    x = randn((3, 16), torch.float64, device, gen).requires_grad_()
    w = randn((16,), torch.float64, device, gen).requires_grad_()
    # dy = ones, which needs no grad: a gradient penalty on g must not be dropped silently
    with pytest.raises(RuntimeError, match="(?i)double backward|differentiate twice"):
        y = rms_norm(x, w)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        (y.pow(2).sum() + g.pow(2).sum()).backward()
    # dy itself needs grad
    with pytest.raises(RuntimeError, match="(?i)double backward|differentiate twice"):
        y = rms_norm(x, w)
        (g,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
        g.sum().backward()


@pytest.mark.parametrize("wlayout", ["every-other", "expanded"])
def test_strided_weight(device, gen, wlayout):
    """A weight whose elements are not adjacent (a slice with a step, an expanded scalar) is
    read as the values it holds, forward and backward (the kernels read W + column)."""
    n = 127
    x = randn((3, n), torch.float32, device, gen)
    dy = randn((3, n), torch.float32, device, gen)
    p = randn((2 * n,) if wlayout == "every-other" else (1,), torch.float32, device, gen)
    p.requires_grad_()
    w = p[::2] if wlayout == "every-other" else p.expand(n)
    assert w.stride(0) != 1
    xl = x.clone().requires_grad_()
    y = rms_norm(xl, w)
    ref_dx, ref_dw, mag_dx, mag_dw = reference_grads(x, w.detach(), dy)
    ref_y = rms_norm_ref(x.double(), w.detach().double())[0]
    assert_grad_close(y, ref_y, torch.zeros(()), what="y")
    y.backward(dy)
    assert_grad_close(xl.grad, ref_dx, mag_dx, what="dx")
    if wlayout == "every-other":  # the gradient lands on the slice's elements, none between
        assert_grad_close(p.grad[::2], ref_dw, mag_dw, what="dw")
        assert (p.grad[1::2] == 0).all()
    else:  # an expanded weight's gradient is the sum over the columns
        assert_grad_close(p.grad, ref_dw.sum(0, keepdim=True), mag_dw.sum(0, keepdim=True),
                          what="dw")

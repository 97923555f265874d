"""Rows at two strides (issue 25): q and k views cut from a real fused qkv tensor (GQA), read
and written where they lie, forward and backward, against float64 references.

The gaps around the view (v, the other heads) are poisoned with NaN in the qkv tensor and must
come back bit for bit: the kernel writes only the rows it owns. Outputs are NaN-poisoned too.
"""

import pytest
import torch

from conftest import FLOATS, assert_grad_close, randn, reference_grads
from rmsnorm_triton import plan, rms_norm, rows
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import assert_close

pytestmark = pytest.mark.usefixtures("poison")

DTYPES = FLOATS + (torch.float64,)
SHAPES = [  # (T, Hq, Hk, D)
    (7, 4, 2, 64),  # GQA, odd T
    (1, 8, 1, 128),  # decode, one token
    (3, 3, 3, 96),  # MHA, D not a power of two
]


def qkv_tensor(t, hq, hk, d, dtype, device, gen, poison_v=True):
    """A fused projection's output [T, (Hq + 2 Hk) * D]; v's columns hold NaN (never read)."""
    qkv = randn((t, (hq + 2 * hk) * d), dtype, device, gen)
    if poison_v:
        qkv[:, (hq + hk) * d:] = float("nan")
    return qkv


def views(qkv, hq, hk, d):
    t = qkv.shape[0]
    q = qkv[:, :hq * d].view(t, hq, d)
    k = qkv[:, hq * d:(hq + hk) * d].view(t, hk, d)
    return q, k


def same_bits(a, b):
    return torch.equal(a.view(torch.uint8) if a.element_size() == 1 else
                       a.contiguous().view(torch.int8), b.contiguous().view(torch.int8))


def test_head_rows_describes_only_layouts_a_view_cannot_hold():
    qkv = torch.empty(5, (4 + 2 * 2) * 8)
    q, k = views(qkv, 4, 2, 8)
    assert rows.head_rows(q, 8) == rows.HeadRows(20, 4, 8, 64)
    assert rows.head_rows(k, 8) == rows.HeadRows(10, 2, 8, 64)
    assert rows.head_rows(q.contiguous(), 8) is None  # (M, N) view: one stride
    assert rows.head_rows(q.transpose(0, 1), 8) == rows.HeadRows(20, 5, 64, 8)  # [H, T, D] too
    three = torch.empty(4, 3, 10, 8)[:, :2, :5]  # leading dims 4 x 2 not one stride: copies
    assert rows.head_rows(three, 8) is None
    four = torch.empty(2, 3, 64)[..., :32].unflatten(-1, (2, 16))  # [2, 3, 2, 16]: tokens 2x3
    assert rows.head_rows(four, 16) == rows.HeadRows(12, 2, 16, 64)


@pytest.mark.parametrize("which", ["q", "k"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_reads_the_view_in_place(device, gen, dtype, shape, which):
    t, hq, hk, d = shape
    qkv = qkv_tensor(t, hq, hk, d, dtype, device, gen)
    before = qkv.clone()
    x = views(qkv, hq, hk, d)[which == "k"]
    w = randn((d,), dtype, device, gen)
    y = rms_norm(x, w)
    assert not plan.PLANS[next(reversed(plan.PLANS))].x_view  # no copy of x
    assert y.shape == x.shape and y.is_contiguous()
    assert_close(y, rms_norm_ref(x, w)[0], dtype)
    assert torch.equal(qkv.isnan(), before.isnan()) and torch.equal(
        qkv.nan_to_num(), before.nan_to_num())  # read-only: qkv as it was


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_backward_of_a_view_writes_dx_contiguous(device, gen, dtype, shape):
    t, hq, hk, d = shape
    qkv = qkv_tensor(t, hq, hk, d, dtype, device, gen, poison_v=False).requires_grad_()
    w = randn((d,), dtype, device, gen).requires_grad_()
    k = views(qkv, hq, hk, d)[1]
    y = rms_norm(k, w)
    dy = randn(y.shape, dtype, device, gen)
    y.backward(dy)
    bwd = next(iter(plan.PLANS[next(reversed(plan.PLANS))].bwd.values()))
    assert bwd.heads_x == (rows.head_rows(k, d) is not None)  # read at two strides, not copied
    ref_dx, ref_dw, mag_dx, mag_dw = reference_grads(k, w, dy)
    dk = qkv.grad[:, hq * d:(hq + hk) * d].view(t, hk, d)
    assert_grad_close(dk, ref_dx, mag_dx, what="dk")
    assert_grad_close(w.grad, ref_dw, mag_dw, what="dw")
    assert (qkv.grad[:, :hq * d] == 0).all() and (qkv.grad[:, (hq + hk) * d:] == 0).all()


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_backward_with_dy_at_two_strides(device, gen, dtype):
    """dy itself a view inside a larger gradient (the backward of an in-place qkv slice)."""
    t, hq, hk, d = 5, 4, 2, 64
    x = views(qkv_tensor(t, hq, hk, d, dtype, device, gen, False), hq, hk, d)[0]
    w = randn((d,), dtype, device, gen)
    xg = x.detach().requires_grad_()
    y = rms_norm(xg, w)
    big = qkv_tensor(t, hq, hk, d, dtype, device, gen)
    dy = views(big, hq, hk, d)[0]
    (dx,) = torch.autograd.grad(y, xg, dy)
    bwd = next(iter(plan.PLANS[next(reversed(plan.PLANS))].bwd.values()))
    assert bwd.heads_x and bwd.heads_dy
    ref_dx, _, mag_dx, _ = reference_grads(x, w, dy)
    assert_grad_close(dx, ref_dx, mag_dx, what="dx")


def test_a_residual_with_heads_still_copies_and_is_right(device, gen):
    """HEAD_ROWS serves rows without a residual; with one, the rows are copied as before."""
    t, hq, hk, d = 3, 4, 2, 32
    q = views(qkv_tensor(t, hq, hk, d, torch.float32, device, gen), hq, hk, d)[0]
    r = randn(q.shape, torch.float32, device, gen)
    w = randn((d,), torch.float32, device, gen)
    y, h = rms_norm(q, w, residual=r)
    ref_y, ref_h = rms_norm_ref(q, w, residual=r)
    assert_close(y, ref_y)
    assert_close(h, ref_h)

"""qk_norm_ (issue 25): q and k of a fused qkv tensor normalized in place in one launch.

Checked against float64 references of the two per-head norms; v (and, with a token slice, the
tokens around it) poisoned with NaN and compared bit for bit after; autograd against float64
autograd; opcheck on the mutating op; torch.compile(fullgraph=True) with and without grad.
"""

import pytest
import torch
from torch._dynamo.utils import counters

from conftest import FLOATS, assert_grad_close, randn, reference_grads
from rmsnorm_triton import plan, qk_norm_
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import assert_close

pytestmark = pytest.mark.usefixtures("poison")

DTYPES = FLOATS + (torch.float64,)
SHAPES = [(7, 4, 2, 64), (1, 32, 8, 128), (3, 3, 3, 96), (2, 2, 1, 256)]  # (T, Hq, Hk, D)


def make(t, hq, hk, d, dtype, device, gen, lead=()):
    qkv = randn((*lead, t, (hq + 2 * hk) * d), dtype, device, gen)
    wq, wk = randn((d,), dtype, device, gen), randn((d,), dtype, device, gen)
    return qkv, wq, wk


def reference(qkv, wq, wk, hq, hk, eps=1e-6, offset=0.0):
    """float64: q and k heads normalized with their weights, v as it was."""
    d = wq.shape[0]
    q = qkv[..., :hq * d].unflatten(-1, (hq, d))
    k = qkv[..., hq * d:(hq + hk) * d].unflatten(-1, (hk, d))
    yq = rms_norm_ref(q, wq, eps, offset=offset)[0].flatten(-2)
    yk = rms_norm_ref(k, wk, eps, offset=offset)[0].flatten(-2)
    return torch.cat([yq, yk, qkv[..., (hq + hk) * d:].double()], -1)


def bits(t):
    return t.contiguous().view(torch.uint8)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_in_place_one_launch(device, gen, dtype, shape):
    t, hq, hk, d = shape
    qkv, wq, wk = make(t, hq, hk, d, dtype, device, gen)
    qkv[:, (hq + hk) * d:] = float("nan")  # v: never read, never written
    before = qkv.clone()
    out = qk_norm_(qkv, wq, wk, hq, hk)
    assert out is qkv
    assert torch.equal(bits(qkv[:, (hq + hk) * d:]), bits(before[:, (hq + hk) * d:]))
    ref = reference(before, wq, wk, hq, hk)
    assert_close(qkv[:, :(hq + hk) * d], ref[:, :(hq + hk) * d], dtype)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_a_slice_of_tokens_and_gemma_mode(device, gen, dtype):
    """qkv as a [B, T, C] view (every other token of a larger buffer): the skipped tokens,
    poisoned, stay as they were; Gemma's offset and casting."""
    t, hq, hk, d = 5, 4, 2, 32
    big, wq, wk = make(2 * t, hq, hk, d, dtype, device, gen, lead=(2,))
    big[:, 1::2] = float("nan")
    before = big.clone()
    qkv = big[:, ::2]
    qk_norm_(qkv, wq, wk, hq, hk, 1e-5, offset=1.0, casting="gemma")
    assert torch.equal(bits(big[:, 1::2]), bits(before[:, 1::2]))
    ref = reference(before[:, ::2], wq, wk, hq, hk, 1e-5, 1.0)
    assert_close(qkv, ref, dtype)


def test_replays_its_plan(device, gen):
    qkv, wq, wk = make(3, 4, 2, 64, torch.float32, device, gen)
    qk_norm_(qkv.clone(), wq, wk, 4, 2)
    n = len(plan.PLANS)
    again = qkv.clone()
    qk_norm_(again, wq, wk, 4, 2)
    assert len(plan.PLANS) == n  # the same signature: the same plan, replayed
    assert_close(again, reference(qkv, wq, wk, 4, 2))


@pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_autograd(device, gen, dtype, shape):
    t, hq, hk, d = shape
    qkv0, wq0, wk0 = make(t, hq, hk, d, dtype, device, gen)
    leaf = qkv0.clone().requires_grad_()
    wq, wk = wq0.clone().requires_grad_(), wk0.clone().requires_grad_()
    out = qk_norm_(leaf * 1, wq, wk, hq, hk)  # (a non-leaf: in place on a leaf is refused)
    g = randn(out.shape, dtype, device, gen)
    out.backward(g)
    q, k = (qkv0[:, :hq * d].unflatten(-1, (hq, d)),
            qkv0[:, hq * d:(hq + hk) * d].unflatten(-1, (hk, d)))
    gq = g[:, :hq * d].unflatten(-1, (hq, d))
    gk = g[:, hq * d:(hq + hk) * d].unflatten(-1, (hk, d))
    for x, w, dy, dx, dw, what in ((q, wq0, gq, leaf.grad[:, :hq * d], wq.grad, "q"),
                                   (k, wk0, gk, leaf.grad[:, hq * d:(hq + hk) * d], wk.grad, "k")):
        ref_dx, ref_dw, mag_dx, mag_dw = reference_grads(x, w, dy)
        assert_grad_close(dx.unflatten(-1, x.shape[-2:]), ref_dx, mag_dx, what=f"d{what}")
        assert_grad_close(dw, ref_dw, mag_dw, what=f"dw_{what}")
    assert torch.equal(leaf.grad[:, (hq + hk) * d:], g[:, (hq + hk) * d:])  # dv passes through


def test_autograd_of_a_sum(device, gen):
    """loss = out.sum(): the gradient arrives expanded (zero strides), and is made dense."""
    qkv, wq, wk = make(3, 4, 2, 32, torch.float32, device, gen)
    leaf, w = qkv.clone().requires_grad_(), wq.clone().requires_grad_()
    qk_norm_(leaf * 1, w, wk, 4, 2).sum().backward()
    x64, w64 = qkv.double().requires_grad_(), wq.double().requires_grad_()
    reference(x64, w64, wk, 4, 2).sum().backward()
    assert torch.allclose(leaf.grad.double(), x64.grad, atol=1e-5)
    assert torch.allclose(w.grad.double(), w64.grad, atol=1e-4)


def test_no_tokens(device, gen):
    qkv, wq, wk = make(0, 4, 2, 16, torch.float32, device, gen)
    assert qk_norm_(qkv, wq, wk, 4, 2).shape == (0, 128)
    leaf, w = qkv.clone().requires_grad_(), wq.clone().requires_grad_()
    qk_norm_(leaf * 1, w, wk, 4, 2).sum().backward()
    assert leaf.grad.shape == (0, 128) and torch.equal(w.grad, torch.zeros_like(w))


def test_errors_name_the_argument(device, gen):
    qkv, wq, wk = make(3, 4, 2, 64, torch.float32, device, gen)
    with pytest.raises(ValueError, match=r"qkv has shape \(3, 512\), expected \(\.\.\., 640\)"):
        qk_norm_(qkv, wq, wk, 4, 3)
    with pytest.raises(ValueError, match="k_weight has shape"):
        qk_norm_(qkv, wq, wk[:32], 4, 2)
    with pytest.raises(ValueError, match="num_kv_heads is 0"):
        qk_norm_(qkv, wq, wk, 4, 0)
    with pytest.raises(ValueError, match="unit last stride"):
        qk_norm_(qkv.t().contiguous().t(), wq, wk, 4, 2)


# ---- torch.library / torch.compile ------------------------------------------------------------
@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def test_opcheck(device, gen):
    qkv, wq, wk = make(3, 4, 2, 32, torch.bfloat16, device, gen)
    torch.library.opcheck(torch.ops.rmsnorm_triton.qk_norm_.default,
                          (qkv, wq, wk, 4, 2, 1e-6, 0.0, "llama"))


@pytest.mark.usefixtures("fresh_dynamo")
@pytest.mark.parametrize("grad", [False, True])
def test_compile_fullgraph(device, gen, grad):
    hq, hk, d = 4, 2, 32
    qkv0, wq0, wk0 = make(5, hq, hk, d, torch.float32, device, gen)

    def f(x, wq, wk):
        qkv = x * 2  # a projection's output stands here
        return qk_norm_(qkv, wq, wk, hq, hk) + 1

    def run(fn):
        x = qkv0.clone().requires_grad_(grad)
        wq, wk = wq0.clone().requires_grad_(grad), wk0.clone().requires_grad_(grad)
        out = fn(x, wq, wk)
        if grad:
            out.backward(torch.ones_like(out))
            return out, x.grad, wq.grad, wk.grad
        return (out,)

    eager = run(f)
    comp = run(torch.compile(f, fullgraph=True))
    assert not counters["graph_break"], dict(counters["graph_break"])
    for a, b in zip(comp, eager):
        assert_close(a, b.double())

"""On a CUDA GPU (skipped without one): issue 25's ops at model sizes, compiled for the GPU, and
captured in CUDA graphs. (test_heads.py, test_qk_norm.py and test_gated.py run on CUDA too,
through their `device` fixture, at small sizes.)"""

import pytest
import torch

from rmsnorm_triton import qk_norm_, rms_norm, rms_norm_gated
from rmsnorm_triton.reference import gated_rms_norm_ref, rms_norm_ref
from rmsnorm_triton.testing import max_scaled_error

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
BF16 = torch.bfloat16


def qkv_case(t, hq, hk, d, dtype=BF16, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    qkv = torch.randn(t, (hq + 2 * hk) * d, generator=g, device="cuda", dtype=dtype)
    wq, wk = (1 + 0.5 * torch.randn(d, generator=g, device="cuda", dtype=dtype)
              for _ in range(2))
    return qkv, wq, wk


def qk_reference(qkv, wq, wk, hq, hk):
    d = wq.shape[0]
    q = qkv[:, :hq * d].unflatten(-1, (hq, d))
    k = qkv[:, hq * d:(hq + hk) * d].unflatten(-1, (hk, d))
    return torch.cat([rms_norm_ref(q, wq)[0].flatten(-2), rms_norm_ref(k, wk)[0].flatten(-2)], -1)


@pytest.mark.parametrize("t,hq,hk,d", [(4608, 48, 8, 128), (1, 32, 8, 128), (37, 16, 2, 64),
                                       (513, 8, 8, 256)])
@pytest.mark.parametrize("dtype", [BF16, torch.float16, torch.float32], ids=str)
def test_qk_norm_at_model_sizes(t, hq, hk, d, dtype):
    qkv, wq, wk = qkv_case(t, hq, hk, d, dtype)
    qkv[:, (hq + hk) * d:] = float("nan")
    before = qkv.clone()
    qk_norm_(qkv, wq, wk, hq, hk)
    assert max_scaled_error(qkv[:, :(hq + hk) * d], qk_reference(before, wq, wk, hq, hk),
                            dtype) <= 1
    v = slice((hq + hk) * d, None)
    assert torch.equal(qkv[:, v].view(torch.int8 if dtype != torch.float32 else torch.int32),
                       before[:, v].view(torch.int8 if dtype != torch.float32 else torch.int32))


@pytest.mark.parametrize("t", [1, 8, 64])
def test_decode_in_a_cuda_graph(t):
    """qk_norm_ and rms_norm of a q view captured in a graph: replays give eager's bits."""
    hq, hk, d = 32, 8, 128
    qkv, wq, wk = qkv_case(t, hq, hk, d)
    src = qkv.clone()
    eager = src.clone()
    qk_norm_(eager, wq, wk, hq, hk)
    y_eager = rms_norm(src[:, :hq * d].unflatten(-1, (hq, d)), wq)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm up: plans made outside the capture
        qk_norm_(qkv.copy_(src), wq, wk, hq, hk)
        rms_norm(qkv[:, :hq * d].unflatten(-1, (hq, d)), wq)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        qkv.copy_(src)
        y = rms_norm(qkv[:, :hq * d].unflatten(-1, (hq, d)), wq)
        qk_norm_(qkv, wq, wk, hq, hk)
    for _ in range(3):
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(qkv, eager) and torch.equal(y, y_eager)


def test_qk_norm_autograd_at_model_size():
    t, hq, hk, d = 512, 32, 8, 128
    qkv, wq, wk = qkv_case(t, hq, hk, d)
    leaf = qkv.clone().requires_grad_()
    ws = [w.clone().requires_grad_() for w in (wq, wk)]
    out = qk_norm_(leaf * 1, *ws, hq, hk)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, [leaf, *ws], g)
    x64 = qkv.double().requires_grad_()
    w64 = [w.double().requires_grad_() for w in (wq, wk)]
    ref = torch.cat([qk_reference(x64, *w64, hq, hk), x64[:, (hq + hk) * d:]], -1)
    want = torch.autograd.grad(ref, [x64, *w64], g.double())
    for a, b in zip(got, want):
        assert max_scaled_error(a, b, BF16, grad=True) <= 2


@pytest.mark.parametrize("n", [2048, 4096, 8192, 16384, 65536])  # 8K+: the backward's LOOP
@pytest.mark.parametrize("nbg,group", [(True, None), (False, None), (False, 1024)])
def test_gated_at_model_sizes(n, nbg, group):
    m = 2**22 // n
    g = torch.Generator(device="cuda").manual_seed(n)
    x = torch.randn(m, n, generator=g, device="cuda", dtype=BF16)
    z = torch.randn(m, 2 * n, generator=g, device="cuda", dtype=BF16)[:, n:]
    w = 1 + 0.5 * torch.randn(n, generator=g, device="cuda", dtype=BF16)
    xs, zs, ws = (t.clone().requires_grad_() for t in (x, z, w))
    y = rms_norm_gated(xs, zs, ws, norm_before_gate=nbg, group_size=group, casting="gemma")
    assert max_scaled_error(y, gated_rms_norm_ref(x, z, w, 1e-6, nbg, "silu", group), BF16) <= 1
    dy = torch.randn_like(y)
    got = torch.autograd.grad(y, (xs, zs, ws), dy)
    x64, z64, w64 = (t.double().requires_grad_() for t in (x, z, w))
    want = torch.autograd.grad(gated_rms_norm_ref(x64, z64, w64, 1e-6, nbg, "silu", group),
                               (x64, z64, w64), dy.double())
    for a, b in zip(got, want):
        assert max_scaled_error(a, b, BF16, grad=True) <= 2

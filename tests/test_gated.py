"""rms_norm_gated (issue 25): both orders, silu and sigmoid, groups, strided z, against the
float64 formulas of Qwen3-Next / FLA (norm before the gate) and Mamba2 (after); the HF
formulas' roundings in half precision; gradients; opcheck and torch.compile.
"""

import pytest
import torch
from torch._dynamo.utils import counters

from conftest import FLOATS, assert_grad_close, randn
from rmsnorm_triton import RMSNormGated, gated, plan, rms_norm_gated
from rmsnorm_triton.reference import gated_rms_norm_ref
from rmsnorm_triton.testing import TOLERANCE, assert_close

pytestmark = pytest.mark.usefixtures("poison")

DTYPES = FLOATS + (torch.float64,)
CASES = [  # (M, N, group_size)
    (7, 48, None),
    (3, 96, 32),  # three groups
    (2, 72, 24),  # G not a power of two
    (1, 200, 8),  # 25 groups: NG not a power of two
    (5, 127, None),  # odd N
]
ORDERS = [(True, "silu"), (False, "silu"), (True, "sigmoid"), (False, "sigmoid")]


def inputs(m, n, dtype, device, gen, z_dtype=None):
    x = randn((m, n), dtype, device, gen)
    z = randn((m, 3 * n), z_dtype or dtype, device, gen)[:, n:2 * n]  # strided: rows 3n apart
    w = randn((n,), dtype, device, gen)
    return x, z, w


def check_forward(y, x, z, w, nbg, act, g, dtype, casting):
    ref = gated_rms_norm_ref(x, z, w, 1e-6, nbg, act, g)
    if casting == "gemma" or dtype in (torch.float32, torch.float64):
        assert_close(y, ref, dtype)  # one rounding of y (fp32: its ulps)
    else:  # llama: x_hat and (before the gate) x_hat * w rounded too: three roundings
        rel, abs_ = TOLERANCE[dtype]
        gate = z.double().abs() + 1 if z is not None else 1
        err = (y.double() - ref).abs() / (1.5 * rel * (ref.abs() + w.double().abs() * gate)
                                          + abs_)
        assert err.max() <= 1, f"error {err.max():.3g}x"


def check_fp32_grads(y, leaves, inputs_, nbg, g, device, gen):
    """y.backward(random dy): the leaves' gradients against float64 autograd of the formula on
    inputs_ (silu), within fp32's bound on terms that may cancel."""
    dy = randn(y.shape, torch.float32, device, gen)
    y.backward(dy)
    x64, z64, w64 = (t.detach().double().cpu().requires_grad_() for t in inputs_)
    want = torch.autograd.grad(gated_rms_norm_ref(x64, z64, w64, 1e-6, nbg, "silu", g),
                               (x64, z64, w64), dy.double().cpu())
    for leaf, ref_g, what in zip(leaves, want, "xzw"):
        assert_grad_close(leaf.grad, ref_g, ref_g.abs() + ref_g.abs().mean() * 8,
                          what=f"d{what}")


@pytest.mark.parametrize("casting", ["gemma", "llama"])
@pytest.mark.parametrize("nbg,act", ORDERS)
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_and_backward(device, gen, dtype, case, nbg, act, casting):
    m, n, g = case
    x, z, w = inputs(m, n, dtype, device, gen)
    xs, zs, ws = (t.detach().clone().requires_grad_() for t in (x, z, w))
    y = rms_norm_gated(xs, zs, ws, norm_before_gate=nbg, activation=act, group_size=g,
                       casting=casting)
    assert y.dtype == dtype and y.shape == x.shape
    check_forward(y, x, z, w, nbg, act, g, dtype, casting)
    dy = randn(y.shape, dtype, device, gen)
    y.backward(dy)
    x64, z64, w64 = (t.detach().double().cpu().requires_grad_() for t in (x, z, w))
    ref = gated_rms_norm_ref(x64, z64, w64, 1e-6, nbg, act, g)
    want = torch.autograd.grad(ref, (x64, z64, w64), dy.double().cpu())
    # the size of the terms that cancel: the same gradient of |ref| against |dy|
    mags = torch.autograd.grad(gated_rms_norm_ref(x64, z64, w64, 1e-6, nbg, act, g).abs(),
                               (x64, z64, w64), dy.double().cpu().abs())
    for got, ref_g, mag, what in zip((xs.grad, zs.grad, ws.grad), want, mags, "xzw"):
        scale = mag.abs() + ref_g.abs().mean() * (8 if what == "w" else 4)
        assert_grad_close(got, ref_g, scale, what=f"d{what}")


@pytest.mark.parametrize("case", [(3, 96, 16), (2, 200, 8), (4, 64, 64)], ids=str)
@pytest.mark.parametrize("nbg", [True, False])
def test_rows_cut_into_slabs(device, gen, monkeypatch, case, nbg):
    """Long rows are held a slab of whole groups at a time (gated.SLAB elements): with a tiny
    SLAB, 3 and 7 slabs a row (the last one short) and one group larger than a slab."""
    monkeypatch.setattr(gated, "SLAB", 32)
    plan.PLANS.clear()
    m, n, g = case
    x, z, w = inputs(m, n, torch.float32, device, gen)
    xs, zs, ws = (t.detach().clone().requires_grad_() for t in (x, z, w))
    y = rms_norm_gated(xs, zs, ws, norm_before_gate=nbg, group_size=g)
    assert next(reversed(plan.PLANS.values())).slabs == -(-(n // g) // max(1, 32 // g))
    assert_close(y, gated_rms_norm_ref(x, z, w, 1e-6, nbg, "silu", g))
    check_fp32_grads(y, (xs, zs, ws), (x, z, w), nbg, g, device, gen)
    plan.PLANS.clear()


@pytest.mark.parametrize("case", [(3, 200, None), (2, 96, 48), (5, 64, 64)], ids=str)
@pytest.mark.parametrize("nbg,act", [(True, "silu"), (False, "sigmoid")])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_long_groups_walk_in_blocks(device, gen, monkeypatch, dtype, case, nbg, act):
    """A group longer than a slab (backward) or than one pass holds (forward) is walked in
    LOOP_BLOCK blocks, twice: shrunk here to 16, so a group of 200 takes 13 blocks (the last
    short), two groups of 48 three each, and G = 64 four whole ones; with and without z and w."""
    monkeypatch.setattr(gated, "SLAB", 32)
    monkeypatch.setattr(gated, "ONE_PASS_MAX", 32)
    monkeypatch.setattr(gated, "LOOP_BLOCK", 16)
    plan.PLANS.clear()
    m, n, g = case
    x, z, w = inputs(m, n, dtype, device, gen)
    for zz, ww in ((z, w), (None, None)):
        args = [t.detach().clone().requires_grad_() if t is not None else None
                for t in (x, zz, ww)]
        y = rms_norm_gated(*args, norm_before_gate=nbg, activation=act, group_size=g)
        p = next(reversed(plan.PLANS.values()))
        assert p.launch.compiled is None or p.slabs == n // (g or n)
        check_forward(y, x, zz, ww if ww is not None else torch.ones_like(x[0]), nbg, act, g,
                      dtype, "llama")
        dy = randn(y.shape, dtype, device, gen)
        y.backward(dy)
        leaves = [t.detach().double().cpu().requires_grad_() if t is not None else None
                  for t in (x, zz, ww)]
        ref = gated_rms_norm_ref(*leaves, 1e-6, nbg, act, g)
        got = [a.grad for a in args if a is not None]
        want = torch.autograd.grad(ref, [t for t in leaves if t is not None], dy.double().cpu())
        mags = torch.autograd.grad(gated_rms_norm_ref(*leaves, 1e-6, nbg, act, g).abs(),
                                   [t for t in leaves if t is not None], dy.double().cpu().abs())
        for gt, rg, mag, what in zip(got, want, mags, "xzw"):
            assert_grad_close(gt, rg, mag.abs() + rg.abs().mean() * (8 if what == "w" else 4),
                              what=f"d{what}")
    plan.PLANS.clear()


@pytest.mark.parametrize("bwd", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("n,g", [(2048, 2048), (4096, 1024)])
def test_every_tuning_layout_is_right(device, gen, n, g, bwd):
    """gated.layouts: what benchmarks/tune.py times, so what a table may pick. Each walk is
    checked against float64 (the interpreter ignores warps and walkers: one run per walk)."""
    x, z, w = inputs(3, n, torch.float32, device, gen)
    dy = randn(x.shape, torch.float32, device, gen)
    x64, z64, w64 = (t.detach().double().cpu().requires_grad_() for t in (x, z, w))
    ref = gated_rms_norm_ref(x64, z64, w64, 1e-6, True, "silu", g)
    want = torch.autograd.grad(ref, (x64, z64, w64), dy.double().cpu())
    lays = gated.layouts(n, g, torch.float32, bwd)
    assert gated.layout(n, g, torch.float32, bwd) in lays and any(lay.loop for lay in lays)
    seen = set()
    fwd_plan = gated.GatedPlan(x, z, w, 1e-6, True, "silu", g, "llama", torch.float32, True)
    rstd = fwd_plan(x, z, w)[1]
    for lay in lays:
        walk = (lay.gps, lay.slabs, lay.ng2, lay.g2, lay.loop, lay.block)
        if device == "cpu" and walk in seen:
            continue
        seen.add(walk)
        if not bwd:
            p = gated.GatedPlan(x, z, w, 1e-6, True, "silu", g, "llama", torch.float32, True,
                                config=lay)
            y, r = p(x, z, w)
            assert_close(y, ref.detach(), torch.float32)
            assert torch.equal(r, rstd), lay
            continue
        p = gated.GatedBwdPlan(dy, x, z, w, rstd, True, "silu", g, True, config=lay)
        for got, ref_g, what in zip(p(dy, x, z, w, rstd), want, "xzw"):
            assert_grad_close(got, ref_g, ref_g.abs() + ref_g.abs().mean() * 8,
                              what=f"d{what} {lay}")
    assert len(seen) >= 2  # held and looped


def test_rows_past_one_pass(device, gen):
    """No row limit: a group of 40000 (past ONE_PASS_MAX) runs both walks at their real sizes."""
    x, z, w = inputs(2, 40000, torch.float32, device, gen)
    xs, zs, ws = (t.detach().clone().requires_grad_() for t in (x, z, w))
    y = rms_norm_gated(xs, zs, ws)
    assert_close(y, gated_rms_norm_ref(x, z, w, 1e-6, True, "silu", None))
    check_fp32_grads(y, (xs, zs, ws), (x, z, w), True, None, device, gen)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_no_gate_no_weight(device, gen, dtype):
    """Mamba2's norm also runs without a gate (its torch path's last norm)."""
    x, _, _ = inputs(4, 64, dtype, device, gen)
    y = rms_norm_gated(x, None, None, group_size=16)
    assert_close(y, gated_rms_norm_ref(x, None, None, 1e-6, True, "silu", 16), dtype)


def test_module(device, gen):
    x, z, w = inputs(3, 64, torch.float32, device, gen)
    mod = RMSNormGated(64, eps=1e-5, norm_before_gate=False, group_size=32, device=device)
    with torch.no_grad():
        mod.weight.copy_(w)
    assert_close(mod(x, z), gated_rms_norm_ref(x, z, w, 1e-5, False, "silu", 32))
    assert "group_size=32" in repr(mod)


def test_errors_name_the_argument(device, gen):
    x, z, w = inputs(2, 64, torch.float32, device, gen)
    with pytest.raises(ValueError, match=r"group_size is 24, expected .* divides .* \(64\)"):
        rms_norm_gated(x, z, w, group_size=24)
    with pytest.raises(ValueError, match=r"z has shape \(2, 32\), expected \(2, 64\)"):
        rms_norm_gated(x, z[:, :32], w)
    with pytest.raises(ValueError, match="activation is 'relu'"):
        rms_norm_gated(x, z, w, activation="relu")


def test_opcheck(device, gen):
    x, z, w = inputs(3, 32, torch.bfloat16, device, gen)
    torch.library.opcheck(torch.ops.rmsnorm_triton.gated_fwd.default,
                          (x, z, w, 1e-6, False, "silu", 16, "llama", torch.bfloat16))
    _, rstd = torch.ops.rmsnorm_triton.gated_fwd(x, z, w, 1e-6, True, "sigmoid", 32, "gemma",
                                                 torch.bfloat16)
    torch.library.opcheck(torch.ops.rmsnorm_triton.gated_bwd.default,
                          (x, x, z, w, rstd, True, "sigmoid", 32, True))


def test_compile_fullgraph_matches_eager(device, gen):
    torch._dynamo.reset()
    counters.clear()
    mod = RMSNormGated(64, norm_before_gate=False, group_size=16, device=device)
    x, z, _ = inputs(5, 64, torch.float32, device, gen)

    def run(fn):
        xs, zs = x.clone().requires_grad_(), z.clone().requires_grad_()
        mod.weight.grad = None
        y = fn(xs, zs)
        y.backward(torch.ones_like(y))
        return y, xs.grad, zs.grad, mod.weight.grad

    eager = run(mod)
    comp = run(torch.compile(mod, fullgraph=True))
    assert not counters["graph_break"]
    for a, b in zip(comp, eager):
        assert torch.equal(a, b)
    torch._dynamo.reset()


def test_no_rows(device, gen):
    x, z, w = (randn(s, torch.float32, device, gen) for s in ((0, 32), (0, 32), (32,)))
    ws = w.clone().requires_grad_()
    y = rms_norm_gated(x, z, ws, group_size=16)
    y.sum().backward()
    assert y.shape == (0, 32) and torch.equal(ws.grad, torch.zeros_like(w))

"""On a CUDA GPU: a call replayed from its launch plan (plan.PLANS) computes what a freshly made
plan computes and what float64 says, forward, in place and under autograd, SPLIT rows included.
Outputs land in memory poisoned with NaN (blocks of the same size filled and freed, so that the
caching allocator hands them back). Skipped without CUDA (the CPU suite's test_eager.py runs the
same replays through the interpreter behind a faked launcher)."""

import pytest
import torch

import rmsnorm_triton as R
from rmsnorm_triton import ops, plan
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import max_scaled_error

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SHAPES = [(1, 4096), (8, 1, 4096), (256, 4096), (3, 5, 1000), (7, 4096), (2, 65536), (33, 262144)]
KINDS = ["plain", "residual", "prenorm", "residual fp32 h", "gemma"]


def _poison(*shapes_dtypes):
    for shape, dt in shapes_dtypes:
        t = torch.full(shape, float("nan"), dtype=dt, device="cuda")
        del t


@pytest.fixture
def replay_only(monkeypatch):
    """Within the test, a call whose plan exists must not run the checks (it is replayed)."""
    plan.PLANS.clear()

    def refuse(*a):
        raise AssertionError("not replayed: the checks ran")

    def arm():
        monkeypatch.setattr(ops, "validate", refuse)

    yield arm
    plan.PLANS.clear()


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dt", [torch.bfloat16, torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_a_replayed_call_is_right(replay_only, shape, dt, kind, strided):
    n = shape[-1]
    w = (1 + 0.3 * torch.randn(n, device="cuda")).to(dt)

    def inputs():
        x = torch.randn(*shape[:-1], n + (24 if strided else 0), device="cuda", dtype=dt)[..., :n]
        r = torch.randn(shape, device="cuda", dtype=dt) if "residual" in kind else None
        return x, r

    kw = dict(prenorm=kind == "prenorm", offset=1.0 if kind == "gemma" else 0.0,
              casting="gemma" if kind == "gemma" else "llama",
              residual_dtype=torch.float32 if kind == "residual fp32 h" else None)
    x, r = inputs()
    R.rms_norm(x, w, residual=r, **kw)  # makes the plan
    assert len(plan.PLANS) == 1
    x, r = inputs()
    hdt = kw["residual_dtype"] or dt
    _poison((shape, dt), (shape, hdt))
    replay_only()
    out = R.rms_norm(x, w, residual=r, **kw)
    y, h = out if isinstance(out, tuple) else (out, None)
    hin = (x.float() + r.float()).to(hdt) if r is not None else x  # as the kernel rounds h
    ref, _ = rms_norm_ref(hin, w, offset=kw["offset"])
    assert y.shape == x.shape and not y.isnan().any()
    assert max_scaled_error(y, ref) <= 1
    if r is not None:
        assert torch.equal(h, hin)
    if kind == "prenorm":
        assert h is x


@pytest.mark.parametrize("dt, rdt", [(torch.bfloat16, torch.bfloat16),
                                     (torch.float16, torch.float32)], ids=str)
@pytest.mark.parametrize("shape", [(1, 4096), (4, 1, 4096), (256, 4096), (3, 1000), (2, 65536)],
                         ids=str)
def test_a_replayed_in_place_call_is_right(replay_only, shape, dt, rdt):
    n = shape[-1]
    w = (1 + 0.3 * torch.randn(n, device="cuda")).to(dt)
    x, r = torch.randn(shape, device="cuda", dtype=dt), torch.randn(shape, device="cuda", dtype=rdt)
    R.fused_add_rms_norm_(x, r, w)
    x, r = torch.randn(shape, device="cuda", dtype=dt), torch.randn(shape, device="cuda", dtype=rdt)
    h = (x.float() + r.float()).to(rdt)
    ref, _ = rms_norm_ref(h, w)
    replay_only()
    R.fused_add_rms_norm_(x, r, w)
    assert max_scaled_error(x, ref) <= 1 and torch.equal(r, h)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("dt", [torch.bfloat16, torch.float32], ids=str)
@pytest.mark.parametrize("shape", [(1, 4096), (4, 1, 4096), (256, 4096), (3, 1000), (2, 65536)],
                         ids=str)
def test_an_autograd_replay_gives_a_fresh_plans_bits(shape, dt, residual):
    """Forward and backward replayed (the second step) against plans made afresh (PLANS
    dropped): the same bits in y, h and every gradient."""
    n = shape[-1]

    def inputs():
        x = torch.randn(shape, device="cuda", dtype=dt, requires_grad=True)
        w = (1 + 0.3 * torch.randn(n, device="cuda")).to(dt).requires_grad_()
        r = torch.randn(shape, device="cuda", dtype=dt, requires_grad=True) if residual else None
        return x, w, r, torch.randn(shape, device="cuda", dtype=dt)

    def step(x, w, r, dy):
        out = R.rms_norm(x, w, residual=r)
        ys, dys = (list(out), [dy, 0.5 * dy]) if r is not None else ([out], [dy])
        leaves = [t for t in (x, w, r) if t is not None]
        return [y.detach() for y in ys] + list(torch.autograd.grad(ys, leaves, dys))

    plan.PLANS.clear()
    step(*inputs())
    assert [k[-1] for k in plan.PLANS] == [True], "the key ends with: autograd is needed"
    ins = inputs()
    fast = step(*ins)
    plan.PLANS.clear()
    fresh = step(*ins)
    assert len(fast) == len(fresh) == (5 if residual else 3)
    for a, b in zip(fast, fresh):
        assert torch.equal(a, b)

"""rms_norm's eager fast path (ops._EAGER): a no-grad call whose signature passed the checks
before goes straight to its launch plan. Run on the CPU with Triton's launcher faked, as a GPU
process would run it (test_launch's fake_fwd)."""

import pytest
import torch

from rmsnorm_triton import kernels, launch, ops, rms_norm
from test_launch import compiled_path, fake_fwd  # noqa: F401 - fixtures


@pytest.fixture
def eager(fake_fwd, monkeypatch):  # noqa: F811
    """CPU tensors pass the checks as in a GPU process; the launches are recorded."""
    monkeypatch.setattr(launch, "interpreted", lambda: True)
    monkeypatch.setattr(kernels, "LOOP_ERROR", None)
    monkeypatch.setattr(ops, "_EAGER", {})
    return fake_fwd


def _launches(made):
    return [c for k in made for c in k.calls]


def _no_checks(monkeypatch):
    def refuse(*a):
        raise AssertionError("the replay ran the checks")

    monkeypatch.setattr(ops, "_validate", refuse)
    monkeypatch.setattr(ops, "rows_view", refuse)


def test_a_repeated_call_replays_without_checks_or_views(eager, monkeypatch):
    x, w = torch.randn(2, 3, 64), torch.randn(64)
    y1 = rms_norm(x, w)
    assert len(ops._EAGER) == 1
    _no_checks(monkeypatch)
    x2, w2 = torch.randn(2, 3, 64), torch.randn(64)
    y2 = rms_norm(x2, w2)
    first, second = _launches(eager)
    assert first[:9] == second[:9], "grid, stream, function"
    p = x2.data_ptr()  # x, and the stand-in for every pointer the launch does not read
    assert second[9:18] == (p, p, w2.data_ptr(), y2.data_ptr(), p, p, p, p, p)
    assert first[18:] == second[18:], "strides, sizes, scalars and constexprs"
    assert y2.shape == y1.shape == x.shape and y2.dtype == x.dtype
    assert y2.data_ptr() != y1.data_ptr()


@pytest.mark.parametrize("kind", ["residual", "prenorm", "prenorm cast", "residual cast"])
def test_a_replay_returns_what_the_full_path_returns(eager, monkeypatch, kind):
    x, w = torch.randn(5, 64, dtype=torch.float16), torch.randn(64)
    r = torch.randn(5, 64, dtype=torch.float16) if "residual" in kind else None
    kw = dict(residual=r, prenorm="prenorm" in kind,
              residual_dtype=torch.float32 if "cast" in kind else None)
    full = rms_norm(x, w, **kw)
    _no_checks(monkeypatch)
    fast = rms_norm(x, w, **kw)
    assert len(_launches(eager)) == 2
    assert isinstance(fast, tuple) and len(fast) == len(full) == 2
    for a, b in zip(full, fast):
        assert a.shape == b.shape and a.dtype == b.dtype
    if kind == "prenorm":
        assert fast[1] is x, "prenorm without a residual: h is x itself"
    if r is not None:
        assert fast[1].data_ptr() not in (x.data_ptr(), r.data_ptr(), full[1].data_ptr())


@pytest.mark.parametrize("change", ["eps", "eps int", "offset sign", "dtype", "rows", "stride",
                                    "casting", "prenorm", "out_dtype", "weight dtype", "align"])
def test_a_call_that_differs_is_not_replayed(eager, change):
    base = torch.randn(4, 80)
    x, w = base[:, :64], torch.randn(64)
    kw = dict(eps=1e-6, offset=0.0, casting="llama")
    rms_norm(x, w, **kw)
    args = dict(x=x, w=w)
    if change == "eps":
        kw["eps"] = 1e-5
    elif change == "eps int":
        kw["eps"] = 0
    elif change == "offset sign":
        kw["offset"] = -0.0
    elif change == "dtype":
        args["x"] = x.double()
    elif change == "rows":
        args["x"] = x[:3]
    elif change == "stride":
        args["x"] = x.contiguous()
    elif change == "casting":
        kw["casting"] = "gemma"
    elif change == "prenorm":
        kw["prenorm"] = True
    elif change == "out_dtype":
        kw["out_dtype"] = torch.float16
    elif change == "weight dtype":
        args["w"] = w.half()
    else:
        args["x"] = base[:, 1:65]
    before = len(ops._EAGER)
    rms_norm(args["x"], args["w"], **kw)
    assert len(ops._EAGER) == before + 1, "a second entry, made by the full path"


def test_calls_that_are_never_replayed(eager):
    w = torch.randn(64)
    x = torch.randn(3, 64, requires_grad=True)
    rms_norm(x, w)  # autograd
    rms_norm(torch.randn(64, 3).t(), w)  # rows that do not view as (M, N): copied each call
    rms_norm(torch.randn(3, 64), torch.randn(128)[::2])  # a strided weight: copied each call
    rms_norm(torch.randn(0, 64), w)  # nothing to launch
    assert not ops._EAGER
    with torch.no_grad():
        rms_norm(x, w)
    assert len(ops._EAGER) == 1, "no grad mode: x's requires_grad does not matter"


@pytest.mark.parametrize("bad, error", [
    (dict(offset=True), TypeError), (dict(eps=True), TypeError), (dict(eps=-1.0), ValueError),
    (dict(casting="LLAMA"), ValueError), (dict(eps=float("nan")), ValueError),
    (dict(out_dtype=torch.int32), TypeError), (dict(x=[1.0] * 64), TypeError),
    (dict(weight=torch.randn(63)), ValueError)])
def test_bad_arguments_after_a_replayed_call_still_raise(eager, bad, error):
    """Each bad value beside a key that passed (offset=True == 1.0, eps=True == 1.0): the key
    holds the scalars' types, so the full path's checks see it."""
    good = dict(x=torch.randn(3, 64), weight=torch.randn(64), eps=1.0, offset=1.0)
    rms_norm(**good)
    rms_norm(**good)
    with pytest.raises(error):
        rms_norm(**{**good, **bad})


@pytest.fixture
def interpreted_plans(monkeypatch):
    """The compiled path (launch plans and ops._EAGER included) with the real kernel run by
    Triton's interpreter behind the faked launcher: each address it is handed maps back to its
    tensor (registered by the test, or made by torch.empty / empty_like, which hand out NaN so
    that an element never written shows). Returns the registry."""
    if not launch.interpreted():
        pytest.skip("runs the kernel through Triton's interpreter: a CPU process only")
    kern, real_empty, real_like = kernels.rms_norm_fwd, torch.empty, torch.empty_like
    tensors = {}

    def keep(t):
        if t.is_floating_point():
            t.fill_(float("nan"))
        tensors[t.data_ptr()] = t
        return t

    class Interpreted:
        function, packed_metadata = "fn", "meta"

        def _init_handles(self):
            pass

        def run(self, g0, g1, g2, stream, fn, meta, *rest):
            args = list(rest[3:])
            for i in launch._LAYOUT[kern][0]:
                args[i] = tensors[args[i]]
            kern.__class__.__getitem__(kern, (g0, g1, g2))(*args)

    monkeypatch.setattr(launch, "interpreted", lambda: True)
    monkeypatch.setattr(launch, "INTERPRETED", False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: -1)
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda dev: 0, raising=False)
    monkeypatch.setattr(torch, "empty", lambda *a, **k: keep(real_empty(*a, **k)))
    monkeypatch.setattr(torch, "empty_like", lambda *a, **k: keep(real_like(*a, **k)))
    from test_launch import _params

    monkeypatch.setattr(kern, "params", _params(kern), raising=False)
    monkeypatch.setattr(kern, "warmup", lambda *a, **k: Interpreted(), raising=False)
    for name in ("_COMPILED", "_LAYOUT", "_PLANS"):
        monkeypatch.setattr(launch, name, {})
    monkeypatch.setattr(ops, "_EAGER", {})
    return tensors


@pytest.mark.parametrize("shape, dtype, kind", [
    ((3, 64), torch.bfloat16, "plain"), ((2, 3, 48), torch.float16, "plain"),
    ((4, 40), torch.float32, "strided"), ((3, 64), torch.bfloat16, "residual"),
    ((2, 2, 64), torch.float16, "residual fp32 h"), ((3, 64), torch.bfloat16, "prenorm"),
    ((5, 32), torch.float16, "gemma"), ((3, 64), torch.bfloat16, "y fp32")])
def test_a_replay_computes_what_the_interpreted_path_computes(interpreted_plans, monkeypatch,
                                                              shape, dtype, kind):
    """The second call goes through the replay alone, its outputs made by the plan (NaN until
    written); the same inputs through the interpreted path (no plans) give the same bits."""
    g = torch.Generator().manual_seed(len(kind) * 7 + shape[-1])
    n = shape[-1]
    w = (1 + 0.3 * torch.randn(n, generator=g)).to(dtype)
    kw = dict(offset=1.0 if kind == "gemma" else 0.0, prenorm=kind == "prenorm",
              casting="gemma" if kind == "gemma" else "llama",
              residual_dtype=torch.float32 if "fp32 h" in kind else None,
              out_dtype=torch.float32 if kind == "y fp32" else None)

    def inputs():
        cols = n + 8 if kind == "strided" else n
        x = torch.randn(*shape[:-1], cols, generator=g).to(dtype)[..., :n]
        r = torch.randn(shape, generator=g).to(dtype) if "residual" in kind else None
        for t in (x, r, w):
            if t is not None:
                interpreted_plans[t.data_ptr()] = t
        return x, r

    x, r = inputs()
    rms_norm(x, w, residual=r, **kw)
    assert len(ops._EAGER) == 1
    x, r = inputs()
    _no_checks(monkeypatch)
    fast = rms_norm(x, w, residual=r, **kw)
    monkeypatch.undo()  # the interpreted path: what CI runs everywhere else
    want = rms_norm(x, w, residual=r, **kw)
    fast, want = (fast, want) if isinstance(fast, tuple) else ((fast,), (want,))
    assert len(fast) == len(want)
    for a, b in zip(fast, want):
        assert a.shape == b.shape and a.dtype == b.dtype and not a.isnan().any()
        assert torch.equal(a, b)
    if kind == "prenorm":
        assert fast[1] is x

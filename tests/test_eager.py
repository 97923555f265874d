"""rms_norm's eager fast path (plan.PLANS): a call whose signature passed the checks before goes
straight to its launch plan. Run on the CPU with Triton's launcher faked, as a GPU process would
run it (test_launch's fake_gpu)."""

import pytest
import torch

from rmsnorm_triton import _triton, fused_add_rms_norm_, ops, plan, rms_norm, tables
from rmsnorm_triton.plan import PLANS
from test_launch import _arg, fake_gpu  # noqa: F401 - fixtures


@pytest.fixture
def eager(fake_gpu):  # noqa: F811
    """CPU tensors pass the checks as in a GPU process; the launches are recorded."""
    return fake_gpu


def _launches(made):
    return [c for k in made for c in k.calls]


def _no_checks(monkeypatch):
    def refuse(*a):
        raise AssertionError("the replay ran the checks")

    monkeypatch.setattr(ops, "validate", refuse)
    monkeypatch.setattr(plan, "rows_view", refuse)


def test_a_repeated_call_replays_without_checks_or_views(eager, monkeypatch):
    x, w = torch.randn(2, 3, 64), torch.randn(64)
    y1 = rms_norm(x, w)
    assert len(PLANS) == 1
    _no_checks(monkeypatch)
    x2, w2 = torch.randn(2, 3, 64), torch.randn(64)
    y2 = rms_norm(x2, w2)
    first, second = _launches(eager)
    assert first[:9] == second[:9], "grid, stream, function"
    p = x2.data_ptr()  # x, and the stand-in for every pointer the launch does not read
    ptrs = [_arg(second, n) for n in ("X", "R", "W", "Y", "H", "RSTD", "PART")]
    assert ptrs == [p, p, w2.data_ptr(), y2.data_ptr(), p, p, p]
    i = plan.FWD.index["stride_x"]
    assert first[9 + i:] == second[9 + i:], "strides, sizes, scalars and constexprs"
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
    before = len(PLANS)
    rms_norm(args["x"], args["w"], **kw)
    assert len(PLANS) == before + 1, "a second entry, made by the full path"


def test_calls_that_need_a_copy_replay_it(eager):
    """Rows that do not view as (M, N) and a strided weight are copied by every call, the
    replays too: the launcher is handed the copies, never the caller's tensors."""
    w = torch.randn(64)
    for _ in range(2):
        x = torch.randn(64, 3).t()
        rms_norm(x, w)
        assert _arg(eager[-1].calls[-1], "X") != x.data_ptr() and _arg(
            eager[-1].calls[-1], "W") == w.data_ptr()
    for _ in range(2):
        ws = torch.randn(128)[::2]
        rms_norm(torch.randn(3, 64), ws)
        assert _arg(eager[-1].calls[-1], "W") != ws.data_ptr()
    for _ in range(2):
        assert rms_norm(torch.randn(0, 64), w).shape == (0, 64)  # nothing to launch
    assert len(PLANS) == 3 and len(_launches(eager)) == 4


def test_autograd_and_no_grad_calls_have_their_own_entries(eager):
    w, x = torch.randn(64), torch.randn(3, 64, requires_grad=True)
    rms_norm(x, w)
    with torch.no_grad():
        rms_norm(x, w)
    rms_norm(x.detach(), w)
    assert sorted(k[-1] for k in PLANS) == [False, True], "no grad: requires_grad is moot"


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
    """The compiled path (launch plans included) with the real kernel run by Triton's
    interpreter behind the faked launcher: each address it is handed maps back to its tensor
    (registered by the test, or made by torch.empty / empty_like, which hand out NaN so that an
    element never written shows). Returns the registry."""
    if not _triton.INTERPRETED:
        pytest.skip("runs the kernel through Triton's interpreter: a CPU process only")
    real_empty, real_like = torch.empty, torch.empty_like
    tensors = {}

    def keep(t):
        if t.is_floating_point():
            t.fill_(float("nan"))
        tensors[t.data_ptr()] = t
        return t

    class Interpreted:
        function, packed_metadata, n_regs = "fn", "meta", 32

        def __init__(self, kern, call, *rest):
            self.kern = kern
            self.ptrs = [i for i, a in enumerate(call) if isinstance(a, torch.Tensor)]

        def _init_handles(self):
            pass

        def run(self, gridX, gridY, gridZ, stream, function, kernel_metadata, launch_metadata,
                launch_enter_hook, launch_exit_hook, *args):  # (Triton's launcher's names)
            args = list(args)
            for i in self.ptrs:
                args[i] = tensors[args[i]]
            tensors["fast launches"] += 1
            self.kern[(gridX, gridY, gridZ)](*args)

    monkeypatch.setattr(torch, "empty", lambda *a, **k: keep(real_empty(*a, **k)))
    monkeypatch.setattr(torch, "empty_like", lambda *a, **k: keep(real_like(*a, **k)))
    tensors["fast launches"] = 0  # (Interpreted.run's count: the fast path was taken)
    with _triton.simulate(Interpreted):
        yield tensors
    assert tensors["fast launches"] > 0, "the faked launcher was never called"


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
    assert len(PLANS) == 1
    x, r = inputs()
    _no_checks(monkeypatch)
    fast = rms_norm(x, w, residual=r, **kw)
    monkeypatch.undo()
    with _triton.simulate(None):  # the interpreted path: what CI runs everywhere else
        want = rms_norm(x, w, residual=r, **kw)
    fast, want = (fast, want) if isinstance(fast, tuple) else ((fast,), (want,))
    assert len(fast) == len(want)
    for a, b in zip(fast, want):
        assert a.shape == b.shape and a.dtype == b.dtype and not a.isnan().any()
        assert torch.equal(a, b)
    if kind == "prenorm":
        assert fast[1] is x


@pytest.mark.parametrize("kind", ["plain", "no dw", "no weight", "dr too", "dr only", "dw only",
                                  "dh", "strided", "fp32", "offset"])
def test_a_backward_replay_computes_what_the_interpreted_path_computes(interpreted_plans,
                                                                       monkeypatch, kind):
    """plan.backward's second call (torch.compile's backward op) replays both launches (the
    table is not read); the same inputs through the interpreted path give the same bits in dx,
    dr and dw."""
    g = torch.Generator().manual_seed(len(kind))
    dt = torch.float32 if kind == "fp32" else torch.bfloat16
    m, n = 5, 48

    def inputs():
        cols = n + 8 if kind == "strided" else n
        x = torch.randn(m, cols, generator=g).to(dt)[:, :n]
        dy = torch.randn(m, n, generator=g).to(dt)
        w = None if kind == "no weight" else (1 + 0.3 * torch.randn(n, generator=g)).to(dt)
        rstd = torch.rand(m, generator=g) + 0.5
        dh = torch.randn(m, n, generator=g).to(dt) if kind == "dh" else None
        for t in (x, dy, w, rstd, dh):
            if t is not None:
                interpreted_plans[t.data_ptr()] = t
        return dy, x, w, rstd, dh

    dx_dt = None if kind in ("dr only", "dw only") else dt
    dr_dt = torch.float32 if kind in ("dr too", "dr only") else None
    rest = (dx_dt, dr_dt, kind != "no dw")
    offset = 1.0 if kind == "offset" else 0.0

    def call(dy, x, w, rstd, dh):
        return plan.backward(dy, dh, x, w, rstd, offset, *rest)

    call(*inputs())
    assert len(PLANS) == 1
    ins = inputs()
    monkeypatch.setattr(tables, "bwd_config", None)  # the replay reads no table
    fast = call(*ins)
    monkeypatch.undo()
    with _triton.simulate(None):
        want = call(*ins)
    assert [t is None for t in fast] == [t is None for t in want]
    assert (fast[2] is None) == (kind in ("no dw", "no weight"))
    for a, b in zip(fast, want):
        if a is not None:
            assert a.dtype == b.dtype and not a.isnan().any() and torch.equal(a, b)


@pytest.mark.parametrize("change", ["offset sign", "dtype", "need dw", "dh", "stride", "rows"])
def test_a_backward_that_differs_is_not_replayed(interpreted_plans, change):
    m, n = 4, 32
    base = torch.randn(m, n + 8)
    x, dy, w, rstd = base[:, :n], torch.randn(m, n), torch.randn(n), torch.rand(m) + 0.5
    kw = dict(offset=0.0, dh=None, dx_dtype=x.dtype, dr_dtype=None, need_dw=True)
    for t in (base, dy, w, rstd):
        interpreted_plans[t.data_ptr()] = t

    def call(x=x, dy=dy, **over):
        a = {**kw, **over}
        plan.backward(dy, a["dh"], x, w, rstd, a["offset"], a["dx_dtype"], a["dr_dtype"],
                      a["need_dw"])

    call()
    other = {"offset sign": dict(offset=-0.0), "dtype": dict(dx_dtype=torch.float16),
             "need dw": dict(need_dw=False), "dh": dict(dh=dy.clone()),
             "stride": dict(x=x.contiguous()), "rows": dict(x=x[:3], dy=dy[:3])}[change]
    for t in other.values():
        if isinstance(t, torch.Tensor):
            interpreted_plans[t.data_ptr()] = t
    call(**other)
    assert len(PLANS) == 2


@pytest.mark.parametrize("kind", ["plain", "residual", "3-d", "x only"])
def test_an_autograd_replay_gives_the_interpreted_paths_bits(interpreted_plans, monkeypatch,
                                                             kind):
    """A call that needs autograd replays its forward launch (rstd stored) inside _RMSNormFn
    without the checks; its outputs and its gradients (the backward replayed too) equal the
    interpreted path's, bit for bit."""
    g = torch.Generator().manual_seed(len(kind) + 11)
    shape = (2, 3, 32) if kind == "3-d" else (5, 32)
    dt = torch.bfloat16

    def inputs():
        x = torch.randn(shape, generator=g).to(dt).requires_grad_()
        w = (1 + 0.3 * torch.randn(32, generator=g)).to(dt).requires_grad_(kind != "x only")
        r = torch.randn(shape, generator=g).to(dt).requires_grad_() if kind == "residual" else None
        dy = torch.randn(shape, generator=g).to(dt)
        for t in (x, w, r, dy):
            if t is not None:
                interpreted_plans[t.data_ptr()] = t
        return x, w, r, dy

    def step(x, w, r, dy):
        out = rms_norm(x, w, residual=r)
        ys, dys = (list(out), [dy, 0.5 * dy]) if r is not None else ([out], [dy])
        for t in dys:  # (with a residual, h's gradient too: the launcher must see every input)
            interpreted_plans[t.data_ptr()] = t
        leaves = [t for t in (x, w, r) if t is not None and t.requires_grad]
        return [y.detach() for y in ys] + list(torch.autograd.grad(ys, leaves, dys))

    step(*inputs())
    assert [k[-1] for k in PLANS] == [True], "the key ends with: autograd is needed"
    ins = inputs()
    monkeypatch.setattr(ops, "validate", None)  # the forward replay runs no checks
    monkeypatch.setattr(tables, "fwd_config", None)  # and, with the backward's, no table
    monkeypatch.setattr(tables, "bwd_config", None)
    fast = step(*ins)
    monkeypatch.undo()
    with _triton.simulate(None):
        want = step(*ins)
    assert len(fast) == len(want) == {"plain": 3, "3-d": 3, "residual": 5, "x only": 2}[kind]
    for a, b in zip(fast, want):
        assert a.dtype == b.dtype and not a.isnan().any() and torch.equal(a, b)


@pytest.mark.parametrize("kind", ["plain", "3-d", "fp32 residual", "gemma"])
def test_an_in_place_replay_gives_the_interpreted_paths_bits(interpreted_plans, monkeypatch,
                                                             kind):
    """fused_add_rms_norm_'s second call replays its launch (no checks) writing x and residual
    in place; the same inputs through the interpreted path give the same bits."""
    g = torch.Generator().manual_seed(len(kind) + 3)
    shape = (2, 3, 48) if kind == "3-d" else (4, 48)
    rdt = torch.float32 if kind == "fp32 residual" else torch.float16
    w = (1 + 0.3 * torch.randn(48, generator=g)).to(torch.float16)
    kw = dict(offset=1.0, casting="gemma") if kind == "gemma" else {}

    def inputs():
        x = torch.randn(shape, generator=g).to(torch.float16)
        r = torch.randn(shape, generator=g).to(rdt)
        for t in (x, r, w):
            interpreted_plans[t.data_ptr()] = t
        return x, r

    fused_add_rms_norm_(*inputs(), w, 1e-5, **kw)
    assert len(PLANS) == 1
    x, r = inputs()
    x0, r0, x_in, r_in = x.clone(), r.clone(), x.clone(), r.clone()
    interpreted_plans[x0.data_ptr()], interpreted_plans[r0.data_ptr()] = x0, r0
    _no_checks(monkeypatch)
    monkeypatch.setattr(ops, "overlap", None)
    out = fused_add_rms_norm_(x, r, w, 1e-5, **kw)
    assert out[0] is x and out[1] is r
    monkeypatch.undo()
    with _triton.simulate(None):
        want = fused_add_rms_norm_(x0, r0, w, 1e-5, **kw)
    assert torch.equal(x, want[0]) and torch.equal(r, want[1])
    assert not torch.equal(x, x_in) and not torch.equal(r, r_in), "both written in place"


def test_overlapping_tensors_after_a_replayed_call_still_raise(interpreted_plans):
    base, w = torch.randn(6, 32), torch.randn(32)
    x, r = torch.randn(2, 32), torch.randn(2, 32)
    for t in (w, x, r, base[:2], base[4:]):
        interpreted_plans[t.data_ptr()] = t
    fused_add_rms_norm_(x, r, w)
    fused_add_rms_norm_(base[:2], base[4:], w)  # the same signature, apart: replayed
    assert len(PLANS) == 1
    with pytest.raises(ValueError, match="share memory"):
        fused_add_rms_norm_(base[:2], base[1:3], w)  # the same signature, overlapping

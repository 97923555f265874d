"""Host launcher pieces that the CPU suite cannot reach through a kernel: the compiled-kernel
call (run, on a stand-in for Triton's launcher), the small-M tile rule and SPLIT's empty slots."""

import types

import pytest
import torch

from rmsnorm_triton import heuristics, kernels, launch
from rmsnorm_triton.heuristics import Config


class FakeCompiled:
    function, packed_metadata = "fn", "meta"

    def __init__(self):
        self.calls = []

    def _init_handles(self):
        pass

    def run(self, *a):
        self.calls.append(a)


class FakeKernel:
    """Three pointer args, two ints, a float, then two constexprs: the layout of ours."""

    def __init__(self):
        self.params = [types.SimpleNamespace(is_constexpr=i >= 6, name=f"a{i}") for i in range(8)]
        self.compiled = []

    def warmup(self, *args, grid, num_warps, **opts):
        self.compiled.append((args, num_warps, opts))
        return FakeCompiled()


@pytest.fixture
def compiled_path(monkeypatch):
    """launch.run as on a GPU, with the device calls answered for CPU tensors."""
    monkeypatch.setattr(launch, "INTERPRETED", False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: -1)  # what a CPU tensor reports
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda dev: 77, raising=False)


def test_run_passes_addresses_and_keeps_the_rest(compiled_path):
    kern = FakeKernel()
    a, b = torch.randn(8), torch.randn(4, dtype=torch.float16)
    args = [a, b, a, 5, 16, 0.5, 128, True]
    launch.run(kern, (3,), args, 4)
    launch.run(kern, (3,), args, 4)
    assert len(kern.compiled) == 1, "the second call must reuse the compiled kernel"
    assert kern.compiled[0][0][0] is a, "compilation sees the tensors (their dtypes)"
    (k,) = [launch._COMPILED[key] for key in launch._COMPILED if key[0] is kern]
    assert len(k.calls) == 2
    grid_stream, rest = k.calls[0][:9], k.calls[0][9:]
    assert grid_stream == (3, 1, 1, 77, "fn", "meta", None, None, None)
    assert list(rest) == [a.data_ptr(), b.data_ptr(), a.data_ptr(), 5, 16, 0.5, 128, True]
    assert all(type(v) is int for v in rest[:3])
    assert args[0] is a, "the caller's list is left as it was"


def test_run_recompiles_for_what_triton_specialises_on(compiled_path):
    kern = FakeKernel()
    a = torch.randn(64)
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 128, True], 4)
    launch.run(kern, (1,), [a[1:], a, a, 5, 16, 0.5, 128, True], 4)  # 4-byte aligned only
    launch.run(kern, (1,), [a, a, a, 1, 16, 0.5, 128, True], 4)  # an int equal to 1
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 256, True], 4)  # another constexpr
    launch.run(kern, (1,), [a.double(), a, a, 5, 16, 0.5, 128, True], 4)  # another dtype
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 128, True], 8)  # other warps
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 128, True], 8, 96)  # a register cap
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 128, True], 8, 96)
    assert len(kern.compiled) == 7
    assert [c[2] for c in kern.compiled] == [{}] * 6 + [{"maxnreg": 96}], "the cap reaches ptxas"


def test_tables_parse_and_the_residual_has_its_own_entries():
    """Each SPLIT entry gives a Config with its register cap; with a residual, the sizes
    FWD_RES names take its entries (run 34: FWD's capped layouts were slower there)."""
    for table in (heuristics.FWD, heuristics.FWD_RES, heuristics.FWD_BF16, heuristics.FWD_FP32,
                  heuristics.FWD_FP32_RES, heuristics.BWD, heuristics.BWD_FP32):
        for key, entry in table.items():
            cfg = heuristics._lookup(table, key or 1 << 20, 2)
            mode = entry[3].removesuffix("+dyn")
            assert cfg.split == (mode in ("split", "early"))
            assert cfg.dynamic == (entry[3].endswith("+dyn") and table not in (
                heuristics.BWD, heuristics.BWD_FP32)), "+dyn: forward tables only"
            assert cfg.maxnreg == (entry[5] if len(entry) > 5 else 0)
            if cfg.maxnreg:  # a cap that lets the programs asked for fit on one SM
                assert cfg.maxnreg * cfg.num_warps * 32 * cfg.progs_per_sm <= 65536
    for n in (65536, 262144, 1 << 20):
        plain = heuristics.fwd_config(n, torch.bfloat16)
        res = heuristics.fwd_config(n, torch.bfloat16, True)
        key = n if n in heuristics.FWD_RES else None
        assert res == heuristics._lookup(heuristics.FWD_RES, heuristics.pow2(n), 2), n
        assert (plain == res) == (heuristics.FWD.get(key) == heuristics.FWD_RES[key])
    for n in heuristics.FWD_BF16:  # bf16's own entries: no residual, w * x_hat in fp32 only
        bf16 = heuristics.fwd_config(n, torch.bfloat16, native=False)
        assert bf16 == heuristics._lookup(heuristics.FWD_BF16, n, 2)
        assert bf16 != heuristics.fwd_config(n, torch.float16, native=False)
        assert heuristics.fwd_config(n, torch.bfloat16) == heuristics.fwd_config(n, torch.float16)
        assert heuristics.fwd_config(n, torch.bfloat16, True) == heuristics.fwd_config(
            n, torch.float16, True)
    for n in (65536, 131072, 262144):  # fp32 with a residual keeps its own entries
        assert heuristics.fwd_config(n, torch.float32, True) == heuristics._lookup(
            heuristics.FWD_FP32_RES, n, 4)
        assert heuristics.fwd_config(n, torch.float32) != heuristics.fwd_config(
            n, torch.float32, True)
    n = 32768  # in neither: the plain entry serves all
    assert heuristics.fwd_config(n, torch.float16, True) == heuristics.fwd_config(n, torch.float16)
    assert heuristics.fwd_config(n, torch.bfloat16) == heuristics.fwd_config(n, torch.float16)


@pytest.mark.parametrize("m", [1, 3, 8, 100, 131, 132, 256, 300, 4096])
@pytest.mark.parametrize("sms", [1, 132])
def test_small_m_tiles_cover_the_sms(m, sms):
    base = Config(8, 4096, 8, True)
    cfg = heuristics.with_rows(base, m, sms)
    tiles = -(-m // cfg.block_m)
    assert cfg.block_m & (cfg.block_m - 1) == 0 and 1 <= cfg.block_m <= base.block_m
    assert cfg.block_m <= heuristics.pow2(m), "no tile larger than the rows there are"
    assert tiles >= min(m, sms) or cfg.block_m == 1
    if cfg.block_m < min(base.block_m, heuristics.pow2(m)):  # halved: only while needed
        assert -(-m // (cfg.block_m * 2)) < sms
    assert cfg.block_m * cfg.block_n // (32 * cfg.num_warps) >= 8 or cfg.num_warps == 1


def test_split_slots_are_reused_with_a_new_epoch_each_call(monkeypatch):
    """SPLIT's slots: one buffer per (device, stream), each call the next epoch, never 0 (fresh
    slots are zeros: not arrived); a larger call or a worn-out epoch gets fresh zeros."""
    monkeypatch.setattr(launch, "_SLOTS", {})
    a, e1 = launch.slots(3, 5, "cpu")
    assert a.dtype == torch.int64 and a.numel() == 15 and not a.any() and e1 == 1
    # the kernels address the forward's row counters below the slots (kernels._counter): two
    # zeroed sets of N_COUNTERS words must lie there, in the same buffer
    head = 2 * kernels.N_COUNTERS
    assert a.storage_offset() == head and a.untyped_storage().nbytes() == (head + 15) * 8
    assert not a._base[:head].any()
    b, e2 = launch.slots(2, 4, "cpu")
    assert b is a and e2 == 2, "the same slots, the next epoch"
    c, e3 = launch.slots(4, 5, "cpu")
    assert c is not a and c.numel() == 20 and not c.any() and e3 == 1, "grown: fresh zeros"
    launch._SLOTS[(torch.device("cpu"), None)][1] = 2**31 - 1
    d, e4 = launch.slots(4, 5, "cpu")
    assert d is not c and e4 == 1, "an epoch that would pass int32 starts over on fresh zeros"
    launch._SLOTS.update({("stream", i): None for i in range(63)})
    launch.slots(5, 5, "cpu")  # new slots (larger) while 64 streams hold some
    assert len(launch._SLOTS) == 1, "past 64 streams' slots, the old ones are let go"


def test_split_slots_under_graph_capture_are_fresh(monkeypatch):
    """Captured in a CUDA graph, every call gets its own zeroed slots and epoch 1: the zeroing is
    in the graph, so each replay starts from empty slots again."""
    monkeypatch.setattr(launch, "_SLOTS", {})
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    made = []
    monkeypatch.setattr(torch, "zeros", lambda *a, **k: made.append(a) or torch.ones(1))
    dev = types.SimpleNamespace(type="cuda", index=0)
    monkeypatch.setattr(torch, "device", lambda d: dev)
    buf, epoch = launch.slots(3, 5, "cuda")
    assert epoch == 1 and made == [(2 * kernels.N_COUNTERS + 15,)] and not launch._SLOTS, (
        "fresh zeros for the row counters' two sets and the slots")


def test_the_epoch_is_not_part_of_the_compile_key(compiled_path):
    """The epoch changes every call: Triton does not specialise on it (do_not_specialize), and
    the launcher's own key leaves it out, or each residue mod 16 would look up another kernel."""
    for k in (kernels.rms_norm_fwd, kernels.rms_norm_bwd):
        assert [p.name for p in _params(k) if p.do_not_specialize] == ["EPOCH"]
    kern = FakeKernel()
    kern.params[4].do_not_specialize = True  # the second int stands in for EPOCH
    a, b = torch.randn(8), torch.randn(4)
    for epoch in (1, 2, 16, 17):
        launch.run(kern, (3,), [a, b, a, 5, epoch, 0.5, 128, True], 4)
    assert len(kern.compiled) == 1


def test_split_can_be_turned_off(monkeypatch):
    monkeypatch.delenv("RMSNORM_TRITON_SPLIT", raising=False)
    assert launch.split_allowed()
    monkeypatch.setenv("RMSNORM_TRITON_SPLIT", "0")
    assert not launch.split_allowed()


def _params(kernel):
    """The kernel's parameters as a compiled kernel has them (do_not_specialize included), also
    when this process runs Triton's interpreter."""
    import triton

    params = getattr(kernel, "params", None)
    jit = triton.runtime.jit.JITFunction
    return params or jit(kernel.fn, **getattr(kernel, "kwargs", {})).params


def _arg(call, name, kernel=kernels.rms_norm_fwd):
    """The argument `name` in a FakeCompiled call (grid, stream, ... then the kernel's args)."""
    return call[9 + [p.name for p in _params(kernel)].index(name)]


@pytest.fixture
def fake_fwd(compiled_path, monkeypatch):
    """launch.forward as on a GPU: rms_norm_fwd compiled into a FakeCompiled that records."""
    import triton

    kern = kernels.rms_norm_fwd
    made = []

    def warmup(*args, grid, num_warps, **opts):
        made.append(FakeCompiled())
        made[-1].opts = opts
        return made[-1]

    params = _params(kern)
    monkeypatch.setattr(kern, "params", params, raising=False)
    monkeypatch.setattr(kern, "warmup", warmup, raising=False)
    monkeypatch.setattr(launch, "_COMPILED", {})
    monkeypatch.setattr(launch, "_LAYOUT", {})
    monkeypatch.setattr(launch, "_PLANS", {})
    return made


def _fwd(x, w, r=None, eps=1e-6, **kw):
    return launch.forward(x, w, r, eps, 0.0, "llama", x.dtype, x.dtype, False, **kw)


def test_a_repeated_forward_replays_the_same_launch(fake_fwd):
    """The second call with the same key goes through the plan: the launcher gets exactly what
    the first call's path gave it, with this call's tensors' addresses and fresh outputs."""
    x, w, r = torch.randn(3, 64), torch.randn(64), torch.randn(3, 64)
    y1, h1, _ = _fwd(x, w, r)
    assert len(launch._PLANS) == 1
    x2, w2, r2 = torch.randn(3, 64), torch.randn(64), torch.randn(3, 64)
    y2, h2, _ = _fwd(x2, w2, r2)
    (k,) = fake_fwd
    first, second = k.calls
    assert first[:9] == second[:9], "grid, stream, function"
    a, b = list(first[9:]), list(second[9:])
    assert b[:6] == [x2.data_ptr(), r2.data_ptr(), w2.data_ptr(), y2.data_ptr(), h2.data_ptr(),
                     x2.data_ptr()], "this call's tensors; its x stands in for rstd"
    assert a[9:] == b[9:], "strides, sizes, scalars and constexprs as the first call's"
    assert y2.data_ptr() != y1.data_ptr() and h2.shape == h1.shape == (3, 64)


@pytest.mark.parametrize("change", ["eps", "dtype", "stride", "align", "no residual", "rows",
                                    "offset sign"])
def test_a_forward_that_differs_is_not_replayed(fake_fwd, change):
    base = torch.randn(3, 72)
    x, w, r = base[:, :64], torch.randn(64), torch.randn(3, 64)
    _fwd(x, w, r)
    kw = dict(x=x, w=w, r=r)
    if change == "eps":
        kw["eps"] = 1e-3
    elif change == "dtype":
        kw["w"] = w.double()
    elif change == "stride":
        kw["x"] = x.contiguous()
    elif change == "align":
        kw["x"] = base[:, 1:65]  # 4-byte aligned: Triton compiles another kernel
    elif change == "no residual":
        kw["r"] = None
    elif change == "offset sign":  # -0.0 == 0.0 as a key, not as an offset (w = -0.0)
        launch.forward(x, w, r, 1e-6, -0.0, "llama", x.dtype, x.dtype, False)
        assert len(launch._PLANS) == 2
        return
    else:
        kw["x"], kw["r"] = x[:2], r[:2]
    _fwd(**kw)
    assert len(launch._PLANS) == 2, "a second plan, made by the full path"
    last = fake_fwd[-1].calls[-1][9:]
    if change == "eps":
        assert 1e-3 in last
    if change == "rows":
        assert 2 in last


def test_forward_calls_that_are_never_replayed(fake_fwd):
    x, w = torch.randn(3, 64), torch.randn(64)
    _fwd(x, w, config=heuristics.fwd_config(64, x.dtype))
    _fwd(x, w, y=torch.empty_like(x))
    assert not launch._PLANS, "a given config or output skips the plans"


def test_w_first_only_for_a_wave_or_two(fake_fwd):
    """W_FIRST for grids of at most W_FIRST_WAVES waves; on the CPU one 'SM'."""
    _fwd(torch.randn(3, 64), torch.randn(64))  # one tile of 4 rows
    _fwd(torch.randn(4000, 64), torch.randn(64))  # 32 tiles of 128 rows
    firsts = [_arg(k.calls[-1], "W_FIRST") for k in fake_fwd]
    assert firsts == [True, False]
    assert not any(_arg(k.calls[-1], "W_NATIVE") for k in fake_fwd), "fp32: never W_NATIVE"


@pytest.mark.parametrize("change", [None, "offset", "gemma", "none", "fp32 w", "fp32 y", "fp16 x",
                                    "fp32", "no w", "no split", "loop", "long one pass"])
def test_w_native_only_where_it_gives_fp32s_bits(fake_fwd, monkeypatch, change):
    """SPLIT, and one-pass rows of W_NATIVE_ONE_PASS elements or more, multiply in 16 bits
    (W_NATIVE) only with Llama casting, a zero offset and x (h), w and y of one 16-bit dtype:
    there one rounding of the exact product. Rows walked in blocks never do."""
    monkeypatch.setattr(launch, "split_grid",
                        lambda k, args, i, cfg, m, n: (2, -(-n // cfg.block_n)))
    dt = torch.float32 if change == "fp32" else torch.bfloat16
    x, w = torch.randn(4, 256).to(dt), torch.randn(256).to(dt)
    offset, casting, out = 0.0, "llama", dt
    cfg = Config(1, 64, 4, False, change != "loop", 2)
    if change in ("no split", "long one pass"):  # one pass: a row of 256, short or long
        cfg = Config(1, 256, 4, True)
    monkeypatch.setattr(launch, "W_NATIVE_ONE_PASS", 256 if change == "long one pass" else 512)
    if change == "offset":
        offset = 1.0
    elif change in ("gemma", "none"):
        casting = change
    elif change == "fp32 w":
        w = w.float()
    elif change == "fp32 y":
        out = torch.float32
    elif change == "fp16 x":
        x = x.half()
    elif change == "no w":
        w = None
    seen = []  # without a config, the table is asked for the entry of the multiply taken
    monkeypatch.setattr(heuristics, "fwd_config", lambda *a: seen.append(a[3]) or cfg)
    launch.forward(x, w, None, 1e-6, offset, casting, out, x.dtype, False)
    assert seen == [change in (None, "no split", "loop", "long one pass")]
    split, native = _arg(fake_fwd[-1].calls[-1], "SPLIT"), _arg(fake_fwd[-1].calls[-1], "W_NATIVE")
    assert split == (change not in ("no split", "loop", "long one pass"))
    assert native == (change in (None, "long one pass"))
    # with a residual, h's dtype is the one that counts
    r = torch.randn(4, 256).to(dt)
    launch.forward(x, w, r, 1e-6, offset, casting, out, torch.float32, False, config=cfg)
    assert _arg(fake_fwd[-1].calls[-1], "W_NATIVE") is False


def test_pdl_only_on_hopper_and_later_and_never_interpreted(monkeypatch):
    """Programmatic dependent launch needs sm_90's griddepcontrol: never on a CPU tensor, under
    the interpreter, before compute capability 9, or with RMSNORM_TRITON_PDL=0."""
    monkeypatch.setattr(launch, "INTERPRETED", False)
    major = {0: 9, 1: 8}
    monkeypatch.setattr(heuristics, "device_props",
                        lambda i: types.SimpleNamespace(major=major[i]))
    cuda = lambda i: types.SimpleNamespace(type="cuda", index=i)  # noqa: E731
    assert launch.pdl_enabled(cuda(0)) and not launch.pdl_enabled(cuda(1))
    assert not launch.pdl_enabled(torch.device("cpu"))
    monkeypatch.setattr(launch, "PDL", False)
    assert not launch.pdl_enabled(cuda(0))
    monkeypatch.setattr(launch, "PDL", True)
    monkeypatch.setattr(launch, "INTERPRETED", True)
    assert not launch.pdl_enabled(cuda(0))


@pytest.mark.parametrize("pdl", [False, True])
def test_the_pdl_constexpr_decides_how_the_kernel_is_launched(compiled_path, pdl):
    """A kernel with a PDL constexpr is compiled with launch_pdl exactly when it is True: the
    wait inside and the launch attribute outside cannot disagree (a PDL launch of a kernel that
    does not wait would read its predecessor's outputs early)."""
    kern = FakeKernel()
    kern.params[7].name = "PDL"
    a = torch.randn(8)
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 128, pdl], 4)
    assert kern.compiled[-1][2] == ({"launch_pdl": True} if pdl else {})
    assert [p.name for p in _params(kernels.rms_norm_fwd)][-1] == "PDL"


@pytest.mark.parametrize("pdl", [False, True])
def test_forward_passes_pdl_where_the_device_allows(fake_fwd, monkeypatch, pdl):
    monkeypatch.setattr(launch, "pdl_enabled", lambda dev: pdl)
    x, w = torch.randn(3, 64), torch.randn(64)
    _fwd(x, w)
    _fwd(x, w)  # replayed: the same compiled kernel
    (k,) = fake_fwd
    assert _arg(k.calls[-1], "PDL") is pdl and len(k.calls) == 2
    assert k.opts == ({"launch_pdl": True} if pdl else {})


def _fake_ptxas(path, release):
    path.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {release}, V{release}.1'\n")
    path.chmod(0o755)
    return str(path)


def test_torch_ptxas_is_chosen_only_where_it_is_no_older(tmp_path):
    """PyTorch's ptxas builds our kernels where it runs and is at least Triton's own version."""
    launch.choose_ptxas.cache_clear()
    new = _fake_ptxas(tmp_path / "new", "13.0")
    old = _fake_ptxas(tmp_path / "old", "12.8")
    assert launch.ptxas_version(new) == (13, 0) and launch.ptxas_version(old) == (12, 8)
    assert launch.choose_ptxas(new, old) == new
    assert launch.choose_ptxas(old, new) is None, "an older ptxas would undo what Triton chose"
    broken = tmp_path / "broken"
    broken.write_text("not a program")
    assert launch.ptxas_version(broken) == ()
    assert launch.choose_ptxas(str(broken), old) is None
    launch.choose_ptxas.cache_clear()


def test_ptxas_is_left_alone_when_someone_chose(monkeypatch):
    """By default only the kernels in TORCH_PTXAS take torch's ptxas (run 73); "torch" / "triton"
    choose one for all; a TRITON_PTXAS_PATH set by the user (or by Inductor) wins; and nothing
    is set where torch has no ptxas."""
    monkeypatch.setattr(launch, "choose_ptxas", lambda a, b: "/torch/bin/ptxas")
    monkeypatch.setattr(launch.os.path, "isfile", lambda p: True)
    monkeypatch.delenv("TRITON_PTXAS_PATH", raising=False)
    monkeypatch.setattr(launch, "PTXAS", "table")
    assert launch.ptxas_path("rms_norm_bwd") == "/torch/bin/ptxas"
    assert launch.ptxas_path("rms_norm_fwd") is None
    monkeypatch.setattr(launch, "PTXAS", "torch")
    assert launch.ptxas_path("rms_norm_fwd") == "/torch/bin/ptxas"
    monkeypatch.setattr(launch, "PTXAS", "triton")
    assert launch.ptxas_path("rms_norm_bwd") is None
    monkeypatch.setattr(launch, "PTXAS", "torch")
    monkeypatch.setenv("TRITON_PTXAS_PATH", "/mine/ptxas")
    assert launch.ptxas_path("rms_norm_bwd") is None
    monkeypatch.delenv("TRITON_PTXAS_PATH")
    monkeypatch.setattr(launch.os.path, "isfile", lambda p: False)
    assert launch.ptxas_path("rms_norm_bwd") is None
    monkeypatch.setattr(launch, "PTXAS", "newest")
    with pytest.raises(ValueError, match="RMSNORM_TRITON_PTXAS is 'newest', expected 'table'"):
        launch.ptxas_path("rms_norm_bwd")


@pytest.mark.parametrize("chosen", [None, "/torch/bin/ptxas"])
def test_our_kernels_compile_with_the_chosen_ptxas_and_others_do_not(compiled_path, monkeypatch,
                                                                      chosen):
    """TRITON_PTXAS_PATH holds the choice while our kernel compiles, and is gone afterwards; the
    PTX ISA is named then, so that Triton's cache keys tell the two builds apart."""
    monkeypatch.delenv("TRITON_PTXAS_PATH", raising=False)
    monkeypatch.setattr(launch, "ptxas_path", lambda name: chosen)
    monkeypatch.setattr(launch, "ptx_isa", lambda path: 90)
    seen = []

    class Spy(FakeKernel):
        def warmup(self, *args, **kw):
            seen.append(launch.os.environ.get("TRITON_PTXAS_PATH"))
            return super().warmup(*args, **kw)

    a = torch.randn(8)
    kern = Spy()
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 128, True], 4)
    assert seen == [chosen]
    assert kern.compiled[-1][2] == ({"ptx_version": 90} if chosen else {})
    assert "TRITON_PTXAS_PATH" not in launch.os.environ
    with pytest.raises(ZeroDivisionError):
        with launch.ptxas_scope("/torch/bin/ptxas"):
            1 / 0
    assert "TRITON_PTXAS_PATH" not in launch.os.environ, "unset again after an error"


def test_the_ptx_isa_follows_the_ptxas_version(tmp_path):
    assert launch.ptx_isa(_fake_ptxas(tmp_path / "p", "13.0")) == 90
    assert launch.ptx_isa(_fake_ptxas(tmp_path / "q", "12.8")) == 87


def test_dynamic_rows_only_where_a_split_forward_entry_says_so():
    """"+dyn" in a table entry (run 93) gives a SPLIT Config with dynamic set; backward entries,
    one-pass ones and fp64's walked rows never have it."""
    assert heuristics._lookup({None: (1, 2048, 4, "early+dyn", 3)}, 65536, 2) == Config(
        1, 2048, 4, False, True, 3, early=True, dynamic=True)
    assert heuristics._lookup({None: (1, 2048, 4, "split+dyn", 3)}, 65536, 4).dynamic
    assert not heuristics._lookup({None: (1, 2048, 4, "early+dyn", 3)}, 65536, 8).dynamic
    assert heuristics.fwd_config(65536, torch.bfloat16, residual=True).dynamic
    assert not heuristics.fwd_config(65536, torch.bfloat16).dynamic
    assert not any(heuristics.bwd_config(1 << k, dt).dynamic for k in range(9, 19)
                   for dt in (torch.bfloat16, torch.float32))


@pytest.mark.parametrize("force", [None, True, False])
@pytest.mark.parametrize("dynamic", [True, False])
def test_dynamic_flag_reaches_the_split_forward(fake_fwd, monkeypatch, dynamic, force):
    """DYNAMIC is the entry's dynamic on a SPLIT launch (launch.SPLIT_DYNAMIC = True / False
    forces it, for A/B runs), and False when the launch falls back from SPLIT."""
    monkeypatch.setattr(launch, "SPLIT_DYNAMIC", force)
    monkeypatch.setattr(launch, "split_grid", lambda k, args, i, cfg, m, n: (2, -(-n // cfg.block_n)))
    x, w = torch.randn(4, 256).to(torch.bfloat16), torch.randn(256).to(torch.bfloat16)
    cfg = Config(1, 64, 4, False, True, 2, early=True, dynamic=dynamic)
    launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False, config=cfg)
    assert _arg(fake_fwd[-1].calls[-1], "DYNAMIC") is (dynamic if force is None else force)
    monkeypatch.setattr(launch, "split_grid", lambda *a: None)
    launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False, config=cfg)
    assert _arg(fake_fwd[-1].calls[-1], "DYNAMIC") is False

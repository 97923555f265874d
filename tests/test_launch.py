"""The launch's host side on the CPU, as a GPU process runs it: Triton's compile and launcher
stood in for (_triton.simulate), plans and their arguments by name, the tables, SPLIT's slots,
PDL, the ptxas choice, and the public launch a mismatched Triton falls back to."""

import types

import pytest
import torch
import triton
import triton.language as tl

from rmsnorm_triton import _triton, interpreted, kernels, options, plan, rms_norm, split, tables
from rmsnorm_triton.tables import Config


class FakeCompiled:
    """A CompiledKernel as the launch uses it; run records each call."""
    function, packed_metadata, n_regs = "fn", "meta", 32
    metadata = types.SimpleNamespace(shared=0)

    def __init__(self, fn=None, call=(), num_warps=0, opts=None):
        self.fn, self.args, self.num_warps, self.opts = fn, list(call), num_warps, dict(opts or {})
        self.calls = []

    def _init_handles(self):
        pass

    def run(self, gridX, gridY, gridZ, stream, function, kernel_metadata, launch_metadata,
            launch_enter_hook, launch_exit_hook, *args):
        self.calls.append((gridX, gridY, gridZ, stream, function, kernel_metadata,
                           launch_metadata, launch_enter_hook, launch_exit_hook, *args))


@pytest.fixture
def fake_gpu():
    """The compiled path on CPU tensors: each compile makes a FakeCompiled (listed here)."""
    made = []

    def compile_(fn, call, num_warps, opts):
        made.append(FakeCompiled(fn, call, num_warps, opts))
        return made[-1]

    with _triton.simulate(compile_, stream=77):
        yield made


@triton.jit
def _probe(A, B, C, n, k, f, BLOCK: tl.constexpr, PDL: tl.constexpr):
    """Three pointers, two ints, a float, two constexprs: the shape of ours."""
    i = tl.arange(0, BLOCK)
    tl.store(C + i, tl.load(A + i, mask=i < n) * f + k, mask=i < n)


PROBE = _triton.Kernel(_probe)


def _arg(call, name, kernel=plan.FWD):
    """The argument `name` in a FakeCompiled call (grid, stream, ... then the kernel's args)."""
    return call[9 + kernel.index[name]]


def test_a_launch_passes_addresses_and_keeps_the_rest(fake_gpu):
    a, b = torch.randn(8), torch.randn(4, dtype=torch.float16)
    named = dict(A=a, B=b, C=a, n=5, k=16, f=0.5, BLOCK=128, PDL=False)
    launch = _triton.Launch(PROBE, PROBE.positional(named), 4)
    for _ in range(2):  # (a plan gives each tensor as launch.arg(tensor): here its address)
        launch(3, [launch.arg(a) if isinstance(a, torch.Tensor) else a
                   for a in PROBE.positional(named)], -1)
    (k,) = fake_gpu
    assert k.args[0] is a, "compilation sees the tensors (their dtypes)"
    assert len(k.calls) == 2 and launch.fast
    grid_stream, rest = k.calls[0][:9], k.calls[0][9:]
    assert grid_stream == (3, 1, 1, 77, "fn", "meta", None, None, None)
    assert list(rest) == [a.data_ptr(), b.data_ptr(), a.data_ptr(), 5, 16, 0.5, 128, False]
    assert all(type(v) is int for v in rest[:3])


def test_arguments_are_given_by_name_in_any_order():
    """A kernel's arguments go in by name: the order of the dict does not matter, and a name
    the kernel lacks or one it needs and is not given is refused, naming it."""
    a = torch.randn(8)
    named = dict(A=a, B=a, C=a, n=5, k=16, f=0.5, BLOCK=128, PDL=False)
    backwards = dict(reversed(list(named.items())))
    assert PROBE.positional(backwards) == PROBE.positional(named)
    assert PROBE.positional(named)[PROBE.index["f"]] == 0.5
    with pytest.raises(TypeError, match=r"\['Z'\] unknown"):
        PROBE.positional({**named, "Z": 1})
    with pytest.raises(TypeError, match=r"\['k'\] missing"):
        PROBE.positional({n: v for n, v in named.items() if n != "k"})


def test_a_kernel_with_one_more_parameter_needs_nothing_else_changed(fake_gpu, monkeypatch,
                                                                     tmp_path):
    """rms_norm_fwd with its parameters reordered (PART moved past EPOCH) and one added (a
    constexpr with a default, as a new variant would add): the plans build and replay it with
    nothing else changed, every argument in its new place."""
    import importlib.util

    code = open(kernels.forward.__file__).read().replace("from .", "from rmsnorm_triton.kernels.")
    part = "    PART,  # SPLIT: per (row, chunk) partial sums, tagged with the call's EPOCH (int64)\n"
    assert part in code
    code = code.replace(part, "", 1).replace("    BLOCK_M: tl.constexpr,", part.rstrip("\n") +
                                             "\n    BLOCK_M: tl.constexpr,", 1)
    code = code.replace("    PDL: tl.constexpr = False,", "    EXTRA: tl.constexpr = 7,\n"
                        "    PDL: tl.constexpr = False,", 1)
    (tmp_path / "patched_forward.py").write_text(code)  # (Triton reads a kernel's file)
    spec = importlib.util.spec_from_file_location("patched_forward", tmp_path / "patched_forward.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    patched = _triton.Kernel(mod.rms_norm_fwd)
    assert patched.index["PART"] > plan.FWD.index["PART"] and "EXTRA" in patched.index
    monkeypatch.setattr(plan, "FWD", patched)
    x, w = torch.randn(3, 64), torch.randn(64)
    y = rms_norm(x, w)
    rms_norm(torch.randn(3, 64), w)
    (k,) = fake_gpu
    assert len(k.calls) == 2
    for call in k.calls:
        assert _arg(call, "EXTRA", patched) == 7 and _arg(call, "N", patched) == 64
        assert _arg(call, "PART", patched) == _arg(call, "X", patched) == x.data_ptr() or \
            call is k.calls[1]
        assert _arg(call, "BLOCK_N", patched) == 64 and _arg(call, "M", patched) == 3
    assert _arg(k.calls[0], "Y", patched) == y.data_ptr()


def test_split_slots_are_reused_with_a_new_epoch_each_call(monkeypatch):
    """SPLIT's slots: one buffer per (device, stream), each call the next epoch, never 0 (fresh
    slots are zeros: not arrived); a larger call or a worn-out epoch gets fresh zeros."""
    monkeypatch.setattr(split, "_SLOTS", {})
    a, e1 = split.slots(3, 5, "cpu")
    assert a.dtype == torch.int64 and a.numel() == 15 and not a.any() and e1 == 1
    # the kernels address the forward's row counters below the slots (meet.counter): two
    # zeroed sets of N_COUNTERS words must lie there, in the same buffer
    head = 2 * kernels.N_COUNTERS
    assert a.storage_offset() == head and a.untyped_storage().nbytes() == (head + 15) * 8
    assert not a._base[:head].any()
    b, e2 = split.slots(2, 4, "cpu")
    assert b is a and e2 == 2, "the same slots, the next epoch"
    c, e3 = split.slots(4, 5, "cpu")
    assert c is not a and c.numel() == 20 and not c.any() and e3 == 1, "grown: fresh zeros"
    split._SLOTS[(torch.device("cpu"), None)][1] = 2**31 - 1
    d, e4 = split.slots(4, 5, "cpu")
    assert d is not c and e4 == 1, "an epoch that would pass int32 starts over on fresh zeros"
    split._SLOTS.update({("stream", i): None for i in range(63)})
    split.slots(5, 5, "cpu")  # new slots (larger) while 64 streams hold some
    assert len(split._SLOTS) == 1, "past 64 streams' slots, the old ones are let go"


def test_split_slots_under_graph_capture_are_fresh(monkeypatch):
    """Captured in a CUDA graph, every call gets its own zeroed slots and epoch 1: the zeroing is
    in the graph, so each replay starts from empty slots again."""
    monkeypatch.setattr(split, "_SLOTS", {})
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    made = []
    monkeypatch.setattr(torch, "zeros", lambda *a, **k: made.append(a) or torch.ones(1))
    dev = types.SimpleNamespace(type="cuda", index=0)
    monkeypatch.setattr(torch, "device", lambda d: dev)
    buf, epoch = split.slots(3, 5, "cuda")
    assert epoch == 1 and made == [(2 * kernels.N_COUNTERS + 15,)] and not split._SLOTS, (
        "fresh zeros for the row counters' two sets and the slots")


def test_the_epoch_is_not_part_of_the_compile_key(fake_gpu, monkeypatch):
    """The epoch changes every call: Triton does not specialise on it (do_not_specialize), and a
    SPLIT plan takes the next epoch of its stream's slots each call without a new compile."""
    for k in (kernels.rms_norm_fwd, kernels.rms_norm_bwd):
        assert [p.name for p in _triton.params(k) if p.do_not_specialize] == ["EPOCH"]
    _force_split(monkeypatch)
    monkeypatch.setattr(split, "_SLOTS", {})
    cfg = Config(1, 64, 4, False, True, 2)
    monkeypatch.setattr(tables, "fwd_config", lambda *a: cfg)
    x, w = torch.randn(4, 256), torch.randn(256)
    for _ in range(3):
        rms_norm(x, w)
    (k,) = fake_gpu
    assert [_arg(c, "EPOCH") for c in k.calls] == [2, 3, 4], "(the plan's build took epoch 1)"
    assert all(_arg(c, "SPLIT") for c in k.calls)


def test_split_can_be_turned_off():
    assert options.from_env({}).split
    assert not options.from_env({"RMSNORM_TRITON_SPLIT": "0"}).split
    with pytest.raises(ValueError, match="RMSNORM_TRITON_SPLIT is 'no', expected '0' or '1'"):
        options.from_env({"RMSNORM_TRITON_SPLIT": "no"})


def test_a_repeated_forward_replays_the_same_launch(fake_gpu):
    """The second call with the same key goes through the plan: the launcher gets exactly what
    the first call gave it, with this call's tensors' addresses and fresh outputs."""
    x, w, r = torch.randn(3, 64), torch.randn(64), torch.randn(3, 64)
    y1, h1 = rms_norm(x, w, residual=r)
    assert len(plan.PLANS) == 1
    x2, w2, r2 = torch.randn(3, 64), torch.randn(64), torch.randn(3, 64)
    y2, h2 = rms_norm(x2, w2, residual=r2)
    (k,) = fake_gpu
    first, second = k.calls
    assert first[:9] == second[:9], "grid, stream, function"
    ptrs = [_arg(second, n) for n in ("X", "R", "W", "Y", "H", "RSTD")]
    assert ptrs == [x2.data_ptr(), r2.data_ptr(), w2.data_ptr(), y2.data_ptr(), h2.data_ptr(),
                    x2.data_ptr()], "this call's tensors; its x stands in for rstd"
    i = plan.FWD.index["stride_x"]
    assert first[9 + i:] == second[9 + i:], "strides, sizes, scalars and constexprs"
    assert y2.data_ptr() != y1.data_ptr() and h2.shape == h1.shape == (3, 64)


@pytest.mark.parametrize("change", ["eps", "dtype", "stride", "align", "no residual", "rows",
                                    "offset sign"])
def test_a_forward_that_differs_is_not_replayed(fake_gpu, change):
    base = torch.randn(3, 72)
    x, w, r = base[:, :64], torch.randn(64), torch.randn(3, 64)
    rms_norm(x, w, residual=r)
    kw = dict(x=x, weight=w, residual=r, eps=1e-6, offset=0.0)
    if change == "eps":
        kw["eps"] = 1e-3
    elif change == "dtype":
        kw["weight"] = w.double()
    elif change == "stride":
        kw["x"] = x.contiguous()
    elif change == "align":
        kw["x"] = base[:, 1:65]  # 4-byte aligned: Triton compiles another kernel
    elif change == "no residual":
        kw["residual"] = None
    elif change == "offset sign":  # -0.0 == 0.0 as a key, not as an offset (w = -0.0)
        kw["offset"] = -0.0
    else:
        kw["x"], kw["residual"] = x[:2], r[:2]
    rms_norm(**kw)
    assert len(plan.PLANS) == 2, "a second plan, made by the full path"
    last = fake_gpu[-1].calls[-1]
    if change == "eps":
        assert _arg(last, "eps") == 1e-3
    if change == "rows":
        assert _arg(last, "M") == 2


def test_w_first_only_for_a_wave_or_two(fake_gpu):
    """W_FIRST for grids of at most options.w_first_waves waves; on the CPU one 'SM'."""
    rms_norm(torch.randn(3, 64), torch.randn(64))  # one tile of 4 rows
    rms_norm(torch.randn(4000, 64), torch.randn(64))  # 32 tiles of 128 rows
    with options.override(w_first_waves=0):
        rms_norm(torch.randn(3, 64), torch.randn(64))
    firsts = [_arg(k.calls[-1], "W_FIRST") for k in fake_gpu]
    assert firsts == [True, False, False]
    assert not any(_arg(k.calls[-1], "W_NATIVE") for k in fake_gpu), "fp32: never W_NATIVE"


def _force_split(monkeypatch, groups=2):
    """SPLIT taken with `groups` groups (the residency check needs a GPU's properties)."""
    def grid(kernel, named, groups_of, cfg, m, n):
        chunks = -(-n // cfg.block_n)
        named.update(groups_of(groups, chunks))
        return groups * chunks, groups, _triton.Launch(kernel, kernel.positional(named),
                                                       cfg.num_warps, cfg.maxnreg)
    monkeypatch.setattr(plan, "split_grid", grid)


@pytest.mark.parametrize("change", [None, "offset", "gemma", "none", "fp32 w", "fp32 y", "fp16 x",
                                    "fp32", "no w", "no split", "loop", "long one pass"])
def test_w_native_only_where_it_gives_fp32s_bits(fake_gpu, monkeypatch, change):
    """SPLIT, and one-pass rows of options.w_native_one_pass elements or more, multiply in 16
    bits (W_NATIVE) only with Llama casting, a zero offset and x (h), w and y of one 16-bit
    dtype: there one rounding of the exact product. Rows walked in blocks never do."""
    _force_split(monkeypatch)
    dt = torch.float32 if change == "fp32" else torch.bfloat16
    x, w = torch.randn(4, 256).to(dt), torch.randn(256).to(dt)
    offset, casting, out = 0.0, "llama", dt
    cfg = Config(1, 64, 4, False, change != "loop", 2)
    if change in ("no split", "long one pass"):  # one pass: a row of 256, short or long
        cfg = Config(1, 256, 4, True)
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
    monkeypatch.setattr(tables, "fwd_config", lambda *a: seen.append(a[3]) or cfg)
    with options.override(w_native_one_pass=256 if change == "long one pass" else 512):
        rms_norm(x, w, offset=offset, casting=casting, out_dtype=out)
        assert seen == [change in (None, "no split", "loop", "long one pass")]
        last = fake_gpu[-1].calls[-1]
        split_, native = _arg(last, "SPLIT"), _arg(last, "W_NATIVE")
        assert split_ == (change not in ("no split", "loop", "long one pass"))
        assert native == (change in (None, "long one pass"))
        # with a residual, h's dtype is the one that counts
        r = torch.randn(4, 256).to(dt)
        plan.FwdPlan(x, w, r, 1e-6, offset, casting, out, torch.float32, False, config=cfg)(
            x, w, r)
        assert _arg(fake_gpu[-1].calls[-1], "W_NATIVE") is False


def test_pdl_only_on_hopper_and_later_and_never_interpreted(monkeypatch, fake_gpu):
    """Programmatic dependent launch needs sm_90's griddepcontrol: never on a CPU tensor, under
    the interpreter, before compute capability 9, or with options.pdl off."""
    major = {0: 9, 1: 8}
    monkeypatch.setattr(tables, "device_props", lambda i: types.SimpleNamespace(major=major[i]))
    cuda = lambda i: types.SimpleNamespace(type="cuda", index=i)  # noqa: E731
    assert tables.pdl_enabled(cuda(0)) and not tables.pdl_enabled(cuda(1))
    assert not tables.pdl_enabled(torch.device("cpu"))
    with options.override(pdl=False):
        assert not tables.pdl_enabled(cuda(0))
    with _triton.simulate(None):  # this process's own path: never under the interpreter
        assert tables.pdl_enabled(cuda(0)) is not _triton.INTERPRETED


@pytest.mark.parametrize("pdl", [False, True])
def test_the_pdl_constexpr_decides_how_the_kernel_is_launched(fake_gpu, pdl):
    """A kernel with a PDL constexpr is compiled with launch_pdl exactly when it is True: the
    wait inside and the launch attribute outside cannot disagree (a PDL launch of a kernel that
    does not wait would read its predecessor's outputs early)."""
    a = torch.randn(8)
    _triton.Launch(PROBE, PROBE.positional(dict(A=a, B=a, C=a, n=5, k=16, f=0.5, BLOCK=128,
                                                PDL=pdl)), 4)
    assert fake_gpu[-1].opts == ({"launch_pdl": True} if pdl else {})
    assert plan.FWD.pdl and plan.BWD.pdl and plan.DW_REDUCE.pdl


@pytest.mark.parametrize("pdl", [False, True])
def test_forward_passes_pdl_where_the_device_allows(fake_gpu, monkeypatch, pdl):
    monkeypatch.setattr(tables, "pdl_enabled", lambda dev: pdl)
    x, w = torch.randn(3, 64), torch.randn(64)
    rms_norm(x, w)
    rms_norm(x, w)  # replayed: the same compiled kernel
    (k,) = fake_gpu
    assert _arg(k.calls[-1], "PDL") is pdl and len(k.calls) == 2
    assert k.opts == ({"launch_pdl": True} if pdl else {})


def _fake_ptxas(path, release):
    path.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {release}, V{release}.1'\n")
    path.chmod(0o755)
    return str(path)


def test_torch_ptxas_is_chosen_only_where_it_is_no_older(tmp_path):
    """PyTorch's ptxas builds our kernels where it runs and is at least Triton's own version."""
    _triton.choose_ptxas.cache_clear()
    new = _fake_ptxas(tmp_path / "new", "13.0")
    old = _fake_ptxas(tmp_path / "old", "12.8")
    assert _triton.ptxas_version(new) == (13, 0) and _triton.ptxas_version(old) == (12, 8)
    assert _triton.choose_ptxas(new, old) == new
    assert _triton.choose_ptxas(old, new) is None, "an older ptxas would undo what Triton chose"
    broken = tmp_path / "broken"
    broken.write_text("not a program")
    assert _triton.ptxas_version(broken) == ()
    assert _triton.choose_ptxas(str(broken), old) is None
    _triton.choose_ptxas.cache_clear()


def test_ptxas_is_left_alone_when_someone_chose(monkeypatch):
    """By default only the kernels in TORCH_PTXAS take torch's ptxas; "torch" / "triton"
    choose one for all; a TRITON_PTXAS_PATH set by the user (or by Inductor) wins; and nothing
    is set where torch has no ptxas."""
    monkeypatch.setattr(_triton, "choose_ptxas", lambda a, b: "/torch/bin/ptxas")
    monkeypatch.setattr(_triton, "triton_ptxas", lambda: ("TRITON_PTXAS_PATH", "/t/ptxas"))
    monkeypatch.setattr(_triton.os.path, "isfile", lambda p: True)
    torch_ptxas = ("TRITON_PTXAS_PATH", "/torch/bin/ptxas")
    monkeypatch.delenv("TRITON_PTXAS_PATH", raising=False)
    with options.override(ptxas="table"):
        assert _triton.ptxas_path("rms_norm_bwd") == torch_ptxas
        assert _triton.ptxas_path("rms_norm_fwd") is None
    with options.override(ptxas="torch"):
        assert _triton.ptxas_path("rms_norm_fwd") == torch_ptxas
        monkeypatch.setenv("TRITON_PTXAS_PATH", "/mine/ptxas")
        assert _triton.ptxas_path("rms_norm_bwd") is None
        monkeypatch.delenv("TRITON_PTXAS_PATH")
        monkeypatch.setattr(_triton.os.path, "isfile", lambda p: False)
        assert _triton.ptxas_path("rms_norm_bwd") is None
    with options.override(ptxas="triton"):
        assert _triton.ptxas_path("rms_norm_bwd") is None
    # Triton 3.9 builds sm_90 with its ptxas-blackwell: the variable it reads for it counts
    monkeypatch.setattr(_triton.os.path, "isfile", lambda p: True)
    monkeypatch.setattr(_triton, "triton_ptxas",
                        lambda: ("TRITON_PTXAS_BLACKWELL_PATH", "/t/ptxas-blackwell"))
    monkeypatch.setenv("TRITON_PTXAS_PATH", "/mine/ptxas")  # not what 3.9 reads for sm_90
    monkeypatch.delenv("TRITON_PTXAS_BLACKWELL_PATH", raising=False)
    with options.override(ptxas="table"):
        assert _triton.ptxas_path("rms_norm_bwd") == ("TRITON_PTXAS_BLACKWELL_PATH",
                                                      "/torch/bin/ptxas")
        monkeypatch.setenv("TRITON_PTXAS_BLACKWELL_PATH", "/mine/ptxas")
        assert _triton.ptxas_path("rms_norm_bwd") is None
    with pytest.raises(ValueError, match="options.ptxas is 'newest', expected one of 'table'"):
        with options.override(ptxas="newest"):
            pass
    with pytest.raises(ValueError, match="RMSNORM_TRITON_PTXAS is 'newest', expected one of"):
        options.from_env({"RMSNORM_TRITON_PTXAS": "newest"})


@pytest.mark.parametrize("chosen", [None, "/torch/bin/ptxas"])
def test_our_kernels_compile_with_the_chosen_ptxas_and_others_do_not(fake_gpu, monkeypatch,
                                                                      chosen):
    """TRITON_PTXAS_PATH holds the choice while our kernel compiles, and is gone afterwards; the
    PTX ISA is named then, so that Triton's cache keys tell the two builds apart."""
    monkeypatch.delenv("TRITON_PTXAS_PATH", raising=False)
    monkeypatch.setattr(_triton, "ptxas_path",
                        lambda name: chosen and ("TRITON_PTXAS_PATH", chosen))
    monkeypatch.setattr(_triton, "ptx_isa", lambda path: 90)
    seen = []
    a = torch.randn(8)
    with _triton.simulate(lambda *args: seen.append(_triton.os.environ.get("TRITON_PTXAS_PATH"))
                          or FakeCompiled(*args)):
        launch = _triton.Launch(PROBE, PROBE.positional(dict(A=a, B=a, C=a, n=5, k=16, f=0.5,
                                                             BLOCK=128, PDL=False)), 4)
    assert seen == [chosen]
    assert launch.opts == ({"ptx_version": 90} if chosen else {})
    assert "TRITON_PTXAS_PATH" not in _triton.os.environ
    with pytest.raises(ZeroDivisionError):
        with _triton.ptxas_scope("/torch/bin/ptxas"):
            1 / 0
    assert "TRITON_PTXAS_PATH" not in _triton.os.environ, "unset again after an error"


def test_the_ptxas_triton_builds_each_gpu_with_is_the_one_named():
    """Triton 3.6 builds sm_90 with its "ptxas", 3.9 with "ptxas-blackwell" (CUDA 13.4): the
    variable named and the ptxas compared against are the ones the installed Triton uses."""
    from triton import knobs
    from triton.backends.nvidia.compiler import get_ptxas

    for arch in (80, 90, 100):
        var, path = _triton._triton_ptxas(arch)
        tool = "ptxas-blackwell" if var == "TRITON_PTXAS_BLACKWELL_PATH" else "ptxas"
        assert var in ("TRITON_PTXAS_PATH", "TRITON_PTXAS_BLACKWELL_PATH")
        assert _triton.os.path.basename(path) == tool
        try:
            blackwell = get_ptxas(arch).path != knobs.nvidia.ptxas.path
        except RuntimeError:  # a ptxas Triton looks for is not installed here
            continue
        assert blackwell == (tool == "ptxas-blackwell"), (arch, var)
    assert _triton._triton_ptxas(100)[0] == "TRITON_PTXAS_BLACKWELL_PATH"


def test_a_scope_sets_the_variable_it_is_given_while_it_lasts(monkeypatch):
    monkeypatch.delenv("TRITON_PTXAS_BLACKWELL_PATH", raising=False)
    with _triton.ptxas_scope("/torch/bin/ptxas", "TRITON_PTXAS_BLACKWELL_PATH"):
        assert _triton.os.environ["TRITON_PTXAS_BLACKWELL_PATH"] == "/torch/bin/ptxas"
    assert "TRITON_PTXAS_BLACKWELL_PATH" not in _triton.os.environ


def test_the_ptx_isa_follows_the_ptxas_version(tmp_path):
    assert _triton.ptx_isa(_fake_ptxas(tmp_path / "p", "13.0")) == 90
    assert _triton.ptx_isa(_fake_ptxas(tmp_path / "q", "12.8")) == 87


@pytest.mark.parametrize("force", [None, True, False])
@pytest.mark.parametrize("dynamic", [True, False])
def test_dynamic_flag_reaches_the_split_forward(fake_gpu, monkeypatch, dynamic, force):
    """DYNAMIC is the entry's dynamic on a SPLIT launch (options.split_dynamic True / False
    forces it, for A/B runs), and False when the launch falls back from SPLIT."""
    _force_split(monkeypatch)
    x, w = torch.randn(4, 256).to(torch.bfloat16), torch.randn(256).to(torch.bfloat16)
    cfg = Config(1, 64, 4, False, True, 2, early=True, dynamic=dynamic)
    args = (x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)
    with options.override(split_dynamic=force):
        plan.FwdPlan(*args, config=cfg)(x, w, None)
        assert _arg(fake_gpu[-1].calls[-1], "DYNAMIC") is (dynamic if force is None else force)
        monkeypatch.setattr(plan, "split_grid", lambda *a: None)
        plan.FwdPlan(*args, config=cfg)(x, w, None)
        assert _arg(fake_gpu[-1].calls[-1], "DYNAMIC") is False


def _gpu_props(monkeypatch):
    """A GPU's properties for the simulated device (-1): 132 SMs, an H100's register file."""
    props = types.SimpleNamespace(major=9, minor=0, multi_processor_count=132,
                                  regs_per_multiprocessor=65536,
                                  shared_memory_per_multiprocessor=233472,
                                  max_threads_per_multi_processor=2048)
    monkeypatch.setattr(tables, "device_props", lambda i: props)


@pytest.mark.parametrize("cooperative", [False, True])
def test_split_is_launched_as_a_cooperative_grid_when_asked(fake_gpu, monkeypatch, cooperative):
    """options.cooperative: SPLIT's launches (forward and backward) carry Triton's
    launch_cooperative_grid, so that the driver runs every program at once or refuses; other
    launches never do. The grid is still sized to what is resident (split.grid)."""
    _gpu_props(monkeypatch)
    x, w = torch.randn(4, 256), torch.randn(256)
    split_cfg, one_pass = Config(1, 64, 4, False, True, 2), Config(1, 256, 4, True)
    with options.override(cooperative=cooperative):
        for cfg in (split_cfg, one_pass):
            plan.FwdPlan(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, True, config=cfg)(
                x, w, None)
            rstd = torch.rand(4) + 0.5
            plan.BwdPlan(x, None, x, w, rstd, 0.0, x.dtype, None, True, config=cfg)(
                x, None, x, w, rstd)
    coop = [(k.fn, k.opts.get("launch_cooperative_grid", False)) for k in fake_gpu if k.calls]
    fwd, bwd = kernels.rms_norm_fwd, kernels.rms_norm_bwd
    assert [c for f, c in coop if f in (fwd, bwd)] == [cooperative] * 2 + [False] * 2
    assert not any(c for f, c in coop if f not in (fwd, bwd)), "dw_reduce: a plain launch"


def test_a_refused_cooperative_launch_walks_the_rows_in_blocks(monkeypatch):
    """Where the driver refuses the cooperative grid (MPS, a partial GPU), the plan says so
    once and becomes the block loop's: this call and the next run it."""
    _gpu_props(monkeypatch)
    made = []

    class Refusing(FakeCompiled):
        def run(self, gridX, gridY, gridZ, stream, function, kernel_metadata, launch_metadata,
                launch_enter_hook, launch_exit_hook, *args):
            if self.opts.get("launch_cooperative_grid"):
                raise RuntimeError("CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE")
            self.calls.append((gridX, gridY, gridZ, stream, function, kernel_metadata,
                               launch_metadata, launch_enter_hook, launch_exit_hook, *args))

    def compile_(fn, call, num_warps, opts):
        made.append(Refusing(fn, call, num_warps, opts))
        return made[-1]

    x, w = torch.randn(4, 256), torch.randn(256)
    cfg = Config(1, 64, 4, False, True, 2)
    with _triton.simulate(compile_), options.override(cooperative=True):
        p = plan.FwdPlan(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False, config=cfg)
        assert p.chunks and p.cooperative
        with pytest.warns(RuntimeWarning, match="cooperative SPLIT launch was refused"):
            p(x, w, None)
        p(x, w, None)
    assert not p.chunks and not p.cooperative
    (loop,) = [k for k in made if k.calls]
    assert not loop.opts.get("launch_cooperative_grid") and len(loop.calls) == 2
    assert not any(_arg(c, "SPLIT") for c in loop.calls), "the block loop, both calls"


@pytest.mark.skipif(not interpreted(), reason="the interpreter's lock: CPU only")
def test_threads_calling_at_once_under_the_interpreter():
    """Triton's interpreter patches triton.language process-wide while a kernel runs: without
    the library's lock, four threads calling at once fail or write wrong rows."""
    import threading

    g = torch.Generator().manual_seed(5)
    x, w = torch.randn(64, 1000, generator=g), torch.randn(1000, generator=g)
    want = rms_norm(x, w)
    errors = []

    def call():
        try:
            for _ in range(3):
                assert torch.equal(rms_norm(x, w), want)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e)[:200])

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors

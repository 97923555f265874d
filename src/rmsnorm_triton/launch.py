"""Host launchers: argument checks, 2-D row views, the launch table, the kernel calls.

Nothing here knows about autograd; ops.py builds the differentiable op on top. A forward call
seen before replays its launch (_PLANS): at small M the host's Python is most of a call.
"""

import contextlib
import functools
import math
import os
import re
import subprocess

import torch

from . import heuristics
from . import kernels as K

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
CASTINGS = {"none": K.CAST_NONE, "llama": K.CAST_LLAMA, "gemma": K.CAST_GEMMA}


def _is_interpreted() -> bool:
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(K.rms_norm_fwd, InterpretedFunction)


INTERPRETED = _is_interpreted()


def interpreted() -> bool:
    """True when this process's kernels run through Triton's interpreter (fixed at import)."""
    return INTERPRETED


# ---- launching ------------------------------------------------------------------------------
# Compiled kernels are kept here per specialisation key and called through their CUDA launcher
# directly, skipping JITFunction.run's binding and cache lookup. Measured on the H100 machine
# (benchmarks/results/latency-run*.log, M = 1): launch.forward took 29-42 us per call through
# JITFunction.run (run 1) and 29-34 us this way (runs 3, 6): a smaller gain than hoped; the rest
# is Python around the launch (see NOTES.md, "open").
_COMPILED = {}
_LAYOUT = {}  # kernel -> (tensor positions, int positions, first constexpr position, PDL's)


def _layout(kernel, args):
    first = min(i for i, p in enumerate(kernel.params) if p.is_constexpr)
    tensors = tuple(i for i, a in enumerate(args[:first]) if isinstance(a, torch.Tensor))
    ints = tuple(i for i, a in enumerate(args[:first])  # (Triton does not specialise on these)
                 if isinstance(a, int) and not isinstance(a, bool)
                 and not getattr(kernel.params[i], "do_not_specialize", False))
    pdl = next((i for i, p in enumerate(kernel.params) if p.name == "PDL"), None)
    return tensors, ints, first, pdl


def compiled(kernel, args, num_warps, maxnreg=0):
    """The compiled kernel for these args, compiled on first use. The key holds what Triton
    specialises on: each pointer's dtype and 16-byte alignment; each int's == 1, % 16 == 0 and
    32-bit range; constexprs by value (they sit last in every kernel here). maxnreg > 0 caps the
    registers a thread may use (ptxas spills past it)."""
    return _prepare(kernel, args, num_warps, maxnreg)[0]


def _prepare(kernel, args, num_warps, maxnreg=0):
    """(compiled kernel, tensor positions, their data pointers)."""
    lay = _LAYOUT.get(kernel)
    if lay is None:
        lay = _LAYOUT[kernel] = _layout(kernel, args)
    tensors, ints, first, pdl = lay
    ptrs = [args[i].data_ptr() for i in tensors]
    key = (kernel, num_warps, maxnreg, torch.cuda.current_device(), tuple(args[first:]),
           tuple([(args[i].dtype, p & 15) for i, p in zip(tensors, ptrs)]),
           tuple([(a == 1, a & 15, -(2**31) <= a < 2**31) for a in [args[i] for i in ints]]))
    k = _COMPILED.get(key)
    if k is None:
        opts = {"maxnreg": maxnreg} if maxnreg else {}
        if pdl is not None and pdl < len(args) and args[pdl]:  # the kernel's PDL constexpr
            opts["launch_pdl"] = True  # decides how it is launched: the two never disagree
        ptxas = ptxas_path(getattr(kernel, "__name__", ""))
        if ptxas is not None:  # the PTX ISA that ptxas reads, named: it puts the choice into
            opts["ptx_version"] = ptx_isa(ptxas)  # Triton's cache keys (see ptxas_scope)
        with ptxas_scope(ptxas):
            k = kernel.warmup(*args, grid=(1,), num_warps=num_warps, **opts)
        k._init_handles()
        _COMPILED[key] = k
    return k, tensors, ptrs


# ---- ptxas ----------------------------------------------------------------------------------
# Triton turns PTX into machine code with the ptxas it bundles (CUDA 12.8's with Triton 3.6). CUDA
# builds of PyTorch ship their own in torch/bin, and Inductor compiles every Triton kernel with it
# (torch/_inductor/runtime/compile_tasks.py sets TRITON_PTXAS_PATH for the whole process). Run 73
# (H100, torch 2.11+cu130, every table entry built by each, two turns): torch's 13.0 runs the
# backward 0.8-2.3 points of copy faster at 16-bit 64K-256K (level elsewhere), and the forward
# level but for bf16 32K (-0.9) and fp32 16K (-0.5). So the backward kernels take torch's, the
# forward keeps Triton's (NOTES.md, item 56). RMSNORM_TRITON_PTXAS=torch / triton: one for all.
# A TRITON_PTXAS_PATH set by the user (or by Inductor) is always left as it is.
PTXAS = os.environ.get("RMSNORM_TRITON_PTXAS", "table")
TORCH_PTXAS = {"rms_norm_bwd", "dw_reduce"}  # "table": the kernels built by torch's ptxas


def ptxas_version(path) -> tuple:
    """(major, minor) that `path --version` reports, () when it does not run."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    m = re.search(r"release (\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2])) if m else ()


@functools.lru_cache(maxsize=8)
def choose_ptxas(torch_ptxas: str, triton_ptxas: str) -> str | None:
    """torch_ptxas where it runs and is no older than triton_ptxas; else None (Triton's own)."""
    mine = ptxas_version(torch_ptxas) if os.access(torch_ptxas, os.X_OK) else ()
    return torch_ptxas if mine and mine >= ptxas_version(triton_ptxas) else None


def ptxas_path(kernel_name: str = "") -> str | None:
    """The ptxas the named kernel is compiled with, where it is not Triton's choice (PTXAS)."""
    if PTXAS not in ("table", "torch", "triton"):
        raise ValueError(f"RMSNORM_TRITON_PTXAS is {PTXAS!r}, expected 'table' (the default: "
                         "torch's ptxas for the backward), 'torch' or 'triton'")
    wanted = PTXAS == "torch" or (PTXAS == "table" and kernel_name in TORCH_PTXAS)
    if not wanted or os.environ.get("TRITON_PTXAS_PATH"):
        return None
    import triton

    here = os.path.join(os.path.dirname(torch.__file__), "bin", "ptxas")
    bundled = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    return choose_ptxas(here, bundled) if os.path.isfile(here) else None


@functools.lru_cache(maxsize=8)
def ptx_isa(path) -> int:
    """The PTX ISA version Triton would write for the ptxas at `path` (13.0 -> 90)."""
    from triton.backends.nvidia.compiler import ptx_get_version

    return ptx_get_version("%d.%d" % ptxas_version(path))


@contextlib.contextmanager
def ptxas_scope(path):
    """TRITON_PTXAS_PATH set to `path` (None: left alone) while one of our kernels compiles,
    then unset again: other Triton code in the process keeps its own choice. Triton keys its
    cache by the first ptxas version a process asks for, so the caller also names the PTX ISA
    (an option Triton hashes): a cubin built by one ptxas is never served for the other.
    (The variable is the process's: a Triton kernel another thread compiles at that moment
    would see it too.)"""
    if path is None:
        yield
        return
    os.environ["TRITON_PTXAS_PATH"] = path
    try:
        yield
    finally:
        os.environ.pop("TRITON_PTXAS_PATH", None)


def run(kernel, grid, args, num_warps, maxnreg=0):
    """kernel[grid](*args) for positional args (constexprs included, in signature order);
    returns the compiled kernel it launched (None under the interpreter).

    Tensors reach Triton's launcher as their addresses (read here already for the key; a tensor
    on the wrong device was refused by the callers' checks). Given an object, the launcher calls
    its data_ptr() and cuPointerGetAttribute per pointer per call; the saving this was meant to
    bring did not show on the H100 machine (run 30, A/B in one process: 38.8 vs 38.3 us a call).
    """
    grid = tuple(grid) + (1,) * (3 - len(grid))
    if INTERPRETED:
        kernel[grid](*args, num_warps=num_warps)
        return
    dev = args[0].get_device()
    if dev != torch.cuda.current_device():  # kernels load per device: launch on the tensors'
        with torch.cuda.device(dev):
            return run(kernel, grid, args, num_warps, maxnreg)
    k, tensors, ptrs = _prepare(kernel, args, num_warps, maxnreg)
    call = list(args)
    for i, p in zip(tensors, ptrs):
        call[i] = p
    stream = torch._C._cuda_getCurrentRawStream(dev)
    k.run(grid[0], grid[1], grid[2], stream, k.function, k.packed_metadata, None, None, None, *call)
    return k


def resident_per_sm(k, num_warps) -> int:
    """How many programs of compiled kernel k one multiprocessor holds at once."""
    props = heuristics.device_props(torch.cuda.current_device())
    threads = num_warps * 32
    by_regs = props.regs_per_multiprocessor // max(1, cdiv(k.n_regs, 8) * 8 * threads)
    by_smem = props.shared_memory_per_multiprocessor // max(1, k.metadata.shared)
    return max(0, min(by_regs, by_smem, props.max_threads_per_multi_processor // threads, 32))


def split_allowed() -> bool:
    """SPLIT's programs wait for each other, so its grid is sized to what the whole GPU holds at
    once. A process given only part of the multiprocessors (MPS with an active-thread percentage,
    green contexts) could then wait forever: RMSNORM_TRITON_SPLIT=0 walks long rows in blocks
    instead (slower past 32K, never waiting)."""
    return os.environ.get("RMSNORM_TRITON_SPLIT", "1") != "0"


# Programmatic dependent launch (kernels._dependent_launch) on Hopper and later; False: plain
# launches (benchmarks/tune.py times both).
PDL = os.environ.get("RMSNORM_TRITON_PDL", "1") != "0"


def pdl_enabled(device: torch.device) -> bool:
    """Launch as a programmatic dependent: a CUDA device of compute capability 9.0 or later
    (griddepcontrol is sm_90 PTX), not under the interpreter, unless RMSNORM_TRITON_PDL=0."""
    return (PDL and not INTERPRETED and device.type == "cuda"
            and heuristics.device_props(device.index or 0).major >= 9)


def split_grid(kernel, args, group_index, cfg, m, n):
    """SPLIT: (groups, chunks) so that every program is resident at once, or None if N is too
    long for that. args[group_index] is the groups argument, filled in here."""
    chunks = cdiv(n, cfg.block_n)
    if chunks > K.N_COUNTERS:  # one row counter a chunk (kernels._counter)
        return None
    sms = heuristics.device_props(torch.cuda.current_device()).multi_processor_count
    # The table's count was chosen for the plain kernel; a variant with more registers (the fused
    # residual: 2048 x 4 warps fits 6 an SM without it, 5 with it) takes the most that fit.
    for per_sm in range(cfg.progs_per_sm, 0, -1):
        groups = min(m, sms * per_sm // chunks)
        if groups < 1:
            return None
        args[group_index] = groups if kernel is K.rms_norm_fwd else groups * chunks
        k = compiled(kernel, args, cfg.num_warps, cfg.maxnreg)
        if resident_per_sm(k, cfg.num_warps) >= per_sm:
            return groups, chunks
    return None


def words(t: torch.Tensor, n: int) -> bool:
    """SPLIT's PAIRS: t's rows can be read as 32-bit words, four to a 16-byte load (16-bit
    elements, an even N, rows and start 16-byte aligned)."""
    return t.element_size() == 2 and n % 2 == 0 and t.stride(0) % 8 == 0 and t.data_ptr() % 16 == 0


# SPLIT's slots, kept from call to call per (device, stream): [int64 tensor, last epoch].
_SLOTS = {}


def slots(m: int, chunks: int, device) -> tuple:
    """SPLIT's (M, S) partial-sum slots and this call's epoch (kernels.py, _publish): a slot
    arrived once it holds the epoch. Calls on one stream run in order, so each reuses the
    stream's slots with the next epoch, and no kernel empties them first (run 58: that fill was
    2.2% of a 16-bit forward call past 32K). Captured in a CUDA graph, a call takes fresh
    zeroed slots (the zeroing is captured too, so every replay starts empty) and epoch 1.
    The slots are a view past the buffer's first 2 * kernels.N_COUNTERS words: the forward's row
    counters (kernels._counter), which the kernels address below the slots."""
    device = torch.device(device)
    head = 2 * K.N_COUNTERS
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return torch.zeros(head + m * chunks, dtype=torch.int64, device=device)[head:], 1
    key = (device, torch._C._cuda_getCurrentRawStream(device.index or 0)
           if device.type == "cuda" else None)
    entry = _SLOTS.get(key)
    if entry is None or entry[0].numel() < m * chunks or entry[1] >= 2**31 - 1:
        if len(_SLOTS) >= 64:  # many streams (one made per call, say): let their slots go
            _SLOTS.clear()
        # epoch 0 is never used: fresh slots read as not arrived
        buf = torch.zeros(head + m * chunks, dtype=torch.int64, device=device)
        entry = _SLOTS[key] = [buf[head:], 0]
    entry[1] += 1
    return entry[0], entry[1]


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _names(dtypes) -> str:
    return ", ".join(str(d).replace("torch.", "") for d in dtypes)


def check_tensor(name: str, t, dtypes=FLOAT_DTYPES) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in dtypes:
        raise TypeError(f"{name} has dtype {t.dtype}, expected one of {_names(dtypes)}")
    if t.is_cuda:
        return
    if t.device.type == "cpu" and interpreted() and K.LOOP_ERROR is not None:
        import numpy
        import triton

        raise RuntimeError(
            f"{name} is on the CPU, where this process runs Triton {triton.__version__}'s "
            f"interpreter, which cannot run loops with a runtime bound under NumPy "
            f"{numpy.__version__} ({K.LOOP_ERROR!r}; Triton 3.6 with NumPy 2.4 does this, "
            "Triton 3.9 does not). Install numpy<2.4 or a newer Triton, or use CUDA tensors."
        )
    if t.device.type == "cpu" and not interpreted():
        raise RuntimeError(
            f"{name} is on the CPU, but this process runs Triton compiled for the GPU, and Triton "
            "fixes that choice when it is imported. Move the tensors to CUDA, or run CPU tensors "
            "in a process started with TRITON_INTERPRET=1 (Triton's interpreter)."
        )
    if t.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} is on device {t.device}, expected a CUDA or CPU tensor")


def check_scalar(name: str, value, minimum=None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        want = f"a finite number >= {minimum}" if minimum is not None else "a finite number"
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return float(value)


def check_dtype(name: str, dtype) -> None:
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} is {dtype!r}, expected None or one of {_names(FLOAT_DTYPES)}")


def dense(weight):
    """The weight with unit stride (the kernels read W + column): a strided or expanded weight
    is copied once, as rows_view copies rows that do not view as (M, N)."""
    return weight if weight is None or weight.stride(0) == 1 else weight.contiguous()


def rows_view(t: torch.Tensor, n: int) -> torch.Tensor:
    """(M, N) view with a unit last stride; strided rows stay as they are, other layouts copy once."""
    if t.dim() == 2 and t.stride(-1) == 1:
        return t
    try:
        v = t.view(-1, n)
        if v.stride(-1) == 1 or v.shape[0] == 0:
            return v
    except RuntimeError:
        pass
    return t.contiguous().view(-1, n)


# ONE_PASS grids of at most this many waves (programs / SMs) load w beside x (kernels.py,
# W_FIRST): a few rows wait on one memory trip instead of two (run 38).
W_FIRST_WAVES = 2


# SPLIT multiplies x_hat by w in their 16-bit dtype where that gives fp32's bits (kernels.py,
# _apply_weight; run 51), and so do one-pass rows of at least W_NATIVE_ONE_PASS elements (run 78:
# +1.3 points at 32K, +0.2-0.4 at 16K, -0.2 at 4K-8K). False: always in fp32 (tune.py times both).
W_NATIVE = True
W_NATIVE_ONE_PASS = 16384


def native_layout(cfg, split: bool) -> bool:
    """The launch multiplies in 16 bits where native_weight allows it: a SPLIT launch (split:
    taken, not only asked), or one pass over rows of W_NATIVE_ONE_PASS elements or more."""
    return split or (cfg.one_pass and cfg.block_n >= W_NATIVE_ONE_PASS)

# SPLIT forwards whose table entry says "+dyn" hand rows out at run time past each program's
# first four (kernels.py, DYNAMIC; run 93: programs drift apart over a call, run 92). None: as
# the table says; True / False: every SPLIT forward (run93/ab_dynamic.py times both).
SPLIT_DYNAMIC = None


def native_weight(weight, casting, offset, in_dtype, out_dtype) -> bool:
    """y = x_hat * w in the 16-bit dtype rounds as the fp32 product does: Llama casting (x_hat
    rounded to that dtype first), no offset, and input, weight and output all of that dtype."""
    return (weight is not None and casting == "llama" and offset == 0.0
            and weight.dtype in (torch.bfloat16, torch.float16)
            and weight.dtype == in_dtype == out_dtype)


def forward(x2, weight, residual2, eps, offset, casting, out_dtype, h_dtype, store_rstd,
            *, config=None, y=None, h=None):
    """Runs rms_norm_fwd on (M, N) rows. Returns y, h (or None), rstd (or None).

    y and h may be given (fused_add_rms_norm_ passes x and residual themselves: every element
    is read by the program that overwrites it, before it does). Calls with outputs made here,
    or written in place so, keep a replay (_PLANS).
    """
    weight = dense(weight)
    key = None
    inplace = y is x2 and h is residual2 and h is not None
    made_here = y is None and h is None
    if not INTERPRETED and config is None and (inplace or made_here):
        key = _plan_key(x2, weight, residual2, eps, offset, casting, out_dtype, h_dtype, store_rstd,
                        inplace)
        plan = _PLANS.get(key)
        out = plan(x2, weight, residual2) if plan is not None else None
        if out is not None:
            return out
    m, n = x2.shape
    acc = torch.float64 if x2.dtype == torch.float64 else torch.float32
    if y is None:
        y = torch.empty((m, n), dtype=out_dtype, device=x2.device)
    if h is None and residual2 is not None:
        h = torch.empty((m, n), dtype=h_dtype, device=x2.device)
    rstd = torch.empty((m,), dtype=acc, device=x2.device) if store_rstd else None
    in_dtype = h_dtype if residual2 is not None else x2.dtype
    native = W_NATIVE and native_weight(weight, casting, offset, in_dtype, out_dtype)
    cfg = config or heuristics.fwd_config(n, x2.dtype, residual2 is not None, native)
    sms = heuristics.device_props(x2.device.index).multi_processor_count if x2.is_cuda else 1
    if cfg.one_pass and cfg.block_m > 1 and m < cfg.block_m * sms:  # a few rows (decoding):
        cfg = heuristics.with_rows(cfg, m, sms)  # spread them over the SMs
    chunks = cdiv(n, cfg.block_n)
    if m == 0:
        return y, h, rstd
    d = x2  # stands in for pointers a specialisation never reads
    split = cfg.split and not INTERPRETED and acc == torch.float32 and split_allowed()
    args = [
        x2, residual2 if residual2 is not None else d, weight if weight is not None else d,
        y, h if h is not None else d, rstd if rstd is not None else d,
        d,  # PART (SPLIT)
        x2.stride(0), residual2.stride(0) if residual2 is not None else 0, y.stride(0),
        h.stride(0) if h is not None else 0,
        m, n, eps, offset, 1, 0,  # ..., NUM_GROUPS, EPOCH
        cfg.block_m, cfg.block_n, cfg.one_pass and not split,  # BLOCK_M, BLOCK_N, ONE_PASS
        split, heuristics.pow2(chunks),  # SPLIT, S_POW2
        split and cfg.pairs and words(x2, n) and (residual2 is None or words(residual2, n)),  # PAIRS
        split and cfg.early,  # EARLY
        weight is not None, residual2 is not None, rstd is not None,  # HAS_W, HAS_R, STORE_RSTD
        CASTINGS[casting],  # CASTING
        cfg.one_pass and cdiv(m, cfg.block_m) <= W_FIRST_WAVES * sms,  # W_FIRST
        native and native_layout(cfg, split),  # W_NATIVE
        split and (cfg.dynamic if SPLIT_DYNAMIC is None else SPLIT_DYNAMIC),  # DYNAMIC
        pdl_enabled(x2.device),  # PDL
    ]
    gs = None
    if split:
        args[6], args[16] = slots(m, chunks, x2.device)
        gs = split_grid(K.rms_norm_fwd, args, 15, cfg, m, n)
    if gs:
        grid = (gs[0] * gs[1],)
    else:
        args[6] = d
        args[20] = False  # SPLIT off: one pass, or the row walked in blocks
        args[29] = args[29] and args[19]  # W_NATIVE: SPLIT was asked for, not taken
        args[30] = False  # DYNAMIC
        grid = (cdiv(m, cfg.block_m) if args[19] else m,)
    maxnreg = cfg.maxnreg if gs or cfg.one_pass else 0
    k = run(K.rms_norm_fwd, grid, args, cfg.num_warps, maxnreg)
    if key is not None and not gs and x2.get_device() == torch.cuda.current_device():
        if len(_PLANS) >= 4096:  # many shapes (serving's varying M): start over
            _PLANS.clear()
        _PLANS[key] = _fwd_plan(k, grid[0], args, y, h, rstd, inplace)
    return y, h, rstd


# ---- the eager fast path --------------------------------------------------------------------
# A forward call whose key (below) was seen before replays that call's launch: the same compiled
# kernel, grid and arguments, with this call's tensors' addresses and fresh outputs. What it
# skips (the table lookup, the argument list, the specialisation key) is most of the host's
# work per call at small M (benchmarks/latency.py). SPLIT calls are not replayed (each takes
# its stream's slots with a new epoch; their kernels take 100+ us). A plan keeps the PDL setting
# it was made with (launch.PDL is read when a launch is first built).
_PLANS = {}


def _plan_key(x2, weight, residual2, eps, offset, *rest):
    """What the launch depends on besides the tensors' addresses: shapes, row strides, dtypes,
    the device, each pointer's 16-byte alignment (Triton specialises on it), the scalars (the
    offset's sign too: -0.0 == 0.0, but -0.0 + w keeps the sign of a zero w)."""
    return (x2.shape, x2.stride(0), x2.dtype, x2.get_device(), x2.data_ptr() & 15,
            None if weight is None else (weight.dtype, weight.data_ptr() & 15),
            None if residual2 is None else (residual2.dtype, residual2.stride(0),
                                            residual2.data_ptr() & 15),
            math.copysign(1.0, offset), eps, offset) + rest


def plan_for(x2, weight, residual2, eps, offset, casting, out_dtype, h_dtype, store_rstd,
             inplace=False):
    """The replay forward() keeps for these arguments (None: it made none). ops binds its calls
    to it, skipping its checks too (ops._EAGER)."""
    return _PLANS.get(_plan_key(x2, weight, residual2, eps, offset, casting, out_dtype, h_dtype,
                                store_rstd, inplace))


def _fwd_plan(k, g0, args, y, h, rstd, inplace=False):
    """A replay of rms_norm_fwd's launch with these args (positions as in forward's list):
    plan(x, weight, residual, shape=None) -> (y, h, rstd), or None when another
    device is current (the caller takes its full path). x and residual may be any tensors whose
    rows lie as the planned ones' do (ops.rms_norm passes them unviewed); y and h are made in
    `shape` (default (M, N)), rows contiguous as planned; like=True (x contiguous): those of x's
    dtype as empty_like(x), a cheaper call. inplace: y and h are x and residual themselves."""
    template = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args]
    dev, where = args[0].get_device(), args[0].device
    y_spec = (tuple(y.shape), y.dtype)
    h_spec = (tuple(h.shape), h.dtype) if h is not None else None
    r_spec = (tuple(rstd.shape), rstd.dtype) if rstd is not None else None
    fn, meta, launch_ = k.function, k.packed_metadata, k.run
    y_like = y.dtype == args[0].dtype
    h_like = h is not None and h.dtype == args[0].dtype

    def plan(x2, weight, residual2, shape=None, like=False):
        if torch.cuda.current_device() != dev:
            _PLANS.clear()  # another device is current: the full path switches to x's
            return None
        x = x2.data_ptr()
        if inplace:
            y, h = x2, residual2
        else:
            if like and y_like:
                y = torch.empty_like(x2)
            else:
                y = torch.empty(shape or y_spec[0], dtype=y_spec[1], device=where)
            if h_spec is None:
                h = None
            elif like and h_like:
                h = torch.empty_like(x2)
            else:
                h = torch.empty(shape or h_spec[0], dtype=h_spec[1], device=where)
        rstd = torch.empty(r_spec[0], dtype=r_spec[1], device=where) if r_spec else None
        call = template.copy()
        call[0] = call[6] = x  # x, and the stand-in for PART
        call[1] = residual2.data_ptr() if residual2 is not None else x
        call[2] = weight.data_ptr() if weight is not None else x
        call[3] = y.data_ptr()
        call[4] = h.data_ptr() if h is not None else x
        call[5] = rstd.data_ptr() if rstd is not None else x
        launch_(g0, 1, 1, torch._C._cuda_getCurrentRawStream(dev), fn, meta, None, None, None,
                *call)
        return y, h, rstd

    return plan


def backward(dy2, xin2, weight, rstd, offset, dh2, dx_dtype, dr_dtype, need_dw, *, config=None,
             programs=None):
    """Runs rms_norm_bwd (+ dw_reduce). xin2 is the normalized input: x, or h with a residual.

    Returns dx (dx_dtype or None), dr (dr_dtype or None), dw (weight's dtype or None).
    dx and dr hold the same values; each is written only when asked for, never aliased.
    A call seen before replays its launches (_BWD_PLANS), as the forward's do.
    """
    weight = dense(weight)
    key = None
    if not INTERPRETED and config is None and programs is None:
        key = _bwd_key(dy2, xin2, weight, rstd, offset, dh2, dx_dtype, dr_dtype, need_dw)
        plan = _BWD_PLANS.get(key)
        out = plan(dy2, xin2, weight, rstd, dh2) if plan is not None else None
        if out is not None:
            return out
    m, n = xin2.shape
    dev = xin2.device
    dx, dr = _bwd_outputs(m, n, dev, dx_dtype, dr_dtype, xin2.dtype)
    need_dw = need_dw and weight is not None
    if m == 0:
        return _bwd_result(dx, dr, torch.zeros_like(weight) if need_dw else None, dx_dtype,
                           dr_dtype)
    cfg = config or heuristics.bwd_config(n, xin2.dtype)
    d = xin2  # stands in for pointers a specialisation never reads
    split = cfg.split and not INTERPRETED and rstd.dtype == torch.float32 and split_allowed()
    chunks = cdiv(n, cfg.block_n)
    args = [
        dy2, xin2, weight if weight is not None else d, rstd,
        dh2 if dh2 is not None else d, dx, dr if dr is not None else d, d,  # ..., DW_PART
        d,  # PART (SPLIT)
        dy2.stride(0), xin2.stride(0), dh2.stride(0) if dh2 is not None else 0, dx.stride(0),
        dr.stride(0) if dr is not None else 0,
        m, n, offset, 1, 0,  # ..., NUM_PROGS, EPOCH
        cfg.block_m, cfg.block_n, cfg.one_pass and not split,  # BLOCK_M, BLOCK_N, ONE_PASS
        split, heuristics.pow2(chunks),  # SPLIT, S_POW2
        split and cfg.pairs and words(xin2, n) and words(dy2, n),  # PAIRS
        split and cfg.early,  # EARLY
        weight is not None, need_dw, dh2 is not None, dr is not None,  # HAS_W, STORE_DW, HAS_DH, STORE_DR
        pdl_enabled(dev),  # PDL
    ]
    gs = None
    if split:
        args[8], args[18] = slots(m, chunks, dev)
        args[7] = torch.empty((1,), dtype=rstd.dtype, device=dev) if need_dw else d
        gs = split_grid(K.rms_norm_bwd, args, 17, cfg, m, n)
    if gs:
        progs, part_rows = gs[0] * gs[1], gs[0]
    else:
        args[8] = d
        args[22] = False
        tiles = cdiv(m, cfg.block_m) if args[21] else m
        progs = part_rows = min(tiles, programs or heuristics.num_programs(dev, cfg))
    args[17] = progs
    part = torch.empty((part_rows, n), dtype=rstd.dtype, device=dev) if need_dw else None
    args[7] = part if need_dw else d
    k = run(K.rms_norm_bwd, (progs,), args, cfg.num_warps, cfg.maxnreg if gs else 0)
    dw = reduce = None
    if need_dw:
        dw = torch.empty_like(weight)
        block_n = 256 if n >= 256 else max(16, 1 << (n - 1).bit_length())
        g2, args2 = (cdiv(n, block_n),), (part, dw, part_rows, n, 32, block_n, args[-1])
        reduce = (run(K.dw_reduce, g2, args2, 4), g2, args2)
    if key is not None and not gs and xin2.get_device() == torch.cuda.current_device():
        if len(_BWD_PLANS) >= 4096:  # many shapes: start over
            _BWD_PLANS.clear()
        _BWD_PLANS[key] = _bwd_plan(k, progs, args, reduce, dx_dtype, dr_dtype)
    return _bwd_result(dx, dr, dw, dx_dtype, dr_dtype)


def _bwd_outputs(m, n, dev, dx_dtype, dr_dtype, x_dtype):
    """(DX, DR) for the kernel: it always writes DX, so DX is the residual's gradient when dx is
    not wanted, and a scratch buffer when only dw is; DR only beside a wanted dx."""
    dx = torch.empty((m, n), dtype=dx_dtype, device=dev) if dx_dtype is not None else None
    dr = torch.empty((m, n), dtype=dr_dtype, device=dev) if dr_dtype is not None else None
    if dx is None:
        dx, dr = dr, None
    if dx is None:
        dx = torch.empty((m, n), dtype=x_dtype, device=dev)
    return dx, dr


def _bwd_result(dx, dr, dw, dx_dtype, dr_dtype):
    """(dx, dr, dw) as asked for, from _bwd_outputs' buffers."""
    if dx_dtype is None:
        return None, (dx if dr_dtype is not None else None), dw
    return dx, dr, dw


# A backward call seen before (the key below) replays its launches with its own addresses and
# fresh outputs, as the forward's plans do; SPLIT calls are not replayed (their slots).
_BWD_PLANS = {}


def _bwd_key(dy2, xin2, weight, rstd, offset, dh2, *rest):
    """What the backward's launches depend on besides the addresses (as _plan_key; the weight
    is dense here already)."""
    return (dy2.shape, dy2.stride(0), dy2.dtype, dy2.data_ptr() & 15, xin2.shape, xin2.stride(0),
            xin2.dtype, xin2.get_device(), xin2.data_ptr() & 15,
            None if weight is None else (weight.dtype, weight.data_ptr() & 15),
            rstd.dtype, rstd.data_ptr() & 15,
            None if dh2 is None else (dh2.dtype, dh2.stride(0), dh2.data_ptr() & 15),
            math.copysign(1.0, offset), offset) + rest


def _bwd_plan(k, progs, args, reduce, dx_dtype, dr_dtype):
    """A replay of backward's launches (args: rms_norm_bwd's, positions as there; reduce: None,
    or dw_reduce's (compiled kernel, grid, args)): plan(dy2, xin2, weight, rstd, dh2) -> as
    backward returns, or None when another device is current."""
    t1 = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args]
    dev, where, x_dtype = args[1].get_device(), args[1].device, args[1].dtype
    m, n = args[1].shape
    part_spec = (tuple(args[7].shape), args[7].dtype) if reduce else None
    if reduce:
        k2, (g2,), args2 = reduce
        t2 = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args2]

    def plan(dy2, xin2, weight, rstd, dh2):
        if torch.cuda.current_device() != dev:
            _BWD_PLANS.clear()  # another device is current: the full path switches to x's
            return None
        dx, dr = _bwd_outputs(m, n, where, dx_dtype, dr_dtype, x_dtype)
        d = xin2.data_ptr()
        call = t1.copy()
        call[0], call[1], call[3], call[5] = dy2.data_ptr(), d, rstd.data_ptr(), dx.data_ptr()
        call[2] = weight.data_ptr() if weight is not None else d
        call[4] = dh2.data_ptr() if dh2 is not None else d
        call[6] = dr.data_ptr() if dr is not None else d
        call[7] = call[8] = d
        part = dw = None
        if part_spec:
            part = torch.empty(part_spec[0], dtype=part_spec[1], device=where)
            call[7] = part.data_ptr()
        stream = torch._C._cuda_getCurrentRawStream(dev)
        k.run(progs, 1, 1, stream, k.function, k.packed_metadata, None, None, None, *call)
        if part_spec:
            dw = torch.empty_like(weight)
            call2 = t2.copy()
            call2[0], call2[1] = part.data_ptr(), dw.data_ptr()
            k2.run(g2, 1, 1, stream, k2.function, k2.packed_metadata, None, None, None, *call2)
        return _bwd_result(dx, dr, dw, dx_dtype, dr_dtype)

    return plan

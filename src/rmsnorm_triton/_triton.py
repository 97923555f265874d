"""The one door to Triton's and PyTorch's private internals that the launch uses.

    Kernel(fn)                 a @triton.jit kernel called by parameter name
    Launch(kernel, call, ...)  one compiled specialisation: launch.go(grid0, call, device)
    stream(device)             the device's current CUDA stream, as an address
    ptxas_path / ptxas_scope   which ptxas builds a kernel (options.ptxas)

A Launch calls the compiled kernel's launcher directly (CompiledKernel.run with its function
and packed metadata), skipping JITFunction.run's binding and cache lookup on every call. That
launcher is private and its arguments change between Triton releases, so its calling convention
is checked at the first compile; where it is not the expected one (or options.launcher is
"public") a Launch calls the public kernel[grid](**named_args) instead, and says so once.
Under Triton's interpreter every launch is the public one.
"""

import contextlib
import functools
import inspect
import os
import re
import subprocess
import threading
import warnings

import torch
import triton

from . import options

# CompiledKernel.run, as Triton's own CompiledKernel[grid](...) calls it: (gridX, gridY, gridZ,
# stream, function, packed_metadata, launch_metadata, launch_enter_hook, launch_exit_hook,
# *kernel arguments, constexprs included). Triton 3.9's launcher names all nine; earlier ones
# (3.6) name the first five and take the rest as *args.
_LEADING = ["gridX", "gridY", "gridZ", "stream", "function"]
_NAMED = ["kernel_metadata", "launch_metadata", "launch_enter_hook", "launch_exit_hook"]


def _interpreted() -> bool:
    from triton.runtime.interpreter import InterpretedFunction

    from .kernels import rms_norm_fwd

    return isinstance(rms_norm_fwd, InterpretedFunction)


INTERPRETED = _interpreted()


def params(fn):
    """The kernel's parameters as Triton's JITFunction has them (do_not_specialize included),
    also when this process runs Triton's interpreter."""
    got = getattr(fn, "params", None)
    if got:
        return got
    return triton.runtime.jit.JITFunction(fn.fn, **getattr(fn, "kwargs", {})).params


class Kernel:
    """A @triton.jit kernel whose arguments are given by parameter name ({name: value}) and
    put in Triton's order once per launch plan (positional); tensors stand where pointers go."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "") or fn.fn.__name__
        ps = params(fn)
        self.names = [p.name for p in ps]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.defaults = {p.name: p.default for p in ps
                         if p.default is not inspect.Parameter.empty}
        self.pdl = "PDL" in self.index

    def positional(self, named: dict) -> list:
        """named in the kernel's parameter order; a name it lacks or does not know raises."""
        unknown = set(named) - set(self.names)
        missing = [n for n in self.names if n not in named and n not in self.defaults]
        if unknown or missing:
            raise TypeError(f"{self.name}: arguments {sorted(unknown)} unknown, {missing} missing")
        return [named[n] if n in named else self.defaults[n] for n in self.names]


# simulate(): Triton's compile and launcher replaced, to run the compiled path's host code on a
# machine without a GPU (the tests, and timing the host's Python per call).
_SIM = None


def interpreted() -> bool:
    """True when kernels run through Triton's interpreter (not while simulated)."""
    return INTERPRETED and _SIM is None


def simulated() -> bool:
    return _SIM is not None


def current_device_fn():
    """torch.cuda.current_device, or (simulated) what a CPU tensor's get_device() reports."""
    return (lambda: -1) if _SIM is not None else torch.cuda.current_device


def current_device() -> int:
    return current_device_fn()()


def stream_fn():
    """torch._C._cuda_getCurrentRawStream, or (simulated) the stream simulate() was given."""
    if _SIM is not None:
        return lambda dev, _s=_SIM[1]: _s
    return torch._C._cuda_getCurrentRawStream


def stream(device_index: int) -> int:
    """The device's current CUDA stream, as an address."""
    return stream_fn()(device_index)


@contextlib.contextmanager
def simulate(compile_fn, stream=0):
    """Within the block, launches take the compiled path on CPU tensors: compile_fn(kernel fn,
    call, num_warps, opts) stands in for Triton's compile and returns what a CompiledKernel
    has (run, function, packed_metadata, n_regs, metadata.shared); streams are `stream`.
    simulate(None): the process's own path within the block. Launch plans are dropped on the
    way in and out."""
    global _SIM
    before = _SIM
    _SIM = (compile_fn, stream) if compile_fn is not None else None
    options.changed()
    try:
        yield
    finally:
        _SIM = before
        options.changed()


# Triton's interpreter patches triton.language for the whole process while it runs a kernel, so
# two threads interpreting at once corrupt each other: every interpreted launch holds this.
INTERPRETER_LOCK = threading.RLock()


def _same(t):
    return t


class Launch:
    """kernel compiled for `call` (a positional list, tensors in pointer places), launched as
    launch.go(grid0, call, device) on a 1-D grid, each tensor given as launch.arg(tensor): its
    address for the fast path, the tensor itself for the public one. .compiled is the compiled
    kernel (None interpreted)."""

    def __init__(self, kernel: Kernel, call: list, num_warps: int, maxnreg: int = 0,
                 cooperative: bool = False):
        self.kernel, self.num_warps = kernel, num_warps
        self.ptrs = [i for i, a in enumerate(call) if isinstance(a, torch.Tensor)]
        self.opts = {"maxnreg": maxnreg} if maxnreg else {}
        if cooperative:  # the driver runs every program at once, or refuses the launch
            self.opts["launch_cooperative_grid"] = True
        if kernel.pdl and call[kernel.index["PDL"]]:  # the kernel's PDL constexpr decides how it
            self.opts["launch_pdl"] = True  # is launched: the two never disagree
        self.compiled = None
        self.fast = False
        self.arg = _same
        if interpreted():
            self.opts = {}
            self.go = self._go_interpreted
            return
        var, ptxas = ptxas_path(kernel.name) or (None, None)
        if ptxas is not None:  # the PTX ISA that ptxas reads, named: it puts the choice into
            self.opts["ptx_version"] = ptx_isa(ptxas)  # Triton's cache keys (see ptxas_scope)
        with ptxas_scope(ptxas, var):
            if _SIM is not None:
                k = _SIM[0](kernel.fn, call, num_warps, self.opts)
            else:
                k = kernel.fn.warmup(*call, grid=(1,), num_warps=num_warps, **self.opts)
        k._init_handles()
        self._stream = stream_fn()
        self.compiled = k
        self.fast = options.get().launcher == "auto" and fast_launcher(k)
        if self.fast:
            self.arg = torch.Tensor.data_ptr

            def go(grid0, call, device_index=0, run=k.run, stream=self._stream, fn=k.function,
                   meta=k.packed_metadata):
                run(grid0, 1, 1, stream(device_index), fn, meta, None, None, None, *call)

            self.go = go  # (a closure: the fewest lookups a call)

    def go(self, grid0: int, call: list, device_index: int = 0) -> None:
        """Launches on a 1-D grid of grid0 programs (the fast path replaces this method)."""
        self.kernel.fn[(grid0,)](**dict(zip(self.kernel.names, call)), num_warps=self.num_warps,
                                 **self.opts)

    def _go_interpreted(self, grid0: int, call: list, device_index: int = 0) -> None:
        with INTERPRETER_LOCK:
            Launch.go(self, grid0, call, device_index)

    def __call__(self, grid0: int, call: list, device_index: int = 0) -> None:
        self.go(grid0, call, device_index)

    def resources(self):
        """(registers a thread, shared memory bytes) of the compiled kernel."""
        return self.compiled.n_regs, self.compiled.metadata.shared


_WARNED = []


def fast_launcher(k) -> bool:
    """True where compiled kernel k's launcher takes what Launch passes it (grid, stream,
    function, metadata, three hooks, then the kernel's arguments); else warns once."""
    try:
        ps = list(inspect.signature(k.run).parameters.values())
        fixed = [p.name for p in ps if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        ok = (fixed in (_LEADING, _LEADING + _NAMED)
              and ps[len(fixed)].kind == inspect.Parameter.VAR_POSITIONAL
              and hasattr(k, "function") and hasattr(k, "packed_metadata"))
    except (TypeError, ValueError, AttributeError, IndexError):
        ok = False
    if not ok and not _WARNED:
        _WARNED.append(True)
        warnings.warn(f"rmsnorm_triton: Triton {triton.__version__}'s kernel launcher does not "
                      "take the arguments this package was written for (Triton 3.6-3.9); "
                      "launching through kernel[grid](...) instead, which costs more host time "
                      "a call", RuntimeWarning, stacklevel=3)
    return ok


# ---- ptxas ----------------------------------------------------------------------------------
# Triton turns PTX into machine code with the ptxas it bundles (CUDA 12.8's with Triton 3.6).
# CUDA builds of PyTorch ship their own in torch/bin, and Inductor compiles every Triton kernel
# with it (torch/_inductor/runtime/compile_tasks.py sets TRITON_PTXAS_PATH for the whole
# process). On the H100 (torch 2.11+cu130, every table entry built by each, two turns) torch's
# 13.0 ran the backward 0.8-2.3 points of copy faster at 16-bit 64K-256K (level elsewhere), and
# the forward level but for bf16 32K (-0.9) and fp32 16K (-0.5). So by default the backward
# kernels take torch's and the forward keeps Triton's (options.ptxas). A TRITON_PTXAS_PATH set
# by the user (or by Inductor) is always left as it is.
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


def ptxas_path(kernel_name: str = "") -> tuple[str, str] | None:
    """(variable, ptxas): the ptxas the named kernel is compiled with, where it is not Triton's
    choice, and the variable that tells Triton so."""
    choice = options.get().ptxas
    wanted = choice == "torch" or (choice == "table" and kernel_name in TORCH_PTXAS)
    if not wanted:
        return None
    here = os.path.join(os.path.dirname(torch.__file__), "bin", "ptxas")
    if not os.path.isfile(here):  # a CPU or ROCm build of torch
        return None
    var, bundled = triton_ptxas()
    chosen = None if os.environ.get(var) else choose_ptxas(here, bundled)
    return None if chosen is None else (var, chosen)


def triton_ptxas() -> tuple[str, str]:
    """(the variable that names the ptxas Triton builds this GPU's kernels with, the ptxas it
    uses unless told): Triton 3.9 builds sm_90 with its "ptxas-blackwell"
    (TRITON_PTXAS_BLACKWELL_PATH), 3.6 with "ptxas" (TRITON_PTXAS_PATH)."""
    if _SIM is not None and not torch.cuda.is_available():  # simulated launches, no GPU here
        return _triton_ptxas(90)
    major, minor = torch.cuda.get_device_capability()
    return _triton_ptxas(10 * major + minor)


@functools.lru_cache(maxsize=8)
def _triton_ptxas(arch: int) -> tuple[str, str]:
    from triton import knobs
    from triton.backends.nvidia.compiler import get_ptxas

    try:
        blackwell = get_ptxas(arch).path != knobs.nvidia.ptxas.path
    except RuntimeError:  # a ptxas Triton looks for is missing (compiling will say which)
        blackwell = arch >= 100
    name = "ptxas-blackwell" if blackwell else "ptxas"
    return (f"TRITON_{name.upper().replace('-', '_')}_PATH",
            os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name))


@functools.lru_cache(maxsize=8)
def ptx_isa(path) -> int:
    """The PTX ISA version Triton would write for the ptxas at `path` (13.0 -> 90)."""
    from triton.backends.nvidia.compiler import ptx_get_version

    return ptx_get_version("%d.%d" % ptxas_version(path))


@contextlib.contextmanager
def ptxas_scope(path, var="TRITON_PTXAS_PATH"):
    """The variable `var` (triton_ptxas's) set to `path` (None: left alone) while one of our
    kernels compiles, then unset again: other Triton code in the process keeps its own choice.
    Triton keys its cache by the first ptxas version a process asks for, so the caller also
    names the PTX ISA (an option Triton hashes): a cubin built by one ptxas is never served for
    the other.
    (The variable is the process's: a Triton kernel another thread compiles at that moment
    would see it too.)"""
    if path is None:
        yield
        return
    os.environ[var] = path
    try:
        yield
    finally:
        os.environ.pop(var, None)

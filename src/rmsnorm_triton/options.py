"""The package's settings: one object, read from the environment once, changed by `override`.

    from rmsnorm_triton import options
    options.get().pdl                       # the settings in force
    with options.override(pdl=False):       # for an experiment; the launch plans made under
        ...                                 # other settings are dropped on the way in and out

Each setting, its environment variable and its default:

    split          RMSNORM_TRITON_SPLIT=0           long rows' programs may meet (SPLIT); 0 walks
                                                    them in blocks, never waiting for another
                                                    program (for MPS / partial-GPU processes)
    pdl            RMSNORM_TRITON_PDL=0             programmatic dependent launch on sm_90+
    ptxas          RMSNORM_TRITON_PTXAS=table       which ptxas builds the kernels: "table" (torch's
                                                    for the backward, Triton's for the forward),
                                                    "torch" or "triton" for all
    w_native       RMSNORM_TRITON_W_NATIVE=1        Llama's x_hat * w multiplied in 16 bits where
                                                    that gives fp32's bits (SPLIT, long one-pass)
    w_native_one_pass  (no variable)   16384        one-pass rows at least this long do too
    w_first_waves  RMSNORM_TRITON_W_FIRST_WAVES=2   one-pass grids of at most this many waves
                                                    load w beside x (0: never)
    split_dynamic  RMSNORM_TRITON_SPLIT_DYNAMIC=table  SPLIT forwards hand rows out at run time:
                                                    "table" (as each entry says), "1", "0"
    table          RMSNORM_TRITON_TABLE=auto        "generic": the launch table for GPUs no table
                                                    covers, on any GPU
    launcher       RMSNORM_TRITON_LAUNCHER=auto     "public": always Triton's kernel[grid](...),
                                                    never its private launcher
    cooperative    RMSNORM_TRITON_COOPERATIVE=0     1: SPLIT launched as a cooperative grid, so
                                                    that the driver runs all its programs at once
                                                    or refuses (then the block loop); costs up to
                                                    1.9 points of copy (16-bit forward, 64K-256K)
    batch_invariant  RMSNORM_TRITON_BATCH_INVARIANT=0  1: a row's bits never depend on how many
                                                    rows share the call: one-pass tiles keep the
                                                    table's rows and warps at small M, and w is
                                                    never loaded beside x (W_FIRST)
"""

import contextlib
import dataclasses
import os

_VARS = {"split": "RMSNORM_TRITON_SPLIT", "pdl": "RMSNORM_TRITON_PDL",
         "ptxas": "RMSNORM_TRITON_PTXAS", "w_native": "RMSNORM_TRITON_W_NATIVE",
         "w_first_waves": "RMSNORM_TRITON_W_FIRST_WAVES",
         "split_dynamic": "RMSNORM_TRITON_SPLIT_DYNAMIC", "table": "RMSNORM_TRITON_TABLE",
         "launcher": "RMSNORM_TRITON_LAUNCHER", "cooperative": "RMSNORM_TRITON_COOPERATIVE",
         "batch_invariant": "RMSNORM_TRITON_BATCH_INVARIANT"}
_CHOICES = {"ptxas": ("table", "torch", "triton"), "table": ("auto", "generic"),
            "launcher": ("auto", "public"), "split_dynamic": (None, True, False)}


@dataclasses.dataclass(frozen=True)
class Options:
    split: bool = True
    pdl: bool = True
    ptxas: str = "table"
    w_native: bool = True
    w_native_one_pass: int = 16384
    w_first_waves: int = 2
    split_dynamic: bool | None = None  # None: as the table entry says
    table: str = "auto"
    launcher: str = "auto"
    cooperative: bool = False
    batch_invariant: bool = False

    def __post_init__(self):
        for name in ("split", "pdl", "w_native", "cooperative", "batch_invariant"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"options.{name} is {getattr(self, name)!r}, expected True or "
                                "False")
        for name in ("w_native_one_pass", "w_first_waves"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"options.{name} is {v!r}, expected an integer >= 0")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"options.{name} is {getattr(self, name)!r}, expected one of "
                                 f"{', '.join(map(repr, allowed))}")


def _flag(var, value, default):
    if value is None:
        return default
    if value not in ("0", "1"):
        raise ValueError(f"{var} is {value!r}, expected '0' or '1'")
    return value == "1"


def from_env(env=None) -> Options:
    """The settings the environment asks for (unset variables: the defaults)."""
    env = os.environ if env is None else env
    got = {name: env.get(var) for name, var in _VARS.items()}
    kw = {name: _flag(_VARS[name], got[name], True) for name in ("split", "pdl", "w_native")}
    for name in ("cooperative", "batch_invariant"):
        kw[name] = _flag(_VARS[name], got[name], False)
    for name in ("ptxas", "table", "launcher"):
        if got[name] is not None:
            if got[name] not in _CHOICES[name]:
                raise ValueError(f"{_VARS[name]} is {got[name]!r}, expected one of "
                                 f"{', '.join(map(repr, _CHOICES[name]))}")
            kw[name] = got[name]
    if got["w_first_waves"] is not None:
        if not got["w_first_waves"].isdigit():
            raise ValueError(f"RMSNORM_TRITON_W_FIRST_WAVES is {got['w_first_waves']!r}, "
                             "expected an integer >= 0")
        kw["w_first_waves"] = int(got["w_first_waves"])
    dyn = got["split_dynamic"]
    if dyn not in (None, "table", "0", "1"):
        raise ValueError(f"RMSNORM_TRITON_SPLIT_DYNAMIC is {dyn!r}, expected 'table', '0' or '1'")
    kw["split_dynamic"] = None if dyn in (None, "table") else dyn == "1"
    return Options(**kw)


_current = None
_on_change = []  # called after every change (plan.py drops its plans)


def get() -> Options:
    """The settings in force: the environment's, read at the first call, or an override's."""
    global _current
    if _current is None:
        _current = from_env()
    return _current


@contextlib.contextmanager
def override(**changes):
    """Within the block, these settings replace those in force (dropping the launch plans made
    before, and again on the way out)."""
    global _current
    before = get()
    _set(dataclasses.replace(before, **changes))
    try:
        yield _current
    finally:
        _set(before)


def _set(opts: Options) -> None:
    global _current
    _current = opts
    changed()


def changed() -> None:
    """Tells those who keep state made under the settings (plan.py's plans) to drop it."""
    for hook in _on_change:
        hook()

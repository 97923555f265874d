"""The visualizer's data: one launch of the library's kernel in trace mode, as JSON-ready numbers.

`trace(...)` runs the library's own row walks once, one program per row (rms_norm_trace below:
kernels/forward.py's one-pass code for a row of one block, kernels/loop.py's block loop with its
trace on for a longer one; or layernorm.layer_norm_fwd with TRACE=True), and returns everything
the page shows: the inputs as the kernel saw them
(rounded to the dtype), each block's partial sum and the running sum after it, the per-row
statistics, y, the schedule as a list of steps, bytes and FLOPs per step against the minimum,
the walk's source with the lines of each step, and the float64 reference. The page formats these
numbers; it computes none of them.

Non-finite numbers (eps = 0 on a zero row gives rstd = inf) travel as the strings "inf", "-inf"
and "nan", since JSON has no spelling for them.
"""

import ast
import contextlib
import inspect
import math
import textwrap

import torch
import triton
import triton.language as tl

from . import _triton, checks
from . import layernorm as LN
from .kernels.forward import one_pass_rows
from .kernels.loop import loop_row
from .testing import TOLERANCE, max_scaled_error

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
NORMS = ("rms", "layer")
MAX_ROWS, MAX_N = 64, 256
# At most 16 blocks a row: 64 rows x 256 at block 16 run in ~2 s under the interpreter on a
# 2-core CPU (block 1 takes 36 s) and give ~2,100 animation steps.
MAX_BLOCKS = 16
MAX_EPS = 1.0
MAX_SEED = 2**31 - 1
MAX_VALUE = 1e6  # |x|, |w|: 256 * (1e6)^2 stays far from fp32's overflow
DEFAULTS = {"rows": 4, "n": 10, "block_size": 4, "eps": 1e-6, "dtype": "fp32", "seed": 0,
            "norm": "rms"}
# Launches are serialized by the lock every interpreted launch of the library holds.
_LOCK = _triton.INTERPRETER_LOCK

# Each step kind -> the statements of the shown function that it executes, as (loop, what):
# loop is the index of the enclosing `for` (in source order; None: outside every loop), what is
# an assignment's targets ("h", "ms, rstd", "ss +=") or "store P" for tl.store(P + ...). Found in
# the function's syntax tree (_source), branches on the launch's constexprs taken as it runs them.
_RMS_STEPS = {
    True: {"sum_sq": [(None, "h"), (None, "ss")],
           "stats": [(None, "ms, rstd"), (None, "store RSTD")],
           "normalize": [(None, "w"), (None, "y"), (None, "store Y")]},
    False: {"sum_sq": [(0, "h"), (0, "block_sum"), (0, "ss +=")],
            "stats": [(None, "ms, rstd"), (None, "store RSTD")],
            "normalize": [(1, "h"), (1, "w"), (1, "y"), (1, "store Y")]},
}
_LN_STATS = [(None, "var, rstd"), (None, "store MEAN"), (None, "store RSTD")]
_LN_STEPS = {
    True: {"sum": [(None, "x"), (None, "s")], "mean": [(None, "mean, _")],
           "sum_sq_dev": [(None, "d"), (None, "sd")], "stats": _LN_STATS,
           "normalize": [(None, "y"), (None, "store Y")]},
    False: {"sum": [(0, "x"), (0, "block_sum"), (0, "s +=")], "mean": [(None, "mean, _")],
            "sum_sq_dev": [(1, "x"), (1, "d"), (1, "block_sd"), (1, "sd +=")], "stats": _LN_STATS,
            "normalize": [(2, "x"), (2, "y"), (2, "store Y")]},
}
# The constexprs of the traced launches (one_pass_rows / loop_row / layer_norm_fwd's): the
# branches they decide are the ones the page highlights.
_RMS_CONSTS = dict(HAS_W=True, HAS_R=False, STORE_RSTD=True, W_FIRST=False, W_NATIVE=False,
                   TRACE=True, CASTING=1, QUANT=0)
_LN_CONSTS = dict(HAS_W=True, HAS_B=False, TRACE=True)


@triton.jit
def rms_norm_trace(X, W, Y, RSTD, TRACE_BLK, TRACE_ROW, stride_x, stride_y, M, N, eps,
                   BLOCK_N: tl.constexpr, ONE_PASS: tl.constexpr):
    """The visualizer's launch: one program a row, walked by the library's own code (a row of
    one block by forward.one_pass_rows, a longer one by loop.loop_row with its trace on), then
    the row's [ss, ms, rms, rstd] stored (and, in one block, ss as the block's sums)."""
    pid = tl.program_id(0)
    ACC: tl.constexpr = tl.float32
    IN_TY: tl.constexpr = X.dtype.element_ty
    if ONE_PASS:
        rows = pid + tl.arange(0, 1)
        ss, ms, rstd = one_pass_rows(X, X, W, Y, X, RSTD, pid, stride_x, 0, stride_y, 0, M, N,
                                     eps, 0.0, 1, BLOCK_N, True, False, True, 1, False, False,
                                     IN_TY, ACC)
        tl.store(TRACE_BLK + rows * 2, ss, mask=rows < M)
        tl.store(TRACE_BLK + rows * 2 + 1, ss, mask=rows < M)
    else:
        rows = pid.to(tl.int64)
        ss, ms, rstd = loop_row(X, X, W, Y, X, RSTD, rows, stride_x, 0, stride_y, 0, N, eps, 0.0,
                                BLOCK_N, True, False, True, 1, IN_TY, ACC, True, TRACE_BLK)
    tl.store(TRACE_ROW + rows * 4, ss, mask=rows < M)
    tl.store(TRACE_ROW + rows * 4 + 1, ms, mask=rows < M)
    tl.store(TRACE_ROW + rows * 4 + 2, tl.sqrt(ms.to(tl.float64)).to(ACC), mask=rows < M)
    tl.store(TRACE_ROW + rows * 4 + 3, rstd, mask=rows < M)


def block_choices(n: int) -> list:
    """Block sizes offered for a row of n: powers of two up to the one that holds the row,
    from the smallest that splits it into at most MAX_BLOCKS blocks."""
    top = 1 << max(0, (n - 1).bit_length())
    return [1 << k for k in range(top.bit_length()) if -(-n // (1 << k)) <= MAX_BLOCKS]


def _int(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, got {v!r}")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be from {lo} to {hi}, got {v}")
    return v


def _values(name, v, length, limit):
    if not isinstance(v, (list, tuple)) or len(v) != length:
        got = f"{len(v)} values" if isinstance(v, (list, tuple)) else type(v).__name__
        raise ValueError(f"{name} must be a list of {length} numbers, got {got}")
    for i, e in enumerate(v):
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e):
            raise ValueError(f"{name}[{i}] is {e!r}, expected a finite number")
        if abs(e) > limit:
            raise ValueError(f"{name}[{i}] is {e!r}, expected |value| <= {limit:g}")
    return [float(e) for e in v]


def _matrix(name, v, rows, n, limit):
    """rows x n values, given as rows of numbers or as one flat list: checked, flattened."""
    if isinstance(v, (list, tuple)) and v and all(isinstance(r, (list, tuple)) for r in v):
        if len(v) != rows:
            raise ValueError(f"{name} has {len(v)} rows, expected {rows}")
        return [e for i, r in enumerate(v) for e in _values(f"{name}[{i}]", r, n, limit)]
    return _values(name, v, rows * n, limit)


def validate(rows, n, block_size, eps, dtype, seed, x=None, weight=None, norm="rms") -> dict:
    """Checks and bounds every parameter; raises ValueError naming the bad one."""
    rows = _int("rows", rows, 1, MAX_ROWS)
    n = _int("n", n, 1, MAX_N)
    choices = block_choices(n)
    if isinstance(block_size, bool) or block_size not in choices:
        raise ValueError(f"block_size must be one of {choices} for n = {n}, got {block_size!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) \
            or not 0 <= eps <= MAX_EPS:
        raise ValueError(f"eps must be a finite number from 0 to {MAX_EPS:g}, got {eps!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    seed = _int("seed", seed, 0, MAX_SEED)
    if norm not in NORMS:
        raise ValueError(f"norm must be 'rms' or 'layer', got {norm!r}")
    limit = min(MAX_VALUE, torch.finfo(DTYPES[dtype]).max)
    if x is not None:
        x = _matrix("x", x, rows, n, limit)
    if weight is not None:
        weight = _values("weight", weight, n, limit)
    return dict(rows=rows, n=n, block_size=block_size, eps=float(eps), dtype=dtype, seed=seed,
                x=x, weight=weight, norm=norm)


def trace_request(body) -> dict:
    """trace() from a parsed JSON request: unknown keys are errors, missing ones take DEFAULTS."""
    if not isinstance(body, dict):
        raise ValueError(f"the request must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(DEFAULTS) - {"x", "weight"})
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; expected some of "
                         f"{', '.join(list(DEFAULTS) + ['x', 'weight'])}")
    return trace(**{**DEFAULTS, **body})


def _num(v: float):
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _json(t: torch.Tensor):
    if t.dim() == 0:
        return _num(t.item())
    if t.dim() == 1:
        return [_num(v) for v in t.double().tolist()]
    return [_json(r) for r in t]


def _source(fn, spec, consts):
    """The function's source lines, its first line number, and step kind -> file line numbers:
    the statements each step executes (spec), found in the function's syntax tree with the
    branches that `consts` decide taken as the launch takes them."""
    fn = getattr(fn, "fn", fn)
    lines, first = inspect.getsourcelines(fn)
    # CPython 3.11's syntax-tree conversions share one recursion count per process, and an
    # interpreted launch rewrites its kernel's tree in another thread: take turns with it.
    with _LOCK:
        tree = ast.parse(textwrap.dedent("".join(lines)))
        seen = [(loop, _what(st), first + st.lineno - 1)
                for st, loop in _statements(tree.body[0].body, consts, None, [0])]
    found = {kind: [ln for loop, what, ln in seen if (loop, what) in wants]
             for kind, wants in spec.items()}
    missing = [f"{kind}: {want}" for kind, wants in spec.items() for want in wants
               if not any((loop, what) == want for loop, what, _ in seen)]
    return {"name": fn.__name__, "file": inspect.getsourcefile(fn).rsplit("/", 1)[-1],
            "first_line": first, "lines": [ln.rstrip("\n") for ln in lines],
            "step_lines": found, "missing": missing}


def _statements(body, consts, loop, loops):
    """(statement, index of its innermost `for`) in source order, skipping the branches of an
    `if` on constexprs that `consts` decide; loops[0] counts the `for`s met so far."""
    for st in body:
        if isinstance(st, ast.If):
            try:
                test = compile(ast.Expression(st.test), "<if>", "eval")
                taken = bool(eval(test, {}, dict(consts)))  # (names only: the constexprs)
                branches = [st.body if taken else st.orelse]
            except Exception:  # noqa: BLE001 - a runtime condition: either branch may run
                branches = [st.body, st.orelse]
            for b in branches:
                yield from _statements(b, consts, loop, loops)
        elif isinstance(st, ast.For):
            index = loops[0]
            loops[0] += 1
            yield from _statements(st.body, consts, index, loops)
        else:
            yield st, loop


def _what(st):
    """A statement's name for the step tables: its targets, "x +=", or "store P"."""
    if isinstance(st, ast.Assign):
        return ", ".join(ast.unparse(t) for t in st.targets[0].elts) \
            if isinstance(st.targets[0], ast.Tuple) else ast.unparse(st.targets[0])
    if isinstance(st, ast.AugAssign):
        return ast.unparse(st.target) + " +="
    call = getattr(st, "value", None)
    if isinstance(call, ast.Call) and ast.unparse(call.func) == "tl.store" and call.args:
        ptr = call.args[0]
        while isinstance(ptr, ast.BinOp):
            ptr = ptr.left
        return "store " + ast.unparse(ptr)
    return None


# Each program's steps, in order. ("blocks", pass, reads x, FLOPs per lane, loads w + stores y):
# a walk over the row's blocks; x is read on the first walk, and again on later walks only when
# the row does not stay in registers ("again"). ("row", pass, bytes stored, FLOPs): one step.
PLANS = {
    "rms": [("blocks", "sum_sq", "first", 2, False),  # x*x, +
            ("row", "stats", 4, 4),  # /N, +eps, sqrt, 1/; stores rstd (fp32)
            ("blocks", "normalize", "again", 2, True)],  # *rstd, *w
    "layer": [("blocks", "sum", "first", 1, False),  # +
              ("row", "mean", 0, 1),  # /N
              ("blocks", "sum_sq_dev", "again", 3, False),  # -mean, square, +
              ("row", "stats", 8, 4),  # /N, +eps, sqrt, 1/; stores mean and rstd
              ("blocks", "normalize", "again", 3, True)],  # -mean, *rstd, *w
}


def schedule(norm, m, n, block, es):
    """The launch as the interpreter runs it: program p = row p, in program order. Each step
    carries the bytes its loads and stores move (masked lanes move nothing) and the FLOPs its
    lanes execute (masked lanes compute too, on the zeros they were given)."""
    one = n <= block
    nb = 1 if one else -(-n // block)
    valid = [min(n, (b + 1) * block) - b * block for b in range(nb)]
    steps, tot = [], {"loaded": 0, "stored": 0, "flops": 0}
    for p in range(m):
        for kind, name, *rest in PLANS[norm]:
            if kind == "row":
                todo = [(None, 0, rest[0], rest[1])]
            else:
                reads, per_lane, writes = rest
                reads_x = reads == "first" or not one
                # the RMSNorm kernel normalizes last block first (likeliest still in L2)
                order = range(nb - 1, -1, -1) if (norm, name) == ("rms", "normalize") else range(nb)
                todo = [(b, valid[b] * es * (reads_x + writes), valid[b] * es * writes,
                         per_lane * block) for b in order]
            for b, ld, st, fl in todo:
                tot = {"loaded": tot["loaded"] + ld, "stored": tot["stored"] + st,
                       "flops": tot["flops"] + fl}
                steps.append({"pass": name, "program": p, "row": p, "block": b,
                              "d_loaded": ld, "d_stored": st, "d_flops": fl, **tot})
    per_row = sum(r[2] for r in PLANS[norm] if r[0] == "row")
    per_elem = sum(r[3] for r in PLANS[norm] if r[0] == "blocks")
    per_row_flops = sum(r[3] for r in PLANS[norm] if r[0] == "row")
    minimum = {"loaded": (m * n + n) * es, "stored": m * n * es + per_row * m,
               "flops": m * (per_elem * n + per_row_flops)}
    return steps, tot, minimum


def _reference(norm, x, w, eps, block, nb):
    h = x.double()
    blocks = torch.nn.functional.pad(h, (0, nb * block - h.shape[1])).view(h.shape[0], nb, -1)
    if norm == "rms":
        part = (blocks * blocks).sum(-1)
        ms = part.sum(-1) / h.shape[1]
        y = h * torch.rsqrt(ms + eps)[:, None] * w.double()
        return {"sum_sq": part.sum(-1), "mean_sq": ms, "rms": ms.sqrt(),
                "rstd": torch.rsqrt(ms + eps), "y": y, "partial": {"sum_sq": part}}
    mean = h.mean(-1)
    d = torch.nn.functional.pad(h - mean[:, None], (0, nb * block - h.shape[1]))
    dev = (d * d).view(h.shape[0], nb, -1).sum(-1)
    var = dev.sum(-1) / h.shape[1]
    rstd = torch.rsqrt(var + eps)
    return {"sum": h.sum(-1), "mean": mean, "sum_sq_dev": dev.sum(-1), "var": var, "rstd": rstd,
            "y": (h - mean[:, None]) * rstd[:, None] * w.double(),
            "partial": {"sum": blocks.sum(-1), "sum_sq_dev": dev}}


def _quiet_numpy():
    """eps = 0 on a zero row divides by zero on purpose; the interpreter's numpy would warn."""
    try:
        import numpy
    except ImportError:
        return contextlib.nullcontext()
    return numpy.errstate(divide="ignore", invalid="ignore", over="ignore")


def trace(rows, n, block_size, eps, dtype, seed, x=None, weight=None, norm="rms") -> dict:
    """Runs the kernel once in trace mode and returns the JSON-ready trace (see module doc)."""
    p = validate(rows, n, block_size, eps, dtype, seed, x, weight, norm)
    m, n, block, dt = p["rows"], p["n"], p["block_size"], DTYPES[p["dtype"]]
    if p["x"] is None:
        x = torch.randn(m, n, generator=torch.Generator().manual_seed(p["seed"])).to(dt)
    else:
        x = torch.tensor(p["x"], dtype=torch.float64).view(m, n).to(dt)
    w = torch.ones(n, dtype=dt) if p["weight"] is None else torch.tensor(p["weight"]).to(dt)
    dev = "cuda" if not checks.interpreted() else "cpu"
    xd, wd = x.to(dev), w.to(dev)
    one = n <= block
    nb = 1 if one else -(-n // block)
    with _LOCK, _quiet_numpy():
        if norm == "rms":
            y = torch.empty((m, n), dtype=dt, device=dev)
            rstd = torch.empty((m,), dtype=torch.float32, device=dev)
            tb = torch.full((m, nb, 2), float("nan"), device=dev)
            tr = torch.full((m, 4), float("nan"), device=dev)
            rms_norm_trace[(m,)](xd, wd, y, rstd, tb, tr, xd.stride(0), y.stride(0), m, n,
                                 p["eps"], BLOCK_N=block, ONE_PASS=one, num_warps=1)
        else:
            y, _, _, (tb, tr) = LN.layer_norm(xd, wd, None, p["eps"], block_n=block, trace=True)
    y, tb, tr = y.cpu(), tb.cpu().double(), tr.cpu().double()
    ref = _reference(norm, x, w, p["eps"], block, nb)
    es = x.element_size()
    steps, total, minimum = schedule(norm, m, n, block, es)
    if norm == "rms":
        stats = dict(zip(("sum_sq", "mean_sq", "rms", "rstd"), tr.unbind(1)))
        partial = {"sum_sq": {"block": tb[..., 0], "running": tb[..., 1]}}
        src = _source(one_pass_rows if one else loop_row, _RMS_STEPS[one], _RMS_CONSTS)
    else:
        stats = dict(zip(("sum", "mean", "sum_sq_dev", "var", "rstd"), tr.unbind(1)))
        partial = {"sum": {"block": tb[..., 0], "running": tb[..., 1]},
                   "sum_sq_dev": {"block": tb[..., 2], "running": tb[..., 3]}}
        src = _source(LN.layer_norm_fwd, _LN_STEPS[one], {**_LN_CONSTS, "ONE_PASS": one})
    lanes = list(range(nb * block))
    blocks = [{"index": b, "start": b * block, "end": min(n, (b + 1) * block),
               "mask": [c < n for c in lanes[b * block:(b + 1) * block]]} for b in range(nb)]
    other = "layer" if norm == "rms" else "rms"
    _, o_total, o_min = schedule(other, m, n, block, es)
    err = max_scaled_error(y, ref["y"], dt)
    return {
        "params": {k: p[k] for k in DEFAULTS} | {"x_given": p["x"] is not None,
                                                 "weight_given": p["weight"] is not None},
        "device": "Triton interpreter (CPU)" if dev == "cpu" else torch.cuda.get_device_name(),
        "kernel": {"one_pass": one, "num_blocks": nb, "block_n": block, "block_m": 1,
                   "grid": m, "element_bytes": es, "casting": "llama" if norm == "rms" else None},
        "x": _json(x), "weight": _json(w), "y": _json(y),
        **{k: _json(v) for k, v in stats.items()},
        "partial": {k: {kk: _json(vv) for kk, vv in v.items()} for k, v in partial.items()},
        "blocks": blocks,
        "programs": [{"program": r, "row": r, "order": r} for r in range(m)],
        "steps": steps,
        "cost": {norm: {"total": total, "minimum": minimum}, other: {"total": o_total, "minimum": o_min}},
        "source": src,
        "reference": {k: (_json(v) if k != "partial" else {kk: _json(vv) for kk, vv in v.items()})
                      for k, v in ref.items()},
        "error": {"y_max_abs": _num((y.double() - ref["y"]).abs().max().item()),
                  "y_scaled": _num(err), "tolerance_rel": TOLERANCE[dt][0],
                  "within_tolerance": err <= 1.0},
        "limits": {"defaults": DEFAULTS, "rows": [1, MAX_ROWS], "n": [1, MAX_N], "eps": [0, MAX_EPS],
                   "seed": [0, MAX_SEED], "value": min(MAX_VALUE, torch.finfo(dt).max),
                   "dtypes": list(DTYPES), "block_choices": {str(k): block_choices(k)
                                                             for k in range(1, MAX_N + 1)}},
    }

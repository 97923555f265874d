"""The visualizer's data: one launch of the library's kernel in trace mode, as JSON-ready numbers.

`trace(...)` runs `kernels.rms_norm_fwd` (or `layernorm.layer_norm_fwd`) with TRACE=True, one
program per row, and returns everything the page shows: the inputs as the kernel saw them
(rounded to the dtype), each block's partial sum and the running sum after it, the per-row
statistics, y, the schedule as a list of steps, bytes and FLOPs per step against the minimum,
the kernel's source with the line of each step, and the float64 reference. The page formats these
numbers; it computes none of them.

Non-finite numbers (eps = 0 on a zero row gives rstd = inf) travel as the strings "inf", "-inf"
and "nan", since JSON has no spelling for them.
"""

import contextlib
import inspect
import math
import threading

import torch

from . import heuristics, launch
from . import kernels as K
from . import layernorm as LN
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
# Launches are serialized: Triton's interpreter patches triton.language while it runs a kernel,
# so two threads interpreting at once would corrupt each other.
_LOCK = threading.Lock()

# Each step kind -> (anchor, needles): the source lines the step executes, each needle found by
# substring after the anchor line and after the needle before it.
_P1, _P2 = "for b in range(0, num_blocks)", "for i in range(0, num_blocks)"
_RMS_LINES = {
    True: {"sum_sq": ("if ONE_PASS:", ["h = _load_h(", "ss = tl.sum(h * h"]),
           "stats": ("if ONE_PASS:", ["ms, rstd = _mean_rstd(", "tl.store(RSTD + rows,"]),
           "normalize": ("if ONE_PASS:", ["w = tl.load(W + cols", "y = _apply_weight(",
                                          "tl.store(Y + rows64"])},
    False: {"sum_sq": (_P1, ["h = _load_h(", "block_sum = tl.sum(", "ss += block_sum"]),
            "stats": (_P1, ["ms, rstd = _mean_rstd(", "tl.store(RSTD + row,"]),
            "normalize": (_P2, ["h = tl.load(X + row * stride_x", "w = tl.load(W + c",
                                "y = _apply_weight(", "tl.store(Y + row * stride_y"])},
}
_STATS = ["var, rstd = _mean_rstd(sd", "tl.store(MEAN + row,", "tl.store(RSTD + row,"]
_LN_LINES = {
    True: {"sum": ("if ONE_PASS:", ["x = tl.load(X + cols", "s = tl.sum(x"]),
           "mean": ("if ONE_PASS:", ["mean, _ = _mean_rstd(s,"]),
           "sum_sq_dev": ("if ONE_PASS:", ["d = tl.where(m, x - mean", "sd = tl.sum(d * d"]),
           "stats": ("if ONE_PASS:", _STATS),
           "normalize": ("if ONE_PASS:", ["y = d * rstd", "y = y * tl.load(W + cols",
                                          "tl.store(Y + cols"])},
    False: {"sum": ("# pass 1:", ["x = tl.load(X + c,", "block_sum = tl.sum(x", "s += block_sum"]),
            "mean": ("# pass 1:", ["mean, _ = _mean_rstd(s,"]),
            "sum_sq_dev": ("# pass 2:", ["x = tl.load(X + c,", "d = tl.where(c < N",
                                         "block_sd = tl.sum(", "sd += block_sd"]),
            "stats": ("# pass 2:", _STATS),
            "normalize": ("# pass 3:", ["x = tl.load(X + c, mask=m", "y = (x - mean) * rstd",
                                        "y = y * tl.load(W + c", "tl.store(Y + c,"])},
}


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
        if isinstance(x, (list, tuple)) and x and all(isinstance(r, (list, tuple)) for r in x):
            if len(x) != rows:
                raise ValueError(f"x has {len(x)} rows, expected {rows}")
            x = [v for i, r in enumerate(x) for v in _values(f"x[{i}]", r, n, limit)]
        else:
            x = _values("x", x, rows * n, limit)
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


def _source(fn, spec):
    """The kernel's source lines, its first line number, and step kind -> file line numbers."""
    fn = getattr(fn, "fn", fn)
    lines, first = inspect.getsourcelines(fn)
    lines = [ln.rstrip("\n") for ln in lines]
    found, missing = {}, []
    for kind, (anchor, needles) in spec.items():
        at = next((i for i, ln in enumerate(lines) if anchor in ln), None)
        found[kind] = []
        for s in needles:
            at = None if at is None else next(
                (i for i in range(at, len(lines)) if s in lines[i]), None)
            if at is None:
                missing.append(s)
                at = 0
            else:
                found[kind].append(first + at)
    return {"name": fn.__name__, "file": inspect.getsourcefile(fn).rsplit("/", 1)[-1],
            "first_line": first, "lines": lines, "step_lines": found, "missing": missing}


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
    dev = "cuda" if not launch.interpreted() else "cpu"
    xd, wd = x.to(dev), w.to(dev)
    one = n <= block
    nb = 1 if one else -(-n // block)
    with _LOCK, _quiet_numpy():
        if norm == "rms":
            cfg = heuristics.Config(block_m=1, block_n=block, num_warps=1, one_pass=one)
            y, _, _, (tb, tr) = launch.forward(xd, wd, None, p["eps"], 0.0, "llama", dt, None,
                                               store_rstd=True, config=cfg, trace=True)
        else:
            y, _, _, (tb, tr) = LN.layer_norm(xd, wd, None, p["eps"], block_n=block, trace=True)
    y, tb, tr = y.cpu(), tb.cpu().double(), tr.cpu().double()
    ref = _reference(norm, x, w, p["eps"], block, nb)
    es = x.element_size()
    steps, total, minimum = schedule(norm, m, n, block, es)
    if norm == "rms":
        stats = dict(zip(("sum_sq", "mean_sq", "rms", "rstd"), tr.unbind(1)))
        partial = {"sum_sq": {"block": tb[..., 0], "running": tb[..., 1]}}
        src = _source(K.rms_norm_fwd, _RMS_LINES[one])
    else:
        stats = dict(zip(("sum", "mean", "sum_sq_dev", "var", "rstd"), tr.unbind(1)))
        partial = {"sum": {"block": tb[..., 0], "running": tb[..., 1]},
                   "sum_sq_dev": {"block": tb[..., 2], "running": tb[..., 3]}}
        src = _source(LN.layer_norm_fwd, _LN_LINES[one])
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

"""The visualizer's backward: one launch of the library's backward block loop in trace mode.

    x_hat = x * rstd,   wdy = w * dy
    c1    = mean(x_hat * wdy)                  per row: needs the whole row first
    dx    = rstd * (wdy - x_hat * c1)
    dw    = sum over rows of dy * x_hat        per program, then reduced in a fixed order

`trace_backward(...)` runs the forward's trace launch (trace.py) for rstd, then
rms_norm_bwd_trace below: P programs, program p walking rows p, p + P, ... with
kernels/backward.py's loop_row_bwd (its trace on), each adding its rows' dy * x_hat into its
own row of the dw partials; then the library's dw_reduce sums the P partial rows in the order
its code fixes (no atomics: the same dw bit for bit on every run). It returns the inputs as the
kernels saw them, each block's sum of x * wdy and the running sum, c1, dx, each program's dw
partial row after each of its rows, dw, the schedule with the bytes of each step, the source
with each step's lines, and the float64 reference. The page formats these; it computes none.
"""

import torch
import triton
import triton.language as tl

from . import checks
from . import trace as T
from .kernels.backward import dw_reduce, loop_row_bwd
from .testing import TOLERANCE

DEFAULTS = {"rows": 4, "n": 10, "block_size": 4, "eps": 1e-6, "dtype": "fp32", "seed": 0,
            "programs": 2}
# dw_reduce's launch, as plan.BwdPlan makes it: BLOCK_P partial rows a load, columns in blocks
REDUCE_BLOCK_P = 32


def reduce_block_n(n: int) -> int:
    return 256 if n >= 256 else max(16, 1 << (n - 1).bit_length())


# Step kind -> the statements of loop_row_bwd (or dw_reduce) it executes, as in trace.py.
_STEPS = {"c1_sum": [(0, "x"), (0, "dy"), (0, "dy +="), (0, "acc +=")],
          "c1": [(None, "rstd"), (None, "c1")],
          "dx": [(1, "x_hat"), (1, "dy"), (1, "wdy"), (1, "dx"), (1, "part"), (1, "prev"),
                 (1, "store part")]}
_REDUCE_STEPS = {"reduce": [(0, "p"), (0, "mask"), (0, "acc +=")], "dw": [(None, "store DW")]}
_CONSTS = dict(HAS_W=True, STORE_DW=True, HAS_DH=False, STORE_DR=False, TRACE=True)


@triton.jit
def rms_norm_bwd_trace(DY, X, W, RSTD, DX, DW_PART, TRACE_BLK, TRACE_DW, C1, stride, M, N,
                       NUM_PROGS, BLOCK_N: tl.constexpr):
    """The visualizer's launch: rms_norm_bwd's block loop (loop_row_bwd) over rows pid,
    pid + NUM_PROGS, ..., its trace on; each row's c1 stored."""
    pid = tl.program_id(0)
    for row in range(pid, M, NUM_PROGS):
        c1 = loop_row_bwd(DY, X, W, RSTD, X, DX, DX, DW_PART, row, pid, stride, stride, 0, stride,
                          0, N, 0.0, BLOCK_N, True, True, False, False, tl.float32, True,
                          TRACE_BLK, TRACE_DW)
        tl.store(C1 + row, c1)


def validate(rows, n, block_size, eps, dtype, seed, programs, x=None, weight=None, dy=None):
    """trace.validate's checks, programs from 1 to rows, and dy shaped and bounded as x is."""
    p = T.validate(rows, n, block_size, eps, dtype, seed, x, weight)
    p["programs"] = T._int("programs", programs, 1, p["rows"])
    limit = min(T.MAX_VALUE, torch.finfo(T.DTYPES[p["dtype"]]).max)
    p["dy"] = None if dy is None else T._matrix("dy", dy, p["rows"], p["n"], limit)
    return p


def trace_backward_request(body) -> dict:
    """trace_backward() from a parsed JSON request: unknown keys are errors, the rest default."""
    if not isinstance(body, dict):
        raise ValueError(f"the request must be a JSON object, got {type(body).__name__}")
    known = list(DEFAULTS) + ["x", "weight", "dy"]
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; expected some of {', '.join(known)}")
    return trace_backward(**{**DEFAULTS, **body})


def schedule(m, n, block, programs, es):
    """The launch as the interpreter runs it: program p's rows in order, each walked twice
    (c1's sum, then dx last block first), then dw_reduce's programs. Bytes are what each step's
    loads and stores move (masked lanes move nothing; the dw partials are fp32)."""
    nb = -(-n // block)
    valid = [min(n, (b + 1) * block) - b * block for b in range(nb)]
    steps, tot = [], {"loaded": 0, "stored": 0}

    def add(kind, program, row, block_, ld, st, **more):
        tot["loaded"] += ld
        tot["stored"] += st
        steps.append({"pass": kind, "program": program, "row": row, "block": block_,
                      "d_loaded": ld, "d_stored": st, **tot, **more})

    for p in range(programs):
        for r in range(p, m, programs):
            for b in range(nb):  # x, dy, w
                add("c1_sum", p, r, b, 3 * valid[b] * es, 0)
            add("c1", p, r, None, 4, 0)  # rstd
            for b in reversed(range(nb)):  # x, dy, w, the partial (not on the first row); dx
                first = r == p
                add("dx", p, r, b, 3 * valid[b] * es + (0 if first else 4 * valid[b]),
                    valid[b] * (es + 4))
    rb = reduce_block_n(n)
    for q in range(-(-n // rb)):
        cols = min(n, (q + 1) * rb) - q * rb
        for p0 in range(0, programs, REDUCE_BLOCK_P):
            rows = min(programs, p0 + REDUCE_BLOCK_P) - p0
            add("reduce", q, None, None, rows * cols * 4, 0, parts=[p0, p0 + rows],
                cols=[q * rb, q * rb + cols])
        add("dw", q, None, None, 0, cols * es, cols=[q * rb, q * rb + cols])
    minimum = {"loaded": (2 * m * n + n) * es + 4 * m, "stored": (m * n + n) * es}
    return steps, dict(tot), minimum


def _reference(x, w, dy, eps, programs, block, nb):
    """float64: rstd, the block sums of x * wdy, c1, dx, each program's dw partial, dw."""
    h, w, dy = x.double(), w.double(), dy.double()
    m, n = h.shape
    rstd = torch.rsqrt((h * h).mean(-1) + eps)
    wdy = w * dy
    prod = torch.nn.functional.pad(h * wdy, (0, nb * block - n)).view(m, nb, -1).sum(-1)
    x_hat = h * rstd[:, None]
    c1 = (x_hat * wdy).mean(-1)
    dx = rstd[:, None] * (wdy - x_hat * c1[:, None])
    parts = torch.stack([(dy * x_hat)[p::programs].sum(0) for p in range(programs)])
    return {"rstd": rstd, "c1": c1, "dx": dx, "dw_part": parts, "dw": (dy * x_hat).sum(0),
            "partial": {"block": prod},
            # what rounding can move each by: dx and dw differ from terms of their size (dx's
            # cancel where x_hat * c1 ~ wdy), so their error is relative to those terms
            "scale": {"dx": rstd[:, None] * (wdy.abs() + x_hat.abs() * (
                c1.abs() + (x_hat * wdy).abs().mean(-1))[:, None]),
                "dw": (dy * x_hat).abs().sum(0)}}


def scaled_error(out, ref, scale, dtype) -> float:
    """max |out - ref| / (4 rel * scale + abs): <= 1 passes (a few roundings of each term)."""
    rel, abs_ = TOLERANCE[dtype]
    err = (out.double() - ref).abs() / (4 * rel * scale + abs_)
    return torch.nan_to_num(err, nan=float("inf")).max().item() if err.numel() else 0.0


def trace_backward(rows, n, block_size, eps, dtype, seed, programs, x=None, weight=None,
                   dy=None) -> dict:
    """Runs the backward once in trace mode and returns the JSON-ready trace (module doc)."""
    p = validate(rows, n, block_size, eps, dtype, seed, programs, x, weight, dy)
    m, n, block, dt, P = p["rows"], p["n"], p["block_size"], T.DTYPES[p["dtype"]], p["programs"]
    gen = torch.Generator().manual_seed(p["seed"])
    x = torch.randn(m, n, generator=gen).to(dt)  # the forward trace's x for the same seed
    if p["x"] is not None:
        x = torch.tensor(p["x"], dtype=torch.float64).view(m, n).to(dt)
    dy = torch.randn(m, n, generator=gen).to(dt)
    if p["dy"] is not None:
        dy = torch.tensor(p["dy"], dtype=torch.float64).view(m, n).to(dt)
    w = torch.ones(n, dtype=dt) if p["weight"] is None else torch.tensor(p["weight"]).to(dt)
    dev = "cuda" if not checks.interpreted() else "cpu"
    xd, wd, dyd = x.to(dev), w.to(dev), dy.to(dev)
    nb = -(-n // block)
    f32 = dict(dtype=torch.float32, device=dev)
    with T._LOCK, T._quiet_numpy():
        y, rstd = torch.empty((m, n), dtype=dt, device=dev), torch.empty((m,), **f32)
        T.rms_norm_trace[(m,)](xd, wd, y, rstd, torch.empty((m, nb, 2), **f32),
                               torch.empty((m, 4), **f32), xd.stride(0), y.stride(0), m, n,
                               p["eps"], BLOCK_N=block, ONE_PASS=n <= block, num_warps=1)
        dx = torch.full((m, n), float("nan"), dtype=dt, device=dev)
        part = torch.full((P, n), float("nan"), **f32)
        tb = torch.full((m, nb, 2), float("nan"), **f32)
        tdw = torch.full((m, n), float("nan"), **f32)
        c1 = torch.full((m,), float("nan"), **f32)
        rms_norm_bwd_trace[(P,)](dyd, xd, wd, rstd, dx, part, tb, tdw, c1, n, m, n, P,
                                 BLOCK_N=block, num_warps=1)
        dw = torch.full((n,), float("nan"), dtype=dt, device=dev)
        rb = reduce_block_n(n)
        dw_reduce[(-(-n // rb),)](part, dw, P, n, BLOCK_P=REDUCE_BLOCK_P, BLOCK_N=rb, num_warps=4)
    out = {k: v.cpu() for k, v in dict(rstd=rstd, dx=dx, part=part, tb=tb, tdw=tdw, c1=c1,
                                       dw=dw).items()}
    ref = _reference(x, w, dy, p["eps"], P, block, nb)
    es = x.element_size()
    steps, total, minimum = schedule(m, n, block, P, es)
    lanes = list(range(nb * block))
    err_dx = scaled_error(out["dx"], ref["dx"], ref["scale"]["dx"], dt)
    err_dw = scaled_error(out["dw"], ref["dw"], ref["scale"]["dw"], dt)
    j = T._json
    return {
        "params": {k: p[k] for k in DEFAULTS} | {k + "_given": p[k] is not None
                                                 for k in ("x", "weight", "dy")},
        "device": "Triton interpreter (CPU)" if dev == "cpu" else torch.cuda.get_device_name(),
        "kernel": {"block_n": block, "num_blocks": nb, "programs": P, "element_bytes": es,
                   "reduce": {"block_p": REDUCE_BLOCK_P, "block_n": rb, "grid": -(-n // rb)}},
        "x": j(x), "weight": j(w), "dy": j(dy), "rstd": j(out["rstd"].double()),
        "c1": j(out["c1"].double()), "dx": j(out["dx"]), "dw": j(out["dw"]),
        "dw_part": j(out["part"].double()), "dw_after_row": j(out["tdw"].double()),
        "partial": {"block": j(out["tb"][..., 0].double()),
                    "running": j(out["tb"][..., 1].double())},
        "blocks": [{"index": b, "start": b * block, "end": min(n, (b + 1) * block),
                    "mask": [c < n for c in lanes[b * block:(b + 1) * block]]}
                   for b in range(nb)],
        "programs": [{"program": q, "rows": list(range(q, m, P))} for q in range(P)],
        "steps": steps, "cost": {"total": total, "minimum": minimum},
        "source": T._source(loop_row_bwd, _STEPS, _CONSTS),
        "reduce_source": T._source(dw_reduce, _REDUCE_STEPS, {}),
        "reference": {k: j(v) if k != "partial" else {"block": j(v["block"])}
                      for k, v in ref.items() if k != "scale"},
        "error": {"dx_scaled": T._num(err_dx), "dw_scaled": T._num(err_dw),
                  "tolerance_rel": TOLERANCE[dt][0],
                  "within_tolerance": max(err_dx, err_dw) <= 1.0},
        "limits": {"defaults": DEFAULTS, "rows": [1, T.MAX_ROWS], "n": [1, T.MAX_N],
                   "programs": [1, T.MAX_ROWS], "value": min(T.MAX_VALUE, torch.finfo(dt).max),
                   "block_choices": {str(k): T.block_choices(k) for k in range(1, T.MAX_N + 1)}},
    }

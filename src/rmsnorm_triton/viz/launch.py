"""The page's "how the GPU runs it": the launch the library's planning code makes for (op, M, N,
dtype) on a GPU of tables.GPUS, the bytes it moves, and the nearest measured cell of the bench.

The choice is the planner's own: layout.fwd_layout / layout.bwd_layout, which the plans use too,
with the GPU's properties from tables.GPUS (no GPU is needed here). What the view adds is
arithmetic on that choice: waves (programs over the SMs), rows per program, and the bytes the
walk's loads and stores ask for beside the fewest the op must move (bench.cases.min_bytes, the
count the bench's % of copy is made with).
"""

import math

import torch

from .. import options, tables
from ..layout import Layout, bwd_layout, fwd_layout
from ..bench.cases import min_bytes
from . import speed

OPS = ("fwd", "bwd")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
MAX_M = 2**31 - 1  # a CUDA grid's x: the block loop launches a program a row
MAX_N = 2**24
DEFAULTS = {"op": "fwd", "m": 4096, "n": 4096, "dtype": "bf16", "gpu": "H100 SXM"}
CHOSEN_BY = {"fwd": ["layout.fwd_layout", "tables.fwd_config", "tables.with_rows",
                     "split.row_groups"],
             "bwd": ["layout.bwd_layout", "tables.bwd_config", "tables.programs_at_once",
                     "split.row_groups"]}


def _check(op, m, n, dtype, gpu):
    def bounded(name, v, hi):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ValueError(f"{name} must be an integer from 1 to {hi:,}, got {v!r}")
    for name, v, choices in (("op", op, OPS), ("dtype", dtype, DTYPES), ("gpu", gpu, tables.GPUS)):
        if v not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {v!r}")
    bounded("m", m, MAX_M)
    bounded("n", n, MAX_N)


def planned(op, m, n, dtype, gpu) -> Layout:
    """The planner's layout, as a call of rms_norm (default options, a weight of x's dtype,
    Llama casting, no residual) would get on that GPU."""
    g, dt = tables.GPUS[gpu], DTYPES[dtype]
    arch, sms, opts = tables.table_for_props(g), g.multi_processor_count, options.get()
    if op == "fwd":
        native = opts.w_native and tables.native_weight(torch.empty((), dtype=dt), "llama", 0.0,
                                                        dt, dt)
        return fwd_layout(m, n, dt, arch, sms, native=native, split_ok=opts.split,
                          batch_invariant=opts.batch_invariant)
    return bwd_layout(m, n, dt, arch, sms, split_ok=opts.split)


def _moves(op, lay, m, n, es) -> list:
    """[what, bytes] the walk's loads and stores ask for (repeat reads mostly hit L2)."""
    walks = 2 if lay.walk == "loop" else 1  # the block loop reads a row twice
    s = lay.chunks
    out = [["x" if op == "fwd" else "x and dy", walks * m * n * es * (1 if op == "fwd" else 2)]]
    if lay.walk == "loop":  # w with each block of each row (both walks in the backward)
        out.append(["w, each row", m * n * es * (1 if op == "fwd" else 2)])
    else:  # w once a program (SPLIT: its chunk)
        out.append(["w, each program", (lay.groups if lay.walk == "split" else lay.grid) * n * es])
    out.append(["y" if op == "fwd" else "dx", m * n * es])
    if lay.walk == "split":  # one 8-byte slot published per (row, chunk), all S polled by each
        out.append(["partial sums", m * s * 8 * (1 + s)])
    if op == "bwd":
        parts = lay.groups if lay.walk == "split" else lay.grid
        rmw = 2 * m * n * 4 if lay.walk == "loop" else parts * n * 4  # the loop adds row by row
        out += [["rstd", 4 * m], ["dw partials, and their reduction", rmw + parts * n * 4 + n * es]]
    return out


def nearest(op, m, n, dtype, gpu, bench_path=None):
    """(the bench's measured cell of this library nearest to (m, n), on this GPU where the data
    file has it, else on the GPU of the newest run; or None, and why not). Nearest in N first
    (N decides the walk), then in M, in log2 steps."""
    data, why = speed.load(bench_path)
    if data is None:
        return None, why
    ops = (op, "latency_graph") if op == "fwd" else (op,)  # small M: forwards in a CUDA graph
    rows = [r for r in data.rows if r["provider"] == speed.OURS and r["op"] in ops
            and r["dtype"] == dtype and r["status"] == "ok" and r["gbps"] is not None]
    name = tables.GPUS[gpu].name
    same = [r for r in rows if r["gpu"] == name]
    pool = same or [r for r in rows if data.gpus and r["gpu"] == data.gpus[0]]
    if not pool:
        return None, f"The bench's data file has no {op} {dtype} cell of this library."
    best = min(pool, key=lambda r: (abs(math.log2(r["N"] / n)), abs(math.log2(r["M"] / m))))
    return {"gpu": best["gpu"], "op": best["op"], "dtype": dtype, "M": best["M"], "N": best["N"],
            "gbps": best["gbps"], "pct_copy": best["pct_copy"], "date": best["date"],
            "commit": best["commit"], "same_gpu": bool(same),
            "exact": (best["M"], best["N"]) == (m, n)}, None


def launch(op, m, n, dtype, gpu, bench_path=None) -> dict:
    """The view's JSON for one launch (module doc)."""
    _check(op, m, n, dtype, gpu)
    g = tables.GPUS[gpu]
    lay, es = planned(op, m, n, dtype, gpu), DTYPES[dtype].itemsize
    cfg, sms = lay.cfg, g.multi_processor_count
    persistent = op == "bwd" or lay.walk == "split"
    if persistent:  # sized to what is resident: the table's programs per SM
        resident, basis = cfg.progs_per_sm, "the table's count, which the launcher checks " \
            "against the compiled kernel" if lay.walk == "split" else "the table's count"
    else:  # as many as the SM's threads allow; registers may allow fewer
        resident = max(1, min(32, g.max_threads_per_multi_processor // (cfg.num_warps * 32)))
        basis = f"by its {g.max_threads_per_multi_processor // 32} warps; registers may allow fewer"
    tiles = -(-m // cfg.block_m) if lay.walk == "one_pass" else m
    per_prog = cfg.block_m if not persistent else \
        (-(-m // lay.groups) if lay.walk == "split" else -(-tiles // lay.grid) * cfg.block_m)
    measured, note = nearest(op, m, n, dtype, gpu, bench_path)
    moves = _moves(op, lay, m, n, es)
    arch = tables.table_for_props(g)
    return {
        "params": {"op": op, "m": m, "n": n, "dtype": dtype, "gpu": gpu},
        "gpus": [{"key": k, "name": v.name, "sms": v.multi_processor_count}
                 for k, v in tables.GPUS.items()],
        "gpu": {"key": gpu, "name": g.name, "sms": sms, "cc": [g.major, g.minor],
                "table": "generic" if arch == "generic" else f"sm_{arch[0]}{arch[1]}"},
        "walk": lay.walk, "persistent": persistent, "chunks": lay.chunks, "grid": lay.grid,
        "config": {k: getattr(cfg, k) for k in ("block_m", "block_n", "num_warps",
                                                 "progs_per_sm", "maxnreg", "early", "dynamic")},
        "rows_per_program": None if lay.walk == "split" else min(per_prog, m),
        "rows_per_group": per_prog if lay.walk == "split" else None,
        "programs_per_row": lay.chunks if lay.walk == "split" else None,
        "resident_per_sm": resident, "resident_basis": basis,
        "waves": lay.grid / (sms * resident),
        "bytes": {"must": min_bytes(op, m, n, DTYPES[dtype]), "moves": sum(b for _, b in moves),
                  "parts": moves},
        "measured": measured, "measured_note": note, "chosen_by": CHOSEN_BY[op],
        "caveat": ("A forward without autograd (no rstd stored)" if op == "fwd" else
                   "A backward with a weight: dw's partial rows are summed by a second kernel, "
                   "dw_reduce") + f"; options as set in this process (SPLIT "
                  f"{'on' if options.get().split else 'off'}).",
    }


def request(query: dict, bench_path=None) -> dict:
    """GET /api/launch's answer for checked query parameters (each optional: DEFAULTS)."""
    return launch(**{**DEFAULTS, **query}, bench_path=bench_path)


EXPORT_MS = (1, 4096, 65536)
EXPORT_NS = (512, 2048, 8192, 32768, 131072)
EXPORT_GPUS = ("H100 SXM", "H200")


def offline(bench_path=None) -> dict:
    """What an exported page inlines: the launches for EXPORT_MS x EXPORT_NS, each op, dtype
    and EXPORT_GPUS, by "op/m/n/dtype/gpu" (without the parts every launch shares)."""
    launches = {}
    for gpu in EXPORT_GPUS:
        for op in OPS:
            for dtype in DTYPES:
                for m in EXPORT_MS:
                    for n in EXPORT_NS:
                        one = launch(op, m, n, dtype, gpu, bench_path)
                        del one["gpus"]
                        launches[f"{op}/{m}/{n}/{dtype}/{gpu}"] = one
    gpus = [{"key": k, "name": tables.GPUS[k].name, "sms": tables.GPUS[k].multi_processor_count}
            for k in EXPORT_GPUS]
    return {"default": DEFAULTS, "ms": list(EXPORT_MS), "ns": list(EXPORT_NS), "gpus": gpus,
            "launches": launches}

"""The page's speed chart: GB/s against N per provider, with the copy ceiling, for one op, dtype
and GPU, from the bench's one data file (benchmarks/data/results.csv, read by bench.records).

The file is read from where the bench writes it (records.default_csv(): the checkout's
benchmarks/data/ when the package runs from a source tree, as with `pip install -e .`), or from
`rmsnorm-triton viz --bench-data FILE`. A wheel carries no copy: the file is appended to by every
GPU run, and a frozen copy inside the package would drift from the one the README's tables are
drawn from. Where there is no file, the page says so and what to do (`load` returns the message).

Only the latest row of each cell counts (records.latest), as in the README's tables.
"""

import os
import threading

from ..bench import records as R

OPS = R.THROUGHPUT_OPS
DTYPES = ("bf16", "fp16", "fp32")
OURS = "rmsnorm_triton"
LABELS = {OURS: "rmsnorm_triton (this library)", "torch_compile": "torch.compile",
          "quack": "Quack", "liger": "Liger-Kernel", "torch_native": "F.rms_norm",
          "torch_eager": "eager PyTorch"}
_CACHE, _LOCK = {}, threading.Lock()


class Data:
    """The rows of one data file that the chart and the nearest-cell lookup use."""

    def __init__(self, path, rows):
        self.path = str(path)
        self.rows = R.latest(rows)
        thr = [r for r in self.rows if r["op"] in OPS]
        newest = {}
        for r in thr:
            newest[r["gpu"]] = max(newest.get(r["gpu"], ""), r["date"])
        self.gpus = sorted(newest, key=lambda g: newest[g], reverse=True)  # newest run first
        self.ops = [o for o in OPS if any(r["op"] == o for r in thr)]
        self.dtypes = [d for d in DTYPES if any(r["dtype"] == d for r in thr)]


def load(path=None):
    """(Data, None), or (None, why there is none) when the file is absent or unreadable."""
    path = os.fspath(path) if path is not None else str(R.default_csv())
    try:
        st = os.stat(path)
    except OSError:
        where = ("the package is installed without the source tree (a wheel): the data file "
                 "lives in the repository, benchmarks/data/results.csv") if not R.in_checkout() \
            else "the bench has not written it yet (rmsnorm-triton bench, on a GPU)"
        return None, (f"No bench data: {path} does not exist; {where}. Give one with "
                      "`rmsnorm-triton viz --bench-data FILE`.")
    key = (path, st.st_mtime_ns, st.st_size)
    with _LOCK:
        if key not in _CACHE:
            try:
                data = Data(path, R.read(path))
            except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
                return None, f"No bench data: {path} could not be read ({type(e).__name__}: {e})"
            if not data.gpus:
                return None, f"No bench data: {path} has no forward, backward or fused rows yet."
            _CACHE.clear()
            _CACHE[key] = data
        return _CACHE[key], None


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _default(want, choices):
    return want if want in choices else choices[0]


def chart(data: Data, op=None, dtype=None, gpu=None) -> dict:
    """The chart of one op, dtype and GPU (by default fwd, bf16 and the GPU of the newest run):
    each provider's points by N, the cells it did not measure with why, and the copy ceiling of
    those runs."""
    op = _default("fwd", data.ops) if op is None else _choice("op", op, data.ops)
    dtype = _default("bf16", data.dtypes) if dtype is None else _choice("dtype", dtype, data.dtypes)
    gpu = data.gpus[0] if gpu is None else _choice("gpu", gpu, data.gpus)
    rows = [r for r in data.rows if (r["op"], r["dtype"], r["gpu"]) == (op, dtype, gpu)]
    provs = sorted({r["provider"] for r in rows},
                   key=lambda p: (p != OURS, list(LABELS).index(p) if p in LABELS else 99, p))
    series = []
    for p in provs:
        mine = sorted((r for r in rows if r["provider"] == p), key=lambda r: r["N"])
        ok = [r for r in mine if r["status"] == "ok" and r["gbps"] is not None]
        series.append({
            "provider": p, "label": LABELS.get(p, p),
            "points": [{k: r[k] for k in ("N", "M", "gbps", "pct_copy", "ms", "commit", "date")}
                       for r in ok],
            "missing": [{"N": r["N"], "M": r["M"], "status": r["status"], "note": r["note"][:200]}
                        for r in mine if r not in ok]})
    copies = sorted({r["copy_gbps"] for r in rows if r["copy_gbps"] is not None})
    newest = max((r for r in rows if r["copy_gbps"] is not None), key=lambda r: r["date"],
                 default=None)
    return {"available": True, "source": _shown(data.path), "op": op, "dtype": dtype, "gpu": gpu,
            "gpus": data.gpus, "ops": data.ops, "dtypes": data.dtypes,
            "ns": sorted({r["N"] for r in rows}), "series": series,
            "copy": None if newest is None else {"gbps": newest["copy_gbps"],
                                                 "date": newest["date"],
                                                 "low": copies[0], "high": copies[-1]}}


def _shown(path):
    """The file's name as the page shows it: relative to the checkout, else its base name (an
    exported page is shared: it should not carry the folders of the machine that made it)."""
    try:
        rel = os.path.relpath(path, R.ROOT)
    except ValueError:
        rel = ".."
    return rel if R.in_checkout() and not rel.startswith("..") else os.path.basename(path)


def every_chart(data) -> dict:
    """Every chart the page's menus can ask for, by "op/dtype/gpu", for an exported page."""
    out = {}
    for gpu in data.gpus:
        for op in data.ops:
            for dtype in data.dtypes:
                out[f"{op}/{dtype}/{gpu}"] = chart(data, op, dtype, gpu)
    return out


def request(query: dict, path=None) -> dict:
    """GET /api/bench's answer for checked query parameters (op, dtype, gpu, all optional):
    the chart, or {"available": False, "message": ...} when there is no data file."""
    data, why = load(path)
    if data is None:
        return {"available": False, "message": why}
    return chart(data, query.get("op"), query.get("dtype"), query.get("gpu"))


def offline(path=None) -> dict:
    """What an exported page inlines: every chart, or the message saying why there is none."""
    data, why = load(path)
    if data is None:
        return {"available": False, "message": why}
    first = chart(data)
    return {"available": True, "default": f"{first['op']}/{first['dtype']}/{first['gpu']}",
            "charts": every_chart(data)}

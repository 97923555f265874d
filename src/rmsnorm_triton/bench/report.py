"""The record shape, its CSV and JSON files, and how records are shown while and after they run.

One record per measurement, the same fields for all of them:

    provider  op  dtype  M  N  bytes  ms  gbps  pct_copy  error  status  note  gpu  versions

op is fwd, bwd, fwd_residual, latency (eager, wall clock per call), latency_graph (per call
replayed in a CUDA graph), copy (the copy bandwidth of the run: the ceiling) or import (a
provider that did not import). status is ok, wrong (error > WRONG_AT: reported, not timed),
failed (it raised: note holds the exception) or missing (note holds the import error). Numbers a
record lacks are None: null in JSON, empty in CSV. versions is a dict (torch, triton,
rmsnorm_triton, liger, quack, cuda, driver); in CSV it is written "torch=2.11.0;triton=3.6.0;...".
"""

import csv
import json
import sys
import time
from pathlib import Path

FIELDS = ("provider", "op", "dtype", "M", "N", "bytes", "ms", "gbps", "pct_copy", "error",
          "status", "note", "gpu", "versions")
INTS = ("M", "N", "bytes")
FLOATS = ("ms", "gbps", "pct_copy", "error")
THROUGHPUT_OPS = ("fwd", "bwd", "fwd_residual") + tuple(
    f"fp8_{m}{r}" for m in ("static", "token", "group") for r in ("", "_residual"))
LATENCY_OPS = ("latency", "latency_graph", "fp8_latency", "fp8_latency_graph")


def key(r) -> tuple:
    """What a record measures; --append replaces an older record with the same key. Copy records
    carry their run in note, so every run's ceiling stays (each record's pct_copy is against
    the copy bandwidth of the run that measured it)."""
    run = r["note"] if r["op"] == "copy" else ""
    return r["provider"], r["op"], r["dtype"], r["M"], r["N"], run


# ---- files ------------------------------------------------------------------------------------
def write_records(records, out_dir, meta=None) -> tuple[Path, Path]:
    """Writes results.json ({"meta", "records"}) and results.csv into out_dir; returns both."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, cs = out / "results.json", out / "results.csv"
    tmp = js.with_suffix(".json.tmp")  # a crash mid-write never leaves half a file
    text = json.dumps({"meta": meta or {}, "records": list(records)}, indent=1, allow_nan=False)
    tmp.write_text(text + "\n")
    tmp.replace(js)
    tmp = cs.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in records:
            w.writerow({k: _csv_cell(k, r[k]) for k in FIELDS})
    tmp.replace(cs)
    return js, cs


def read_records(path) -> list[dict]:
    """Records from a results.json or results.csv (or a folder holding results.json)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if p.suffix == ".csv":
        with p.open(newline="") as f:
            return [_from_csv(row) for row in csv.DictReader(f)]
    data = json.loads(p.read_text())
    return list(data["records"] if isinstance(data, dict) else data)


def read_meta(path) -> dict:
    p = Path(path)
    p = p / "results.json" if p.is_dir() else p.with_suffix(".json")
    if not p.exists():
        return {}
    data = json.loads(p.read_text())
    return data.get("meta", {}) if isinstance(data, dict) else {}


def _csv_cell(k, v):
    if v is None:
        return ""
    if k == "versions":
        return ";".join(f"{name}={ver}" for name, ver in v.items())
    if k in FLOATS:
        return repr(float(v))  # repr round-trips a float exactly
    return v


def _from_csv(row) -> dict:
    r = {}
    for k in FIELDS:
        v = row.get(k, "")
        if k == "versions":
            r[k] = dict(item.split("=", 1) for item in v.split(";") if item) if v else {}
        elif v == "" and k not in ("note", "dtype", "gpu", "provider", "op", "status"):
            r[k] = None
        elif k in INTS:
            r[k] = int(v)
        elif k in FLOATS:
            r[k] = float(v)
        else:
            r[k] = v
    return r


# ---- showing records ---------------------------------------------------------------------------
def fmt_n(n: int) -> str:
    return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else str(n)


def line(r) -> str:
    """One record as one line of the running log."""
    head = (f"{r['op']:>13} {r['dtype'] or '-':>4} M={r['M']:<7} N={fmt_n(r['N']):<5} "
            f"{r['provider']:<15}")
    if r["status"] != "ok":
        err = f" error {r['error']:.3g}x tol" if r["error"] is not None else ""
        return f"{head} {r['status'].upper()}{err}: {r['note']}"
    if r["op"] in LATENCY_OPS:
        return f"{head} {r['ms'] * 1e3:9.2f} us/call   error {r['error']:.2f}"
    pct = f"{r['pct_copy']:6.1f}% of copy" if r["pct_copy"] is not None else ""
    err = f"   error {r['error']:.2f}" if r["error"] is not None else ""
    return f"{head} {r['ms']:9.4f} ms {r['gbps']:8.1f} GB/s {pct}{err}"


class Live:
    """Progress while the bench runs: a rich progress bar when rich is installed, and one line
    per record."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.done, self.quiet = total, 0, quiet
        self.t0 = time.perf_counter()
        self._progress = None
        try:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
        except ImportError:
            return
        self._progress = Progress(TextColumn("{task.description:<44}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
        self._task = self._progress.add_task("bench", total=total)

    def __enter__(self):
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()

    def set_total(self, total: int):
        self.total = total
        if self._progress is not None:
            self._progress.update(self._task, total=total)

    def doing(self, what: str):
        if self._progress is not None:
            self._progress.update(self._task, description=what)

    def print(self, text: str):
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, flush=True)

    def record(self, r, advance: bool = True):
        if advance:
            self.done += 1
            if self._progress is not None:
                self._progress.update(self._task, advance=1)
        self.print(f"[{self.done:>3}/{self.total} {time.perf_counter() - self.t0:5.0f}s] {line(r)}")


def summary(records) -> str:
    """Compact tables: % of copy bandwidth by provider x N for each op and dtype, latency by M,
    and every provider that failed, was wrong or missing, with why."""
    out = []
    for c in [r for r in records if r["op"] == "copy" and r["status"] == "ok"]:
        out.append(f"copy bandwidth: {c['gbps']:.4g} GB/s on {c['gpu']} (read + write of "
                   f"{c['bytes'] / 2**21:.0f} MiB, median; {c['note']}): cells below are % of "
                   "the copy bandwidth of their own run")
    for op in THROUGHPUT_OPS:
        for dtype in _ordered({r["dtype"] for r in records if r["op"] == op}):
            rows = [r for r in records if r["op"] == op and r["dtype"] == dtype]
            ns = sorted({r["N"] for r in rows})
            out.append(_table(f"{op} {dtype}: % of copy", rows, ns, fmt_n, "N", _pct_cell))
    for op in LATENCY_OPS:
        for dtype in _ordered({r["dtype"] for r in records if r["op"] == op}):
            rows = [r for r in records if r["op"] == op and r["dtype"] == dtype]
            ms_ = sorted({r["M"] for r in rows})
            n = rows[0]["N"]
            what = "replayed in a CUDA graph" if op.endswith("_graph") else "eager, wall clock"
            out.append(_table(f"{op} {dtype} N={fmt_n(n)}: us per call ({what})", rows, ms_, str,
                              "M", _us_cell))
    bad = {}  # (provider, status, note) -> the cases it happened in
    for r in records:
        if r["status"] != "ok":
            size = f"M={r['M']}" if r["op"] in LATENCY_OPS else f"N={fmt_n(r['N'])}"
            where = "" if r["op"] == "import" else f"{r['op']} {r['dtype']} {size}"
            bad.setdefault((r["provider"], r["status"], r["note"]), []).append(where)
    if bad:
        lines = ["not measured (reported and skipped):"]
        for (prov, status, note), where in bad.items():
            cases = f" in {len(where)} case(s): {', '.join(where)}" if where[0] else ""
            lines.append(f"  {prov} {status}{cases}\n      {note}")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _ordered(dtypes):
    order = ["bf16", "fp16", "fp32"]
    return sorted(dtypes, key=lambda d: (order.index(d) if d in order else 9, d))


def _pct_cell(r):
    return f"{r['pct_copy']:.0f}" if r["pct_copy"] is not None else "-"


def _us_cell(r):
    return f"{r['ms'] * 1e3:.1f}" if r["ms"] is not None else "-"


def _table(title, rows, cols, colfmt, colkey, cell) -> str:
    provs = list(dict.fromkeys(r["provider"] for r in rows))
    at = {(r["provider"], r[colkey]): r for r in rows}
    grid = [[("" if (r := at.get((p, c))) is None else cell(r) if r["status"] == "ok"
              else r["status"]) for c in cols] for p in provs]
    width = 1 + max(5, *(len(colfmt(c)) for c in cols), *(len(s) for row in grid for s in row))
    pw = max(len(p) for p in provs)
    lines = [title, f"{'':<{pw}}" + "".join(f"{colfmt(c):>{width}}" for c in cols)]
    lines += [f"{p:<{pw}}" + "".join(f"{s:>{width}}" for s in row) for p, row in zip(provs, grid)]
    return "\n".join(lines)


def print_summary(records, file=None):
    text = summary(records)
    try:
        from rich.console import Console

        Console(file=file or sys.stdout, highlight=False, width=200).print(text, markup=False)
    except ImportError:
        print(text, file=file or sys.stdout)


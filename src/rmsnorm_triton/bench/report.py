"""What the bench shows: the live line per record, the summary after a run, and the README's
speed tables drawn from the data file.

    rmsnorm-triton bench --report                 # the tables on stdout, docs/throughput.png
    rmsnorm-triton bench --report --update README.md --update docs/performance.md
                                                  # the tables refilled between their markers
    python -m rmsnorm_triton.bench.report --latency --table t.md    # the same, into a file

The tables and the plot take the latest row of each cell (records.latest) for one GPU: a new
run's rows supersede older ones cell by cell, so a partial run updates just its cells.
"""

import argparse
import re
import sys
import time
from pathlib import Path

from . import records as R
from .records import FP8_LATENCY_OPS, FP8_THROUGHPUT_OPS, LATENCY_OPS, THROUGHPUT_OPS


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
    if r["op"] in LATENCY_OPS + FP8_LATENCY_OPS:
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
                   f"{c['bytes'] / 2**21:.0f} MiB, median; run of {c['date']}): cells below are "
                   "% of the copy bandwidth of their own run")
    for op in THROUGHPUT_OPS + FP8_THROUGHPUT_OPS:
        for dtype in _ordered({r["dtype"] for r in records if r["op"] == op}):
            rows = [r for r in records if r["op"] == op and r["dtype"] == dtype]
            ns = sorted({r["N"] for r in rows})
            out.append(_table(f"{op} {dtype}: % of copy", rows, ns, fmt_n, "N", _pct_cell))
    for op in LATENCY_OPS + FP8_LATENCY_OPS:
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
            size = (f"M={r['M']}" if r["op"] in LATENCY_OPS + FP8_LATENCY_OPS
                    else f"N={fmt_n(r['N'])}")
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



# ---- the README's tables -----------------------------------------------------------------------
OURS = "rmsnorm_triton"
OP_NAMES = {"fwd": "forward", "bwd": "backward", "fwd_residual": "fused add + norm"}
# The letter a peer gets in a "best peer" cell, and its name in the legend.
PEERS = {"torch_compile": ("C", "torch.compile"), "quack": ("Q", "Quack"),
         "liger": ("L", "Liger-Kernel"), "torch_native": ("N", "F.rms_norm"),
         "torch_eager": ("E", "eager PyTorch")}


def select(rows, gpu=None, commit=None) -> tuple[str, list[dict]]:
    """(GPU name, the latest row of each cell on it, whatever its status): the GPU whose name
    holds `gpu` (any case), else the GPU of the newest throughput row; `commit` (a prefix)
    keeps only that commit's rows."""
    rows = [r for r in rows if commit is None or r["commit"].startswith(commit)]
    if gpu is not None:
        rows = [r for r in rows if gpu.lower() in r["gpu"].lower()]
    thr = [r for r in rows if r["op"] in THROUGHPUT_OPS]
    if not thr:
        raise ValueError(f"no forward, backward or fused rows for gpu={gpu!r}, commit={commit!r}"
                         f" among {len(rows)} rows")
    name = max(thr, key=lambda r: r["date"])["gpu"]
    return name, R.latest([r for r in rows if r["gpu"] == name])


def _best_peer(cell_rows):
    ok = [r for r in cell_rows if r["provider"] != OURS and r["status"] == "ok"
          and r["pct_copy"] is not None]
    return max(ok, key=lambda r: r["pct_copy"]) if ok else None


def markdown(rows, gpu=None, commit=None) -> str:
    """One markdown table per dtype: N across; forward, backward and fused add + norm of this
    library, each with the best peer's figure under it, as % of the copy bandwidth measured in
    the run that made the row. Then a line of what the rows are."""
    name, rows = select(rows, gpu, commit)
    thr = [r for r in rows if r["op"] in THROUGHPUT_OPS]
    at = {(r["provider"], r["op"], r["dtype"], r["N"]): r for r in thr}
    out, seen = [], set()
    for dtype in _ordered({r["dtype"] for r in thr}):
        ns = sorted({r["N"] for r in thr if r["dtype"] == dtype})
        lines = [f"| {dtype} | " + " | ".join(fmt_n(n) for n in ns) + " |",
                 "|:--|" + "--:|" * len(ns)]
        for op in [o for o in THROUGHPUT_OPS if any(r["op"] == o and r["dtype"] == dtype
                                                   for r in thr)]:
            mine = [at.get((OURS, op, dtype, n)) for n in ns]
            best = [_best_peer([r for r in thr if (r["op"], r["dtype"], r["N"]) == (op, dtype, n)])
                    for n in ns]
            seen.update(b["provider"] for b in best if b)
            lines.append(f"| {OP_NAMES[op]}, this library | "
                         + " | ".join(_pct(r) for r in mine) + " |")
            lines.append(f"| {OP_NAMES[op]}, best peer | " + " | ".join(
                "-" if b is None else f"{b['pct_copy']:.1f} {_letter(b['provider'])}"
                for b in best) + " |")
        out.append("\n".join(lines))
    legend = ", ".join(f"{_letter(p)} {PEERS.get(p, (p, p))[1]}" for p in PEERS if p in seen)
    ms = sorted({r["M"] * r["N"] for r in thr})
    size = " or ".join(_pow2(x) for x in ms)
    commits = ", ".join(sorted({r["commit"] for r in thr if r["provider"] == OURS} - {""}))
    versions = sorted({f"torch {r['torch']}, Triton {r['triton']}" for r in thr})
    out.append(f"% of the copy bandwidth measured in the same run, M x N = {size} elements, on "
               f"{name} ({'; '.join(versions)}; this library at {commits or 'an unknown commit'})."
               + (f" Best peer: the fastest of the others in that cell ({legend}); - where none "
                  "ran." if legend else " No peer ran here."))
    return "\n\n".join(out)


def latency_markdown(rows, gpu=None, commit=None) -> str:
    """The forward's time per call against M: eager (back-to-back calls, wall clock) and replayed
    in a CUDA graph, for this library, F.rms_norm (torch's one C++ op) and the fastest peer."""
    name, rows = select(rows, gpu, commit)
    lat = [r for r in rows if r["op"] in LATENCY_OPS]
    if not lat:
        raise ValueError(f"no latency rows for {name}")
    out = []
    for dtype in _ordered({r["dtype"] for r in lat}):
        for n in sorted({r["N"] for r in lat if r["dtype"] == dtype}):
            sub = [r for r in lat if (r["dtype"], r["N"]) == (dtype, n)]
            ms_ = sorted({r["M"] for r in sub})
            lines = [f"| {dtype}, N = {fmt_n(n)}: us per call | "
                     + " | ".join(f"M = {m}" for m in ms_) + " |", "|:--|" + "--:|" * len(ms_)]
            for op, what in (("latency", "eager"), ("latency_graph", "CUDA graph")):
                at = {(r["provider"], r["M"]): r for r in sub if r["op"] == op}
                if not at:
                    continue
                for label, pick in (("this library", lambda m: at.get((OURS, m))),
                                    ("F.rms_norm", lambda m: at.get(("torch_native", m))),
                                    ("best other peer", lambda m: _fastest(at, m))):
                    cells = [pick(m) for m in ms_]
                    lines.append(f"| {what}, {label} | " + " | ".join(
                        "-" if r is None or r["ms"] is None else f"{r['ms'] * 1e3:.2f}"
                        + (f" {_letter(r['provider'])}" if label == "best other peer" else "")
                        for r in cells) + " |")
            out.append("\n".join(lines))
    legend = ", ".join(f"{v[0]} {v[1]}" for p, v in PEERS.items() if p != "torch_native"
                       and any(r["provider"] == p for r in lat))
    commits = ", ".join(sorted({r["commit"] for r in lat if r["provider"] == OURS} - {""}))
    out.append(f"Microseconds per forward call on {name} (this library at "
               f"{commits or 'an unknown commit'}): eager is the wall clock of back-to-back "
               f"calls, host included; CUDA graph is per call replayed. "
               + (f"Best other peer: the fastest of the rest ({legend})." if legend
                  else "No other peer ran here."))
    return "\n\n".join(out)


MARKERS = {"speed-table": markdown, "latency-table": latency_markdown}


def update(text: str, rows, gpu=None, commit=None) -> str:
    """text with the block between each `<!-- name -->` and `<!-- /name -->` line (names in
    MARKERS) replaced by that table, freshly made from rows. ValueError where there is none.

    A marker may narrow its rows: `<!-- speed-table bf16 -->` (those dtypes, comma-separated),
    `<!-- speed-table gpu=H200 commit=d4da69b triton=3.6 -->` (a part of the GPU's name, a
    commit prefix, and any other field's prefix), so a doc keeps showing the run it describes
    after rows of other GPUs, commits or versions are appended."""
    found = False
    for name, make in MARKERS.items():
        pattern = re.compile(rf"(<!-- {name}(?: ([\w,.=+-]+(?: [\w,.=+-]+)*))? -->\n).*?"
                             rf"(\n<!-- /{name} -->)", re.S)

        def fill(m, make=make):
            words = m[2].split() if m[2] else []
            where = dict(w.split("=", 1) for w in words if "=" in w)
            keep = [d for w in words if "=" not in w for d in w.split(",")] or None
            g, c = where.pop("gpu", gpu), where.pop("commit", commit)
            picked = [r for r in rows if (keep is None or r["dtype"] in keep)
                      and all(str(r.get(k, "")).startswith(v) for k, v in where.items())]
            return m[1] + make(picked, g, c) + m[3]

        text, count = pattern.subn(fill, text)
        found |= count > 0
    if not found:
        raise ValueError("no <!-- speed-table --> ... <!-- /speed-table --> (or latency-table) "
                         "lines to fill")
    return text


def _fastest(at, m):
    ok = [r for (p, mm), r in at.items()
          if mm == m and p not in (OURS, "torch_native") and r["ms"] is not None]
    return min(ok, key=lambda r: r["ms"]) if ok else None


def _pct(r):
    if r is None:
        return "-"
    ok = r["status"] == "ok" and r["pct_copy"] is not None
    return f"{r['pct_copy']:.1f}" if ok else r["status"]


def _letter(provider):
    return PEERS.get(provider, (provider, provider))[0]


def _pow2(x):
    return f"2^{x.bit_length() - 1}" if x > 0 and x & (x - 1) == 0 else str(x)


def main(argv=None) -> int:
    """`python -m rmsnorm_triton.bench.report`, also `rmsnorm-triton bench --report`."""
    p = argparse.ArgumentParser(
        prog="rmsnorm-triton bench --report", description="The README's speed tables (markdown) "
        "and plot, from the bench's data file: the latest row of each cell, for one GPU.")
    p.add_argument("--data", type=Path, default=R.default_csv(),
                   help=f"the bench's CSV (default {R.default_csv()})")
    p.add_argument("--gpu", help="a part of the GPU's name (default: the GPU of the newest row)")
    p.add_argument("--commit", help="only rows of this commit (a prefix), e.g. to compare two")
    p.add_argument("--table", type=Path, help="write the markdown here (default: stdout)")
    default_plot = (R.ROOT / "docs" if R.in_checkout() else Path(".")) / "throughput.png"
    p.add_argument("--plot", type=Path, default=default_plot,
                   help=f"the throughput plot (default {default_plot})")
    p.add_argument("--latency", action="store_true", help="also the latency per call table")
    p.add_argument("--update", type=Path, action="append", default=[], metavar="FILE",
                   help="refill the tables between <!-- speed-table --> and <!-- /speed-table "
                   "--> (and latency-table) in FILE, e.g. README.md or docs/performance.md; "
                   "may be given more than once")
    p.add_argument("--no-plot", action="store_true", help="the tables only")
    a = p.parse_args(argv)
    if not a.data.is_file():
        print(f"no data file at {a.data}: run rmsnorm-triton bench first, or give --data",
              file=sys.stderr)
        return 2
    rows = R.read(a.data)
    try:
        text = markdown(rows, a.gpu, a.commit)
        if a.latency:
            text += "\n\n" + latency_markdown(rows, a.gpu, a.commit)
    except ValueError as e:
        print(f"rmsnorm-triton bench --report: {e}", file=sys.stderr)
        return 2
    try:
        for path in a.update:
            path.write_text(update(path.read_text(), rows, a.gpu, a.commit))
            print(f"tables: {path}")
    except (OSError, ValueError) as e:
        print(f"rmsnorm-triton bench --report --update {path}: {e}", file=sys.stderr)
        return 2
    if a.table:
        a.table.write_text(text + "\n")
        print(f"tables: {a.table}")
    elif not a.update:
        print(text)
    if not a.no_plot:
        from .plot import throughput

        path = throughput(select(rows, a.gpu, a.commit)[1], a.plot)
        print(f"plot: {path}", file=sys.stderr if a.table is None else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The bench's one data file: every measurement is one row of an append-only CSV.

    provider  op  dtype  M  N  bytes  ms  gbps  pct_copy  copy_gbps  error  status  note
    gpu  provider_version  torch  triton  cuda  driver  commit  date

op is fwd, bwd, fwd_residual, latency (eager, wall clock per call), latency_graph (per call
replayed in a CUDA graph), fp8_* (bench/fp8.py), copy (the copy bandwidth of the run: the ceiling) or import (a
provider that did not import). status is ok, wrong (error > WRONG_AT: reported, not timed),
failed (it raised: note holds the exception) or missing (note holds the import error).
copy_gbps is the ceiling measured in the same run, so pct_copy = 100 * gbps / copy_gbps on every
row. commit is the library's git commit (suffixed +dirty when src/ had changes), date the UTC
start of the run: the rows of one run share it. Numbers a row lacks are empty cells (None here).

Rows are only ever appended: a new run adds rows, and readers take the latest row of each cell
(`latest`). The file lives at benchmarks/data/results.csv in a source checkout.
"""

import csv
import subprocess
from pathlib import Path

FIELDS = ("provider", "op", "dtype", "M", "N", "bytes", "ms", "gbps", "pct_copy", "copy_gbps",
          "error", "status", "note", "gpu", "provider_version", "torch", "triton", "cuda",
          "driver", "commit", "date")
INTS = ("M", "N", "bytes")
FLOATS = ("ms", "gbps", "pct_copy", "copy_gbps", "error")
THROUGHPUT_OPS = ("fwd", "bwd", "fwd_residual")
LATENCY_OPS = ("latency", "latency_graph")
# FP8 output (bench/fp8.py): rows of their own, kept out of the README's tables and plots
FP8_THROUGHPUT_OPS = tuple(f"fp8_{m}{r}" for m in ("static", "token", "group")
                           for r in ("", "_residual"))
FP8_LATENCY_OPS = ("fp8_latency", "fp8_latency_graph")

ROOT = Path(__file__).resolve().parents[3]  # the checkout, when the package runs from src/


def in_checkout() -> bool:
    return (ROOT / "pyproject.toml").is_file() and (ROOT / "src" / "rmsnorm_triton").is_dir()


def default_csv() -> Path:
    """benchmarks/data/results.csv of the checkout the package runs from; else in the current
    folder (an installed package has no benchmarks/ of its own)."""
    if in_checkout():
        return ROOT / "benchmarks" / "data" / "results.csv"
    return Path("rmsnorm_triton_results.csv")


def source_commit() -> str:
    """The checkout's short commit, '+dirty' when src/ has uncommitted changes; '' if unknown."""
    if not in_checkout():
        return ""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short=7", "HEAD"], capture_output=True,
                              text=True, timeout=20)
        if head.returncode:
            return ""
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--",
                                "src"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return head.stdout.strip() + ("+dirty" if dirty.strip() else "")


def key(r) -> tuple:
    """The cell a row measures: a later row of the same cell supersedes it in tables and plots."""
    return r["gpu"], r["provider"], r["op"], r["dtype"], r["M"], r["N"]


def append(records, path) -> Path:
    """Appends records to the CSV at path (header first if the file is new or empty).

    A file whose header is not FIELDS is left alone: ValueError, naming both."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    new = not p.exists() or p.stat().st_size == 0
    if not new:
        with p.open(newline="") as f:
            header = tuple(next(csv.reader(f), ()))
        if header != FIELDS:
            raise ValueError(f"{p} has columns {list(header)}, expected {list(FIELDS)}: "
                             "give the bench another file with --out")
    with p.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="raise")
        if new:
            w.writeheader()
        for r in records:
            w.writerow({k: _cell(k, r.get(k)) for k in FIELDS})
    return p


def read(path) -> list[dict]:
    """Every row of the CSV at path, typed: ints, floats, None for an empty number."""
    with Path(path).open(newline="") as f:
        return [_typed(row) for row in csv.DictReader(f)]


def latest(records) -> list[dict]:
    """The newest row of each cell (by date; the later row in the file among equal dates)."""
    out = {}
    for r in records:
        k = key(r)
        if k not in out or r["date"] >= out[k]["date"]:
            out[k] = r
    return list(out.values())


def _cell(k, v):
    if v is None:
        return ""
    if k in FLOATS:
        return repr(float(v))  # repr round-trips a float exactly
    return v


def _typed(row) -> dict:
    r = {}
    for k in FIELDS:
        v = row.get(k) or ""
        if k in INTS or k in FLOATS:
            r[k] = None if v == "" else int(v) if k in INTS else float(v)
        else:
            r[k] = v
    return r

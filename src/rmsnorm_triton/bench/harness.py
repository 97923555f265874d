"""rmsnorm-triton bench: the command line and the loop.

For each op, dtype and N (M = mn // N), the inputs are made once (random, never zeros) and the
float64 reference computed once, on the device; then each provider runs once, its result is
checked against the reference, and only then is it timed. The copy bandwidth is measured first,
in the same process, and every GB/s is divided by it. A provider that does not import, raises,
or returns a wrong result gets a record saying so and the loop goes on. Each record is appended
to the data file (records.py) as soon as it is made, so a run cut short keeps what it has.

    rmsnorm-triton bench [options]      # measure; rows appended to benchmarks/data/results.csv
    rmsnorm-triton bench --report       # the README's tables and docs/throughput.png, from it
"""

import argparse
import datetime
import math
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from . import providers as P
from . import records, report, timing
from .cases import DTYPES, EPS, LATENCY, WRONG_AT, check, make_inputs, min_bytes, reference
from .fp8 import OPS as FP8_OPS

OPS = ("fwd", "bwd", "fwd_residual", "latency") + FP8_OPS + ("fp8_latency",)
PLAIN_OPS = ("fwd", "bwd", "fwd_residual", "latency")  # a run without --ops (FP8: opt in)
DEFAULTS = {  # device type: what a plain run measures
    "cuda": dict(sizes=[512 << i for i in range(10)], mn=2**26, latency_m=[1, 8, 32, 256, 4096],
                 latency_n=4096, copy_mib=512, rep_ms=100),
    "cpu": dict(sizes=[64, 256, 1024], mn=2**12, latency_m=[1, 8], latency_n=256, copy_mib=16,
                rep_ms=100),
}
QUICK = dict(sizes=[1024, 8192, 65536], dtypes=["bf16"], latency_m=[1, 256])
CPU_CSV = Path(tempfile.gettempdir()) / "rmsnorm-triton-bench-cpu.csv"


def parse_int(text: str) -> int:
    """512, 1K, 256k, 2**26 or 64M."""
    t = text.strip().lower()
    if m := re.fullmatch(r"(\d+)\s*\*\*\s*(\d+)", t):
        return int(m[1]) ** int(m[2])
    if m := re.fullmatch(r"(\d+)([km]?)", t):
        return int(m[1]) * {"": 1, "k": 1024, "m": 1024**2}[m[2]]
    raise argparse.ArgumentTypeError(f"{text!r} is not a size: expected e.g. 512, 4K, 2**26, 64M")


def _list(kind, choices=None):
    def parse(text):
        items = [kind(s) for s in text.split(",") if s.strip()]
        bad = [i for i in items if choices is not None and i not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"{bad} not among {list(choices)}")
        return items
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rmsnorm-triton bench", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Times this library beside its peers (forward, backward, fused residual "
        "forward, latency per call),\nas GB/s and as % of the copy bandwidth measured in the "
        "same run; each result is checked\nagainst float64 first, then timed alternating two "
        "sets of inputs. Appends one row per\nmeasurement to the data file; "
        "`rmsnorm-triton bench --report` draws the tables and plot from it.",
        epilog="A peer that is missing, raises or is wrong is reported and skipped. "
        "--report takes its own options (rmsnorm-triton bench --report --help).")
    p.add_argument("--quick", action="store_true",
                   help=f"a small subset: bf16, N in {QUICK['sizes']}, "
                   f"latency M in {QUICK['latency_m']}")
    p.add_argument("--out", type=Path, help="the CSV the rows are appended to (default "
                   f"{records.default_csv()}; --device cpu: {CPU_CSV}, which keeps smoke runs "
                   "out of the data)")
    p.add_argument("--commit", help="the commit to record (default: git's, +dirty when src/ "
                   "has changes; give it where the tree has no .git)")
    p.add_argument("--providers", type=_list(str, P.NAMES), default=list(P.NAMES),
                   help=f"comma-separated, from {','.join(P.NAMES)} (default all)")
    p.add_argument("--ops", type=_list(str, OPS), default=list(PLAIN_OPS),
                   help=f"comma-separated, from {','.join(OPS)} (default "
                   f"{','.join(PLAIN_OPS)})")
    p.add_argument("--dtypes", type=_list(str, DTYPES), help="default bf16,fp16,fp32 "
                   "(the latency runs use the first)")
    p.add_argument("--sizes", type=_list(parse_int), help="N values (default 512,1K,...,256K)")
    p.add_argument("--mn", type=parse_int, help="elements per tensor, M = mn // N (default 2**26; "
                   "cpu: 2**12)")
    p.add_argument("--latency-m", type=_list(parse_int), help="M values of the latency runs "
                   "(default 1,8,32,256,4096)")
    p.add_argument("--latency-n", type=parse_int, help="N of the latency runs (default 4096)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cuda (default); cpu is a smoke run through Triton's interpreter")
    p.add_argument("--copy-mib", type=int, help="size of the copy-bandwidth run (default 512)")
    p.add_argument("--rep-ms", type=float, help="time spent timing each case (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no per-record lines, only the summary")
    return p


def options(argv):
    a = parser().parse_args(argv)
    d = dict(DEFAULTS[a.device], dtypes=list(DTYPES),
             out=records.default_csv() if a.device == "cuda" else CPU_CSV)
    if a.quick:
        d.update(QUICK)
    for k, v in d.items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    return a


# ---- environment ------------------------------------------------------------------------------
def gpu_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {platform.machine()} (Triton interpreter)"


def environment(device: torch.device, commit=None) -> dict:
    """The fields every row of one run shares (records.FIELDS), and in `versions` the version of
    each provider that is not torch itself."""
    import triton

    from .. import __version__

    driver = ""
    if device.type == "cuda":
        try:
            driver = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.split("\n")[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    now = datetime.datetime.now(datetime.timezone.utc)
    return dict(gpu=gpu_name(device), torch=torch.__version__, triton=triton.__version__,
                cuda=torch.version.cuda or "", driver=driver,
                commit=records.source_commit() if commit is None else commit,
                date=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                versions={"rmsnorm_triton": __version__, "liger": _dist_version("liger-kernel"),
                          "quack": _dist_version("quack-kernels")})


def _dist_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


# ---- the loop ---------------------------------------------------------------------------------
class Run:
    """One bench run: makes the records; `live` (a report.Live) shows them, `on_record(records)`
    is called after each (main writes the files there, so a run cut short keeps what it has)."""

    def __init__(self, opts, live=None, on_record=None, env=None):
        self.opts, self.live, self.on_record = opts, live, on_record
        self.dev = torch.device(opts.device)
        self.env = env or environment(self.dev, getattr(opts, "commit", None))
        self.records, self.copy_gbps = [], None
        self.spent = {}  # provider -> seconds in all: compiles, checks and timing

    def record(self, provider, op, dtype, m, n, status="ok", ms=None, error=None, note="",
               nbytes=None):
        if nbytes is None and dtype is not None:
            nbytes = min_bytes(op, m, n, DTYPES[dtype])
        gbps = nbytes / (ms * 1e6) if ms and nbytes else None
        copy = self.copy_gbps if self.copy_gbps is not None else gbps  # the copy row: itself
        pct = 100.0 * gbps / copy if gbps is not None and copy else None
        env = self.env
        r = dict(provider=provider, op=op, dtype=dtype or "", M=m, N=n, bytes=nbytes, ms=ms,
                 gbps=gbps, pct_copy=pct, copy_gbps=copy, error=error, status=status, note=note,
                 gpu=env["gpu"], provider_version=env["versions"].get(provider, env["torch"]),
                 **{k: env[k] for k in ("torch", "triton", "cuda", "driver", "commit", "date")})
        for k in records.FLOATS:  # the file holds numbers or nothing: no NaN, no inf
            if r[k] is not None and not math.isfinite(r[k]):
                r[k] = None
        self.records.append(r)
        if self.live is not None:
            self.live.record(r, advance=op not in ("import", "copy"))
        if self.on_record is not None:
            self.on_record(self.records)
        return r

    def doing(self, what):
        if self.live is not None:
            self.live.doing(what)

    def measure(self, p, op, t, refs, dtype, new_shape=True, t2=None):
        """Runs p once, checks it against refs, then times it; any failure becomes its record.
        t2: a second set of inputs of the same shape; the timed calls alternate t, t2, t, ..."""
        m, n = t["x"].shape
        t0 = time.perf_counter()
        try:
            status, ms, err, note = self._attempt(p, op, t, refs, dtype, new_shape, t2)
        except Exception as e:  # noqa: BLE001 - a peer's failure is a result, not a crash
            status, ms, err, note = "failed", None, None, _why(e)
        finally:
            self.spent[p.name] = self.spent.get(p.name, 0.0) + time.perf_counter() - t0
        if status == "failed":  # the exception, and with it the provider's tensors, are gone
            _settle(self.dev)
        return self.record(p.name, op, dtype, m, n, status, ms=ms, error=err, note=note)

    def _attempt(self, p, op, t, refs, dtype, new_shape, t2=None):
        if new_shape:
            p.setup()
        kind = LATENCY.get(op, op)
        fn = p.prepare(kind, t["x"], t["w"], EPS, r=t.get("r"), dy=t.get("dy"))
        out = fn()
        timing.sync(self.dev)
        err = check(kind, out, refs, t)
        del out
        if not err <= WRONG_AT:
            why = "" if math.isfinite(err) else " (NaN or inf where the reference is finite)"
            return "wrong", None, err, f"error {err:.3g}x the {dtype} tolerance{why}"
        if op in ("latency", "fp8_latency"):
            ms = timing.eager_ms_per_call(fn, self.dev)
        elif op in ("latency_graph", "fp8_latency_graph"):
            ms = timing.graph_ms_per_call(fn)
        else:
            if t2 is not None:
                fn = alternate(fn, p.prepare(kind, t2["x"], t2["w"], EPS, r=t2.get("r"),
                                             dy=t2.get("dy")))
            ms = timing.kernel_ms(fn, self.dev, self.opts.rep_ms)
        return "ok", ms, err, ""

    def cell(self, op, dtype, m, n, who, kinds=None):
        """Inputs and float64 reference once, then every provider in `who` on them. Throughput
        cells make a second set of inputs too, and time each provider alternating the two: no
        call finds its inputs in L2. (A kernel's evict_last loads - Inductor's - can leave part
        of a tensor pinned in L2's persisting set-aside, ~9 MB on the H100, which then serves
        every later call on that tensor: our forward read 101.5% of copy on the same x after
        torch.compile had run on it, 99.0% alternating two.)"""
        kinds = kinds or [op]
        t2 = None
        try:
            self.doing(f"{kinds[0]} {dtype} M={m} N={report.fmt_n(n)}: inputs, float64")
            t = make_inputs(op, m, n, DTYPES[dtype], self.dev, self.opts.seed)
            refs = reference(op, t)
            if kinds[0] not in LATENCY:
                t2 = make_inputs(op, m, n, DTYPES[dtype], self.dev, self.opts.seed + 1)
        except Exception as e:  # noqa: BLE001 - e.g. out of memory: every provider skips it
            _settle(self.dev)
            for p in who:
                for kind in kinds:
                    self.record(p.name, kind, dtype, m, n, "failed", note="inputs: " + _why(e))
            return
        for p in who:
            for kind in kinds:
                self.doing(f"{kind} {dtype} M={m} N={report.fmt_n(n)}: {p.name}")
                self.measure(p, kind, t, refs, dtype, new_shape=kind == kinds[0], t2=t2)

    def run(self, providers) -> list[dict]:
        opts = self.opts
        ms, nbytes = timing.copy_bandwidth(self.dev, opts.copy_mib, opts.rep_ms)
        self.record("copy", "copy", "fp32", nbytes // 8 // 4096, 4096, ms=ms, nbytes=nbytes)
        self.copy_gbps = self.records[-1]["gbps"]
        loaded = []
        wanted = {LATENCY.get(op, op) for op in opts.ops}
        for p in [p for p in providers if wanted & set(p.ops)]:  # (FP8's only for FP8 cells)
            try:
                p.load()
                loaded.append(p)
            except Exception as e:  # noqa: BLE001 - any import-time failure means "missing"
                self.record(p.name, "import", None, 0, 0, "missing", note=_why(e))
        if self.live is not None:
            self.live.set_total(count(opts, loaded))
        for op in [o for o in opts.ops if o not in LATENCY]:
            for dtype in opts.dtypes:
                for n in opts.sizes:
                    who = [p for p in loaded if op in p.ops]
                    if opts.mn // n >= 1 and who:
                        self.cell(op, dtype, opts.mn // n, n, who)
        for lat in [o for o in ("latency", "fp8_latency") if o in opts.ops]:
            kinds = [lat, lat + "_graph"] if self.dev.type == "cuda" else [lat]
            who = [p for p in loaded if LATENCY[lat] in p.ops]
            for m in opts.latency_m:
                self.cell(LATENCY[lat], opts.dtypes[0], m, opts.latency_n, who, kinds)
        return self.records


def alternate(*fns):
    """One callable that calls fns in turn, one per call."""
    turn = [len(fns) - 1]

    def call():
        turn[0] = (turn[0] + 1) % len(fns)
        return fns[turn[0]]()

    return call


def _why(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().split("\n")[0]  # no terminal colours
    return f"{type(e).__name__}: {text[:240]}"


def _settle(dev):
    """After a failure: let the device finish, so that an asynchronous error is charged here,
    and give back the cache a failed provider may have filled."""
    try:
        timing.sync(dev)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001
        pass


def count(opts, providers) -> int:
    steps = sum(1 for op in opts.ops if op not in LATENCY for _ in opts.dtypes
                for n in opts.sizes for p in providers if op in p.ops and opts.mn // n >= 1)
    for lat in [o for o in ("latency", "fp8_latency") if o in opts.ops]:
        who = [p for p in providers if LATENCY[lat] in p.ops]
        steps += len(opts.latency_m) * len(who) * (2 if opts.device == "cuda" else 1)
    return steps


def main(argv=None, providers=None) -> int:
    """Entry point of `rmsnorm-triton bench`; `providers` replaces the built-in list (tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--report" in argv:
        argv.remove("--report")
        return report.main(argv)
    opts = options(argv)
    if opts.device == "cuda" and not torch.cuda.is_available():
        print("rmsnorm-triton bench: no CUDA device here. For a smoke run through Triton's "
              "interpreter: rmsnorm-triton bench --device cpu (tiny sizes, e.g. --mn 2**12)")
        return 2
    provs = providers if providers is not None else P.make(opts.providers)
    dev = torch.device(opts.device)
    env = environment(dev, opts.commit)
    out = records.append([], opts.out)  # the header checked (or written) before any timing
    print(f"rmsnorm-triton bench on {env['gpu']} at commit {env['commit'] or '(unknown)'}: "
          f"rows appended to {out}", flush=True)
    if skipped := [n for n in opts.sizes if opts.mn // n < 1]:
        print(f"N = {skipped} skipped: more than --mn {opts.mn} elements per row")
    with report.Live(count(opts, provs), quiet=opts.quiet) as live:
        bench = Run(opts, live, on_record=lambda rs: records.append(rs[-1:], out), env=env)
        rows = bench.run(provs)
    report.print_summary(rows)
    print("\nseconds per provider (compiles, checks, timing): "
          + ", ".join(f"{k} {v:.0f}" for k, v in bench.spent.items()))
    print(f"data: {len(rows)} rows appended to {out} (run of {env['date']}); tables and plot: "
          f"rmsnorm-triton bench --report --data {out}")
    ours = [r for r in rows if r["provider"] == "rmsnorm_triton" and r["status"] != "ok"]
    if ours:
        print(f"rmsnorm_triton itself failed or was wrong in {len(ours)} case(s): see above")
    return 1 if ours else 0

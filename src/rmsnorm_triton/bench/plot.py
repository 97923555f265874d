"""PNG plots drawn from a bench's data files alone (results.json or results.csv).

    throughput.png  GB/s against N, one line per provider, the run's copy bandwidth drawn as the
                    ceiling; one panel per op (rows: fwd, bwd, fwd_residual) and dtype (columns)
    latency.png     us per call against M: eager (solid) and replayed in a CUDA graph (dashed)

    python -m rmsnorm_triton.bench.plot benchmarks/results/<run>   # redraws from the data
"""

import sys
from pathlib import Path

from .report import LATENCY_OPS, THROUGHPUT_OPS, fmt_n, read_records

# One colour per provider on every panel; this library drawn thicker.
COLORS = {"rmsnorm_triton": "#d62728", "torch_eager": "#7f7f7f", "torch_native": "#1f77b4",
          "torch_compile": "#2ca02c", "liger": "#9467bd", "quack": "#ff7f0e"}
DTYPE_ORDER = ["bf16", "fp16", "fp32"]


def plot(source, out_dir=None) -> list[Path]:
    """Draws the PNGs for the records in `source` (a folder, .json or .csv) into out_dir
    (default: the folder of the data). Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    src = Path(source)
    records = read_records(src)
    out = Path(out_dir) if out_dir else (src if src.is_dir() else src.parent)
    out.mkdir(parents=True, exist_ok=True)
    ok = [r for r in records if r["status"] == "ok"]
    paths = []
    if any(r["op"] in THROUGHPUT_OPS for r in ok):
        paths.append(_throughput(ok, records, out / "throughput.png"))
    if any(r["op"] in LATENCY_OPS for r in ok):
        paths.append(_latency(ok, records, out / "latency.png"))
    return paths


def _title(records) -> str:
    r = records[0]
    v = r["versions"] or {}
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "triton", "rmsnorm_triton", "liger", "quack")
                     if v.get(k))
    return f"{r['gpu']}    ({libs})"


def _style(provider):
    c = COLORS.get(provider)
    return dict(color=c, lw=2.6 if provider == "rmsnorm_triton" else 1.4,
                zorder=3 if provider == "rmsnorm_triton" else 2)


def _throughput(ok, records, path):
    import matplotlib.pyplot as plt

    ops = [o for o in THROUGHPUT_OPS if any(r["op"] == o for r in ok)]
    dtypes = sorted({r["dtype"] for r in ok if r["op"] in ops},
                    key=lambda d: DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 9)
    copy = [r for r in records if r["op"] == "copy" and r["status"] == "ok"]
    fig, axes = plt.subplots(len(ops), len(dtypes), squeeze=False, sharex=True,
                             figsize=(5.2 * len(dtypes), 3.6 * len(ops)))
    for i, op in enumerate(ops):
        for j, dt in enumerate(dtypes):
            ax = axes[i][j]
            rows = [r for r in ok if r["op"] == op and r["dtype"] == dt]
            for prov in dict.fromkeys(r["provider"] for r in rows):
                pts = sorted((r["N"], r["gbps"]) for r in rows if r["provider"] == prov)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3.5,
                        label=prov, **_style(prov))
            if copy:
                ax.axhline(copy[-1]["gbps"], color="black", ls="--", lw=1,
                           label=f"copy {copy[-1]['gbps']:.0f} GB/s")
            ax.set_xscale("log", base=2)
            ns = sorted({r["N"] for r in rows})
            if ns:
                ax.set_xticks(ns, [fmt_n(n) for n in ns], fontsize=7)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.set_title(f"{op} {dt}", fontsize=10)
            if j == 0:
                ax.set_ylabel("GB/s (fewest bytes / median time)")
            if i == len(ops) - 1:
                ax.set_xlabel("N (M = elements / N)")
            if i == 0 and j == len(dtypes) - 1:
                ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(_title(records), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency(ok, records, path):
    import matplotlib.pyplot as plt

    rows = [r for r in ok if r["op"] in LATENCY_OPS]
    dtypes = sorted({r["dtype"] for r in rows})
    fig, axes = plt.subplots(1, len(dtypes), squeeze=False, figsize=(6.5 * len(dtypes), 4.2))
    for j, dt in enumerate(dtypes):
        ax = axes[0][j]
        sub = [r for r in rows if r["dtype"] == dt]
        for prov in dict.fromkeys(r["provider"] for r in sub):
            for op, ls in (("latency", "-"), ("latency_graph", "--")):
                pts = sorted((r["M"], r["ms"] * 1e3) for r in sub
                             if r["provider"] == prov and r["op"] == op)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, marker="o", ms=3.5,
                            label=f"{prov}{' (graph)' if op != 'latency' else ''}", **_style(prov))
        ms_ = sorted({r["M"] for r in sub})
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(ms_, [str(m) for m in ms_])
        ax.grid(alpha=0.3, which="both")
        ax.set_xlabel("M (rows)")
        ax.set_ylabel("us per call")
        ax.set_title(f"forward {dt}, N = {fmt_n(sub[0]['N'])}: eager (solid), CUDA graph (dashed)",
                     fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(_title(records), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        print("usage: python -m rmsnorm_triton.bench.plot RESULTS [OUT_DIR]\n"
              "  RESULTS: a bench folder, its results.json or its results.csv", file=sys.stderr)
        return 2
    for p in plot(*argv):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())

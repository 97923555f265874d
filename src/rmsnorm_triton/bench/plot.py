"""PNG plots drawn from the bench's data file alone (the latest row of each cell, one GPU).

    throughput.png  % of the copy bandwidth against N, one line per provider, the copy ceiling at
                    100; one panel per op (rows: fwd, bwd, fwd_residual) and dtype (columns)
    latency.png     us per call against M: eager (solid) and replayed in a CUDA graph (dashed)

    python -m rmsnorm_triton.bench.plot [DATA.csv] [OUT_DIR]   # both, from the data
    rmsnorm-triton bench --report                              # the README's: docs/throughput.png
"""

import sys
from pathlib import Path

from . import records as R
from .records import LATENCY_OPS, THROUGHPUT_OPS
from .report import fmt_n, select

# One colour per provider on every panel; this library drawn thicker.
COLORS = {"rmsnorm_triton": "#d62728", "torch_eager": "#7f7f7f", "torch_native": "#1f77b4",
          "torch_compile": "#2ca02c", "liger": "#9467bd", "quack": "#ff7f0e"}
DTYPE_ORDER = ["bf16", "fp16", "fp32"]


def plot(source, out_dir=None, gpu=None) -> list[Path]:
    """Draws the PNGs for the latest rows in the CSV `source` into out_dir (default: the CSV's
    folder). Returns the paths written."""
    src = Path(source)
    out = Path(out_dir) if out_dir else src.parent
    name, rows = select(R.read(src), gpu)
    paths = [throughput(rows, out / "throughput.png")]
    if any(r["op"] in LATENCY_OPS and r["status"] == "ok" for r in rows):
        paths.append(latency(rows, out / "latency.png"))
    return paths


def _title(rows) -> str:
    r = max(rows, key=lambda r: r["date"])
    dates = sorted({x["date"][:10] for x in rows})
    when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    return f"{r['gpu']}    (torch {r['torch']}, Triton {r['triton']}; runs of {when})"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(provider):
    c = COLORS.get(provider)
    return dict(color=c, lw=2.6 if provider == "rmsnorm_triton" else 1.4,
                zorder=3 if provider == "rmsnorm_triton" else 2)


def throughput(rows, path) -> Path:
    """% of copy against N for every provider, one panel per op and dtype, from `rows` (one GPU,
    one row per cell: report.select). Each row's share is against its own run's copy."""
    plt = _pyplot()
    ok = [r for r in rows if r["op"] in THROUGHPUT_OPS and r["status"] == "ok"
          and r["pct_copy"] is not None]
    ops = [o for o in THROUGHPUT_OPS if any(r["op"] == o for r in ok)]
    dtypes = sorted({r["dtype"] for r in ok},
                    key=lambda d: DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 9)
    if not ok:
        raise ValueError("no throughput rows with a result to plot")
    fig, axes = plt.subplots(len(ops), len(dtypes), squeeze=False, sharex=True, sharey=True,
                             figsize=(5.2 * len(dtypes), 3.4 * len(ops)))
    low = min(r["pct_copy"] for r in ok)
    for i, op in enumerate(ops):
        for j, dt in enumerate(dtypes):
            ax = axes[i][j]
            sub = [r for r in ok if r["op"] == op and r["dtype"] == dt]
            for prov in sorted({r["provider"] for r in sub}, key=_order):
                pts = sorted((r["N"], r["pct_copy"]) for r in sub if r["provider"] == prov)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3.5,
                        label=prov, **_style(prov))
            ax.axhline(100, color="black", ls="--", lw=1, label="copy (same run)")
            ax.set_xscale("log", base=2)
            ns = sorted({r["N"] for r in sub})
            if ns:
                ax.set_xticks(ns, [fmt_n(n) for n in ns], fontsize=7)
            ax.set_ylim(max(0, low - 5), 105)
            ax.grid(alpha=0.3)
            ax.set_title(f"{op} {dt}", fontsize=10)
            if j == 0:
                ax.set_ylabel("% of copy bandwidth")
            if i == len(ops) - 1:
                ax.set_xlabel("N (M = elements / N)")
    shown = {}  # label -> handle, over every panel: a provider may be missing from some
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            shown.setdefault(label, h)
    labels = sorted(shown, key=_order)
    fig.legend([shown[k] for k in labels], labels, loc="lower center", ncol=len(labels),
               fontsize=8, frameon=False)
    fig.suptitle(_title(ok), fontsize=10)
    return _save(fig, plt, path, bottom=0.6 / (3.4 * len(ops)))


def _order(label):
    """Providers in COLORS' order, then others, the copy line last."""
    names = list(COLORS)
    return names.index(label) if label in names else len(names) + label.startswith("copy")


def _save(fig, plt, path, bottom=0.0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def latency(rows, path) -> Path:
    """us per call against M, eager and in a CUDA graph, from `rows` (report.select)."""
    plt = _pyplot()
    lat = [r for r in rows if r["op"] in LATENCY_OPS and r["status"] == "ok"]
    dtypes = sorted({r["dtype"] for r in lat})
    fig, axes = plt.subplots(1, len(dtypes), squeeze=False, figsize=(6.5 * len(dtypes), 4.2))
    for j, dt in enumerate(dtypes):
        ax = axes[0][j]
        sub = [r for r in lat if r["dtype"] == dt]
        for prov in sorted({r["provider"] for r in sub}, key=_order):
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
    fig.suptitle(_title(lat), fontsize=10)
    return _save(fig, plt, path)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 2 or any(a.startswith("-") for a in argv):
        print("usage: python -m rmsnorm_triton.bench.plot [DATA.csv] [OUT_DIR]\n"
              f"  DATA.csv: the bench's data file (default {R.default_csv()})", file=sys.stderr)
        return 2
    for p in plot(*(argv or [R.default_csv()])):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())

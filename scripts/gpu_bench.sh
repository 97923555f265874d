#!/usr/bin/env bash
# What the GPU machine runs for the bench: rmsnorm-triton bench against its peers.
#
#   bash scripts/gpu_bench.sh                          # the full bench (all providers, ops, dtypes, N)
#   bash scripts/gpu_bench.sh --quick                  # a small subset: bf16, N = 1K, 8K, 64K
#   bash scripts/gpu_bench.sh --ops bwd --dtypes fp32  # some cells only
#
# On an H100 (--rep-ms 30, peers installed) bf16 with every op took ~3 min and fp16 + fp32
# forward, backward and fused residual ~4 min, most of it torch.compile and Quack compiling each
# shape. Where one command may run 10 minutes at most, run it in parts: each part measures its
# own copy bandwidth, and every row's % of copy is against its own part's:
#   bash scripts/gpu_bench.sh --dtypes bf16
#   bash scripts/gpu_bench.sh --dtypes fp16,fp32 --ops fwd,bwd,fwd_residual
#
# Arguments go to the bench (`--help` lists them). Each measurement is appended as one row to
# benchmarks/data/results.csv (or --out FILE); `rmsnorm-triton bench --report` then draws the
# README's tables and docs/throughput.png from it. Where this tree has no .git (a copy of a
# checkout), give the commit: --commit "$(git rev-parse --short HEAD)" from the checkout, or it
# is recorded empty. When $OUT is set, the data file (every row, the new ones last) and the log
# (bench.log) are copied into it: copy results.csv back over benchmarks/data/results.csv.
#
# The package runs from src/ (PYTHONPATH; nothing is installed). Liger-Kernel and Quack are
# imported from $PEERS (default /tmp/peers) when the caller installed them there; when that folder
# does not exist and the wheels are in .peers/ and .peers-big/ (../shared/peers/pack-peers.sh),
# they are installed there first, offline. A peer that still does not import is reported as
# missing in the results, and the bench goes on without it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PEERS=${PEERS:-/tmp/peers}

if [ ! -d "$PEERS" ] && compgen -G ".peers/*.whl" >/dev/null; then
  echo "installing the peers from .peers/ into $PEERS (offline)"
  if "$PY" -m pip install -q --no-deps --no-index --target "$PEERS" .peers/*.whl; then
    if [ -s .peers-big/cutlass-libs.tar.xz ]; then  # Quack's CUTLASS DSL compiler libraries
      tar -C "$PEERS" -xJf .peers-big/cutlass-libs.tar.xz || echo "could not unpack .peers-big/"
    fi
  else
    echo "could not install the peers: the bench will report them missing"
  fi
fi
export PYTHONPATH="$PWD/src:$PEERS:$PEERS/nvidia_cutlass_dsl/dsl_packages${PYTHONPATH:+:$PYTHONPATH}"

log=$(mktemp /tmp/bench-XXXX.log)
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv 2>/dev/null || true
  "$PY" -m rmsnorm_triton.cli info
  for mod in rich matplotlib liger_kernel quack; do
    "$PY" -c "import $mod" 2>/dev/null && echo "$mod: imports" || echo "$mod: does not import"
  done
} 2>&1 | tee "$log"

set +e
"$PY" -m rmsnorm_triton.cli bench "$@" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
set -e

# The bench names its data file in its first line: "... rows appended to <file>".
data=$(sed -n 's/^rmsnorm-triton bench on .*: rows appended to //p' "$log" | tail -n 1)
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp "$log" "$OUT/bench.log"
  if [ -n "$data" ] && [ -f "$data" ]; then
    cp "$data" "$OUT/results.csv"
    echo "copied $data and bench.log into $OUT"
  fi
fi
exit "$rc"

#!/usr/bin/env bash
# What the GPU machine runs for the bench (issue 5): rmsnorm-triton bench against its peers.
#
#   bash scripts/gpu_bench.sh                          # the full bench (all providers, ops, dtypes, N)
#   bash scripts/gpu_bench.sh --quick                  # a small subset: bf16, N = 1K, 8K, 64K
#   bash scripts/gpu_bench.sh --ops bwd --append       # more cells into the same results folder
#
# Measured on an H100 (run 19, --rep-ms 30, peers installed): bf16 with every op took ~3 min and
# fp16 + fp32 forward, backward and fused residual ~4 min, most of it torch.compile and Quack
# compiling each shape. Where one command may run 10 minutes at most, run it in parts into one
# folder (each part measures its own copy bandwidth; every record's % of copy is against its own
# part's):
#   bash scripts/gpu_bench.sh --dtypes bf16
#   bash scripts/gpu_bench.sh --dtypes fp16,fp32 --ops fwd,bwd,fwd_residual --append
#
# Arguments go to the bench (`--help` lists them). Results land in
# benchmarks/results/<date>-<gpu>/ (results.json, results.csv, throughput.png, latency.png), and
# when $OUT is set, that folder and the log (bench.log) are copied into it as well.
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

# The bench names its results folder in its first line: "... results in <folder>".
dir=$(sed -n 's/^rmsnorm-triton bench on .*: results in //p' "$log" | tail -n 1)
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp "$log" "$OUT/bench.log"
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    cp -r "$dir" "$OUT/"
    echo "copied $dir and bench.log into $OUT"
  fi
fi
exit "$rc"

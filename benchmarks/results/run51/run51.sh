#!/usr/bin/env bash
# Run 51 (H100): SPLIT's 16-bit weight multiply (launch.W_NATIVE), A/B per layout, beside the
# tables' entries. gpu_check first (its "bits" column: native and fp32 multiplies give the same
# bits), then tune.py with TUNE_NATIVE=both on the long rows, forward and fused residual.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 benchmarks/gpu_check.py --shapes 1000:65537,5:131072,33:262144,77:40000,2:1048576,300:12289 2>&1 | tee $OUT/run51-gpu-check.log
V=1024x4:early:10:48,2048x4:split:6,2048x4:early:6:80,2048x4:early:7:72,2048x4:split:7:72,2048x4:early:8:64
V=$V,2048x8:early:3:80,2048x8:early:4:64,4096x4:early:4:128,4096x8:early:3:80,4096x8:split:3:80
V=$V,4096x8:early:4:64,8192x8:early:2:128,8192x16:early:2:64
OUT=$OUT TUNE_NATIVE=both timeout 400 python3 benchmarks/tune.py --ops fwd,res --dtypes bf16,fp16 \
  --ns 65536,131072,262144,32768 --variants $V 2>&1 | tee $OUT/run51-tune.log | grep -v "^fwd\|^res"

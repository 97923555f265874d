"""Run 83 (and 83b with PROBE_PEERS=1: the peers as the earlier work): does work done before
our timed calls leave the GPU in a state that slows them?

Run 81's bench read our forward at 4K and every SPLIT cell 1.4-3 points below a fresh process's
tune (run 82, same machine, minutes later), and Quack's 1K-16K 1-2 below run 74. Hypothesis:
lines loaded with evict_last (Inductor's loads of w and of x in its two-loop reductions) stay
in L2 after their tensors are freed, and the streaming kernels timed after them have less L2
for their writes. Prediction if so: B (after torch.compile's forwards) below A (fresh) by 1-3
points; C (after cudaCtxResetPersistingL2Cache) back at A.
    PYTHONPATH=src python3 benchmarks/results/run83/probe_l2.py
"""
import ctypes
import glob
import os

import torch

from rmsnorm_triton import rms_norm
from rmsnorm_triton.bench.harness import alternate
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms
from rmsnorm_triton.reference import llama_rms_norm

libs = sorted(glob.glob(os.path.join(os.path.dirname(torch.__file__), "..", "nvidia", "**",
                                     "libcudart.so*"), recursive=True))
cudart = ctypes.CDLL(libs[0]) if libs else None
print("cudart", libs[:1])
dev = torch.device("cuda")


def limit():
    v = ctypes.c_size_t(0)
    if cudart is not None:
        cudart.cudaDeviceGetLimit(ctypes.byref(v), 6)  # cudaLimitPersistingL2CacheSize
    return v.value


def cells():
    out = {}
    for op, n in (("fwd", 4096), ("fwd", 16384), ("res", 65536), ("fwd", 131072)):
        m = 2**26 // n
        sets = [(torch.randn(m, n, device=dev, dtype=torch.bfloat16),
                 torch.randn(m, n, device=dev, dtype=torch.bfloat16) if op == "res" else None)
                for _ in range(2)]
        w = (1 + 0.2 * torch.randn(n, device=dev)).to(torch.bfloat16)
        fns = [lambda s=s: rms_norm(s[0], w, residual=s[1]) for s in sets]
        nbytes = (4 if op == "res" else 2) * m * n * 2
        out[f"{op} {n}"] = nbytes / kernel_ms(alternate(*fns), dev, 30.0) / 1e6
        del sets
    c_ms, c_b = copy_bandwidth(dev, 512, 30.0)
    out["copy"] = c_b / c_ms / 1e6
    return out


def compiled_work():
    f = torch.compile(llama_rms_norm, dynamic=False)
    for n in (4096, 65536):
        torch._dynamo.reset()
        x = torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16)
        w = torch.randn(n, device=dev, dtype=torch.bfloat16)
        for _ in range(200):
            f(x, w, 1e-6)
        torch.cuda.synchronize()
        del x, w


def peer_work(name):
    from rmsnorm_triton.bench import providers
    p = providers.make([name])[0]
    p.load()
    for n in (2048, 65536):
        p.setup()
        x = torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16)
        w = (1 + 0.2 * torch.randn(n, device=dev)).to(torch.bfloat16)
        dy = torch.randn_like(x)
        for kind in ("fwd", "fwd_residual", "bwd"):
            try:
                fn = p.prepare(kind, x, w, 1e-6, r=torch.randn_like(x), dy=dy)
                for _ in range(100):
                    fn()
            except Exception as e:  # noqa: BLE001
                print(name, kind, n, "failed", str(e)[:80])
        torch.cuda.synchronize()
        del x, w, dy


if os.environ.get("PROBE_PEERS"):
    rows = {"A fresh": cells()}
    for name in ("quack", "liger", "torch_eager", "torch_native"):
        peer_work(name)
        rows[f"after {name}"] = cells()
        print(name, "limit", limit(), flush=True)
    print("reset rc", cudart.cudaCtxResetPersistingL2Cache())
    rows["after reset"] = cells()
    base = rows["A fresh"]
    for name, r in rows.items():
        print(f"{name:>20} " + " ".join(f"{100 * v / base[k]:6.1f}" for k, v in r.items()))
    raise SystemExit(0)
rows = {}
rows["A fresh"] = cells()
print("limit", limit(), rows["A fresh"], flush=True)
compiled_work()
rows["B after compile"] = cells()
print("limit", limit(), flush=True)
if cudart is not None:
    print("reset rc", cudart.cudaCtxResetPersistingL2Cache())
rows["C after reset"] = cells()
compiled_work()
rows["D after compile"] = cells()
big = torch.empty(2**28, device=dev)  # 1 GiB written with normal stores
big.fill_(1.0)
torch.cuda.synchronize()
del big
rows["E after 1 GiB fill"] = cells()
base = rows["A fresh"]
print(f"{'state':>20} " + " ".join(f"{k:>11}" for k in base) + "   (GB/s; copy last)")
for name, r in rows.items():
    print(f"{name:>20} " + " ".join(f"{v:11.0f}" for v in r.values()))
print(f"{'% of A':>20} ")
for name, r in rows.items():
    print(f"{name:>20} " + " ".join(f"{100 * v / base[k]:11.1f}" for k, v in r.items()))

"""Run 72 (H100): our forward compiled after Inductor has run in the process reads 2-3 points
faster (probe_tail.py) than compiled before it, or under launch.ptxas_scope with the same ptxas
(run 73). Compiles the 16K and 64K bf16 forward before and after torch.compile (Triton's JIT
cache emptied in between), times both, and saves what differs (PTX, SASS, metadata)."""
import hashlib
import json
import os
import sys
import torch
import triton
from rmsnorm_triton import kernels as K, launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms
from rmsnorm_triton.reference import llama_rms_norm

out = sys.argv[1]
dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
print(torch.cuda.get_device_name(), torch.__version__, triton.__version__, "copy", round(cbw), flush=True)
xs = {n: torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16) for n in (16384, 65536)}
ws = {n: (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16) for n in xs}


def turn(tag):
    launch._COMPILED.clear()
    launch._PLANS.clear()
    K.rms_norm_fwd.device_caches.clear()
    res = []
    for n, x in xs.items():
        w = ws[n]
        f = lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)  # noqa
        launch._COMPILED.clear()
        f()
        (k,) = launch._COMPILED.values()
        for name in ("ptx", "cubin"):
            data = k.asm[name]
            with open(f"{out}/{tag}-{n}.{name}", "wb" if name == "cubin" else "w") as fh:
                fh.write(data)
        md = {kk: str(v) for kk, v in k.metadata._asdict().items()} if hasattr(k.metadata, "_asdict") else str(k.metadata)
        with open(f"{out}/{tag}-{n}.json", "w") as fh:
            json.dump(md, fh, indent=1)
        head = [l for l in k.asm["ptx"].splitlines() if l.startswith((".version", ".target"))]
        pct = [2 * x.numel() * 2 / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100 for _ in range(3)]
        res.append((tag, n, hashlib.md5(k.asm["cubin"]).hexdigest()[:8], k.n_regs, head, pct))
        launch._PLANS.clear()
    return res


rows = turn("before")
print("env before:", {k: v for k, v in os.environ.items() if k.startswith("TRITON")}, flush=True)
comp = torch.compile(lambda x, w: llama_rms_norm(x, w, 1e-6), dynamic=False)
comp(xs[16384], ws[16384])
torch.cuda.synchronize()
print("env after:", {k: v for k, v in os.environ.items() if k.startswith("TRITON")}, flush=True)
rows += turn("after")
os.environ.pop("TRITON_PTXAS_PATH", None)  # Inductor's choice gone: ours again via ptxas_scope
launch.PTXAS = "torch"  # (the process starts with RMSNORM_TRITON_PTXAS=triton: "before" is Triton's)
rows += turn("scope")
for r in rows:
    print(f"{r[0]:>7} {r[1]:>6} cubin {r[2]} regs {r[3]} {' '.join(r[4])}  " + " ".join(f"{p:5.1f}" for p in r[5]))

"""Run 72 (H100): one cubin, two speeds (probe_cubin.py). Fresh compile against cache hit, with
no Inductor in the process: each turn empties Triton's JIT cache and points TRITON_CACHE_DIR at
a new (fresh compile) or a used (cache hit) folder, then times the 16K and 64K bf16 forward."""
import hashlib
import os
import tempfile
import torch
from rmsnorm_triton import kernels as K, launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
print(torch.cuda.get_device_name(), "copy", round(cbw), flush=True)
xs = {n: torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16) for n in (16384, 65536)}
ws = {n: (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16) for n in xs}
dirs = [tempfile.mkdtemp() for _ in range(3)]
rows = []
for tag, d in (("fresh1", 0), ("hit1", 0), ("fresh2", 1), ("hit2", 1), ("hit1b", 0), ("fresh3", 2)):
    os.environ["TRITON_CACHE_DIR"] = dirs[d]
    for n, x in xs.items():
        launch._COMPILED.clear()
        launch._PLANS.clear()
        K.rms_norm_fwd.device_caches.clear()
        w = ws[n]
        f = lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)  # noqa
        f()
        (k,) = launch._COMPILED.values()
        pct = [2 * x.numel() * 2 / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100 for _ in range(3)]
        rows.append((tag, n, hashlib.md5(k.asm["cubin"]).hexdigest()[:8], sorted(k.asm), pct))
        print(*rows[-1], flush=True)
for r in rows:
    print(f"{r[0]:>7} {r[1]:>6} {r[2]} {','.join(r[3])}  " + " ".join(f"{p:5.1f}" for p in r[4]))

"""Run 72 (H100): probe_tail.py read our forward 1-3 points faster than probe_path.py on the same
machine; probe_tail had run torch.compile in the process. Does running Inductor change how our
kernels compile? Times the forward, runs torch.compile once, recompiles ours, times again, and
prints what changed (environment, Triton knobs, the cubin)."""
import hashlib
import os
import torch
import triton
from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms
from rmsnorm_triton.reference import llama_rms_norm

dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
print(torch.cuda.get_device_name(), torch.__version__, triton.__version__, "copy GB/s", round(cbw), flush=True)


def knobs():
    out = {}
    for name in ("nvidia", "compilation", "runtime", "cache", "build"):
        grp = getattr(triton.knobs, name, None)
        if grp is None:
            continue
        for k in dir(grp):
            if k.startswith("_"):
                continue
            try:
                v = getattr(grp, k)
            except Exception as e:  # noqa: BLE001
                v = repr(e)
            if not callable(v):
                out[f"{name}.{k}"] = repr(v)
    return out


def turn(tag):
    launch._COMPILED.clear()
    launch._PLANS.clear()
    rows = []
    for n in (16384, 32768, 65536):
        m = 2**26 // n
        x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
        w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
        f = lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)  # noqa
        f()
        k = next(iter(launch._COMPILED.values()))
        h = hashlib.md5(k.asm["cubin"]).hexdigest()[:8]
        pct = [2 * m * n * 2 / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100 for _ in range(3)]
        rows.append((tag, n, k.n_regs, k.n_spills, h, pct))
        launch._COMPILED.clear()
        launch._PLANS.clear()
    return rows


env0, kn0 = dict(os.environ), knobs()
rows = turn("before")
comp = torch.compile(lambda x, w: llama_rms_norm(x, w, 1e-6), dynamic=False)
x = torch.randn(4096, 16384, device=dev, dtype=torch.bfloat16)
comp(x, x[0])
torch.cuda.synchronize()
env1, kn1 = dict(os.environ), knobs()
rows += turn("after")
print("env changed:", {k: (env0.get(k), env1.get(k)) for k in set(env0) | set(env1) if env0.get(k) != env1.get(k)})
print("knobs changed:", {k: (kn0.get(k), kn1.get(k)) for k in set(kn0) | set(kn1) if kn0.get(k) != kn1.get(k)})
for r in rows:
    print(f"{r[0]:>7} {r[1]:>6} regs {r[2]:>4} spills {r[3]} cubin {r[4]}  " + " ".join(f"{p:5.1f}" for p in r[5]))

"""Run 76 (H100): which ingredient of probe_cubin.py's "after" turn makes one cubin run 2-3
points faster (16K bf16 forward)? One mode per process:
  env       TRITON_PTXAS_PATH (torch's ptxas) set for the whole process, no Inductor
  inductor  torch.compile runs first, then its TRITON_PTXAS_PATH is removed (ours via our scope)
  both      torch.compile runs first and its environment stays (probe_cubin's "after")
  alloc     Inductor's benchmarker-like 256 MB buffer allocated and zeroed first, no Inductor
  import    torch._inductor imported first, nothing compiled
  pool      Inductor's compile-worker pool started first, nothing compiled
  trivial   torch.compile of (a * 2).sum() run first
  small     our own forward at N = 64 (another compiled kernel) run first
  none      nothing first
  keep      as inductor, but its output kept alive (our y cannot take its block)
  copyfree  a copy of x made and freed first (our y takes that block)
  native    F.rms_norm(x, w) run first, output freed
Each prints the forward's % of copy (3 timings) and the launch's grid and arguments."""
import os
import sys
import torch
from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms
from rmsnorm_triton.reference import llama_rms_norm

mode = sys.argv[1]
dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
n = 16384
x = torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16)
w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
if mode in ("inductor", "both", "keep"):
    comp = torch.compile(lambda a, b: llama_rms_norm(a, b, 1e-6), dynamic=False)
    kept = comp(x, w)
    if mode != "keep":
        del kept
    torch.cuda.synchronize()
    if mode == "inductor":
        os.environ.pop("TRITON_PTXAS_PATH", None)
if mode == "alloc":
    buf = torch.empty(int(256e6 // 4), dtype=torch.int, device=dev)
    buf.zero_()
if mode == "copyfree":
    c = x.clone()
    torch.cuda.synchronize()
    del c
if mode == "native":
    c = torch.nn.functional.rms_norm(x, (n,), w, 1e-6)
    torch.cuda.synchronize()
    del c
if mode == "import":
    import torch._inductor.async_compile  # noqa: F401
if mode == "pool":
    from torch._inductor.async_compile import AsyncCompile
    AsyncCompile.warm_pool()
if mode == "trivial":
    torch.compile(lambda a: (a * 2).sum(), dynamic=False)(torch.randn(1000, device=dev))
    torch.cuda.synchronize()
if mode == "small":
    xs = torch.randn(8, 64, device=dev, dtype=torch.bfloat16)
    launch.forward(xs, xs[0], None, 1e-6, 0.0, "llama", xs.dtype, xs.dtype, False)
    torch.cuda.synchronize()
    launch._COMPILED.clear()
    launch._PLANS.clear()
f = lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)  # noqa
f()
(k,) = launch._COMPILED.values()
yb = f()[0].data_ptr()
print("x at", hex(x.data_ptr()), "y at", hex(yb), "segments", [(hex(sg["address"]), sg["total_size"] >> 20) for sg in torch.cuda.memory_snapshot()], flush=True)
plan = next(iter(launch._PLANS.values()))
cells = [c.cell_contents for c in plan.__closure__ if not callable(c.cell_contents)] if plan.__closure__ else []
pct = " ".join(f"{2 * x.numel() * 2 / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100:5.1f}" for _ in range(3))
print(f"{mode:>9} ptxas-env={os.environ.get('TRITON_PTXAS_PATH', '-')[-12:]} regs {k.n_regs} "
      f"shared {k.metadata.shared} pdl {k.metadata.launch_pdl}  % of copy: {pct}", flush=True)
c2_ms, c2_b = copy_bandwidth(dev, 512)
print(f"   copy GB/s before {cbw:.0f}, after {c2_b / c2_ms / 1e6:.0f}", flush=True)
for n2 in (32768, 65536):
    x2 = torch.randn(2**26 // n2, n2, device=dev, dtype=torch.bfloat16)
    w2 = (1 + 0.1 * torch.randn(n2, device=dev)).to(torch.bfloat16)
    f2 = lambda: launch.forward(x2, w2, None, 1e-6, 0.0, "llama", x2.dtype, x2.dtype, False)  # noqa
    print(f"   N={n2}: " + " ".join(f"{2 * x2.numel() * 2 / kernel_ms(f2, dev, 30.0) / 1e6 / cbw * 100:5.1f}" for _ in range(3)), flush=True)
print("   plan:", sorted(str(c)[:60] for c in cells), flush=True)

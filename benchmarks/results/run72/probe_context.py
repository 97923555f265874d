"""Run 72 (H100): the same cubin runs 3.5% faster per call in a process where torch.compile ran
(probe_tail.py --slope). Inductor starts compile-worker processes; does another process holding
a CUDA context on the GPU, or Inductor's workers alone, change our speed? Times the 16K / 64K
bf16 forward: alone; with a child process that opened a CUDA context and sleeps; after that
child exits; after Inductor's worker pool started (no kernel compiled by it)."""
import subprocess
import sys
import time
import torch
from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
print(torch.cuda.get_device_name(), "copy", round(cbw), flush=True)
fs = {}
for n in (16384, 65536):
    x = torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16)
    w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
    fs[n] = (lambda x=x, w=w: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False), x.numel())


def turn(tag):
    for n, (f, e) in fs.items():
        print(tag, n, " ".join(f"{2 * e * 2 / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100:5.1f}" for _ in range(3)), flush=True)


turn("alone")
child = subprocess.Popen([sys.executable, "-c", "import torch, time; torch.zeros(1, device='cuda'); print('child ready', flush=True); time.sleep(30)"])
time.sleep(8)
turn("child-context")
child.kill()
child.wait()
time.sleep(1)
turn("child-gone")
try:
    from torch._inductor.async_compile import AsyncCompile
    AsyncCompile.warm_pool()
    time.sleep(5)
    turn("inductor-pool")
except Exception as e:  # noqa: BLE001
    print("pool:", e)
comp = torch.compile(lambda a: (a * 2).sum(), dynamic=False)
comp(torch.randn(1000, device=dev))
torch.cuda.synchronize()
turn("after-compile-small")

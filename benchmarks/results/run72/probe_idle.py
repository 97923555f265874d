"""Run 72 (H100): the same cubin read 101.5% and 98.9% of copy in one process (probe_cubin.py).
Is it the GPU's state (clocks after idle) rather than the code? Times one compiled 16K and 64K
bf16 forward right after the GPU idled (0, 2, 5 s) and during sustained load, with the SM clock,
temperature and power as NVML reports them."""
import time
import torch
from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6


def state():
    try:
        return (torch.cuda.clock_rate(dev), torch.cuda.temperature(dev), torch.cuda.power_draw(dev) // 1000)
    except Exception as e:  # noqa: BLE001
        return repr(e)[:40]


print(torch.cuda.get_device_name(), "copy", round(cbw), state(), flush=True)
fs = {}
for n in (16384, 65536):
    x = torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16)
    w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
    fs[n] = (lambda x=x, w=w: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False), x.numel())
    fs[n][0]()
rows = []
for idle in (0, 2, 5, 0, 0, 5, 2, 0):
    torch.cuda.synchronize()
    time.sleep(idle)
    s0 = state()
    for n, (f, e) in fs.items():
        pct = 2 * e * 2 / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100
        rows.append((idle, n, pct, s0, state()))
        print(*rows[-1], flush=True)
    # sustained: 1 s of back-to-back 16K calls
    t0 = time.time()
    while time.time() - t0 < 1.0:
        for _ in range(50):
            fs[16384][0]()
        torch.cuda.synchronize()
    pct = 2 * fs[16384][1] * 2 / kernel_ms(fs[16384][0], dev, 30.0) / 1e6 / cbw * 100
    rows.append(("load", 16384, pct, state(), ""))
    print(*rows[-1], flush=True)
print("idle_s      N  %copy  (sm MHz, temp C, W) before / after")
for r in rows:
    print(f"{r[0]!s:>6} {r[1]:>6} {r[2]:6.1f}  {r[3]} {r[4]}")

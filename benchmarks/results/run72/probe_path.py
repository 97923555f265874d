"""Run 72 (H100): why the bench reads our 16-bit forward 1-3 points below a direct timing of
launch.forward (probe_tail.py). Same shapes, one process, each way alternated 3 times:
A launch.forward on probe-style inputs; B rms_norm (the bench's call) on them; C launch.forward
on the bench's make_inputs; D rms_norm on those; E D with the bench's float64 reference alive."""
import torch
from rmsnorm_triton import launch, rms_norm
from rmsnorm_triton.bench.cases import make_inputs, reference
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
print(torch.cuda.get_device_name(), "copy GB/s", round(cbw), flush=True)
res = {}
for n in (16384, 32768, 65536):
    m = 2**26 // n
    x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
    w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
    t = make_inputs("fwd", m, n, torch.bfloat16, dev, 0)
    ways = {
        "A fwd/probe": lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False),
        "B api/probe": lambda: rms_norm(x, w, 1e-6),
        "C fwd/bench": lambda: launch.forward(t["x"], t["w"], None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False),
        "D api/bench": lambda: rms_norm(t["x"], t["w"], 1e-6),
    }
    for rep in range(3):
        for k, f in ways.items():
            f()
            ms = kernel_ms(f, dev, 30.0)
            res.setdefault((n, k), []).append(2 * m * n * 2 / ms / 1e6 / cbw * 100)
    ref = reference("fwd", t)
    for rep in range(3):
        f = ways["D api/bench"]
        res.setdefault((n, "E D + ref"), []).append(2 * m * n * 2 / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100)
    del ref, t, x, w
    torch.cuda.empty_cache()
print(f"{'N':>6} {'way':>12}  % of copy (3 turns)")
for (n, k), v in res.items():
    print(f"{n:>6} {k:>12}  " + " ".join(f"{a:5.1f}" for a in v))

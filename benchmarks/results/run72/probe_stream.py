"""Run 72 (H100): the same cubin runs 3.5% faster per call (slope, probe_tail.py --slope) in a
process where torch.compile ran first. Is it the stream? Our kernels launch as programmatic
dependents (PDL); on the legacy default stream that may not overlap as on a created stream.
Times the 16K / 32K / 64K bf16 forward (and the backward at 16K) on the default stream and on
created streams, in a clean process."""
import sys
import torch
from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
cur = torch.cuda.current_stream()
print(torch.cuda.get_device_name(), "copy", round(cbw), "current stream", cur, hex(cur.cuda_stream), flush=True)
streams = {"default": torch.cuda.default_stream(), "created": torch.cuda.Stream(),
           "created-hi": torch.cuda.Stream(priority=-1)}
rows = []
for op, n in (("fwd", 16384), ("fwd", 32768), ("fwd", 65536), ("res", 65536), ("bwd", 16384), ("fwd", 4096)):
    m = 2**26 // n
    x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
    w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
    r = torch.randn_like(x) if op == "res" else None
    dy = torch.randn_like(x)
    _, _, rstd, _ = launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, True)
    torch.cuda.synchronize()
    if op == "bwd":
        f = lambda: launch.backward(dy, x, w, rstd, 0.0, None, x.dtype, None, True)  # noqa
        nbytes = 3 * x.numel() * 2
    else:
        f = lambda: launch.forward(x, w, r, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)  # noqa
        nbytes = (4 if r is not None else 2) * x.numel() * 2
    for turn in range(2):
        for name, s in streams.items():
            with torch.cuda.stream(s):
                pct = nbytes / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100
            torch.cuda.synchronize()
            rows.append((op, n, turn, name, pct))
            print(*rows[-1], flush=True)
    del x, w, r, dy, rstd
print(f"{'op':>4} {'N':>6} {'turn':>4} {'stream':>11} {'%copy':>6}")
for r_ in rows:
    print(f"{r_[0]:>4} {r_[1]:>6} {r_[2]:>4} {r_[3]:>11} {r_[4]:6.1f}")

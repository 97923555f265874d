"""Is a timing host-bound? One backward and one forward, timed three ways in one process.

    python benchmarks/host_vs_device.py

do_bench (events around each call), the bench's device clock (a batch enqueued while the GPU
sleeps) and the host's wall time per call issued back to back. Where do_bench reads well above
the device clock and near the host time, the host, not the kernels, set the figure.
"""

import time

import torch
from triton.testing import do_bench

import rmsnorm_triton as R
from rmsnorm_triton.bench import timing


def host_us(fn, calls=200):
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    host = (time.perf_counter() - t0) / calls * 1e6  # enqueue only (the queue is deep enough)
    torch.cuda.synchronize()
    return host


def main():
    dev = torch.device("cuda")
    print(f"{'case':>26} {'do_bench us':>12} {'device us':>10} {'host us':>8}")
    for n in (2048, 4096, 16384):
        m = (1 << 26) // n
        x = torch.randn(m, n, device=dev, dtype=torch.bfloat16, requires_grad=True)
        w = torch.randn(n, device=dev, dtype=torch.bfloat16, requires_grad=True)
        dy = torch.randn_like(x)
        y = R.rms_norm(x, w)
        cases = {
            f"bwd autograd N={n}": lambda: torch.autograd.grad(y, (x, w), dy, retain_graph=True),
            f"fwd N={n}": lambda: R.rms_norm(x.detach(), w.detach()),
        }
        for name, fn in cases.items():
            a = do_bench(fn, warmup=10, rep=50, return_mode="median") * 1e3
            b = timing.kernel_ms(fn, dev, 50) * 1e3
            print(f"{name:>26} {a:12.1f} {b:10.1f} {host_us(fn):8.1f}", flush=True)


if __name__ == "__main__":
    main()

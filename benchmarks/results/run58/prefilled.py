"""Run 58: a SPLIT forward call with its slots filled ahead of time (a pool of EMPTY buffers made
before the clock starts) against the library's call (torch.full before each kernel): what a
fill-free slot scheme could gain at most, with the real kernel, which waits and is right.
Clock: the bench's (a batch of calls while the GPU sleeps, events around it), alternated.
    PYTHONPATH=src python benchmarks/results/run58/prefilled.py   (GPU machine, repo root)
Ran at commit 68ad8f3: launch.empty_slots has since become launch.slots (run 59).
"""

import statistics
import sys

import torch

from rmsnorm_triton import heuristics, launch
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import max_scaled_error

dev = torch.device("cuda")
FILL = launch.empty_slots


def batch_us(f, calls=20, trials=15):
    per = []
    for _ in range(trials):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(int(3e-3 * 1.98e9))  # ~3 ms: the host enqueues the batch meanwhile
        start.record()
        for _ in range(calls):
            f()
        end.record()
        end.synchronize()
        per.append(start.elapsed_time(end) * 1e3 / calls)
    return statistics.median(per)


def main():
    print(f"{'case':>14} {'filled':>8} {'prefilled':>9} {'gain':>6}  (us a call, median of 15 x 20;"
          f" 3 alternations)")
    for dt, n, res in [(torch.bfloat16, 65536, False), (torch.bfloat16, 131072, False),
                       (torch.bfloat16, 262144, False), (torch.bfloat16, 65536, True),
                       (torch.float32, 65536, False)]:
        m = (1 << 26) // n
        x = torch.randn(m, n, device=dev, dtype=dt)
        w = (1 + 0.1 * torch.randn(n, device=dev)).to(dt)
        r = torch.randn_like(x) if res else None
        f = lambda: launch.forward(x, w, r, 1e-6, 0.0, "llama", dt, dt, False)  # noqa: E731
        chunks = -(-n // heuristics.fwd_config(n, dt, res).block_n)
        pool = []
        launch.empty_slots = lambda mm, c, d: pool.pop()
        pool += [FILL(m, chunks, dev) for _ in range(2)]
        y = f()[0]  # right with a pooled buffer too (every row checked)
        ref = rms_norm_ref(x + r if res else x, w)[0]
        err = max(max_scaled_error(y[i:i + 256], ref[i:i + 256]) for i in range(0, m, 256))
        f()
        a, b = [], []
        for _ in range(3):
            launch.empty_slots = FILL
            a.append(batch_us(f))
            pool += [FILL(m, chunks, dev) for _ in range(15 * 20 + 5)]
            torch.cuda.synchronize()
            launch.empty_slots = lambda mm, c, d: pool.pop()
            b.append(batch_us(f))
            assert not pool or len(pool) == 5, len(pool)
            pool.clear()
        launch.empty_slots = FILL
        fa, fb = statistics.median(a), statistics.median(b)
        name = f"{str(dt)[6:]} {n // 1024}K{' res' if res else ''}"
        print(f"{name:>14} {fa:8.1f} {fb:9.1f} {100 * (fa - fb) / fa:5.1f}%  err {err:.2f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Clocks: kernel time (median of many runs), copy bandwidth, latency per call (eager and graph).

On CUDA, kernel time is triton.testing.do_bench(return_mode="median"): CUDA events around each
call, L2 flushed before each one (outside the events), repeated for `rep_ms`. On the CPU (a
smoke run through Triton's interpreter) it is the wall clock, median of repeated calls.
Nothing here allocates between the start and the end of a timed call: callers pass a callable
whose inputs already exist.
"""

import statistics
import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def kernel_ms(fn, device: torch.device, rep_ms: float = 100.0) -> float:
    """Median milliseconds of one call of fn."""
    if device.type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=max(5, int(rep_ms) // 4), rep=int(rep_ms),
                                             return_mode="median"))
    fn()
    times, budget = [], time.perf_counter() + rep_ms / 1e3
    while len(times) < 3 or (time.perf_counter() < budget and len(times) < 1000):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def copy_bandwidth(device: torch.device, mib: int, rep_ms: float = 100.0):
    """Device-to-device copy of `mib` MiB of random fp32: returns (ms, bytes read + written).

    The ceiling every other number is divided by: a kernel that reads and writes each byte once
    can at best match it.
    """
    n = mib * 2**20 // 4
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    ms = kernel_ms(lambda: dst.copy_(src), device, rep_ms)
    return ms, 2 * n * 4


def eager_ms_per_call(fn, device: torch.device, calls: int = 200, trials: int = 5) -> float:
    """Wall clock per call of fn issued back to back, host overhead included.

    One synchronize after `calls` calls: the host issues them as fast as it can, so the figure is
    max(host time, device time) per call, which is what a model sees between two kernels.
    (On the CPU, where the interpreter takes milliseconds a call, 5 calls in 3 trials.)
    """
    if device.type != "cuda":
        calls, trials = min(calls, 5), min(trials, 3)
    for _ in range(min(calls, 10)):
        fn()
    sync(device)
    per = []
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        per.append((time.perf_counter() - t0) / calls)
    return statistics.median(per) * 1e3


def graph_ms_per_call(fn, calls: int = 50, replays: int = 20, trials: int = 5) -> float:
    """Per call of fn when `calls` calls are captured in one CUDA graph and the graph replayed.

    The host cost of launching disappears; what is left is the device's own time per kernel
    (launch latency between kernels included). Warm-up runs on a side stream, as capture needs.
    """
    prev = torch.cuda.current_stream()
    s = torch.cuda.Stream()
    s.wait_stream(prev)
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    prev.wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(g):
            for _ in range(calls):
                fn()
    finally:  # a capture that fails can leave its side stream current: put ours back
        torch.cuda.set_stream(prev)
    g.replay()
    torch.cuda.synchronize()
    per = []
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(replays):
            g.replay()
        torch.cuda.synchronize()
        per.append((time.perf_counter() - t0) / (replays * calls))
    del g
    return statistics.median(per) * 1e3

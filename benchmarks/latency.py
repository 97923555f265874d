"""What does one call cost on the host? rms_norm against torch's F.rms_norm, per call.

At small M an eager call is mostly the host's Python: this times back-to-back calls (wall
clock, N = 4096, bf16) of our ops and torch's own, eagerly and replayed from a CUDA graph (the
GPU's share alone), and, with --host, the host's share alone on any machine.

    python benchmarks/latency.py            eager and CUDA-graph us a call, M = 1 .. 4096 (GPU)
    python benchmarks/latency.py --wfirst   graph replay with w loaded beside x and after (GPU)
    python benchmarks/latency.py --host     the host's Python per call, Triton's launcher faked
                                            (no GPU needed: CPU tensors stand in)
    python benchmarks/latency.py --profile  where an eager call's host time goes (cProfile)
    python benchmarks/latency.py --parts    an eager call taken apart: the library's call, its
                                            launch alone, Triton's launcher object, the C
                                            launch under it, an allocation (GPU)
"""

import sys
import time
import timeit
import types

import torch
import triton

import rmsnorm_triton as R
from rmsnorm_triton import _triton, options, plan


def per_call_us(fn, calls=2000):
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / calls * 1e6


def graph_us(fn, calls=200, replays=20):
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(calls):
            fn()
    g.replay()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(replays):
        g.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / (calls * replays) * 1e6


def paths(m, n=4096, device="cuda"):
    x = torch.randn(m, n, device=device, dtype=torch.bfloat16)
    w = torch.randn(n, device=device, dtype=torch.bfloat16)
    r = torch.randn_like(x)
    xg = x.clone().requires_grad_()
    return {
        "rms_norm (no grad)": lambda: R.rms_norm(x, w),
        "F.rms_norm (torch)": lambda: torch.nn.functional.rms_norm(x, (n,), w, 1e-6),
        "rms_norm + residual": lambda: R.rms_norm(x, w, residual=r),
        "fused_add_rms_norm_": lambda: R.fused_add_rms_norm_(x, r, w),
        "rms_norm (x needs grad)": lambda: R.rms_norm(xg, w),
    }


def main(rounds=3):
    print(f"{torch.cuda.get_device_name()}, N = 4096, bf16: us a call (min of {rounds})")
    print(f"{'M':>5} {'path':>26} {'eager us':>9} {'graph us':>9}")
    for m in (1, 8, 32, 256, 4096):
        for name, fn in paths(m).items():
            eager = min(per_call_us(fn) for _ in range(rounds))
            graph = min(graph_us(fn) for _ in range(rounds)) if "grad" not in name else float("nan")
            print(f"{m:>5} {name:>26} {eager:9.2f} {graph:9.3f}", flush=True)


def wfirst(rounds=5):
    """Graph replay per call, M = 1, 8, 32, 256: W_FIRST on (options.w_first_waves = 2) and off
    (0), alternated."""
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    print(f"{'M':>5} {'w first us':>10} {'w after us':>10}  (median of {rounds}; min)")
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    for m in (1, 8, 32, 256):
        x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
        on, off = [], []
        for _ in range(rounds):
            for waves, acc in ((2, on), (0, off)):
                with options.override(w_first_waves=waves):
                    acc.append(graph_us(lambda: R.rms_norm(x, w)))
        print(f"{m:>5} {med(on):10.3f} {med(off):10.3f}  ({min(on):.3f}; {min(off):.3f})",
              flush=True)


class _Launcher:
    """A compiled kernel whose launcher does nothing: what is timed is the host's Python."""
    function, packed_metadata, n_regs = "fn", "meta", 32
    metadata = types.SimpleNamespace(shared=0)

    def __init__(self, *a):
        pass

    def _init_handles(self):
        pass

    def run(self, gridX, gridY, gridZ, stream, function, kernel_metadata, launch_metadata,
            launch_enter_hook, launch_exit_hook, *args):
        pass


def host(m=1, n=4096, rounds=7, number=2000):
    """The compiled path's host cost on CPU tensors (they stand in for CUDA ones; their
    allocation is not the caching allocator's), Triton's compile and launcher faked."""
    us = lambda fn: min(timeit.timeit(fn, number=number) for _ in range(rounds)) / number * 1e6  # noqa: E731
    with _triton.simulate(_Launcher):
        x = torch.randn(m, n, dtype=torch.bfloat16)
        w = torch.randn(n, dtype=torch.bfloat16)
        xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = R.rms_norm(xg, wg)
        dy, r = torch.randn_like(x), torch.randn_like(x)
        rstd = torch.rand(m) + 0.5
        cases = {
            "rms_norm (no grad)": lambda: R.rms_norm(x, w),
            "rms_norm (M, 1, N)": lambda: R.rms_norm(x.view(m, 1, n), w),
            "rms_norm + residual": lambda: R.rms_norm(x, w, residual=x),
            "fused_add_rms_norm_": lambda: R.fused_add_rms_norm_(x, r, w),
            "rms_norm forward (autograd)": lambda: R.rms_norm(xg, wg),
            "autograd.grad (backward)": lambda: torch.autograd.grad(y, (xg, wg), dy,
                                                                    retain_graph=True),
            "plan.backward (compile's op)": lambda: plan.backward(dy, None, x, w, rstd, 0.0,
                                                                  x.dtype, None, True),
        }
        print(f"M = {m}, N = {n}, bf16, us a call (min of {rounds} x {number}), Triton's "
              "launcher faked")
        for name, fn in cases.items():
            fn()
            print(f"{name:>29} {us(fn):7.2f}", flush=True)


def profile():
    import cProfile
    import pstats

    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    for _ in range(100):
        R.rms_norm(x, w)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(2000):
        R.rms_norm(x, w)
    pr.disable()
    torch.cuda.synchronize()
    pstats.Stats(pr).sort_stats("tottime").print_stats(12)


def parts(rounds=5, m=1, n=4096):
    """Eager us a call of each layer under R.rms_norm (M = 1, N = 4096 bf16): which of the
    library's Python, Triton's Python launcher (CudaLauncher.__call__) and its C launch the host
    time goes to, and F.rms_norm beside them."""
    x = torch.randn(m, n, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    R.rms_norm(x, w)
    p = next(v for v in plan.PLANS.values() if getattr(v, "m", None) == m)
    y = torch.empty_like(x)
    call = p.template.copy()
    ix, ir, iw, iy, ih, irs, ip = p.index[:7]
    call[ix] = call[ir] = call[ih] = call[irs] = call[ip] = x.data_ptr()
    call[iw], call[iy] = w.data_ptr(), y.data_ptr()
    k = p.launch.compiled
    stream = torch.cuda.current_stream().cuda_stream
    cases = {
        "R.rms_norm": lambda: R.rms_norm(x, w),
        "F.rms_norm": lambda: torch.nn.functional.rms_norm(x, (n,), w, 1e-6),
        "plan(x, w, None)": lambda: p(x, w, None),
        "launch.go (ours, no alloc)": lambda: p.go(p.grid, call, p.dev),
        "k.run (Triton's launcher)": lambda: k.run(p.grid, 1, 1, stream, k.function,
                                                   k.packed_metadata, None, None, None, *call),
        "torch.empty_like": lambda: torch.empty_like(x),
    }
    inner = getattr(k.run, "launch", None)
    if inner is not None and not getattr(k.run, "global_scratch_size", 1) \
            and not getattr(k.run, "profile_scratch_size", 1) \
            and hasattr(k.run, "launch_pdl"):  # the C launch, as Triton 3.6's __call__ makes it
        cases["k.run.launch (C)"] = lambda: inner(
            p.grid, 1, 1, stream, k.function, k.run.launch_cooperative_grid,
            k.run.launch_pdl, None, None, k.packed_metadata, None, None, None, *call)
    print(f"{torch.cuda.get_device_name()}, M = {m}, N = {n} bf16, triton {triton.__version__}: "
          f"eager us a call (min of {rounds}); the kernel takes {len(call)} arguments")
    for name, fn in cases.items():
        print(f"{name:>28} {min(per_call_us(fn) for _ in range(rounds)):8.2f}", flush=True)


if __name__ == "__main__":
    if "--host" in sys.argv:
        host()
    elif "--wfirst" in sys.argv:
        wfirst()
    elif "--profile" in sys.argv:
        profile()
    elif "--parts" in sys.argv:
        parts()
    else:
        main()

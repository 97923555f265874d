"""Host cost per eager call at N = 4096: the library's paths and torch's, plain and in a CUDA graph.

    python benchmarks/latency.py [--ab] [--plans]
        --ab: int addresses vs tensors to Triton's launcher (run 30)
        --plans: the eager fast path (launch._PLANS, run 36) on and off, alternated
        --eager: rms_norm's eager fast path (ops._EAGER, run 112) on and off, alternated
        --wfirst: CUDA-graph replay with w loaded beside x (launch.W_FIRST_WAVES) and after the sum
        --floor: where an eager call's time goes on this host, piece by piece (run 99)
"""

import sys
import time

import torch

import rmsnorm_triton as R
from rmsnorm_triton import launch


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


def main():
    n = 4096
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    print(f"{'M':>5} {'path':>28} {'eager us':>9} {'graph us':>9}")
    for m in (1, 8, 32, 256, 4096):
        x = torch.randn(m, n, device="cuda", dtype=torch.bfloat16)
        xg = x.clone().requires_grad_()
        paths = {
            "rms_norm (no grad)": lambda: R.rms_norm(x, w),
            "rms_norm (x needs grad)": lambda: R.rms_norm(xg, w),
            "launch.forward": lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype,
                                                     x.dtype, False),
            "custom op fwd": lambda: torch.ops.rmsnorm_triton.fwd(x, w, None, 1e-6, 0.0, "llama",
                                                                  None, None),
            "F.rms_norm": lambda: torch.nn.functional.rms_norm(x, (n,), w, 1e-6),
        }
        for name, fn in paths.items():
            print(f"{m:>5} {name:>28} {per_call_us(fn):9.2f} {graph_us(fn):9.2f}", flush=True)


def _run_with_tensors(kernel, grid, args, num_warps):
    """launch.run as it was before run 20: Triton's launcher is handed the tensors themselves."""
    grid = tuple(grid) + (1,) * (3 - len(grid))
    k = launch._prepare(kernel, args, num_warps)[0]
    stream = torch._C._cuda_getCurrentRawStream(args[0].get_device())
    k.run(grid[0], grid[1], grid[2], stream, k.function, k.packed_metadata, None, None, None, *args)


def ab(rounds=7):
    """Int addresses vs tensors handed to Triton's launcher: the same call, alternated in one
    process (the lent hosts' speed varies 2x between runs, so only an A/B in one run tells)."""
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    fn = lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)
    ints, tens, real = [], [], launch.run
    for _ in range(rounds):
        ints.append(per_call_us(fn))
        launch.run = _run_with_tensors
        try:
            tens.append(per_call_us(fn))
        finally:
            launch.run = real
    med = lambda v: sorted(v)[len(v) // 2]
    print(f"A/B launch.forward M=1 N=4096, us per call over {rounds} alternations: "
          f"addresses {med(ints):.2f} (min {min(ints):.2f}), tensors {med(tens):.2f} "
          f"(min {min(tens):.2f})")


class _NoPlans(dict):
    """launch._PLANS that never holds a plan: every call takes the full path."""

    def __setitem__(self, key, value):
        pass


def plans_ab(rounds=7):
    """rms_norm (no grad) and launch.forward with and without the replayed launch, alternated in
    one process, at M = 1, 8, 32, 256 and N = 4096."""
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    real = launch._PLANS
    print(f"{'M':>5} {'path':>16} {'plans us':>9} {'no plans':>9}  (median of {rounds}; min)")
    for m in (1, 8, 32, 256):
        x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
        for name, fn in (("rms_norm", lambda: R.rms_norm(x, w)),
                         ("launch.forward", lambda: launch.forward(
                             x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False))):
            on, off = [], []
            for _ in range(rounds):
                launch._PLANS = real
                on.append(per_call_us(fn))
                launch._PLANS = _NoPlans()
                off.append(per_call_us(fn))
            launch._PLANS = real
            med = lambda v: sorted(v)[len(v) // 2]
            print(f"{m:>5} {name:>16} {med(on):9.2f} {med(off):9.2f}  ({min(on):.2f}; "
                  f"{min(off):.2f})", flush=True)


def eager_ab(rounds=7):
    """rms_norm (no grad) and fused_add_rms_norm_ with their eager fast path (ops._EAGER: no
    checks, no views, one key) and without it (the full path, with launch's plan), alternated
    in one process, beside F.rms_norm; and the output's allocation both ways the plan can make
    it."""
    from rmsnorm_triton import ops

    n, real = 4096, ops._lookup
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    print(f"{'M':>5} {'call':>24} {'fast us':>8} {'full us':>8} {'F.rms_norm':>10}  "
          f"(median of {rounds}; min)")
    for m in (1, 8, 32, 256):
        x = torch.randn(m, n, device="cuda", dtype=torch.bfloat16)
        x3 = x.view(m, 1, n)
        r = torch.randn_like(x)
        calls = (("rms_norm (M, N)", lambda: R.rms_norm(x, w), x),
                 ("rms_norm (M, 1, N)", lambda: R.rms_norm(x3, w), x3),
                 ("rms_norm + residual", lambda: R.rms_norm(x, w, residual=r), x),
                 ("fused_add_rms_norm_", lambda: R.fused_add_rms_norm_(x, r, w), x))
        for name, fn, xin in calls:
            on, off, native = [], [], []
            for _ in range(rounds):
                ops._lookup = real
                on.append(per_call_us(fn))
                ops._lookup = lambda *a: (None, None)
                off.append(per_call_us(fn))
                native.append(per_call_us(
                    lambda: torch.nn.functional.rms_norm(xin, (n,), w, 1e-6)))
            ops._lookup = real
            print(f"{m:>5} {name:>24} {med(on):8.2f} {med(off):8.2f} {med(native):10.2f}  "
                  f"({min(on):.2f}; {min(off):.2f}; {min(native):.2f})", flush=True)
    x = torch.randn(1, n, device="cuda", dtype=torch.bfloat16)
    dev = x.device
    got = {"torch.empty(shape, dtype, device)": [], "torch.empty_like(x)": []}
    for _ in range(rounds):
        got["torch.empty(shape, dtype, device)"].append(
            per_call_us(lambda: torch.empty((1, n), dtype=x.dtype, device=dev)))
        got["torch.empty_like(x)"].append(per_call_us(lambda: torch.empty_like(x)))
    for name, v in got.items():
        print(f"{name:>36} {med(v):6.2f} us  (min {min(v):.2f})", flush=True)


def wfirst_ab(rounds=5):
    """Graph replay per call, M = 1, 8, 32, 256 at N = 4096: W_FIRST on and off, alternated."""
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    print(f"{'M':>5} {'w first us':>10} {'w after us':>10}  (median of {rounds}; min)")
    for m in (1, 8, 32, 256):
        x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
        on, off = [], []
        for _ in range(rounds):
            for waves, acc in ((2, on), (0, off)):
                launch.W_FIRST_WAVES = waves
                launch._PLANS.clear()  # a plan holds its launch's arguments
                acc.append(graph_us(lambda: R.rms_norm(x, w)))
        launch.W_FIRST_WAVES = 2
        launch._PLANS.clear()
        med = lambda v: sorted(v)[len(v) // 2]
        print(f"{m:>5} {med(on):10.3f} {med(off):10.3f}  ({min(on):.3f}; {min(off):.3f})",
              flush=True)


def floor(rounds=5):
    """Where an eager call's time goes on this host (M = 1, N = 4096, bf16), each piece alone,
    alternated: allocating the output, Triton's launcher for a no-op kernel (its floor) and for
    rms_norm_fwd's argument list (the replayed plan's launch without its allocation), torch's
    C++ launcher for Inductor's kernels (torch._inductor.runtime.static_triton_launcher: only the
    19 arguments that reach the cubin), then our calls and F.rms_norm."""
    import inspect
    import os
    import tempfile

    import triton

    @triton.jit
    def noop(X):
        pass

    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    launch._PLANS.clear()
    launch._COMPILED.clear()
    launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)
    (plan,), (k,) = launch._PLANS.values(), launch._COMPILED.values()
    env = inspect.getclosurevars(plan).nonlocals
    stream = torch._C._cuda_getCurrentRawStream(0)
    y = torch.empty_like(x)
    call = list(env["template"])
    call[3] = y.data_ptr()
    k0 = noop[(1,)](x)
    paths = {
        "torch.empty (1 x 4096)": lambda: torch.empty((1, 4096), dtype=x.dtype, device="cuda"),
        "Triton launcher, no-op": lambda: k0.run(1, 1, 1, stream, k0.function, k0.packed_metadata,
                                                 None, None, None, x.data_ptr()),
        "Triton launcher, fwd": lambda: env["launch_"](env["g0"], 1, 1, stream, env["fn"],
                                                       env["meta"], None, None, None, *call),
    }
    try:
        from torch._inductor.runtime.static_triton_launcher import StaticallyLaunchedCudaKernel

        k._cubin_path = None  # read by its constructor (Inductor sets it)
        sk = StaticallyLaunchedCudaKernel(k)
        sk.reload_cubin_from_raw(os.path.join(tempfile.mkdtemp(), "k.cubin"))
        sk.load_kernel(0)
        args = [a for i, a in enumerate(call) if i not in sk.full_constexprs]
        y2 = torch.empty_like(x)
        sargs = [y2.data_ptr() if a == y.data_ptr() else a for a in args]
        env["launch_"](env["g0"], 1, 1, stream, env["fn"], env["meta"], None, None, None, *call)
        sk.run(env["g0"], 1, 1, stream, *sargs)
        torch.cuda.synchronize()
        print(f"static launcher: {len(args)} arguments ({sk.arg_tys}), same bits as Triton's "
              f"launcher: {torch.equal(y, y2)}")
        paths["torch static launcher, fwd"] = lambda: sk.run(env["g0"], 1, 1, stream, *args)
    except Exception as e:  # a private torch API: report, go on
        print(f"torch's static launcher unusable here: {type(e).__name__}: {e}")
    paths.update({
        "launch.forward (plan)": lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype,
                                                        x.dtype, False),
        "rms_norm": lambda: R.rms_norm(x, w),
        "F.rms_norm": lambda: torch.nn.functional.rms_norm(x, (4096,), w, 1e-6),
    })
    got = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            got[name].append(per_call_us(fn))
    print(f"{'path (M = 1, N = 4096, bf16)':>30} {'us a call':>9}  (median of {rounds}; min)")
    for name, v in got.items():
        print(f"{name:>30} {sorted(v)[len(v) // 2]:9.2f}  ({min(v):.2f})", flush=True)


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


if __name__ == "__main__":
    if "--ab" in sys.argv:
        ab()
    elif "--plans" in sys.argv:
        plans_ab()
    elif "--eager" in sys.argv:
        eager_ab()
    elif "--wfirst" in sys.argv:
        wfirst_ab()
    elif "--floor" in sys.argv:
        floor()
    else:
        main()
        profile()

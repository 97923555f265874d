"""The host's Python per call, on any machine: Triton's launcher faked (it does nothing), so what
is timed is ours (checks, keys, allocation, argument lists) and autograd's, not the GPU's.

    python benchmarks/host_cpu.py [--m 1] [--n 4096] [--full]

--full: beside it, alternated, the code as it was before items 88-89 of NOTES.md (no
ops._EAGER, no backward or in-place plans; launch's other forward plans, older, stay on).
CPU tensors stand in for CUDA ones (their allocation is not the caching allocator's).
"""

import argparse
import timeit

import torch
import triton

from rmsnorm_triton import fused_add_rms_norm_, heuristics, kernels, launch, ops, rms_norm


class _Launcher:
    function, packed_metadata, n_regs = "fn", "meta", 32

    def _init_handles(self):
        pass

    def run(self, *args):
        pass


def fake_gpu():
    """A GPU process's launch path on CPU tensors, with nothing launched."""
    launch.INTERPRETED = False
    launch.interpreted = lambda: True  # CPU tensors pass the checks
    kernels.LOOP_ERROR = None
    torch.cuda.current_device = lambda: -1  # what a CPU tensor's get_device() reports
    torch._C._cuda_getCurrentRawStream = lambda dev: 0
    heuristics.num_programs = lambda dev, cfg: 132 * cfg.progs_per_sm
    for k in (kernels.rms_norm_fwd, kernels.rms_norm_bwd, kernels.dw_reduce):
        k.params = triton.runtime.jit.JITFunction(k.fn).params
        k.warmup = lambda *a, grid, num_warps, **o: _Launcher()


def us(fn, number=2000):
    return timeit.timeit(fn, number=number) / number * 1e6


def before(fn):
    """fn as the code before items 88-89 of NOTES.md ran it: no ops._EAGER, no backward plans,
    no in-place forward plans (launch's other forward plans, older, stay on)."""
    def call():
        saved = ops._lookup, launch._BWD_PLANS, launch._PLANS
        ops._lookup = lambda *args: (None, None)
        launch._BWD_PLANS, launch._PLANS = _Never(), _OLD_PLANS
        try:
            return fn()
        finally:
            ops._lookup, launch._BWD_PLANS, launch._PLANS = saved
    return call


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--m", type=int, default=1)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--full", action="store_true")
    a = p.parse_args()
    fake_gpu()
    x = torch.randn(a.m, a.n, dtype=torch.bfloat16)
    w = torch.randn(a.n, dtype=torch.bfloat16)
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = rms_norm(xg, wg)
    dy, r = torch.randn_like(x), torch.randn_like(x)
    rstd = torch.rand(a.m) + 0.5
    cases = {
        "rms_norm (no grad)": lambda: rms_norm(x, w),
        "rms_norm (M, 1, N)": lambda: rms_norm(x.view(a.m, 1, a.n), w),
        "rms_norm + residual": lambda: rms_norm(x, w, residual=x),
        "fused_add_rms_norm_": lambda: fused_add_rms_norm_(x, r, w),
        "rms_norm forward (autograd)": lambda: rms_norm(xg, wg),
        "autograd.grad (backward)": lambda: torch.autograd.grad(y, (xg, wg), dy,
                                                                retain_graph=True),
        "launch.backward": lambda: launch.backward(dy, x, w, rstd, 0.0, None, x.dtype, None, True),
    }
    print(f"M = {a.m}, N = {a.n}, bf16, us a call (min of 7 x 2000"
          f"{', alternated with the code before' if a.full else ''}), Triton's launcher faked")
    for name, fn in cases.items():
        fns = [fn, before(fn)] if a.full else [fn]
        for f in fns:
            f()
        got = [[us(f) for f in fns] for _ in range(7)]
        line = f"{name:>28} {min(g[0] for g in got):7.2f}"
        if a.full:
            line += f"   before {min(g[1] for g in got):7.2f}"
        print(line, flush=True)


class _Never(dict):
    """A plan dict that keeps nothing: every call takes the full path."""

    def __setitem__(self, key, value):
        pass


class _NotInPlace(dict):
    """launch's forward plans as they were: none for a call written in place (key's last)."""

    def __setitem__(self, key, value):
        if not key[-1]:
            super().__setitem__(key, value)


_OLD_PLANS = _NotInPlace()


if __name__ == "__main__":
    main()

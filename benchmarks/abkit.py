"""What the A/B scripts under benchmarks/results/run*/ share: a kernels module with a change
patched in, the copy bandwidth of the run, and a timing as % of it.

    sys.path.insert(0, <this folder>); import abkit
    K = abkit.patched_kernels([(old, new), ...], "k_variant")   # abkit.use(K) to launch it
    cbw = abkit.copy_gbs(dev)                                    # prints the GPU and torch
    abkit.pct([fn_a, fn_b], nbytes, dev, cbw)                    # inputs alternated per call
    for x, w, r in abkit.input_sets(dt, n, dev, residual=True): ...  # M = 2^26 / N, two sets
"""

import importlib.util
import os
import sys
import tempfile

import torch

from rmsnorm_triton import kernels
from rmsnorm_triton.bench.harness import alternate
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms


def patched_kernels(patches, name):
    """kernels.py with each (old, new) replaced, loaded as module `name`. Each old text must
    stand exactly once, so a script fails loudly when kernels.py has moved on under it."""
    src = open(kernels.__file__).read()
    for old, new in patches:
        assert src.count(old) == 1, f"kernels.py changed: update the patch ({old.strip()[:50]!r})"
        src = src.replace(old, new)
    path = os.path.join(tempfile.mkdtemp(), f"{name}.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # Triton resolves the kernel's globals through it
    spec.loader.exec_module(mod)
    return mod


def use(mod):
    """Launch mod's kernels from now on, forgetting the launches replayed with another's
    (launch's forward and backward plans hold the compiled kernel they were made with)."""
    from rmsnorm_triton import launch, ops

    launch.K = mod
    launch._PLANS.clear()
    launch._BWD_PLANS.clear()
    ops._EAGER.clear()


def input_sets(dt, n, dev, residual=False, sets=2):
    """`sets` sets of (x, w, r) at the bench's size (M * N = 2^26): random x (and r, else None),
    w around 1."""
    m = 2**26 // n
    out = []
    for _ in range(sets):
        x = torch.randn(m, n, device=dev, dtype=dt)
        w = (1 + 0.5 * torch.randn(n, device=dev)).to(dt)
        out.append((x, w, torch.randn_like(x) if residual else None))
    return out


def copy_gbs(dev, mib=512):
    """The device's copy bandwidth (bytes read + written per second, GB/s), printed."""
    c_ms, c_bytes = copy_bandwidth(dev, mib)
    cbw = c_bytes / c_ms / 1e6
    print(torch.cuda.get_device_name(), torch.__version__, "copy GB/s", round(cbw), flush=True)
    return cbw


def pct(fns, nbytes, dev, cbw, rep_ms=30.0):
    """% of the copy bandwidth for moving nbytes, the callables (one per input set) alternated."""
    return nbytes / kernel_ms(alternate(*fns), dev, rep_ms) / 1e6 / cbw * 100

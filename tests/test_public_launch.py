"""The one door to Triton (_triton.py): its fast path calls Triton's private launcher; where the
installed Triton's launcher takes other arguments, or options.launcher is "public", it launches
through the public kernel[grid](**named_args) and says so once. Both give the same bits.

On the CPU both run the real kernels through Triton's interpreter: the fast path behind a faked
launcher that interprets the kernel it is handed (test_eager's), the public one directly."""

import warnings

import pytest
import torch

from rmsnorm_triton import _triton, fused_add_rms_norm_, options, rms_norm
from test_eager import interpreted_plans  # noqa: F401 - fixture


class _OtherLauncher:
    """A compiled kernel whose launcher takes other arguments (as another Triton's may)."""
    function, packed_metadata, n_regs = "fn", "meta", 32

    def __init__(self, *a):
        pass

    def _init_handles(self):
        pass

    def run(self, grid, stream, *args):  # noqa: ARG002 - never called
        raise AssertionError("the mismatched launcher was called")


def _calls(g, kind):
    """rms_norm / its gradients / fused_add_rms_norm_ outputs for fixed inputs, twice each (the
    second call replays its plan)."""
    out = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(5)
        x = torch.randn(3, 40, generator=gen).to(torch.bfloat16)
        w = (1 + 0.3 * torch.randn(40, generator=gen)).to(torch.bfloat16)
        r = torch.randn(3, 40, generator=gen).to(torch.bfloat16)
        for t in (x, w, r):
            g[t.data_ptr()] = t
        if kind == "forward":
            out += list(rms_norm(x, w, residual=r))
        elif kind == "backward":
            x.requires_grad_()
            w.requires_grad_()
            y = rms_norm(x, w)
            dy = torch.randn(3, 40, generator=gen).to(torch.bfloat16)
            g[dy.data_ptr()] = dy
            out += [y.detach(), *torch.autograd.grad(y, (x, w), dy)]
        else:
            out += list(fused_add_rms_norm_(x, r, w))
    return out


def _ours(seen):
    """The library's warnings among those recorded (Triton 3.6's interpreter adds NumPy's
    DeprecationWarning for a one-element index array, in its own code)."""
    return [w for w in seen if "rmsnorm_triton" in str(w.message)]


@pytest.mark.parametrize("kind", ["forward", "backward", "in place"])
@pytest.mark.parametrize("how", ["options", "mismatch"])
def test_the_public_launch_gives_the_fast_paths_bits(interpreted_plans, kind, how):  # noqa: F811
    fast = _calls(interpreted_plans, kind)
    assert interpreted_plans["fast launches"] >= 2, "the fast path ran"
    interpreted_plans["fast launches"] = 0
    if how == "options":
        with options.override(launcher="public"), warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            public = _calls(interpreted_plans, kind)
        assert not _ours(seen), "asked for: no warning"
    else:
        _triton._WARNED.clear()
        with _triton.simulate(_OtherLauncher), pytest.warns(RuntimeWarning) as seen:
            public = _calls(interpreted_plans, kind)
        seen = _ours(seen)
        assert len(seen) == 1, "said once"
        assert f"Triton {__import__('triton').__version__}" in str(seen[0].message)
        assert "kernel[grid](...)" in str(seen[0].message)
    assert interpreted_plans["fast launches"] == 0, "the public launch ran, not the fast one"
    interpreted_plans["fast launches"] = 1  # (for the fixture's own check)
    assert len(fast) == len(public)
    for a, b in zip(fast, public):
        assert a.dtype == b.dtype and not a.isnan().any() and torch.equal(a, b)


class _Triton36Launcher(_OtherLauncher):
    """Triton 3.6's launcher: the first five arguments named, the rest (metadata, hooks, the
    kernel's arguments) taken as *args: the same call."""

    def run(self, gridX, gridY, gridZ, stream, function, *args):  # noqa: N803
        pass


def test_the_launchers_convention_is_checked():
    from test_launch import FakeCompiled

    _triton._WARNED.append(True)  # (quiet: the warning is test_the_public_launch's)
    try:
        assert _triton.fast_launcher(FakeCompiled())  # Triton 3.9's
        assert _triton.fast_launcher(_Triton36Launcher())
        assert not _triton.fast_launcher(_OtherLauncher())
        assert not _triton.fast_launcher(object())
    finally:
        _triton._WARNED.pop()

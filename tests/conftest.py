"""Fixtures and checks shared by the kernel tests.

Every test runs on the CPU through Triton's interpreter and, when a GPU is present, on CUDA too
(the `device` fixture). Tolerances come from the one table, rmsnorm_triton.testing.TOLERANCE.
"""

import contextlib
import os
import zlib

import pytest
import torch

import rmsnorm_triton
from rmsnorm_triton import tables
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import TOLERANCE

# "cpu" whenever this process runs Triton's interpreter: always on a machine without CUDA (the
# package switches it on itself). A process that runs Triton compiled for the GPU cannot run CPU
# tensors at all (test_errors.py checks the error it gives), so there the CPU copies drop out.
DEVICES = (["cpu"] if rmsnorm_triton.interpreted() else []) + (
    ["cuda"] if torch.cuda.is_available() else [])

HALF = (torch.float16, torch.bfloat16)
FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _first_looping(config):
    """The shortest row of the form 2^k + 1 that every dtype walks in blocks (not one pass)."""
    return next(n for n in (2**k + 1 for k in range(10, 22))
                if not any(config(n, d).one_pass for d in FLOATS))


# Rows just past the one-pass limit of the forward and of the backward (tables.py):
# the looping path at the least interpreter time.
LONG_FWD = _first_looping(tables.fwd_config)
LONG_BWD = _first_looping(tables.bwd_config)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture
def gen(request):
    """A CPU generator seeded from the test's id: random data, the same on every run.
    RMSNORM_TEST_SEED=<int> draws other data (to shake out bounds that hold by luck)."""
    salt = os.environ.get("RMSNORM_TEST_SEED", "")
    return torch.Generator().manual_seed(zlib.crc32((salt + request.node.nodeid).encode()))


def randn(shape, dtype, device, gen, scale=1.0):
    """Normal random values (never zeros), drawn in float64 on the CPU, then cast and moved."""
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype).to(device)


# ---- poisoned allocations ---------------------------------------------------------------------
@contextlib.contextmanager
def poisoned_empty():
    """torch.empty and torch.empty_like hand out NaN-filled floating tensors while active.

    The launchers allocate every output with them, so an element a kernel never writes reads as
    NaN (a comparison with a NaN-free reference fails) instead of as leftover memory that may
    happen to look right.
    """
    real_empty, real_like = torch.empty, torch.empty_like

    def poison(t):
        if t.is_floating_point() and not t.requires_grad and t.device.type != "meta":
            t.fill_(float("nan"))
        return t

    torch.empty = lambda *a, **k: poison(real_empty(*a, **k))
    torch.empty_like = lambda *a, **k: poison(real_like(*a, **k))
    try:
        yield
    finally:
        torch.empty, torch.empty_like = real_empty, real_like


@pytest.fixture
def poison():
    with poisoned_empty():
        yield


# ---- comparisons ------------------------------------------------------------------------------
def tol_dtype(*dtypes):
    """The least precise of the dtypes a result was rounded to: its row of the table applies."""
    return max(dtypes, key=lambda d: TOLERANCE[d][0])


def assert_grad_close(out, ref, mag, dtype=None, what="gradient"):
    """|out - ref| <= rel * (|ref| + mag) + abs elementwise, (rel, abs) = TOLERANCE[dtype].

    A gradient element is a difference of terms (dx = rstd * (w*dy - x_hat * c1), dw a sum over
    rows) that can cancel to near zero, where no elementwise relative bound holds for any fp32
    kernel. `mag` is the float64 size of those terms: the kernel's fp32 arithmetic errs by a few
    2^-24 * mag, the final rounding by u * |ref|; rel (1e-5 ~ 84 * 2^-24 for fp32, 2u for 16-bit)
    covers both.
    """
    dtype = dtype or out.dtype
    rel, abs_ = TOLERANCE[dtype]
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    o, r, m = out.double().cpu(), ref.double().cpu(), mag.double().cpu()
    err = (o - r).abs() / (rel * (r.abs() + m) + abs_)
    err = torch.nan_to_num(err, nan=float("inf"))
    worst = err.max().item() if err.numel() else 0.0
    assert worst <= 1.0, f"{what}: error {worst:.3g}x the {dtype} tolerance"


def reference_grads(h, weight, dy, dh=None, eps=1e-6, offset=0.0):
    """float64 autograd of rms_norm_ref at the normalized input h (x, or x + residual as rounded
    to h's dtype). Returns (dh_total, dw, mag_dh, mag_dw); dh_total includes dh, the gradient
    that reached h directly; dw is None without a weight."""
    h64 = h.detach().double().cpu().requires_grad_()
    w64 = weight.detach().double().cpu().requires_grad_() if weight is not None else None
    y64, _ = rms_norm_ref(h64, w64, eps, offset=offset)
    dy64 = dy.double().cpu()
    loss = (y64 * dy64).sum()
    if dh is not None:
        loss = loss + (h64 * dh.double().cpu()).sum()
    grads = torch.autograd.grad(loss, [h64] + ([w64] if w64 is not None else []))
    with torch.no_grad():
        n = h64.shape[-1]
        rstd = torch.rsqrt(h64.pow(2).mean(-1, keepdim=True) + eps)
        x_hat = h64 * rstd
        wdy = dy64 * ((offset + w64) if w64 is not None else 1.0)
        c1_mag = (x_hat * wdy).abs().sum(-1, keepdim=True) / n
        mag_dh = rstd * (wdy.abs() + x_hat.abs() * c1_mag)
        if dh is not None:
            mag_dh = mag_dh + dh.double().cpu().abs()
        mag_dw = (dy64 * x_hat).abs().reshape(-1, n).sum(0) if w64 is not None else None
    return grads[0], (grads[1] if w64 is not None else None), mag_dh, mag_dw


# (mantissa bits, smallest normal exponent)
_FORMAT = {torch.float16: (10, -14), torch.bfloat16: (7, -126), torch.float32: (23, -126)}


def ulps(out, ref, dtype):
    """|out - ref| in units in the last place of `dtype` at ref's magnitude, elementwise.

    NaN against NaN and equal infinities count 0; any other NaN counts inf.
    """
    p, emin = _FORMAT[dtype]
    o, r = out.double().cpu(), ref.double().cpu()
    e = torch.floor(torch.log2(r.abs())).clamp(min=emin)
    d = (o - r).abs() / torch.exp2(e - p)
    same = (o.isnan() & r.isnan()) | (o.isinf() & (o == r))
    return torch.nan_to_num(torch.where(same, torch.zeros_like(d), d), nan=float("inf"))


def shares_memory(a, b) -> bool:
    """True when a and b live in one storage (a view of the other, or of one common tensor)."""
    if a is None or b is None or a.numel() == 0 or b.numel() == 0:
        return False
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()

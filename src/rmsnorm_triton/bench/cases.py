"""One case of the bench: its inputs, the bytes it must move, its float64 reference, the check.

Bytes are the fewest a kernel must move (each tensor read or written once; weights in x's dtype):
    fwd           x, w read; y written                   (2 MN + N) * size
    bwd           x, dy, w read; dx, dw written          (3 MN + 2N) * size
    fwd_residual  x, r, w read; y, h written             (4 MN + N) * size
    fp8_*         bench/fp8.py
(The latency runs are forwards.) rstd, which a backward may read, is left out: it can be
recomputed, so it is not a byte the job must move.
"""

import torch

from ..testing import max_scaled_error
from . import fp8

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
EPS = 1e-6
# A result more than this many times the dtype's tolerance is wrong: reported, not timed.
# Rounding differences between correct formulas stay below 2x (a residual added in the input
# dtype before the norm adds one rounding: 1.5x); a real bug is off by 100x or more.
WRONG_AT = 4.0


# op: (M x N tensors, N-vectors) each read or written once
MOVED = {"fwd": (2, 1), "bwd": (3, 2), "fwd_residual": (4, 1), "latency": (2, 1),
         "latency_graph": (2, 1)}
# latency kinds: the op each one times (FP8: bench/fp8.py counts its bytes)
LATENCY = {"latency": "fwd", "latency_graph": "fwd", "fp8_latency": "fp8_token",
           "fp8_latency_graph": "fp8_token"}


def min_bytes(op: str, m: int, n: int, dtype: torch.dtype) -> int:
    if op.startswith("fp8"):
        return fp8.min_bytes(LATENCY.get(op, op), m, n, dtype)
    tensors, vectors = MOVED[op]
    return (tensors * m * n + vectors * n) * torch.empty((), dtype=dtype).element_size()


def make_inputs(op, m, n, dtype, device, seed):
    """x, w (and r for fwd_residual, dy for bwd) on the device, in dtype: x, r, dy ~ N(0, 1),
    w ~ 1 + 0.5 N(0, 1). Random, never zeros: on zeros, a kernel that writes nothing would pass
    the check."""
    g = torch.Generator(device=device).manual_seed(seed * 1_000_003 + m * 7919 + n)
    rnd = lambda *shape: torch.randn(*shape, generator=g, device=device, dtype=dtype)  # noqa: E731
    t = {"x": rnd(m, n), "w": 1 + 0.5 * rnd(n)}
    if op == "fwd_residual" or op.startswith("fp8") and op.endswith("_residual"):
        t["r"] = rnd(m, n)
    if op == "bwd":
        t["dy"] = rnd(m, n)
    return t


def reference(op, t) -> dict:
    """float64 results for the inputs t, computed on their device (reference.rms_norm_ref)."""
    from ..reference import rms_norm_ref

    if op.startswith("fp8"):
        return fp8.reference(op, t)
    if op == "bwd":
        x = t["x"].double().requires_grad_(True)
        w = t["w"].double().requires_grad_(True)
        y, _ = rms_norm_ref(x, w, EPS)
        dx, dw = torch.autograd.grad(y, (x, w), t["dy"].double())
        return {"dx": dx, "dw": dw}
    with torch.no_grad():
        y, h = rms_norm_ref(t["x"], t["w"], EPS, residual=t.get("r"))
    return {"y": y, "h": h} if op == "fwd_residual" else {"y": y}


def check(op, out, ref, t) -> float:
    """The largest scaled error over a provider's outputs, after checking their dtypes."""
    if op.startswith("fp8"):
        return fp8.check(op, out, ref, t)
    names = {"fwd": ("y",), "latency": ("y",), "fwd_residual": ("y", "h"), "bwd": ("dx", "dw")}[op]
    outs = (out,) if len(names) == 1 else tuple(out)
    if len(outs) != len(names):
        raise AssertionError(f"returned {len(outs)} tensors, expected {len(names)} ({names})")
    err = 0.0
    for name, o in zip(names, outs):
        like = t["w"] if name == "dw" else t["x"]
        if o.dtype != like.dtype:
            raise AssertionError(f"{name} has dtype {o.dtype}, expected {like.dtype}")
        err = max(err, max_scaled_error(o, ref[name], like.dtype, grad=op == "bwd"))
    return err

"""The bench's FP8 cells (issue 24): RMSNorm (+ residual) with its output quantized to FP8.

    fp8_<mode>[_residual]   mode: static, token, group (G = 128); e4m3fn, eps = 1e-6, Llama
    fp8_latency             per call, fp8_token at --latency-n, eager and in a CUDA graph

Bytes, the fewest a kernel must move (size: x's element size; G = 128):
    read x, w; write q (1 byte an element) and the scales    size (MN + N) + MN + scales
    with a residual: read r, write h too                      + 2 size MN
    scales: static 4 (read), token 4 M, group 4 M N / G
Providers (besides this library's rms_norm_fp8, providers.RmsnormTriton):
    fp8_unfused        rms_norm (this library), then torch's quantization (reference.py)
    fp8_torch_compile  torch.compile of the unfused formula in torch (llama_rms_norm + quantize)
    flashinfer         flashinfer.norm's rmsnorm_quant / fused_add_rmsnorm_quant (static only)
A result is checked dequantized: |q s - y| within FP8's rounding of y (see check).
"""

import torch

from ..reference import llama_rms_norm, quantize_fp8_ref, rms_norm_ref

MODES = ("static", "token", "group")
OPS = tuple(f"fp8_{m}{r}" for m in MODES for r in ("", "_residual"))
GROUP = 128
# The static scale: a power of two (1/s exact, as a calibrated model's might not be) large
# enough that nothing saturates: 2^26 elements of N(0, 1) stay below ~6 and w ~ 1 + 0.5 N(0, 1)
# below ~3.2, so |y| / s < 20 * 16 = 320 < 448 (a saturated element would fail the check)
STATIC_SCALE = 1 / 16
FP8 = torch.float8_e4m3fn


def parse(op):
    """(mode, residual) of an FP8 op name."""
    body = op[len("fp8_"):]
    return body.removesuffix("_residual"), body.endswith("_residual")


def min_bytes(op, m, n, dtype):
    mode, residual = parse(op)
    size = torch.empty((), dtype=dtype).element_size()
    scales = {"static": 4, "token": 4 * m, "group": 4 * m * (n // GROUP)}[mode]
    return size * (m * n + n) + m * n + scales + (2 * size * m * n if residual else 0)


def reference(op, t):
    with torch.no_grad():
        y, h = rms_norm_ref(t["x"], t["w"], 1e-6, residual=t.get("r"))
    return {"y": y, "h": h}


def check(op, out, ref, t):
    """The largest error of q s against the float64 y, in units of what FP8 rounding allows:
    half an e4m3 ulp (2^-4 |y|), y's own rounding to x's dtype (2^-7 |y| in bf16), and half the
    smallest subnormal step (2^-10 s); with a residual, h as the forward's check has it."""
    from ..testing import max_scaled_error

    mode, residual = parse(op)
    q, s = out[0], out[1]
    if q.dtype != FP8:
        raise AssertionError(f"q has dtype {q.dtype}, expected {FP8}")
    y = ref["y"]
    if mode == "group":
        s = s.repeat_interleave(GROUP, dim=-1)
    deq = q.double() * s.double()
    bound = (2.0**-4 + 2.0**-7) * y.abs() + 2.0**-10 * s.double()
    err = ((deq - y).abs() / bound).max().item()
    if residual:
        err = max(err, max_scaled_error(out[2], ref["h"], t["x"].dtype))
    return err


def scale_arg(mode, device):
    return torch.tensor([STATIC_SCALE], device=device) if mode == "static" else mode


class _Fp8:
    """What the FP8 providers share: prepare() for the FP8 ops."""

    ops = OPS

    def prepare(self, op, x, w, eps, r=None, dy=None):
        mode, residual = parse(op)
        scale = scale_arg(mode, x.device)
        if residual:
            return lambda: self.fp8(mode, x, w, eps, r, scale)
        return lambda: self.fp8(mode, x, w, eps, None, scale)


class Unfused(_Fp8):
    name = "fp8_unfused"

    def load(self):
        from .. import rms_norm

        self._f = rms_norm

    def setup(self):
        pass

    def fp8(self, mode, x, w, eps, r, scale):
        if r is None:
            return quantize_fp8_ref(self._f(x, w, eps), scale, GROUP)
        y, h = self._f(x, w, eps, residual=r)
        return (*quantize_fp8_ref(y, scale, GROUP), h)


def _unfused_torch(x, w, eps, r, scale, group):
    h = x if r is None else x + r
    q, s = quantize_fp8_ref(llama_rms_norm(h, w, eps), scale, group)
    return (q, s) if r is None else (q, s, h)


class TorchCompile(_Fp8):
    """torch.compile of the unfused formula, one graph a shape (dynamic=False, reset per cell)."""

    name = "fp8_torch_compile"

    def load(self):
        self._f = torch.compile(_unfused_torch, dynamic=False)

    def setup(self):
        torch._dynamo.reset()

    def fp8(self, mode, x, w, eps, r, scale):
        return self._f(x, w, eps, r, scale, GROUP)


class FlashInfer(_Fp8):
    """FlashInfer's norm kernels with a static scale (the modes it has): out = fp8(y / s)."""

    name = "flashinfer"
    ops = ("fp8_static", "fp8_static_residual")

    def load(self):
        from flashinfer.norm import fused_add_rmsnorm_quant, rmsnorm_quant

        self._f, self._fr = rmsnorm_quant, fused_add_rmsnorm_quant

    def setup(self):
        pass

    def prepare(self, op, x, w, eps, r=None, dy=None):
        """FlashInfer adds the residual in place: each prepared call gets its own copy of r,
        made here, outside the timed region. The check sees the first call's h = x + r; later
        calls keep adding x to it, which changes nothing a GPU does per element."""
        return super().prepare(op, x, w, eps, r.clone() if r is not None else None, dy)

    def fp8(self, mode, x, w, eps, r, scale):
        q = torch.empty(x.shape, dtype=FP8, device=x.device)
        if r is None:
            self._f(q, x, w, scale, eps)
            return q, scale
        self._fr(q, x, r, w, scale, eps)
        return q, scale, r


ALL = (Unfused, TorchCompile, FlashInfer)

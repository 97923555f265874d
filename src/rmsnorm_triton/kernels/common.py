"""Pieces every kernel shares: rounding, the weight's application, the row's statistics, PDL.

Per row of N elements (every sum in ACC: fp32, or fp64 for fp64 inputs):
    h     = x + r                       only with a residual; rounded to h's dtype, as torch does
    ms    = sum(h_i^2) / N
    rstd  = 1 / sqrt(ms + eps)          mean_rstd: correctly rounded, no approximate sqrt
    x_hat = h * rstd
    y     = x_hat * (offset + w)        apply_weight; CASTING decides where values are rounded

The interpreter probes below run once at import: they decide how `cast` rounds bf16 under
Triton's interpreter, and whether that interpreter can run the kernels' loops at all.
"""

import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

CAST_NONE, CAST_LLAMA, CAST_GEMMA = 0, 1, 2


def _interpreter_truncates_bf16() -> bool:
    """Triton's interpreter (3.9 and earlier) truncates fp32 -> bf16 where the GPU rounds to
    nearest even. Probed once at import, so a fixed Triton turns the workaround off by itself."""
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(_probe, InterpretedFunction):
        return False
    import torch

    x = torch.tensor([1.0 + 2.0**-8 + 2.0**-12])  # nearest bf16 is 1 + 2^-7
    y = torch.empty(1, dtype=torch.bfloat16)
    _probe[(1,)](x, y)
    return y.item() != x.bfloat16().item()


@triton.jit
def _probe(X, Y):
    tl.store(Y, tl.load(X).to(tl.bfloat16))


FIX_BF16 = tl.constexpr(_interpreter_truncates_bf16())


@triton.jit
def _loop_probe(Y, n):
    acc = 0
    for _ in range(0, n):
        acc += 1
    tl.store(Y, acc)


def interpreter_loop_error():
    """None where Triton's interpreter (if this process runs it) can loop over a runtime bound,
    else what it raised. Triton 3.6's interpreter cannot under NumPy 2.4 (it calls int() on a
    one-element array; NumPy 2.2 is fine); 3.9's can. Every kernel here loops."""
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(_loop_probe, InterpretedFunction):
        return None
    import torch

    y = torch.zeros(1, dtype=torch.int32)
    try:
        _loop_probe[(1,)](y, 3)
    except Exception as e:  # noqa: BLE001 - whatever the interpreter raises is the answer
        return e
    return None if y.item() == 3 else RuntimeError(f"a loop of 3 counted {y.item()}")


LOOP_ERROR = interpreter_loop_error()


@triton.jit
def dependent_launch(PDL: tl.constexpr):
    """PDL (Hopper on, options.pdl): the kernel was launched as a programmatic dependent
    of the stream's previous one. Its programs may be on their SMs before that kernel is done;
    they wait here, before any load or store, until it has finished and its writes are visible.
    The next kernel (if launched the same way) may start as soon as every program of this one has
    begun: its launch overlaps this kernel's last programs instead of following them."""
    if PDL:
        gdc_launch_dependents()
        gdc_wait()


@triton.jit
def cast(x, TY: tl.constexpr):
    """x.to(TY), rounding to nearest even also under the interpreter (see FIX_BF16)."""
    if FIX_BF16 and TY == tl.bfloat16:
        bits = x.to(tl.float32).to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        r = tl.where(x == x, bits.to(tl.float32, bitcast=True), x.to(tl.float32))  # NaN stays
        return r.to(TY)  # exact now: the low 16 bits are zero
    return x.to(TY)


@triton.jit
def apply_weight(h, rstd, w, offset, CASTING: tl.constexpr, IN_TY: tl.constexpr, ACC: tl.constexpr):
    """y = x_hat * (offset + w) in ACC (fp32), rounded where each casting mode rounds.

    Llama's product of two 16-bit values is exact in fp32 and then rounded once to y's dtype: a
    multiply in that dtype (round to nearest even) gives the same bits. SPLIT and long one-pass
    rows take that way (W_NATIVE, native_product) where the offset is 0 and x, w and y share
    the dtype: w then stays packed, two values a register, instead of 32 hoisted fp32 values of
    offset + w that bf16's long-row code spilled, and the one-pass epilogue loses its
    widen-multiply-round trips. (Zeros' signs follow w * x_hat, as Hugging Face's do.)"""
    if CASTING == 1:  # Llama: x_hat cast to the input dtype, then times the weight
        return cast(h * rstd, IN_TY).to(ACC) * (offset + w)
    elif CASTING == 2:  # Gemma: all fp32, cast once at the end
        return h * rstd * (offset + w)
    else:  # none: rstd, x_hat and (offset + w) each in the input dtype
        r = cast(rstd, IN_TY).to(ACC)
        x_hat = cast(h * r, IN_TY).to(ACC)
        return x_hat * cast(offset + w, IN_TY).to(ACC)


@triton.jit
def native_product(x_hat, w, IN_TY: tl.constexpr):
    """Llama's x_hat * w multiplied in their 16-bit dtype (W_NATIVE; see apply_weight). Under
    an interpreter that truncates bf16 (FIX_BF16) the exact fp32 product is rounded instead."""
    if FIX_BF16 and IN_TY == tl.bfloat16:
        return cast(x_hat.to(tl.float32) * w.to(tl.float32), IN_TY)
    return x_hat * w


@triton.jit
def mean_rstd(ss, N, eps, ACC: tl.constexpr):
    """ms = ss / N and rstd = 1 / sqrt(ms + eps), correctly rounded (no approximate sqrt)."""
    if ACC == tl.float64:
        ms = ss / N
        return ms, 1.0 / tl.sqrt(ms + eps)
    else:
        ms = tl.div_rn(ss, N + tl.zeros_like(ss))  # (N may be the constant 1 on a GPU)
        return ms, tl.div_rn(1.0, tl.sqrt_rn(ms + eps))


@triton.jit
def to_h(x, r, H, h_off, cols, mask, HAS_R: tl.constexpr, ACC: tl.constexpr):
    """x (+ r, storing h) as ACC; h is rounded to H's dtype first, as torch's add does."""
    if HAS_R:
        h = cast(x.to(ACC) + r.to(ACC), H.dtype.element_ty)
        tl.store(H + h_off + cols, h, mask=mask)
        return h.to(ACC)
    return x.to(ACC)


@triton.jit
def load_h(X, R, H, x_off, r_off, h_off, cols, mask, HAS_R: tl.constexpr, ACC: tl.constexpr):
    """Loads x (and r) at these columns and returns h as ACC (to_h)."""
    x = tl.load(X + x_off + cols, mask=mask, other=0.0)
    r = tl.load(R + r_off + cols, mask=mask, other=0.0) if HAS_R else x
    return to_h(x, r, H, h_off, cols, mask, HAS_R, ACC)


@triton.jit
def row_start(rows64, stride, outer, HEADS, HEAD_ROWS: tl.constexpr):
    """Offset of each row's first element: rows * stride, or (HEAD_ROWS: rows of a [T, H, D]
    view with two strides, e.g. q or k inside a fused qkv tensor) (r // H) * outer + (r % H) *
    stride. A tensor whose rows are one stride s apart takes outer = H * s."""
    if HEAD_ROWS:  # rows < 2^31 (checks.MAX_ROWS): 32-bit division, not 64-bit's subroutine
        r = rows64.to(tl.int32)
        t = r // HEADS
        return t.to(tl.int64) * outer + (r - t * HEADS).to(tl.int64) * stride
    return rows64 * stride


@triton.jit
def head_weight(W, W2, rows64, cols, col_ok, HEADS, Q_HEADS, TWO_W: tl.constexpr):
    """The weight of each row ([1, BLOCK_N]; TWO_W: [BLOCK_M, BLOCK_N]): TWO_W, a row whose
    head (r % HEADS) is below Q_HEADS reads W (q's weight), the others W2 (k's)."""
    w = tl.load(W + cols[None, :], mask=col_ok[None, :], other=0.0)
    if TWO_W:
        w2 = tl.load(W2 + cols[None, :], mask=col_ok[None, :], other=0.0)
        w = tl.where((rows64.to(tl.int32) % HEADS < Q_HEADS), w, w2)
    return w

"""FP8 output: the epilogue rms_norm_fwd runs in place of y's store when QUANT is not 0.

y is rms_norm's own output rounded to x's dtype (as rms_norm returns it), then, in fp32:
    static  (QUANT_STATIC)  s given (one fp32)
    token   (QUANT_TOKEN)   s = max(min(amax_row |y|, ub) / FP8_MAX, MIN_SCALE), one per row
    group   (QUANT_GROUP)   the same per GROUP contiguous elements of a row
    UE8M0                   (dynamic modes) s rounded up to a power of two, exactly
    q = fp8(sat(y * (1 / s)))
1 / s is correctly rounded (div_rn), one per row or group, and each element takes a multiply, as
vLLM's static_scaled_fp8_quant does ("invert the scale ... to avoid expensive division"). sat
clamps to +-FP8_MAX and keeps NaN; fp8(.) rounds to nearest even. MIN_SCALE = 1 / (FP8_MAX * 512)
(vLLM's min_scaling_factor): a row or group of zeros gets that scale and zeros, never inf or NaN.
amax propagates NaN: a row (group) holding NaN gets a NaN scale, and NaN throughout.
ub (scale_ub) bounds amax before the division, as vLLM's dynamic_per_token_scaled_fp8_quant.

Group scales go to SCALE row-major (M, N / GROUP), or, SCALE_LAYOUT = LAYOUT_MN_MAJOR, the way
DeepGEMM's sm90 FP8 GEMM reads them: column-major with M padded to a multiple of 4 (TMA's 16
bytes), element (m, g) at g * pad4(M) + m.

Triton's interpreter rounds fp32 -> fp8 by its own rules (ties away, no NaN, subnormals off; see
FIX_FP8): there the bits are made by fp8_bits below, and the GPU converts natively.
"""

import triton
import triton.language as tl

QUANT_NONE, QUANT_STATIC, QUANT_TOKEN, QUANT_GROUP = 0, 1, 2, 3
LAYOUT_ROWS, LAYOUT_MN_MAJOR = 0, 1
FP8_MAX = {"e4m3": 448.0, "e5m2": 57344.0}


@triton.jit
def _probe(X, Q):
    c = tl.arange(0, 4)
    tl.store(Q + c, tl.load(X + c).to(Q.dtype.element_ty))


def _interpreter_misrounds_fp8() -> bool:
    """True where this process runs Triton's interpreter and its fp32 -> e4m3 conversion does not
    round as torch (and the GPU's cvt.rn) does. Probed once at import."""
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(_probe, InterpretedFunction):
        return False
    import torch

    # a tie to even, a subnormal tie, NaN, a value that rounds up into the next binade
    x = torch.tensor([1.0 + 2.0**-4, 1.5 * 2.0**-9, float("nan"), 1.0 + 15 * 2.0**-5])
    q = torch.empty(4, dtype=torch.float8_e4m3fn)
    _probe[(1,)](x, q)
    return not torch.equal(q.view(torch.uint8), x.to(torch.float8_e4m3fn).view(torch.uint8))


FIX_FP8 = tl.constexpr(_interpreter_misrounds_fp8())


@triton.jit
def fp8_bits(v, Q_TY: tl.constexpr):
    """The bits of fp32 v (|v| <= the format's max, or NaN) rounded to nearest even in Q_TY
    (e4m3fn or e5m2), as uint8: integer and exact fp32 arithmetic only (the interpreter's way)."""
    MANT: tl.constexpr = 3 if Q_TY == tl.float8e4nv else 2
    BIAS: tl.constexpr = 7 if Q_TY == tl.float8e4nv else 15
    DROP: tl.constexpr = 23 - MANT
    bits = v.to(tl.uint32, bitcast=True)
    sign = (bits >> 24) & 0x80
    a = bits & 0x7FFFFFFF
    # normal in fp8: round fp32's mantissa to MANT bits (a carry moves into the exponent), rebias
    normal = ((a + ((1 << (DROP - 1)) - 1) + ((a >> DROP) & 1)) >> DROP) - ((127 - BIAS) << MANT)
    # subnormal in fp8: |v| in units of the smallest subnormal, rounded by fp32's adder (exact:
    # a product by a power of two, then the 2^23 trick); 2^MANT units is the smallest normal
    t = a.to(tl.float32, bitcast=True) * (2.0 ** (BIAS - 1 + MANT))
    sub = ((t + 8388608.0) - 8388608.0).to(tl.uint32)
    code = tl.where(a < ((127 + 1 - BIAS) << 23), sub, normal)
    code = tl.where(v != v, 0x7F, code | sign)
    return code.to(tl.uint8)


@triton.jit
def to_fp8(v, Q_TY: tl.constexpr):
    """v saturated to +-max of Q_TY (NaN kept) and rounded to Q_TY."""
    LIM: tl.constexpr = 448.0 if Q_TY == tl.float8e4nv else 57344.0
    v = tl.where(v != v, v, tl.minimum(tl.maximum(v, -LIM), LIM))
    if FIX_FP8:
        return fp8_bits(v, Q_TY).to(Q_TY, bitcast=True)
    return v.to(Q_TY)


@triton.jit
def _max_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def absmax(y, axis: tl.constexpr):
    """max |y| along axis; NaN if any element is NaN."""
    return tl.reduce(tl.abs(y), axis, _max_nan)


@triton.jit
def dynamic_scale(amax, scale_ub, Q_TY: tl.constexpr, UE8M0: tl.constexpr):
    """s = max(min(amax, ub) / FP8_MAX, 1 / (FP8_MAX * 512)), rounded up to 2^k with UE8M0; NaN
    stays NaN. scale_ub None: no upper bound."""
    LIM: tl.constexpr = 448.0 if Q_TY == tl.float8e4nv else 57344.0
    MIN_SCALE: tl.constexpr = 1.0 / (LIM * 512.0)
    if scale_ub is not None:
        amax = tl.minimum(amax, scale_ub, propagate_nan=tl.PropagateNan.ALL)
    s = tl.div_rn(amax, LIM + tl.zeros_like(amax))
    s = tl.maximum(s, MIN_SCALE, propagate_nan=tl.PropagateNan.ALL)
    if UE8M0:  # a mantissa other than 1.0 carries into the exponent (s > 0: no sign to keep)
        up = ((s.to(tl.uint32, bitcast=True) + 0x7FFFFF) & 0x7F800000).to(tl.float32, bitcast=True)
        s = tl.where(s == s, up, s)
    return s


@triton.jit
def reciprocal(s):
    return tl.div_rn(1.0 + tl.zeros_like(s), s)


@triton.jit
def quantize_tile(y, Q, SCALE, rows64, cols, mask, row_ok, M, N, stride_q, scale_ub,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, QUANT: tl.constexpr,
                  GROUP: tl.constexpr, UE8M0: tl.constexpr, SCALE_LAYOUT: tl.constexpr):
    """Quantizes a (BLOCK_M, BLOCK_N) tile of y (fp32; rows64 (BLOCK_M, 1) int64, cols (1,
    BLOCK_N): whole rows from column 0, or with QUANT_GROUP any run of whole groups) into Q, the
    dynamic scales into SCALE. Masked-off elements of y must be 0."""
    Q_TY: tl.constexpr = Q.dtype.element_ty
    if QUANT == 1:
        q = to_fp8(y * reciprocal(tl.load(SCALE)), Q_TY)
    elif QUANT == 2:
        s = dynamic_scale(absmax(y, 1), scale_ub, Q_TY, UE8M0)
        tl.store(SCALE + rows64, s[:, None], mask=row_ok)
        q = to_fp8(y * reciprocal(s)[:, None], Q_TY)
    else:
        NG: tl.constexpr = BLOCK_N // GROUP
        y3 = tl.reshape(y, [BLOCK_M, NG, GROUP])
        s = dynamic_scale(absmax(y3, 2), scale_ub, Q_TY, UE8M0)  # (BLOCK_M, NG)
        g = tl.min(cols, axis=1)[:, None] // GROUP + tl.arange(0, NG)[None, :]  # first group on
        if SCALE_LAYOUT == 1:
            where = g.to(tl.int64) * ((M + 3) // 4 * 4) + rows64
        else:
            where = rows64 * (N // GROUP) + g
        tl.store(SCALE + where, s, mask=row_ok & (g < N // GROUP))
        q = tl.reshape(to_fp8(y3 * reciprocal(s)[:, :, None], Q_TY), [BLOCK_M, BLOCK_N])
    tl.store(Q + rows64 * stride_q + cols, q, mask=mask)

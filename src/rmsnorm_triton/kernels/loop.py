"""The block loop: a row too long for registers, walked block by block, twice.

    step 1   ss    = sum over blocks b of sum(h_b^2)       (h = x, or x + r stored as h)
    step 2   ms    = ss / N;  rstd = 1 / sqrt(ms + eps)
    step 3   y_b   = x_hat_b * (offset + w_b)               last block first

The second walk goes backwards so that it starts with the blocks most recently pulled into L2.
This is the seed's kernel. rms_norm_fwd walks rows so where neither one pass nor SPLIT fits
(fp64 past 8K, SPLIT turned off or not resident, the interpreter's long rows), and the
visualizer (trace.py) runs this same function with TRACE on: the page shows the library's own
loop, and the production kernel carries no trace arguments (TRACE is this helper's constexpr).
"""

import triton
import triton.language as tl

from .common import apply_weight, cast, load_h, mean_rstd
from .quant import _max_nan, absmax, dynamic_scale, quantize_tile, reciprocal, to_fp8


@triton.jit
def loop_row(X, R, W, Y, H, RSTD, row, stride_x, stride_r, stride_y, stride_h, N, eps, offset,
             BLOCK_N: tl.constexpr, HAS_W: tl.constexpr, HAS_R: tl.constexpr,
             STORE_RSTD: tl.constexpr, CASTING: tl.constexpr, IN_TY: tl.constexpr,
             ACC: tl.constexpr, TRACE: tl.constexpr = False, TRACE_BLK=None,
             QUANT: tl.constexpr = 0, GROUP: tl.constexpr = 128, UE8M0: tl.constexpr = False,
             SCALE_LAYOUT: tl.constexpr = 0, SCALE=None, scale_ub=None, M=1):
    """Normalizes row `row` (int64) block by block; returns (ss, ms, rstd). TRACE: each block's
    sum and the running sum after it go to TRACE_BLK[row, b, 0:2] (the visualizer's). QUANT
    (kernels/quant.py): Y is FP8; per token, a walk between steps 2 and 3 finds the row's amax."""
    cols = tl.arange(0, BLOCK_N)
    num_blocks = tl.cdiv(N, BLOCK_N)
    ss = tl.zeros([], ACC)
    for b in range(0, num_blocks):  # step 1: sum of squares, block by block
        c = b * BLOCK_N + cols
        h = load_h(X, R, H, row * stride_x, row * stride_r, row * stride_h, c, c < N, HAS_R, ACC)
        block_sum = tl.sum(h * h, axis=0)
        ss += block_sum
        if TRACE:
            tl.store(TRACE_BLK + (row * num_blocks + b) * 2, block_sum)
            tl.store(TRACE_BLK + (row * num_blocks + b) * 2 + 1, ss)
    ms, rstd = mean_rstd(ss, N, eps, ACC)  # step 2
    if STORE_RSTD:
        tl.store(RSTD + row, rstd)
    if QUANT == 2:  # per token: the scale needs the whole row's y before any block is written
        inv_s = _token_scale(X, H, W, Y, SCALE, row, stride_x, stride_h, N, rstd, offset,
                             scale_ub, BLOCK_N, HAS_W, HAS_R, CASTING, UE8M0, IN_TY, ACC)
    elif QUANT == 1:
        inv_s = reciprocal(tl.load(SCALE))
    for i in range(0, num_blocks):  # step 3, last block first: it is the likeliest in L2
        c = (num_blocks - 1 - i) * BLOCK_N + cols
        m = c < N
        if HAS_R:
            h = tl.load(H + row * stride_h + c, mask=m, other=0.0).to(ACC)
        else:
            h = tl.load(X + row * stride_x + c, mask=m, other=0.0).to(ACC)
        if HAS_W:
            w = tl.load(W + c, mask=m, other=0.0).to(ACC)
        else:
            w = tl.full([BLOCK_N], 1.0, ACC) - offset
        y = apply_weight(h, rstd, w, offset, CASTING, IN_TY, ACC)
        if QUANT == 3:
            quantize_tile(cast(y, X.dtype.element_ty).to(tl.float32)[None, :], Y, SCALE,
                          tl.full([1, 1], 0, tl.int64) + row, c[None, :], m[None, :],
                          tl.full([1, 1], 1, tl.int1), M, N, stride_y, scale_ub, 1, BLOCK_N,
                          QUANT, GROUP, UE8M0, SCALE_LAYOUT)
        elif QUANT:
            q = to_fp8(cast(y, X.dtype.element_ty).to(tl.float32) * inv_s, Y.dtype.element_ty)
            tl.store(Y + row * stride_y + c, q, mask=m)
        else:
            tl.store(Y + row * stride_y + c, cast(y, Y.dtype.element_ty), mask=m)
    return ss, ms, rstd


@triton.jit
def _token_scale(X, H, W, Y, SCALE, row, stride_x, stride_h, N, rstd, offset, scale_ub,
                 BLOCK_N: tl.constexpr, HAS_W: tl.constexpr, HAS_R: tl.constexpr,
                 CASTING: tl.constexpr, UE8M0: tl.constexpr, IN_TY: tl.constexpr,
                 ACC: tl.constexpr):
    """QUANT_TOKEN: a walk over the row's y for its amax; stores the row's scale, returns 1 / s."""
    cols = tl.arange(0, BLOCK_N)
    amax = tl.zeros([], tl.float32)
    for b in range(0, tl.cdiv(N, BLOCK_N)):
        c = b * BLOCK_N + cols
        m = c < N
        if HAS_R:
            h = tl.load(H + row * stride_h + c, mask=m, other=0.0).to(ACC)
        else:
            h = tl.load(X + row * stride_x + c, mask=m, other=0.0).to(ACC)
        if HAS_W:
            w = tl.load(W + c, mask=m, other=0.0).to(ACC)
        else:
            w = tl.full([BLOCK_N], 1.0, ACC) - offset
        y = apply_weight(h, rstd, w, offset, CASTING, IN_TY, ACC)
        amax = _max_nan(amax, absmax(cast(y, X.dtype.element_ty).to(tl.float32), 0))
    s = dynamic_scale(amax, scale_ub, Y.dtype.element_ty, UE8M0)
    tl.store(SCALE + row, s)
    return reciprocal(s)

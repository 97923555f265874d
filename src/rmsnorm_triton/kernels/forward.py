"""rms_norm_fwd: RMSNorm's forward (kernels/common.py has the math), three ways to walk a row.

Chosen per (N, dtype) by tables.py:
- ONE_PASS: the row fits in one block, is held in registers and read once; BLOCK_M rows share a
  program so that short rows still give every program enough bytes in flight. For a wave or
  two of programs (decoding's few rows), w is loaded beside x (W_FIRST).
- SPLIT (GPU only): a long row is cut into S chunks of BLOCK_N, each held in the registers of its
  own program; the S programs of a row meet through a small buffer of partial sums
  (kernels/meet.py) and each then finishes its chunk. One read of x, like ONE_PASS. Each program
  publishes a row's partial sum two rounds before it finishes that row and reads the slots a
  round before it needs them, so the meeting is rarely waited for. The programs wait for each
  other, so the launcher sizes the grid to what is resident at once; the interpreter, which runs
  programs one after another, never takes this path, nor does fp64 (its sums would need wider
  slots). Rows go to the programs G apart (G groups of S); an entry marked "+dyn" hands them out
  at run time past each program's first four (DYNAMIC: programs drift apart over a call and the
  last would finish alone).
- otherwise: the block loop (kernels/loop.py), the row walked block by block twice.

QUANT (kernels/quant.py): y is quantized to FP8 where it would be stored (Y is then the FP8
output, SCALE the scales), in every walk; SPLIT only with a static or per-group scale (each
chunk holds whole groups): per token, a row's scale would need a second meeting of its programs,
so the launcher walks those rows with the block loop.
HEAD_ROWS (ONE_PASS only): row r of X (and Y) starts at (r // HEADS) * outer + (r % HEADS) *
stride, so a [T, H, D] view such as q inside a fused qkv tensor is read where it lies, no copy.
TWO_W: heads from Q_HEADS on take W2, so q and k (adjacent heads of qkv) share one launch.
"""

import triton
import triton.language as tl

from .common import (apply_weight, cast, dependent_launch, head_weight, load_h, mean_rstd,
                     native_product, row_start, to_h)
from .loop import loop_row
from .quant import quantize_tile
from .meet import (chunk, claim, counter, elements, empty_next_counters, poll, prefetch, publish,
                   total)


@triton.jit(do_not_specialize=["EPOCH"])
def rms_norm_fwd(
    X, R, W, Y, H, RSTD,  # x, residual, weight, y, h = x + residual, saved rstd (ACC)
    PART,  # SPLIT: per (row, chunk) partial sums, tagged with the call's EPOCH (int64)
    stride_x, stride_r, stride_y, stride_h,  # elements between the starts of two rows
    M, N,  # rows, elements per row
    eps, offset,  # fp32 scalars
    NUM_GROUPS,  # SPLIT: program p does chunk p % S of rows p // S, + NUM_GROUPS, ...
    EPOCH,  # SPLIT: this call's tag (plan.slots); never specialised on
    BLOCK_M: tl.constexpr,  # rows per program (ONE_PASS only)
    BLOCK_N: tl.constexpr,  # elements of a row per block
    ONE_PASS: tl.constexpr,  # N <= BLOCK_N: the row stays in registers
    SPLIT: tl.constexpr, S_POW2: tl.constexpr,  # SPLIT mode; next power of two >= S
    PAIRS: tl.constexpr,  # SPLIT: x (and r) are 16-bit, rows aligned: prefetched as 32-bit words
    EARLY: tl.constexpr,  # SPLIT: next round's loads issued before this round's publish
    HAS_W: tl.constexpr, HAS_R: tl.constexpr, STORE_RSTD: tl.constexpr,
    CASTING: tl.constexpr,  # CAST_NONE / CAST_LLAMA / CAST_GEMMA
    W_FIRST: tl.constexpr = False,  # ONE_PASS: w loaded beside x, before the sum: a single
    # wave of programs (a few rows) then waits one DRAM trip, not two; with many rows the
    # extra registers held across the sum cost more (16K x 8 warps: 107 -> 173 a thread)
    W_NATIVE: tl.constexpr = False,  # ONE_PASS or SPLIT, Llama casting, offset 0, x, w and y of
    # one 16-bit dtype: y = x_hat * w multiplied in that dtype (w held packed; see apply_weight)
    DYNAMIC: tl.constexpr = False,  # SPLIT: past its first four rows a program takes the next
    # row of its chunk from a counter (meet.counter), so programs that run ahead do more rows
    PDL: tl.constexpr = False,  # launched as a programmatic dependent (dependent_launch)
    QUANT: tl.constexpr = 0,  # kernels/quant.py: Y is FP8, y is quantized (QUANT_STATIC / ...)
    GROUP: tl.constexpr = 128, UE8M0: tl.constexpr = False, SCALE_LAYOUT: tl.constexpr = 0,
    SCALE=None,  # QUANT: the static scale (read) or the dynamic scales (written), fp32
    scale_ub=None,  # QUANT_TOKEN / QUANT_GROUP: bound on amax (None: none)
    HEAD_ROWS: tl.constexpr = False,  # ONE_PASS: rows of X and Y at two strides (row_start)
    HEADS=1, outer_x=0, outer_y=0,  # HEAD_ROWS: heads a token, strides between tokens
    TWO_W: tl.constexpr = False, W2=None, Q_HEADS=0,  # heads >= Q_HEADS read W2 (head_weight)
):
    dependent_launch(PDL)
    pid = tl.program_id(0)
    IN_TY: tl.constexpr = H.dtype.element_ty if HAS_R else X.dtype.element_ty
    ACC: tl.constexpr = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    if ONE_PASS:
        one_pass_rows(X, R, W, Y, H, RSTD, pid, stride_x, stride_r, stride_y, stride_h, M, N, eps,
                      offset, BLOCK_M, BLOCK_N, HAS_W, HAS_R, STORE_RSTD, CASTING, W_FIRST,
                      W_NATIVE, IN_TY, ACC, QUANT, GROUP, UE8M0, SCALE_LAYOUT, SCALE, scale_ub,
                      HEAD_ROWS, HEADS, outer_x, outer_y, TWO_W, W2, Q_HEADS)
    elif SPLIT:
        split_rows(X, R, W, Y, H, RSTD, PART, pid, stride_x, stride_r, stride_y, stride_h, M, N,
                   eps, offset, NUM_GROUPS, EPOCH, BLOCK_N, S_POW2, PAIRS, EARLY, HAS_W, HAS_R,
                   STORE_RSTD, CASTING, W_NATIVE, DYNAMIC, IN_TY, ACC, QUANT, GROUP, UE8M0,
                   SCALE_LAYOUT, SCALE, scale_ub)
    else:
        loop_row(X, R, W, Y, H, RSTD, pid.to(tl.int64), stride_x, stride_r, stride_y, stride_h, N,
                 eps, offset, BLOCK_N, HAS_W, HAS_R, STORE_RSTD, CASTING, IN_TY, ACC,
                 QUANT=QUANT, GROUP=GROUP, UE8M0=UE8M0, SCALE_LAYOUT=SCALE_LAYOUT, SCALE=SCALE,
                 scale_ub=scale_ub, M=M)


@triton.jit
def one_pass_rows(X, R, W, Y, H, RSTD, pid, stride_x, stride_r, stride_y, stride_h, M, N, eps,
                  offset, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HAS_W: tl.constexpr,
                  HAS_R: tl.constexpr, STORE_RSTD: tl.constexpr, CASTING: tl.constexpr,
                  W_FIRST: tl.constexpr, W_NATIVE: tl.constexpr, IN_TY: tl.constexpr,
                  ACC: tl.constexpr, QUANT: tl.constexpr = 0, GROUP: tl.constexpr = 128,
                  UE8M0: tl.constexpr = False, SCALE_LAYOUT: tl.constexpr = 0, SCALE=None,
                  scale_ub=None, HEAD_ROWS: tl.constexpr = False, HEADS=1, outer_x=0,
                  outer_y=0, TWO_W: tl.constexpr = False, W2=None, Q_HEADS=0):
    """ONE_PASS: program pid's BLOCK_M rows, each read once and held in registers; returns
    (ss, ms, rstd) per row (the visualizer's trace stores them)."""
    cols = tl.arange(0, BLOCK_N)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    rows64 = rows.to(tl.int64)[:, None]  # 64-bit: rows * stride may pass 2^31
    col_ok = cols < N
    mask = (rows < M)[:, None] & col_ok[None, :]
    if HAS_W and W_FIRST:
        w = head_weight(W, W2, rows64, cols, col_ok, HEADS, Q_HEADS, TWO_W)
    x_off = row_start(rows64, stride_x, outer_x, HEADS, HEAD_ROWS)
    h = load_h(X, R, H, x_off, rows64 * stride_r, rows64 * stride_h, cols[None, :], mask, HAS_R,
               ACC)
    ss = tl.sum(h * h, axis=1)
    ms, rstd = mean_rstd(ss, N, eps, ACC)
    if HAS_W and not W_FIRST and TWO_W:
        w = head_weight(W, W2, rows64, cols, col_ok, HEADS, Q_HEADS, TWO_W)
    elif HAS_W and not W_FIRST:
        if QUANT:  # 2-D, so that it takes the tile's layout (16 elements a thread, as the FP8
            # store wants): a 1-D load would be converted through shared memory
            w = tl.load(W + cols[None, :], mask=col_ok[None, :], other=0.0)
        else:
            w = tl.load(W + cols, mask=col_ok, other=0.0)[None, :]
    if W_NATIVE:  # (bf16 32K: 992 -> 664 SASS instructions, +1.3 points of copy)
        y = native_product(cast(h * rstd[:, None], IN_TY), w, IN_TY)
    else:
        if HAS_W:
            w = w.to(ACC)
        else:
            w = tl.full([1, BLOCK_N], 1.0, ACC) - offset
        y = apply_weight(h, rstd[:, None], w, offset, CASTING, IN_TY, ACC)
    if QUANT:  # y as rms_norm returns it (x's dtype), then quantized
        quantize_tile(cast(y, X.dtype.element_ty).to(tl.float32), Y, SCALE, rows64,
                      cols[None, :], mask, (rows < M)[:, None], M, N, stride_y, scale_ub,
                      BLOCK_M, BLOCK_N, QUANT, GROUP, UE8M0, SCALE_LAYOUT)
    else:
        y_off = row_start(rows64, stride_y, outer_y, HEADS, HEAD_ROWS)
        tl.store(Y + y_off + cols[None, :], cast(y, Y.dtype.element_ty), mask=mask)
    if STORE_RSTD:
        tl.store(RSTD + rows, rstd, mask=rows < M)
    return ss, ms, rstd


@triton.jit
def split_rows(X, R, W, Y, H, RSTD, PART, pid, stride_x, stride_r, stride_y, stride_h, M, N,
               eps, offset, NUM_GROUPS, EPOCH, BLOCK_N: tl.constexpr, S_POW2: tl.constexpr,
               PAIRS: tl.constexpr, EARLY: tl.constexpr, HAS_W: tl.constexpr,
               HAS_R: tl.constexpr, STORE_RSTD: tl.constexpr, CASTING: tl.constexpr,
               W_NATIVE: tl.constexpr, DYNAMIC: tl.constexpr, IN_TY: tl.constexpr,
               ACC: tl.constexpr, QUANT: tl.constexpr = 0, GROUP: tl.constexpr = 128,
               UE8M0: tl.constexpr = False, SCALE_LAYOUT: tl.constexpr = 0, SCALE=None,
               scale_ub=None):
    """SPLIT: program pid holds chunk pid % S of rows pid // S, + NUM_GROUPS, ... (or, DYNAMIC,
    the rows it claims), meeting the row's other S - 1 programs through PART."""
    cols = tl.arange(0, BLOCK_N)
    S = tl.cdiv(N, BLOCK_N)
    s = pid % S
    c = s * BLOCK_N + cols
    m = c < N
    if HAS_W:  # kept in its own dtype: registers are what limits the chunk size here
        w = tl.load(W + c, mask=m, other=0.0)
    else:
        w = tl.full([BLOCK_N], 1.0, ACC) - offset
    # A pipeline two rows deep: each round starts row `row + 2 G` (h, its partial sum
    # published) and finishes row `row`, whose partial sums the other programs published two
    # rounds ago: a program a little behind its partners is not waited for. h is held in
    # its storage dtype (exact); the next round's chunk is loaded a round ahead.
    row = pid // S
    G = NUM_GROUPS
    cnt = counter(PART, EPOCH, s)
    hs = split_start(X, R, H, PART, EPOCH, row, s, S, c, m, M, stride_x, stride_r,
                      stride_h, HAS_R, ACC)
    hs2 = split_start(X, R, H, PART, EPOCH, row + G, s, S, c, m, M, stride_x, stride_r,
                       stride_h, HAS_R, ACC)
    cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # PAIRS: words of this chunk
    mw = cw < N // 2  # (N is even with PAIRS)
    x = prefetch(X, row + 2 * G, stride_x, c, m, cw, mw, M, PAIRS)
    r = prefetch(R, row + 2 * G, stride_r, c, m, cw, mw, M, PAIRS) if HAS_R else x
    parts = poll(PART, EPOCH, row.to(tl.int64), S, S_POW2)
    # The rows in flight: row (finished this round), nxt (its slots polled a round ahead),
    # new (started this round) and then (its chunk loaded a round ahead). Static: G apart.
    # DYNAMIC: from a program's fifth row on, claimed from the counter a round before use.
    nxt = row + G
    new = row + 2 * G
    then = row + 3 * G
    claimed = claim(cnt, DYNAMIC)
    while row < M:
        row64 = row.to(tl.int64)
        # This row's slots were read a round ago (usually filled by then: no wait); the next
        # row's are read this round, their answer used next round: here, with a residual or
        # rows handed out; else after this row's total, into `parts` itself (at the start,
        # `parts = ahead` below waited on the load, 11% of the stall samples; later, +0.1-0.9
        # points of copy there; with a residual or DYNAMIC -1.7 to +0.6).
        if HAS_R or DYNAMIC:
            ahead = poll(PART, EPOCH, nxt.to(tl.int64), S, S_POW2, nxt < M)
        xe = elements(x, X.dtype.element_ty, PAIRS)
        re = elements(r, R.dtype.element_ty, PAIRS) if HAS_R else xe
        if EARLY:  # the next round's loads go out before this chunk is summed and published
            x = prefetch(X, then, stride_x, c, m, cw, mw, M, PAIRS)
            r = prefetch(R, then, stride_r, c, m, cw, mw, M, PAIRS) if HAS_R else x
        hs3 = split_publish(xe, re, H, PART, EPOCH, new, s, S, c, m, M, stride_h, HAS_R, ACC)
        if not EARLY:  # after: one chunk fewer held while publishing (registers)
            x = prefetch(X, then, stride_x, c, m, cw, mw, M, PAIRS)
            r = prefetch(R, then, stride_r, c, m, cw, mw, M, PAIRS) if HAS_R else x
        ms, rstd = mean_rstd(total(PART, EPOCH, row64, S, parts, S_POW2), N, eps, ACC)
        if not HAS_R and not DYNAMIC:
            parts = poll(PART, EPOCH, nxt.to(tl.int64), S, S_POW2, nxt < M)
        if STORE_RSTD:
            tl.store(RSTD + row64, rstd, mask=s == 0)
        if W_NATIVE:
            y = native_product(cast(hs.to(ACC) * rstd, IN_TY), w, IN_TY)
        else:
            y = apply_weight(hs.to(ACC), rstd, w.to(ACC), offset, CASTING, IN_TY, ACC)
        if QUANT:  # static or per group (a chunk holds whole groups); per token never splits
            quantize_tile(cast(y, X.dtype.element_ty).to(tl.float32)[None, :], Y, SCALE,
                          tl.full([1, 1], 0, tl.int64) + row64, c[None, :], m[None, :],
                          tl.full([1, 1], 1, tl.int1) & (row < M), M, N, stride_y, scale_ub, 1,
                          BLOCK_N, QUANT, GROUP, UE8M0, SCALE_LAYOUT)
        else:
            tl.store(Y + row64 * stride_y + c, cast(y, Y.dtype.element_ty), mask=m)
        hs = hs2
        hs2 = hs3
        if HAS_R or DYNAMIC:
            parts = ahead
        row = nxt
        nxt = new
        new = then
        if DYNAMIC:
            then = 4 * G + claimed.to(tl.int32)
            claimed = claim(cnt, DYNAMIC)
        else:
            then += G
    empty_next_counters(PART, EPOCH, pid, G * S)


@triton.jit
def split_start(X, R, H, PART, EPOCH, row, s, S, c, m, M, stride_x, stride_r, stride_h,
                HAS_R: tl.constexpr, ACC: tl.constexpr):
    """SPLIT: loads and starts a row; returns h as stored."""
    x = chunk(X, row, stride_x, c, m, M)
    r = chunk(R, row, stride_r, c, m, M) if HAS_R else x
    return split_publish(x, r, H, PART, EPOCH, row, s, S, c, m, M, stride_h, HAS_R, ACC)


@triton.jit
def split_publish(x, r, H, PART, EPOCH, row, s, S, c, m, M, stride_h, HAS_R: tl.constexpr,
                  ACC: tl.constexpr):
    """SPLIT: starts a row from its loaded chunk (h stored, its partial sum published; nothing
    past the last row); returns h as stored."""
    r64 = row.to(tl.int64)
    h = to_h(x, r, H, r64 * stride_h, c, m & (row < M), HAS_R, ACC)
    publish(PART, EPOCH, r64, s, S, tl.sum(h * h, axis=0), row < M)
    return h.to(H.dtype.element_ty) if HAS_R else x

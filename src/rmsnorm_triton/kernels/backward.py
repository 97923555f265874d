"""rms_norm_bwd and dw_reduce: RMSNorm's backward, deterministic (no atomics).

With x_hat = h * rstd (rstd saved by the forward) and wdy = (offset + w) * dy, per row:
    c1    = sum(x_hat * wdy) / N
    dh    = rstd * (wdy - x_hat * c1)   (+ the gradient that reached h directly: dh of prenorm)
    dw    = sum over rows of dy * x_hat
dh goes to DX in x's dtype and, with a residual, to DR in the residual's. Each program sums its
rows' dy * x_hat into its own row of DW_PART; dw_reduce adds those rows in a fixed order, so dw
is bitwise the same from run to run. The row walks are the forward's: ONE_PASS (a persistent
grid over tiles of BLOCK_M rows, the next tile's loads issued before this tile's math), SPLIT
(kernels/meet.py) and the block loop (c1 needs the whole row first: two walks).

HEAD_ROWS and TWO_W (ONE_PASS only) are the forward's: rows of DY, X and DX at two strides
(common.row_start), and rows of heads >= Q_HEADS weighted by W2; their dw partials then go to
DW_PART[p, N:2N], so one dw_reduce over rows of 2N gives [dw, dw2].
"""

import triton
import triton.language as tl

from .common import cast, dependent_launch, row_start
from .meet import chunk, elements, empty_next_counters, poll, prefetch, publish, total


@triton.jit
def store_dx(DX, DR, DH, dx, off_dx, off_dr, off_dh, cols, mask, HAS_DH: tl.constexpr,
              STORE_DR: tl.constexpr, ACC: tl.constexpr):
    """dx (+ the gradient that reached h directly) to DX, and to DR in the residual's dtype."""
    if HAS_DH:
        dx += tl.load(DH + off_dh + cols, mask=mask, other=0.0).to(ACC)
    tl.store(DX + off_dx + cols, cast(dx, DX.dtype.element_ty), mask=mask)
    if STORE_DR:
        tl.store(DR + off_dr + cols, cast(dx, DR.dtype.element_ty), mask=mask)


@triton.jit
def bwd_start(X, DY, RSTD, PART, EPOCH, row, s, S, c, m, M, w, offset, stride_x, stride_dy,
               ACC: tl.constexpr):
    """SPLIT: loads and starts a row (its partial of x_hat * wdy published)."""
    x = chunk(X, row, stride_x, c, m, M)
    dy = chunk(DY, row, stride_dy, c, m, M)
    rstd = bwd_publish(x, dy, RSTD, PART, EPOCH, row, s, S, M, w, offset, ACC)
    return x, dy, rstd


@triton.jit
def bwd_publish(x, dy, RSTD, PART, EPOCH, row, s, S, M, w, offset, ACC: tl.constexpr):
    """SPLIT: a loaded row's partial of x_hat * wdy published; returns its rstd."""
    r64 = row.to(tl.int64)
    rstd = tl.load(RSTD + r64, mask=row < M, other=0.0)
    wdy = (offset + w.to(ACC)) * dy.to(ACC)
    publish(PART, EPOCH, r64, s, S, tl.sum(x.to(ACC) * rstd * wdy, axis=0), row < M)
    return rstd


@triton.jit(do_not_specialize=["EPOCH"])
def rms_norm_bwd(
    DY, X, W, RSTD, DH, DX, DR, DW_PART,  # X is the normalized input (h when there was a residual)
    PART,  # SPLIT: per (row, chunk) partial sums of x_hat * wdy, tagged as in rms_norm_fwd
    stride_dy, stride_x, stride_dh, stride_dx, stride_dr,  # elements between two rows' starts
    M, N, offset,
    NUM_PROGS,  # persistent grid size; program p owns row tiles p, p + NUM_PROGS, ...
    EPOCH,  # SPLIT: as in rms_norm_fwd
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, ONE_PASS: tl.constexpr,
    SPLIT: tl.constexpr, S_POW2: tl.constexpr,  # as in rms_norm_fwd; dw partials: [groups, N]
    PAIRS: tl.constexpr,  # as in rms_norm_fwd: x and dy prefetched as 32-bit words
    EARLY: tl.constexpr,  # as in rms_norm_fwd
    HAS_W: tl.constexpr,  # there is a weight
    STORE_DW: tl.constexpr,  # write this program's dw partial sums to DW_PART[p, :]
    HAS_DH: tl.constexpr,  # a gradient reached h directly (prenorm output): add it to dx
    STORE_DR: tl.constexpr,  # write the residual's gradient (the same values, its own dtype)
    PDL: tl.constexpr = False,  # as in rms_norm_fwd
    HEAD_ROWS: tl.constexpr = False,  # as in rms_norm_fwd, for DY, X and DX
    HEADS=1, outer_dy=0, outer_x=0, outer_dx=0,
    TWO_W: tl.constexpr = False, W2=None, Q_HEADS=0,  # as in rms_norm_fwd
):
    dependent_launch(PDL)
    pid = tl.program_id(0)
    ACC: tl.constexpr = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    cols = tl.arange(0, BLOCK_N)
    if ONE_PASS:
        col_ok = cols < N
        if HAS_W:
            wo = offset + tl.load(W + cols, mask=col_ok, other=0.0).to(ACC)
            wo2 = offset + tl.load(W2 + cols, mask=col_ok, other=0.0).to(ACC) if TWO_W else wo
        else:
            wo = tl.full([BLOCK_N], 1.0, ACC)
            wo2 = wo
        dw = tl.zeros([BLOCK_M, BLOCK_N], ACC)  # summed over rows once, at the end
        dw2 = tl.zeros([BLOCK_M, BLOCK_N], ACC)  # TWO_W: W2's rows
        tile = pid
        rows = tile * BLOCK_M + tl.arange(0, BLOCK_M)
        mask = (rows < M)[:, None] & col_ok[None, :]
        rows64 = rows.to(tl.int64)[:, None]
        # (HEAD_ROWS spelled out at each use: through row_start alone, ptxas schedules the
        # plain tiles' code differently)
        if HEAD_ROWS:
            x = tl.load(X + row_start(rows64, stride_x, outer_x, HEADS, HEAD_ROWS)
                        + cols[None, :], mask=mask, other=0.0)
            dy = tl.load(DY + row_start(rows64, stride_dy, outer_dy, HEADS, HEAD_ROWS)
                         + cols[None, :], mask=mask, other=0.0)
        else:
            x = tl.load(X + rows64 * stride_x + cols[None, :], mask=mask, other=0.0)
            dy = tl.load(DY + rows64 * stride_dy + cols[None, :], mask=mask, other=0.0)
        for _ in range(pid, tl.cdiv(M, BLOCK_M), NUM_PROGS):
            rstd = tl.load(RSTD + rows, mask=rows < M, other=0.0)[:, None]
            x_hat = x.to(ACC) * rstd
            dyf = dy.to(ACC)
            # The next tile's loads go out now, to overlap this tile's arithmetic and stores.
            tile += NUM_PROGS
            rows_n = tile * BLOCK_M + tl.arange(0, BLOCK_M)
            mask_n = (rows_n < M)[:, None] & col_ok[None, :]
            rn64 = rows_n.to(tl.int64)[:, None]
            if HEAD_ROWS:
                x = tl.load(X + row_start(rn64, stride_x, outer_x, HEADS, HEAD_ROWS)
                            + cols[None, :], mask=mask_n, other=0.0)
                dy = tl.load(DY + row_start(rn64, stride_dy, outer_dy, HEADS, HEAD_ROWS)
                             + cols[None, :], mask=mask_n, other=0.0)
            else:
                x = tl.load(X + rn64 * stride_x + cols[None, :], mask=mask_n, other=0.0)
                dy = tl.load(DY + rn64 * stride_dy + cols[None, :], mask=mask_n, other=0.0)
            if TWO_W:
                # rows weighted by W (q), the rest by W2 (k)
                first = rows64.to(tl.int32) % HEADS < Q_HEADS
                wdy = tl.where(first, wo[None, :], wo2[None, :]) * dyf
            else:
                wdy = wo[None, :] * dyf
            c1 = tl.sum(x_hat * wdy, axis=1)[:, None] / N
            dx = (wdy - x_hat * c1) * rstd
            if HEAD_ROWS:
                store_dx(DX, DR, DH, dx, row_start(rows64, stride_dx, outer_dx, HEADS, HEAD_ROWS),
                         rows64 * stride_dr, rows64 * stride_dh, cols[None, :], mask, HAS_DH,
                         STORE_DR, ACC)
            else:
                store_dx(DX, DR, DH, dx, rows64 * stride_dx, rows64 * stride_dr,
                         rows64 * stride_dh, cols[None, :], mask, HAS_DH, STORE_DR, ACC)
            if STORE_DW and TWO_W:
                dw += tl.where(first, dyf * x_hat, 0.0)
                dw2 += tl.where(first, 0.0, dyf * x_hat)
            elif STORE_DW:
                dw += dyf * x_hat
            rows, mask, rows64 = rows_n, mask_n, rn64
        if STORE_DW and TWO_W:  # rows of 2N: [dw, dw2]
            part = DW_PART + pid.to(tl.int64) * (2 * N)
            tl.store(part + cols, tl.sum(dw, axis=0), mask=col_ok)
            tl.store(part + N + cols, tl.sum(dw2, axis=0), mask=col_ok)
        elif STORE_DW:
            tl.store(DW_PART + pid.to(tl.int64) * N + cols, tl.sum(dw, axis=0), mask=col_ok)
    elif SPLIT:
        S = tl.cdiv(N, BLOCK_N)
        s = pid % S
        g = pid // S
        c = s * BLOCK_N + cols
        m = c < N
        if HAS_W:
            w = tl.load(W + c, mask=m, other=0.0)  # own dtype: registers limit the chunk size
        else:
            w = tl.full([BLOCK_N], 1.0, ACC) - offset
        dw = tl.zeros([BLOCK_N], ACC)
        groups = NUM_PROGS // S
        # The forward's pipeline (two rows deep): publish row `row + 2 G`'s partial sum of
        # x_hat * wdy, then finish row `row`. Rows are held as loaded (x, dy in their dtypes).
        row = g
        G = groups
        xa, dya, ra = bwd_start(X, DY, RSTD, PART, EPOCH, row, s, S, c, m, M, w, offset,
                                 stride_x, stride_dy, ACC)
        xb, dyb, rb = bwd_start(X, DY, RSTD, PART, EPOCH, row + G, s, S, c, m, M, w, offset,
                                 stride_x, stride_dy, ACC)
        cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # PAIRS: words of this chunk
        mw = cw < N // 2
        x = prefetch(X, row + 2 * G, stride_x, c, m, cw, mw, M, PAIRS)
        dy = prefetch(DY, row + 2 * G, stride_dy, c, m, cw, mw, M, PAIRS)
        parts = poll(PART, EPOCH, row.to(tl.int64), S, S_POW2, True, True)  # EVERY_LANE
        for _ in range(g, M, G):
            row64 = row.to(tl.int64)
            ahead = poll(PART, EPOCH, row64 + G, S, S_POW2, row + G < M, True)  # EVERY_LANE
            new = row + 2 * G
            xn = elements(x, X.dtype.element_ty, PAIRS)
            dyn = elements(dy, DY.dtype.element_ty, PAIRS)
            if EARLY:  # as in rms_norm_fwd
                x = prefetch(X, new + G, stride_x, c, m, cw, mw, M, PAIRS)
                dy = prefetch(DY, new + G, stride_dy, c, m, cw, mw, M, PAIRS)
            rn = bwd_publish(xn, dyn, RSTD, PART, EPOCH, new, s, S, M, w, offset, ACC)
            if not EARLY:
                x = prefetch(X, new + G, stride_x, c, m, cw, mw, M, PAIRS)
                dy = prefetch(DY, new + G, stride_dy, c, m, cw, mw, M, PAIRS)
            x_hat = xa.to(ACC) * ra
            dyf = dya.to(ACC)
            wdy = (offset + w.to(ACC)) * dyf
            c1 = total(PART, EPOCH, row64, S, parts, S_POW2, True) / N
            dx = (wdy - x_hat * c1) * ra
            store_dx(DX, DR, DH, dx, row64 * stride_dx, row64 * stride_dr, row64 * stride_dh, c, m,
                      HAS_DH, STORE_DR, ACC)
            if STORE_DW:
                dw += dyf * x_hat
            xa, dya, ra = xb, dyb, rb
            xb, dyb, rb = xn, dyn, rn
            parts = ahead
            row += G
        if STORE_DW:
            tl.store(DW_PART + g.to(tl.int64) * N + c, dw, mask=m)
        empty_next_counters(PART, EPOCH, pid, NUM_PROGS)  # (the forward's, kept in step)
    else:
        for row in range(pid, M, NUM_PROGS):
            loop_row_bwd(DY, X, W, RSTD, DH, DX, DR, DW_PART, row, pid, stride_dy, stride_x,
                         stride_dh, stride_dx, stride_dr, N, offset, BLOCK_N, HAS_W, STORE_DW,
                         HAS_DH, STORE_DR, ACC)


@triton.jit
def loop_row_bwd(DY, X, W, RSTD, DH, DX, DR, DW_PART, row, pid, stride_dy, stride_x, stride_dh,
                 stride_dx, stride_dr, N, offset, BLOCK_N: tl.constexpr, HAS_W: tl.constexpr,
                 STORE_DW: tl.constexpr, HAS_DH: tl.constexpr, STORE_DR: tl.constexpr,
                 ACC: tl.constexpr, TRACE: tl.constexpr = False, TRACE_BLK=None, TRACE_DW=None):
    """The block loop: row `row` of program `pid` walked twice, block by block (c1 needs the
    whole row first), its dy * x_hat added to the program's dw partial row; returns c1.
    TRACE (the visualizer's): each block's sum of x * wdy and the running sum after it go to
    TRACE_BLK[row, b, 0:2], the program's dw partial row after this row to TRACE_DW[row, :]."""
    cols = tl.arange(0, BLOCK_N)
    num_blocks = tl.cdiv(N, BLOCK_N)
    row64 = tl.cast(row, tl.int64)
    rstd = tl.load(RSTD + row)
    acc = tl.zeros([BLOCK_N], ACC)
    for b in range(0, num_blocks):  # walk 1: sum of x * wdy, for c1
        c = b * BLOCK_N + cols
        m = c < N
        x = tl.load(X + row64 * stride_x + c, mask=m, other=0.0).to(ACC)
        dy = tl.load(DY + row64 * stride_dy + c, mask=m, other=0.0).to(ACC)
        if HAS_W:
            dy *= offset + tl.load(W + c, mask=m, other=0.0).to(ACC)
        acc += x * dy
        if TRACE:
            tl.store(TRACE_BLK + (row64 * num_blocks + b) * 2, tl.sum(x * dy, axis=0))
            tl.store(TRACE_BLK + (row64 * num_blocks + b) * 2 + 1, tl.sum(acc, axis=0))
    c1 = tl.sum(acc, axis=0) * rstd / N
    for i in range(0, num_blocks):  # walk 2, last block first: dx, and dw's partial
        c = (num_blocks - 1 - i) * BLOCK_N + cols
        m = c < N
        x_hat = tl.load(X + row64 * stride_x + c, mask=m, other=0.0).to(ACC) * rstd
        dy = tl.load(DY + row64 * stride_dy + c, mask=m, other=0.0).to(ACC)
        if HAS_W:
            wdy = (offset + tl.load(W + c, mask=m, other=0.0).to(ACC)) * dy
        else:
            wdy = dy
        dx = (wdy - x_hat * c1) * rstd
        store_dx(DX, DR, DH, dx, row64 * stride_dx, row64 * stride_dr, row64 * stride_dh, c,
                  m, HAS_DH, STORE_DR, ACC)
        if STORE_DW:  # this program's own partial row: no other program touches it
            part = DW_PART + pid.to(tl.int64) * N + c
            # (c * 0 + row): a vector, since the interpreter rejects a scalar bool here
            prev = tl.load(part, mask=m & (c * 0 + row != pid), other=0.0)
            tl.store(part, prev + dy * x_hat, mask=m)
            if TRACE:
                tl.store(TRACE_DW + row64 * N + c, prev + dy * x_hat, mask=m)
    return c1


@triton.jit
def dw_reduce(
    DW_PART, DW,  # [P, N] ACC partial sums -> [N] in the weight's dtype
    P, N,
    BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    PDL: tl.constexpr = False,  # as in rms_norm_fwd
):
    """Sums the partials in a fixed order: dw is bitwise identical from run to run."""
    dependent_launch(PDL)
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros([BLOCK_P, BLOCK_N], DW_PART.dtype.element_ty)
    for p0 in range(0, P, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        mask = (p < P)[:, None] & (cols < N)[None, :]
        acc += tl.load(DW_PART + p.to(tl.int64)[:, None] * N + cols[None, :], mask=mask, other=0.0)
    tl.store(DW + cols, cast(tl.sum(acc, axis=0), DW.dtype.element_ty), mask=cols < N)

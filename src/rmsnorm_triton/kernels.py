"""The Triton kernels: one source for the GPU, Triton's interpreter and the visualizer's trace.

Per row of N elements (every sum in ACC: fp32, or fp64 for fp64 inputs):
    h     = x + r                       only with a residual; rounded to h's dtype, as torch does
    ms    = sum(h_i^2) / N              step 1: block-wise sum of squares, then the mean square
    rstd  = 1 / sqrt(ms + eps)          step 2
    x_hat = h * rstd
    y     = x_hat * (offset + w)        step 3; CASTING decides where values are rounded
Backward, with wdy = (offset + w) * dy:
    c1    = sum(x_hat * wdy) / N
    dh    = rstd * (wdy - x_hat * c1)   (+ the gradient that reached h directly)
    dw    = sum over rows of dy * x_hat

Three ways to walk a row, chosen per (N, dtype) by heuristics.py:
- ONE_PASS: the row fits in one block, is held in registers and read once; BLOCK_M rows share a
  program so that short rows still give every program enough bytes in flight. For a wave or
  two of programs (decoding's few rows), w is loaded beside x (W_FIRST).
- SPLIT (GPU only): a long row is cut into S chunks of BLOCK_N, each held in the registers of its
  own program; the S programs of a row meet through a small buffer of partial sums (_publish,
  _poll, _total) and each then finishes its chunk. One read of x, like ONE_PASS. Each program
  publishes a row's partial sum two rounds before it finishes that row and reads the slots a
  round before it needs them, so the meeting is rarely waited for (NOTES.md, runs 14-23).
  The programs wait for each other, so the launcher sizes the grid to what is resident at once
  (launch.split_allowed says when not to use it); the interpreter, which runs programs one
  after another, never takes this path, nor does fp64 (its sums would need wider slots).
  A slot holds a sum and the call's EPOCH (64 bits): one that holds another call's tag has not
  arrived yet, so the launcher reuses its slots from call to call instead of emptying them
  before each (that fill cost 2.2% of a 16-bit forward call past 32K: NOTES.md, run 58).
  Rows go to the programs G apart (G groups of S); a forward entry marked "+dyn" hands them out
  at run time past each program's first four (DYNAMIC, _claim: programs drift apart over a call
  and the last would finish alone; NOTES.md, runs 92-94).
- otherwise (LOOP): the row is walked block by block twice, the second walk backwards so that it
  starts with the blocks most recently pulled into L2. This is the seed's kernel, and the one the
  visualizer traces.
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
    one-element array; measured with NumPy 2.2: fine); 3.9's can. Every kernel here loops."""
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
def _dependent_launch(PDL: tl.constexpr):
    """PDL (Hopper on, launch.pdl_enabled): the kernel was launched as a programmatic dependent
    of the stream's previous one. Its programs may be on their SMs before that kernel is done;
    they wait here, before any load or store, until it has finished and its writes are visible.
    The next kernel (if launched the same way) may start as soon as every program of this one has
    begun: its launch overlaps this kernel's last programs instead of following them."""
    if PDL:
        gdc_launch_dependents()
        gdc_wait()


@triton.jit
def _cast(x, TY: tl.constexpr):
    """x.to(TY), rounding to nearest even also under the interpreter (see FIX_BF16)."""
    if FIX_BF16 and TY == tl.bfloat16:
        bits = x.to(tl.float32).to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        r = tl.where(x == x, bits.to(tl.float32, bitcast=True), x.to(tl.float32))  # NaN stays
        return r.to(TY)  # exact now: the low 16 bits are zero
    return x.to(TY)


@triton.jit
def _apply_weight(h, rstd, w, offset, CASTING: tl.constexpr, IN_TY: tl.constexpr, ACC: tl.constexpr):
    """y = x_hat * (offset + w) in ACC (fp32), rounded where each casting mode rounds.

    Llama's product of two 16-bit values is exact in fp32 and then rounded once to y's dtype: a
    multiply in that dtype (round to nearest even) gives the same bits. SPLIT and long one-pass
    rows take that way (W_NATIVE, _native_product) where the offset is 0 and x, w and y share
    the dtype: w then stays packed, two values a register, instead of 32 hoisted fp32 values of
    offset + w that bf16's long-row code spilled (NOTES.md, run 39), and the one-pass epilogue
    loses its widen-multiply-round trips (run 78). (Zeros' signs follow w * x_hat, as Hugging
    Face's do.)"""
    if CASTING == 1:  # Llama: x_hat cast to the input dtype, then times the weight
        return _cast(h * rstd, IN_TY).to(ACC) * (offset + w)
    elif CASTING == 2:  # Gemma: all fp32, cast once at the end
        return h * rstd * (offset + w)
    else:  # none: rstd, x_hat and (offset + w) each in the input dtype
        r = _cast(rstd, IN_TY).to(ACC)
        x_hat = _cast(h * r, IN_TY).to(ACC)
        return x_hat * _cast(offset + w, IN_TY).to(ACC)


@triton.jit
def _native_product(x_hat, w, IN_TY: tl.constexpr):
    """Llama's x_hat * w multiplied in their 16-bit dtype (W_NATIVE; see _apply_weight). Under
    an interpreter that truncates bf16 (FIX_BF16) the exact fp32 product is rounded instead."""
    if FIX_BF16 and IN_TY == tl.bfloat16:
        return _cast(x_hat.to(tl.float32) * w.to(tl.float32), IN_TY)
    return x_hat * w


@triton.jit
def _mean_rstd(ss, N, eps, ACC: tl.constexpr):
    """ms = ss / N and rstd = 1 / sqrt(ms + eps), correctly rounded (no approximate sqrt)."""
    if ACC == tl.float64:
        ms = ss / N
        return ms, 1.0 / tl.sqrt(ms + eps)
    else:
        ms = tl.div_rn(ss, N + tl.zeros_like(ss))  # (N may be the constant 1 on a GPU)
        return ms, tl.div_rn(1.0, tl.sqrt_rn(ms + eps))


@triton.jit
def _publish(PART, EPOCH, row, s, S, value, live):
    """SPLIT: this program's partial sum for (row, chunk s): the call's EPOCH in the high 32 bits,
    the sum's bits below, in one 64-bit exchange. The value is its own arrival flag: no fence, so
    nothing waits for earlier stores."""
    word = (EPOCH.to(tl.int64) << 32) | value.to(tl.uint32, bitcast=True).to(tl.int64)
    tl.atomic_xchg(PART + row * S + s, word, mask=live, sem="relaxed", scope="gpu")


@triton.jit
def _poll(PART, EPOCH, row, S, S_POW2: tl.constexpr, live=True, EVERY_LANE: tl.constexpr = False):
    """SPLIT: reads the S slots of a row as they are now (some may hold an earlier call's tag).
    Lanes past S (and a row that is not live) read as arrived zeros through the load's mask,
    which Triton lowers as a load into a spare register and a predicated copy that waits for it.
    EVERY_LANE: no mask; every lane reads a valid slot (past S lane S - 1, a row past M row 0)
    and _total ignores lanes past S; a row past M is never finished, so its answer is unused.
    Run 109: the backward -0.9 to +5.7 points (fp32 256K, 256 slots a row: 91.4 -> 97.1; fp32
    16K -0.9), the forward -0.4 to +0.1; so the backward polls so, the forward through the mask."""
    i = tl.arange(0, S_POW2)
    if EVERY_LANE:
        v = tl.load(PART + tl.where(live, row, 0) * S + tl.minimum(i, S - 1), volatile=True)
    else:
        v = tl.load(PART + row * S + i, mask=(i < S) & live, other=EPOCH.to(tl.int64) << 32,
                    volatile=True)
    return v


@triton.jit
def _total(PART, EPOCH, row, S, parts, S_POW2: tl.constexpr, EVERY_LANE: tl.constexpr = False):
    """SPLIT: the row's total from a first poll, polling again until every slot holds this call's
    tag, added in chunk order: the same bits in every program and every run (and with or
    without EVERY_LANE: the lanes past S add zeros in the same places)."""
    i = tl.arange(0, S_POW2)
    if EVERY_LANE:
        while tl.sum((((parts >> 32).to(tl.int32) != EPOCH) & (i < S)).to(tl.int32), axis=0) > 0:
            parts = _poll(PART, EPOCH, row, S, S_POW2, True, EVERY_LANE)
        v = tl.where(i < S, (parts & 0xFFFFFFFF).to(tl.uint32).to(tl.float32, bitcast=True), 0.0)
    else:
        while tl.sum(((parts >> 32).to(tl.int32) != EPOCH).to(tl.int32), axis=0) > 0:
            parts = _poll(PART, EPOCH, row, S, S_POW2)
        v = (parts & 0xFFFFFFFF).to(tl.uint32).to(tl.float32, bitcast=True)
    return tl.sum(v, axis=0)


# SPLIT's row counters, before the slots (launch.slots): two sets of COUNTERS, a call with epoch
# E counting in set E % 2 while it empties set (E + 1) % 2 for the next call. Calls on a stream
# run in order and every SPLIT kernel empties the other set, so a set is all zeros when used.
N_COUNTERS = 4096  # a set; launch.split_grid takes SPLIT only up to this many chunks
COUNTERS = tl.constexpr(N_COUNTERS)


@triton.jit
def _counter(PART, EPOCH, s):
    """Chunk s's row counter of this call."""
    return PART - 2 * COUNTERS + (EPOCH % 2) * COUNTERS + s


@triton.jit
def _empty_next_counters(PART, EPOCH, pid, NPROG):
    """Every SPLIT program's last act: its share of the next call's set of counters zeroed (a
    few stores; at the end, where they hold no registers across the rounds)."""
    other = PART - 2 * COUNTERS + ((EPOCH + 1) % 2) * COUNTERS
    for i in range(pid, COUNTERS, NPROG):
        tl.store(other + i, 0)


@triton.jit
def _claim(cnt, DYNAMIC: tl.constexpr):
    """DYNAMIC: the next count of a chunk's counter, used a round later. Each count goes to one
    program: the chunk's rows, each once. Triton lowers a scalar atomic as thread 0's atom, a
    store of its result to shared memory and a barrier, all here, so the trip to L2 is waited
    for now, not hidden by the round (sm_90 PTX); a claim held in thread 0's registers until
    used (a masked tensor atomic) was no faster on the "+dyn" entries (NOTES.md, run 98)."""
    if DYNAMIC:
        return tl.atomic_add(cnt, 1, sem="relaxed", scope="gpu")
    return tl.zeros([], tl.int64)


@triton.jit
def _chunk(P, row, stride, c, m, M):
    """SPLIT: a row's chunk as stored (zeros past the last row)."""
    return tl.load(P + row.to(tl.int64) * stride + c, mask=m & (row < M), other=0.0)


@triton.jit
def _prefetch(P, row, stride, c, m, cw, mw, M, PAIRS: tl.constexpr):
    """SPLIT: the next round's chunk. PAIRS (16-bit data, aligned rows): loaded as 32-bit words,
    which stay in the registers the load fills until used. As 16-bit values the compiler repacks
    them into other registers within the round (sm_90 SASS: PRMT after the poll), which costs
    registers: bf16 4096 x 4 warps needs 127 a thread instead of 158 (NOTES.md, run 22)."""
    if PAIRS:
        # launch.words: the row stride is a multiple of 8 elements (16 bytes), so 4 words
        v = _chunk(P.to(tl.pointer_type(tl.int32)), row, tl.multiple_of(stride // 2, 4), cw, mw, M)
    else:
        v = _chunk(P, row, stride, c, m, M)
    return v


@triton.jit
def _elements(v, TY: tl.constexpr, PAIRS: tl.constexpr):
    """A _prefetch'ed chunk as values of TY, in element order."""
    if PAIRS:
        lo = v.to(tl.int16).to(TY, bitcast=True)  # little-endian: element 2i is the low half
        hi = (v >> 16).to(tl.int16).to(TY, bitcast=True)
        v = tl.interleave(lo, hi)
    return v


@triton.jit
def _split_start(X, R, H, PART, EPOCH, row, s, S, c, m, M, stride_x, stride_r, stride_h,
                 HAS_R: tl.constexpr, ACC: tl.constexpr):
    """SPLIT: loads and starts a row; returns h as stored."""
    x = _chunk(X, row, stride_x, c, m, M)
    r = _chunk(R, row, stride_r, c, m, M) if HAS_R else x
    return _split_publish(x, r, H, PART, EPOCH, row, s, S, c, m, M, stride_h, HAS_R, ACC)


@triton.jit
def _split_publish(x, r, H, PART, EPOCH, row, s, S, c, m, M, stride_h, HAS_R: tl.constexpr,
                   ACC: tl.constexpr):
    """SPLIT: starts a row from its loaded chunk (h stored, its partial sum published; nothing
    past the last row); returns h as stored."""
    r64 = row.to(tl.int64)
    h = _to_h(x, r, H, r64 * stride_h, c, m & (row < M), HAS_R, ACC)
    _publish(PART, EPOCH, r64, s, S, tl.sum(h * h, axis=0), row < M)
    return h.to(H.dtype.element_ty) if HAS_R else x


@triton.jit
def _to_h(x, r, H, h_off, cols, mask, HAS_R: tl.constexpr, ACC: tl.constexpr):
    """x (+ r, storing h) as ACC; h is rounded to H's dtype first, as torch's add does."""
    if HAS_R:
        h = _cast(x.to(ACC) + r.to(ACC), H.dtype.element_ty)
        tl.store(H + h_off + cols, h, mask=mask)
        return h.to(ACC)
    return x.to(ACC)


@triton.jit
def _load_h(X, R, H, x_off, r_off, h_off, cols, mask, HAS_R: tl.constexpr, ACC: tl.constexpr):
    x = tl.load(X + x_off + cols, mask=mask, other=0.0)
    r = tl.load(R + r_off + cols, mask=mask, other=0.0) if HAS_R else x
    return _to_h(x, r, H, h_off, cols, mask, HAS_R, ACC)


@triton.jit(do_not_specialize=["EPOCH"])
def rms_norm_fwd(
    X, R, W, Y, H, RSTD,  # x, residual, weight, y, h = x + residual, saved rstd (ACC)
    TRACE_BLK, TRACE_ROW,  # trace: per (row, block) [block sum, running sum]; per row [ss, ms, rms, rstd]
    PART,  # SPLIT: per (row, chunk) partial sums, tagged with the call's EPOCH (int64)
    stride_x, stride_r, stride_y, stride_h,  # elements between the starts of two rows
    M, N,  # rows, elements per row
    eps, offset,  # fp32 scalars
    NUM_GROUPS,  # SPLIT: program p does chunk p % S of rows p // S, + NUM_GROUPS, ...
    EPOCH,  # SPLIT: this call's tag (launch.slots); never specialised on
    BLOCK_M: tl.constexpr,  # rows per program (ONE_PASS only)
    BLOCK_N: tl.constexpr,  # elements of a row per block
    ONE_PASS: tl.constexpr,  # N <= BLOCK_N: the row stays in registers
    SPLIT: tl.constexpr, S_POW2: tl.constexpr,  # SPLIT mode; next power of two >= S
    PAIRS: tl.constexpr,  # SPLIT: x (and r) are 16-bit, rows aligned: prefetched as 32-bit words
    EARLY: tl.constexpr,  # SPLIT: next round's loads issued before this round's publish (run 31)
    HAS_W: tl.constexpr, HAS_R: tl.constexpr, STORE_RSTD: tl.constexpr,
    CASTING: tl.constexpr,  # CAST_NONE / CAST_LLAMA / CAST_GEMMA
    TRACE: tl.constexpr,  # False in production: True writes the trace buffers
    W_FIRST: tl.constexpr = False,  # ONE_PASS: w loaded beside x, before the sum (run 38): a
    # single wave of programs (a few rows) then waits one DRAM trip, not two; with many rows the
    # extra registers held across the sum cost more (16K x 8 warps: 107 -> 173 a thread)
    W_NATIVE: tl.constexpr = False,  # ONE_PASS or SPLIT, Llama casting, offset 0, x, w and y of
    # one 16-bit dtype: y = x_hat * w multiplied in that dtype (w held packed; see _apply_weight)
    DYNAMIC: tl.constexpr = False,  # SPLIT: past its first four rows a program takes the next
    # row of its chunk from a counter (_counter), so programs that run ahead do more rows
    PDL: tl.constexpr = False,  # launched as a programmatic dependent (_dependent_launch)
):
    _dependent_launch(PDL)
    pid = tl.program_id(0)
    IN_TY: tl.constexpr = H.dtype.element_ty if HAS_R else X.dtype.element_ty
    ACC: tl.constexpr = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    cols = tl.arange(0, BLOCK_N)
    if ONE_PASS:
        rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
        rows64 = rows.to(tl.int64)[:, None]  # 64-bit: rows * stride may pass 2^31
        col_ok = cols < N
        mask = (rows < M)[:, None] & col_ok[None, :]
        if HAS_W and W_FIRST:  # (not traced: the visualizer shows the load below)
            w = tl.load(W + cols[None, :], mask=col_ok[None, :], other=0.0)
        h = _load_h(X, R, H, rows64 * stride_x, rows64 * stride_r, rows64 * stride_h,
                    cols[None, :], mask, HAS_R, ACC)
        ss = tl.sum(h * h, axis=1)
        ms, rstd = _mean_rstd(ss, N, eps, ACC)
        if HAS_W and not W_FIRST:
            w = tl.load(W + cols, mask=col_ok, other=0.0)[None, :]
        if W_NATIVE:  # (run 78: 992 -> 664 SASS instructions at bf16 32K, +1.3 points)
            y = _native_product(_cast(h * rstd[:, None], IN_TY), w, IN_TY)
        else:
            if HAS_W:
                w = w.to(ACC)
            else:
                w = tl.full([1, BLOCK_N], 1.0, ACC) - offset
            y = _apply_weight(h, rstd[:, None], w, offset, CASTING, IN_TY, ACC)
        tl.store(Y + rows64 * stride_y + cols[None, :], _cast(y, Y.dtype.element_ty), mask=mask)
        if STORE_RSTD:
            tl.store(RSTD + rows, rstd, mask=rows < M)
        if TRACE:
            tl.store(TRACE_BLK + rows * 2, ss, mask=rows < M)
            tl.store(TRACE_BLK + rows * 2 + 1, ss, mask=rows < M)
            tl.store(TRACE_ROW + rows * 4, ss, mask=rows < M)
            tl.store(TRACE_ROW + rows * 4 + 1, ms, mask=rows < M)
            tl.store(TRACE_ROW + rows * 4 + 2, tl.sqrt(ms.to(tl.float64)).to(ACC), mask=rows < M)
            tl.store(TRACE_ROW + rows * 4 + 3, rstd, mask=rows < M)
    elif SPLIT:
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
        cnt = _counter(PART, EPOCH, s)
        hs = _split_start(X, R, H, PART, EPOCH, row, s, S, c, m, M, stride_x, stride_r,
                          stride_h, HAS_R, ACC)
        hs2 = _split_start(X, R, H, PART, EPOCH, row + G, s, S, c, m, M, stride_x, stride_r,
                           stride_h, HAS_R, ACC)
        cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # PAIRS: words of this chunk
        mw = cw < N // 2  # (N is even with PAIRS)
        x = _prefetch(X, row + 2 * G, stride_x, c, m, cw, mw, M, PAIRS)
        r = _prefetch(R, row + 2 * G, stride_r, c, m, cw, mw, M, PAIRS) if HAS_R else x
        parts = _poll(PART, EPOCH, row.to(tl.int64), S, S_POW2)
        # The rows in flight: row (finished this round), nxt (its slots polled a round ahead),
        # new (started this round) and then (its chunk loaded a round ahead). Static: G apart.
        # DYNAMIC: from a program's fifth row on, claimed from the counter a round before use.
        nxt = row + G
        new = row + 2 * G
        then = row + 3 * G
        claim = _claim(cnt, DYNAMIC)
        while row < M:
            row64 = row.to(tl.int64)
            # This row's slots were read a round ago (usually filled by then: no wait); the next
            # row's are read this round, their answer used next round: here, with a residual or
            # rows handed out; else after this row's total, into `parts` itself (run 104: at the
            # start, `parts = ahead` below waited on the load, 11% of the stall samples; later,
            # +0.1-0.9 points there; with a residual or DYNAMIC -1.7 to +0.6).
            if HAS_R or DYNAMIC:
                ahead = _poll(PART, EPOCH, nxt.to(tl.int64), S, S_POW2, nxt < M)
            xe = _elements(x, X.dtype.element_ty, PAIRS)
            re = _elements(r, R.dtype.element_ty, PAIRS) if HAS_R else xe
            if EARLY:  # the next round's loads go out before this chunk is summed and published
                x = _prefetch(X, then, stride_x, c, m, cw, mw, M, PAIRS)
                r = _prefetch(R, then, stride_r, c, m, cw, mw, M, PAIRS) if HAS_R else x
            hs3 = _split_publish(xe, re, H, PART, EPOCH, new, s, S, c, m, M, stride_h, HAS_R, ACC)
            if not EARLY:  # after: one chunk fewer held while publishing (registers)
                x = _prefetch(X, then, stride_x, c, m, cw, mw, M, PAIRS)
                r = _prefetch(R, then, stride_r, c, m, cw, mw, M, PAIRS) if HAS_R else x
            ms, rstd = _mean_rstd(_total(PART, EPOCH, row64, S, parts, S_POW2), N, eps, ACC)
            if not HAS_R and not DYNAMIC:
                parts = _poll(PART, EPOCH, nxt.to(tl.int64), S, S_POW2, nxt < M)
            if STORE_RSTD:
                tl.store(RSTD + row64, rstd, mask=s == 0)
            if W_NATIVE:
                y = _native_product(_cast(hs.to(ACC) * rstd, IN_TY), w, IN_TY)
            else:
                y = _apply_weight(hs.to(ACC), rstd, w.to(ACC), offset, CASTING, IN_TY, ACC)
            tl.store(Y + row64 * stride_y + c, _cast(y, Y.dtype.element_ty), mask=m)
            hs = hs2
            hs2 = hs3
            if HAS_R or DYNAMIC:
                parts = ahead
            row = nxt
            nxt = new
            new = then
            if DYNAMIC:
                then = 4 * G + claim.to(tl.int32)
                claim = _claim(cnt, DYNAMIC)
            else:
                then += G
        _empty_next_counters(PART, EPOCH, pid, G * S)
    else:
        row = pid.to(tl.int64)
        num_blocks = tl.cdiv(N, BLOCK_N)
        ss = tl.zeros([], ACC)
        for b in range(0, num_blocks):  # step 1: sum of squares, block by block
            c = b * BLOCK_N + cols
            h = _load_h(X, R, H, row * stride_x, row * stride_r, row * stride_h, c, c < N, HAS_R, ACC)
            block_sum = tl.sum(h * h, axis=0)
            ss += block_sum
            if TRACE:
                tl.store(TRACE_BLK + (row * num_blocks + b) * 2, block_sum)
                tl.store(TRACE_BLK + (row * num_blocks + b) * 2 + 1, ss)
        ms, rstd = _mean_rstd(ss, N, eps, ACC)  # step 2
        if STORE_RSTD:
            tl.store(RSTD + row, rstd)
        if TRACE:
            tl.store(TRACE_ROW + row * 4, ss)
            tl.store(TRACE_ROW + row * 4 + 1, ms)
            tl.store(TRACE_ROW + row * 4 + 2, tl.sqrt(ms.to(tl.float64)).to(ACC))
            tl.store(TRACE_ROW + row * 4 + 3, rstd)
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
            y = _apply_weight(h, rstd, w, offset, CASTING, IN_TY, ACC)
            tl.store(Y + row * stride_y + c, _cast(y, Y.dtype.element_ty), mask=m)


@triton.jit
def _store_dx(DX, DR, DH, dx, off_dx, off_dr, off_dh, cols, mask, HAS_DH: tl.constexpr,
              STORE_DR: tl.constexpr, ACC: tl.constexpr):
    """dx (+ the gradient that reached h directly) to DX, and to DR in the residual's dtype."""
    if HAS_DH:
        dx += tl.load(DH + off_dh + cols, mask=mask, other=0.0).to(ACC)
    tl.store(DX + off_dx + cols, _cast(dx, DX.dtype.element_ty), mask=mask)
    if STORE_DR:
        tl.store(DR + off_dr + cols, _cast(dx, DR.dtype.element_ty), mask=mask)


@triton.jit
def _bwd_start(X, DY, RSTD, PART, EPOCH, row, s, S, c, m, M, w, offset, stride_x, stride_dy,
               ACC: tl.constexpr):
    """SPLIT backward: loads and starts a row (its partial of x_hat * wdy published)."""
    x = _chunk(X, row, stride_x, c, m, M)
    dy = _chunk(DY, row, stride_dy, c, m, M)
    rstd = _bwd_publish(x, dy, RSTD, PART, EPOCH, row, s, S, M, w, offset, ACC)
    return x, dy, rstd


@triton.jit
def _bwd_publish(x, dy, RSTD, PART, EPOCH, row, s, S, M, w, offset, ACC: tl.constexpr):
    """SPLIT backward: a loaded row's partial of x_hat * wdy published; returns its rstd."""
    r64 = row.to(tl.int64)
    rstd = tl.load(RSTD + r64, mask=row < M, other=0.0)
    wdy = (offset + w.to(ACC)) * dy.to(ACC)
    _publish(PART, EPOCH, r64, s, S, tl.sum(x.to(ACC) * rstd * wdy, axis=0), row < M)
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
):
    _dependent_launch(PDL)
    pid = tl.program_id(0)
    ACC: tl.constexpr = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    cols = tl.arange(0, BLOCK_N)
    if ONE_PASS:
        col_ok = cols < N
        if HAS_W:
            wo = offset + tl.load(W + cols, mask=col_ok, other=0.0).to(ACC)
        else:
            wo = tl.full([BLOCK_N], 1.0, ACC)
        dw = tl.zeros([BLOCK_M, BLOCK_N], ACC)  # summed over rows once, at the end
        tile = pid
        rows = tile * BLOCK_M + tl.arange(0, BLOCK_M)
        mask = (rows < M)[:, None] & col_ok[None, :]
        rows64 = rows.to(tl.int64)[:, None]
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
            x = tl.load(X + rn64 * stride_x + cols[None, :], mask=mask_n, other=0.0)
            dy = tl.load(DY + rn64 * stride_dy + cols[None, :], mask=mask_n, other=0.0)
            wdy = wo[None, :] * dyf
            c1 = tl.sum(x_hat * wdy, axis=1)[:, None] / N
            dx = (wdy - x_hat * c1) * rstd
            _store_dx(DX, DR, DH, dx, rows64 * stride_dx, rows64 * stride_dr, rows64 * stride_dh,
                      cols[None, :], mask, HAS_DH, STORE_DR, ACC)
            if STORE_DW:
                dw += dyf * x_hat
            rows, mask, rows64 = rows_n, mask_n, rn64
        if STORE_DW:
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
        xa, dya, ra = _bwd_start(X, DY, RSTD, PART, EPOCH, row, s, S, c, m, M, w, offset,
                                 stride_x, stride_dy, ACC)
        xb, dyb, rb = _bwd_start(X, DY, RSTD, PART, EPOCH, row + G, s, S, c, m, M, w, offset,
                                 stride_x, stride_dy, ACC)
        cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # PAIRS: words of this chunk
        mw = cw < N // 2
        x = _prefetch(X, row + 2 * G, stride_x, c, m, cw, mw, M, PAIRS)
        dy = _prefetch(DY, row + 2 * G, stride_dy, c, m, cw, mw, M, PAIRS)
        parts = _poll(PART, EPOCH, row.to(tl.int64), S, S_POW2, True, True)  # EVERY_LANE
        for _ in range(g, M, G):
            row64 = row.to(tl.int64)
            ahead = _poll(PART, EPOCH, row64 + G, S, S_POW2, row + G < M, True)  # EVERY_LANE
            new = row + 2 * G
            xn = _elements(x, X.dtype.element_ty, PAIRS)
            dyn = _elements(dy, DY.dtype.element_ty, PAIRS)
            if EARLY:  # as in rms_norm_fwd
                x = _prefetch(X, new + G, stride_x, c, m, cw, mw, M, PAIRS)
                dy = _prefetch(DY, new + G, stride_dy, c, m, cw, mw, M, PAIRS)
            rn = _bwd_publish(xn, dyn, RSTD, PART, EPOCH, new, s, S, M, w, offset, ACC)
            if not EARLY:
                x = _prefetch(X, new + G, stride_x, c, m, cw, mw, M, PAIRS)
                dy = _prefetch(DY, new + G, stride_dy, c, m, cw, mw, M, PAIRS)
            x_hat = xa.to(ACC) * ra
            dyf = dya.to(ACC)
            wdy = (offset + w.to(ACC)) * dyf
            c1 = _total(PART, EPOCH, row64, S, parts, S_POW2, True) / N
            dx = (wdy - x_hat * c1) * ra
            _store_dx(DX, DR, DH, dx, row64 * stride_dx, row64 * stride_dr, row64 * stride_dh, c, m,
                      HAS_DH, STORE_DR, ACC)
            if STORE_DW:
                dw += dyf * x_hat
            xa, dya, ra = xb, dyb, rb
            xb, dyb, rb = xn, dyn, rn
            parts = ahead
            row += G
        if STORE_DW:
            tl.store(DW_PART + g.to(tl.int64) * N + c, dw, mask=m)
        _empty_next_counters(PART, EPOCH, pid, NUM_PROGS)  # (the forward's, kept in step)
    else:
        num_blocks = tl.cdiv(N, BLOCK_N)
        for row in range(pid, M, NUM_PROGS):
            row64 = tl.cast(row, tl.int64)
            rstd = tl.load(RSTD + row)
            acc = tl.zeros([BLOCK_N], ACC)
            for b in range(0, num_blocks):  # c1 needs the whole row first
                c = b * BLOCK_N + cols
                m = c < N
                x = tl.load(X + row64 * stride_x + c, mask=m, other=0.0).to(ACC)
                dy = tl.load(DY + row64 * stride_dy + c, mask=m, other=0.0).to(ACC)
                if HAS_W:
                    dy *= offset + tl.load(W + c, mask=m, other=0.0).to(ACC)
                acc += x * dy
            c1 = tl.sum(acc, axis=0) * rstd / N
            for i in range(0, num_blocks):
                c = (num_blocks - 1 - i) * BLOCK_N + cols
                m = c < N
                x_hat = tl.load(X + row64 * stride_x + c, mask=m, other=0.0).to(ACC) * rstd
                dy = tl.load(DY + row64 * stride_dy + c, mask=m, other=0.0).to(ACC)
                if HAS_W:
                    wdy = (offset + tl.load(W + c, mask=m, other=0.0).to(ACC)) * dy
                else:
                    wdy = dy
                dx = (wdy - x_hat * c1) * rstd
                _store_dx(DX, DR, DH, dx, row64 * stride_dx, row64 * stride_dr, row64 * stride_dh, c,
                          m, HAS_DH, STORE_DR, ACC)
                if STORE_DW:  # this program's own partial row: no other program touches it
                    part = DW_PART + pid.to(tl.int64) * N + c
                    # (c * 0 + row): a vector, since the interpreter rejects a scalar bool here
                    prev = tl.load(part, mask=m & (c * 0 + row != pid), other=0.0)
                    tl.store(part, prev + dy * x_hat, mask=m)


@triton.jit
def dw_reduce(
    DW_PART, DW,  # [P, N] ACC partial sums -> [N] in the weight's dtype
    P, N,
    BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    PDL: tl.constexpr = False,  # as in rms_norm_fwd
):
    """Sums the partials in a fixed order: dw is bitwise identical from run to run."""
    _dependent_launch(PDL)
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros([BLOCK_P, BLOCK_N], DW_PART.dtype.element_ty)
    for p0 in range(0, P, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        mask = (p < P)[:, None] & (cols < N)[None, :]
        acc += tl.load(DW_PART + p.to(tl.int64)[:, None] * N + cols[None, :], mask=mask, other=0.0)
    tl.store(DW + cols, _cast(tl.sum(acc, axis=0), DW.dtype.element_ty), mask=cols < N)

"""SPLIT's meeting: the S programs that each hold one chunk of a row exchange partial sums.

A row of N elements is cut into S = cdiv(N, BLOCK_N) chunks, each in the registers of its own
program. For the row's total (sum(h^2) forward, sum(x_hat * wdy) backward) each program
publishes its chunk's partial sum into the row's slot s, then polls the row's S slots until all
have arrived, and adds them in chunk order: the same bits in every program and every run.

    slot(row, s) = EPOCH << 32 | bits(partial sum)      one 64-bit word, written in one exchange

A slot holding another call's EPOCH has not arrived yet, so the slots are reused from call to
call with the next epoch instead of being emptied before each (that fill cost 2.2% of a 16-bit
forward call past 32K). Below the slots lie two sets of row counters (DYNAMIC's claims).

The programs wait for each other: the launcher sizes the grid to what the GPU holds at once.
Also here: SPLIT's chunk loads (chunk, prefetch, elements), shared by forward and backward.
"""

import triton
import triton.language as tl


@triton.jit
def publish(PART, EPOCH, row, s, S, value, live):
    """This program's partial sum for (row, chunk s): the call's EPOCH in the high 32 bits,
    the sum's bits below, in one 64-bit exchange. The value is its own arrival flag: no fence, so
    nothing waits for earlier stores."""
    word = (EPOCH.to(tl.int64) << 32) | value.to(tl.uint32, bitcast=True).to(tl.int64)
    tl.atomic_xchg(PART + row * S + s, word, mask=live, sem="relaxed", scope="gpu")


@triton.jit
def poll(PART, EPOCH, row, S, S_POW2: tl.constexpr, live=True, EVERY_LANE: tl.constexpr = False):
    """Reads the S slots of a row as they are now (some may hold an earlier call's tag).
    Lanes past S (and a row that is not live) read as arrived zeros through the load's mask,
    which Triton lowers as a load into a spare register and a predicated copy that waits for it.
    EVERY_LANE: no mask; every lane reads a valid slot (past S lane S - 1, a row past M row 0)
    and total ignores lanes past S; a row past M is never finished, so its answer is unused.
    Measured on the H100: the backward -0.9 to +5.7 points this way (fp32 256K, 256 slots a row:
    91.4 -> 97.1% of copy), the forward -0.4 to +0.1; so the backward polls so, the forward
    through the mask."""
    i = tl.arange(0, S_POW2)
    if EVERY_LANE:
        v = tl.load(PART + tl.where(live, row, 0) * S + tl.minimum(i, S - 1), volatile=True)
    else:
        v = tl.load(PART + row * S + i, mask=(i < S) & live, other=EPOCH.to(tl.int64) << 32,
                    volatile=True)
    return v


@triton.jit
def total(PART, EPOCH, row, S, parts, S_POW2: tl.constexpr, EVERY_LANE: tl.constexpr = False):
    """The row's total from a first poll, polling again until every slot holds this call's
    tag, added in chunk order: the same bits in every program and every run (and with or
    without EVERY_LANE: the lanes past S add zeros in the same places)."""
    i = tl.arange(0, S_POW2)
    if EVERY_LANE:
        while tl.sum((((parts >> 32).to(tl.int32) != EPOCH) & (i < S)).to(tl.int32), axis=0) > 0:
            parts = poll(PART, EPOCH, row, S, S_POW2, True, EVERY_LANE)
        v = tl.where(i < S, (parts & 0xFFFFFFFF).to(tl.uint32).to(tl.float32, bitcast=True), 0.0)
    else:
        while tl.sum(((parts >> 32).to(tl.int32) != EPOCH).to(tl.int32), axis=0) > 0:
            parts = poll(PART, EPOCH, row, S, S_POW2)
        v = (parts & 0xFFFFFFFF).to(tl.uint32).to(tl.float32, bitcast=True)
    return tl.sum(v, axis=0)


# The row counters, before the slots (plan.slots): two sets of COUNTERS, a call with epoch E
# counting in set E % 2 while it empties set (E + 1) % 2 for the next call. Calls on a stream run
# in order and every SPLIT kernel empties the other set, so a set is all zeros when used.
N_COUNTERS = 4096  # a set; the launcher takes SPLIT only up to this many chunks
COUNTERS = tl.constexpr(N_COUNTERS)


@triton.jit
def counter(PART, EPOCH, s):
    """Chunk s's row counter of this call."""
    return PART - 2 * COUNTERS + (EPOCH % 2) * COUNTERS + s


@triton.jit
def empty_next_counters(PART, EPOCH, pid, NPROG):
    """Every SPLIT program's last act: its share of the next call's set of counters zeroed (a
    few stores; at the end, where they hold no registers across the rounds)."""
    other = PART - 2 * COUNTERS + ((EPOCH + 1) % 2) * COUNTERS
    for i in range(pid, COUNTERS, NPROG):
        tl.store(other + i, 0)


@triton.jit
def claim(cnt, DYNAMIC: tl.constexpr):
    """DYNAMIC: the next count of a chunk's counter, used a round later. Each count goes to one
    program: the chunk's rows, each once. Triton lowers a scalar atomic as thread 0's atom, a
    store of its result to shared memory and a barrier, all here, so the trip to L2 is waited
    for now, not hidden by the round (sm_90 PTX); a claim held in thread 0's registers until
    used (a masked tensor atomic) was no faster on the "+dyn" entries."""
    if DYNAMIC:
        return tl.atomic_add(cnt, 1, sem="relaxed", scope="gpu")
    return tl.zeros([], tl.int64)


# ---- SPLIT's chunk loads ----------------------------------------------------------------------
@triton.jit
def chunk(P, row, stride, c, m, M):
    """A row's chunk as stored (zeros past the last row)."""
    return tl.load(P + row.to(tl.int64) * stride + c, mask=m & (row < M), other=0.0)


@triton.jit
def prefetch(P, row, stride, c, m, cw, mw, M, PAIRS: tl.constexpr):
    """The next round's chunk. PAIRS (16-bit data, aligned rows): loaded as 32-bit words,
    which stay in the registers the load fills until used. As 16-bit values the compiler repacks
    them into other registers within the round (sm_90 SASS: PRMT after the poll), which costs
    registers: bf16 4096 x 4 warps needs 127 a thread instead of 158."""
    if PAIRS:
        # plan.words: the row stride is a multiple of 8 elements (16 bytes), so 4 words
        v = chunk(P.to(tl.pointer_type(tl.int32)), row, tl.multiple_of(stride // 2, 4), cw, mw, M)
    else:
        v = chunk(P, row, stride, c, m, M)
    return v


@triton.jit
def elements(v, TY: tl.constexpr, PAIRS: tl.constexpr):
    """A prefetch'ed chunk as values of TY, in element order."""
    if PAIRS:
        lo = v.to(tl.int16).to(TY, bitcast=True)  # little-endian: element 2i is the low half
        hi = (v >> 16).to(tl.int16).to(TY, bitcast=True)
        v = tl.interleave(lo, hi)
    return v

"""LayerNorm forward in Triton: the visualizer's point of comparison for RMSNorm.

Per row of N elements (every sum in fp32):
    mean = sum(x_i) / N                  pass 1: the pass RMSNorm does without
    var  = sum((x_i - mean)^2) / N       pass 2: needs the mean first, so a second walk
    rstd = 1 / sqrt(var + eps)
    y    = (x - mean) * rstd * w + b     pass 3: rounded once, to y's dtype (as torch does)

A row that fits in one block (ONE_PASS) is read once and kept in registers for all three passes;
a longer row is read three times, block by block. One program per row. The variance is taken
around the mean (two passes) rather than as E[x^2] - mean^2, which cancels badly when
|mean| >> std.
"""

import torch
import triton
import triton.language as tl

from .kernels.common import cast, mean_rstd
from .checks import check_scalar, check_tensor
from .plan import dense


@triton.jit
def layer_norm_fwd(
    X, W, B, Y, MEAN, RSTD,  # x, weight, bias, y; saved per-row mean and rstd (fp32)
    TRACE_BLK,  # trace: per (row, block) [block sum, running sum, block sum of d^2, running]
    TRACE_ROW,  # trace: per row [sum, mean, sum of d^2, var, rstd]
    stride_x, stride_y,  # elements between the starts of two rows
    N,  # elements per row
    eps,  # fp32 scalar
    BLOCK_N: tl.constexpr,  # elements of a row per block
    ONE_PASS: tl.constexpr,  # N <= BLOCK_N: the row stays in registers
    HAS_W: tl.constexpr, HAS_B: tl.constexpr,
    TRACE: tl.constexpr,  # False in production: True writes the trace buffers
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    X += row * stride_x
    Y += row * stride_y
    if ONE_PASS:
        m = cols < N
        x = tl.load(X + cols, mask=m, other=0.0).to(tl.float32)
        s = tl.sum(x, axis=0)  # pass 1
        mean, _ = mean_rstd(s, N, eps, tl.float32)  # (its rstd is unused)
        d = tl.where(m, x - mean, 0.0)  # masked lanes would add mean^2 each
        sd = tl.sum(d * d, axis=0)  # pass 2
        var, rstd = mean_rstd(sd, N, eps, tl.float32)
        tl.store(MEAN + row, mean)
        tl.store(RSTD + row, rstd)
        y = d * rstd  # pass 3
        if HAS_W:
            y = y * tl.load(W + cols, mask=m, other=0.0).to(tl.float32)
        if HAS_B:
            y = y + tl.load(B + cols, mask=m, other=0.0).to(tl.float32)
        tl.store(Y + cols, cast(y, Y.dtype.element_ty), mask=m)
        if TRACE:
            tl.store(TRACE_BLK + row * 4, s)  # one block: its sums are the running sums
            tl.store(TRACE_BLK + row * 4 + 1, s)
            tl.store(TRACE_BLK + row * 4 + 2, sd)
            tl.store(TRACE_BLK + row * 4 + 3, sd)
    else:
        num_blocks = tl.cdiv(N, BLOCK_N)
        s = tl.zeros([], tl.float32)
        for b in range(0, num_blocks):  # pass 1: the sum, for the mean
            c = b * BLOCK_N + cols
            x = tl.load(X + c, mask=c < N, other=0.0).to(tl.float32)
            block_sum = tl.sum(x, axis=0)
            s += block_sum
            if TRACE:
                tl.store(TRACE_BLK + (row * num_blocks + b) * 4, block_sum)
                tl.store(TRACE_BLK + (row * num_blocks + b) * 4 + 1, s)
        mean, _ = mean_rstd(s, N, eps, tl.float32)  # (its rstd is unused)
        sd = tl.zeros([], tl.float32)
        for b in range(0, num_blocks):  # pass 2: squared deviations from the mean
            c = b * BLOCK_N + cols
            x = tl.load(X + c, mask=c < N, other=0.0).to(tl.float32)
            d = tl.where(c < N, x - mean, 0.0)
            block_sd = tl.sum(d * d, axis=0)
            sd += block_sd
            if TRACE:
                tl.store(TRACE_BLK + (row * num_blocks + b) * 4 + 2, block_sd)
                tl.store(TRACE_BLK + (row * num_blocks + b) * 4 + 3, sd)
        var, rstd = mean_rstd(sd, N, eps, tl.float32)
        tl.store(MEAN + row, mean)
        tl.store(RSTD + row, rstd)
        for b in range(0, num_blocks):  # pass 3: normalize, scale, shift
            c = b * BLOCK_N + cols
            m = c < N
            x = tl.load(X + c, mask=m, other=0.0).to(tl.float32)
            y = (x - mean) * rstd
            if HAS_W:
                y = y * tl.load(W + c, mask=m, other=0.0).to(tl.float32)
            if HAS_B:
                y = y + tl.load(B + c, mask=m, other=0.0).to(tl.float32)
            tl.store(Y + c, cast(y, Y.dtype.element_ty), mask=m)
    if TRACE:
        tl.store(TRACE_ROW + row * 5, s)
        tl.store(TRACE_ROW + row * 5 + 1, mean)
        tl.store(TRACE_ROW + row * 5 + 2, sd)
        tl.store(TRACE_ROW + row * 5 + 3, var)
        tl.store(TRACE_ROW + row * 5 + 4, rstd)


def layer_norm(x, weight=None, bias=None, eps=1e-5, *, block_n=None, trace=False):
    """LayerNorm over the last dim of x. Returns y, or (y, mean, rstd, (trace_blk, trace_row)).

    block_n: elements per block, a power of two (default: the whole row in one block, up to
    4096). trace_blk is [M, num_blocks, 4], trace_row is [M, 5]; see layer_norm_fwd.
    """
    check_tensor("x", x, (torch.float32, torch.float16, torch.bfloat16))
    if x.dim() == 0:
        raise ValueError("x is a 0-dim tensor, expected at least 1 dim (..., N)")
    n = x.shape[-1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            check_tensor(name, t, (torch.float32, torch.float16, torch.bfloat16))
            if tuple(t.shape) != (n,):
                raise ValueError(f"{name} has shape {tuple(t.shape)}, expected ({n},) to match "
                                 "the last dim of x")
    eps = check_scalar("eps", eps, minimum=0.0)
    weight, bias = dense(weight), dense(bias)  # the kernel reads W + column, B + column
    if block_n is None:
        block_n = min(triton.next_power_of_2(max(n, 1)), 4096)
    if block_n < 1 or block_n & (block_n - 1):
        raise ValueError(f"block_n is {block_n}, expected a power of two")
    x2 = x.reshape(-1, n) if n else x.reshape(-1, 1)[:0]
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    m = x2.shape[0]
    y = torch.empty_like(x2)
    mean = torch.empty(m, dtype=torch.float32, device=x.device)
    rstd = torch.empty_like(mean)
    one_pass = n <= block_n
    nb = 1 if one_pass else -(-n // block_n)
    tr_blk = torch.full((m, nb, 4), float("nan"), device=x.device)
    tr_row = torch.full((m, 5), float("nan"), device=x.device)
    if m and n:
        layer_norm_fwd[(m,)](
            x2, weight if weight is not None else x2, bias if bias is not None else x2, y, mean,
            rstd, tr_blk if trace else x2, tr_row if trace else x2, x2.stride(0), y.stride(0),
            n, eps, BLOCK_N=block_n, ONE_PASS=one_pass, HAS_W=weight is not None,
            HAS_B=bias is not None, TRACE=trace, num_warps=1 if block_n <= 1024 else 4,
        )
    y = y.view(x.shape)
    return (y, mean, rstd, (tr_blk, tr_row)) if trace else y

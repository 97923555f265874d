"""gated_fwd and gated_bwd: RMSNorm with a gate z, in groups of G channels.

With s = act(z) (silu: z * sigmoid(z); sigmoid) and, per group of G channels of a row, rstd
over the normalized values (every sum in ACC):
    NORM_BEFORE_GATE (Qwen3-Next, FLA, Kimi):  y = x_hat * w * s,         x_hat = x * rstd(x)
    otherwise (Mamba2):                        y = h_hat * w,  h = x * s, h_hat = h * rstd(h)
CASTING rounds the norm as rms_norm's does (common.apply_weight); before the gate, Llama's
casting also rounds x_hat * w to MID_TY (promote(x, w), as Qwen3-Next's `w * x_hat.to(dtype)`).

Backward, with g the gradient reaching the norm's output (dy * s before the gate, dy after)
and u the normalized input (x before the gate, h after), per group:
    c1 = sum(u_hat * w * g) / G,  du = rstd * (w * g - u_hat * c1),  dw = sum over rows g * u_hat
    before the gate: dx = du,      dz = dy * x_hat * w * act'(z)
    after the gate:  dx = du * s,  dz = du * x * act'(z)
A row is cut into SLABS slabs of GPS whole groups (the launcher keeps a slab to a few thousand
elements: registers); a program holds a slab of a row as a [GPS, G] tile. The forward runs a
program per (row, slab); the backward's programs walk rows persistently, each on one slab, and
keep that slab's dw partial sums as a tile (DW_PART[p, slab's columns]), reduced by dw_reduce.
LOOP: a group too long to hold (then a slab is one group) is walked in blocks of BLOCK, twice
(its sum first), as kernels/loop.py walks a long row; the backward then adds each row's dw terms
to its DW_PART row block by block, as loop_row_bwd does.
"""

import triton
import triton.language as tl

from .common import apply_weight, cast, dependent_launch, mean_rstd

ACT_SILU, ACT_SIGMOID = 0, 1


@triton.jit
def gate(z, ACT: tl.constexpr):
    """(act(z), act'(z)) in z's dtype (ACC); silu as z / (1 + exp(-z)), torch's formula."""
    e = 1.0 + tl.exp(-z)
    sig = 1.0 / e
    if ACT == 0:
        return z / e, sig * (1.0 + z * (1.0 - sig))
    return sig, sig * (1.0 - sig)


@triton.jit
def normalized(x, z, HAS_Z: tl.constexpr, NORM_BEFORE_GATE: tl.constexpr, ACT: tl.constexpr):
    """(u, s, act'(z)): u the values normalized (x, or x * act(z) after the gate), s = act(z)."""
    if HAS_Z:
        s, ds = gate(z, ACT)
        if NORM_BEFORE_GATE:
            return x, s, ds
        return x * s, s, ds
    return x, x, x


@triton.jit
def gated_y(u, rstd, w, s, HAS_Z: tl.constexpr, NORM_BEFORE_GATE: tl.constexpr,
            CASTING: tl.constexpr, IN_TY: tl.constexpr, MID_TY: tl.constexpr, ACC: tl.constexpr):
    """y from u, its group's rstd, w and the gate s (module docstring)."""
    y = apply_weight(u, rstd, w, 0.0, CASTING, IN_TY, ACC)
    if HAS_Z and NORM_BEFORE_GATE:
        if CASTING == 1:
            y = cast(y, MID_TY).to(ACC)
        y = y * s
    return y


@triton.jit
def gated_grads(x, dy, u_hat, w, wg, s, ds, c1, rstd, HAS_Z: tl.constexpr,
                NORM_BEFORE_GATE: tl.constexpr):
    """(dx, dz) from c1 and wg = w * g (module docstring)."""
    du = (wg - u_hat * c1) * rstd
    if HAS_Z:
        if NORM_BEFORE_GATE:
            return du, dy * u_hat * w * ds
        return du * s, du * x * ds
    return du, du


@triton.jit
def block_in(X, DY, Z, W, r64, stride_x, stride_dy, stride_z, c, m, BLOCK: tl.constexpr,
             HAS_Z: tl.constexpr, HAS_W: tl.constexpr, ACC: tl.constexpr):
    """The backward's LOOP: a block's x, dy, z (x without a gate) and w (ones without one)."""
    x = tl.load(X + r64 * stride_x + c, mask=m, other=0.0).to(ACC)
    dy = tl.load(DY + r64 * stride_dy + c, mask=m, other=0.0).to(ACC)
    z = tl.load(Z + r64 * stride_z + c, mask=m, other=0.0).to(ACC) if HAS_Z else x
    w = tl.load(W + c, mask=m, other=0.0).to(ACC) if HAS_W else tl.full([BLOCK], 1.0, ACC)
    return x, dy, z, w


@triton.jit
def tile(slab, G, NG, GPS, NG_P2: tl.constexpr, G_P2: tl.constexpr):
    """Slab `slab` of a row as [NG_P2, G_P2]: each element's column and which are in the row;
    each tile row's group and whether it is one ([NG_P2, 1])."""
    grp = slab * GPS + tl.arange(0, NG_P2)[:, None]
    ok = (tl.arange(0, NG_P2)[:, None] < GPS) & (grp < NG)
    c = tl.arange(0, G_P2)[None, :]
    return grp * G + c, ok & (c < G), grp, ok


@triton.jit
def gated_fwd(
    X, Z, W, Y, RSTD,  # RSTD: [M, NG] ACC, saved for the backward
    stride_x, stride_z, stride_y,  # elements between two rows' starts
    M, N, G, eps,  # rows, elements a row, elements a group (N % G == 0)
    GPS, SLABS,  # groups a slab, slabs a row (a program per row and slab)
    NG_P2: tl.constexpr, G_P2: tl.constexpr,  # powers of two >= GPS and >= G
    HAS_Z: tl.constexpr, HAS_W: tl.constexpr, NORM_BEFORE_GATE: tl.constexpr,
    ACT: tl.constexpr,  # ACT_SILU / ACT_SIGMOID
    CASTING: tl.constexpr, STORE_RSTD: tl.constexpr,
    PDL: tl.constexpr = False,  # as in rms_norm_fwd
    LOOP: tl.constexpr = False, BLOCK: tl.constexpr = 1024,  # a slab is a group, in blocks
):
    dependent_launch(PDL)
    row = (tl.program_id(0) // SLABS).to(tl.int64)
    IN_TY: tl.constexpr = X.dtype.element_ty
    ACC: tl.constexpr = tl.float64 if IN_TY == tl.float64 else tl.float32
    W_TY: tl.constexpr = W.dtype.element_ty if HAS_W else IN_TY
    MID_TY: tl.constexpr = IN_TY if W_TY == IN_TY else ACC  # promote(x, w)
    ng = N // G
    if LOOP:
        x_row, z_row = X + row * stride_x, Z + row * stride_z
        grp = tl.program_id(0) % SLABS
        nb = tl.cdiv(G, BLOCK)
        ss = tl.zeros([], ACC)
        for b in range(0, nb):  # the group's sum of squares
            k = b * BLOCK + tl.arange(0, BLOCK)
            c, m = grp * G + k, k < G
            u = tl.load(x_row + c, mask=m, other=0.0).to(ACC)
            if HAS_Z and not NORM_BEFORE_GATE:
                u, _, _ = normalized(u, tl.load(z_row + c, mask=m, other=0.0).to(ACC), HAS_Z,
                                     NORM_BEFORE_GATE, ACT)
            ss += tl.sum(u * u, axis=0)
        _, rstd = mean_rstd(ss, G, eps, ACC)
        for i in range(0, nb):  # y, last block first: it is the likeliest in L2
            k = (nb - 1 - i) * BLOCK + tl.arange(0, BLOCK)
            c, m = grp * G + k, k < G
            x = tl.load(x_row + c, mask=m, other=0.0).to(ACC)
            z = tl.load(z_row + c, mask=m, other=0.0).to(ACC) if HAS_Z else x
            u, s, _ = normalized(x, z, HAS_Z, NORM_BEFORE_GATE, ACT)
            w = tl.load(W + c, mask=m, other=0.0).to(ACC) if HAS_W else tl.full([BLOCK], 1.0, ACC)
            y = gated_y(u, rstd, w, s, HAS_Z, NORM_BEFORE_GATE, CASTING, IN_TY, MID_TY, ACC)
            tl.store(Y + row * stride_y + c, cast(y, Y.dtype.element_ty), mask=m)
        if STORE_RSTD:
            tl.store(RSTD + row * ng + grp, rstd)
    else:
        cols, mask, grp, ok = tile(tl.program_id(0) % SLABS, G, ng, GPS, NG_P2, G_P2)
        x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(ACC)
        z = tl.load(Z + row * stride_z + cols, mask=mask, other=0.0).to(ACC) if HAS_Z else x
        u, s, _ = normalized(x, z, HAS_Z, NORM_BEFORE_GATE, ACT)
        _, rstd = mean_rstd(tl.sum(u * u, axis=1), G, eps, ACC)
        if HAS_W:
            w = tl.load(W + cols, mask=mask, other=0.0).to(ACC)
        else:
            w = tl.full([NG_P2, G_P2], 1.0, ACC)
        y = gated_y(u, rstd[:, None], w, s, HAS_Z, NORM_BEFORE_GATE, CASTING, IN_TY, MID_TY, ACC)
        tl.store(Y + row * stride_y + cols, cast(y, Y.dtype.element_ty), mask=mask)
        if STORE_RSTD:
            tl.store(RSTD + row * ng + grp, rstd[:, None], mask=ok)


@triton.jit
def gated_bwd(
    DY, X, Z, W, RSTD, DX, DZ, DW_PART,  # DW_PART: [NUM_PROGS, N] ACC
    stride_dy, stride_x, stride_z, stride_dx, stride_dz,
    M, N, G, GPS, SLABS,  # as in gated_fwd
    NUM_PROGS,  # persistent grid: program p does slab p % SLABS of rows p // SLABS + k NUM_PROGS
    NG_P2: tl.constexpr, G_P2: tl.constexpr,
    HAS_Z: tl.constexpr, HAS_W: tl.constexpr, NORM_BEFORE_GATE: tl.constexpr,
    ACT: tl.constexpr, STORE_DW: tl.constexpr,
    PDL: tl.constexpr = False,
    LOOP: tl.constexpr = False, BLOCK: tl.constexpr = 1024,  # as in gated_fwd
):
    dependent_launch(PDL)
    pid = tl.program_id(0) // SLABS
    ACC: tl.constexpr = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    ng = N // G
    if LOOP:
        grp = tl.program_id(0) % SLABS
        nb = tl.cdiv(G, BLOCK)
        part = DW_PART + pid.to(tl.int64) * N + grp * G
        for row in range(pid, M, NUM_PROGS):
            r64 = tl.cast(row, tl.int64)
            rstd = tl.load(RSTD + r64 * ng + grp)
            acc = tl.zeros([BLOCK], ACC)
            for b in range(0, nb):  # walk 1: the group's sum of u_hat * w * g, for c1
                k = b * BLOCK + tl.arange(0, BLOCK)
                c, m = grp * G + k, k < G
                x, dy, z, w = block_in(X, DY, Z, W, r64, stride_x, stride_dy, stride_z, c, m,
                                       BLOCK, HAS_Z, HAS_W, ACC)
                u, s, _ = normalized(x, z, HAS_Z, NORM_BEFORE_GATE, ACT)
                g = dy * s if HAS_Z and NORM_BEFORE_GATE else dy
                acc += u * rstd * (w * g)
            c1 = tl.sum(acc, axis=0) / G
            for i in range(0, nb):  # walk 2, last block first: dx, dz, the dw terms
                k = (nb - 1 - i) * BLOCK + tl.arange(0, BLOCK)
                c, m = grp * G + k, k < G
                x, dy, z, w = block_in(X, DY, Z, W, r64, stride_x, stride_dy, stride_z, c, m,
                                       BLOCK, HAS_Z, HAS_W, ACC)
                u, s, ds = normalized(x, z, HAS_Z, NORM_BEFORE_GATE, ACT)
                u_hat = u * rstd
                g = dy * s if HAS_Z and NORM_BEFORE_GATE else dy
                dx, dz = gated_grads(x, dy, u_hat, w, w * g, s, ds, c1, rstd, HAS_Z,
                                     NORM_BEFORE_GATE)
                if HAS_Z:
                    tl.store(DZ + r64 * stride_dz + c, cast(dz, DZ.dtype.element_ty), mask=m)
                tl.store(DX + r64 * stride_dx + c, cast(dx, DX.dtype.element_ty), mask=m)
                if STORE_DW:  # this program's own partial row; its first row starts it
                    prev = tl.load(part + k, mask=m & (k * 0 + row != pid), other=0.0)
                    tl.store(part + k, prev + g * u_hat, mask=m)
    else:
        cols, mask, grp, ok = tile(tl.program_id(0) % SLABS, G, ng, GPS, NG_P2, G_P2)
        if HAS_W:
            w = tl.load(W + cols, mask=mask, other=0.0).to(ACC)
        else:
            w = tl.full([NG_P2, G_P2], 1.0, ACC)
        dw = tl.zeros([NG_P2, G_P2], ACC)
        for row in range(pid, M, NUM_PROGS):
            r64 = tl.cast(row, tl.int64)
            x = tl.load(X + r64 * stride_x + cols, mask=mask, other=0.0).to(ACC)
            dy = tl.load(DY + r64 * stride_dy + cols, mask=mask, other=0.0).to(ACC)
            rstd = tl.load(RSTD + r64 * ng + grp, mask=ok, other=0.0)
            z = tl.load(Z + r64 * stride_z + cols, mask=mask, other=0.0).to(ACC) if HAS_Z else x
            u, s, ds = normalized(x, z, HAS_Z, NORM_BEFORE_GATE, ACT)
            u_hat = u * rstd
            g = dy * s if HAS_Z and NORM_BEFORE_GATE else dy
            wg = w * g
            c1 = tl.sum(u_hat * wg, axis=1)[:, None] / G
            dx, dz = gated_grads(x, dy, u_hat, w, wg, s, ds, c1, rstd, HAS_Z, NORM_BEFORE_GATE)
            if HAS_Z:
                tl.store(DZ + r64 * stride_dz + cols, cast(dz, DZ.dtype.element_ty), mask=mask)
            tl.store(DX + r64 * stride_dx + cols, cast(dx, DX.dtype.element_ty), mask=mask)
            if STORE_DW:
                dw += g * u_hat
        if STORE_DW:
            tl.store(DW_PART + pid.to(tl.int64) * N + cols, dw, mask=mask)

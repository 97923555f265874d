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
):
    dependent_launch(PDL)
    row = (tl.program_id(0) // SLABS).to(tl.int64)
    IN_TY: tl.constexpr = X.dtype.element_ty
    ACC: tl.constexpr = tl.float64 if IN_TY == tl.float64 else tl.float32
    W_TY: tl.constexpr = W.dtype.element_ty if HAS_W else IN_TY
    MID_TY: tl.constexpr = IN_TY if W_TY == IN_TY else ACC  # promote(x, w)
    ng = N // G
    cols, mask, grp, ok = tile(tl.program_id(0) % SLABS, G, ng, GPS, NG_P2, G_P2)
    u = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(ACC)
    if HAS_Z:
        z = tl.load(Z + row * stride_z + cols, mask=mask, other=0.0).to(ACC)
        s, _ = gate(z, ACT)
        if not NORM_BEFORE_GATE:
            u = u * s
    ms, rstd = mean_rstd(tl.sum(u * u, axis=1), G, eps, ACC)
    if HAS_W:
        w = tl.load(W + cols, mask=mask, other=0.0).to(ACC)
    else:
        w = tl.full([NG_P2, G_P2], 1.0, ACC)
    y = apply_weight(u, rstd[:, None], w, 0.0, CASTING, IN_TY, ACC)
    if HAS_Z and NORM_BEFORE_GATE:
        if CASTING == 1:
            y = cast(y, MID_TY).to(ACC)
        y = y * s
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
):
    dependent_launch(PDL)
    pid = tl.program_id(0) // SLABS
    ACC: tl.constexpr = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    ng = N // G
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
        u = x
        g = dy
        if HAS_Z:
            z = tl.load(Z + r64 * stride_z + cols, mask=mask, other=0.0).to(ACC)
            s, ds = gate(z, ACT)
            if NORM_BEFORE_GATE:
                g = dy * s
            else:
                u = x * s
        u_hat = u * rstd
        wg = w * g
        c1 = tl.sum(u_hat * wg, axis=1)[:, None] / G
        du = (wg - u_hat * c1) * rstd
        dx = du
        if HAS_Z:
            if NORM_BEFORE_GATE:
                dz = dy * u_hat * w * ds
            else:
                dx = du * s
                dz = du * x * ds
            tl.store(DZ + r64 * stride_dz + cols, cast(dz, DZ.dtype.element_ty), mask=mask)
        tl.store(DX + r64 * stride_dx + cols, cast(dx, DX.dtype.element_ty), mask=mask)
        if STORE_DW:
            dw += g * u_hat
    if STORE_DW:
        tl.store(DW_PART + pid.to(tl.int64) * N + cols, dw, mask=mask)

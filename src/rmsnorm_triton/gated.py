"""rms_norm_gated: RMSNorm with a gate (kernels/gated.py has the math), its autograd and ops.

    y = rms_norm_gated(x, z, w)                               # rmsnorm(x) * w * silu(z)
    y = rms_norm_gated(x, z, w, norm_before_gate=False,       # rmsnorm(x * silu(z)) * w, in
                       group_size=1024)                       # groups of 1024 (Mamba2)
    y = rms_norm_gated(x, z, w, activation="sigmoid", casting="gemma")   # Kimi: all fp32

Calls find their launch plan in plan.PLANS under plan.key, as rms_norm's do; the backward's
plan hangs off the forward's. Under torch.compile the same plans run behind
torch.ops.rmsnorm_triton.gated_fwd / gated_bwd, which have fake implementations.
"""

import math
from typing import NamedTuple, Optional

import torch

from . import _triton, kernels, plan, tables
from .checks import CASTINGS, check_dtype, check_rows, check_scalar, check_tensor
from .kernels.gated import ACT_SIGMOID, ACT_SILU
from .plan import PLANS, _Plan, dense, on_device
from .rows import rows_view
from .split import cdiv

FWD = _triton.Kernel(kernels.gated_fwd)
BWD = _triton.Kernel(kernels.gated_bwd)
ACTS = {"silu": ACT_SILU, "sigmoid": ACT_SIGMOID}
SLAB = 4096  # elements of a row a program holds at most (whole groups); the backward walks a
# longer group in blocks (LOOP): held whole, single 8K groups spilled 8-96 bytes on sm_90
ONE_PASS_MAX = 32768  # the forward holds a group up to this many elements, as rms_norm's one pass
LOOP_BLOCK = 2048  # elements of a LOOP block


def validate(x, z, weight, eps, norm_before_gate, activation, group_size, casting, out_dtype):
    check_tensor("x", x)
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}, expected (..., N) with N >= 1")
    n = x.shape[-1]
    check_rows("x", x, math.prod(x.shape[:-1]))
    for name, t, shape in (("z", z, tuple(x.shape)), ("weight", weight, (n,))):
        if t is None:
            continue
        check_tensor(name, t)
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape} (x's shape"
                             f"{'' if name == 'z' else ': its last dim'})")
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}; expected both "
                             "on one device")
    check_scalar("eps", eps, minimum=0.0)
    if not isinstance(norm_before_gate, bool):
        raise TypeError(f"norm_before_gate must be a bool, got {norm_before_gate!r}")
    if activation not in ACTS:
        raise ValueError(f"activation is {activation!r}, expected one of {sorted(ACTS)}")
    g = group_size if group_size is not None else n
    if isinstance(g, bool) or not isinstance(g, int) or g < 1 or n % g:
        raise ValueError(f"group_size is {group_size!r}, expected None or a positive int that "
                         f"divides the last dim of x ({n})")
    if casting not in CASTINGS:
        raise ValueError(f"casting is {casting!r}, expected one of {sorted(CASTINGS)}")
    check_dtype("out_dtype", out_dtype)


class GatedLayout(NamedTuple):
    """A gated launch: slabs of GPS whole groups held as [NG_P2, G_P2] tiles, or (LOOP) one group
    a slab walked in blocks of BLOCK; `progs` row walkers an SM in the backward."""
    gps: int
    slabs: int
    ng2: int
    g2: int
    warps: int
    loop: bool = False
    block: int = 1024
    progs: int = 2


def layout(n, g, dtype, bwd=False) -> GatedLayout:
    """The launch for rows of n in groups of g: slabs of whole groups up to SLAB elements (or
    one group), rms_norm's warps for a slab of that many bytes, twice as many in the backward,
    which holds x, z, dy and dw at once. A group past ONE_PASS_MAX (the forward) or SLAB (the
    backward) is walked in LOOP_BLOCK blocks; those take under 64 registers a thread at 8 warps,
    so four walkers fill an SM."""
    if g > (SLAB if bwd else ONE_PASS_MAX):
        return GatedLayout(1, n // g, 1, 1, 8 if bwd else 4, True, LOOP_BLOCK, 4)
    gps = max(1, min(n // g, SLAB // g))
    ng2, g2 = tables.pow2(gps), tables.pow2(g)
    warps = next(w for lim, w in tables.WARPS if ng2 * g2 * dtype.itemsize // 2 <= lim)
    return GatedLayout(gps, cdiv(n // g, gps), ng2, g2, min(32, 2 * warps) if bwd else warps)


def layouts(n, g, dtype, bwd=False) -> list:
    """Every layout benchmarks/tune.py times for this shape: the default's slabs at 4-32 warps
    (one group up to ONE_PASS_MAX held whole), and the block loop's blocks, warps and walkers."""
    base, out = layout(n, g, dtype, bwd), []
    if g <= ONE_PASS_MAX:
        held = base if not base.loop else GatedLayout(1, n // g, 1, tables.pow2(g), 8)
        out += [held._replace(warps=w, progs=p) for w in (4, 8, 16, 32)
                for p in ((1, 2, 4) if bwd else (2,))]
    out += [GatedLayout(1, n // g, 1, 1, w, True, b, p) for b in (1024, 2048, 4096)
            if b <= tables.pow2(g) for w in (4, 8, 16) for p in ((2, 4) if bwd else (2,))]
    return list(dict.fromkeys([base] + out))


class GatedPlan(_Plan):
    """gated_fwd's launch for one signature: plan(x, z, weight) -> (y in x's shape, rstd).
    config: a GatedLayout in place of layout()'s (benchmarks/tune.py)."""

    def __init__(self, x, *args, config=None):
        with on_device(x):
            self._build(x, *args, config)

    def _build(self, x, z, weight, eps, nbg, act, group, casting, out_dtype, store_rstd, config):
        n = x.shape[-1]
        self._device(x)
        self.n, self.g = n, group
        self.spec = (nbg, act, group)
        x2, z2, w = rows_view(x, n), rows_view(z, n) if z is not None else None, dense(weight)
        self.copies = (x2.data_ptr() != x.data_ptr(),
                       z2 is not None and z2.data_ptr() != z.data_ptr(), w is not weight)
        self.m, self.out_dtype, self.store_rstd = x2.shape[0], out_dtype, store_rstd
        self.acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        self.bwd = {}
        lay = config or layout(n, group, x.dtype)
        self.slabs = lay.slabs
        y = torch.empty((1, n), dtype=out_dtype, device=self.where)
        named = dict(
            X=x2, Z=z2 if z2 is not None else x2, W=w if w is not None else x2, Y=y, RSTD=x2,
            stride_x=x2.stride(0), stride_z=z2.stride(0) if z2 is not None else 0, stride_y=n,
            M=self.m, N=n, G=group, eps=eps, GPS=lay.gps, SLABS=lay.slabs, NG_P2=lay.ng2,
            G_P2=lay.g2, HAS_Z=z is not None,
            HAS_W=w is not None, NORM_BEFORE_GATE=nbg, ACT=ACTS[act], CASTING=CASTINGS[casting],
            STORE_RSTD=store_rstd, PDL=tables.pdl_enabled(x.device), LOOP=lay.loop,
            BLOCK=lay.block)
        self.launch = _triton.Launch(FWD, FWD.positional(named), lay.warps)
        self._bind(FWD, named, ("X", "Z", "W", "Y", "RSTD"))
        self.go, self.arg = self.launch.go, self.launch.arg

    def __call__(self, x, z, weight):
        if self.current is not None and self.current() != self.dev:
            with torch.cuda.device(self.dev):
                return self(x, z, weight)
        n, (cx, cz, cw) = self.n, self.copies
        y = torch.empty_like(x, dtype=self.out_dtype, memory_format=plan.CONTIGUOUS)
        rstd = torch.empty((self.m, n // self.g), dtype=self.acc, device=self.where) \
            if self.store_rstd else None
        if self.m:
            arg, i, call = self.arg, self.index, self.template.copy()
            call[i[0]] = xa = arg(rows_view(x, n) if cx else x)
            call[i[1]] = xa if z is None else arg(rows_view(z, n) if cz else z)
            call[i[2]] = xa if weight is None else arg(weight.contiguous() if cw else weight)
            call[i[3]], call[i[4]] = arg(y), xa if rstd is None else arg(rstd)
            self.go(self.m * self.slabs, call, self.dev)
        return y, rstd

    def backward(self, dy, x, z, weight, rstd, need_dx, need_dz, need_dw):
        k = plan.bwd_key(dy, None, need_dw)
        p = self.bwd.get(k)
        if p is None:
            p = GatedBwdPlan(dy, x, z, weight, rstd, *self.spec, need_dw)
            if len(self.bwd) < 64:
                self.bwd[k] = p
        dx, dz, dw = p(dy, x, z, weight, rstd)
        return dx if need_dx else None, dz if need_dz else None, dw


class GatedBwdPlan(_Plan):
    """gated_bwd (+ dw_reduce) for one signature: plan(dy, x, z, weight, rstd) -> (dx, dz, dw),
    dx and dz contiguous in x's shape (dz None without z, dw None unless need_dw). config: as
    GatedPlan's."""

    def __init__(self, dy, x, *args, config=None):
        with on_device(x):
            self._build(dy, x, *args, config)

    def _build(self, dy, x, z, weight, rstd, nbg, act, group, need_dw, config):
        n = x.shape[-1]
        self._device(x)
        self.n, self.m, self.need_dw = n, x.numel() // n, need_dw and weight is not None
        lay = config or layout(n, group, x.dtype, bwd=True)
        programs = tables.num_programs(x.device, tables.Config(1, lay.g2, lay.warps, True,
                                                               progs_per_sm=lay.progs))
        self.grid = max(1, min(self.m, programs // lay.slabs))  # row walkers, each on every slab
        self.slabs = lay.slabs
        x2, dy2 = rows_view(x, n), rows_view(dy, n)
        z2 = rows_view(z, n) if z is not None else None
        scratch = torch.empty((1, n), dtype=x.dtype, device=self.where)
        named = dict(
            DY=dy2, X=x2, Z=z2 if z2 is not None else x2, W=weight if weight is not None else x2,
            RSTD=rstd, DX=scratch, DZ=scratch, DW_PART=x2, stride_dy=dy2.stride(0),
            stride_x=x2.stride(0), stride_z=z2.stride(0) if z2 is not None else 0,
            stride_dx=n, stride_dz=n, M=self.m, N=n, G=group, GPS=lay.gps, SLABS=lay.slabs,
            NUM_PROGS=self.grid, NG_P2=lay.ng2, G_P2=lay.g2, HAS_Z=z is not None,
            HAS_W=weight is not None,
            NORM_BEFORE_GATE=nbg, ACT=ACTS[act], STORE_DW=self.need_dw,
            PDL=tables.pdl_enabled(x.device), LOOP=lay.loop, BLOCK=lay.block)
        if self.need_dw:
            named["DW_PART"] = torch.empty((self.grid, n), dtype=rstd.dtype, device=self.where)
        self.launch = _triton.Launch(BWD, BWD.positional(named), lay.warps)
        self._bind(BWD, named, ("DY", "X", "Z", "W", "RSTD", "DX", "DZ", "DW_PART"))
        self.go, self.arg = self.launch.go, self.launch.arg
        if self.need_dw:
            bn = 256 if n >= 256 else max(16, tables.pow2(n))
            red = dict(DW_PART=named["DW_PART"], DW=weight, P=self.grid, N=n, BLOCK_P=32,
                       BLOCK_N=bn, PDL=named["PDL"])
            self.reduce = (cdiv(n, bn), _triton.Launch(plan.DW_REDUCE,
                                                       plan.DW_REDUCE.positional(red), 4), red)

    def __call__(self, dy, x, z, weight, rstd):
        if self.current is not None and self.current() != self.dev:
            with torch.cuda.device(self.dev):
                return self(dy, x, z, weight, rstd)
        n, arg = self.n, self.arg
        dx = torch.empty(x.shape, dtype=x.dtype, device=self.where)
        dz = torch.empty(z.shape, dtype=z.dtype, device=self.where) if z is not None else None
        part = torch.empty((self.grid, n), dtype=rstd.dtype, device=self.where) \
            if self.need_dw else None
        if self.m:
            x2 = arg(rows_view(x, n))
            call, i = self.template.copy(), self.index
            call[i[0]], call[i[1]], call[i[4]], call[i[5]] = arg(rows_view(dy, n)), x2, arg(rstd), \
                arg(dx)
            call[i[2]] = x2 if z is None else arg(rows_view(z, n))
            call[i[3]] = x2 if weight is None else arg(weight)
            call[i[6]] = x2 if dz is None else arg(dz)
            call[i[7]] = x2 if part is None else arg(part)
            self.go(self.grid * self.slabs, call, self.dev)
        dw = None
        if part is not None:
            dw = torch.empty_like(weight)
            if not self.m:
                dw.zero_()
            else:
                grid, launch, red = self.reduce
                launch.go(grid, plan.DW_REDUCE.positional(
                    dict(red, DW_PART=launch.arg(part), DW=launch.arg(dw))), self.dev)
        return dx, dz, dw


def rms_norm_gated(x, z, weight=None, eps=1e-6, *, norm_before_gate=True, activation="silu",
                   group_size=None, casting="llama", out_dtype=None):
    """Gated RMSNorm over the last dim of x (in groups of group_size channels; None: one group).

        norm_before_gate=True:   y = rmsnorm(x) * w * act(z)     (Qwen3-Next, FLA, Kimi)
        norm_before_gate=False:  y = rmsnorm(x * act(z)) * w     (Mamba2)

    Args:
        x: (..., N), any N; rows may be strided. z: x's shape (or None: no gate), any float
            dtype, rows may be strided. weight: (N,) or None.
        activation: "silu" or "sigmoid". casting: as in rms_norm ("llama": x_hat rounded to
            x's dtype before the weight, and x_hat * w rounded to promote(x, w) before the gate,
            as Hugging Face's Qwen3-Next and Mamba2 norms; "gemma": all fp32, rounded once, as
            FLA's, vLLM's and Kimi's). out_dtype: y's dtype (default x's).
    Returns y; with autograd, gradients for x, z and weight (dx and dz contiguous).
    """
    grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, z, weight))
    key = plan.key(x, weight, z, eps, 0.0, casting, "gated", norm_before_gate, activation,
                   group_size, out_dtype, grad)
    p = PLANS.get(key) if key is not None else None
    if p is None:
        validate(x, z, weight, eps, norm_before_gate, activation, group_size, casting, out_dtype)
        args = (float(eps), norm_before_gate, activation, group_size or x.shape[-1], casting,
                out_dtype or x.dtype)
        if torch.compiler.is_compiling():
            return torch.ops.rmsnorm_triton.gated_fwd(x, z, weight, *args)[0]
        p = plan.remember(key, GatedPlan(x, z, weight, *args, grad))
    if grad:
        return _GatedFn.apply(x, z, weight, p)
    return p(x, z, weight)[0]


class _GatedFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, z, weight, p):
        y, rstd = p(x, z, weight)
        ctx.save_for_backward(x, z, weight, rstd)
        ctx.plan = p
        return y

    @staticmethod
    def backward(ctx, dy):
        if torch.is_grad_enabled():
            raise RuntimeError("rms_norm_gated has no double backward (create_graph=True)")
        x, z, weight, rstd = ctx.saved_tensors
        nx, nz, nw = ctx.needs_input_grad[:3]
        dx, dz, dw = ctx.plan.backward(dy, x, z, weight, rstd, nx, nz, nw)
        return dx, dz, dw, None


# ---- torch.library ----------------------------------------------------------------------------
@torch.library.custom_op("rmsnorm_triton::gated_fwd", mutates_args=())
def _fwd_op(x: torch.Tensor, z: Optional[torch.Tensor], weight: Optional[torch.Tensor],
            eps: float, norm_before_gate: bool, activation: str, group_size: int, casting: str,
            out_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    key = plan.key(x, weight, z, eps, 0.0, casting, "gated op", norm_before_gate, activation,
                   group_size, out_dtype)
    p = PLANS.get(key) or plan.remember(key, GatedPlan(
        x, z, weight, eps, norm_before_gate, activation, group_size, casting, out_dtype, True))
    return p(x, z, weight)


@_fwd_op.register_fake
def _(x, z, weight, eps, norm_before_gate, activation, group_size, casting, out_dtype):
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    m = x.numel() // x.shape[-1]
    return (x.new_empty(x.shape, dtype=out_dtype),
            x.new_empty((m, x.shape[-1] // group_size), dtype=acc))


@torch.library.custom_op("rmsnorm_triton::gated_bwd", mutates_args=())
def _bwd_op(dy: torch.Tensor, x: torch.Tensor, z: Optional[torch.Tensor],
            weight: Optional[torch.Tensor], rstd: torch.Tensor, norm_before_gate: bool,
            activation: str, group_size: int,
            need_dw: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    k = plan.key(x, weight, z, 0.0, 0.0, "bwd", "gated bwd", norm_before_gate, activation,
                 group_size, *plan.bwd_key(dy, rstd, need_dw))
    p = PLANS.get(k) if k is not None else None
    if p is None:
        p = plan.remember(k, GatedBwdPlan(dy, x, z, weight, rstd, norm_before_gate, activation,
                                          group_size, need_dw))
    dx, dz, dw = p(dy, x, z, weight, rstd)
    e = x.new_empty((0,))
    return dx, (dz if dz is not None else e), (dw if dw is not None else e.clone())


@_bwd_op.register_fake
def _(dy, x, z, weight, rstd, norm_before_gate, activation, group_size, need_dw):
    e = x.new_empty((0,))
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(z, memory_format=torch.contiguous_format) if z is not None else e,
            torch.empty_like(weight) if need_dw and weight is not None else e.clone())


def _setup(ctx, inputs, output):
    x, z, weight, _, nbg, act, group, _, _ = inputs
    ctx.save_for_backward(x, z, weight, output[1])
    ctx.spec = (nbg, act, group)


def _backward(ctx, dy, drstd):
    x, z, weight, rstd = ctx.saved_tensors
    nx, nz, nw = ctx.needs_input_grad[:3]
    dx, dz, dw = torch.ops.rmsnorm_triton.gated_bwd(dy, x, z, weight, rstd, *ctx.spec,
                                                    bool(nw))
    return (dx if nx else None, dz if nz and z is not None else None,
            dw if nw and weight is not None else None) + (None,) * 6


_fwd_op.register_autograd(_backward, setup_context=_setup)

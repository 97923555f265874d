"""Launch plans: the layout, arguments and compiled kernel of one call signature, replayed.

A call's signature (`key`: each tensor's type, shape, strides, dtype, device and 16-byte
alignment, the scalars with their types and the offset's sign, the casting, and the rest the
op adds, whether autograd is needed among it) is computed once, here, and looks up ONE cache,
PLANS. A hit replays the plan: the same compiled kernel, grid and arguments, with this call's
tensors and fresh outputs; no checks, no table, no argument list built. A miss builds the plan
(the caller checked the arguments first) and then runs it the same way. The backward's plans
hang off the forward plan that saved its tensors. At small M the host's Python is most of a call.

Kernel arguments are built by parameter name ({name: value}) and put in the kernel's order once,
when a plan is made (_triton.Kernel). Settings come from `options`; changing them drops the plans.
"""

import contextlib
import math
import warnings

import torch

from . import _triton, kernels, options, tables
from .checks import CASTINGS
from .layout import bwd_layout, fwd_layout, w_first
from .rows import head_rows, plain_rows, rows_view
from .split import cdiv, slots, words
from .split import grid as split_grid

FWD = _triton.Kernel(kernels.rms_norm_fwd)
BWD = _triton.Kernel(kernels.rms_norm_bwd)
DW_REDUCE = _triton.Kernel(kernels.dw_reduce)

PLANS = {}  # signature -> FwdPlan (or, for torch.compile's backward op, BwdPlan)
options._on_change.append(PLANS.clear)
MAX_PLANS = 4096  # many shapes (serving's varying M): start over past this many


def _tensor_key(t):
    if t is None:
        return None
    return type(t), t.shape, t.stride(), t.dtype, t.get_device(), t.data_ptr() & 15


_is_compiling, _copysign = torch.compiler.is_compiling, math.copysign  # (once: a call's cost)
CONTIGUOUS = torch.contiguous_format


def key(x, weight, residual, eps, offset, casting, *rest):
    """The call's signature: everything its checks and its launch depend on but the addresses'
    high bits, then `rest`. None while traced by torch.compile, or where an argument is not what
    a key can hold (the caller's checks then say what is wrong)."""
    if _is_compiling():
        return None
    try:
        return (type(x), x.shape, x.stride(), x.dtype, x.get_device(), x.data_ptr() & 15,
                None if weight is None else _tensor_key(weight),
                None if residual is None else _tensor_key(residual), type(eps), eps,
                type(offset), offset, _copysign(1.0, offset), casting) + rest
    except (AttributeError, TypeError, RuntimeError):  # not a tensor, not a number, not
        return None  # hashable, no data pointer (functorch's wrappers, fake tensors)


def bwd_key(dy, dh, *rest):
    """A backward call's signature beside its forward plan's: dy's and dh's, then `rest`."""
    return _tensor_key(dy), _tensor_key(dh), *rest


def remember(k, plan):
    if k is not None:
        if len(PLANS) >= MAX_PLANS:
            PLANS.clear()
        PLANS[k] = plan
    return plan


def dense(weight):
    """The weight with unit stride (the kernels read W + column): a strided or expanded weight
    is copied, as rows_view copies rows that do not view as (M, N)."""
    return weight if weight is None or weight.stride(0) == 1 else weight.contiguous()


def on_device(t):
    """Within the block, t's CUDA device is the current one (a plan compiles and sizes its grid
    for that device); nothing for a CPU tensor."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


class _Plan:
    """What both directions share: the device check, the tensors' places in the arguments."""

    def _bind(self, kernel, named, tensors):
        """The template: named in the kernel's order, without the call's tensors (the
        parameters `tensors`, filled in each call at self.index: their positions)."""
        self.template = kernel.positional(named)
        self.index = [kernel.index[p] for p in tensors]
        for pos in self.index:
            self.template[pos] = None  # (the plan keeps no tensor of the call that made it)

    def _cooperative(self, call, rebuild) -> bool:
        """A cooperative SPLIT launch (options.cooperative). Where the driver refuses it (its
        programs could not all be resident at once: MPS, a partial GPU), this plan becomes
        rebuild()'s, the block loop's, for good, and False says to run the call again."""
        try:
            self.go(self.grid, call, self.dev)
            return True
        except RuntimeError as e:
            warnings.warn(f"rmsnorm_triton: a cooperative SPLIT launch was refused ({e}); rows "
                          "of this shape are walked in blocks from now on", RuntimeWarning)
            self.__dict__.update(rebuild().__dict__)
            return False

    def _device(self, t):
        self.dev = t.get_device()
        self.where = t.device
        self.current = _triton.current_device_fn() if t.device.type == "cuda" \
            or _triton.simulated() else None


class FwdPlan(_Plan):
    """rms_norm_fwd's launch for one signature: plan(x, weight, residual) -> (y, h, rstd), y
    and h in x's shape (h None without a residual), rstd (M,) or None. inplace: y and h are x
    and residual themselves (fused_add_rms_norm_).

    quant (fp8.Quant; out_dtype FP8): y is quantized by the kernel's FP8 epilogue, and the
    third output is the scales (quant.scales(x); the static scale, passed as plan(..., scale),
    when it makes none). quant.h_inplace: h is written into the residual itself."""

    def __init__(self, x, *args, **kw):
        with on_device(x):
            self._build(x, *args, **kw)

    def _build(self, x, weight, residual, eps, offset, casting, out_dtype, h_dtype, store_rstd,
               inplace=False, config=None, no_split=False, quant=None):
        self._spec = (eps, offset, casting, out_dtype, h_dtype, store_rstd, inplace, config)
        self.quant = quant
        self.h_inplace = quant is not None and quant.h_inplace
        n = x.shape[-1]
        x2 = rows_view(x, n)
        r2 = rows_view(residual, n) if residual is not None else None
        w = dense(weight)
        # the caller's tensors are passed as they are where their rows lie as (M, N) rows do
        self.x_view = x2.data_ptr() != x.data_ptr()
        self.r_view = r2 is not None and r2.data_ptr() != residual.data_ptr()
        self.w_copy = w is not weight
        self.n, self.inplace, self.offset, self.spans = n, inplace, offset, None
        self._device(x)
        m = x2.shape[0]
        acc = torch.float64 if x2.dtype == torch.float64 else torch.float32
        self.y_dtype, self.y_like = out_dtype, out_dtype == x.dtype and x.is_contiguous()
        self.h_dtype = h_dtype if residual is not None else None
        self.h_like = h_dtype == x.dtype and x.is_contiguous()
        self.m, self.acc, self.store_rstd = m, acc, store_rstd
        self.bwd = {}  # backward plans made from this one's saved tensors (bwd_key)
        self.launch, self.cooperative = None, False
        if m == 0:
            return
        y, h, rstd = self._outputs(x2, r2)  # examples of the outputs, for the compile
        opts = options.get()
        in_dtype = h_dtype if residual is not None else x2.dtype
        native = opts.w_native and tables.native_weight(w, casting, offset, in_dtype, out_dtype)
        sms = tables.device_props(x2.device.index).multi_processor_count if x2.is_cuda else 1
        split_ok = (not _triton.interpreted() and acc == torch.float32 and opts.split
                    and not no_split
                    and (quant is None or quant.splits))  # (FP8 per token: the block loop)
        layout = fwd_layout(m, n, x2.dtype, tables.table_for(x2.device), sms, config=config,
                            residual=residual is not None, native=native, split_ok=split_ok,
                            batch_invariant=opts.batch_invariant)
        # SPLIT asked: split_grid sizes it against the compiled kernel (as layout.grid where the
        # table's programs per SM are resident), else the block loop
        cfg, chunks, split = layout.cfg, layout.chunks, layout.cfg.split and split_ok
        heads = (head_rows(x, n) if residual is None and not inplace and cfg.one_pass
                 and quant is None else None)  # (the FP8 store addresses plain rows)
        if heads is not None:  # read where they lie (ONE_PASS's HEAD_ROWS), not copied
            x2, self.x_view = x, False
        named = dict(
            X=x2, R=r2 if r2 is not None else x2, W=w if w is not None else x2, Y=y,
            H=h if h is not None else x2, RSTD=rstd if rstd is not None else x2, PART=x2,
            stride_x=x2.stride(0), stride_r=r2.stride(0) if r2 is not None else 0,
            stride_y=n, stride_h=n if h is not None else 0,  # (made contiguous in x's shape)
            M=m, N=n, eps=eps, offset=offset, NUM_GROUPS=1, EPOCH=0,
            BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, ONE_PASS=cfg.one_pass and not split,
            SPLIT=split, S_POW2=tables.pow2(chunks),
            PAIRS=split and cfg.pairs and words(x2, n) and (r2 is None or words(r2, n)),
            EARLY=split and cfg.early, HAS_W=w is not None, HAS_R=r2 is not None,
            STORE_RSTD=rstd is not None, CASTING=CASTINGS[casting],
            W_FIRST=w_first(cfg, m, sms, opts),
            W_NATIVE=native and tables.native_layout(cfg, split, opts),
            DYNAMIC=split and (cfg.dynamic if opts.split_dynamic is None else opts.split_dynamic),
            PDL=tables.pdl_enabled(x2.device))
        if inplace:
            named.update(stride_y=x2.stride(0), stride_h=r2.stride(0))
        if quant is not None:
            s = quant.scales(x)
            named.update(quant.named, SCALE=s if s is not None else x2.new_empty(1, dtype=acc),
                         stride_h=r2.stride(0) if self.h_inplace else named["stride_h"])
        if heads is not None:  # y: (M, N) rows, one stride n apart
            named.update(HEAD_ROWS=True, HEADS=heads.heads, stride_x=heads.stride,
                         outer_x=heads.outer, outer_y=heads.heads * n)
        gs = None
        if split:
            named["PART"], named["EPOCH"] = slots(m, chunks, x2.device)
            gs = split_grid(FWD, named, lambda g, s: {"NUM_GROUPS": g}, cfg, m, n)
        if gs:
            self.grid, _, self.launch = gs
            self.chunks, self.cooperative = chunks, opts.cooperative
        else:
            self.chunks = 0
            named.update(PART=x2, SPLIT=False, DYNAMIC=False,  # one pass or the block loop
                         W_NATIVE=named["W_NATIVE"] and named["ONE_PASS"])
            self.grid = m if split else layout.grid  # (SPLIT not resident: the block loop)
            maxnreg = cfg.maxnreg if cfg.one_pass else 0
            self.launch = _triton.Launch(FWD, FWD.positional(named), cfg.num_warps, maxnreg)
        self._bind(FWD, named, ("X", "R", "W", "Y", "H", "RSTD", "PART")
                   + (("SCALE",) if quant is not None else ()))
        self.go, self.arg = self.launch.go, self.launch.arg
        self.i_epoch = FWD.index["EPOCH"]

    def _outputs(self, x, residual):
        """Examples of this plan's outputs (the call makes its own, the same way)."""
        rstd = torch.empty(self.m, dtype=self.acc, device=self.where) if self.store_rstd else None
        if self.inplace:
            return x, residual, rstd
        return (torch.empty(x.shape, dtype=self.y_dtype, device=self.where),
                residual if self.h_inplace else torch.empty(x.shape, dtype=self.h_dtype,
                                                             device=self.where)
                if self.h_dtype is not None else None, rstd)

    def __call__(self, x, weight, residual, scale=None):
        if self.current is not None and self.current() != self.dev:  # kernels load per device:
            with torch.cuda.device(self.dev):  # launch on the tensors'
                return self(x, weight, residual, scale)
        if self.inplace:
            y, h = x, residual
        else:
            # empty_like: a third of torch.empty(shape, dtype=, device=)'s host time
            y = torch.empty_like(x) if self.y_like else \
                torch.empty_like(x, dtype=self.y_dtype, memory_format=CONTIGUOUS)
            h = None if self.h_dtype is None else residual if self.h_inplace else \
                torch.empty_like(x) if self.h_like else \
                torch.empty_like(x, dtype=self.h_dtype, memory_format=CONTIGUOUS)
        rstd = torch.empty(self.m, dtype=self.acc, device=self.where) if self.store_rstd else None
        if self.quant is not None:  # FP8: the scales stand where rstd would
            rstd = scale if scale is not None else self.quant.scales(x)
        if not self.m:
            return y, h, rstd
        arg = self.arg
        ix, ir, iw, iy, ih, irs, ip = self.index[:7]
        call = self.template.copy()
        call[ix] = xa = arg(rows_view(x, self.n) if self.x_view else x)
        call[ir] = xa if residual is None else arg(
            rows_view(residual, self.n) if self.r_view else residual)
        call[iw] = xa if weight is None else arg(weight.contiguous() if self.w_copy else weight)
        call[iy] = arg(y)
        call[ih] = xa if h is None else arg(h)
        call[irs] = xa if rstd is None else arg(rstd)
        if self.quant is not None:
            call[self.index[7]] = call[irs]
        if not self.chunks:
            call[ip] = xa
            self.go(self.grid, call, self.dev)
            return y, h, rstd
        part, call[self.i_epoch] = slots(self.m, self.chunks, self.where)  # SPLIT: this
        call[ip] = arg(part)  # stream's slots, the next epoch
        if not self.cooperative:
            self.go(self.grid, call, self.dev)
        elif not self._cooperative(call, lambda: FwdPlan(x, weight, residual, *self._spec,
                                                         no_split=True)):
            return self(x, weight, residual)
        return y, h, rstd

    def backward(self, dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype, need_dw):
        """The backward of a call this plan made (its saved tensors), by a plan kept here."""
        k = bwd_key(dy, dh, dx_dtype, dr_dtype, need_dw)
        plan = self.bwd.get(k)
        if plan is None:
            plan = BwdPlan(dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype, need_dw)
            if len(self.bwd) < 64:
                self.bwd[k] = plan
        return plan(dy, dh, xin, weight, rstd)


class BwdPlan(_Plan):
    """rms_norm_bwd's (+ dw_reduce's) launches for one signature: plan(dy, dh, xin, weight,
    rstd) -> (dx, dr, dw) in xin's shape, each None unless asked for. xin is the normalized
    input: x, or h with a residual. dx and dr hold the same values, never aliased."""

    def __init__(self, dy, dh, xin, *args, **kw):
        with on_device(xin):
            self._build(dy, dh, xin, *args, **kw)

    def _build(self, dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype, need_dw, *,
               config=None, programs=None, no_split=False):
        self._spec = (offset, dx_dtype, dr_dtype, need_dw)
        self._kw = dict(config=config, programs=programs)
        self.cooperative = False
        n = xin.shape[-1]
        self.n, self.dtypes = n, (dx_dtype, dr_dtype, xin.dtype)
        self._device(xin)
        dy2, x2 = rows_view(dy, n), rows_view(xin, n)
        dh2 = rows_view(dh, n) if dh is not None else None
        w = dense(weight)
        self.w_copy = w is not weight
        m = self.m = x2.shape[0]
        self.need_dw = need_dw and w is not None
        self.shape = None if xin.dim() == 2 else xin.shape  # the gradients' (made (M, N))
        # (M, N) rows of unit stride already (rows_view would hand them back as they are)
        self.rows_as_given = all(t is None or (t.dim() == 2 and t.stride(-1) == 1)
                                 for t in (xin, dy, dh))
        dx_dtype = dx_dtype or dr_dtype or xin.dtype  # (_outputs: what the kernel's DX holds)
        self.dx_shape, self.dx_dtype, self.dr_dtype = (m, n), dx_dtype, dr_dtype
        self.dr = dx_dtype is not None and dr_dtype is not None and self.dtypes[0] is not None
        self.reduce = None
        if m == 0:
            return
        dx, dr = self._outputs()
        sms = tables.device_props(x2.device.index).multi_processor_count if x2.is_cuda else 0
        split_ok = (not _triton.interpreted() and rstd.dtype == torch.float32
                    and options.get().split and not no_split)
        layout = bwd_layout(m, n, x2.dtype, tables.table_for(x2.device), sms, config=config,
                            programs=programs, split_ok=split_ok)
        cfg, chunks, split = layout.cfg, layout.chunks, layout.cfg.split and split_ok  # (as above)
        hx, hdy = (head_rows(xin, n), head_rows(dy, n)) if dh is None and cfg.one_pass and \
            not split else (None, None)
        self.heads_x, self.heads_dy = hx is not None, hdy is not None
        x2, dy2 = (xin if hx else x2), (dy if hdy else dy2)  # read where they lie, not copied
        named = dict(
            DY=dy2, X=x2, W=w if w is not None else x2, RSTD=rstd,
            DH=dh2 if dh2 is not None else x2, DX=dx, DR=dr if dr is not None else x2,
            DW_PART=x2, PART=x2, stride_dy=dy2.stride(0), stride_x=x2.stride(0),
            stride_dh=dh2.stride(0) if dh2 is not None else 0, stride_dx=dx.stride(0),
            stride_dr=dr.stride(0) if dr is not None else 0, M=m, N=n, offset=offset,
            NUM_PROGS=1, EPOCH=0, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n,
            ONE_PASS=cfg.one_pass and not split, SPLIT=split, S_POW2=tables.pow2(chunks),
            PAIRS=split and cfg.pairs and words(x2, n) and words(dy2, n),
            EARLY=split and cfg.early, HAS_W=w is not None, STORE_DW=self.need_dw,
            HAS_DH=dh2 is not None, STORE_DR=dr is not None, PDL=tables.pdl_enabled(x2.device))
        if hx or hdy:  # HEAD_ROWS; the others' rows one stride apart (dx: (M, N), contiguous)
            heads = xin.shape[-2]
            named.update(HEAD_ROWS=True, HEADS=heads, outer_dx=heads * n,
                         **(hx or plain_rows(x2, heads)).named("x"),
                         **(hdy or plain_rows(dy2, heads)).named("dy"))
        gs = None
        if split:
            named["PART"], named["EPOCH"] = slots(m, chunks, x2.device)
            named["DW_PART"] = torch.empty((1,), dtype=rstd.dtype, device=self.where) \
                if self.need_dw else x2
            gs = split_grid(BWD, named, lambda g, s: {"NUM_PROGS": g * s}, cfg, m, n)
        if gs:
            self.grid, self.part_rows, self.launch = gs
            self.chunks, self.cooperative = chunks, options.get().cooperative
        else:
            self.chunks = 0
            named.update(PART=x2, SPLIT=False)
            self.grid = self.part_rows = min(m, programs or tables.programs_at_once(sms, cfg)) \
                if split else layout.grid  # (SPLIT not resident: the block loop)
            named["NUM_PROGS"] = self.grid
        self.part_shape = (self.part_rows, n)
        if self.need_dw:
            named["DW_PART"] = torch.empty(self.part_shape, dtype=rstd.dtype, device=self.where)
        if not gs:
            self.launch = _triton.Launch(BWD, BWD.positional(named), cfg.num_warps)
        self._bind(BWD, named, ("DY", "X", "W", "RSTD", "DH", "DX", "DR", "DW_PART", "PART"))
        self.go = self.launch.go
        self.i_epoch = BWD.index["EPOCH"]
        if self.need_dw:
            block_n = 256 if n >= 256 else max(16, 1 << (n - 1).bit_length())
            red = dict(DW_PART=named["DW_PART"], DW=w, P=self.part_rows, N=n, BLOCK_P=32,
                       BLOCK_N=block_n, PDL=named["PDL"])
            self.reduce = (cdiv(n, block_n),
                           _triton.Launch(DW_REDUCE, DW_REDUCE.positional(red), 4),
                           [DW_REDUCE.index["DW_PART"], DW_REDUCE.index["DW"]],
                           DW_REDUCE.positional(red))
            for i in self.reduce[2]:
                self.reduce[3][i] = None

    def _outputs(self):
        """(DX, DR) for the kernel: it always writes DX, so DX is the residual's gradient when dx
        is not wanted, and a scratch buffer when only dw is; DR only beside a wanted dx."""
        m, n, (dx_dtype, dr_dtype, x_dtype), where = self.m, self.n, self.dtypes, self.where
        dx = torch.empty((m, n), dtype=dx_dtype, device=where) if dx_dtype is not None else None
        dr = torch.empty((m, n), dtype=dr_dtype, device=where) if dr_dtype is not None else None
        if dx is None:
            dx, dr = dr, None
        if dx is None:
            dx = torch.empty((m, n), dtype=x_dtype, device=where)
        return dx, dr

    def __call__(self, dy, dh, xin, weight, rstd):
        if self.current is not None and self.current() != self.dev:
            with torch.cuda.device(self.dev):
                return self(dy, dh, xin, weight, rstd)
        w = weight.contiguous() if self.w_copy else weight
        if not self.m:
            return self._result(*self._outputs(), torch.zeros_like(w) if self.need_dw else None,
                                xin.shape)
        n, arg, where = self.n, self.launch.arg, self.where
        dx = torch.empty(self.dx_shape, dtype=self.dx_dtype, device=where)
        dr = torch.empty(self.dx_shape, dtype=self.dr_dtype, device=where) if self.dr else None
        x2, dy2, dh2 = xin, dy, dh
        if not self.rows_as_given:
            x2 = xin if self.heads_x else rows_view(xin, n)
            dy2 = dy if self.heads_dy else rows_view(dy, n)
            dh2 = None if dh is None else rows_view(dh, n)
        xa = arg(x2)
        call = self.template.copy()
        i = self.index
        call[i[0]], call[i[1]], call[i[3]], call[i[5]] = arg(dy2), xa, arg(rstd), arg(dx)
        call[i[2]] = xa if w is None else arg(w)
        call[i[4]] = xa if dh2 is None else arg(dh2)
        call[i[6]] = xa if dr is None else arg(dr)
        if self.chunks:
            p, call[self.i_epoch] = slots(self.m, self.chunks, where)
            call[i[8]] = arg(p)
        else:
            call[i[8]] = xa
        part = torch.empty(self.part_shape, dtype=rstd.dtype, device=where) \
            if self.need_dw else None
        call[i[7]] = xa if part is None else arg(part)
        if not self.cooperative:
            self.go(self.grid, call, self.dev)
        elif not self._cooperative(call, lambda: BwdPlan(dy, dh, xin, weight, rstd, *self._spec,
                                                         **self._kw, no_split=True)):
            return self(dy, dh, xin, weight, rstd)
        dw = None
        if part is not None:
            grid, launch, (i_part, i_dw), template = self.reduce
            dw = torch.empty_like(w)
            call = template.copy()
            call[i_part], call[i_dw] = launch.arg(part), launch.arg(dw)
            launch.go(grid, call, self.dev)
        return self._result(dx, dr, dw, None)

    def _result(self, dx, dr, dw, shape):
        """(dx, dr, dw) as asked for, in xin's shape (shape; None: the shape they have), from
        _outputs' buffers."""
        if self.dtypes[0] is None:
            dx, dr = None, (dx if self.dtypes[1] is not None else None)
        if self.shape is None:
            return dx, dr, dw
        return (dx.view(self.shape) if dx is not None else None,
                dr.view(self.shape) if dr is not None else None, dw)


def backward(dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype, need_dw):
    """A backward call with no forward plan at hand (torch.compile's backward op): its own
    signature in PLANS."""
    k = key(xin, weight, rstd, 0.0, offset, "bwd", *bwd_key(dy, dh, dx_dtype, dr_dtype, need_dw))
    plan = PLANS.get(k) if k is not None else None
    if plan is None:
        plan = remember(k, BwdPlan(dy, dh, xin, weight, rstd, offset, dx_dtype, dr_dtype,
                                   need_dw))
    return plan(dy, dh, xin, weight, rstd)

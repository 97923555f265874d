"""qk_norm_: per-head RMSNorm of q and k inside a fused qkv tensor, in place, in ONE launch.

A fused projection writes, per token, Hq q heads, then Hk k heads, then Hk v heads of D
elements: qkv is [..., (Hq + 2 Hk) * D]. The q and k heads of a token are adjacent, so they
are rows of one [T, Hq + Hk, D] view: row r starts at (r // (Hq + Hk)) * s0 + (r % (Hq + Hk)) * D
(s0 the token stride), which the forward's ONE_PASS walk reads in place with HEAD_ROWS; rows
whose head is below Hq take q_weight, the others k_weight (TWO_W). One launch, no copy, v
untouched.

The backward (autograd) takes dqkv_out in its own layout, writes dq and dk into a fresh dqkv
(rows at two strides again) and copies dv there; dw_q and dw_k come from one dw_reduce. The
forward overwrites q and k, so under autograd it first keeps a copy of them (the backward needs
x_hat, which the weights cannot give back where they hold zeros).
"""

import math

import torch

from . import _triton, options, plan, tables
from .checks import CASTINGS, check_rows, check_scalar, check_tensor
from .layout import for_rows, w_first
from .plan import BWD, DW_REDUCE, FWD, PLANS, _Plan, on_device
from .rows import token_stride
from .split import cdiv


def check(qkv, q_weight, k_weight, num_q_heads, num_kv_heads, eps, offset, casting):
    """Every check of a qk_norm_ call's arguments; returns (T, token stride)."""
    check_tensor("qkv", qkv)
    check_tensor("q_weight", q_weight)
    check_tensor("k_weight", k_weight)
    for name, v in (("num_q_heads", num_q_heads), ("num_kv_heads", num_kv_heads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} is {v!r}, expected a positive int")
    if q_weight.dim() != 1:
        raise ValueError(f"q_weight has shape {tuple(q_weight.shape)}, expected (head_dim,)")
    d = q_weight.shape[0]
    if tuple(k_weight.shape) != (d,):
        raise ValueError(f"k_weight has shape {tuple(k_weight.shape)}, expected ({d},) like "
                         "q_weight (head_dim)")
    if k_weight.dtype != q_weight.dtype:
        raise TypeError(f"k_weight has dtype {k_weight.dtype}, expected q_weight's "
                        f"({q_weight.dtype})")
    for name, w in (("q_weight", q_weight), ("k_weight", k_weight)):
        if w.device != qkv.device:
            raise ValueError(f"{name} is on {w.device} but qkv is on {qkv.device}; expected "
                             "both on one device")
    width = (num_q_heads + 2 * num_kv_heads) * d
    if qkv.dim() < 1 or qkv.shape[-1] != width:
        raise ValueError(f"qkv has shape {tuple(qkv.shape)}, expected (..., {width}): "
                         f"(num_q_heads {num_q_heads} + 2 * num_kv_heads {num_kv_heads}) * "
                         f"head_dim {d}")
    check_scalar("eps", eps, minimum=0.0)
    check_scalar("offset", offset)
    if casting not in CASTINGS:
        raise ValueError(f"casting is {casting!r}, expected one of {sorted(CASTINGS)}")
    check_rows("qkv", qkv, math.prod(qkv.shape[:-1]) * (num_q_heads + num_kv_heads))
    return tokens(qkv, "qkv")


def tokens(t, name):
    """(T, stride between tokens) of [..., C] t: a unit last stride, and leading dims that
    collapse into one stride of at least C (tokens apart); another layout raises (a copy
    would lose the in-place write)."""
    c = t.shape[-1] if t.dim() else 1
    outer = token_stride(t.shape[:-1], t.stride()[:-1]) if t.dim() else 0
    if t.dim() == 0 or (t.stride(-1) != 1 and c > 1) or outer is None or 0 < outer < c:
        raise ValueError(f"{name} has shape {tuple(t.shape)} and strides {t.stride()}, expected "
                         "a unit last stride and tokens one stride (>= the last dim) apart")
    return (t.numel() // c if c else 0), outer or c


class QKPlan(_Plan):
    """rms_norm_fwd's launch over the q and k heads of one qkv signature, in place:
    plan(qkv, q_weight, k_weight) -> rstd (T * (Hq + Hk),) fp32, or None without store_rstd."""

    def __init__(self, qkv, q_weight, k_weight, hq, hk, eps, offset, casting, store_rstd,
                 config=None):
        with on_device(qkv):
            self._build(qkv, q_weight, k_weight, hq, hk, eps, offset, casting, store_rstd,
                        config)

    def _build(self, qkv, wq, wk, hq, hk, eps, offset, casting, store_rstd, config=None):
        t, s0 = tokens(qkv, "qkv")
        d = wq.shape[0]
        self._device(qkv)
        self.hq, self.hk, self.d, self.offset, self.store_rstd = hq, hk, d, offset, store_rstd
        self.qk_width = (hq + hk) * d
        self.m = m = t * (hq + hk)
        self.acc = torch.float64 if qkv.dtype == torch.float64 else torch.float32
        self.bwd = {}
        if m == 0:
            return
        opts = options.get()
        native = opts.w_native and tables.native_weight(wq, casting, offset, qkv.dtype, qkv.dtype)
        cfg = config or tables.fwd_config(d, qkv.dtype, False, native,
                                          tables.table_for(qkv.device))
        if not cfg.one_pass:
            raise ValueError(f"head_dim is {d}, expected one that a row of one block holds "
                             "(up to the forward table's one-pass limit)")
        sms = tables.device_props(qkv.device.index).multi_processor_count if qkv.is_cuda else 1
        cfg = cfg if config else for_rows(cfg, m, sms, opts.batch_invariant)  # (tune.py: as given)
        rstd = torch.empty(m, dtype=self.acc, device=self.where) if store_rstd else qkv
        named = dict(
            X=qkv, R=qkv, W=wq, Y=qkv, H=qkv, RSTD=rstd, PART=qkv, stride_x=d, stride_r=0,
            stride_y=d, stride_h=0, M=m, N=d, eps=eps, offset=offset, NUM_GROUPS=1, EPOCH=0,
            BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, ONE_PASS=True, SPLIT=False, S_POW2=1,
            PAIRS=False, EARLY=False, HAS_W=True, HAS_R=False, STORE_RSTD=store_rstd,
            CASTING=CASTINGS[casting],
            W_FIRST=w_first(cfg, m, sms, opts),
            W_NATIVE=native and tables.native_layout(cfg, False, opts),
            DYNAMIC=False, PDL=tables.pdl_enabled(qkv.device),
            HEAD_ROWS=True, HEADS=hq + hk, outer_x=s0, outer_y=s0, TWO_W=True, W2=wk,
            Q_HEADS=hq)
        self.grid = cdiv(m, cfg.block_m)
        self.launch = _triton.Launch(FWD, FWD.positional(named), cfg.num_warps, cfg.maxnreg)
        self._bind(FWD, named, ("X", "R", "Y", "H", "PART", "W", "W2", "RSTD"))
        self.go, self.arg = self.launch.go, self.launch.arg

    def __call__(self, qkv, wq, wk):
        if self.current is not None and self.current() != self.dev:
            with torch.cuda.device(self.dev):
                return self(qkv, wq, wk)
        rstd = torch.empty(self.m, dtype=self.acc, device=self.where) if self.store_rstd else None
        if not self.m:
            return rstd
        arg, i, call = self.arg, self.index, self.template.copy()
        call[i[0]] = call[i[1]] = call[i[2]] = call[i[3]] = call[i[4]] = qa = arg(qkv)
        call[i[5]], call[i[6]] = arg(wq), arg(wk)
        call[i[7]] = qa if rstd is None else arg(rstd)
        self.go(self.grid, call, self.dev)
        return rstd

    def backward(self, dout, xqk, wq, wk, rstd, need_dw):
        k = plan.bwd_key(dout, None, need_dw)
        p = self.bwd.get(k)
        if p is None:
            p = QKBwdPlan(dout, xqk, wq, self.hq, self.hk, self.offset, need_dw)
            if len(self.bwd) < 64:
                self.bwd[k] = p
        return p(dout, xqk, wq, wk, rstd)


class QKBwdPlan(_Plan):
    """rms_norm_bwd (+ dw_reduce) over the q and k heads: plan(dout, xqk, wq, wk, rstd) ->
    (dqkv contiguous in dout's shape, dw_q, dw_k). xqk: the saved q and k, (T * (Hq + Hk), D)."""

    def __init__(self, dout, xqk, wq, hq, hk, offset, need_dw, config=None):
        with on_device(xqk):
            self._build(dout, xqk, wq, hq, hk, offset, need_dw, config)

    def _build(self, dout, xqk, wq, hq, hk, offset, need_dw, config=None):
        self._device(xqk)
        d, heads = wq.shape[0], hq + hk
        self.qk, self.m, self.d, self.need_dw = heads * d, xqk.shape[0], d, need_dw
        self.reduce = None
        cfg = config or tables.bwd_config(d, xqk.dtype, tables.table_for(xqk.device))
        if not cfg.one_pass:
            raise ValueError(f"head_dim is {d}, expected one that the backward's one pass holds")
        _, s0 = tokens(dout, "the gradient of qkv")
        dx = torch.empty(dout.shape, dtype=dout.dtype, device=self.where)
        self.grid = min(cdiv(self.m, cfg.block_m), tables.num_programs(xqk.device, cfg))
        self.part_shape = (self.grid, 2 * d)
        part = torch.empty(self.part_shape, dtype=torch.float32 if xqk.dtype != torch.float64
                           else torch.float64, device=self.where) if need_dw else xqk
        named = dict(
            DY=dout, X=xqk, W=wq, RSTD=xqk, DH=xqk, DX=dx, DR=xqk, DW_PART=part, PART=xqk,
            stride_dy=d, stride_x=d, stride_dh=0, stride_dx=d, stride_dr=0, M=self.m, N=d,
            offset=offset, NUM_PROGS=self.grid, EPOCH=0, BLOCK_M=cfg.block_m,
            BLOCK_N=cfg.block_n, ONE_PASS=True, SPLIT=False, S_POW2=1, PAIRS=False,
            EARLY=False, HAS_W=True, STORE_DW=need_dw, HAS_DH=False, STORE_DR=False,
            PDL=tables.pdl_enabled(xqk.device), HEAD_ROWS=True, HEADS=heads, outer_dy=s0,
            outer_x=heads * d, outer_dx=dx.shape[-1], TWO_W=True, W2=wq, Q_HEADS=hq)
        self.launch = _triton.Launch(BWD, BWD.positional(named), cfg.num_warps)
        self.go = self.launch.go
        self._bind(BWD, named, ("DY", "X", "W", "W2", "RSTD", "DX", "DW_PART", "DH", "DR",
                                "PART"))
        if need_dw:
            block_n = 256 if 2 * d >= 256 else max(16, tables.pow2(2 * d))
            red = dict(DW_PART=part, DW=part, P=self.grid, N=2 * d, BLOCK_P=32,
                       BLOCK_N=block_n, PDL=named["PDL"])
            template = DW_REDUCE.positional(red)
            idx = [DW_REDUCE.index["DW_PART"], DW_REDUCE.index["DW"]]
            for j in idx:
                template[j] = None
            self.reduce = (cdiv(2 * d, block_n),
                           _triton.Launch(DW_REDUCE, DW_REDUCE.positional(red), 4), idx, template)

    def __call__(self, dout, xqk, wq, wk, rstd):
        if self.current is not None and self.current() != self.dev:
            with torch.cuda.device(self.dev):
                return self(dout, xqk, wq, wk, rstd)
        dx = torch.empty(dout.shape, dtype=dout.dtype, device=self.where)
        dx[..., self.qk:] = dout[..., self.qk:]  # v's gradient passes through
        arg, i, call = self.launch.arg, self.index, self.template.copy()
        xa = arg(xqk)
        call[i[0]], call[i[1]], call[i[2]], call[i[3]] = arg(dout), xa, arg(wq), arg(wk)
        call[i[4]], call[i[5]] = arg(rstd), arg(dx)
        call[i[7]] = call[i[8]] = call[i[9]] = xa
        part = torch.empty(self.part_shape, dtype=rstd.dtype, device=self.where) \
            if self.need_dw else None
        call[i[6]] = xa if part is None else arg(part)
        if self.m:
            self.go(self.grid, call, self.dev)
        if part is None:
            return dx, None, None
        if not self.m:
            dw = torch.zeros(2 * self.d, dtype=wq.dtype, device=self.where)
        else:
            grid, launch, (i_part, i_dw), template = self.reduce
            dw = torch.empty(2 * self.d, dtype=wq.dtype, device=self.where)
            red = template.copy()
            red[i_part], red[i_dw] = launch.arg(part), launch.arg(dw)
            launch.go(grid, red, self.dev)
        return dx, dw[:self.d], dw[self.d:]


class _QKNormFn(torch.autograd.Function):
    """qk_norm_ with autograd: qkv is marked dirty; q and k are copied first for the backward."""

    @staticmethod
    def forward(ctx, qkv, wq, wk, p):
        xqk = qkv[..., :p.qk_width].clone(memory_format=torch.contiguous_format).view(-1, p.d)
        rstd = p(qkv, wq, wk)
        ctx.mark_dirty(qkv)
        ctx.save_for_backward(xqk, wq, wk, rstd)
        ctx.plan = p
        return qkv

    @staticmethod
    def backward(ctx, dout):
        if torch.is_grad_enabled():
            raise RuntimeError("qk_norm_ has no double backward (create_graph=True)")
        xqk, wq, wk, rstd = ctx.saved_tensors
        if not xqk.numel():  # no tokens: nothing to launch
            return (torch.zeros(dout.shape, dtype=dout.dtype, device=dout.device),
                    torch.zeros_like(wq), torch.zeros_like(wk), None)
        try:
            tokens(dout, "dout")
        except ValueError:  # e.g. expanded, from a .sum(): rows the kernel cannot address
            dout = dout.contiguous()
        need_dw = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        dx, dwq, dwk = ctx.plan.backward(dout, xqk, wq, wk, rstd, need_dw)
        return dx, dwq, dwk, None


def qk_norm_(qkv, q_weight, k_weight, num_q_heads, num_kv_heads, eps=1e-6, *, offset=0.0,
             casting="llama"):
    """In place: RMSNorm over head_dim of every q head (weight q_weight) and k head (k_weight)
    of a fused qkv tensor [..., (num_q_heads + 2 * num_kv_heads) * head_dim], in one launch;
    v is untouched. head_dim is q_weight's length. offset and casting as in rms_norm (Qwen3:
    the defaults; Gemma3: offset=1.0, casting="gemma"). Returns qkv.

    qkv's leading dims must collapse into one token stride with a unit last stride (a Linear's
    output, or a slice of tokens of one). With autograd (qkv a non-leaf that needs grad, or a
    weight that does) the gradient of qkv comes back contiguous.
    """
    grad = torch.is_grad_enabled() and (qkv.requires_grad or q_weight.requires_grad
                                        or k_weight.requires_grad)
    key = plan.key(qkv, q_weight, k_weight, eps, offset, casting, "qk", num_q_heads,
                   num_kv_heads, grad)
    p = PLANS.get(key) if key is not None else None
    if p is None:
        check(qkv, q_weight, k_weight, num_q_heads, num_kv_heads, eps, offset, casting)
        if torch.compiler.is_compiling():
            return _compiled(qkv, q_weight, k_weight, num_q_heads, num_kv_heads, eps, offset,
                             casting, grad)
        p = plan.remember(key, QKPlan(qkv, q_weight, k_weight, num_q_heads, num_kv_heads,
                                      float(eps), float(offset), casting, grad))
    if grad:
        return _QKNormFn.apply(qkv, q_weight, k_weight, p)
    p(qkv, q_weight, k_weight)
    return qkv


def _compiled(qkv, wq, wk, hq, hk, eps, offset, casting, grad):
    """Under torch.compile: the mutating op; with autograd, rms_norm's differentiable op on q
    and k views of a copy (rows at two strides), written back."""
    if not grad:
        torch.ops.rmsnorm_triton.qk_norm_(qkv, wq, wk, hq, hk, float(eps), float(offset),
                                          casting)
        return qkv
    from .ops import rms_norm

    d = wq.shape[0]
    qk = qkv[..., :(hq + hk) * d].clone()  # kept for the backward, as the eager path keeps it
    q = qk[..., :hq * d].unflatten(-1, (hq, d))
    k = qk[..., hq * d:].unflatten(-1, (hk, d))
    yq = rms_norm(q, wq, eps, offset=offset, casting=casting, out_dtype=qkv.dtype)
    yk = rms_norm(k, wk, eps, offset=offset, casting=casting, out_dtype=qkv.dtype)
    qkv[..., :(hq + hk) * d] = torch.cat([yq.flatten(-2), yk.flatten(-2)], -1)
    return qkv


@torch.library.custom_op("rmsnorm_triton::qk_norm_", mutates_args=("qkv",))
def _qk_norm_op(qkv: torch.Tensor, q_weight: torch.Tensor, k_weight: torch.Tensor,
                num_q_heads: int, num_kv_heads: int, eps: float, offset: float,
                casting: str) -> None:
    key = plan.key(qkv, q_weight, k_weight, eps, offset, casting, "qk op", num_q_heads,
                   num_kv_heads)
    p = PLANS.get(key) or plan.remember(key, QKPlan(
        qkv, q_weight, k_weight, num_q_heads, num_kv_heads, eps, offset, casting, False))
    p(qkv, q_weight, k_weight)


@_qk_norm_op.register_fake
def _(qkv, q_weight, k_weight, num_q_heads, num_kv_heads, eps, offset, casting):
    return None


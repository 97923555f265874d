"""Which launch layout is fastest for each (op, dtype, N) on this GPU? The launch-table sweep.

Times the table's entry for each cell (and, with --sweep, every candidate layout: one-pass
shapes, SPLIT chunks x warps x programs per SM, with and without PAIRS / EARLY / register caps)
as % of the copy bandwidth measured in the same run, on the bench's device clock, each checked
against float64. The winners are what tables.py's entries for this GPU's architecture should be.

    python benchmarks/tune.py                                  the table as it stands
    python benchmarks/tune.py --sweep --ops fwd --dtypes bf16  every candidate, one family
    python benchmarks/tune.py --variants 2048x4:early:6:80     named SPLIT layouts beside it
    python benchmarks/tune.py --sweep --ops fp8_token,fp8_static_residual --ns 2048,16384
                                                      the FP8 forward's layouts (bench/fp8.py ops)
    python benchmarks/tune.py --sweep --ops qk_fwd,qk_bwd --dtypes bf16 --ns 64,128,256
                                                      qk_norm_'s layouts, N = head_dim (Hq 48, Hk 16)
    python benchmarks/tune.py --sweep --ops gated_fwd,gated_bwd_g1024 --dtypes bf16 --ns 8192
                                                      rms_norm_gated's layouts (gated.layouts; silu,
                                                      norm before the gate; _gG: groups of G)
    TUNE_FAMILIES=onepass,pairs,early,capped  which families --sweep times
    TUNE_NATIVE=both  each 16-bit-product forward layout also with the product in fp32

Needs a CUDA GPU. Prints one line per (op, dtype, N, layout) and the best per cell, and writes
the rows as JSON to $OUT (default: the current folder).
"""

import argparse
import itertools
import json
import os
import sys
import time

import torch
import triton
from triton.testing import do_bench

from rmsnorm_triton import _triton, gated, heads, options, plan, tables
from rmsnorm_triton.bench import fp8 as fp8_bench
from rmsnorm_triton.fp8 import Quant
from rmsnorm_triton.bench.harness import alternate
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms
from rmsnorm_triton.tables import Config
from rmsnorm_triton.reference import gated_rms_norm_ref, rms_norm_ref
from rmsnorm_triton.testing import max_scaled_error, normwise_error

DT = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
NS = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144]


def copy_gbps():
    src = torch.randn(1 << 28, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    ms = do_bench(lambda: dst.copy_(src), warmup=50, rep=300, return_mode="median")
    return 2 * src.numel() * 4 / ms / 1e6


# SPLIT sweeps: (chunk, warps, programs per SM to try), the counts chosen from what fits in the
# register file (benchmarks/regs.py: registers per thread of each layout, compiled for sm_90).
# Each layout is tried with PAIRS (16-bit chunks prefetched as 32-bit words) and without.
SPLIT_FWD = [(2048, 4, (4, 5, 6, 7, 8)), (2048, 8, (2, 4, 6)), (4096, 4, (2, 3, 4)),
             (4096, 8, (2, 3, 4)), (8192, 8, (1, 2)), (8192, 16, (1, 2)), (16384, 16, (1,))]
SPLIT_BWD = [(2048, 4, (2, 3, 4)), (2048, 8, (1, 2, 3)), (4096, 4, (1, 2)), (4096, 8, (1, 2)),
             (8192, 8, (1,)), (8192, 16, (1,))]
# Which families a --sweep times, beside the table's entry: TUNE_FAMILIES=split,pairs (say);
# "capped": the SPLIT layouts with PAIRS, loads after / before the publish, registers capped
# (maxnreg) so that one or two more programs fit an SM than ptxas's own count allows.
FAMILIES = set(os.environ.get("TUNE_FAMILIES", "onepass,pairs,early").split(","))
# TUNE_NATIVE=both: each forward variant that multiplies w * x_hat in 16 bits (SPLIT, long one-pass
# rows: options.w_native_one_pass) also with the product in fp32 (options.w_native off).
CAPPED_FWD = [(1024, 4, (10, 12)), (2048, 4, (7, 8)), (4096, 4, (4,)), (4096, 8, (3, 4)),
              (8192, 8, (2,)), (8192, 16, (2,))]
CAPPED_BWD = [(1024, 4, (6, 8)), (2048, 4, (4,)), (2048, 8, (3, 4)), (4096, 8, (2,))]


def capped_variants(layouts, bn):
    if "capped" not in FAMILIES:
        return []
    return [Config(1, blk, w, False, True, pps, early=e,
                   maxnreg=tables.regs_for(pps, w))
            for blk, w, ppss in layouts for pps in ppss for e in (False, True) if blk < bn]


def split_variants(layouts, bn):
    """SPLIT layouts shorter than the row; "split" without PAIRS, "pairs" with it where the
    launcher allows it (16-bit data; for fp32 the two are the same kernel), "early" with PAIRS
    and the next round's loads issued before the publish."""
    fams = [(p, e) for f, p, e in (("split", False, False), ("pairs", True, False),
                                   ("early", True, True)) if f in FAMILIES]
    return [Config(1, blk, w, False, True, pps, pairs=p, early=e)
            for blk, w, ppss in layouts for pps in ppss for p, e in fams if blk < bn]


def fwd_variants(n, dt, res=False):
    size = torch.empty((), dtype=dt).element_size()
    bn = triton.next_power_of_2(n)
    out = [table_fwd(n, dt, res)]
    if bn <= 65536 and "onepass" in FAMILIES:
        for bm, w in itertools.product([1, 2, 4, 8, 16, 32], [2, 4, 8, 16, 32]):
            e = bm * bn
            if 1024 <= e * size <= 131072 and 4 <= e // (32 * w) <= 64:
                out.append(Config(bm, bn, w, True))
    if bn in (16384, 32768) and "capped" in FAMILIES:  # one pass, registers capped for 2-3 an SM
        for w, pps in itertools.product((8, 16, 32), (2, 3)):
            if tables.regs_for(pps, w) >= 32:
                out.append(Config(1, bn, w, True, maxnreg=tables.regs_for(pps, w)))
    if bn >= 16384:  # SPLIT: chunk, warps, programs per SM (a layout that does not fit falls back)
        out += split_variants(SPLIT_FWD, bn) + capped_variants(CAPPED_FWD, bn)
    return list(dict.fromkeys(out))


def bwd_variants(n, dt):
    bn = triton.next_power_of_2(n)
    out = [table_bwd(n, dt)]
    if bn <= 16384 and "onepass" in FAMILIES:
        for bm, w, pps in itertools.product([1, 2, 4, 8, 16, 32, 64], [4, 8], [1, 2, 4]):
            e = bm * bn
            if 2048 <= e <= 16384 and 8 <= e // (32 * w) <= 32:
                out.append(Config(bm, bn, w, True, False, pps))
    if bn >= 8192:
        out += split_variants(SPLIT_BWD, bn) + capped_variants(CAPPED_BWD, bn)
    return list(dict.fromkeys(out))


def given(spec, n):
    """--variants: "2048x4:early:6:80,..." as Configs (read as a table entry is: "early+dyn"
    hands rows out at run time), those shorter than the row."""
    out = []
    for item in filter(None, (spec or "").split(",")):
        shape, mode_, pps, *cap = item.split(":")
        blk, w = map(int, shape.split("x"))
        if blk < triton.next_power_of_2(n):
            entry = (1, blk, w, mode_, int(pps), *map(int, cap))
            out.append(tables._lookup({None: entry}, triton.next_power_of_2(n), 2))
    return out


def table_fwd(n, dt, res):
    """This GPU's table entry (its architecture's, or the generic one)."""
    return tables.fwd_config(n, dt, res, True, tables.table_for(torch.device("cuda")))


def table_bwd(n, dt):
    return tables.bwd_config(n, dt, tables.table_for(torch.device("cuda")))


def groups(p):
    """A SPLIT plan's groups of programs (a layout that does not fit shows as fewer), or None."""
    return p.grid // p.chunks if getattr(p, "chunks", 0) else None


def mode(cfg):
    if cfg.split:
        m = "ea" if cfg.early else "pr" if cfg.pairs else "sp"
        return m + (f"r{cfg.maxnreg}" if cfg.maxnreg else "") + ("d" if cfg.dynamic else "")
    return "1p" if cfg.one_pass else "lp"


def fwd_plan(x, w, r, cfg, op="fwd"):
    """The forward's launch plan with this layout (plan.FwdPlan: the library's own launch);
    an FP8 op (fp8_<mode>[_residual]) gets its QUANT epilogue, e4m3, groups of 128."""
    if not op.startswith("fp8_"):
        return plan.FwdPlan(x, w, r, 1e-6, 0.0, "llama", x.dtype, x.dtype, False, config=cfg)
    quant = Quant(fp8_bench.parse(op)[0], fp8_bench.GROUP, False, "row", None, False)
    return plan.FwdPlan(x, w, r, 1e-6, 0.0, "llama", fp8_bench.FP8, x.dtype, False,
                        config=cfg, quant=quant)


def fp8_error(op, x, w, r, out):
    """The bench's FP8 check (q s against the float64 y, in FP8's rounding units)."""
    t = {"x": x, "w": w, "r": r}
    return fp8_bench.check(op, out, fp8_bench.reference(op, t), t)


def fwd_error(x, w, r, y, rows=4096):
    """y against float64, every row (in slices of `rows`: a SPLIT round error shows in any).
    With a residual, h = x + r is rounded to x's dtype first, as the kernel (and torch) does."""
    err = 0.0
    for i in range(0, x.shape[0], rows):
        sl = slice(i, i + rows)
        ref, _ = rms_norm_ref(x[sl] + r[sl] if r is not None else x[sl], w)
        err = max(err, max_scaled_error(y[sl], ref))
    return err


QK_HEADS = (48, 16)  # Hq, Hk: the bench's QK cells (bench/heads.py)


def tune_qk(op, dname, d, sweep, clock, cbw, mn=1 << 26, device="cuda"):
    """qk_norm_'s forward (in place) or backward at head_dim d, each layout checked against
    float64 and timed; T (Hq + Hk) d = 2^26 as the bench has it. Rows as main's."""
    dt, (hq, hk) = DT[dname], QK_HEADS
    size = torch.empty((), dtype=dt).element_size()
    width = (hq + hk) * d
    t = max(1, mn // width)
    m = t * (hq + hk)
    qkv = [torch.randn(t, (hq + 2 * hk) * d, device=device, dtype=dt) for _ in range(2)]
    wq, wk = ((1 + 0.1 * torch.randn(d, device=device)).to(dt) for _ in range(2))
    x0 = qkv[0].clone()  # the checks' input: the timed calls normalize qkv in place, again and again
    x64 = x0[:, :width].double().unflatten(-1, (hq + hk, d)).requires_grad_()
    w64 = [w.double().requires_grad_() for w in (wq, wk)]
    ref = torch.cat([rms_norm_ref(x64[:, :hq], w64[0])[0], rms_norm_ref(x64[:, hq:], w64[1])[0]], 1)
    if op == "qk_fwd":
        base = tables.fwd_config(d, dt, False, True, tables.table_for(torch.device(device)))
        cfgs = fwd_variants(d, dt) if sweep else [base]
        nbytes = (2 * m * d + 2 * d) * size
        ref = ref.detach().flatten(1)
    else:
        base = tables.bwd_config(d, dt, tables.table_for(torch.device(device)))
        cfgs = bwd_variants(d, dt) if sweep else [base]
        nbytes = (3 * m * d + 4 * d) * size
        dout = torch.randn_like(qkv[0])
        grads = torch.autograd.grad(ref, [x64, *w64], dout[:, :width].double().unflatten(-1, (hq + hk, d)))
        xqk = x0[:, :width].contiguous().view(-1, d)
        rstd = heads.QKPlan(x0, wq, wk, hq, hk, 1e-6, 0.0, "llama", True)(x0.clone(), wq, wk)
    rows = []
    for cfg in [c for c in cfgs if c.one_pass]:
        try:
            if op == "qk_fwd":
                p = heads.QKPlan(qkv[0], wq, wk, hq, hk, 1e-6, 0.0, "llama", False, config=cfg)
                buf = x0.clone()
                p(buf, wq, wk)
                err = max_scaled_error(buf[:, :width], ref)
                ms = clock(alternate(lambda: p(qkv[0], wq, wk), lambda: p(qkv[1], wq, wk)))
            else:
                p = heads.QKBwdPlan(dout, xqk, wq, hq, hk, 0.0, True, config=cfg)
                dx, dwq, dwk = p(dout, xqk, wq, wk, rstd)
                err = max(normwise_error(dx[:, :width], grads[0].flatten(1)),
                          normwise_error(dwq, grads[1]), normwise_error(dwk, grads[2]))
                ms = clock(lambda: p(dout, xqk, wq, wk, rstd))
        except Exception as e:  # a variant that does not compile (registers, shared memory)
            print(f"{op} {dname} {d} {cfg} FAILED {type(e).__name__}: {str(e)[:100]}", flush=True)
            continue
        gbps = nbytes / ms / 1e6
        rows.append(dict(op=op, dtype=dname, N=d, M=m, cfg=cfg.__dict__, ms=ms, gbps=gbps,
                         pct=100 * gbps / cbw, err=err))
        print(f"{op} {dname} N={d:>6} {cfg.block_m:>3}x{cfg.block_n:<6} w{cfg.num_warps:<2} "
              f"{mode(cfg)} pps {cfg.progs_per_sm} {ms*1e3:8.1f} us {gbps:6.0f} GB/s "
              f"{100*gbps/cbw:5.1f}% err {err:.2g}", flush=True)
    return rows


def tune_gated(op, dname, n, sweep, clock, cbw, mn=1 << 26, device="cuda"):
    """rms_norm_gated's forward or backward (ops gated_fwd / gated_bwd, _gG for groups of G),
    x and z [M, N] with M N = 2^26 as the bench has them, each layout checked against float64."""
    dt, bwd = DT[dname], op.startswith("gated_bwd")
    g = int(op.split("_g")[-1]) if "_g" in op.split("gated_")[1] else n
    m, size = max(1, mn // n), torch.empty((), dtype=dt).element_size()
    x, z, dy = (torch.randn(m, n, device=device, dtype=dt) for _ in range(3))
    w = (1 + 0.1 * torch.randn(n, device=device)).to(dt)
    rows4 = slice(0, 4)  # the checks' rows: float64 over all of M would not fit beside the rest
    x64, z64, w64 = (t[rows4].double().requires_grad_() if t.dim() == 2 else
                     t.double().requires_grad_() for t in (x, z, w))
    ref = gated_rms_norm_ref(x64, z64, w64, 1e-6, True, "silu", g)
    base = gated.GatedPlan(x, z, w, 1e-6, True, "silu", g, "llama", dt, True)
    rstd = base(x, z, w)[1]
    if bwd:
        want = torch.autograd.grad(ref, (x64, z64), dy[rows4].double())
        nbytes = (5 * m * n + 2 * n) * size
    else:
        nbytes = (3 * m * n + n) * size
    lays = gated.layouts(n, g, dt, bwd) if sweep else [gated.layout(n, g, dt, bwd)]
    rows = []
    for lay in lays:
        try:
            if bwd:
                p = gated.GatedBwdPlan(dy, x, z, w, rstd, True, "silu", g, True, config=lay)
                dx, dz, _ = p(dy, x, z, w, rstd)
                err = max(normwise_error(dx[rows4], want[0]), normwise_error(dz[rows4], want[1]))
                ms = clock(lambda: p(dy, x, z, w, rstd))
            else:
                p = gated.GatedPlan(x, z, w, 1e-6, True, "silu", g, "llama", dt, False,
                                    config=lay)
                # halved, as the bench scores it: Llama casting rounds x_hat, x_hat * w and y
                err = max_scaled_error(p(x, z, w)[0][rows4], ref, dt) / 2
                ms = clock(lambda: p(x, z, w))
        except Exception as e:  # a variant that does not compile (registers, shared memory)
            print(f"{op} {dname} {n} {lay} FAILED {type(e).__name__}: {str(e)[:100]}", flush=True)
            continue
        gbps = nbytes / ms / 1e6
        rows.append(dict(op=op, dtype=dname, N=n, M=m, cfg=lay._asdict(), ms=ms, gbps=gbps,
                         pct=100 * gbps / cbw, err=err))
        walk = f"loop {lay.block}" if lay.loop else f"{lay.ng2}x{lay.g2}"
        print(f"{op} {dname} N={n:>6} {walk:<10} w{lay.warps:<2} pps {lay.progs} "
              f"{ms*1e3:8.1f} us {gbps:6.0f} GB/s {100*gbps/cbw:5.1f}% err {err:.2g}", flush=True)
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ops", default="fwd,bwd,res")
    p.add_argument("--dtypes", default="bf16,fp16,fp32")
    p.add_argument("--ns", default=",".join(map(str, NS)))
    p.add_argument("--sweep", action="store_true", help="time every variant, not only the table's")
    p.add_argument("--clock", choices=("do_bench", "bench"), default="bench",
                   help="bench: the bench's device clock (bench/timing.kernel_ms, 30 ms a case), "
                   "or triton's do_bench, which reads 1-3 points lower")
    p.add_argument("--variants", help="SPLIT layouts to time beside the table's, as the tables "
                   "write them: BLOCK_NxWARPS:MODE:PPS[:MAXNREG],... (MODE split or early)")
    args = p.parse_args()
    if args.clock == "bench":
        dev = torch.device("cuda")
        clock = lambda f: kernel_ms(f, dev, rep_ms=30.0)  # noqa: E731
    else:
        clock = lambda f: do_bench(f, warmup=10, rep=60, return_mode="median")  # noqa: E731
    torch.manual_seed(0)
    gpu = torch.cuda.get_device_name()
    if args.clock == "bench":  # the bench's ceiling too: 512 MiB read + written, same clock
        c_ms, c_bytes = copy_bandwidth(torch.device("cuda"), 512)
        cbw = c_bytes / c_ms / 1e6
    else:
        cbw = copy_gbps()
    def ptxas(name):  # the one the launch compiles this kernel with, and its version
        var, own = _triton.triton_ptxas()
        path = (_triton.ptxas_path(name) or (var, None))[1] or os.environ.get(var) or own
        return f"{path} {_triton.ptxas_version(path)}"

    print(f"{gpu} torch {torch.__version__} triton {triton.__version__} ptxas: forward "
          f"{ptxas('rms_norm_fwd')}, backward {ptxas('rms_norm_bwd')}: copy {cbw:.0f} GB/s",
          flush=True)
    rows = []
    for op, dname, n in itertools.product(args.ops.split(","), args.dtypes.split(","),
                                          map(int, args.ns.split(","))):
        if op in ("qk_fwd", "qk_bwd"):
            rows += tune_qk(op, dname, n, args.sweep, clock, cbw)
            continue
        if op.startswith("gated_"):
            rows += tune_gated(op, dname, n, args.sweep, clock, cbw)
            continue
        dt = DT[dname]
        m = (1 << 26) // n
        size = torch.empty((), dtype=dt).element_size()
        x = torch.randn(m, n, device="cuda", dtype=dt)
        w = (1 + 0.1 * torch.randn(n, device="cuda")).to(dt)
        fp8 = op in fp8_bench.OPS
        res = op == "res" or (fp8 and fp8_bench.parse(op)[1])
        r = torch.randn_like(x) if res else None
        if op in ("fwd", "res") or fp8:  # timed alternating two sets of inputs, as the bench does
            x_2 = torch.randn_like(x)
            r_2 = torch.randn_like(x) if res else None
            cfgs = fwd_variants(n, dt, res) if args.sweep else [table_fwd(n, dt, res)]
            cfgs = list(dict.fromkeys(cfgs + given(args.variants, n)))
            nbytes = (fp8_bench.min_bytes(op, m, n, dt) if fp8
                      else (4 if op == "res" else 2) * m * n * size + n * size)
            scale = fp8_bench.scale_arg(fp8_bench.parse(op)[0], x.device) if fp8 else None
            if isinstance(scale, str):
                scale = None  # dynamic: the plan makes the scales
            natives = (True, False) if os.environ.get("TUNE_NATIVE") == "both" else (True,)
            for cfg, nat in itertools.product(cfgs, natives):
                if not nat and not tables.native_layout(cfg, cfg.split, options.get()):
                    continue  # the fp32 product: the kernel timed already
                try:
                    with options.override(w_native=nat):
                        p = fwd_plan(x, w, r, cfg, op)
                    if fp8:
                        q, h, s_ = p(x, w, r, scale)
                        err = fp8_error(op, x, w, r, (q, s_, h) if res else (q, s_))
                    else:
                        err = fwd_error(x, w, r, p(x, w, r)[0])
                    ms = clock(alternate(lambda: p(x, w, r, scale), lambda: p(x_2, w, r_2, scale)))
                except Exception as e:  # a variant that does not compile (registers, shared memory)
                    print(f"{op} {dname} {n} {cfg} FAILED {type(e).__name__}: {str(e)[:100]}", flush=True)
                    continue
                gbps = nbytes / ms / 1e6
                nat = nat and size == 2 and tables.native_layout(cfg, cfg.split, options.get())
                rows.append(dict(op=op, dtype=dname, N=n, M=m, cfg=cfg.__dict__, ms=ms, gbps=gbps,
                                 pct=100 * gbps / cbw, err=err, native=nat))
                print(f"{op} {dname} N={n:>6} {cfg.block_m:>3}x{cfg.block_n:<6} w{cfg.num_warps:<2}"
                      f" {mode(cfg)}{'n' if nat else ''} pps {cfg.progs_per_sm}"
                      f" G {groups(p)}"
                      f" {ms*1e3:8.1f} us {gbps:6.0f} GB/s"
                      f" {100*gbps/cbw:5.1f}% err {err:.2f}", flush=True)
        else:
            rstd = plan.FwdPlan(x, w, None, 1e-6, 0.0, "llama", dt, dt, True)(x, w, None)[2]
            dy = torch.randn_like(x)
            nbytes = 3 * m * n * size + 2 * n * size
            xd = x.double().requires_grad_()
            wd = w.double().requires_grad_()
            ref, _ = rms_norm_ref(xd, wd)
            gx, gw = torch.autograd.grad(ref, (xd, wd), dy.double())
            del xd, ref
            cfgs = bwd_variants(n, dt) if args.sweep else [table_bwd(n, dt)]
            cfgs = list(dict.fromkeys(cfgs + given(args.variants, n)))
            for cfg in cfgs:
                try:
                    p = plan.BwdPlan(dy, None, x, w, rstd, 0.0, dt, None, True, config=cfg)
                    f = lambda: p(dy, None, x, w, rstd)  # noqa: E731
                    dx, _, dw = f()
                    err = max(normwise_error(dx, gx), normwise_error(dw, gw))
                    ms = clock(f)
                except Exception as e:
                    print(f"bwd {dname} {n} {cfg} FAILED {type(e).__name__}: {str(e)[:100]}", flush=True)
                    continue
                gbps = nbytes / ms / 1e6
                rows.append(dict(op=op, dtype=dname, N=n, M=m, cfg=cfg.__dict__, ms=ms,
                                 gbps=gbps, pct=100 * gbps / cbw, err=err))
                print(f"bwd {dname} N={n:>6} {cfg.block_m:>3}x{cfg.block_n:<6} w{cfg.num_warps:<2}"
                      f" {mode(cfg)} pps {cfg.progs_per_sm} G {groups(p)}"
                      f" {ms*1e3:8.1f} us {gbps:6.0f} GB/s {100*gbps/cbw:5.1f}% err(norm) {err:.1e}",
                      flush=True)
            del gx, gw
        del x, w, r
        x_2 = r_2 = None
        torch.cuda.empty_cache()
    out = os.environ.get("OUT") or "."
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"tune-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(dict(gpu=gpu, torch=torch.__version__, triton=triton.__version__, copy_gbps=cbw,
                       rows=rows), f, indent=1)
    best = {}
    for r_ in rows:
        k = (r_["op"], r_["dtype"], r_["N"])
        if k not in best or r_["gbps"] > best[k]["gbps"]:
            best[k] = r_
    print("\nbest per (op, dtype, N): % of copy")
    for k, r_ in sorted(best.items()):
        print(f"{k[0]:>4} {k[1]:>5} {k[2]:>7} {r_['pct']:5.1f}% {tuple(r_['cfg'].values())}"
              f"{' native' if r_.get('native') else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

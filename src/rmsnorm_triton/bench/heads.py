"""The bench's QK-norm and gated cells (issue 25), rows in the same data file (records.FIELDS).

    python -m rmsnorm_triton.bench.heads [--ops qk_fwd,qk_bwd,qk_latency,gated_fwd,gated_bwd]

QK-norm: qkv [T, (Hq + 2 Hk) D] bf16 with T (Hq + Hk) D = 2^26 (T 8192, Hq 48, Hk 16, D 128);
M = T (Hq + Hk) rows of N = D. Bytes, the fewest the job moves (v is not touched):
    qk_fwd   read q, k, the two weights; write q, k        (2 M D + 2 D) size
    qk_bwd   read q, k (saved), dq, dk, weights; write dq, dk, dw_q, dw_k   (3 M D + 4 D) size
qk_latency / qk_latency_graph: decode, T = 1..64, Hq 32, Hk 8, D 128: per call, eager and
replayed in a CUDA graph (M = T, N = D in the row). Providers:
    rmsnorm_triton        qk_norm_: in place, one launch
    rmsnorm_triton_2call  rms_norm on the q view and on the k view (two launches; no copy)
    rmsnorm_triton_copy   the same on q.contiguous() and k.contiguous() (rows_view's old copy)
    rms_norm_1call        (latency only) one rms_norm of T * Hq rows: the bar to meet
    torch_eager           the HF formula on the views, written back; torch_compile: the same
Gated (gated_fwd / gated_bwd): x, z [M, N] bf16, M N = 2^26, N 2K..16K, norm before a silu gate
(Qwen3-Next's order); --group G normalizes in groups (ops gated_fwd_gG / gated_bwd_gG).
Bytes: fwd (3 M N + N) size; bwd: x, z, dy, w read, dx, dz, dw written (5 M N + 2 N) size. Providers: rmsnorm_triton (rms_norm_gated), rmsnorm_triton_2call (rms_norm,
then * silu(z) in torch), torch_eager (the HF Qwen3NextRMSNormGated formula), torch_compile.
"""

import argparse
import sys

import torch
import torch.nn.functional as F

from .. import qk_norm_, rms_norm, rms_norm_gated
from ..reference import gated_rms_norm_ref, llama_rms_norm, rms_norm_ref
from ..testing import max_scaled_error
from . import records, timing
from .harness import environment

OPS = ("qk_fwd", "qk_bwd", "qk_latency", "gated_fwd", "gated_bwd")
QK = dict(t=8192, hq=48, hk=16, d=128)
DECODE = dict(ts=[1, 8, 16, 32, 64], hq=32, hk=8, d=128)
GATED_N = [2048, 4096, 8192, 16384]
WRONG_AT = 4.0


def split(qkv, hq, hk, d):
    q = qkv[..., :hq * d].unflatten(-1, (hq, d))
    return q, qkv[..., hq * d:(hq + hk) * d].unflatten(-1, (hk, d))


def qk_torch(qkv, wq, wk, hq, hk):
    q, k = split(qkv, hq, hk, wq.shape[0])
    return torch.cat([llama_rms_norm(q, wq).flatten(-2), llama_rms_norm(k, wk).flatten(-2),
                      qkv[..., (hq + hk) * wq.shape[0]:]], -1)


def qk_two(qkv, wq, wk, hq, hk, copy=False):
    q, k = split(qkv, hq, hk, wq.shape[0])
    if copy:
        q, k = q.contiguous(), k.contiguous()
    return rms_norm(q, wq), rms_norm(k, wk)


def gated_torch(x, z, w, group=None):
    """Qwen3NextRMSNormGated.forward's formula (in groups of `group` channels, as Mamba2's)."""
    h = x.float().unflatten(-1, (-1, group or x.shape[-1]))
    h = (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)).flatten(-2)
    return ((w * h.to(x.dtype)) * F.silu(z.float())).to(x.dtype)


def gated_two(x, z, w, group=None):
    if group:  # rms_norm over rows of `group` elements: the groups as rows, w as one row each
        y = rms_norm(x.unflatten(-1, (-1, group)), None).flatten(-2) * w
    else:
        y = rms_norm(x, w)
    return (y.float() * F.silu(z.float())).to(x.dtype)


def qk_providers(compiled):
    f = dict(rmsnorm_triton=lambda a, wq, wk, hq, hk: qk_norm_(a, wq, wk, hq, hk),
             rmsnorm_triton_2call=qk_two,
             rmsnorm_triton_copy=lambda *a: qk_two(*a, copy=True), torch_eager=qk_torch)
    if compiled:
        f["torch_compile"] = torch.compile(qk_torch, dynamic=False)
    return f


def gated_providers(compiled, group=None):
    f = dict(rmsnorm_triton=lambda x, z, w: rms_norm_gated(x, z, w, group_size=group),
             rmsnorm_triton_2call=lambda x, z, w: gated_two(x, z, w, group),
             torch_eager=lambda x, z, w: gated_torch(x, z, w, group))
    if compiled:
        c = torch.compile(gated_torch, dynamic=False)
        f["torch_compile"] = lambda x, z, w: c(x, z, w, group)
    return f


class Bench:
    def __init__(self, opts):
        self.opts, self.dev = opts, torch.device(opts.device)
        self.env = environment(self.dev, opts.commit)
        self.out = records.append([], opts.out)
        ms, nbytes = timing.copy_bandwidth(self.dev, opts.copy_mib)
        self.copy = nbytes / (ms * 1e6)
        self.record("copy", "copy", None, 0, 0, ms=ms, nbytes=nbytes)

    def record(self, provider, op, dtype, m, n, ms=None, nbytes=None, error=None, status="ok",
               note=""):
        gbps = nbytes / (ms * 1e6) if ms and nbytes else None
        env = self.env
        r = dict(provider=provider, op=op, dtype=dtype or "", M=m, N=n, bytes=nbytes, ms=ms,
                 gbps=gbps, pct_copy=100 * gbps / self.copy if gbps else None,
                 copy_gbps=self.copy, error=error, status=status, note=note, gpu=env["gpu"],
                 provider_version=env["versions"].get(provider, env["torch"]),
                 **{k: env[k] for k in ("torch", "triton", "cuda", "driver", "commit", "date")})
        records.append([r], self.out)
        pct = f"{r['pct_copy']:.1f}% of copy" if r["pct_copy"] else ""
        print(f"{provider:22s} {op:18s} M={m:<8} N={n:<6} "
              f"{(ms or 0) * 1e3:9.2f} us {pct} {status} {note}", flush=True)

    def timed(self, name, op, m, n, nbytes, fn, err):
        """Checks (err: the scaled error of one call's result), then times fn."""
        try:
            e = err()
            if e > WRONG_AT:
                return self.record(name, op, "bf16", m, n, error=e, status="wrong")
            ms = timing.kernel_ms(fn, self.dev, self.opts.rep_ms)
            self.record(name, op, "bf16", m, n, ms=ms, nbytes=nbytes, error=e)
        except Exception as ex:  # noqa: BLE001 - a provider's failure is a result
            self.record(name, op, "bf16", m, n, status="failed", note=repr(ex)[:200])

    def qk(self, op):
        t, hq, hk, d = (self.opts.qk[k] for k in ("t", "hq", "hk", "d"))
        g = torch.Generator(device=self.dev).manual_seed(0)
        qkv = torch.randn(t, (hq + 2 * hk) * d, generator=g, device=self.dev,
                          dtype=torch.bfloat16)
        wq, wk = (1 + 0.5 * torch.randn(d, generator=g, device=self.dev, dtype=torch.bfloat16)
                  for _ in range(2))
        m, size = t * (hq + hk), 2
        ref = torch.cat([r.flatten(-2) for r in (rms_norm_ref(v, w)[0] for v, w in zip(
            split(qkv, hq, hk, d), (wq, wk)))], -1)
        for name, f in qk_providers(self.dev.type == "cuda").items():
            if op == "qk_fwd":
                buf = qkv.clone()

                def run(f=f, buf=buf):
                    return f(buf, wq, wk, hq, hk)

                def err(f=f):
                    out = f(qkv.clone(), wq, wk, hq, hk)
                    got = torch.cat([o.flatten(-2) for o in out], -1) if isinstance(out, tuple) \
                        else out[..., :(hq + hk) * d]
                    return max_scaled_error(got, ref, torch.bfloat16)

                self.timed(name, op, m, d, (2 * m * d + 2 * d) * size, run, err)
            else:
                leaf = qkv.clone().requires_grad_()
                ws = [w.clone().requires_grad_() for w in (wq, wk)]
                # a non-leaf to write in place; clone's backward passes the gradient on as it
                # is, where `leaf * 1` put a full-size multiply into every provider's time
                out = f(leaf.clone(), *ws, hq, hk)
                outs = out if isinstance(out, tuple) else (out,)
                gs = [torch.randn_like(o) for o in outs]

                def run(outs=outs, gs=gs, leaf=leaf, ws=ws):
                    return torch.autograd.grad(outs, [leaf, *ws], gs, retain_graph=True)

                self.timed(name, op, m, d, (3 * m * d + 4 * d) * size, run, lambda: 0.0)

    def qk_latency(self):
        hq, hk, d = DECODE["hq"], DECODE["hk"], DECODE["d"]
        for t in self.opts.decode_ts:
            qkv = torch.randn(t, (hq + 2 * hk) * d, device=self.dev, dtype=torch.bfloat16)
            wq, wk = torch.ones(d, device=self.dev, dtype=torch.bfloat16), torch.ones(
                d, device=self.dev, dtype=torch.bfloat16)
            q = qkv[:, :hq * d].reshape(t * hq, d).contiguous()
            calls = dict(qk_providers(False), rms_norm_1call=lambda *a: rms_norm(q, wq))
            for name, f in calls.items():
                fn = lambda f=f: f(qkv, wq, wk, hq, hk)  # noqa: E731
                try:
                    self.record(name, "qk_latency", "bf16", t, d,
                                ms=timing.eager_ms_per_call(fn, self.dev))
                    if self.dev.type == "cuda":
                        self.record(name, "qk_latency_graph", "bf16", t, d,
                                    ms=timing.graph_ms_per_call(fn))
                except Exception as ex:  # noqa: BLE001
                    self.record(name, "qk_latency", "bf16", t, d, status="failed",
                                note=repr(ex)[:200])

    def gated(self, op):
        for n in self.opts.gated_n:
            m = self.opts.mn // n
            g = torch.Generator(device=self.dev).manual_seed(n)
            x, z = (torch.randn(m, n, generator=g, device=self.dev, dtype=torch.bfloat16)
                    for _ in range(2))
            w = 1 + 0.5 * torch.randn(n, generator=g, device=self.dev, dtype=torch.bfloat16)
            group = self.opts.group
            ref = gated_rms_norm_ref(x, z, w, group_size=group)
            op_name = op if group is None else f"{op}_g{group}"
            for name, f in gated_providers(self.dev.type == "cuda", group).items():
                if op == "gated_fwd":
                    self.timed(name, op_name, m, n, (3 * m * n + n) * 2, lambda f=f: f(x, z, w),
                               lambda f=f: max_scaled_error(f(x, z, w), ref, torch.bfloat16) / 2)
                    continue
                xs, zs, ws = (t.clone().requires_grad_() for t in (x, z, w))
                y = f(xs, zs, ws)
                dy = torch.randn_like(y)

                def run(y=y, xs=xs, zs=zs, ws=ws, dy=dy):
                    return torch.autograd.grad(y, (xs, zs, ws), dy, retain_graph=True)

                self.timed(name, op_name, m, n, (5 * m * n + 2 * n) * 2, run, lambda: 0.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rmsnorm_triton.bench.heads")
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=str(records.default_csv()))
    p.add_argument("--rep-ms", type=float, default=100.0)
    p.add_argument("--commit", help="the commit to record (default: git's, as the bench's)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (the CPU's interpreter)")
    p.add_argument("--group", type=int, default=None,
                   help="gated: group_size (Mamba2's, e.g. 1024); the op is then gated_*_g<G>")
    opts = p.parse_args(sys.argv[1:] if argv is None else argv)
    opts.qk = dict(t=3, hq=4, hk=2, d=32) if opts.smoke else QK
    opts.mn, opts.gated_n = (2**12, [64, 128]) if opts.smoke else (2**26, GATED_N)
    opts.copy_mib = 16 if opts.smoke else 512
    opts.decode_ts = [1, 3] if opts.smoke else DECODE["ts"]
    b = Bench(opts)
    for op in opts.ops.split(","):
        if op not in OPS:
            p.error(f"--ops has {op!r}, expected names from {','.join(OPS)}")
        {"qk_fwd": b.qk, "qk_bwd": b.qk, "gated_fwd": b.gated, "gated_bwd": b.gated}.get(
            op, lambda _: b.qk_latency())(op)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Is every GPU-only path correct on this GPU? The checks the CPU suite cannot make.

The SPLIT path at many (M, N) (its programs wait for each other: GPU only), forward and
backward against float64, dw bitwise the same from run to run, M * N > 2^31 (--big), N = 2^20,
the 16-bit weight multiply (options.w_native: SPLIT, long one-pass rows) giving the fp32
multiply's bits ("bits"), SPLIT forwards replayed in a CUDA graph giving eager's bits. Last,
each SPLIT table entry at the bench's shapes: the programs an SM it asks for beside those its
compiled kernel fits (FEWER: the launch took fewer; reported, not failed).

    python benchmarks/gpu_check.py [--big] [--shapes M:N,...]
    RMSNORM_TRITON_TABLE=generic python benchmarks/gpu_check.py     the generic table's layouts

Needs a CUDA GPU; prints one line a case and ALL OK, or exits 1.
"""

import argparse
import itertools
import sys

import torch

import rmsnorm_triton as R
from rmsnorm_triton import options, plan, split, tables
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import max_scaled_error, normwise_error


GRAD_TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 2e-3}


def case(m, n, dt, residual):
    x = torch.randn(m, n, device="cuda", dtype=dt, requires_grad=True)
    w = (1 + 0.2 * torch.randn(n, device="cuda")).to(dt).requires_grad_()
    r = torch.randn(m, n, device="cuda", dtype=dt, requires_grad=True) if residual else None
    out = R.rms_norm(x, w, residual=r)
    y = out[0] if residual else out
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, w) + ((r,) if residual else ()), dy)
    xd, wd = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    rd = r.detach().double().requires_grad_() if residual else None
    ref, _ = rms_norm_ref(xd, wd, residual=rd)
    rgrads = torch.autograd.grad(ref, (xd, wd) + ((rd,) if residual else ()), dy.double())
    if residual:  # h = x + r is rounded to the dtype, as torch's add does, before the norm
        ref, _ = rms_norm_ref((x + r).detach(), w.detach())
    e_y = max_scaled_error(y, ref, weight=w.detach())
    e_g = max(normwise_error(g, rg) for g, rg in zip(grads, rgrads))
    same = native_same_bits(x.detach(), w.detach(), r.detach() if residual else None)
    again = torch.autograd.grad(R.rms_norm(x, w, residual=r)[0] if residual else R.rms_norm(x, w),
                                (w,), dy)[0]
    det = torch.equal(again, grads[1])
    ok = e_y <= 1 and e_g <= GRAD_TOL[dt] and det and same
    return ok, e_y, e_g, det, same


def native_same_bits(x, w, r):
    """The forward with w * x_hat in x's 16-bit dtype (options.w_native) and in fp32, in the
    same launch setting (the tables may give the two different ones): the same bits."""
    cfg = tables.fwd_config(x.shape[1], x.dtype, r is not None, True, tables.table_for(x.device))
    ys = []
    for native in (True, False):
        with options.override(w_native=native):
            ys.append(plan.FwdPlan(x, w, r, 1e-6, 0.0, "llama", x.dtype, x.dtype, False,
                                   config=cfg)(x, w, r)[0])
    bits = torch.int32 if x.element_size() == 4 else torch.int16
    return torch.equal(ys[0].view(bits), ys[1].view(bits))


def graph_replays(m, n, dt, residual):
    """A SPLIT forward captured in a CUDA graph and replayed on new inputs gives eager's bits:
    the captured call zeroes its own slots (split.slots), so no replay reads an earlier one's."""
    x = torch.randn(m, n, device="cuda", dtype=dt)
    w = (1 + 0.2 * torch.randn(n, device="cuda")).to(dt)
    r = torch.randn_like(x) if residual else None
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        R.rms_norm(x, w, residual=r)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = R.rms_norm(x, w, residual=r)
    y = out[0] if residual else out
    bits = torch.int32 if dt == torch.float32 else torch.int16
    ok = True
    for _ in range(3):
        x.copy_(torch.randn_like(x))
        g.replay()
        ref = R.rms_norm(x, w, residual=r)
        ref = ref[0] if residual else ref
        ok &= torch.equal(y.view(bits), ref.view(bits))
    return bool(ok)


def programs_per_sm():
    """Each SPLIT entry of this GPU's tables at the bench's shapes (M * N = 2^26): the programs
    an SM it asks for and how many of its compiled kernel fit. The launch takes what fits, so an
    entry whose kernel grew past its register budget loses programs silently (an fp32 backward
    entry once ran at 3 an SM instead of 4 so). Returns the entries that fit fewer."""
    seen = {}
    arch = tables.table_for(torch.device("cuda"))
    for n, dt in itertools.product((16384, 32768, 65536, 131072, 262144),
                                   (torch.float32, torch.bfloat16, torch.float16)):
        x = torch.randn((1 << 26) // n, n, device="cuda", dtype=dt)
        w = torch.randn(n, device="cuda", dtype=dt)
        rstd = torch.rand((1 << 26) // n, device="cuda") + 0.5
        for op in ("fwd", "fwd+res", "bwd"):
            if op == "bwd":
                cfg = tables.bwd_config(n, dt, arch)
                p = plan.BwdPlan(x, None, x, w, rstd, 0.0, dt, None, True)
            else:
                r = x if op == "fwd+res" else None
                cfg = tables.fwd_config(n, dt, r is not None, True, arch)
                p = plan.FwdPlan(x, w, r, 1e-6, 0.0, "llama", dt, dt, False)
            if cfg.split:
                fit = split.resident_per_sm(p.launch, cfg.num_warps)
                seen[(op, n, str(dt)[6:])] = (cfg, fit, p.grid // p.chunks if p.chunks else None)
        del x, w, rstd
    fewer = []
    print(f"{'op':>8} {'N':>7} {'dtype':>9} {'layout':>22} {'asked':>5} {'fit':>4} {'groups':>6}")
    for (name, n, dt), (cfg, fit, groups) in sorted(seen.items()):
        lay = f"{cfg.block_n}x{cfg.num_warps}{' early' if cfg.early else ''}" + (
            f" r{cfg.maxnreg}" if cfg.maxnreg else "")
        short = fit < cfg.progs_per_sm
        fewer += [(name, n, dt)] * short
        print(f"{name:>8} {n:>7} {dt:>9} {lay:>22} {cfg.progs_per_sm:>5} {fit:>4}"
              f" {groups!s:>6}{'  FEWER' if short else ''}")
    return fewer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--big", action="store_true", help="also M * N > 2^31 (64-bit offsets)")
    p.add_argument("--shapes", help="M:N,M:N,... instead of the default list")
    args = p.parse_args()
    print(f"{torch.cuda.get_device_name()}, tables: {tables.table_for(torch.device('cuda'))}")
    torch.manual_seed(0)
    bad = 0
    print(f"{'M':>6} {'N':>8} {'dtype':>9} {'res':>4} {'y/tol':>7} {'grad norm err':>13}"
          f" {'dw det':>6} {'bits':>5}")
    for (m, n), dt, res in itertools.product(
            [tuple(map(int, t.split(":"))) for t in args.shapes.split(",")] if args.shapes else
            [(1, 8193), (3, 16384), (129, 32768), (7, 20000), (77, 40000), (1000, 65537),
             (5, 131072), (33, 262144), (2, 1 << 20), (300, 12289), (4096, 5000)],
            [torch.float32, torch.bfloat16, torch.float16], [False, True]):
        ok, e_y, e_g, det, same = case(m, n, dt, res)
        bad += not ok
        print(f"{m:>6} {n:>8} {str(dt)[6:]:>9} {str(res):>4} {e_y:7.3f} {e_g:13.2e} {str(det):>6}"
              f" {str(same):>5}{'' if ok else '  FAIL'}", flush=True)
    for (m, n), dt, res in [((1000, 65537), torch.bfloat16, False), ((33, 262144), torch.float32,
                                                                        True)]:
        ok = graph_replays(m, n, dt, res)
        bad += not ok
        print(f"CUDA graph, SPLIT {m} x {n} {str(dt)[6:]} residual={res}: replays match eager's"
              f" bits: {ok}")
    if args.big:  # M * N > 2^31 elements: 64-bit offsets
        n = 4096
        m = (1 << 31) // n + 3
        x = torch.randn(m, n, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
        y = R.rms_norm(x, w)
        tail = slice(m - 5, m)
        e = max_scaled_error(y[tail], rms_norm_ref(x[tail], w)[0], weight=w)
        xg = x.requires_grad_()
        yg = R.rms_norm(xg, w)
        dx, = torch.autograd.grad(yg, (xg,), torch.ones_like(yg))
        xd = x[tail].detach().double().requires_grad_()
        gx, = torch.autograd.grad(rms_norm_ref(xd, w)[0], (xd,), torch.ones(5, n, device="cuda", dtype=torch.float64))
        eg = normwise_error(dx[tail], gx)
        ok = e <= 1 and eg <= 1e-2
        bad += not ok
        print(f"M*N = {m * n} > 2^31: last rows y/tol {e:.3f}, dx norm err {eg:.2e} {'ok' if ok else 'FAIL'}")
    fewer = programs_per_sm()
    print(f"tables: {len(fewer)} SPLIT entries fit fewer programs an SM than they ask (FEWER above:"
          " the launcher took what fits; the entry's figure was measured so, or it has drifted)")
    print("ALL OK" if not bad else f"{bad} FAILED")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

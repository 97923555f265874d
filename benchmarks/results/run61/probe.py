"""Run 61: where run 60's PDL outliers came from.

Run 60 read bf16 backward 256K at 323 us in one PDL turn and 157 in the other (off: 158, 158),
and 16-bit SPLIT forward layouts at 16K/32K at 60-65% with PDL. Suspects: the host (autograd's
backward costs ~300 us of Python a call, about the device's time: a batch whose host slows
outruns the sleep that hides it), or where the PDL-launched programs land (a dependent's
programs placed while its predecessor still runs). Here, PDL off and on alternated 3 times:
  - the backward through autograd (as the bench) and through launch.backward alone (less host);
  - the same launch.backward calls captured in a CUDA graph and replayed (no host at all);
  - the host's own time per autograd backward (perf_counter around enqueueing, no sync);
  - SPLIT forward layouts at 16K / 32K that read 60-65% in run 60.
    PYTHONPATH=src python benchmarks/results/run61/probe.py
"""

import statistics
import time

import torch

from rmsnorm_triton import heuristics, launch
from rmsnorm_triton.bench import cases, timing
from rmsnorm_triton.bench.providers import RmsnormTriton

dev = torch.device("cuda")


def toggled(pdl, f):
    launch.PDL = pdl
    launch._PLANS.clear()
    return f()


def host_us(fn, calls=30):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / calls * 1e6


def main():
    ms, moved = timing.copy_bandwidth(dev, 512, 200.0)
    copy = moved / ms / 1e6
    print(f"{torch.cuda.get_device_name()} copy {copy:.0f} GB/s")
    p = RmsnormTriton()
    p.load()
    for dt, n in [(torch.bfloat16, 262144), (torch.float32, 16384), (torch.bfloat16, 16384)]:
        m = (1 << 26) // n
        t = cases.make_inputs("bwd", m, n, dt, dev, 0)
        x, w, dy = t["x"], t["w"], t["dy"]
        _, _, rstd, _ = launch.forward(x, w, None, 1e-6, 0.0, "llama", dt, dt, True)
        direct = lambda: launch.backward(dy, x, w, rstd, 0.0, None, dt, None, True)  # noqa: E731
        auto = p.prepare("bwd", x, w, cases.EPS, dy=dy)
        gb = cases.min_bytes("bwd", m, n, dt) / 1e6
        pct = lambda v: 100 * gb / v / copy  # noqa: E731
        res = {}
        for turn in range(3):
            for pdl in (False, True):
                r = res.setdefault(pdl, {"auto": [], "direct": [], "graph": [], "host": []})
                r["auto"].append(toggled(pdl, lambda: timing.kernel_ms(auto, dev, 25)))
                r["direct"].append(toggled(pdl, lambda: timing.kernel_ms(direct, dev, 25)))
                r["graph"].append(toggled(pdl, lambda: timing.graph_ms_per_call(direct, 10, 10, 3)))
                r["host"].append(toggled(pdl, lambda: host_us(auto)))
        for pdl in (False, True):
            r = res[pdl]
            print(f"bwd {str(dt)[6:]:>8} {n:>6} PDL {pdl!s:>5}: autograd "
                  + " ".join(f"{pct(v):.1f}" for v in r["auto"]) + " | direct "
                  + " ".join(f"{pct(v):.1f}" for v in r["direct"]) + " | graph "
                  + " ".join(f"{pct(v):.1f}" for v in r["graph"]) + " | host us "
                  + " ".join(f"{v:.0f}" for v in r["host"]), flush=True)
        del t, x, w, dy, rstd, auto, direct
        torch.cuda.empty_cache()
    for n in (16384, 32768):
        m = (1 << 26) // n
        x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
        w = (1 + 0.1 * torch.randn(n, device=dev)).to(x.dtype)
        gb = cases.min_bytes("fwd", m, n, x.dtype) / 1e6
        for spec in ["2048x4:early:7:72", "4096x4:early:4:128", "2048x4:early:6:80"]:
            shape, mode, pps, cap = spec.split(":")
            blk, wp = map(int, shape.split("x"))
            cfg = heuristics._lookup({None: (1, blk, wp, mode, int(pps), int(cap))}, n, 2)
            f = lambda: launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, False,  # noqa: E731
                                       config=cfg)
            out = {False: [], True: []}
            for _ in range(3):
                for pdl in (False, True):
                    out[pdl].append(toggled(pdl, lambda: 100 * gb / timing.kernel_ms(f, dev, 25) / copy))
            print(f"fwd bf16 {n:>6} {spec:>20}: off " + " ".join(f"{v:.1f}" for v in out[False])
                  + "  on " + " ".join(f"{v:.1f}" for v in out[True]), flush=True)
    launch.PDL = True


if __name__ == "__main__":
    main()

"""Run 60: programmatic dependent launch (PDL) on and off, every bench cell of ours, alternated.

The library's call as the bench makes it (providers.RmsnormTriton, the bench's inputs and
clock), launched plain (launch.PDL = False) and as a programmatic dependent (True), in turns:
off, on, off, on. Each variant's output is checked against float64 and the two compared bit
for bit (PDL changes when a kernel starts, never what it computes).
    PYTHONPATH=src python benchmarks/results/run60/pdl_ab.py [--ops fwd,bwd] [--dtypes bf16]
"""

import argparse
import statistics

import torch

from rmsnorm_triton import launch
from rmsnorm_triton.bench import cases, timing
from rmsnorm_triton.bench.providers import RmsnormTriton

NS = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default="fwd,bwd,fwd_residual")
    ap.add_argument("--dtypes", default="bf16,fp16,fp32")
    ap.add_argument("--ns", default=",".join(map(str, NS)))
    ap.add_argument("--rep-ms", type=float, default=25.0)
    ap.add_argument("--turns", type=int, default=2)
    a = ap.parse_args()
    dev = torch.device("cuda")
    ms, moved = timing.copy_bandwidth(dev, 512, 200.0)
    copy = moved / ms / 1e6
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}; copy {copy:.0f} GB/s")
    p = RmsnormTriton()
    p.load()
    rows = []
    for op in a.ops.split(","):
        for dt in a.dtypes.split(","):
            for n in map(int, a.ns.split(",")):
                m = (1 << 26) // n
                t = cases.make_inputs(op, m, n, cases.DTYPES[dt], dev, 0)
                ref = cases.reference(op, t)
                outs, fns = {}, {}
                for pdl in (False, True):
                    launch.PDL = pdl
                    launch._PLANS.clear()  # a replayed launch keeps the PDL it was made with
                    fn = p.prepare(op, t["x"], t["w"], cases.EPS, r=t.get("r"), dy=t.get("dy"))
                    out = fn()
                    err = cases.check(op, out, ref, t)
                    assert err <= cases.WRONG_AT, (op, dt, n, pdl, err)
                    outs[pdl] = [o.clone() for o in ((out,) if torch.is_tensor(out) else out)]
                    fns[pdl] = fn
                same = all(torch.equal(u, v) for u, v in zip(outs[False], outs[True]))
                got = {False: [], True: []}
                for _ in range(a.turns):
                    for pdl in (False, True):
                        launch.PDL = pdl
                        launch._PLANS.clear()
                        got[pdl].append(timing.kernel_ms(fns[pdl], dev, a.rep_ms))
                gb = cases.min_bytes(op, m, n, t["x"].dtype) / 1e6
                off, on = (statistics.median(got[v]) for v in (False, True))
                rows.append((op, dt, n, 100 * gb / off / copy, 100 * gb / on / copy, same))
                print(f"{op:>12} {dt} {n:>6}: off {off * 1e3:7.1f} us {rows[-1][3]:5.1f}%  "
                      f"on {on * 1e3:7.1f} us {rows[-1][4]:5.1f}%  bits equal {same}  "
                      f"({' '.join(f'{v * 1e3:.1f}' for v in got[False] + got[True])})",
                      flush=True)
                del t, ref, outs, fns
                torch.cuda.empty_cache()
    launch.PDL = True
    print("\n% of copy, PDL off -> on (median of the turns)")
    for op in a.ops.split(","):
        for dt in a.dtypes.split(","):
            cells = [r for r in rows if r[0] == op and r[1] == dt]
            print(f"{op:>12} {dt}: " + " ".join(f"{r[3]:.1f}->{r[4]:.1f}" for r in cells))
    print("all outputs bit-equal:", all(r[5] for r in rows))


if __name__ == "__main__":
    main()

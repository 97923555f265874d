"""Run 92: run 58's phases of a SPLIT forward call (run58/phases.py: %globaltimer read by every
program at its start, once its first two rows are published, after each row it finishes), on
today's kernel (epoch slots since run 59, PDL since run 60, the 16-bit product).

Why: under Nsight Compute (run 89) the 64K forward kernel takes 3.3 us more than a one-pass 4K
call moving the same bytes, and run 90's shorter start did not help. Prediction: the start (to
the second publish) ~3-4 us against a round of ~2.5 us, the end spread (last programs against
first) 2-4 us, so one or both hold the 3.3 us. The patched copy is launched with the arguments
launch.forward gives the real kernel, each time with the stream's next epoch.
    PYTHONPATH=src python3 benchmarks/results/run92/phases.py     (GPU machine, repo root)
"""

import importlib.util
import os
import statistics
import sys

import torch

from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import kernel_ms

_spec = importlib.util.spec_from_file_location(
    "phases58", os.path.join(os.path.dirname(__file__), "..", "run58", "phases.py"))
p58 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(p58)
p58.MARKS = [  # run 58's marks at today's anchors
    ("        if HAS_W:  # kept in its own dtype: registers are what limits the chunk size here\n",
     "        t0 = _now(pid)\n"),
    ("        parts = _poll(PART, EPOCH, row.to(tl.int64), S, S_POW2)\n"
     "        for _ in range(pid // S, M, G):\n",
     "        tl.store(TRACE_BLK + pid * 4, t0)\n        tl.store(TRACE_BLK + pid * 4 + 1, _now(pid))\n"
     "        rounds = 0\n"),
    ("            hs2 = hs3\n            parts = ahead\n            row += G\n",
     "            rounds += 1\n            tl.store(TRACE_BLK + pid * 4 + 2, _now(pid))\n"
     "            tl.store(TRACE_BLK + pid * 4 + 3, rounds + tl.zeros_like(t0))\n"),
]


def main():
    K2 = p58.patched()
    caught, run, dev = [], launch.run, torch.device("cuda")
    print(torch.cuda.get_device_name(), torch.__version__)
    print(f"{'case':>13} {'call':>6} {'ideal':>6} {'ramp':>5} {'start':>6} {'round':>6} "
          f"{'rounds':>6} {'end spread':>10} {'span':>6}   (us; medians over programs, 20 calls)")
    for dt, n, res in [(torch.bfloat16, 65536, False), (torch.bfloat16, 131072, False),
                       (torch.bfloat16, 262144, False), (torch.bfloat16, 65536, True),
                       (torch.bfloat16, 131072, True), (torch.float32, 65536, False)]:
        m = (1 << 26) // n
        x = torch.randn(m, n, device=dev, dtype=dt)
        w = (1 + 0.1 * torch.randn(n, device=dev)).to(dt)
        r = torch.randn_like(x) if res else None
        f = lambda: launch.forward(x, w, r, 1e-6, 0.0, "llama", dt, dt, False)  # noqa: E731
        caught.clear()
        launch.run = lambda *a: caught.append(a) or run(*a)  # one call's launch, then put back
        f()
        launch.run = run
        kernel, grid, args, warps, maxnreg = caught[-1]
        call_ms = kernel_ms(f, dev, 100)
        ts = torch.zeros(grid[0], 4, dtype=torch.int64, device=dev)
        got = []
        for _ in range(20):
            a = list(args)
            a[6] = ts  # TRACE_BLK, unused by SPLIT, holds the stamps
            a[8], a[18] = launch.slots(m, launch.cdiv(n, a[20]), dev)  # PART, EPOCH
            run(K2.rms_norm_fwd, grid, a, warps, maxnreg)
            torch.cuda.synchronize()
            t = ts.double().cpu()
            t0, t1, t2, k = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
            base = t0.min()
            got.append(dict(ramp=(t0.max() - base) / 1e3,
                            start=statistics.median((t1 - t0).tolist()) / 1e3,
                            round=statistics.median(((t2 - t1) / k.clamp(min=1)).tolist()) / 1e3,
                            rounds=statistics.median(k.tolist()),
                            tail=(t2.max() - t2.min()) / 1e3, span=(t2.max() - base) / 1e3))
        med = {key: statistics.median(g[key] for g in got) for key in got[0]}
        nbytes = (4 if res else 2) * m * n * x.element_size()
        ideal = nbytes / 2986e9 * 1e6
        name = f"{str(dt)[6:]} {n // 1024}K{' res' if res else ''}"
        print(f"{name:>13} {call_ms * 1e3:6.1f} {ideal:6.1f} {med['ramp']:5.2f} {med['start']:6.2f} "
              f"{med['round']:6.2f} {med['rounds']:6.0f} {med['tail']:10.2f} {med['span']:6.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

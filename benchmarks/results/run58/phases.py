"""Run 58: where a SPLIT forward call's time goes, from %globaltimer read by every program.

A copy of kernels.py, patched here (the library is not changed), records per program: t0 at its
start, t1 once its first two rows are published (the start's loads returned), t2 after each row
it finishes (the last stays), and its rounds. Launched with the arguments launch.forward gives
the real kernel (caught from launch.run), TRACE_BLK (unused by SPLIT) pointing at the stamps.
    PYTHONPATH=src python benchmarks/results/run58/phases.py     (GPU machine, repo root)
Ran at commit 68ad8f3: launch.empty_slots has since become launch.slots (run 59).
"""

import importlib.util
import statistics
import sys
import tempfile

import torch

from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import kernel_ms

SRC = "src/rmsnorm_triton/kernels.py"
NOW = '''

@triton.jit
def _now(pid):
    return tl.inline_asm_elementwise("mov.u64 $0, %globaltimer;", "=l,r", [pid], dtype=tl.int64,
                                     is_pure=False, pack=1)
'''
MARKS = [
    ("        if HAS_W:  # kept in its own dtype: registers are what limits the chunk size here\n",
     "        t0 = _now(pid)\n"),
    ("        parts = _poll(PART, row.to(tl.int64), S, S_POW2)\n        for _ in range(pid // S, M, G):\n",
     "        tl.store(TRACE_BLK + pid * 4, t0)\n        tl.store(TRACE_BLK + pid * 4 + 1, _now(pid))\n"
     "        rounds = 0\n"),
    ("            hs2 = hs3\n            parts = ahead\n            row += G\n",
     "            rounds += 1\n            tl.store(TRACE_BLK + pid * 4 + 2, _now(pid))\n"
     "            tl.store(TRACE_BLK + pid * 4 + 3, rounds + tl.zeros_like(t0))\n"),
]


def patched():
    s = open(SRC).read()
    for i, (anchor, extra) in enumerate(MARKS):
        assert s.count(anchor) == 1, anchor
        # the first two go before their anchor's last line(s), the third after it
        if i == 0:
            s = s.replace(anchor, extra + anchor)
        elif i == 1:
            head, loop = anchor.split("        for _")
            s = s.replace(anchor, head + extra + "        for _" + loop)
        else:
            s = s.replace(anchor, anchor + extra)
    f = tempfile.NamedTemporaryFile("w", suffix="_kernels_ts.py", delete=False)
    f.write(s + NOW)
    f.close()
    spec = importlib.util.spec_from_file_location("kernels_ts", f.name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    K2 = patched()
    caught = []
    run = launch.run
    dev = torch.device("cuda")
    print(f"{'case':>13} {'call':>6} {'ideal':>6} {'ramp':>5} {'start':>6} {'round':>6} "
          f"{'rounds':>6} {'end spread':>10} {'span':>6}   (us; medians over programs, 20 calls)")
    for dt, n, res in [(torch.bfloat16, 65536, False), (torch.bfloat16, 131072, False),
                       (torch.bfloat16, 262144, False), (torch.bfloat16, 131072, True),
                       (torch.float32, 65536, False), (torch.float32, 131072, False)]:
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
            a[6] = ts
            a[8] = launch.empty_slots(m, a[8].shape[1], dev)
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

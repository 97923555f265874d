"""Run 90: SPLIT's start with the first three rows' loads issued before the first publish.
(Not kept: it read 0.1-0.7 points lower; run90-ab.log. This script ran on the variant as it
stood in kernels.py then; to re-run it, apply its FWD_NEW / BWD_NEW blocks to kernels.py.)

Before: row A loaded, published (an atomic exchange), row B loaded, published, row C prefetched:
the later loads wait behind the atomic, so a program's start took three trips to memory (item
43: the first two rows 3.8-4.6 us against 2.3-2.6 us a round). After: A, B and C loaded, then A
and B published: one trip. Registers (sm_90, regs.py): the same or fewer for every 16-bit
entry; fp32 forward 4096 x 4 / 8192 x 8 213 / 215 -> 240 / 241 (same programs an SM).
Prediction: ~1-1.5 us a call, so forward 16-bit 64K-256K +1 to +1.5 points, fp32 and fused
(calls twice as long) +0.5 to +0.8, backward +0.5 to +1. Outputs must match bit for bit.
    PYTHONPATH=src python3 benchmarks/results/run90/ab_start.py
"""
import importlib.util
import os
import sys
import tempfile

import torch

from rmsnorm_triton import launch
from rmsnorm_triton.bench.harness import alternate
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

SRC = open(os.path.join(os.path.dirname(launch.__file__), "kernels.py")).read()
FWD_NEW = """        xb = _chunk(X, row + G, stride_x, c, m, M)
        rb = _chunk(R, row + G, stride_r, c, m, M) if HAS_R else xb
        cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # PAIRS: words of this chunk
        mw = cw < N // 2  # (N is even with PAIRS)
        x = _prefetch(X, row + 2 * G, stride_x, c, m, cw, mw, M, PAIRS)
        r = _prefetch(R, row + 2 * G, stride_r, c, m, cw, mw, M, PAIRS) if HAS_R else x
        hs = _split_publish(xa, ra, H, PART, EPOCH, row, s, S, c, m, M, stride_h, HAS_R, ACC)
        hs2 = _split_publish(xb, rb, H, PART, EPOCH, row + G, s, S, c, m, M, stride_h, HAS_R,
                             ACC)
"""
FWD_OLD = """        hs = _split_publish(xa, ra, H, PART, EPOCH, row, s, S, c, m, M, stride_h, HAS_R, ACC)
        xb = _chunk(X, row + G, stride_x, c, m, M)
        rb = _chunk(R, row + G, stride_r, c, m, M) if HAS_R else xb
        hs2 = _split_publish(xb, rb, H, PART, EPOCH, row + G, s, S, c, m, M, stride_h, HAS_R,
                             ACC)
        cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # PAIRS: words of this chunk
        mw = cw < N // 2  # (N is even with PAIRS)
        x = _prefetch(X, row + 2 * G, stride_x, c, m, cw, mw, M, PAIRS)
        r = _prefetch(R, row + 2 * G, stride_r, c, m, cw, mw, M, PAIRS) if HAS_R else x
"""
BWD_NEW = """        xb = _chunk(X, row + G, stride_x, c, m, M)
        dyb = _chunk(DY, row + G, stride_dy, c, m, M)
        cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # PAIRS: words of this chunk
        mw = cw < N // 2
        x = _prefetch(X, row + 2 * G, stride_x, c, m, cw, mw, M, PAIRS)
        dy = _prefetch(DY, row + 2 * G, stride_dy, c, m, cw, mw, M, PAIRS)
        ra = _bwd_publish(xa, dya, RSTD, PART, EPOCH, row, s, S, M, w, offset, ACC)
        rb = _bwd_publish(xb, dyb, RSTD, PART, EPOCH, row + G, s, S, M, w, offset, ACC)
"""
BWD_OLD = """        ra = _bwd_publish(xa, dya, RSTD, PART, EPOCH, row, s, S, M, w, offset, ACC)
        xb = _chunk(X, row + G, stride_x, c, m, M)
        dyb = _chunk(DY, row + G, stride_dy, c, m, M)
        rb = _bwd_publish(xb, dyb, RSTD, PART, EPOCH, row + G, s, S, M, w, offset, ACC)
        cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # PAIRS: words of this chunk
        mw = cw < N // 2
        x = _prefetch(X, row + 2 * G, stride_x, c, m, cw, mw, M, PAIRS)
        dy = _prefetch(DY, row + 2 * G, stride_dy, c, m, cw, mw, M, PAIRS)
"""


def load(src, name):
    path = os.path.join(tempfile.mkdtemp(), f"{name}.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


assert SRC.count(FWD_NEW) == 1 and SRC.count(BWD_NEW) == 1, "kernels.py changed: update the script"
MODS = {"before": load(SRC.replace(FWD_NEW, FWD_OLD).replace(BWD_NEW, BWD_OLD), "k_before"),
        "after": load(SRC, "k_after")}
dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
print(torch.cuda.get_device_name(), torch.__version__, "copy GB/s", round(cbw), flush=True)
DT = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
cells = [(op, dt, n) for op, dts in (("fwd", ("bf16", "fp16", "fp32")), ("res", ("bf16", "fp32")),
                                     ("bwd", ("bf16", "fp32")))
         for dt in dts for n in (65536, 131072, 262144)]
res = {}
for op, dname, n in cells:
    dt, m = DT[dname], 2**26 // n
    ins = []
    for _ in range(2):
        x = torch.randn(m, n, device=dev, dtype=dt)
        w = (1 + 0.5 * torch.randn(n, device=dev)).to(dt)
        r = torch.randn_like(x) if op == "res" else None
        dy = torch.randn_like(x) if op == "bwd" else None
        ins.append((x, w, r, dy))
    size = x.element_size()
    nbytes = {"fwd": 2, "res": 4, "bwd": 3}[op] * m * n * size
    outs = {}
    for turn in range(3):
        for v, mod in MODS.items():
            launch.K = mod
            launch._PLANS.clear()
            launch._BWD_PLANS.clear()  # (since the tenth session: backward plans too)
            if op == "bwd":
                rs = [launch.forward(a[0], a[1], None, 1e-6, 0.0, "llama", dt, dt, True)[2]
                      for a in ins]
                fns = [lambda a=a, rstd=rstd: launch.backward(a[3], a[0], a[1], rstd, 0.0, None,
                                                              dt, None, True)
                       for a, rstd in zip(ins, rs)]
            else:
                fns = [lambda a=a: launch.forward(a[0], a[1], a[2], 1e-6, 0.0, "llama", dt, dt,
                                                  False) for a in ins]
            out = fns[0]()
            if turn == 0:
                outs[v] = [t.clone() for t in out if isinstance(t, torch.Tensor)]
            pct = nbytes / kernel_ms(alternate(*fns), dev, 30.0) / 1e6 / cbw * 100
            res.setdefault((op, dname, n, v), []).append(pct)
    same = all(torch.equal(a, b) for a, b in zip(outs["before"], outs["after"]))
    assert same, f"outputs differ: {op} {dname} {n}"
    del ins, x, w, r, dy
print(f"{'op':>4} {'dtype':>5} {'N':>7}   before (3 turns)     after (3 turns)      mean diff")
for op, dname, n in cells:
    b, a = res[(op, dname, n, "before")], res[(op, dname, n, "after")]
    print(f"{op:>4} {dname:>5} {n:>7}   " + " ".join(f"{v:5.1f}" for v in b) + "   " +
          " ".join(f"{v:5.1f}" for v in a) + f"   {sum(a) / 3 - sum(b) / 3:+5.2f}")

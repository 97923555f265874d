"""Run 72 (H100): probe_carveout.py found our kernels 1-18 points slower when the SM gives less
of its on-chip memory to L1: L1 matters. Prediction: x and r are streamed (read once) while w is
read by every row; with x loaded evict_first (or .cg, past L1) and w evict_last, w should stay
in L1 and the forward gain where w is re-read per row (one pass, up to 32K) - maybe the 2-3
points seen in probe_tail.py's unexplained state. Variants of kernels.py, by text, timed."""
import importlib.util
import os
import sys
import tempfile
import torch
from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

SRC = open(os.path.join(os.path.dirname(launch.__file__), "kernels.py")).read()
EDITS = {
    "XF": [("x = tl.load(X + x_off + cols, mask=mask, other=0.0)",
            "x = tl.load(X + x_off + cols, mask=mask, other=0.0, eviction_policy='evict_first')"),
           ("r = tl.load(R + r_off + cols, mask=mask, other=0.0) if",
            "r = tl.load(R + r_off + cols, mask=mask, other=0.0, eviction_policy='evict_first') if"),
           ("return tl.load(P + row.to(tl.int64) * stride + c, mask=m & (row < M), other=0.0)",
            "return tl.load(P + row.to(tl.int64) * stride + c, mask=m & (row < M), other=0.0, eviction_policy='evict_first')"),
           ("x = tl.load(X + rows64 * stride_x + cols[None, :], mask=mask, other=0.0)",
            "x = tl.load(X + rows64 * stride_x + cols[None, :], mask=mask, other=0.0, eviction_policy='evict_first')"),
           ("dy = tl.load(DY + rows64 * stride_dy + cols[None, :], mask=mask, other=0.0)",
            "dy = tl.load(DY + rows64 * stride_dy + cols[None, :], mask=mask, other=0.0, eviction_policy='evict_first')")],
    "WL": [("w = tl.load(W + cols[None, :], mask=col_ok[None, :], other=0.0)",
            "w = tl.load(W + cols[None, :], mask=col_ok[None, :], other=0.0, eviction_policy='evict_last')"),
           ("w = tl.load(W + cols, mask=col_ok, other=0.0)[None, :]",
            "w = tl.load(W + cols, mask=col_ok, other=0.0, eviction_policy='evict_last')[None, :]"),
           ("wo = offset + tl.load(W + cols, mask=col_ok, other=0.0).to(ACC)",
            "wo = offset + tl.load(W + cols, mask=col_ok, other=0.0, eviction_policy='evict_last').to(ACC)")],
    "YS": [("tl.store(Y + rows64 * stride_y + cols[None, :], _cast(y, Y.dtype.element_ty), mask=mask)",
            "tl.store(Y + rows64 * stride_y + cols[None, :], _cast(y, Y.dtype.element_ty), mask=mask, cache_modifier='.cs')"),
           ("tl.store(Y + row64 * stride_y + c, _cast(y, Y.dtype.element_ty), mask=m)",
            "tl.store(Y + row64 * stride_y + c, _cast(y, Y.dtype.element_ty), mask=m, cache_modifier='.cs')")],
}
EDITS["XCG"] = [(a, b.replace("eviction_policy='evict_first'", "cache_modifier='.cg'")) for a, b in EDITS["XF"]]
VARIANTS = ["", "WL", "XF", "XF+WL", "XCG+WL", "XF+WL+YS"]


def kernels_for(variant):
    src = SRC
    for name in filter(None, variant.split("+")):
        for a, b in EDITS[name]:
            assert src.count(a) >= 1, (name, a)
            src = src.replace(a, b)
    d = tempfile.mkdtemp()
    path = os.path.join(d, f"kernels_{variant.replace('+', '_') or 'base'}.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(f"kv_{variant.replace('+', '_') or 'base'}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
print(torch.cuda.get_device_name(), "copy", round(cbw), flush=True)
mods = {v: kernels_for(v) for v in VARIANTS}
res = {}
cells = [("fwd", n) for n in (4096, 16384, 32768, 65536, 131072)] + \
        [("res", n) for n in (16384, 65536, 131072)] + [("bwd", n) for n in (4096, 8192, 65536)]
for op, n in cells:
    m = 2**26 // n
    x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
    w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
    r = torch.randn_like(x) if op == "res" else None
    dy = torch.randn_like(x) if op == "bwd" else None
    for turn in range(2):
        for v in VARIANTS:
            launch.K = mods[v]
            launch._PLANS.clear()
            launch._BWD_PLANS.clear()  # (since the tenth session: backward plans too)
            if op == "bwd":
                _, _, rstd, _ = launch.forward(x, w, None, 1e-6, 0.0, "llama", x.dtype, x.dtype, True)
                f = lambda: launch.backward(dy, x, w, rstd, 0.0, None, x.dtype, None, True)  # noqa
                nbytes = 3 * x.numel() * 2
            else:
                f = lambda: launch.forward(x, w, r, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)  # noqa
                nbytes = (4 if r is not None else 2) * x.numel() * 2
            out = f()[0]
            if turn == 0 and v == "":
                ref = out.clone()
            elif op != "bwd":
                assert torch.equal(out, ref), (op, n, v)  # hints change speed, never bits
            res.setdefault((op, n, v), []).append(nbytes / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100)
            print(op, n, v or "base", f"{res[(op, n, v)][-1]:.1f}", flush=True)
    del x, w, r, dy
print(f"{'op':>4} {'N':>7} " + " ".join(f"{v or 'base':>9}" for v in VARIANTS) + "   (% of copy, mean of 2 turns)")
for op, n in cells:
    print(f"{op:>4} {n:>7} " + " ".join(f"{sum(res[(op, n, v)]) / 2:9.1f}" for v in VARIANTS))

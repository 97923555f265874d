"""Run 72 (H100): one cubin, two speeds, depending on what ran before (probe_cubin, probe_fresh).
Is it the SM's split of its on-chip memory between L1 and shared memory (the carveout), which a
kernel that needs little shared memory inherits from whatever ran before? Sets the preferred
carveout of our compiled forward (cuFuncSetAttribute, CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_
MEMORY_CARVEOUT: -1 driver's choice, 0 most L1 ... 100 most shared memory) and times it."""
import ctypes
import torch
from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms

cuda = ctypes.CDLL("libcuda.so.1")
CARVEOUT = 9  # CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT
dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
print(torch.cuda.get_device_name(), "copy", round(cbw), flush=True)
rows = []
for n in (4096, 16384, 32768, 65536, 131072):
    x = torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16)
    w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
    r = torch.randn_like(x)
    for res in (False, True):
        rr = r if res else None
        f = lambda: launch.forward(x, w, rr, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)  # noqa
        launch._COMPILED.clear()
        launch._PLANS.clear()
        f()
        ks = list(launch._COMPILED.values())
        nbytes = (4 if res else 2) * x.numel() * 2
        for turn in range(2):
            for c in (-1, 0, 25, 50, 100):
                for k in ks:
                    rc = cuda.cuFuncSetAttribute(ctypes.c_void_p(k.function), CARVEOUT, ctypes.c_int(c))
                    assert rc == 0, rc
                pct = nbytes / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100
                rows.append((n, "res" if res else "fwd", turn, c, pct))
                print(*rows[-1], flush=True)
    del x, w, r
print(f"{'N':>7} {'op':>4} {'turn':>4} {'carveout':>8} {'%copy':>6}")
for r_ in rows:
    print(f"{r_[0]:>7} {r_[1]:>4} {r_[2]:>4} {r_[3]:>8} {r_[4]:6.1f}")

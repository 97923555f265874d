"""Run 76 (H100): ncu times our 16K forward alike in both of item 55's states (92.4 us, one
kernel alone), so the fast state lies between calls. Is it L2 holding part of the data from one
call to the next (a persisting-L2 window or limit left by Inductor)? Prints the stream's access
policy window and the context's persisting-L2 limit, then times the forward on one x (as the
bench) and alternating two x (nothing of the next call's input can be in L2)."""
import ctypes
import sys
import torch
from rmsnorm_triton import launch
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms
from rmsnorm_triton.reference import llama_rms_norm

cu = ctypes.CDLL("libcuda.so.1")
mode = sys.argv[1]
dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
n = 16384
xa = torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16)
xb = torch.randn_like(xa)
w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
if mode == "inductor":
    torch.compile(lambda a, b: llama_rms_norm(a, b, 1e-6), dynamic=False)(xa, w)
    torch.cuda.synchronize()


def l2_state():
    lim = ctypes.c_size_t(0)
    r1 = cu.cuCtxGetLimit(ctypes.byref(lim), 0x06)  # CU_LIMIT_PERSISTING_L2_CACHE_SIZE
    val = (ctypes.c_ubyte * 64)()
    s = torch.cuda.current_stream().cuda_stream
    r2 = cu.cuStreamGetAttribute(ctypes.c_void_p(s), 1, ctypes.byref(val))  # ACCESS_POLICY_WINDOW
    base = int.from_bytes(bytes(val[0:8]), "little")
    nbytes = int.from_bytes(bytes(val[8:16]), "little")
    hit = ctypes.c_float.from_buffer_copy(bytes(val[16:20])).value
    return f"persisting-L2 limit {lim.value} (rc {r1}); stream window base {base:#x} bytes {nbytes} hitRatio {hit:.2f} (rc {r2})"


print(mode, l2_state(), flush=True)
one = lambda: launch.forward(xa, w, None, 1e-6, 0.0, "llama", xa.dtype, xa.dtype, False)  # noqa
flip = [0]


def two():
    flip[0] ^= 1
    return launch.forward(xa if flip[0] else xb, w, None, 1e-6, 0.0, "llama", xa.dtype, xa.dtype, False)


one()
pct = lambda f: 2 * xa.numel() * 2 / kernel_ms(f, dev, 30.0) / 1e6 / cbw * 100  # noqa
print(f"{mode:>9} one x: " + " ".join(f"{pct(one):5.1f}" for _ in range(3)) +
      "   two x alternating: " + " ".join(f"{pct(two):5.1f}" for _ in range(3)) +
      "   one x again: " + " ".join(f"{pct(one):5.1f}" for _ in range(2)), flush=True)
print(mode, l2_state(), flush=True)

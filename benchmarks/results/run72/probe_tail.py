"""Run 72 (H100): is the 16-bit forward at 32K / 64K lost in the last, partial wave?

Times the table's forward (and torch.compile of the HF formula) at M = 2^26 / N and at M that
fill whole waves (multiples of the SMs), as GB/s and % of copy; prints Inductor's code for 32K.
"""
import sys
import torch
from rmsnorm_triton import launch, heuristics
from rmsnorm_triton.bench.timing import copy_bandwidth, kernel_ms
from rmsnorm_triton.reference import llama_rms_norm

dev = torch.device("cuda")
c_ms, c_b = copy_bandwidth(dev, 512)
cbw = c_b / c_ms / 1e6
sms = torch.cuda.get_device_properties(0).multi_processor_count
print(torch.cuda.get_device_name(), torch.__version__, "copy GB/s", round(cbw), "SMs", sms, flush=True)

def fwd(x, w, r=None):
    return launch.forward(x, w, r, 1e-6, 0.0, "llama", x.dtype, x.dtype, False)

torch._dynamo.config.cache_size_limit = 64
comp = torch.compile(lambda x, w: llama_rms_norm(x, w, 1e-6), dynamic=False)
rows = []
cases = [(16384, [3960, 4096, 4224]), (32768, [1848, 1980, 2048, 2112, 2244]),
         (65536, [924, 990, 1024, 1056, 1122])] if "--no-loop" not in sys.argv else []
for dt in ((torch.bfloat16,) if "--bf16" in sys.argv else (torch.bfloat16, torch.float16)):
    for n, ms_ in cases:
        for m in ms_:
            x = torch.randn(m, n, device=dev, dtype=dt)
            w = (1 + 0.1 * torch.randn(n, device=dev)).to(dt)
            nbytes = 2 * m * n * 2 + n * 2
            for who, f in (("ours", lambda: fwd(x, w)), ("compile", lambda: comp(x, w))):
                if who == "compile" and dt == torch.float16:
                    continue
                ms = kernel_ms(f, dev, 30.0)
                gbps = nbytes / ms / 1e6
                rows.append((str(dt)[6:], n, m, m / sms, who, ms * 1e3, gbps, 100 * gbps / cbw))
                print(*rows[-1], flush=True)
            del x, w
if "--again" in sys.argv:  # the table's shapes once more, in this process, after all the above
    for n in (16384, 65536):
        m = 2**26 // n
        x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
        w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
        for turn in range(3):
            ms = kernel_ms(lambda: fwd(x, w), dev, 30.0)
            rows.append(("again", n, m, m / sms, "ours", ms * 1e3, 2 * m * n * 2 / ms / 1e6, 2 * m * n * 2 / ms / 1e6 / cbw * 100))
def slope(f, dev, batches=(5, 10, 20, 40), trials=9):
    """Per-call microseconds as the slope of batch time against batch size (events around each
    batch after a sleep, as kernel_ms): a fixed cost per batch falls out of it."""
    import statistics
    f()
    torch.cuda.synchronize()
    pts = []
    for b in batches:
        per = []
        for _ in range(trials):
            s0, s1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda._sleep(int(3e-3 * 1.98e9))
            s0.record()
            for _ in range(b):
                f()
            s1.record()
            s1.synchronize()
            per.append(s0.elapsed_time(s1) * 1e3)
        pts.append((b, statistics.median(per)))
    n = len(pts)
    mb, mt = sum(b for b, _ in pts) / n, sum(t for _, t in pts) / n
    k = sum((b - mb) * (t - mt) for b, t in pts) / sum((b - mb) ** 2 for b, _ in pts)
    return k, mt - k * mb


if "--slope" in sys.argv:
    cur = torch.cuda.current_stream()
    print("current stream", cur, hex(cur.cuda_stream), flush=True)
    for n in (16384, 65536):
        m = 2**26 // n
        x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
        w = (1 + 0.1 * torch.randn(n, device=dev)).to(torch.bfloat16)
        for turn in range(2):
            k_, a_ = slope(lambda: fwd(x, w), dev)
            ms = kernel_ms(lambda: fwd(x, w), dev, 30.0)
            print(f"slope N={n}: {k_:.1f} us a call + {a_:.1f} us a batch; kernel_ms {ms * 1e3:.1f} us", flush=True)
print(f"{'dtype':>8} {'N':>6} {'M':>5} {'waves':>6} {'who':>8} {'us':>7} {'GB/s':>6} {'%copy':>6}")
for r in rows:
    print(f"{r[0]:>8} {r[1]:>6} {r[2]:>5} {r[3]:>6.2f} {r[4]:>8} {r[5]:>7.1f} {r[6]:>6.0f} {r[7]:>6.1f}")
if "--bf16" not in sys.argv:
  try:
    from torch._inductor.utils import run_and_get_code
    for n in (32768, 65536):
        x = torch.randn(2**26 // n, n, device=dev, dtype=torch.bfloat16)
        w = torch.randn(n, device=dev, dtype=torch.bfloat16)
        torch._dynamo.reset()
        f = torch.compile(lambda x, w: llama_rms_norm(x, w, 1e-6), dynamic=False)
        _, code = run_and_get_code(f, x, w)
        with open(f"{sys.argv[1]}/inductor-{n}.py", "w") as fh:
            fh.write("\n\n".join(code))
  except Exception as e:
    print("inductor code:", e)

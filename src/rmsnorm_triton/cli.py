"""rmsnorm-triton {viz, bench, check, info}. Each command imports only what it needs."""

import argparse
import sys


def check(argv) -> int:
    """Runs the kernel on random data on whatever device is here and compares with float64."""
    p = argparse.ArgumentParser(prog="rmsnorm-triton check", description=check.__doc__)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import time

    import torch

    import rmsnorm_triton as R
    from rmsnorm_triton.reference import rms_norm_ref

    from .testing import TOLERANCE, max_scaled_error

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator().manual_seed(args.seed)
    shapes = [(4, 1), (3, 127), (8, 1000), (2, 4097)]
    if dev == "cuda":
        shapes += [(4096, 4096), (1024, 65537), (16, 1 << 20)]
    mode = "Triton's interpreter (no CUDA here)" if R.interpreted() else torch.cuda.get_device_name()
    print(f"rmsnorm_triton {R.__version__} on {dev}: {mode}")
    print(f"{'shape':>14} {'dtype':>9} {'max |y-ref|':>12} {'rel/eps':>8} {'ms':>9}  ok")
    ok_all = True
    for m, n in shapes:
        for dt in (torch.float32, torch.float16, torch.bfloat16):
            x = torch.randn(m, n, generator=g).to(dev, dt)
            w = (1 + 0.5 * torch.randn(n, generator=g)).to(dev, dt)
            R.rms_norm(x, w)  # first call compiles (or warms the interpreter)
            if dev == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            y = R.rms_norm(x, w)
            if dev == "cuda":
                torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) * 1e3
            ref, _ = rms_norm_ref(x, w)
            err = (y.double() - ref).abs().max().item()
            scaled = max_scaled_error(y, ref)
            ok = scaled <= 1.0
            ok_all &= ok
            print(f"{str((m, n)):>14} {str(dt)[6:]:>9} {err:12.3e} {scaled * TOLERANCE[dt][0] / _ulp(dt):8.2f}"
                  f" {ms:9.3f}  {'yes' if ok else 'NO'}")
    print("all within tolerance" if ok_all else "SOME RESULTS OUTSIDE TOLERANCE")
    return 0 if ok_all else 1


def _ulp(dt):
    import torch

    return torch.finfo(dt).eps


def info(argv) -> int:
    import torch
    import triton

    import rmsnorm_triton as R

    print(f"rmsnorm_triton {R.__version__}, torch {torch.__version__}, triton {triton.__version__}")
    print(f"kernels: {'interpreted (CPU)' if R.interpreted() else 'compiled for CUDA'}")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"check": check, "info": info, "viz": _viz, "bench": _bench}
    if not argv or argv[0] not in commands:
        print("usage: rmsnorm-triton {viz,bench,check,info} [options]\n"
              "  viz    the interactive visualizer in your browser (--help for options)\n"
              "  bench  timings against the peers, with plots (needs a GPU; [bench] extra)\n"
              "  check  runs the kernel on random data here and compares with float64\n"
              "  info   versions and the mode the kernels run in", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:]) or 0


def _viz(argv) -> int:
    from .viz.command import main as viz_main

    return viz_main(argv)


def _bench(argv) -> int:
    from .bench.harness import main as bench_main

    return bench_main(argv)


if __name__ == "__main__":
    sys.exit(main())

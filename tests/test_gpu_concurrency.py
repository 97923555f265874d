"""Other work on the GPU never hangs a call nor changes its answer (issue 22). CUDA only.

SPLIT's programs wait for each other (kernels.py), so a long-row call must not wait forever
when other kernels hold multiprocessors. Each case runs in its own process under a watchdog:
once its kernels are compiled and each call has run alone (the child prints "warm"), a case
that does not finish within WATCHDOG_S seconds is killed and fails instead of hanging the
suite. Inside, every output (y, dx, dw) is checked against float64:
- two streams, each calling long-row forward and backward at once;
- a long matmul on another stream while SPLIT calls run;
- many Python threads calling at once, half on their own streams, half sharing one.

Run on a GPU:  python -m pytest -q tests/test_gpu_concurrency.py
One case by hand:  PYTHONPATH=src python tests/test_gpu_concurrency.py two_streams
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

WARM_S = 300  # starting CUDA, compiling the kernels (a cold Triton cache), each call alone
WATCHDOG_S = 60  # the concurrent calls: a few seconds on an H100
EPS = 1e-6
# Long rows on the SPLIT path (launch tables: 64K-256K): (N, dtype, rows). 2^27 elements a call:
# each kernel takes ~0.1-0.4 ms on an H100, longer than the host takes to queue the next.
LONG = [(65536, torch.bfloat16, 2048), (131072, torch.float16, 1024), (262144, torch.float32, 512)]


def splits(n, dtype) -> bool:
    """The launch table walks rows of n elements of dtype with SPLIT, forward and backward (the
    one place here that knows where the tables live)."""
    from rmsnorm_triton import tables

    return tables.fwd_config(n, dtype).split and tables.bwd_config(n, dtype).split


# ---- the work, in the child process ---------------------------------------------------------
class Work:
    """One rms_norm forward + backward on fixed inputs, with its float64 answers."""

    def __init__(self, n, dtype, m, seed):
        from rmsnorm_triton.reference import rms_norm_ref

        g = torch.Generator("cuda").manual_seed(seed)
        self.x, self.dy = (torch.randn((m, n), generator=g, device="cuda").to(dtype)
                           for _ in range(2))
        self.w = torch.randn((n,), generator=g, device="cuda").to(dtype)
        x64, w64 = (t.double().requires_grad_() for t in (self.x, self.w))
        y64 = rms_norm_ref(x64, w64, EPS)[0]
        self.ref = (y64.detach(), *torch.autograd.grad(y64, [x64, w64], self.dy.double()))
        self.name = f"{m} x {n} {str(dtype)[6:]}"

    def call(self):
        """(y, dx, dw), on the current stream."""
        from rmsnorm_triton import rms_norm

        x, w = self.x.detach().requires_grad_(), self.w.detach().requires_grad_()
        y = rms_norm(x, w, EPS)
        return (y.detach(), *torch.autograd.grad(y, [x, w], self.dy))

    def check(self, out):
        from rmsnorm_triton.testing import max_scaled_error

        for name, o, r, grad in zip(("y", "dx", "dw"), out, self.ref, (False, True, True)):
            err = max_scaled_error(o, r, grad=grad, weight=None if grad else self.w)
            assert err <= 1.0, f"{self.name}: {name} off by {err:.3g}x the tolerance"


def _warm(works):
    """Each call once, alone on the default stream (compiles; checks), then "warm" for the
    watchdog: from here on, the case must finish within WATCHDOG_S."""
    for work in works:
        work.check(work.call())
    torch.cuda.synchronize()
    print("warm", flush=True)


def _run(jobs, rounds):
    """Each round queues every (work, stream) job, then waits and checks all it queued.
    Returns the number of calls checked."""
    checked = 0
    for _ in range(rounds):
        outs = []
        for work, stream in jobs:
            with torch.cuda.stream(stream):
                outs.append((work, work.call()))
        torch.cuda.synchronize()
        for work, out in outs:
            work.check(out)
        checked += len(outs)
    return checked


def case_two_streams():
    """Two streams, each with its own long rows, forward + backward calls queued on both."""
    a, b = Work(*LONG[0], seed=0), Work(*LONG[2], seed=1)
    _warm([a, b])  # (and the inputs are ready before other streams read them)
    s1, s2 = torch.cuda.Stream(), torch.cuda.Stream()
    return _run([(a, s1), (b, s2)] * 4, rounds=10)


def case_matmul():
    """A long matmul stream (8192^3 bf16, ~2 ms each) holds multiprocessors while SPLIT calls
    are launched on another."""
    works = [Work(*long, seed=i) for i, long in enumerate(LONG)]
    g = torch.Generator("cuda").manual_seed(1)
    a, b = (torch.randn((8192, 8192), generator=g, device="cuda", dtype=torch.bfloat16)
            for _ in range(2))
    mm, ours = torch.cuda.Stream(), torch.cuda.Stream()
    c = a @ b  # cuBLAS starts
    _warm(works)
    checked = 0
    for _ in range(8):
        with torch.cuda.stream(mm):
            c = [a @ b for _ in range(6)]
        checked += _run([(w, ours) for w in works], rounds=1)
        assert all(torch.isfinite(t).all() for t in c)
    return checked


def case_threads():
    """16 Python threads calling at once: the odd ones each on their own stream, the even ones
    on the default stream together (one stream's SPLIT slots and epochs shared by threads)."""
    works = [Work(n, dtype, m // 16, seed=i) for i, (n, dtype, m) in enumerate(LONG)]
    works.append(Work(4096, torch.bfloat16, 8, seed=99))  # a one-pass row: replayed plans
    _warm(works)
    errors, counts = [], []
    start = threading.Barrier(16)

    def worker(i):
        try:
            stream = torch.cuda.Stream() if i % 2 else None
            with torch.cuda.stream(stream):
                start.wait()
                outs = [(w, w.call()) for _ in range(3) for w in (works[i % 4], works[3])]
            torch.cuda.synchronize()
            for work, out in outs:
                work.check(out)
            counts.append(len(outs))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(f"thread {i}: {e!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, "\n".join(errors)
    return sum(counts)


CASES = {"two_streams": case_two_streams, "matmul": case_matmul, "threads": case_threads}


# ---- the tests, in the pytest process ---------------------------------------------------------
if "pytest" in sys.modules:
    import pytest

    pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

    def test_the_long_rows_take_split():
        assert all(splits(n, dtype) for n, dtype, _ in LONG), "LONG no longer exercises SPLIT"

    @pytest.mark.parametrize("case", list(CASES))
    def test_no_hang_and_right_answers(case):
        env = {k: v for k, v in os.environ.items() if k != "RMSNORM_TRITON_SPLIT"}
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [env.get("PYTHONPATH")] if p])
        rc, out, err, phase = _watched([sys.executable, __file__, case], env)
        assert phase is None, f"{case}: {phase}, killed (a hang?)\n{out[-2000:]}\n{err[-2000:]}"
        assert rc == 0 and "ok" in out, f"{case}: exit {rc}\n{out[-2000:]}\n{err[-4000:]}"

    def _watched(cmd, env):
        """Runs cmd: WARM_S for it to print "warm", then WATCHDOG_S to finish; killed past
        either. Returns (exit code, stdout, stderr, None or the phase that ran out of time)."""
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        out, err, warm = [], [], threading.Event()

        def read_out():
            for line in proc.stdout:
                out.append(line)
                if line.startswith("warm"):
                    warm.set()

        readers = [threading.Thread(target=read_out, daemon=True),
                   threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)]
        for t in readers:
            t.start()
        phase = None
        deadline = time.monotonic() + WARM_S
        while not warm.is_set() and proc.poll() is None and time.monotonic() < deadline:
            warm.wait(0.2)
        if proc.poll() is None and not warm.is_set():
            phase = f"not warm within {WARM_S} s"
        else:
            try:
                proc.wait(timeout=WATCHDOG_S)
            except subprocess.TimeoutExpired:
                phase = f"no answer within {WATCHDOG_S} s of warming up"
        if phase:
            proc.kill()
        proc.wait()
        for t in readers:
            t.join(timeout=10)
        return proc.returncode, "".join(out), "".join(err), phase


if __name__ == "__main__":
    t0 = time.perf_counter()
    checked = CASES[sys.argv[1]]()
    print(f"ok {sys.argv[1]}: {checked} calls checked in {time.perf_counter() - t0:.1f} s")

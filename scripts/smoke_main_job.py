#!/usr/bin/env python3
"""The main job as a newcomer runs it, checked end to end (CI runs this on every submission).

    python3 scripts/smoke_main_job.py [DIR]     DIR: a fresh clone (default: this repository)

In DIR, which must not hold a `.venv` yet (that is what a newcomer starts from), it runs the
README's main-job command verbatim (the code line after the `<!-- main-job -->` marker) with
`--no-browser --port P` on a free loopback port, and then:
  1. waits for the page (no fixed sleep: it polls until the server answers or the command dies);
  2. GET / is 200 and is the visualizer's page;
  3. POST /api/trace with random x and weight; y and rstd are checked against float64 here;
  4. stops the server by its process id (SIGTERM) and checks that it is gone;
  5. `.venv/bin/rmsnorm-triton check` exits 0 and says all results are within tolerance;
  6. `.venv/bin/rmsnorm-triton viz --export` writes a page whose inlined trace checks as in 3.
Standard library only: it runs on the bare interpreter a newcomer has. Exit 0 only if all pass.
"""

import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

MARKER = "<!-- main-job -->"
FP_EPS = {"fp32": 2.0**-23, "fp16": 2.0**-10, "bf16": 2.0**-7}
START_TIMEOUT = 1800  # a first install on a slow link downloads PyTorch


def main_job_command(readme: str) -> str:
    lines = readme.splitlines()
    at = lines.index(MARKER)  # ValueError: the README lost its marker
    for line in lines[at + 1:]:
        if line.startswith("    ") and line.strip():
            return line.strip()
    raise ValueError(f"no indented command line after {MARKER!r} in README.md")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, body=None, timeout=120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def check_trace(tr: dict, eps: float, dtype: str) -> float:
    """Largest error of y and rstd against float64 from the trace's own (rounded) inputs, in
    units of the dtype's epsilon; raises if any exceeds 4 (three roundings in the 'none'
    casting mode, each at most half an ulp relative, plus the fp32 sum)."""
    worst = 0.0
    for r, (xs, ys) in enumerate(zip(tr["x"], tr["y"])):
        ws = tr["weight"]
        rstd = 1.0 / math.sqrt(sum(v * v for v in xs) / len(xs) + eps)
        for name, got, ref in [("rstd", float(tr["rstd"][r]), rstd)] + [
                (f"y[{r}][{i}]", float(y), x * rstd * w) for i, (x, y, w) in enumerate(zip(xs, ys, ws))]:
            err = abs(got - ref) / (FP_EPS[dtype] * max(abs(ref), 2.0**-14))
            if not err <= 4.0:
                raise AssertionError(f"{name} = {got!r}, float64 reference {ref!r}: "
                                     f"{err:.1f} eps of {dtype} off (at most 4 expected)")
            worst = max(worst, err)
    return worst


def server_pid(session: int) -> int | None:
    """The process of `rmsnorm-triton viz` in the session the command was started in."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                sid = int(f.read().rsplit(")", 1)[1].split()[3])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if sid == session and any(a.endswith(b"rmsnorm-triton") for a in argv) and b"viz" in argv:
            return int(pid)
    return None


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def step(msg):
    print(f"[smoke] {msg}", flush=True)


def serve_and_check(root: str, cmd: str, log_path: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full = f"{cmd} --no-browser --port {port}"
    step(f"in {root}: {full}")
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["bash", "-c", full], cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the command exited with {proc.returncode} before serving")
            if time.monotonic() - t0 > START_TIMEOUT:
                raise RuntimeError(f"no page after {START_TIMEOUT} s")
            try:
                status, page = http(base + "/", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        step(f"install + start: page answered after {time.monotonic() - t0:.0f} s")
        if status != 200 or b"<html" not in page.lower() or b"rmsnorm" not in page.lower():
            raise AssertionError(f"GET / gave {status} and {len(page)} bytes: not the page")
        step("GET / -> 200, the visualizer's page")
        rng = random.Random(20)
        rows, n, eps = 3, 13, 1e-6
        body = {"rows": rows, "n": n, "block_size": 4, "eps": eps, "dtype": "fp32", "seed": 7,
                "x": [rng.gauss(0, 2) for _ in range(rows * n)],
                "weight": [rng.uniform(0.5, 1.5) for _ in range(n)]}
        status, data = http(base + "/api/trace", body)
        if status != 200:
            raise AssertionError(f"POST /api/trace gave {status}: {data[:300]!r}")
        tr = json.loads(data)
        worst = check_trace(tr, eps, "fp32")
        step(f"POST /api/trace -> 200; y and rstd within {worst:.2f} eps of float64")
        pid = server_pid(proc.pid)
        if pid is None:
            raise RuntimeError("the server's process was not found")
        t1 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while alive(pid) and time.monotonic() - t1 < 10:
            time.sleep(0.02)
        if alive(pid):
            raise AssertionError(f"the server (pid {pid}) still runs 10 s after SIGTERM")
        proc.wait(timeout=10)
        step(f"server (pid {pid}) stopped by SIGTERM in {time.monotonic() - t1:.2f} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def check_cli(root: str, tmp: str) -> None:
    exe = os.path.join(root, ".venv", "bin", "rmsnorm-triton")
    out = subprocess.run([exe, "check"], cwd=root, capture_output=True, text=True, timeout=900)
    if out.returncode != 0 or "all within tolerance" not in out.stdout:
        raise AssertionError(f"rmsnorm-triton check exited {out.returncode}:\n{out.stdout}{out.stderr}")
    step("rmsnorm-triton check -> 0, all within tolerance")
    path = os.path.join(tmp, "export.html")
    out = subprocess.run([exe, "viz", "--export", path, "--rows", "3", "--n", "9", "--block-size",
                          "4", "--dtype", "fp16", "--seed", "3"], cwd=root, capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise AssertionError(f"viz --export exited {out.returncode}:\n{out.stdout}{out.stderr}")
    with open(path, encoding="utf-8") as f:
        page = f.read()
    m = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>', page, re.S)
    if m is None or re.search(r'(src|href)="(?!#|data:)[^"]*"', page):
        raise AssertionError("the exported page has no inlined trace, or refers to another file")
    tr = json.loads(m.group(1))
    if (tr["params"]["rows"], tr["params"]["n"], tr["params"]["dtype"]) != (3, 9, "fp16"):
        raise AssertionError(f"the exported trace has params {tr['params']}")
    worst = check_trace(tr, tr["params"]["eps"], "fp16")
    step(f"viz --export -> {len(page)} bytes, offline; y and rstd within {worst:.2f} eps of float64")


def main(argv) -> int:
    root = os.path.abspath(argv[0] if argv else os.path.join(os.path.dirname(__file__), ".."))
    if os.path.exists(os.path.join(root, ".venv")):
        print(f"[smoke] {root}/.venv exists: a newcomer starts without one. Run this in a fresh "
              f"clone (git clone {root} /tmp/fresh && python3 {__file__} /tmp/fresh).",
              file=sys.stderr)
        return 2
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        cmd = main_job_command(f.read())
    with tempfile.TemporaryDirectory(prefix="smoke-") as tmp:
        log = os.path.join(tmp, "main-job.log")
        try:
            serve_and_check(root, cmd, log)
            check_cli(root, tmp)
        except Exception as e:  # noqa: BLE001 - any failure: show the command's log, then fail
            with open(log, errors="replace") as f:
                tail = f.read()[-4000:]
            print(f"[smoke] FAILED: {type(e).__name__}: {e}\n--- the command's output (tail) ---\n"
                  f"{tail}", file=sys.stderr)
            return 1
    step("the main job works as a newcomer runs it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

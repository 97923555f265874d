"""The visualizer's server: parameters checked, only static files served, concurrent requests."""

import contextlib
import errno
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rmsnorm_triton.trace import trace
from rmsnorm_triton.viz import command, export, server


@pytest.fixture(scope="module")
def port():
    srv = server.make_server("127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    port = srv.server_address[1]
    deadline = time.monotonic() + 10
    while True:  # poll until it answers (it listens from make_server on; this is a formality)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
    yield port
    srv.shutdown()
    srv.server_close()


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.putrequest(method, path, skip_accept_encoding=True)  # the path goes out as written
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    hdrs = {"Content-Length": str(len(data)), "Content-Type": "application/json"} if data is not None else {}
    for k, v in {**hdrs, **(headers or {})}.items():
        c.putheader(k, v)
    c.endheaders()
    if data:
        c.send(data)
    r = c.getresponse()
    out = r.status, r.getheader("Content-Type") or "", r.read()
    c.close()
    return out


@contextlib.contextmanager
def serving(bench_path=None):
    """A server on a free loopback port, in a thread, for the block (bench_path: its data)."""
    srv = server.make_server("127.0.0.1", 0, bench_path=bench_path)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def get_json(srv, path):
    """(status, parsed body) of a GET that must answer JSON."""
    status, ctype, body = request(srv.server_address[1], "GET", path)
    assert ctype == "application/json"
    return status, json.loads(body)


def test_page_and_assets(port):
    status, ctype, body = request(port, "GET", "/")
    assert status == 200 and ctype.startswith("text/html")
    for name in export.SCRIPTS + ("style.css",):
        assert name.encode() in body
        status, ctype, _ = request(port, "GET", "/" + name)
        assert status == 200, name


def test_trace_endpoint_matches_trace(port):
    params = {"rows": 3, "n": 11, "block_size": 4, "eps": 1e-5, "dtype": "bf16", "seed": 5, "norm": "layer"}
    status, ctype, body = request(port, "POST", "/api/trace", params)
    assert status == 200 and ctype == "application/json"
    got = json.loads(body)
    want = trace(**params)
    for k in ("x", "y", "mean", "var", "rstd", "partial", "steps", "blocks"):
        assert got[k] == want[k], k


BAD = [
    ({"rows": 0}, "rows"), ({"n": 1000}, "n must"), ({"n": 10, "block_size": 5}, "block_size"),
    ({"eps": -1}, "eps"), ({"eps": 1e300}, "eps"), ({"dtype": "int8"}, "dtype"), ({"seed": "x"}, "seed"),
    ({"norm": "group"}, "norm"), ({"rows": 1, "n": 2, "block_size": 2, "x": [1, 2, 3]}, "x must"),
    ({"n": 2, "block_size": 2, "weight": [1, None]}, "weight[1]"), ({"colour": 1}, "unknown parameter 'colour'"),
    ([1, 2], "the request must be a JSON object"),
]


@pytest.mark.parametrize("body,word", BAD, ids=[json.dumps(b)[:40] for b, _ in BAD])
def test_bad_parameters_are_400_with_message(port, body, word):
    status, ctype, raw = request(port, "POST", "/api/trace", body)
    assert status == 400 and ctype == "application/json"
    assert word in json.loads(raw)["error"]


def test_bad_bodies(port):
    status, _, raw = request(port, "POST", "/api/trace", b"{not json")
    assert status == 400 and "not valid JSON" in json.loads(raw)["error"]
    # Declared too large: refused before a byte of the body is read.
    status, _, raw = request(port, "POST", "/api/trace", b"{}", {"Content-Length": str(server.MAX_BODY + 1)})
    assert status == 413 and "at most" in json.loads(raw)["error"]
    status, _, raw = request(port, "POST", "/api/trace", b"{}", {"Content-Length": "abc"})
    assert status == 411
    status, _, _ = request(port, "POST", "/api/other", {})
    assert status == 404


@pytest.mark.parametrize("path", [
    "/../trace.py", "/../../pyproject.toml", "/%2e%2e/server.py", "/..%2fserver.py",
    "/static/../server.py", "/%2E%2E%2F%2E%2E%2Ftrace.py", "//etc/passwd", "/..\\server.py",
    "/index.html%00.py", "/nonexistent.js", "/../static/../__init__.py",
])
def test_path_traversal_is_404(port, path):
    status, _, body = request(port, "GET", path)
    assert status == 404, (path, body[:80])
    assert b"RMSNorm" not in body and b"import" not in body


def test_static_path_stays_inside():
    assert server.static_path("/index.html").endswith("index.html")
    assert server.static_path("/../server.py") is None
    assert server.static_path("/%2e%2e/export.py") is None


def test_concurrent_requests(port):
    params = [{"rows": 2 + i % 3, "n": 5 + 7 * i, "block_size": 8, "eps": 1e-6, "seed": 100 + i,
               "dtype": ("fp32", "fp16", "bf16")[i % 3], "norm": ("rms", "layer")[i % 2]} for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: request(port, "POST", "/api/trace", p), params))
    for p, (status, _, body) in zip(params, results):
        assert status == 200
        got, want = json.loads(body), trace(**p)
        assert got["params"]["seed"] == p["seed"]
        assert got["y"] == want["y"] and got["rstd"] == want["rstd"]


def test_export_is_self_contained(tmp_path):
    out = tmp_path / "viz.html"
    assert command.main(["--export", str(out), "--rows", "3", "--n", "9", "--norm", "layer"]) == 0
    page = out.read_text(encoding="utf-8")
    assert not re.search(r'<script[^>]+src=|<link[^>]+stylesheet|https?://|//cdn', page)
    for name in export.SCRIPTS:  # each script inlined whole
        with open(f"{server.STATIC}/{name}", encoding="utf-8") as f:
            first = next(line for line in f if line.strip())
        assert first.strip() in page, name
    m = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>', page, re.S)
    data = json.loads(m.group(1))
    want = trace(3, 9, 4, 1e-6, "fp32", 0, norm="layer")
    assert data["y"] == want["y"] and data["params"]["norm"] == "layer"
    assert command.main(["--export", str(tmp_path / "bad.html"), "--rows", "99"]) == 2
    assert not (tmp_path / "bad.html").exists()


# ---- the command line: --port, --host, --export, signals ---------------------------------------

@pytest.mark.parametrize("port", ["70000", "-1", "65536", "abc", "8.0", "", "٣", "8_0"])
def test_a_bad_port_is_a_clear_error(port, capsys):
    with pytest.raises(SystemExit) as e:
        command.main(["--port", port, "--no-browser"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--port: must be a whole number from 0 to 65535" in err and "Traceback" not in err


@pytest.mark.parametrize("host", ["", "  ", "[]"])
def test_an_empty_host_is_refused(host, capsys):
    with pytest.raises(SystemExit) as e:
        command.main(["--host", host, "--no-browser"])
    assert e.value.code == 2 and "--host: must name an address" in capsys.readouterr().err


def test_ipv6_loopback():
    try:
        srv = server.make_server("::1", 0)
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        assert srv.loopback and srv.url == f"http://[::1]:{port}/"
        c = http.client.HTTPConnection("::1", port, timeout=60)
        c.request("POST", "/api/trace", json.dumps({"rows": 1, "n": 3}), {"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 200 and len(json.loads(r.read())["y"][0]) == 3  # Host: [::1]:port
        c.close()
        c = http.client.HTTPConnection("::1", port, timeout=60)
        c.request("GET", "/", headers={"Host": f"127.0.0.1:{port}"})
        assert c.getresponse().status == 403  # not this server's address
        c.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_serve_warns_when_reachable_beyond_this_machine(monkeypatch, capsys):
    """As for --host 0.0.0.0, without opening a port to the network: a loopback server that
    calls itself non-loopback."""
    made = []

    def exposed(host, port):
        srv = server.VizServer(("127.0.0.1", 0))
        srv.loopback = False
        made.append(srv)
        threading.Timer(0.5, srv.shutdown).start()
        return srv

    monkeypatch.setattr(command, "make_server", exposed)
    assert command.serve("0.0.0.0", 8000, browser=False) == 0
    out, err = capsys.readouterr()
    assert "anyone on the network can use this server" in err
    assert f"serving {made[0].url}" in out
    srv = server.VizServer(("127.0.0.1", 0))
    srv.server_close()
    assert srv.loopback  # the default host: no warning


def test_port_in_use_is_a_clear_error(capsys):
    srv = server.make_server("127.0.0.1", 0)
    try:
        assert command.main(["--no-browser", "--port", str(srv.server_address[1])]) == 1
    finally:
        srv.server_close()
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1 port" in err and "Traceback" not in err


def viz_process():
    """`python -m rmsnorm_triton.cli viz --no-browser --port 0`, once it serves: (process, port)."""
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(server.__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "rmsnorm_triton.cli", "viz", "--no-browser", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ready, _, _ = select.select([proc.stdout], [], [], 120)  # importing torch can take a while
    line = proc.stdout.readline() if ready else ""
    m = re.search(r"serving http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        pytest.fail(f"the server did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, int(m.group(1))


@pytest.mark.parametrize("sig,busy", [(signal.SIGTERM, False), (signal.SIGINT, False),
                                      (signal.SIGTERM, True)], ids=["SIGTERM", "SIGINT", "SIGTERM-mid-trace"])
def test_signals_stop_the_server_within_a_second(sig, busy):
    proc, port = viz_process()
    try:
        assert request(port, "GET", "/")[0] == 200
        if busy:  # the largest trace, ~2 s of kernel time in Triton's interpreter
            big = {"rows": 64, "n": 256, "block_size": 16, "seed": 99}
            args = (request, port, "POST", "/api/trace", big)
            threading.Thread(target=_quiet, args=args, daemon=True).start()
            time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
    assert took < 1.0, (took, err[-2000:])
    assert code == 0 and "stopped" in out, (code, out, err[-2000:])
    assert "Traceback" not in err and "leaked" not in err


def _quiet(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass  # the server stopped under it


def test_export_refuses_bad_paths_cleanly(tmp_path, capsys):
    cases = [("", "needs a file name"), (str(tmp_path / "missing" / "v.html"), "does not exist"),
             (str(tmp_path), "it is a folder"), ("/proc/viz.html", "cannot write in '/proc'")]
    for path, message in cases:
        assert command.main(["--export", path, "--rows", "2", "--n", "3"]) == 2, path
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (path, err)
    assert os.listdir(tmp_path) == []


def test_export_writes_atomically_and_says_when_it_replaces(tmp_path, capsys, monkeypatch):
    out = tmp_path / "viz.html"
    out.write_text("old page")
    os.chmod(out, 0o640)
    replaced = []
    real = export.os.replace
    monkeypatch.setattr(export.os, "replace", lambda a, b: (replaced.append((a, b)), real(a, b)))
    assert command.main(["--export", str(out), "--rows", "2", "--n", "3"]) == 0
    assert "replacing the file that was there" in capsys.readouterr().out
    (tmp, dest), = replaced
    assert os.path.dirname(tmp) == str(tmp_path) and dest == str(out)
    assert "trace-data" in out.read_text() and os.stat(out).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["viz.html"]
    assert command.main(["--export", str(tmp_path / "new.html"), "--rows", "2", "--n", "3"]) == 0
    assert "replacing" not in capsys.readouterr().out


def test_export_on_a_full_disk_leaves_the_old_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "viz.html"
    out.write_text("old page")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.os, "fsync", full)
    assert command.main(["--export", str(out), "--rows", "2", "--n", "3"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert out.read_text() == "old page" and os.listdir(tmp_path) == ["viz.html"]

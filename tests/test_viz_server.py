"""The visualizer's server: parameters checked, only static files served, concurrent requests."""

import http.client
import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rmsnorm_triton.trace import trace
from rmsnorm_triton.viz import export, server


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
    assert server.main(["--export", str(out), "--rows", "3", "--n", "9", "--norm", "layer"]) == 0
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
    assert server.main(["--export", str(tmp_path / "bad.html"), "--rows", "99"]) == 2
    assert not (tmp_path / "bad.html").exists()

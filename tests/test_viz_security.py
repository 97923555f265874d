"""The visualizer's server against web pages and bad clients: who may call it, timeouts, bounded
threads, and an answer to every request. All traffic goes to 127.0.0.1; every loop is bounded."""

import json
import socket
import threading
import time

import pytest

from rmsnorm_triton.viz import checks, server

TIMEOUT = 1.0  # the servers here give a connection 1 s (10 s by default)
SMALL = {"rows": 1, "n": 2, "block_size": 2}


def start(**kw):
    srv = server.make_server("127.0.0.1", 0, **kw)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def srv():
    s = start(timeout=TIMEOUT, max_threads=4)
    yield s
    s.shutdown()
    s.server_close()


@pytest.fixture
def computed(monkeypatch):
    """The trace requests that reached the kernel, by their parameters."""
    calls, real = [], server.Handler.compute

    def compute(self, params):
        calls.append(params)
        return real(self, params)

    monkeypatch.setattr(server.Handler, "compute", compute)
    return calls


def exchange(port, data: bytes, wait=5.0):
    """Sends data on a fresh connection, reads until the server closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        return read_answer(s)


def read_answer(s):
    out = b""
    for _ in range(10_000):  # bounded: each recv ends at the socket's timeout or the server's close
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def post(port, body, headers=None, host=None, path="/api/trace"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"Host": host or f"127.0.0.1:{port}", "Content-Type": "application/json",
            "Content-Length": str(len(data)), **(headers or {})}
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items() if v is not None)
    return exchange(port, head.encode("latin-1") + b"\r\n" + data)


def error_of(answer):
    status, headers, body = answer
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)["error"]


# ---- only this server's page may use it -------------------------------------------------------

@pytest.mark.parametrize("host", [
    None, "attacker.example:{port}", "attacker.example", "127.0.0.1", "127.0.0.1:{other}",
    "localhost.attacker.example:{port}", "127.0.0.2:{port}", "[::1]:{port}", "", "127.0.0.1:{port}x",
])
def test_a_host_not_naming_the_server_is_403(srv, computed, host):
    port = srv.server_address[1]
    line = "" if host is None else f"Host: {host.format(port=port, other=port + 1)}\r\n"
    for request in (f"GET / HTTP/1.1\r\n{line}\r\n",
                    f"POST /api/trace HTTP/1.1\r\n{line}Content-Type: application/json\r\n"
                    f"Content-Length: 2\r\n\r\n{{}}"):
        status, message = error_of(exchange(port, request.encode()))
        assert status == 403 and "is not this server" in message, request
    assert computed == []


def test_two_host_headers_are_403(srv, computed):
    port = srv.server_address[1]
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: attacker.example\r\n\r\n"
    assert error_of(exchange(port, request.encode()))[0] == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_the_servers_own_names_are_served(srv, computed, host):
    port = srv.server_address[1]
    status, headers, body = post(port, SMALL, host=host.format(port=port),
                                 headers={"Origin": "http://" + host.format(port=port).lower()})
    assert status == 200 and json.loads(body)["params"]["n"] == 2
    assert len(computed) <= 1  # 0 where an earlier case left the answer in the cache
    status, _, body = exchange(port, f"GET / HTTP/1.1\r\nHost: {host.format(port=port)}\r\n\r\n".encode())
    assert status == 200 and b"app.js" in body


@pytest.mark.parametrize("ctype", [
    None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/json, text/plain", "application/jsonx",
    "application/json; charset=latin-1", "application/json; charset*=utf-8''utf-8", "json", "",
])
def test_a_post_that_is_not_json_is_403(srv, computed, ctype):
    status, message = error_of(post(srv.server_address[1], SMALL | {"seed": 7}, {"Content-Type": ctype}))
    assert status == 403 and "Content-Type must be application/json" in message
    assert computed == []


@pytest.mark.parametrize("ctype", ["application/json; charset=UTF-8", "Application/JSON",
                                   "application/json;charset=\"utf-8\""])
def test_json_content_types_are_served(srv, ctype):
    assert post(srv.server_address[1], SMALL, {"Content-Type": ctype})[0] == 200


@pytest.mark.parametrize("origin", [
    "https://attacker.example", "null", "http://attacker.example:{port}", "https://127.0.0.1:{port}",
    "http://127.0.0.1:{other}", "http://localhost:{port}", "http://127.0.0.1:{port}/path", "file://",
    "http://127.0.0.1:{port}?q", "http://user@127.0.0.1:{port}", "http://127.0.0.1:{port}, http://127.0.0.1:{port}",
])
def test_a_foreign_origin_is_403(srv, computed, origin):
    port = srv.server_address[1]
    for ctype in ("application/json", "text/plain"):
        answer = post(port, SMALL | {"seed": 8}, {"Origin": origin.format(port=port, other=port + 1),
                                                  "Content-Type": ctype})
        status, message = error_of(answer)
        assert status == 403 and "cross-origin request refused" in message
        assert "Access-Control-Allow-Origin" not in answer[1]
    assert computed == []


def test_cross_site_fetch_metadata_and_preflight_are_403(srv, computed):
    port = srv.server_address[1]
    status, message = error_of(post(port, SMALL | {"seed": 9}, {"Sec-Fetch-Site": "cross-site"}))
    assert status == 403 and "only this server's own page" in message
    preflight = (f"OPTIONS /api/trace HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Origin: http://attacker.example\r\nAccess-Control-Request-Method: POST\r\n"
                 "Access-Control-Request-Headers: content-type\r\n\r\n")
    status, headers, _ = exchange(port, preflight.encode())
    assert status == 403 and not any(k.lower().startswith("access-control") for k in headers)
    assert computed == []


def test_server_header_has_no_version(srv):
    port = srv.server_address[1]
    status, headers, _ = exchange(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert status == 200 and headers["Server"] == "rmsnorm-triton-viz"


def test_host_allowed_beyond_loopback(srv):
    """Bound to a non-loopback address: IP literals (which no DNS rebinding can name) and this
    machine's names are accepted, other names are not."""
    port = srv.server_address[1]
    assert not srv.host_allowed("192.168.1.5", port)
    srv.loopback = False
    try:
        assert srv.host_allowed("192.168.1.5", port) and srv.host_allowed("[fe80::1]", port)
        assert not srv.host_allowed("attacker.example", port)
        assert not srv.host_allowed("192.168.1.5", port + 1)
    finally:
        srv.loopback = True


def test_every_trace_parameter_has_a_kind():
    """A parameter trace gains must be given a kind here, or every request naming it is refused."""
    from rmsnorm_triton.trace import DEFAULTS

    assert set(checks.KINDS) == set(DEFAULTS) | {"x", "weight"}
    kind = {int: "int", float: "number", str: "choice"}
    assert {k: kind[type(v)] for k, v in DEFAULTS.items()} == {k: checks.KINDS[k] for k in DEFAULTS}


def test_split_host():
    assert checks.split_host("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert checks.split_host("[::1]:8000") == ("[::1]", 8000)
    assert checks.split_host("[::1]") == ("[::1]", 80)
    assert checks.split_host("LocalHost") == ("localhost", 80)
    for bad in ("", ":80", "a:", "a:-1", "a:123456", "a:٣", "a:²"):
        assert checks.split_host(bad) is None, bad


# ---- every request gets an answer -------------------------------------------------------------

def deep(d):
    return b"[" * d + b"]" * d


BAD_BODIES = [
    ({"block_size": 4.0}, "block_size must be an integer, got 4.0"),
    ({"rows": True}, "rows must be an integer, got True"),
    ({"seed": 1e3}, "seed must be an integer"),
    ({"dtype": []}, "dtype must be one of fp32, fp16, bf16, got []"),
    ({"norm": {"a": 1}}, "norm must be one of"),
    ({"dtype": None}, "dtype must be one of"),
    ({"eps": "1e-5"}, "eps must be a finite number"),
    ({"eps": False}, "eps must be a finite number"),
    (b'{"eps": ' + b"9" * 400 + b"}", "eps must be a number of magnitude at most"),
    (b'{"rows": ' + b"9" * 400 + b"}", "rows must be an integer of magnitude at most 2**63"),
    (b'{"x": [' + b"9" * 400 + b"]}", "x[0] is"),
    (b'{"weight": [1, -' + b"9" * 400 + b"]}", "weight[1] is"),
    (b'{"x": [' + b"9" * 5000 + b"]}", "not valid JSON"),  # past int()'s 4300 digits
    (b'{"eps": NaN}', "eps must be a finite number, got nan"),
    (b'{"eps": -Infinity}', "eps must be a finite number, got -inf"),
    (b'{"x": [1, NaN]}', "x[1] is nan"),
    ({"x": [[[1.0]]]}, "x[0][0] is [1.0]"),
    ({"x": [[1, 2], 3]}, "x[0] is [1, 2]"),
    ({"x": "12"}, "x must be a list"),
    ({"weight": {"0": 1}}, "weight must be a list"),
    ({"x": [True]}, "x[0] is True"),
    ({"x": [[1, "a"]]}, "x[0][1] is 'a'"),
    ({"colour" * 50: 1}, "unknown parameter"),
    ("rows", "the request must be a JSON object, got str"),
    (None, "the request must be a JSON object, got NoneType"),
    (deep(100_000), "nested too deeply"),
    (b'{"x": ' + deep(5000) + b"}", "nested too deeply"),
    (b"\xff\xfe{}", "not valid JSON"),
    ('{"rows": 1}'.encode("utf-16"), "not valid JSON"),
    (b"", "not valid JSON"),
]


@pytest.mark.parametrize("body,message", BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_bad_bodies_get_400_with_a_short_message(srv, computed, body, message):
    status, got = error_of(post(srv.server_address[1], body))
    assert status == 400 and message in got, got
    assert len(got) < 400 and computed == []


@pytest.mark.parametrize("length,status", [("-1", 400), ("-99999999999999999999999", 400), ("+2", 411),
                                           (" ", 411), ("1e3", 411), ("0x10", 411), ("²", 411),
                                           ("9" * 30, 413), (str(server.MAX_BODY + 1), 413)])
def test_bad_content_lengths(srv, length, status):
    assert error_of(post(srv.server_address[1], b"{}", {"Content-Length": length}))[0] == status


def test_chunked_and_doubled_lengths_are_refused(srv):
    port = srv.server_address[1]
    assert error_of(post(port, b"{}", {"Transfer-Encoding": "chunked"}))[0] == 411
    head = (f"POST /api/trace HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
    assert error_of(exchange(port, head.encode()))[0] == 411


@pytest.mark.parametrize("request_line", [
    b"garbage\r\n\r\n", b"BREW / HTTP/1.1\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
    b"GET " + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"\x00\xff\r\n\r\n",
])
def test_malformed_requests_get_a_json_answer(srv, request_line):
    status, headers, body = exchange(srv.server_address[1], request_line)
    assert 400 <= status < 600 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]


def test_an_unexpected_error_is_a_short_500_with_the_traceback_in_the_log(srv, monkeypatch, capfd):
    def broken(self, params):
        raise RuntimeError("the internal detail")

    monkeypatch.setattr(server.Handler, "compute", broken)
    status, message = error_of(post(srv.server_address[1], SMALL | {"seed": 12345}))
    assert status == 500 and message == "internal error (RuntimeError); the server's log has the details"
    err = capfd.readouterr().err
    assert "Traceback" in err and "the internal detail" in err
    monkeypatch.undo()  # (SMALL may not be cached yet when this test runs alone or first)
    assert post(srv.server_address[1], SMALL)[0] == 200  # still serving


# ---- no client can hold the server ------------------------------------------------------------

def wait_until(cond, limit):
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def open_slow(port, data: bytes):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if data:
        s.sendall(data)
    return s


def test_slow_clients_do_not_delay_a_normal_request_and_are_released_in_time(srv):
    port = srv.server_address[1]
    assert wait_until(lambda: srv.active == 0, 5)
    threads = threading.active_count()
    t0 = time.monotonic()
    head = f"POST /api/trace HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    slow = [open_slow(port, b""),  # connects, sends nothing
            open_slow(port, head.encode()),  # headers never finished
            open_slow(port, (head + "Content-Length: 100\r\n\r\n{").encode())]  # body never finished
    assert wait_until(lambda: srv.active == 3, 2)
    page = exchange(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert page[0] == 200 and time.monotonic() - t0 < TIMEOUT  # a normal request, meanwhile
    assert post(port, SMALL)[0] == 200  # and a trace
    for s in slow:
        status, message = error_of(read_answer(s))
        assert status == 408 and "not received within 1 s" in message
        s.close()
    assert time.monotonic() - t0 < TIMEOUT + 0.5
    assert wait_until(lambda: srv.active == 0 and threading.active_count() <= threads, 0.5)


def test_a_trickling_client_is_cut_at_the_deadline(srv):
    """One byte every 0.1 s never lets a read wait long, but the whole request has 1 s."""
    port = srv.server_address[1]
    t0 = time.monotonic()
    s = open_slow(port, b"")
    data = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode() + b"a" * 100
    closed = False
    for b in data:  # bounded: at most 100 bytes, 0.1 s apart
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed = True
            break
        time.sleep(0.1)
        if time.monotonic() - t0 > TIMEOUT + 0.3:
            break
    s.settimeout(2)
    assert closed or error_of(read_answer(s))[0] == 408
    assert time.monotonic() - t0 < TIMEOUT + 0.6
    s.close()


def test_threads_are_bounded_and_a_full_server_still_answers():
    srv = start(timeout=TIMEOUT, max_threads=2)
    port = srv.server_address[1]
    base = threading.active_count()
    idle = [open_slow(port, b"") for _ in range(6)]  # 3x the slots
    try:
        assert wait_until(lambda: srv.active == 2, 2)
        time.sleep(0.2)  # held for a while: still 2 threads, the others queued
        assert srv.active == 2 and threading.active_count() <= base + 2
        t0 = time.monotonic()
        status = post(port, SMALL)[0]  # queued behind them, answered once their time is up
        assert status in (200, 503) and time.monotonic() - t0 < 4 * TIMEOUT
    finally:
        for s in idle:
            s.close()
        srv.shutdown()
        srv.server_close()
    assert wait_until(lambda: srv.active == 0, 2)


def test_a_busy_server_answers_503_rather_than_queue_forever(monkeypatch):
    release, entered = threading.Event(), threading.Event()

    def stuck(self, params):
        entered.set()
        release.wait(10)
        return b"{}"

    monkeypatch.setattr(server.Handler, "compute", stuck)
    srv = start(timeout=0.5, max_threads=1)
    port = srv.server_address[1]
    try:
        holder = threading.Thread(target=post, args=(port, SMALL | {"seed": 424242}), daemon=True)
        holder.start()
        assert entered.wait(5)
        status, message = error_of(post(port, SMALL))
        assert status == 503 and "busy" in message
    finally:
        release.set()
        holder.join(5)
        srv.shutdown()
        srv.server_close()


def test_a_burst_of_connections_is_queued_not_stalled():
    """60 clients at once: each connects at once and gets its answer. (A listen queue of 5 made
    some wait 1.03 s here, the kernel's SYN retry.)"""
    srv = start(timeout=5)
    port, waits, answers = srv.server_address[1], [], []
    gate = threading.Barrier(60, timeout=10)

    def client():
        gate.wait()
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                waits.append(time.monotonic() - t0)
                s.sendall(f"GET /style.css HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                answers.append(read_answer(s)[0])
        except OSError as e:
            answers.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(60)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    finally:
        srv.shutdown()
        srv.server_close()
    assert answers == [200] * 60, answers
    assert len(waits) == 60 and max(waits) < 0.5, sorted(waits)[-5:]

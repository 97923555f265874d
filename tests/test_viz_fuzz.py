"""Fuzzing the visualizer's server on 127.0.0.1: random JSON of random depth and size, parameters
of every kind in every slot, raw bytes. The server answers every request with JSON (200, 400 or
413, never a dropped connection or a 500) and keeps serving. Bounded: a fixed number of examples,
each one request of at most ~200 KB."""

import json
import socket
import threading

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rmsnorm_triton.viz import checks, server  # noqa: E402

RUNS = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def port():
    srv = server.make_server("127.0.0.1", 0, timeout=5)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def post(port, data: bytes, path="/api/trace"):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(head + data)
        out = b""
        for _ in range(100_000):  # bounded: until the server closes (a trace is at most ~1.3 MB)
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 "), out[:200]  # answered, not dropped
    status = int(head.split()[1])
    assert b"Content-Type: application/json" in head
    return status, json.loads(body)


def answered(port, data: bytes, path="/api/trace"):
    status, obj = post(port, data, path)
    assert status in (200, 400, 413), (status, obj, data[:200])
    if status != 200:
        assert isinstance(obj["error"], str) and 0 < len(obj["error"]) < 400
    return status


scalars = (st.none() | st.booleans() | st.integers() | st.integers(-10**400, 10**400)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=5),
    max_leaves=60)
plausible = {  # values trace accepts, or nearly, so that checks deep in trace are reached too
    "rows": st.integers(0, 3), "n": st.integers(0, 9), "block_size": st.sampled_from([1, 2, 4, 8, 16, 3]),
    "eps": st.sampled_from([0, 1e-6, 0.5, 1, 2, -1e-9, 1e-320]), "seed": st.integers(-1, 3),
    "dtype": st.sampled_from(["fp32", "fp16", "bf16", "FP32", ""]),
    "norm": st.sampled_from(["rms", "layer", "Rms"]),
    "x": st.lists(st.floats(-1e6, 1e6) | st.integers(-3, 3), max_size=20)
         | st.lists(st.lists(st.floats(-70000, 70000), max_size=9), max_size=3),
    "weight": st.lists(st.floats(-1e5, 1e5), max_size=9),
}
params = st.fixed_dictionaries({}, optional={k: v | json_values for k, v in plausible.items()})


@st.composite
def near_valid(draw):
    """Requests shaped as the page sends them, their numbers random (extremes included)."""
    from rmsnorm_triton.trace import block_choices

    rows, n = draw(st.integers(1, 3)), draw(st.integers(1, 9))
    body = {"rows": rows, "n": n, "block_size": draw(st.sampled_from(block_choices(n))),
            "eps": draw(st.floats(0, 1)), "dtype": draw(plausible["dtype"]),
            "seed": draw(st.integers(0, 2**31 - 1)), "norm": draw(plausible["norm"])}
    number = st.floats(-1e6, 1e6) | st.sampled_from([0.0, -0.0, 65504.0, 70000.0, 1e-40, 3.4e38])
    if draw(st.booleans()):
        body["x"] = draw(st.lists(st.lists(number, min_size=n, max_size=n), min_size=rows, max_size=rows))
    if draw(st.booleans()):
        body["weight"] = draw(st.lists(number, min_size=n, max_size=n))
    return body


def nested(depth, leaf):
    return "[" * depth + leaf + "]" * depth


@RUNS
@given(body=json_values)
def test_random_json_is_answered(port, body):
    answered(port, json.dumps(body).encode())


@RUNS
@given(body=params)
def test_random_parameters_are_answered(port, body):
    assert set(body) <= set(checks.KINDS)
    answered(port, json.dumps(body).encode())


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=near_valid())
def test_near_valid_requests_are_answered(port, body):
    if answered(port, json.dumps(body).encode()) == 200:
        got = post(port, json.dumps(body).encode())[1]  # the cached answer, the same
        assert len(got["y"]) == body["rows"] and len(got["y"][0]) == body["n"]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(1, 100_000), key=st.sampled_from([None, "x", "weight", "rows"]),
       leaf=st.sampled_from(["", "1", '{"a": 1}']))
def test_random_depth_is_answered(port, depth, key, leaf):
    text = nested(depth, leaf)
    answered(port, (text if key is None else json.dumps({key: 0})[:-2] + text + "}").encode())


@RUNS
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_random_bytes_are_answered(port, data):
    answered(port, data)


bwd_params = st.fixed_dictionaries({}, optional={
    **{k: v | json_values for k, v in plausible.items() if k != "norm"},
    "programs": st.integers(-1, 4) | json_values, "dy": plausible["x"] | json_values})


@RUNS
@given(body=bwd_params)
def test_random_backward_parameters_are_answered(port, body):
    answered(port, json.dumps(body).encode(), "/api/backward")


def get(port, target: bytes):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"GET " + target + f" HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        out = b""
        for _ in range(10_000):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 ") and b"Content-Type: application/json" in head, out[:200]
    return int(head.split()[1]), json.loads(body)


query_values = st.sampled_from(["fwd", "bwd", "fwd_residual", "bf16", "fp32", "NVIDIA H100 80GB HBM3",
                                "", "%ff", "%00", "a%20b", "+", "%"]) | st.text(max_size=30)
query_values = query_values | st.sampled_from(["1", "0", "4096", "-3", "1e3", "99999999999999999999",
                                              "H200", "H100 SXM"])
query = st.lists(st.tuples(st.sampled_from(["op", "dtype", "gpu", "m", "n", "x", "op[]", ""]), query_values),
                 max_size=6).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv))


@RUNS
@given(q=query | st.text(max_size=80), path=st.sampled_from(["/api/bench", "/api/launch"]))
def test_random_queries_are_answered(port, q, path):
    target = (path + "?" + q).encode("utf-8", "surrogatepass")
    if any(c in target for c in b" \r\n\t\x00") or len(target) > 4000:
        target = target.replace(b" ", b"%20").replace(b"\r", b"%0d").replace(b"\n", b"%0a")
        target = target.replace(b"\t", b"%09").replace(b"\x00", b"%00")
    status, obj = get(port, target)
    assert status in (200, 400), (status, obj, target)
    if status == 400:
        assert isinstance(obj["error"], str) and 0 < len(obj["error"]) < 400
    elif path == "/api/bench":
        assert obj["available"] is False or obj["series"] is not None
    else:
        assert obj["grid"] >= 1 and obj["walk"] in ("one_pass", "split", "loop")


def test_still_serving_after_the_fuzz(port):
    assert answered(port, json.dumps({"rows": 2, "n": 3, "block_size": 4}).encode()) == 200

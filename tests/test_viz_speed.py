"""The speed chart's data: GET /api/bench against the bench's data file, the page's soft message
where there is no file, and the charts an exported page carries."""

import csv
import json
import re
import urllib.parse

import pytest

from rmsnorm_triton.bench import records
from rmsnorm_triton.viz import checks, command, speed

from test_viz_server import get_json as get
from test_viz_server import request, serving

DATA = records.ROOT / "benchmarks" / "data" / "results.csv"


def rows_of(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=records.FIELDS)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A data file of two GPUs and two runs, where a later run supersedes a cell."""
    base = dict.fromkeys(records.FIELDS, "")
    def row(provider, gpu, n, gbps, date, status="ok", op="fwd", dtype="bf16", copy=3000.0):
        return {**base, "provider": provider, "op": op, "dtype": dtype, "M": str(2**20 // n),
                "N": str(n), "bytes": "1", "ms": "0.01", "gbps": "" if status != "ok" else str(gbps),
                "pct_copy": "" if status != "ok" else str(100 * gbps / copy), "copy_gbps": str(copy),
                "status": status, "note": "boom" if status != "ok" else "", "gpu": gpu,
                "commit": "abc1234", "date": date}
    rows = [row("copy", "GPU A", 4096, 3000.0, "2026-01-01T00:00:00Z", op="copy", dtype="fp32"),
            row("rmsnorm_triton", "GPU A", 1024, 2000.0, "2026-01-01T00:00:00Z"),
            row("rmsnorm_triton", "GPU A", 1024, 2900.0, "2026-01-02T00:00:00Z", copy=3100.0),
            row("rmsnorm_triton", "GPU A", 4096, 2950.0, "2026-01-01T00:00:00Z"),
            row("liger", "GPU A", 1024, 2500.0, "2026-01-01T00:00:00Z"),
            row("liger", "GPU A", 4096, 0, "2026-01-01T00:00:00Z", status="failed"),
            row("rmsnorm_triton", "GPU B", 1024, 4000.0, "2026-02-01T00:00:00Z", copy=4500.0)]
    return write(tmp_path_factory.mktemp("bench") / "results.csv", rows)


def test_the_chart_is_the_latest_row_of_each_cell(tiny):
    data, why = speed.load(tiny)
    assert why is None and data.gpus == ["GPU B", "GPU A"]  # the newest run's GPU first
    c = speed.chart(data, "fwd", "bf16", "GPU A")
    ours, liger = c["series"]
    assert ours["provider"] == "rmsnorm_triton" and [p["N"] for p in ours["points"]] == [1024, 4096]
    assert ours["points"][0]["gbps"] == 2900.0  # the later run of the cell
    assert ours["points"][0]["pct_copy"] == pytest.approx(100 * 2900 / 3100)
    assert liger["points"] == [{"N": 1024, "M": 1024, "gbps": 2500.0, "pct_copy": 2500 / 30,
                                "ms": 0.01, "commit": "abc1234", "date": "2026-01-01T00:00:00Z"}]
    assert liger["missing"] == [{"N": 4096, "M": 256, "status": "failed", "note": "boom"}]
    assert c["copy"] == {"gbps": 3100.0, "date": "2026-01-02T00:00:00Z", "low": 3000.0, "high": 3100.0}
    assert c["ns"] == [1024, 4096]
    assert speed.chart(data)["gpu"] == "GPU B"
    for bad, word in [({"op": "bwd"}, "op must be one of fwd"), ({"dtype": "fp32"}, "dtype must be one of bf16"),
                      ({"gpu": "GPU C"}, "gpu must be one of GPU B, GPU A")]:
        with pytest.raises(ValueError, match=word):
            speed.chart(data, **bad)


def test_the_repository_file_is_found_and_charted():
    """Run from the checkout (an editable install), the package finds benchmarks/data/results.csv."""
    data, why = speed.load()
    assert why is None and data.path == str(DATA)
    c = speed.chart(data, "fwd", "bf16")
    assert c["source"] == "benchmarks/data/results.csv"
    want = {(r["provider"], int(r["N"])): float(r["gbps"]) for r in records.latest(records.read(DATA))
            if (r["op"], r["dtype"], r["gpu"], r["status"]) == ("fwd", "bf16", c["gpu"], "ok")}
    got = {(s["provider"], p["N"]): p["gbps"] for s in c["series"] for p in s["points"]}
    assert got == want and len(got) >= 10
    assert c["series"][0]["provider"] == "rmsnorm_triton"


def test_no_data_file_is_a_message_not_an_error(tmp_path, monkeypatch):
    data, why = speed.load(tmp_path / "none.csv")
    assert data is None and "does not exist" in why and "--bench-data FILE" in why
    monkeypatch.setattr(records, "in_checkout", lambda: False)  # as from a wheel
    data, why = speed.load(tmp_path / "none.csv")
    assert "installed without the source tree" in why
    (tmp_path / "empty.csv").write_text(",".join(records.FIELDS) + "\n")
    assert "no forward, backward or fused rows" in speed.load(tmp_path / "empty.csv")[1]
    (tmp_path / "bad.csv").write_bytes(b"provider,N\nx,notanumber\n")
    assert "could not be read" in speed.load(tmp_path / "bad.csv")[1]


@pytest.fixture(scope="module")
def srv(tiny):
    with serving(tiny) as s:
        yield s


def test_get_api_bench(srv, tiny):
    status, got = get(srv, "/api/bench?op=fwd&dtype=bf16&gpu=GPU%20A")
    assert status == 200 and got == speed.chart(speed.load(tiny)[0], "fwd", "bf16", "GPU A")
    status, got = get(srv, "/api/bench")
    assert status == 200 and got["gpu"] == "GPU B" and got["op"] == "fwd"


BAD_QUERIES = [
    ("op=fwd&op=bwd", "op is given more than once"),
    ("colour=red", "unknown parameter 'colour'; expected some of op, dtype, gpu"),
    ("op=FWD", "op must be one of fwd, bwd, fwd_residual, got 'FWD'"),
    ("dtype=", "dtype must be one of"),
    ("gpu=", "gpu must be printable text of 1 to 100 characters"),
    ("gpu=" + "a" * 101, "gpu must be printable text"),
    ("gpu=%0a", "gpu must be printable text"),
    ("gpu=%ff", "the query string cannot be read"),
    ("&".join(f"op=fwd{i}" for i in range(20)), "the query string cannot be read"),
    ("gpu=GPU%20C", "gpu must be one of GPU B, GPU A, got 'GPU C'"),
    ("op=bwd", "op must be one of fwd, got 'bwd'"),  # a valid op that the file lacks
]


@pytest.mark.parametrize("query,message", BAD_QUERIES, ids=[q[:20] for q, _ in BAD_QUERIES])
def test_bad_queries_are_400_with_a_message(srv, query, message):
    status, got = get(srv, "/api/bench?" + query)
    assert status == 400 and message in got["error"] and len(got["error"]) < 400, got


def test_a_server_without_data_answers_with_the_message(tmp_path):
    with serving(tmp_path / "none.csv") as s:
        status, got = get(s, "/api/bench?op=fwd")
    assert status == 200 and got["available"] is False and "does not exist" in got["message"]


def test_the_query_parameters_have_kinds():
    assert checks.QUERY_KINDS["/api/bench"] == {"op": "choice", "dtype": "choice", "gpu": "text"}
    assert set(checks.query_choices("/api/bench")["op"]) == set(records.THROUGHPUT_OPS)
    assert checks.check_query("/api/bench", "op=bwd&gpu=" + urllib.parse.quote("NVIDIA H100 80GB HBM3")) \
        == {"op": "bwd", "gpu": "NVIDIA H100 80GB HBM3"}


def inline(page, element_id):
    m = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_export_inlines_every_chart(tmp_path, tiny):
    out = tmp_path / "viz.html"
    assert command.main(["--export", str(out), "--rows", "2", "--n", "5", "--bench-data", str(tiny)]) == 0
    bench = inline(out.read_text(encoding="utf-8"), "bench-data")
    data = speed.load(tiny)[0]
    assert bench["default"] == "fwd/bf16/GPU B"
    assert bench["charts"] == {f"fwd/bf16/{g}": speed.chart(data, "fwd", "bf16", g) for g in ("GPU A", "GPU B")}
    assert str(tmp_path) not in json.dumps(bench)  # no folder of this machine in a shared file
    assert command.main(["--export", str(out), "--rows", "2", "--n", "5", "--bench-data", str(tmp_path / "x.csv")]) == 0
    bench = inline(out.read_text(encoding="utf-8"), "bench-data")
    assert bench["available"] is False and "does not exist" in bench["message"]


def test_a_foreign_host_gets_no_bench_data(srv):
    status, ctype, body = request(srv.server_address[1], "GET", "/api/bench?op=fwd",
                                  headers={"Host": f"attacker.example:{srv.server_address[1]}"})
    assert status == 403 and "is not this server" in json.loads(body)["error"]
    status, _, body = request(srv.server_address[1], "POST", "/api/bench", {})
    assert status == 404  # a GET endpoint only

"""The "how the GPU runs it" view: the planner's own layout for a GPU of the table, the bytes,
the nearest measured cell, GET /api/launch and the launches an exported page carries."""

import json
import re

import pytest
import torch

from rmsnorm_triton import tables
from rmsnorm_triton.bench import records
from rmsnorm_triton.bench.cases import min_bytes
from rmsnorm_triton.viz import command, launch

from test_viz_server import get_json as get
from test_viz_server import serving

DATA = records.ROOT / "benchmarks" / "data" / "results.csv"
DT = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
CASES = [("fwd", 4096, 4096, "bf16", "H100 SXM"), ("fwd", 1, 512, "bf16", "H200"),
         ("fwd", 8192, 131072, "fp16", "H100 SXM"), ("fwd", 3, 300001, "fp32", "H100 PCIe"),
         ("bwd", 65536, 1024, "bf16", "H200"), ("bwd", 2048, 32768, "fp32", "H100 SXM"),
         ("bwd", 7, 100, "fp16", "A100 SXM"), ("fwd", 100, 20000, "bf16", "A100 SXM")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_the_view_shows_the_planners_layout(case):
    op, m, n, dtype, gpu = case
    L = launch.launch(*case, bench_path=DATA)
    g = tables.GPUS[gpu]
    arch = tables.table_for_props(g)
    cfg = (tables.fwd_config(n, DT[dtype], False, dtype != "fp32", arch) if op == "fwd"
           else tables.bwd_config(n, DT[dtype], arch))
    sms = tables.GPUS[gpu].multi_processor_count
    if op == "fwd" and cfg.one_pass and cfg.block_m > 1 and m < cfg.block_m * sms:
        cfg = tables.with_rows(cfg, m, sms)  # a few rows: spread over the SMs
    assert L["config"] == {k: getattr(cfg, k) for k in L["config"]}
    walk = "split" if cfg.split else "one_pass" if cfg.one_pass else "loop"
    chunks = -(-n // cfg.block_n)
    assert (L["walk"], L["chunks"]) == (walk, chunks)
    if walk == "split":  # groups of `chunks` programs, as many as the SMs hold at once
        groups = min(m, sms * cfg.progs_per_sm // chunks)
        assert L["grid"] == groups * chunks and L["programs_per_row"] == chunks
        assert L["waves"] <= 1
    elif op == "bwd":  # persistent: at most the programs resident at once
        tiles = -(-m // cfg.block_m) if cfg.one_pass else m
        assert L["grid"] == min(tiles, sms * cfg.progs_per_sm) and L["waves"] <= 1
    else:
        assert L["grid"] == (-(-m // L["config"]["block_m"]) if cfg.one_pass else m)
        assert L["waves"] == pytest.approx(L["grid"] / (sms * L["resident_per_sm"]))
    assert L["gpu"]["table"] == ("generic" if g.major != 9 else "sm_90")
    assert L["bytes"]["must"] == min_bytes(op, m, n, DT[dtype])
    assert L["bytes"]["moves"] == sum(b for _, b in L["bytes"]["parts"]) >= L["bytes"]["must"]


def test_few_rows_are_spread_over_the_sms():
    """M = 1 with a table entry of 2 rows a program: tables.with_rows gives one row a program."""
    assert tables.fwd_config(512, torch.bfloat16, False, True, (9, 0)).block_m == 2
    L = launch.launch("fwd", 1, 512, "bf16", "H100 SXM", DATA)
    assert L["config"]["block_m"] == 1 and L["grid"] == 1 and L["rows_per_program"] == 1


def test_nearest_measured_cell():
    got, why = launch.nearest("fwd", 65536, 1024, "bf16", "H100 SXM", DATA)
    assert why is None and got["exact"] and got["same_gpu"] and (got["M"], got["N"]) == (65536, 1024)
    row = [r for r in records.latest(records.read(DATA)) if (r["provider"], r["op"], r["dtype"], r["M"],
           r["N"], r["gpu"]) == ("rmsnorm_triton", "fwd", "bf16", 65536, 1024, got["gpu"])]
    assert got["gbps"] == row[0]["gbps"] and got["pct_copy"] == row[0]["pct_copy"]
    got, _ = launch.nearest("fwd", 1, 4096, "bf16", "H100 SXM", DATA)  # small M: a graph replay
    assert got["op"] == "latency_graph" and got["exact"]
    got, _ = launch.nearest("fwd", 8192, 131072, "bf16", "H100 SXM", DATA)  # N first: the walk
    assert (got["M"], got["N"], got["op"]) == (512, 131072, "fwd")
    got, _ = launch.nearest("bwd", 60000, 1000, "bf16", "A100 SXM", DATA)  # no run on it
    assert (got["M"], got["N"], got["exact"], got["same_gpu"]) == (65536, 1024, False, False)
    assert got["gpu"] in {r["gpu"] for r in records.read(DATA)} - {"NVIDIA A100-SXM4-80GB"}
    got, _ = launch.nearest("bwd", 60000, 1000, "bf16", "H200", DATA)  # its own rows
    assert (got["M"], got["N"], got["same_gpu"], got["gpu"]) == (65536, 1024, True, "NVIDIA H200")


def test_without_data_the_launch_says_why(tmp_path):
    L = launch.launch("fwd", 8, 8, "fp32", "H200", tmp_path / "none.csv")
    assert L["measured"] is None and "does not exist" in L["measured_note"]


@pytest.fixture(scope="module")
def srv():
    with serving(DATA) as s:
        yield s


def test_get_api_launch(srv):
    status, got = get(srv, "/api/launch?op=bwd&m=2048&n=32768&dtype=fp32&gpu=H100%20SXM")
    assert status == 200 and got == launch.launch("bwd", 2048, 32768, "fp32", "H100 SXM", DATA)
    status, got = get(srv, "/api/launch")
    assert status == 200 and got["params"] == launch.DEFAULTS


@pytest.mark.parametrize("query,message", [
    ("m=0", "m must be an integer from 1 to 2,147,483,647, got 0"),
    ("m=2147483648", "m must be an integer from 1"), ("m=4.0", "m must be an integer written in digits"),
    ("n=16777217", "n must be an integer from 1 to 16,777,216"), ("n=", "n must be an integer"),
    ("gpu=B200", "gpu must be one of H100 SXM, H200"), ("op=fwd_residual", "op must be one of fwd, bwd"),
    ("dtype=fp64", "dtype must be one of bf16, fp16, fp32"), ("m=1&m=2", "m is given more than once"),
    ("m=" + "9" * 30, "m must be an integer written in digits"),
])
def test_bad_launch_queries_are_400(srv, query, message):
    status, got = get(srv, "/api/launch?" + query)
    assert status == 400 and message in got["error"], got


def test_export_inlines_the_launches(tmp_path):
    out = tmp_path / "viz.html"
    assert command.main(["--export", str(out), "--rows", "2", "--n", "5", "--bench-data", str(DATA)]) == 0
    page = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script id="launch-data" type="application/json">(.*?)</script>', page, re.S)[1])
    assert len(data["launches"]) == len(launch.EXPORT_MS) * len(launch.EXPORT_NS) * 2 * 3 * len(launch.EXPORT_GPUS)
    one = launch.launch("bwd", 4096, 2048, "fp16", "H200", DATA)
    del one["gpus"]
    assert data["launches"]["bwd/4096/2048/fp16/H200"] == one


def test_the_launch_query_parameters_have_kinds():
    from rmsnorm_triton.viz import checks

    kinds = checks.QUERY_KINDS["/api/launch"]
    assert set(kinds) == set(launch.DEFAULTS)
    kind = {int: "int", str: "choice"}
    assert {k: kind[type(v)] for k, v in launch.DEFAULTS.items()} == kinds
    assert checks.query_choices("/api/launch") == {"op": list(launch.OPS), "dtype": list(launch.DTYPES),
                                                   "gpu": list(tables.GPUS)}

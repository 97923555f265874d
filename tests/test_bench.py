"""The bench on the CPU, through Triton's interpreter: a smoke run of the whole command (tiny
M * N, two sizes, this library + torch eager + F.rms_norm), the rows it appends to its data file,
the README tables and plot drawn from such a file, and providers that are missing, raise or
return wrong results. Timings are never compared to numbers.
In a process that runs Triton compiled for a GPU, the same tiny runs go to CUDA instead."""

import csv
import math

import pytest
import torch

import rmsnorm_triton
from rmsnorm_triton import cli
from rmsnorm_triton.bench import cases, harness, records, report
from rmsnorm_triton.bench import providers as P
from rmsnorm_triton.testing import max_scaled_error

DEVICE = "cpu" if rmsnorm_triton.interpreted() else "cuda"
PROVS = ["rmsnorm_triton", "torch_eager", "torch_native"]
SIZES = [64, 256]
TINY = ["--device", DEVICE, "--mn", "2**10", "--dtypes", "bf16,fp16,fp32", "--latency-m", "1,4",
        "--latency-n", "64", "--copy-mib", "1", "--rep-ms", "1", "--quiet"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.csv"
    argv = ["bench", *TINY, "--sizes", ",".join(map(str, SIZES)), "--providers", ",".join(PROVS),
            "--out", str(out)]
    assert cli.main(argv) == 0
    return out


def test_smoke_rows_have_every_field_and_consistent_numbers(smoke):
    with smoke.open(newline="") as f:
        assert tuple(next(csv.reader(f))) == records.FIELDS
    rows = records.read(smoke)
    assert all(tuple(r) == records.FIELDS for r in rows)
    (copy,) = [r for r in rows if r["op"] == "copy"]
    assert copy["status"] == "ok" and copy["bytes"] == 2 * 2**20
    assert math.isclose(copy["pct_copy"], 100) and copy["copy_gbps"] == copy["gbps"]
    want = {(p, op, dt, n) for p in PROVS for op in ("fwd", "bwd", "fwd_residual")
            for dt in ("bf16", "fp16", "fp32") for n in SIZES
            if op in P.make([p])[0].ops}
    got = {(r["provider"], r["op"], r["dtype"], r["N"]) for r in rows
           if r["op"] in records.THROUGHPUT_OPS}
    assert got == want
    lat = {(r["provider"], r["M"]) for r in rows if r["op"] == "latency"}
    assert lat == {(p, m) for p in PROVS for m in (1, 4)}
    import triton

    for r in rows:
        assert r["status"] == "ok", r
        assert r["gpu"] and r["torch"] == torch.__version__ and r["triton"] == triton.__version__
        assert r["commit"] == records.source_commit() and r["date"] == copy["date"] != ""
        ours = r["provider"] == "rmsnorm_triton"
        assert r["provider_version"] == (rmsnorm_triton.__version__ if ours else torch.__version__)
        assert r["ms"] > 0 and r["gbps"] > 0 and r["copy_gbps"] == copy["gbps"]
        assert math.isclose(r["gbps"], r["bytes"] / (r["ms"] * 1e6))
        assert math.isclose(r["pct_copy"], 100 * r["gbps"] / copy["gbps"])
        if r["op"] != "copy":
            assert r["M"] == (1024 // r["N"] if r["op"] in records.THROUGHPUT_OPS else r["M"])
            dtype = cases.DTYPES[r["dtype"]]
            assert r["bytes"] == cases.min_bytes(r["op"], r["M"], r["N"], dtype)
            assert 0 <= r["error"] <= 2, r  # checked against float64 before it was timed


def test_a_second_run_appends_and_leaves_the_first_runs_rows_as_they_were(tmp_path):
    out = tmp_path / "data" / "results.csv"  # the folder is made too
    base = [*TINY, "--dtypes", "fp32", "--ops", "fwd", "--providers", "torch_eager",
            "--out", str(out)]
    assert harness.main([*base, "--sizes", "64,256", "--commit", "aaaaaaa"]) == 0
    first = out.read_text()
    assert harness.main([*base, "--sizes", "256", "--commit", "bbbbbbb+dirty"]) == 0
    text = out.read_text()
    assert text.startswith(first) and text.count("provider,op,dtype") == 1
    rows = records.read(out)
    assert [(r["op"], r["N"], r["commit"]) for r in rows] == [
        ("copy", 4096, "aaaaaaa"), ("fwd", 64, "aaaaaaa"), ("fwd", 256, "aaaaaaa"),
        ("copy", 4096, "bbbbbbb+dirty"), ("fwd", 256, "bbbbbbb+dirty")]
    newest = {r["N"]: r["commit"] for r in records.latest(rows) if r["op"] == "fwd"}
    assert newest == {64: "aaaaaaa", 256: "bbbbbbb+dirty"}  # a cell's later row supersedes


def test_rows_round_trip_exactly_and_a_foreign_header_is_refused(smoke, tmp_path):
    rows = records.read(smoke)
    copy = records.append(rows, tmp_path / "again.csv")
    assert records.read(copy) == rows
    other = tmp_path / "other.csv"
    other.write_text("provider,op,ms\nx,fwd,1.0\n")
    with pytest.raises(ValueError, match=r"other.csv has columns \['provider', 'op', 'ms'\], "
                       r"expected \['provider', 'op', 'dtype'"):
        records.append(rows, other)
    assert other.read_text() == "provider,op,ms\nx,fwd,1.0\n"


def test_smoke_data_draws_both_plots(smoke, tmp_path):
    pytest.importorskip("matplotlib")
    from rmsnorm_triton.bench.plot import plot

    paths = plot(smoke, tmp_path)
    assert sorted(p.name for p in paths) == ["latency.png", "throughput.png"]
    assert all(p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000 for p in paths)


# ---- the README's tables and plot, from a small synthetic data file ----------------------------
def _row(provider, op, dtype, n, pct, date="2026-01-01T00:00:00Z", gpu="GPU A", status="ok",
         commit="c0ffee1"):
    m, copy = 2**20 // n, 3000.0
    nbytes = cases.min_bytes(op, m, n, cases.DTYPES[dtype])
    gbps = None if status != "ok" else pct * copy / 100
    return dict(provider=provider, op=op, dtype=dtype, M=m, N=n, bytes=nbytes,
                ms=None if gbps is None else nbytes / (gbps * 1e6), gbps=gbps,
                pct_copy=None if gbps is None else pct, copy_gbps=copy, error=0.5 if gbps else None,
                status=status, note="" if status == "ok" else "RuntimeError: no", gpu=gpu,
                provider_version="1", torch="2.0", triton="3.0", cuda="12", driver="1",
                commit=commit, date=date)


def _synthetic(path, change=None):
    rows = [_row("rmsnorm_triton", "fwd", "bf16", 1024, 98.7),
            _row("rmsnorm_triton", "fwd", "bf16", 8192, 97.25),
            _row("quack", "fwd", "bf16", 1024, 97.1),
            _row("quack", "fwd", "bf16", 8192, 99.0),
            _row("torch_compile", "fwd", "bf16", 1024, 97.5),
            _row("liger", "fwd", "bf16", 8192, 0, status="failed"),
            _row("rmsnorm_triton", "bwd", "bf16", 1024, 91.3),
            _row("torch_compile", "bwd", "bf16", 1024, 85.0),
            _row("rmsnorm_triton", "fwd", "fp32", 1024, 100.8),
            # superseded by the later row of the same cell:
            _row("rmsnorm_triton", "bwd", "bf16", 8192, 50.0),
            _row("rmsnorm_triton", "bwd", "bf16", 8192, 92.8, date="2026-02-01T00:00:00Z",
                 commit="beef222"),
            # another GPU, older: not in the tables unless asked for
            _row("rmsnorm_triton", "fwd", "bf16", 1024, 11.1, gpu="GPU B",
                 date="2025-01-01T00:00:00Z")]
    if change:
        change(rows)
    records.append(rows, path)
    return path


def test_readme_tables_come_from_the_file(tmp_path):
    text = report.markdown(records.read(_synthetic(tmp_path / "a.csv")))
    bf16, fp32, legend = text.split("\n\n")
    assert bf16.splitlines() == [
        "| bf16 | 1K | 8K |",
        "|:--|--:|--:|",
        "| forward, this library | 98.7 | 97.2 |",
        "| forward, best peer | 97.5 C | 99.0 Q |",
        "| backward, this library | 91.3 | 92.8 |",
        "| backward, best peer | 85.0 C | - |"]
    assert fp32.splitlines()[2:] == ["| forward, this library | 100.8 |",
                                     "| forward, best peer | - |"]
    assert "on GPU A (torch 2.0, Triton 3.0; this library at beef222, c0ffee1)" in legend
    assert "C torch.compile, Q Quack" in legend and "Liger" not in legend
    assert "M x N = 2^20 elements" in legend

    def faster_quack(rows):
        rows[2]["pct_copy"] = 99.4

    changed = report.markdown(records.read(_synthetic(tmp_path / "b.csv", faster_quack)))
    assert "| forward, best peer | 99.4 Q | 99.0 Q |" in changed
    other = report.markdown(records.read(tmp_path / "a.csv"), gpu="gpu b")
    assert "| forward, this library | 11.1 |" in other and "on GPU B" in other
    old = report.markdown(records.read(tmp_path / "a.csv"), commit="c0ff")
    assert "| backward, this library | 91.3 | 50.0 |" in old
    with pytest.raises(ValueError, match="no forward, backward or fused rows for gpu='GPU C'"):
        report.markdown(records.read(tmp_path / "a.csv"), gpu="GPU C")


def test_latency_table_comes_from_the_file(tmp_path):
    def lat(provider, op, m, us):
        r = _row(provider, "fwd", "bf16", 4096, 50.0)
        return dict(r, op=op, M=m, ms=us / 1e3, gbps=None, pct_copy=None)

    rows = [lat("rmsnorm_triton", "latency", 1, 27.0), lat("rmsnorm_triton", "latency", 8, 26.5),
            lat("torch_native", "latency", 1, 15.8), lat("liger", "latency", 1, 70.0),
            lat("quack", "latency", 1, 40.0), lat("rmsnorm_triton", "latency_graph", 1, 1.27),
            lat("liger", "latency_graph", 1, 1.64),
            _row("rmsnorm_triton", "fwd", "bf16", 4096, 98.0)]
    records.append(rows, tmp_path / "lat.csv")
    text = report.latency_markdown(records.read(tmp_path / "lat.csv"))
    table = text.split("\n\n")[0].splitlines()
    assert table == ["| bf16, N = 4K: us per call | M = 1 | M = 8 |",
                     "|:--|--:|--:|",
                     "| eager, this library | 27.00 | 26.50 |",
                     "| eager, F.rms_norm | 15.80 | - |",
                     "| eager, best other peer | 40.00 Q | - |",
                     "| CUDA graph, this library | 1.27 | - |",
                     "| CUDA graph, F.rms_norm | - | - |",
                     "| CUDA graph, best other peer | 1.64 L | - |"]


def test_report_command_writes_the_tables_and_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data = _synthetic(tmp_path / "a.csv")
    table, png = tmp_path / "speed.md", tmp_path / "docs" / "throughput.png"
    argv = ["bench", "--report", "--data", str(data), "--table", str(table), "--plot", str(png)]
    assert cli.main(argv) == 0
    assert table.read_text() == report.markdown(records.read(data)) + "\n"
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
    assert report.main(["--data", str(data), "--no-plot"]) == 0
    assert "| forward, best peer | 97.5 C | 99.0 Q |" in capsys.readouterr().out
    assert report.main(["--data", str(tmp_path / "none.csv")]) == 2
    assert "no data file at" in capsys.readouterr().err


def test_update_refills_only_the_marked_tables(tmp_path):
    data = _synthetic(tmp_path / "a.csv")
    doc = tmp_path / "README.md"
    doc.write_text("# Title\n<!-- speed-table -->\nold table\n<!-- /speed-table -->\nkept\n")
    assert cli.main(["bench", "--report", "--data", str(data), "--update", str(doc),
                     "--no-plot"]) == 0
    table = report.markdown(records.read(data))
    want = f"# Title\n<!-- speed-table -->\n{table}\n<!-- /speed-table -->\nkept\n"
    assert doc.read_text() == want
    assert report.update(doc.read_text(), records.read(data)) == doc.read_text()  # idempotent
    with pytest.raises(ValueError, match="no <!-- speed-table -->"):
        report.update("# no markers\n", records.read(data))
    rows = records.read(data)
    only = report.update("<!-- speed-table bf16 -->\nx\n<!-- /speed-table -->\n", rows)
    bf16 = report.markdown([r for r in rows if r["dtype"] == "bf16"])
    assert only == f"<!-- speed-table bf16 -->\n{bf16}\n<!-- /speed-table -->\n"
    assert bf16 != table and "| fp32 |" not in only  # the marker's dtypes alone
    # a marker pinned to a GPU and a field keeps its table when other rows are appended
    a_only = [r for r in rows if r["gpu"] == "GPU A"]
    newer = [dict(r, gpu="GPU C", triton="9.9.0", pct_copy=1.0, date="2027-01-01T00:00:00Z")
             for r in a_only]
    pinned = "<!-- speed-table bf16 gpu=A commit=c0ffee triton=3 -->\nx\n<!-- /speed-table -->\n"
    want = report.markdown([r for r in rows if r["dtype"] == "bf16"], gpu="A", commit="c0ffee")
    assert report.update(pinned, rows + newer) == pinned.replace("x", want)
    c = report.update("<!-- speed-table triton=9 -->\nx\n<!-- /speed-table -->\n", rows + newer)
    assert "GPU C" in c and "GPU A" not in c and "| 1.0 |" in c
    with pytest.raises(ValueError, match="no forward, backward or fused rows"):
        report.update(pinned.replace("commit=c0ffee", "commit=0ddba11"), rows + newer)


def test_the_docs_show_what_the_data_file_makes():
    """docs/performance.md's tables are the ones the data file makes; after new rows,
    `rmsnorm-triton bench --report --update docs/performance.md` brings them up to date."""
    data = records.ROOT / "benchmarks" / "data" / "results.csv"
    doc = records.ROOT / "docs" / "performance.md"
    if not (data.is_file() and doc.is_file()):
        pytest.skip("no source checkout here")
    text = doc.read_text()
    assert "<!-- speed-table gpu=H100 -->" in text and "<!-- latency-table gpu=H100 -->" in text
    assert report.update(text, records.read(data)) == text, (
        "docs/performance.md is out of date: rmsnorm-triton bench --report --update "
        "docs/performance.md")
    readme = (records.ROOT / "README.md").read_text()
    assert "<!-- speed-table bf16 gpu=H100 -->" in readme  # (where the peers ran)
    assert report.update(readme, records.read(data)) == readme, (
        "README.md's speed table is out of date: rmsnorm-triton bench --report --update README.md")


def test_the_committed_data_file_has_every_field_and_makes_the_readme_tables():
    data = records.ROOT / "benchmarks" / "data" / "results.csv"
    if not data.is_file():
        pytest.skip("no source checkout here")
    rows = records.read(data)
    assert rows and all(tuple(r) == records.FIELDS for r in rows)
    for r in rows:
        assert r["gpu"] and r["torch"] and r["triton"] and r["commit"] and r["date"], r
        if r["status"] == "ok" and r["op"] in records.THROUGHPUT_OPS:
            assert math.isclose(r["pct_copy"], 100 * r["gbps"] / r["copy_gbps"]), r
    text = report.markdown(rows)
    assert text.count("| forward, this library |") == 3


class _Missing(P.Provider):
    name = "fake_missing"

    def load(self):
        raise ImportError("No module named 'fake_peer'")


class _Raises(P.TorchEager):
    name = "fake_raises"

    def fwd(self, x, w, eps):
        raise RuntimeError("kernel exploded")


class _Wrong(P.TorchEager):
    name = "fake_wrong"

    def fwd(self, x, w, eps):
        return super().fwd(x, w, eps) * 1.25


class _NaN(P.TorchEager):
    name = "fake_nan"

    def fwd(self, x, w, eps):
        y = super().fwd(x, w, eps)
        y[0, 0] = float("nan")
        return y


class _WrongDtype(P.TorchEager):
    name = "fake_fp32_out"

    def fwd(self, x, w, eps):
        return super().fwd(x.float(), w.float(), eps)


def test_failing_and_missing_providers_are_reported_and_skipped(tmp_path, capsys):
    provs = [_Missing(), P.TorchEager(), _Raises(), _Wrong(), _NaN(), _WrongDtype()]
    argv = [*TINY, "--dtypes", "bf16", "--sizes", "64", "--ops", "fwd,latency", "--out",
            str(tmp_path / "r.csv")]
    assert harness.main(argv, providers=provs) == 0
    by = {}
    for r in records.read(tmp_path / "r.csv"):
        by.setdefault(r["provider"], []).append(r)
    (miss,) = by["fake_missing"]
    assert (miss["op"], miss["status"]) == ("import", "missing")
    assert "ImportError: No module named 'fake_peer'" in miss["note"]
    per = 3 if DEVICE == "cpu" else 5  # fwd N=64; latency M=1, M=4 (and in a CUDA graph)
    assert {r["status"] for r in by["torch_eager"]} == {"ok"} and len(by["torch_eager"]) == per
    for name, status, note in [("fake_raises", "failed", "RuntimeError: kernel exploded"),
                               ("fake_wrong", "wrong", "tolerance"),
                               ("fake_nan", "wrong", "NaN or inf"),
                               ("fake_fp32_out", "failed", "dtype torch.float32, expected")]:
        assert len(by[name]) == per
        for r in by[name]:
            assert r["status"] == status and note in r["note"] and r["ms"] is None, r
            assert r["gbps"] is None and r["pct_copy"] is None
    assert all(r["error"] > cases.WRONG_AT for r in by["fake_wrong"])
    assert all(r["error"] is None for r in by["fake_nan"])  # inf is not written: numbers or nothing
    shown = capsys.readouterr().out
    assert "kernel exploded" in shown and "fake_peer" in shown and "fake_wrong" in shown


@pytest.mark.parametrize("grad", [False, True])
def test_scaled_error_gradient_form_and_special_values(grad):
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(64, 33, generator=g, dtype=torch.float64)
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        out = (ref * (1 + 1e-3 * torch.randn(ref.shape, generator=g, dtype=torch.float64)))
        out = out.to(dtype)
        e = max_scaled_error(out, ref, dtype, grad=grad)
        if not grad:
            assert e == pytest.approx(max_scaled_error(out, ref), rel=1e-12)
        else:  # the gradient form only adds rms(ref) to the scale: never larger
            assert 0 < e <= max_scaled_error(out, ref)
    special = ref.clone()
    special[0, 0], special[1, 1] = float("nan"), float("inf")
    assert max_scaled_error(special, special, torch.float32, grad) == 0.0
    out = special.clone()
    out[2, 2] = float("nan")
    assert max_scaled_error(out, special, torch.float32, grad) == math.inf


def test_min_bytes_counts_each_tensor_once():
    m, n = 3, 5
    assert cases.min_bytes("fwd", m, n, torch.bfloat16) == (2 * m * n + n) * 2
    assert cases.min_bytes("bwd", m, n, torch.float32) == (3 * m * n + 2 * n) * 4
    assert cases.min_bytes("fwd_residual", m, n, torch.float16) == (4 * m * n + n) * 2


def test_gpu_runs_append_to_the_data_file_and_cpu_smoke_runs_elsewhere(tmp_path):
    assert harness.options([]).out == records.default_csv()
    assert harness.options(["--device", "cpu"]).out == harness.CPU_CSV != records.default_csv()
    assert harness.options(["--device", "cpu", "--out", str(tmp_path)]).out == tmp_path


def test_sizes_parse():
    assert [harness.parse_int(s) for s in ("512", "1K", "256k", "2**26", "64M")] == [
        512, 1024, 262144, 2**26, 64 * 2**20]
    with pytest.raises(Exception, match="not a size"):
        harness.parse_int("lots")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without CUDA")
def test_cuda_default_without_cuda_says_what_to_do(capsys):
    assert harness.main([]) == 2
    assert "--device cpu" in capsys.readouterr().out


class _Counts(P.TorchEager):
    """Counts the calls each set of inputs gets, by the data pointer of x."""
    name = "fake_counts"

    def __init__(self):
        self.calls = {}

    def fwd(self, x, w, eps):
        self.calls[x.data_ptr()] = self.calls.get(x.data_ptr(), 0) + 1
        return super().fwd(x, w, eps)


def test_timed_calls_alternate_two_sets_of_inputs(tmp_path):
    """A throughput cell times each provider on two sets of inputs in turn (nothing of the next
    call's inputs is left in L2 by the call before); latency cells keep one set."""
    prov = _Counts()
    argv = [*TINY, "--dtypes", "fp32", "--sizes", "64", "--ops", "fwd", "--out",
            str(tmp_path / "r.csv")]
    assert harness.main(argv, providers=[prov]) == 0
    assert len(prov.calls) == 2, "two sets of inputs"
    first, second = prov.calls.values()
    assert second >= 2 and first - 1 in (second, second + 1), prov.calls  # one check call, then turns
    prov.calls.clear()
    argv = [*TINY, "--dtypes", "fp32", "--ops", "latency", "--latency-m", "1", "--out",
            str(tmp_path / "r.csv")]
    assert harness.main(argv, providers=[prov]) == 0
    assert len(prov.calls) == 1
    calls = []
    f = harness.alternate(lambda: calls.append("a"), lambda: calls.append("b"))
    for _ in range(5):
        f()
    assert calls == ["a", "b", "a", "b", "a"]


@pytest.mark.parametrize("host_needs", [8, None])
def test_device_clock_drops_trials_where_the_gpu_caught_up_with_the_host(monkeypatch, host_needs):
    """kernel_ms on CUDA (faked): a trial whose start event had passed before the host finished
    enqueueing (the batch may hold the GPU's waits for the host, timed here at twice the call's
    time) is dropped and the sleep doubled; a host that never keeps up is timed as it is once
    the sleep reaches timing.MAX_SLEEP_S."""
    from types import SimpleNamespace

    from rmsnorm_triton.bench import timing

    sleeps, calls = [], [0]

    class Event:
        def __init__(self, enable_timing=False):
            self.cycles = self.calls = None

        def record(self):
            self.cycles, self.calls = sleeps[-1], calls[0]

        def late(self):
            return host_needs is None or self.cycles < host_needs * sleeps[0]

        def query(self):
            return self.late()

        def synchronize(self):
            pass

        def elapsed_time(self, end):
            return (end.calls - self.calls) * (2.0 if self.late() else 1.0)

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "_sleep", sleeps.append)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda d: SimpleNamespace(clock_rate=1000))

    def fn():
        calls[0] += 1

    ms = timing.kernel_ms(fn, torch.device("cuda"), rep_ms=1.0)
    if host_needs is None:
        assert ms == 2.0 and sleeps[-1] >= timing.MAX_SLEEP_S * 1e6
    else:
        assert ms == 1.0, "late trials were kept"
        assert sleeps[0] * 8 <= max(sleeps) < sleeps[0] * 16, "the sleep doubled until long enough"


def test_the_weighted_bound_covers_a_subnormal_x_hat_scaled_by_w():
    """Llama casting rounds x_hat to fp16 before the weight: a subnormal x_hat's rounding error
    (half its step) times |w| > 1 exceeds the plain absolute term, even for Hugging Face's own
    formula in torch; max_scaled_error(weight=w) bounds it."""
    from rmsnorm_triton.reference import llama_rms_norm, rms_norm_ref

    m, n = 4096, 64
    x = torch.ones(m, n, dtype=torch.float64)
    x[:, 0] = torch.linspace(1e-7, 6e-5, m, dtype=torch.float64)  # x_hat ~ x: fp16 subnormals
    x, w = x.half(), torch.full((n,), -3.99, dtype=torch.float16)
    ref = rms_norm_ref(x, w)[0]
    y = llama_rms_norm(x, w)
    assert max_scaled_error(y, ref) > 1.0, "no longer shows the case"
    assert max_scaled_error(y, ref, weight=w) <= 1.0

"""The bench on the CPU, through Triton's interpreter: a smoke run of the whole command (tiny
M * N, two sizes, this library + torch eager + F.rms_norm), its files and plots, and providers
that are missing, raise or return wrong results. Timings are never compared to numbers.
In a process that runs Triton compiled for a GPU, the same tiny runs go to CUDA instead."""

import math

import pytest
import torch

import rmsnorm_triton
from rmsnorm_triton import cli
from rmsnorm_triton.bench import cases, harness, report
from rmsnorm_triton.bench import providers as P
from rmsnorm_triton.testing import max_scaled_error

DEVICE = "cpu" if rmsnorm_triton.interpreted() else "cuda"
PROVS = ["rmsnorm_triton", "torch_eager", "torch_native"]
SIZES = [64, 256]
TINY = ["--device", DEVICE, "--mn", "2**10", "--dtypes", "bf16,fp16,fp32", "--latency-m", "1,4",
        "--latency-n", "64", "--copy-mib", "1", "--rep-ms", "1", "--quiet"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", *TINY, "--sizes", ",".join(map(str, SIZES)), "--providers", ",".join(PROVS),
            "--out", str(out)]
    assert cli.main(argv) == 0
    return out


def test_smoke_records_have_every_field_and_consistent_numbers(smoke):
    records = report.read_records(smoke / "results.json")
    assert all(tuple(r) == report.FIELDS for r in records)
    (copy,) = [r for r in records if r["op"] == "copy"]
    assert copy["status"] == "ok" and copy["bytes"] == 2 * 2**20
    assert math.isclose(copy["pct_copy"], 100)
    want = {(p, op, dt, n) for p in PROVS for op in ("fwd", "bwd", "fwd_residual")
            for dt in ("bf16", "fp16", "fp32") for n in SIZES
            if op in P.make([p])[0].ops}
    got = {(r["provider"], r["op"], r["dtype"], r["N"]) for r in records
           if r["op"] in report.THROUGHPUT_OPS}
    assert got == want
    lat = {(r["provider"], r["M"]) for r in records if r["op"] == "latency"}
    assert lat == {(p, m) for p in PROVS for m in (1, 4)}
    for r in records:
        assert r["status"] == "ok", r
        assert r["gpu"] and set(r["versions"]) == {"torch", "triton", "rmsnorm_triton", "liger",
                                                   "quack", "cuda", "driver"}
        assert r["ms"] > 0 and r["gbps"] > 0
        assert math.isclose(r["gbps"], r["bytes"] / (r["ms"] * 1e6))
        assert math.isclose(r["pct_copy"], 100 * r["gbps"] / copy["gbps"])
        if r["op"] != "copy":
            assert r["M"] == (1024 // r["N"] if r["op"] in report.THROUGHPUT_OPS else r["M"])
            dtype = cases.DTYPES[r["dtype"]]
            assert r["bytes"] == cases.min_bytes(r["op"], r["M"], r["N"], dtype)
            assert 0 <= r["error"] <= 2, r  # checked against float64 before it was timed


def test_csv_and_json_round_trip(smoke, tmp_path):
    from_json = report.read_records(smoke / "results.json")
    from_csv = report.read_records(smoke / "results.csv")
    assert from_csv == from_json
    report.write_records(from_csv, tmp_path)
    assert report.read_records(tmp_path / "results.csv") == from_json
    assert report.read_records(tmp_path) == from_json


def test_plots_are_drawn_from_the_data(smoke, tmp_path):
    for name in ("throughput.png", "latency.png"):
        assert (smoke / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pytest.importorskip("matplotlib")
    from rmsnorm_triton.bench.plot import plot

    paths = plot(smoke / "results.csv", tmp_path)  # from the CSV alone, into another folder
    assert sorted(p.name for p in paths) == ["latency.png", "throughput.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


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
            str(tmp_path), "--no-plot"]
    assert harness.main(argv, providers=provs) == 0
    records = report.read_records(tmp_path)
    by = {}
    for r in records:
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
    assert all(r["error"] is None for r in by["fake_nan"])  # inf is not written: JSON stays strict
    shown = capsys.readouterr().out
    assert "kernel exploded" in shown and "fake_peer" in shown and "fake_wrong" in shown


def test_append_replaces_same_cells_and_keeps_others(tmp_path):
    base = [*TINY, "--dtypes", "fp32", "--ops", "fwd", "--providers", "torch_eager",
            "--out", str(tmp_path), "--no-plot"]
    assert harness.main([*base, "--sizes", "64,256"]) == 0
    assert harness.main([*base, "--sizes", "256", "--append"]) == 0
    records = report.read_records(tmp_path)
    assert sorted(r["N"] for r in records if r["op"] == "fwd") == [64, 256]
    assert len([r for r in records if r["op"] == "copy"]) == 2  # each run keeps its ceiling
    assert [run["argv"][-1] for run in report.read_meta(tmp_path)["runs"]] == ["64,256", "--append"]


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
    argv = [*TINY, "--dtypes", "fp32", "--sizes", "64", "--ops", "fwd", "--out", str(tmp_path),
            "--no-plot"]
    assert harness.main(argv, providers=[prov]) == 0
    assert len(prov.calls) == 2, "two sets of inputs"
    first, second = prov.calls.values()
    assert second >= 2 and first - 1 in (second, second + 1), prov.calls  # one check call, then turns
    prov.calls.clear()
    argv = [*TINY, "--dtypes", "fp32", "--ops", "latency", "--latency-m", "1", "--out",
            str(tmp_path / "lat"), "--no-plot"]
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

"""The bench's QK-norm and gated cells (bench/heads.py) run end to end: on the CPU through the
interpreter at tiny sizes (--smoke), every provider checked against float64 before it is timed,
rows appended in the data file's columns."""

from rmsnorm_triton.bench import heads, records


def test_smoke_run_appends_checked_rows(tmp_path):
    out = tmp_path / "results.csv"
    assert heads.main(["--smoke", "--device", "cpu", "--rep-ms", "1", "--out", str(out),
                       "--ops", "qk_fwd,qk_bwd,gated_fwd,gated_bwd"]) == 0
    rows = records.read(out)
    cells = {(r["provider"], r["op"], r["N"]) for r in rows}
    for op in ("qk_fwd", "qk_bwd"):
        for p in ("rmsnorm_triton", "rmsnorm_triton_2call", "rmsnorm_triton_copy", "torch_eager"):
            assert (p, op, 32) in cells
    for op in ("gated_fwd", "gated_bwd"):
        for n in (64, 128):
            assert ("rmsnorm_triton", op, n) in cells
    bad = [r for r in rows if r["status"] != "ok"]
    assert not bad, bad
    assert all(r["pct_copy"] is not None for r in rows if r["op"] != "copy")

"""The visualizer's backward trace: its numbers are the backward kernel's, checked against
float64; its schedule is the launch's."""

import pytest
import torch

import rmsnorm_triton as R
from rmsnorm_triton import plan, tables
from rmsnorm_triton.testing import TOLERANCE, assert_close
from rmsnorm_triton.trace import DTYPES
from rmsnorm_triton.trace_bwd import DEFAULTS, trace_backward, trace_backward_request

DEV = "cpu" if R.interpreted() else "cuda"
# (rows, n, block, programs): one block, ragged tails, odd sizes, one program for all rows,
# one program a row, rows not shared evenly
SHAPES = [(1, 1, 1, 1), (3, 10, 4, 2), (2, 10, 16, 1), (4, 33, 4, 3), (2, 127, 16, 2),
          (5, 256, 256, 5), (6, 7, 2, 4)]
CASES = [(s, dt) for s in SHAPES for dt in DTYPES if dt == "fp32" or s[1] in (10, 127)]


def _t(v, dtype=torch.float64):
    return torch.tensor(v, dtype=dtype)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def case(request):
    (m, n, block, progs), dt = request.param
    w = (1 + 0.5 * torch.randn(n, generator=torch.Generator().manual_seed(7))).tolist()
    return request.param, trace_backward(m, n, block, 1e-5, dt, 3, progs, weight=w)


def test_gradients_against_float64(case):
    ((m, n, block, progs), dt), t = case
    dtype = DTYPES[dt]
    x, w, dy = _t(t["x"]), _t(t["weight"]), _t(t["dy"])
    rstd = torch.rsqrt((x * x).mean(-1) + 1e-5)
    x_hat, wdy = x * rstd[:, None], w * dy
    c1 = (x_hat * wdy).mean(-1)
    dx = rstd[:, None] * (wdy - x_hat * c1[:, None])
    # dx is a difference of terms (it cancels where x_hat * c1 ~ wdy, always at N = 1) and dw
    # a sum of signed ones: each is good to a few roundings of the terms' size, not its own
    rel, abs_ = TOLERANCE[dtype]
    terms = rstd[:, None] * (wdy.abs() + x_hat.abs() * (c1.abs() + (x_hat * wdy).abs().mean(-1))[:, None])
    assert ((_t(t["dx"]) - dx).abs() <= 4 * rel * terms + abs_).all(), "dx"
    dw_terms = (dy * x_hat).abs()
    assert ((_t(t["dw"]) - (dy * x_hat).sum(0)).abs() <= 4 * rel * dw_terms.sum(0) + abs_).all(), "dw"
    parts = torch.stack([(dy * x_hat)[p::progs].sum(0) for p in range(progs)])
    part_terms = torch.stack([dw_terms[p::progs].sum(0) for p in range(progs)])
    assert ((_t(t["dw_part"]) - parts).abs() <= 4e-5 * part_terms + 1e-30).all(), "dw partials"
    assert_close(_t(t["rstd"]), rstd, torch.float32, "rstd")
    scale = (x_hat * wdy).abs().mean(-1)  # c1: a mean of signed terms, relative to their sizes
    assert ((_t(t["c1"]) - c1).abs() <= 1e-5 * scale + 1e-30).all(), "c1"
    for k, v in (("dx", dx), ("c1", c1), ("rstd", rstd)):  # the trace's own reference agrees
        torch.testing.assert_close(_t(t["reference"][k]), v, rtol=1e-12, atol=1e-12)
    assert t["error"]["within_tolerance"]


def test_values_are_the_librarys_backward(case):
    """The library's backward, walking rows in blocks with the same programs, gives the same
    dx and dw bit for bit: the trace runs its code, not a copy."""
    ((m, n, block, progs), dt), t = case
    dtype = DTYPES[dt]
    x, w, dy = (_t(t[k]).to(dtype).to(DEV) for k in ("x", "weight", "dy"))
    rstd = _t(t["rstd"]).float().to(DEV)
    cfg = tables.Config(block_m=1, block_n=block, num_warps=1, one_pass=False)
    bwd = plan.BwdPlan(dy, None, x, w, rstd, 0.0, dtype, None, True, config=cfg, programs=progs)
    dx, _, dw = bwd(dy, None, x, w, rstd)
    assert torch.equal(dx.cpu(), _t(t["dx"]).to(dtype)) and torch.equal(dw.cpu(), _t(t["dw"]).to(dtype))
    x.requires_grad_(True)
    w.requires_grad_(True)
    R.rms_norm(x, w, eps=1e-5).backward(dy)  # the default layout: within the dtype's tolerance
    terms = _t(t["reference"]["dx"]).abs() + _t(t["reference"]["dx"]).pow(2).mean().sqrt()
    rel, abs_ = TOLERANCE[dtype]
    if n > 1:  # (at N = 1 dx is all cancellation: test_gradients_against_float64 bounds it)
        assert ((x.grad.cpu().double() - _t(t["dx"])).abs() <= 2 * rel * terms + abs_).all()


def test_partials_and_reduction(case):
    ((m, n, block, progs), dt), t = case
    run, blk = _t(t["partial"]["running"]), _t(t["partial"]["block"])
    assert run.shape == blk.shape == (m, t["kernel"]["num_blocks"])
    # c1 = (the running sum after the last block) * rstd / N, in fp32, as the kernel computes it
    c1 = (run[:, -1].float() * _t(t["rstd"]).float()) / n
    assert torch.equal(c1.double(), _t(t["c1"]))
    ref = _t(t["reference"]["partial"]["block"])
    assert ((blk - ref).abs() <= 1e-5 * ref.abs().clamp_min(1) + 1e-6).all()
    after = _t(t["dw_after_row"])
    for p, prog in enumerate(t["programs"]):
        assert prog["rows"] == list(range(p, m, progs))
        assert torch.equal(after[prog["rows"][-1]], _t(t["dw_part"][p]))  # a program's last row
    for k in ("dx", "dw", "dw_part", "c1", "dw_after_row"):  # poisoned with NaN: all written
        assert not _t(t[k]).isnan().any(), k


def test_schedule_and_bytes(case):
    ((m, n, block, progs), dt), t = case
    es = DTYPES[dt].itemsize
    seen = {k: torch.zeros(m, n, dtype=torch.int64) for k in ("c1_sum", "dx")}
    order = []
    for s in t["steps"]:
        if s["pass"] in seen:
            b = t["blocks"][s["block"]]
            seen[s["pass"]][s["row"], b["start"]:b["end"]] += 1
            assert s["row"] % progs == s["program"]
        if s["row"] is not None and (not order or order[-1] != s["row"]):
            order.append(s["row"])
    assert all((v == 1).all() for v in seen.values())
    assert order == [r for p in range(progs) for r in range(p, m, progs)]  # programs in launch order
    assert [s["pass"] for s in t["steps"][-2:]] == ["reduce", "dw"]
    total = 0
    for s in t["steps"]:
        total += s["d_loaded"]
        assert s["loaded"] == total
    assert t["cost"]["total"]["loaded"] == total >= t["cost"]["minimum"]["loaded"]
    stored_dx = sum(s["d_stored"] for s in t["steps"] if s["pass"] == "dx")
    assert stored_dx == m * n * (es + 4)  # dx, and the fp32 partial row it updates
    assert sum(s["d_stored"] for s in t["steps"] if s["pass"] == "dw") == n * es
    assert t["source"]["missing"] == [] and t["reduce_source"]["missing"] == []


def test_edited_inputs_and_determinism():
    base = trace_backward(2, 5, 2, 1e-6, "bf16", 4, 2)
    dy = base["dy"]
    dy[1][3] = 2.5
    t = trace_backward(2, 5, 2, 1e-6, "bf16", 4, 2, dy=dy, weight=[-3, 1, 1, 1, 1])
    assert t["dy"][1][3] == 2.5 and t["weight"][0] == -3 and t["x"] == base["x"]
    assert t["dx"][0] != base["dx"][0]
    again = trace_backward(2, 5, 2, 1e-6, "bf16", 4, 2, dy=dy, weight=[-3, 1, 1, 1, 1])
    assert again["dw"] == t["dw"] and again["dx"] == t["dx"]  # no atomics: the same bits


@pytest.mark.parametrize("params,message", [
    ({"programs": 0}, "programs must be from 1 to 4"),
    ({"programs": 5}, "programs must be from 1 to 4"),
    ({"dy": [1.0] * 3}, "dy must be a list of 40 numbers"),
    ({"dy": [[1.0] * 10] * 3}, "dy has 3 rows, expected 4"),
    ({"dy": [[1.0] * 10, [1.0] * 9 + [float("nan")], [1.0] * 10, [1.0] * 10]}, "dy[1][9] is nan"),
    ({"norm": "layer"}, "unknown parameter 'norm'"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ValueError) as e:
        trace_backward_request(params)
    assert message in str(e.value)


def test_defaults():
    assert set(DEFAULTS) == {"rows", "n", "block_size", "eps", "dtype", "seed", "programs"}

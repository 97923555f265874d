"""The visualizer's trace: its numbers are the kernels' numbers, its schedule is the launch's."""

import json
import math
import threading

import pytest
import torch
import torch.nn.functional as F

import rmsnorm_triton as R
from rmsnorm_triton import plan, tables
from rmsnorm_triton.layernorm import layer_norm
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import TOLERANCE, assert_close
from rmsnorm_triton.trace import DTYPES, MAX_BLOCKS, block_choices, trace

# (rows, n, block): one-pass (n <= block), looping with and without a ragged tail, odd sizes.
DEV = "cpu" if R.interpreted() else "cuda"  # where trace() runs the kernels
SHAPES = [(1, 1, 1), (3, 10, 4), (2, 10, 16), (2, 127, 16), (4, 33, 4), (2, 256, 256), (1, 256, 16)]
CASES = [(s, dt, norm) for s in SHAPES for dt in DTYPES for norm in ("rms", "layer")
         if dt == "fp32" or s[1] in (10, 127)]


def _t(v, dtype=torch.float64):
    return torch.tensor(v, dtype=dtype)


def assert_ln_close(y, ref, x, w, dtype, what):
    """LayerNorm's y = (x - mean) * rstd * w: an fp32 mean off by ~u * |mean| moves every y by
    that much times rstd * |w|, however small y is; the bound carries that absolute term."""
    x, w = x.double(), w.double()
    mean, std = x.mean(-1, keepdim=True), x.std(-1, unbiased=False, keepdim=True)
    rel = TOLERANCE[dtype][0]
    bound = rel * (ref.abs() + w.abs() * (1 + mean.abs() / (std + 1e-30))) + TOLERANCE[dtype][1]
    err = (y.double() - ref.double()).abs()
    assert (err <= bound).all(), f"{what}: error {(err / bound).max():.3g}x the bound"


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def case(request):
    (m, n, block), dt, norm = request.param
    w = (1 + 0.5 * torch.randn(n, generator=torch.Generator().manual_seed(7))).tolist()
    return request.param, trace(m, n, block, 1e-5, dt, seed=3, weight=w, norm=norm)


def test_values_are_the_kernels(case):
    ((m, n, block), dt, norm), t = case
    dtype = DTYPES[dt]
    x, w = _t(t["x"]).to(dtype).to(DEV), _t(t["weight"]).to(dtype).to(DEV)
    y = _t(t["y"]).to(DEV)
    # JSON carries the kernel's values exactly: the same launch outside trace mode agrees bit
    # for bit, and the library's default path (other block sizes) within the dtype's tolerance.
    if norm == "rms":
        cfg = tables.Config(block_m=1, block_n=block, num_warps=1, one_pass=n <= block)
        y_k, _, rstd_k = plan.FwdPlan(x, w, None, 1e-5, 0.0, "llama", dtype, dtype, True,
                                      config=cfg)(x, w, None)
        assert torch.equal(y.to(dtype), y_k)
        assert torch.equal(_t(t["rstd"]), rstd_k.double().cpu())
        assert_close(y, R.rms_norm(x, w, eps=1e-5), dtype, "trace y vs rms_norm")
        ref, _ = rms_norm_ref(x, w, eps=1e-5)
        keys = ("sum_sq", "mean_sq", "rms", "rstd")
    else:
        y_k, mean_k, rstd_k = layer_norm(x, w, None, 1e-5, block_n=block, trace=True)[:3]
        assert torch.equal(y.to(dtype), y_k)
        assert torch.equal(_t(t["mean"]), mean_k.double().cpu())
        assert torch.equal(_t(t["rstd"]), rstd_k.double().cpu())
        assert_ln_close(y, F.layer_norm(x.float(), (n,), w.float(), None, 1e-5), x, w, dtype,
                        "trace y vs torch layer_norm")
        ref = F.layer_norm(x.double(), (n,), w.double(), None, 1e-5)
        keys = ("sum", "mean", "sum_sq_dev", "var", "rstd")
    check = assert_close if norm == "rms" else lambda a, b, d, what: assert_ln_close(a, b, x, w, d, what)
    x, w, y, ref = x.cpu(), w.cpu(), y.cpu(), ref.cpu()
    check(y, ref, dtype, "trace y vs float64")
    check(y, _t(t["reference"]["y"]), dtype, "trace y vs its own float64 reference")
    torch.testing.assert_close(_t(t["reference"]["y"]), ref, rtol=1e-12, atol=1e-12)
    for k in keys:  # statistics in fp32 against float64
        if k == "sum" or k == "mean":  # sums of signed terms: relative to the sum of |x|
            scale = _t(t["x"]).abs().sum(-1) / (n if k == "mean" else 1)
            assert ((_t(t[k]) - _t(t["reference"][k])).abs() <= 1e-5 * scale + 1e-30).all(), k
        else:
            assert_close(_t(t[k]), _t(t["reference"][k]), torch.float32, k)


def test_partial_sums_accumulate_to_the_row_sums(case):
    ((m, n, block), dt, norm), t = case
    for key, p in t["partial"].items():
        blk, run = _t(p["block"]), _t(p["running"])
        assert blk.shape == (m, t["kernel"]["num_blocks"])
        assert torch.equal(run[:, -1], _t(t[key]))  # the kernel's running sum ends at the total
        ref = _t(t["reference"]["partial"][key])
        scale = ref.abs() if key != "sum" else _t(t["x"]).abs().sum(-1, keepdim=True)
        assert ((blk - ref).abs() <= 1e-5 * scale + 1e-30).all(), key


def test_schedule_covers_every_element_once_per_pass(case):
    ((m, n, block), dt, norm), t = case
    passes = {s["pass"] for s in t["steps"] if s["block"] is not None}
    assert passes == ({"sum_sq", "normalize"} if norm == "rms" else {"sum", "sum_sq_dev", "normalize"})
    for p in passes:
        seen = torch.zeros(m, n, dtype=torch.int64)
        for s in t["steps"]:
            if s["pass"] == p:
                assert s["program"] == s["row"]  # block_m = 1: program p owns row p
                blk = t["blocks"][s["block"]]
                seen[s["row"], blk["start"]:blk["end"]] += 1
        assert (seen == 1).all(), f"pass {p}: elements visited {seen.unique().tolist()} times"
    rows = [s["row"] for s in t["steps"]]
    assert rows == sorted(rows)  # programs in launch order, each finishing before the next
    assert [p["row"] for p in t["programs"]] == list(range(m))


def test_tail_block_masks(case):
    ((m, n, block), dt, norm), t = case
    blocks = t["blocks"]
    assert len(blocks) == (1 if n <= block else math.ceil(n / block))
    for b, blk in enumerate(blocks):
        assert len(blk["mask"]) == block
        assert blk["mask"] == [b * block + i < n for i in range(block)]
        assert sum(blk["mask"]) == blk["end"] - blk["start"]
    assert blocks[-1]["end"] == n and (n % block == 0) == all(blocks[-1]["mask"])


def test_costs_add_up(case):
    ((m, n, block), dt, norm), t = case
    steps, es = t["steps"], DTYPES[dt].itemsize
    for key in ("loaded", "stored", "flops"):
        total = 0
        for s in steps:
            total += s["d_" + key]
            assert s[key] == total
        assert t["cost"][norm]["total"][key] == total >= t["cost"][norm]["minimum"][key]
    assert t["cost"][norm]["minimum"]["loaded"] == (m * n + n) * es
    stored_y = sum(s["d_stored"] for s in steps if s["pass"] == "normalize")
    assert stored_y == m * n * es  # masked lanes store nothing
    # every program loads w once; x once per walk over the row (walks: 1 in registers, else
    # 2 for RMSNorm, 3 for LayerNorm)
    walks = 1 if n <= block else (2 if norm == "rms" else 3)
    assert t["cost"][norm]["total"]["loaded"] == (walks + 1) * m * n * es
    flops = t["cost"][norm]
    assert (flops["total"]["flops"] == flops["minimum"]["flops"]) == (n % block == 0)  # masked lanes


def test_source_lines_found(case):
    ((m, n, block), dt, norm), t = case
    src = t["source"]
    assert src["missing"] == []
    for p in {s["pass"] for s in t["steps"]}:
        lines = src["step_lines"][p]
        assert lines and all(0 <= ln - src["first_line"] < len(src["lines"]) for ln in lines)
    # the library's own walk: one-pass rows' code, or the block loop that long rows take
    fwd = ("one_pass_rows" if n <= block else "loop_row") if norm == "rms" else "layer_norm_fwd"
    assert src["name"] == fwd and f"def {fwd}(" in src["lines"][1]
    # each step line is one of the statements the step executes, in the branch the launch takes
    text = [src["lines"][ln - src["first_line"]].strip() for lns in src["step_lines"].values()
            for ln in lns]
    starts = ("h =", "ss", "block_sum", "ms, rstd", "tl.store(RSTD", "tl.store(MEAN", "w =",
              "y =", "tl.store(Y", "x =", "s =", "s +=", "d =", "sd", "mean, _", "var, rstd",
              "block_sd")
    assert all(t.startswith(starts) for t in text), text
    assert not any("cols[None, :], mask=col_ok[None, :]" in t for t in text), "W_FIRST's load"
    assert len(set(text)) == len(text) or norm == "layer", "a line named twice"


def test_source_walk_waits_for_interpreted_launches():
    """CPython 3.11 breaks (SystemError) when two threads convert syntax trees at once, and an
    interpreted launch converts its kernel's: the trace's source walk takes turns with launches."""
    from rmsnorm_triton import _triton
    from rmsnorm_triton import trace as T
    from rmsnorm_triton.kernels.loop import loop_row

    done = threading.Event()
    walker = threading.Thread(target=lambda: (T._source(loop_row, T._RMS_STEPS[False],
                                                        T._RMS_CONSTS), done.set()))
    with _triton.INTERPRETER_LOCK:
        walker.start()
        assert not done.wait(0.5), "the source walk ran while a launch held the lock"
    walker.join(30)
    assert done.is_set()


def test_json_ready_with_non_finite_values():
    t = trace(2, 3, 4, 0.0, "fp32", 0, x=[[0.0] * 3, [1.0, 2.0, 3.0]])
    json.dumps(t, allow_nan=False)  # raises on a bare NaN or inf
    assert t["rstd"][0] == "inf" and t["y"][0] == ["nan"] * 3
    assert t["error"]["within_tolerance"] is True  # NaN where the reference has NaN


def test_inputs_are_rounded_to_the_dtype():
    x = [[0.1, -1 / 3, 1e-3]]
    for dt, dtype in DTYPES.items():
        t = trace(1, 3, 4, 1e-6, dt, 0, x=x)
        assert t["x"] == torch.tensor(x).to(dtype).double().tolist()
        flat = trace(1, 3, 4, 1e-6, dt, 0, x=x[0])
        assert flat["y"] == t["y"]


def test_block_choices():
    for n in range(1, 257):
        c = block_choices(n)
        assert c and all(b & (b - 1) == 0 and b <= 256 for b in c)
        assert c[-1] >= n > c[-1] // 2  # the largest holds the row, no larger offered
        assert all(-(-n // b) <= MAX_BLOCKS for b in c)
        assert c == [c[0] * 2**i for i in range(len(c))]


BAD = [
    (dict(rows=0), "rows"), (dict(rows=65), "rows"), (dict(rows=2.5), "rows"), (dict(rows=True), "rows"),
    (dict(n=0), "n must"), (dict(n=257), "n must"), (dict(block_size=3), "block_size"),
    (dict(block_size=512), "block_size"), (dict(n=256, block_size=8), "block_size"),
    (dict(eps=-1e-6), "eps"), (dict(eps=float("nan")), "eps"), (dict(eps=float("inf")), "eps"),
    (dict(eps=2.0), "eps"), (dict(eps="1e-6"), "eps"), (dict(dtype="fp64"), "dtype"),
    (dict(seed=-1), "seed"), (dict(seed=2**40), "seed"), (dict(norm="batch"), "norm"),
    (dict(x=[1.0] * 7), "x must"), (dict(x=[[1.0] * 3] * 2), "x[0]"), (dict(x=[[1.0] * 4] * 3), "x has 3 rows"),
    (dict(x=[1.0] * 7 + [float("nan")]), "x[7]"), (dict(x=[1.0] * 7 + ["a"]), "x[7]"),
    (dict(x=[1.0] * 7 + [1e7]), "x[7]"), (dict(dtype="fp16", x=[1.0] * 7 + [7e4]), "x[7]"),
    (dict(weight=[1.0] * 3), "weight must"), (dict(weight="ones"), "weight must"),
    (dict(weight=[1.0, 1.0, 1.0, float("inf")]), "weight[3]"),
]


@pytest.mark.parametrize("bad,word", BAD, ids=[str(b) for b, _ in BAD])
def test_bad_parameters_raise(bad, word):
    args = dict(rows=2, n=4, block_size=4, eps=1e-6, dtype="fp32", seed=0) | bad
    with pytest.raises(ValueError, match="^" + word.replace("[", r"\[").replace("]", r"\]")):
        trace(**args)


def test_layer_norm_kernel_against_torch():
    g = torch.Generator().manual_seed(1)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for n, block in ((1, 1), (7, 2), (100, 16), (300, 512), (4097, None)):
            x = (3 * torch.randn(5, n, generator=g) + 2).to(dtype)
            w, b = torch.randn(n, generator=g).to(dtype), torch.randn(n, generator=g).to(dtype)
            y = layer_norm(x.to(DEV), w.to(DEV), b.to(DEV), 1e-5, block_n=block).cpu()
            assert y.dtype == dtype and y.shape == x.shape
            ref = F.layer_norm(x.double(), (n,), w.double(), b.double(), 1e-5)
            assert_ln_close(y, ref, x, w, dtype, f"layer_norm {dtype} n={n} vs float64")
            assert_ln_close(y, F.layer_norm(x.float(), (n,), w.float(), b.float(), 1e-5), x, w,
                            dtype, f"layer_norm {dtype} n={n} vs torch")
    x = torch.randn(3, 9, generator=g)  # weight and bias read as they hold, strided or not
    w, b = torch.randn(18, generator=g)[::2], torch.randn(1, generator=g).expand(9)
    ref = F.layer_norm(x.double(), (9,), w.double(), b.double(), 1e-5)
    y = layer_norm(x.to(DEV), w.to(DEV), b.to(DEV).expand(9), 1e-5).cpu()
    assert_ln_close(y, ref, x, w, torch.float32, "layer_norm, strided weight and bias")
    with pytest.raises(ValueError, match="weight has shape"):
        layer_norm(torch.ones(2, 4, device=DEV), torch.ones(3, device=DEV))
    with pytest.raises(ValueError, match="power of two"):
        layer_norm(torch.ones(2, 4, device=DEV), block_n=3)

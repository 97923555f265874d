"""rms_norm_fp8 (issue 24): q and the scales bit for bit against the unfused pipeline.

The unfused pipeline is the library's rms_norm (same casting, y in x's dtype) followed by
reference.quantize_fp8_ref in torch. Both take 1 / s rounded once and multiply, so they agree
bit for bit; NaN is compared by position (its sign bit is not part of the claim).
On the CPU the kernel's FP8 bits come from kernels/quant.fp8_bits (Triton's interpreter
misrounds fp32 -> fp8), on CUDA from the GPU's own conversion: the same tests check both.
"""

import pytest
import torch
import triton
import triton.language as tl

from conftest import LONG_FWD, poisoned_empty, randn
from rmsnorm_triton import rms_norm
from rmsnorm_triton.fp8 import rms_norm_fp8
from rmsnorm_triton.kernels.quant import fp8_bits
from test_launch import _arg, fake_gpu  # noqa: F401 - the simulated compiled path
from rmsnorm_triton.reference import quantize_fp8_ref

E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2


def same_fp8(q, ref, what="q"):
    """Equal bits where ref is a number, NaN exactly where ref is NaN."""
    assert q.dtype == ref.dtype and q.shape == ref.shape, f"{what}: {q.dtype} {tuple(q.shape)}"
    q, ref = q.cpu(), ref.cpu()
    nan_q, nan_r = q.float().isnan(), ref.float().isnan()
    assert torch.equal(nan_q, nan_r), f"{what}: NaN at {int((nan_q != nan_r).sum())} other places"
    diff = (q.view(torch.uint8) != ref.view(torch.uint8)) & ~nan_r
    assert not diff.any(), f"{what}: {int(diff.sum())} of {q.numel()} elements differ"


def same_scales(s, ref):
    assert s.shape == ref.shape, f"scales: shape {tuple(s.shape)}, expected {tuple(ref.shape)}"
    assert torch.equal(s.cpu().isnan(), ref.cpu().isnan())
    ok = (s.cpu() == ref.cpu()) | ref.cpu().isnan()
    assert ok.all(), f"scales: {int((~ok).sum())} of {s.numel()} differ"


def check(x, w, scale="token", residual=None, **kw):
    """Runs rms_norm_fp8 under poisoned allocations and compares with the unfused pipeline."""
    casting, offset = kw.get("casting", "llama"), kw.get("offset", 0.0)
    y = rms_norm(x, w, residual=residual, casting=casting, offset=offset)
    y, h = y if residual is not None else (y, None)
    quant = {k: kw[k] for k in ("group_size", "ue8m0", "fp8_dtype", "scale_ub") if k in kw}
    q_ref, s_ref = quantize_fp8_ref(y, scale, **quant)
    if kw.get("scale_layout") == "deepgemm":  # (M, N / G) over the flattened rows
        s_ref = s_ref.reshape(-1, s_ref.shape[-1])
    with poisoned_empty():
        out = rms_norm_fp8(x, w, residual=residual, scale=scale, **kw)
    same_fp8(out[0], q_ref)
    if isinstance(scale, torch.Tensor):
        assert out[1] is scale
    else:
        same_scales(out[1], s_ref)
    if residual is not None:
        assert torch.equal(out[2], h)
    return out


STATIC = "static"
MODES = {  # name: (scale argument, extra keywords)
    "static": (STATIC, {}),
    "token": ("token", {}),
    "token ub": ("token", {"scale_ub": 1.5}),
    "group": ("group", {}),
    "group64 ue8m0": ("group", {"group_size": 64, "ue8m0": True}),
}


def _scale(name, device):
    return torch.tensor([0.0123], device=device) if name == STATIC else name


@pytest.mark.parametrize("fp8_dtype", [E4M3, E5M2], ids=["e4m3", "e5m2"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32],
                         ids=["bf16", "fp16", "fp32"])
def test_matches_unfused(device, gen, dtype, mode, fp8_dtype):
    scale, kw = MODES[mode]
    for shape in [(7, 256), (3, 2, 384)] + ([(5, 127), (1, 1), (4, 1000)]
                                            if scale != "group" else []):
        x = randn(shape, dtype, device, gen, scale=3.0)
        w = randn(shape[-1:], dtype, device, gen)
        check(x, w, _scale(scale, device), fp8_dtype=fp8_dtype, **kw)


@pytest.mark.parametrize("casting,offset", [("llama", 0.0), ("gemma", 1.0), ("none", 0.5)])
@pytest.mark.parametrize("mode", ["static", "token", "group"])
def test_residual_casting_no_weight(device, gen, casting, offset, mode):
    scale, kw = MODES[mode]
    x = randn((6, 512), torch.bfloat16, device, gen)
    r = randn((6, 512), torch.bfloat16, device, gen)
    w = randn((512,), torch.float32, device, gen)
    check(x, w, _scale(scale, device), residual=r, casting=casting, offset=offset, **kw)
    check(x, None, _scale(scale, device), residual=r, casting=casting, offset=offset, **kw)


def test_inputs_that_need_grad(device, gen):
    """Inference only: inputs that require grad give the same bits, and outputs with none."""
    x = randn((4, 256), torch.bfloat16, device, gen)
    r = randn((4, 256), torch.bfloat16, device, gen)
    w = randn((256,), torch.bfloat16, device, gen)
    plain = rms_norm_fp8(x, w, residual=r)
    grad = rms_norm_fp8(x.requires_grad_(), w.requires_grad_(), residual=r.requires_grad_())
    for a, b in zip(plain, grad):
        assert not b.requires_grad and torch.equal(a.view(torch.uint8) if a.element_size() == 1
                                                   else a, b.view(torch.uint8)
                                                   if b.element_size() == 1 else b)


def test_inplace_residual(device, gen):
    x = randn((5, 256), torch.bfloat16, device, gen)
    r = randn((5, 256), torch.bfloat16, device, gen)
    w = randn((256,), torch.bfloat16, device, gen)
    y, h = rms_norm(x, w, residual=r)
    q_ref, s_ref = quantize_fp8_ref(y, "group")
    r2 = r.clone()
    q, s, h2 = rms_norm_fp8(x, w, residual=r2, scale="group", inplace_residual=True)
    assert h2 is r2 and torch.equal(r2, h)
    same_fp8(q, q_ref)
    same_scales(s, s_ref)


def test_special_rows(device, gen):
    """Zeros (the smallest scale, zeros out), NaN and inf (NaN scale and row), huge values."""
    x = randn((6, 256), torch.float32, device, gen)
    w = randn((256,), torch.float32, device, gen)
    x[1] = 0.0
    x[2, 7] = float("nan")
    x[3, 9] = float("inf")
    x[4] *= 1e30
    x[5, :128] = 0.0  # a zero group beside a live one
    for scale in ("token", "group", torch.tensor([1e-4], device=device)):
        q, s = check(x, w, scale)
        assert not q[1].float().any() and not q[1].float().isnan().any()
        assert q[2].float().isnan().all()
    q, _ = check(x, w, torch.tensor([1e-4], device=device))  # y / s far past 448: saturated
    assert q[[0, 4, 5]].float().abs().max().item() == 448.0


def test_saturation_e5m2(device, gen):
    x = randn((4, 128), torch.bfloat16, device, gen, scale=10.0)
    w = randn((128,), torch.bfloat16, device, gen)
    q, _ = check(x, w, torch.tensor([1e-6], device=device), fp8_dtype=E5M2)
    assert q.float().abs().max().item() == 57344.0


def test_strided_rows(device, gen):
    base = randn((6, 640), torch.float16, device, gen)
    x = base[:, 64:576]  # rows 640 apart
    w = randn((512,), torch.float16, device, gen)
    r = randn((6, 1024), torch.float16, device, gen)[:, :512]
    for scale in ("token", "group"):
        check(x, w, scale, residual=r)


@pytest.mark.parametrize("mode", ["static", "token", "group"])
def test_long_rows_block_loop(device, gen, mode):
    """Rows past the one-pass limit: the block loop (per token: a walk more for amax)."""
    n = LONG_FWD - 1 if mode == "group" else LONG_FWD  # a multiple of the group, and an odd one
    x = randn((2, n), torch.bfloat16, device, gen)
    w = randn((n,), torch.bfloat16, device, gen)
    x[1, 5] = float("nan") if mode == "token" else x[1, 5]
    check(x, w, _scale(mode, device))


def test_ue8m0_powers_of_two(device, gen):
    x = randn((9, 512), torch.bfloat16, device, gen)
    w = randn((512,), torch.bfloat16, device, gen)
    _, s = check(x, w, "group", ue8m0=True)
    m, e = torch.frexp(s.cpu())
    assert (m == 0.5).all(), "UE8M0 scales are powers of two"
    _, s = check(x, w, "token", ue8m0=True)


@pytest.mark.parametrize("m", [1, 5, 8])
def test_deepgemm_layout(device, gen, m):
    x = randn((m, 384), torch.bfloat16, device, gen)
    w = randn((384,), torch.bfloat16, device, gen)
    q, s = check(x, w, "group", scale_layout="deepgemm", ue8m0=True)
    pad = -(-m // 4) * 4
    assert s.shape == (m, 3) and s.stride() == (1, pad)
    q2, s2 = rms_norm_fp8(x, w, scale="group", ue8m0=True)
    assert torch.equal(s, s2) and torch.equal(q.view(torch.uint8), q2.view(torch.uint8))


def test_shapes_and_bounds(device, gen):
    """No rows; a 3-D x with DeepGEMM's layout ((M, N / G) over the flattened rows); scale_ub
    per group; a group as long as the row."""
    x = randn((0, 256), torch.bfloat16, device, gen)
    w = randn((256,), torch.bfloat16, device, gen)
    for scale, shape in (("token", (0, 1)), ("group", (0, 2))):
        q, s = rms_norm_fp8(x, w, scale=scale)
        assert q.shape == (0, 256) and q.dtype == E4M3 and s.shape == shape
    x = randn((2, 3, 256), torch.bfloat16, device, gen, scale=4.0)
    q, s = check(x, w, "group", scale_layout="deepgemm")
    assert s.shape == (6, 2) and s.stride() == (1, 8) and q.shape == x.shape
    check(x, w, "group", scale_ub=0.5)
    check(x, w, "group", group_size=256, ue8m0=True)
    check(x, None, "group", group_size=16, fp8_dtype=E5M2)


def test_reciprocal_against_division(device, gen):
    """q = y * (1/s) (ours, vLLM's static) against y / s (vLLM's per token): at most 1 FP8 ulp,
    in few elements. The two fp32 values differ by at most an fp32 ulp, which moves the FP8
    rounding only when y / s lies within it of a rounding midpoint."""
    x = randn((64, 1024), torch.bfloat16, device, gen)
    w = randn((1024,), torch.bfloat16, device, gen)
    q, s = rms_norm_fp8(x, w)
    y = rms_norm(x, w).float()
    by_div = torch.clamp(y / s, -448, 448).to(E4M3)
    a, b = q.cpu().view(torch.uint8).int(), by_div.cpu().view(torch.uint8).int()
    assert (a - b).abs().max().item() <= 1  # same sign: codes are monotonic in |q|
    share = (a != b).float().mean().item()
    assert share < 1e-3, f"{share:.2%} of elements differ by an ulp"


# ---- the software encoder (the interpreter's FP8 bits) against torch ---------------------------
@triton.jit
def encode(V, B, n, Q: tl.constexpr):
    i = tl.program_id(0) * 1024 + tl.arange(0, 1024)
    tl.store(B + i, fp8_bits(tl.load(V + i, mask=i < n, other=0.0), Q), mask=i < n)


def test_fp8_bits_every_boundary(device):
    """fp8_bits on every FP8 value, the midpoints between neighbours and one fp32 ulp either side
    (both formats, both signs, subnormals, zero, NaN) gives torch's bits."""
    for fp8, ty in ((E4M3, tl.float8e4nv), (E5M2, tl.float8e5)):
        vals = torch.arange(256, dtype=torch.uint8).view(fp8).float()
        lim = torch.finfo(fp8).max
        vals = vals[vals.isfinite() & (vals.abs() <= lim)].unique()
        mids = (vals[1:].double() + vals[:-1].double()) / 2
        mids = mids[(mids.abs() < lim)].float()
        near = torch.cat([mids, mids.nextafter(mids + 1), mids.nextafter(mids - 1)])
        v = torch.cat([vals, near, -near, torch.tensor([0.0, -0.0, float("nan")])]).to(device)
        b = torch.empty(v.shape, dtype=torch.uint8, device=device)
        encode[(triton.cdiv(v.numel(), 1024),)](v, b, v.numel(), ty)
        same_fp8(b.view(fp8), v.cpu().to(fp8), what=str(fp8))


# ---- bad arguments ----------------------------------------------------------------------------
def test_errors(device, gen):
    x = randn((4, 192), torch.bfloat16, device, gen)
    w = randn((192,), torch.bfloat16, device, gen)
    cases = [
        (dict(scale="group"), ValueError, "group_size is 128 but the last dim of x is 192"),
        (dict(scale="group", group_size=48), ValueError, "group_size is 48, expected a power"),
        (dict(scale="group", group_size=2048), ValueError, "group_size is 2048, expected a"),
        (dict(scale="tensor"), ValueError, "scale is 'tensor', expected"),
        (dict(scale=[0.5]), ValueError, r"scale is \[0.5\], expected"),
        (dict(scale=torch.tensor([1.0, 2.0], device=device)), ValueError,
         r"scale is a tensor of shape \(2,\)"),
        (dict(scale=torch.tensor([1.0], dtype=torch.float16, device=device)), ValueError,
         "dtype torch.float16, expected one float32"),
        (dict(scale=torch.tensor([1.0], device="meta")), ValueError, "scale is on meta"),
        (dict(scale_layout="col"), ValueError, "scale_layout is 'col'"),
        (dict(scale_layout="deepgemm"), ValueError, "scale_layout is 'deepgemm' with scale"),
        (dict(fp8_dtype=torch.int8), TypeError, "fp8_dtype is torch.int8"),
        (dict(scale=torch.tensor([1.0], device=device), ue8m0=True), ValueError, "ue8m0 was"),
        (dict(scale_ub=-1.0), ValueError, "scale_ub must be"),
        (dict(inplace_residual=True), ValueError, "inplace_residual=True needs a residual"),
        (dict(residual=x, inplace_residual=True), ValueError, "share memory"),
        (dict(residual=x[:, :96]), ValueError, "residual has shape"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            rms_norm_fp8(x, w, **kw)
    with pytest.raises(TypeError, match="x has dtype torch.float64"):
        rms_norm_fp8(x.double(), None)


# ---- torch.library and torch.compile ----------------------------------------------------------
OPS = torch.ops.rmsnorm_triton


@pytest.mark.parametrize("mode", ["static", "token", "group"])
def test_opcheck(device, gen, mode):
    x = randn((2, 3, 256), torch.bfloat16, device, gen)
    w = randn((256,), torch.bfloat16, device, gen)
    r = randn((2, 3, 256), torch.bfloat16, device, gen)
    static = torch.tensor([0.01], device=device) if mode == "static" else None
    layout = "deepgemm" if mode == "group" else "row"
    args = (x, w, r, static, 1e-6, 0.0, "llama", mode, 128, mode == "group", layout, E4M3, None)
    torch.library.opcheck(OPS.fwd_fp8.default, args)
    torch.library.opcheck(OPS.fwd_fp8_.default, (x, w, r.clone()) + args[3:])


def test_compile_fullgraph(device, gen):
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    x = randn((8, 256), torch.bfloat16, device, gen)
    r = randn((8, 256), torch.bfloat16, device, gen)
    w = randn((256,), torch.bfloat16, device, gen)

    def step(x, r, w):
        q, s, h = rms_norm_fp8(x, w, residual=r, scale="group", ue8m0=True)
        q2, s2 = rms_norm_fp8(h, w)
        return q, s, h, q2, s2

    cnt = CompileCounterWithBackend("inductor")
    out = torch.compile(step, backend=cnt, fullgraph=True)(x, r, w)
    assert cnt.frame_count == 1
    for a, b in zip(out, step(x, r, w)):
        assert torch.equal(a.view(torch.uint8) if a.element_size() == 1 else a,
                           b.view(torch.uint8) if b.element_size() == 1 else b)

    def inplace(x, r, w):
        return rms_norm_fp8(x, w, residual=r, inplace_residual=True)[:2]

    r1, r2 = r.clone(), r.clone()
    q, s = torch.compile(inplace, fullgraph=True)(x, r1, w)
    q_ref, s_ref = inplace(x, r2, w)
    assert torch.equal(r1, r2) and torch.equal(s, s_ref)
    assert torch.equal(q.view(torch.uint8), q_ref.view(torch.uint8))
    torch._dynamo.reset()


# ---- the eager fast path ------------------------------------------------------------------------
def test_a_repeated_call_replays_its_plan(fake_gpu, monkeypatch):  # noqa: F811
    """A signature seen before skips the checks and replays its launch plan (plan.PLANS), with
    this call's tensors and fresh q and scales; the compiled path is simulated on the CPU (as
    test_eager runs rms_norm's), the launches recorded."""
    from rmsnorm_triton import fp8, plan
    from rmsnorm_triton.plan import PLANS

    x, r, w = torch.randn(6, 256), torch.randn(6, 256), torch.randn(256)
    static = torch.tensor([0.5])
    for scale, kw in (("group", {"ue8m0": True}), ("token", {}), (static, {})):
        PLANS.clear()
        out1 = rms_norm_fp8(x, w, residual=r, scale=scale, **kw)
        assert len(PLANS) == 1
        with monkeypatch.context() as mp:
            def refuse(*a, **k):
                raise AssertionError("the replay ran the checks")

            mp.setattr(fp8, "_check", refuse)
            mp.setattr(plan, "rows_view", refuse)
            x2, r2 = torch.randn(6, 256), torch.randn(6, 256)
            q, s, h = rms_norm_fp8(x2, w, residual=r2, scale=scale, **kw)
        call = [c for k in fake_gpu for c in k.calls][-1]
        assert _arg(call, "X") == x2.data_ptr() and _arg(call, "R") == r2.data_ptr()
        assert _arg(call, "Y") == q.data_ptr() and _arg(call, "H") == h.data_ptr()
        assert _arg(call, "SCALE") == s.data_ptr()
        assert (s is static) == (scale is static)
        assert q.data_ptr() != out1[0].data_ptr() and q.dtype == E4M3
        assert _arg(call, "QUANT") == {"group": 3, "token": 2}.get(scale, 1)
    q, s, h = rms_norm_fp8(x, w, residual=r, inplace_residual=True)
    assert h is r  # in place: h is the residual; overlapping tensors refused on a replay too
    rms_norm_fp8(x, w, residual=r, inplace_residual=True)
    with pytest.raises(ValueError, match="share memory"):
        rms_norm_fp8(r, w, residual=r, inplace_residual=True)


# ---- the bench's FP8 cells ----------------------------------------------------------------------
def test_bench_fp8_cells(tmp_path):
    """`rmsnorm-triton bench` runs and checks the FP8 cells (tiny; the interpreter on a CPU),
    and its check catches a wrong q."""
    from rmsnorm_triton.bench import fp8 as B
    from rmsnorm_triton.bench.cases import WRONG_AT, check, make_inputs, reference
    from rmsnorm_triton.bench.harness import main
    from rmsnorm_triton.bench.records import read

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    rc = main(["--device", dev, "--ops", "fp8_static,fp8_group_residual,fp8_latency",
               "--dtypes", "bf16", "--sizes", "256", "--mn", "2**10", "--latency-m", "2",
               "--latency-n", "256", "--providers", "rmsnorm_triton,fp8_unfused",
               "--out", str(tmp_path / "rows.csv"), "--quiet", "--rep-ms", "2"])
    assert rc == 0
    recs = [r for r in read(tmp_path / "rows.csv") if r["op"].startswith("fp8")]
    assert len(recs) == (8 if dev == "cuda" else 6) and all(r["status"] == "ok" for r in recs)
    assert recs[0]["bytes"] == B.min_bytes("fp8_static", 4, 256, torch.bfloat16) == \
        2 * (4 * 256 + 256) + 4 * 256 + 4
    t = make_inputs("fp8_token", 4, 256, torch.bfloat16, dev, 0)
    q, s = rms_norm_fp8(t["x"], t["w"])
    assert check("fp8_token", (q, s), reference("fp8_token", t), t) <= 1.0
    bad = q.float()
    bad[1, 3] = -2 * bad[1, 3] + 1
    assert check("fp8_token", (bad.to(q.dtype), s), reference("fp8_token", t), t) > WRONG_AT

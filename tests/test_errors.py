"""Bad input raises at once, with a message naming the argument, the value and what was expected
(issue 2). Nothing here launches a kernel except where a check must let a good call through."""

import re

import pytest
import torch

import rmsnorm_triton
from conftest import DEVICES, randn
from rmsnorm_triton import RMSNorm, fused_add_rms_norm_, rms_norm

FLOAT_NAMES = "float32, float16, bfloat16, float64"


def raises(exc, *fragments):
    """pytest.raises whose message must contain every fragment, in order."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


BAD_DTYPES = [torch.int32, torch.int64, torch.int8, torch.uint8, torch.bool, torch.complex64]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
def test_x_dtype(device, dtype):
    x = torch.ones((2, 8), device=device).to(dtype)
    with raises(TypeError, f"x has dtype {dtype}", f"expected one of {FLOAT_NAMES}"):
        rms_norm(x)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
def test_weight_and_residual_dtype(device, gen, dtype):
    x = randn((2, 8), torch.float32, device, gen)
    bad = torch.ones((8,), device=device).to(dtype)
    with raises(TypeError, f"weight has dtype {dtype}", f"expected one of {FLOAT_NAMES}"):
        rms_norm(x, bad)
    with raises(TypeError, f"residual has dtype {dtype}", "expected one of"):
        rms_norm(x, residual=torch.ones((2, 8), device=device).to(dtype))
    with raises(TypeError, f"residual has dtype {dtype}", "expected one of"):
        fused_add_rms_norm_(x, torch.ones((2, 8), device=device).to(dtype), None)


@pytest.mark.parametrize("arg", ["out_dtype", "residual_dtype"])
@pytest.mark.parametrize("dtype", [torch.int32, torch.bool, torch.complex64], ids=str)
def test_dtype_arguments(device, gen, arg, dtype):
    x = randn((2, 8), torch.float32, device, gen)
    with raises(TypeError, f"{arg} is {dtype!r}", "expected None or one of", FLOAT_NAMES):
        rms_norm(x, **{arg: dtype})


def test_not_a_tensor(device):
    with raises(TypeError, "x must be a torch.Tensor, got list"):
        rms_norm([1.0, 2.0])
    with raises(TypeError, "weight must be a torch.Tensor, got ndarray"):
        rms_norm(torch.ones(2, 3, device=device), torch.ones(3).numpy())


@pytest.mark.parametrize("wshape", [(9,), (7,), (1, 8), (8, 1), (), (0,)], ids=str)
def test_weight_shape(device, gen, wshape):
    x = randn((2, 3, 8), torch.float32, device, gen)
    w = randn(wshape, torch.float32, device, gen)
    with raises(ValueError, f"weight has shape {tuple(wshape)}", "expected (8,)"):
        rms_norm(x, w)


def test_residual_shape(device, gen):
    x = randn((2, 8), torch.float32, device, gen)
    with raises(ValueError, "residual has shape (2, 9)", "expected (2, 8)"):
        rms_norm(x, residual=randn((2, 9), torch.float32, device, gen))
    with raises(ValueError, "residual has shape (8,)", "expected (2, 8)"):
        fused_add_rms_norm_(x, randn((8,), torch.float32, device, gen), None)


def test_zero_dim_x(device):
    x = torch.tensor(1.5, device=device)
    with raises(ValueError, "x is a 0-dim tensor", "expected at least 1 dim"):
        rms_norm(x)
    with raises(ValueError, "x is a 0-dim tensor"):
        rms_norm(x, torch.ones((), device=device))


# x on one device, weight (or residual) on another. Without a second real device the "meta"
# device stands in; with CUDA, CPU against CUDA too.
OTHER = [(d, "meta") for d in DEVICES] + [("cuda", "cpu"), ("cpu", "cuda")] * (
    "cuda" in DEVICES)


@pytest.mark.parametrize("x_dev,other_dev", OTHER)
@pytest.mark.parametrize("arg", ["weight", "residual"])
def test_different_devices(gen, arg, x_dev, other_dev):
    x = torch.randn((2, 8), generator=gen).to(x_dev)
    other = torch.ones((8,) if arg == "weight" else (2, 8), device=other_dev)
    # the argument, its device, and what was expected
    pattern = (rf"{arg} is on .*{other_dev}.*(expected|but x is on)|"
               rf"(x|{arg}) is on the CPU, but this process runs Triton compiled")
    with pytest.raises((ValueError, RuntimeError), match=pattern):
        if arg == "weight":
            rms_norm(x, other)
        else:
            rms_norm(x, residual=other)


@pytest.mark.parametrize("eps", [float("nan"), float("inf"), float("-inf")])
def test_eps_values(device, gen, eps):
    x = randn((2, 8), torch.float32, device, gen)
    with raises(ValueError, "eps must be a finite number", f"got {eps!r}"):
        rms_norm(x, eps=eps)
    with raises(ValueError, "eps must be a finite number", f"got {eps!r}"):
        fused_add_rms_norm_(x, x.clone(), None, eps)


@pytest.mark.parametrize("eps", [-1e-6, -0.5])
def test_a_negative_eps_is_computed_as_torch_does(device, gen, eps):
    """torch.nn.RMSNorm accepts any finite eps (PyTorch's OpInfo samples use -0.5): rows whose
    mean square stays above -eps are normalized, the others give NaN, as torch's do."""
    x = randn((3, 8), torch.float32, device, gen)
    x[1] *= 0.1  # mean square below 0.5: NaN at eps = -0.5
    y = rms_norm(x, eps=eps)
    ref = torch.nn.functional.rms_norm(x.double(), (8,), eps=eps)
    torch.testing.assert_close(y.double(), ref, equal_nan=True, rtol=1e-6, atol=1e-6)
    assert y[1].isnan().all() == (eps == -0.5)


@pytest.mark.parametrize("eps", ["1e-6", None, True, torch.tensor(1e-6)], ids=repr)
def test_eps_types(device, gen, eps):
    x = randn((2, 8), torch.float32, device, gen)
    with raises(TypeError, "eps must be a float, got"):
        rms_norm(x, eps=eps)


@pytest.mark.parametrize("offset", [float("nan"), float("inf")])
def test_offset_values(device, gen, offset):
    x = randn((2, 8), torch.float32, device, gen)
    with raises(ValueError, "offset must be a finite number", f"got {offset!r}"):
        rms_norm(x, offset=offset)


@pytest.mark.parametrize("casting", ["Llama", "hf", "", None, 1])
def test_casting(device, gen, casting):
    x = randn((2, 8), torch.float32, device, gen)
    with raises(ValueError, f"casting is {casting!r}",
                "expected one of ['gemma', 'llama', 'none']"):
        rms_norm(x, casting=casting)
    with raises(ValueError, f"casting is {casting!r}"):
        fused_add_rms_norm_(x, x.clone(), None, casting=casting)


def test_errors_come_before_any_write(device, gen):
    x = randn((2, 8), torch.float32, device, gen)
    r = randn((2, 8), torch.float32, device, gen)
    x0, r0 = x.clone(), r.clone()
    with pytest.raises(ValueError):
        fused_add_rms_norm_(x, r, randn((7,), torch.float32, device, gen))
    assert torch.equal(x, x0) and torch.equal(r, r0)


def test_more_rows_than_32_bits_number_is_refused(device, gen):
    """Rows are numbered in 32 bits in the kernels: a longer call raises before any copy or
    launch (the inputs are expanded views: no memory behind them)."""
    from rmsnorm_triton import qk_norm_, rms_norm_fp8, rms_norm_gated
    from rmsnorm_triton.checks import MAX_ROWS

    n = 4
    w = randn((n,), torch.float32, device, gen)
    big, big16 = (randn((1, n), dt, device, gen).expand(MAX_ROWS + 1, n)
                  for dt in (torch.float32, torch.bfloat16))
    bad = f"x has shape ({MAX_ROWS + 1}, {n}): {MAX_ROWS + 1} rows"
    for call in (lambda: rms_norm(big, w), lambda: rms_norm(big, w, residual=big),
                 lambda: RMSNorm(n, device=device)(big), lambda: rms_norm_gated(big, big, w),
                 lambda: rms_norm_fp8(big16, w, scale="token")):
        with raises(ValueError, bad, f"expected at most {MAX_ROWS}", "32 bits"):
            call()
    d, hq, hk = 2, 2, 1  # heads count as rows: T (hq + hk) of them
    t = MAX_ROWS // (hq + hk) + 1
    qkv = randn((1, (hq + 2 * hk) * d), torch.float32, device, gen).expand(t, -1)
    with raises(ValueError, f"qkv has shape ({t}, {(hq + 2 * hk) * d}): {t * (hq + hk)} rows"):
        qk_norm_(qkv, w[:d], w[:d], hq, hk)
    ok = randn((1, n), torch.float32, device, gen).expand(5, n)  # a short expanded x still runs
    torch.testing.assert_close(rms_norm(ok, w), rms_norm(ok.contiguous(), w))


def test_module_errors(device, gen):
    m = RMSNorm(8, device=device)
    with raises(ValueError, "x has shape (2, 7)", "trailing dims to be normalized_shape (8,)"):
        m(randn((2, 7), torch.float32, device, gen))
    m = RMSNorm([2, 3, 8], device=device)
    with raises(ValueError, "x has shape (4, 3, 2, 8)", "normalized_shape (2, 3, 8)"):
        m(randn((4, 3, 2, 8), torch.float32, device, gen))
    with raises(ValueError, "x has shape (3, 8)", "normalized_shape (2, 3, 8)"):
        m(randn((3, 8), torch.float32, device, gen))
    x = randn((4, 2, 3, 8), torch.float32, device, gen)
    with raises(ValueError, "residual has shape (4, 6, 8)", "expected (4, 2, 3, 8)"):
        m(x, residual=randn((4, 6, 8), torch.float32, device, gen))
    with raises(ValueError, "normalized_shape is ()", "expected at least one dim"):
        RMSNorm(())(x)


def test_cpu_tensors_need_the_interpreter():
    x = torch.randn(2, 8)
    if rmsnorm_triton.interpreted():  # this process runs Triton's interpreter: CPU works
        assert rms_norm(x).shape == x.shape
    else:  # Triton runs compiled for the GPU: a clear error that says what to do
        with raises(RuntimeError, "x is on the CPU", "TRITON_INTERPRET=1"):
            rms_norm(x)


def test_an_interpreter_that_cannot_loop_is_named(monkeypatch):
    """Triton 3.6's interpreter under NumPy 2.4 fails inside every kernel (common.LOOP_ERROR,
    probed at import): the call says so before any kernel runs, and what to install."""
    from rmsnorm_triton import plan
    from rmsnorm_triton.kernels import common

    monkeypatch.setattr(common, "LOOP_ERROR", TypeError("only 0-dimensional arrays ..."))
    plan.PLANS.clear()  # (a signature seen before would skip the checks)
    x = torch.randn(2, 8)
    if rmsnorm_triton.interpreted():
        with raises(RuntimeError, "x is on the CPU", "only 0-dimensional", "numpy<2.4"):
            rms_norm(x)
    else:  # a GPU process refuses CPU tensors for its own reason, first
        with raises(RuntimeError, "x is on the CPU", "TRITON_INTERPRET=1"):
            rms_norm(x)

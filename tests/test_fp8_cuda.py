"""rms_norm_fp8 on the GPU (issue 24): what only CUDA can run. Skips without CUDA.

tests/test_fp8.py runs on CUDA too (its `device` fixture); here: the README's torch._scaled_mm
example, bench-sized shapes in every mode (the GPU's own fp32 -> fp8 conversion against torch's
bits), rows past the one-pass limit, CUDA graphs, and the fp8 bench cells.
"""

import pytest
import torch

from conftest import randn
from test_fp8 import check
from rmsnorm_triton import rms_norm
from rmsnorm_triton.fp8 import rms_norm_fp8

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
E4M3 = torch.float8_e4m3fn


def test_readme_scaled_mm(gen):
    """The README example: per-token q and s feed torch._scaled_mm. Its product equals the
    dequantized operands' product up to bf16's rounding of the output, and is within FP8's error
    of the bf16 one: each e4m3 operand errs by ~2.6% RMS (3 mantissa bits), the product by ~3.8%
    (the two in quadrature; measured on the CPU with these shapes), bounded here by 5%."""
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("torch._scaled_mm needs FP8 tensor cores (sm_89 or later)")
    x = randn((64, 4096), torch.bfloat16, "cuda", gen)
    w = randn((4096,), torch.bfloat16, "cuda", gen)
    W = randn((1024, 4096), torch.bfloat16, "cuda", gen)  # a linear layer's weight (out, in)
    # --- the README's five lines ---
    q, s = rms_norm_fp8(x, w)  # per token: s has shape (64, 1)
    w_scale = W.abs().amax(dim=1, keepdim=True).float() / 448.0  # per output channel
    Wq = (W / w_scale).to(E4M3)
    out = torch._scaled_mm(q, Wq.t(), scale_a=s, scale_b=w_scale.t(), out_dtype=torch.bfloat16)
    # ---
    deq = (q.float() * s) @ (Wq.float() * w_scale).t()
    assert (out.float() - deq).norm() / deq.norm() < 2**-7, "the scales as _scaled_mm applies them"
    ref = rms_norm(x, w).float() @ W.float().t()
    rel = (out.float() - ref).norm() / ref.norm()
    assert rel < 0.05, f"relative error {rel:.4f} of the FP8 product against bf16"


MODES = [("static", {}), ("token", {}), ("group", {}), ("group", {"ue8m0": True}),
         ("group", {"group_size": 64, "scale_layout": "deepgemm", "ue8m0": True})]


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("n", [2048, 4096, 8192, 16384])
def test_bench_shapes(gen, n, residual):
    m = 2**22 // n  # smaller than the bench's 2^26, the same launch-table entries
    x = randn((m, n), torch.bfloat16, "cuda", gen)
    w = randn((n,), torch.bfloat16, "cuda", gen)
    r = randn((m, n), torch.bfloat16, "cuda", gen) if residual else None
    for mode, kw in MODES:
        scale = torch.tensor([0.01], device="cuda") if mode == "static" else mode
        check(x, w, scale, residual=r, **kw)


@pytest.mark.parametrize("m", [1, 3, 64])
def test_decode_rows(gen, m):
    x = randn((m, 4096), torch.bfloat16, "cuda", gen)
    w = randn((4096,), torch.bfloat16, "cuda", gen)
    for mode, kw in MODES:
        scale = torch.tensor([0.01], device="cuda") if mode == "static" else mode
        check(x, w, scale, **kw)


LONG = [(mode, n) for mode in ("static", "token", "group") for n in (65536, 65537, 262144)
        if mode != "group" or n % 128 == 0]


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("mode,n", LONG)
def test_long_rows(gen, mode, n, residual):
    """Rows the table walks with SPLIT: static and per-group scales keep SPLIT (each chunk holds
    whole groups); per token takes the block loop (a walk more for the row's amax)."""
    m = 2**22 // n + 3  # more rows than one round of SPLIT's programs at 64K
    x = randn((m, n), torch.bfloat16, "cuda", gen)
    w = randn((n,), torch.bfloat16, "cuda", gen)
    r = randn((m, n), torch.bfloat16, "cuda", gen) if residual else None
    check(x, w, torch.tensor([0.01], device="cuda") if mode == "static" else mode, residual=r)


def test_cuda_graph(gen):
    x = randn((32, 4096), torch.bfloat16, "cuda", gen)
    r = randn((32, 4096), torch.bfloat16, "cuda", gen)
    w = randn((4096,), torch.bfloat16, "cuda", gen)
    q0, s0, h0 = rms_norm_fp8(x, w, residual=r, scale="group")
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        q, s, h = rms_norm_fp8(x, w, residual=r, scale="group")
    x.copy_(randn((32, 4096), torch.bfloat16, "cuda", gen))
    g.replay()
    q1, s1, h1 = rms_norm_fp8(x, w, residual=r, scale="group")
    assert torch.equal(q.view(torch.uint8), q1.view(torch.uint8))
    assert torch.equal(s, s1) and torch.equal(h, h1)
    assert not torch.equal(q.view(torch.uint8), q0.view(torch.uint8))


def test_bench_fp8_cells(tmp_path):
    """The bench's FP8 cells run and check on the GPU (tiny sizes)."""
    from rmsnorm_triton.bench.harness import main

    rc = main(["--ops", "fp8_token,fp8_group_residual,fp8_latency", "--dtypes", "bf16",
               "--sizes", "4096", "--mn", "2**20", "--latency-m", "1,8",
               "--providers", "rmsnorm_triton,fp8_unfused,fp8_torch_compile",
               "--out", str(tmp_path / "rows.csv"), "--quiet", "--rep-ms", "5"])
    assert rc == 0

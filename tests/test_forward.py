"""Forward (issue 2): rms_norm against the float64 reference over dtype x shape x layout.

Outputs are allocated NaN-poisoned (conftest.poisoned_empty), so an element the kernel never
writes fails the comparison. Bounds: TOLERANCE (fp32: 1e-5 relative; fp16/bf16: 2u, the two
roundings of Llama casting: x_hat to the input dtype, then x_hat * w).
"""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FLOATS, LONG_FWD, poisoned_empty, randn, shares_memory
from rmsnorm_triton import options, plan, rms_norm, tables
from rmsnorm_triton.reference import llama_rms_norm, rms_norm_ref
from rmsnorm_triton.testing import assert_close

pytestmark = pytest.mark.usefixtures("poison")

# Rows that fit one block sit beside rows that loop over blocks (past tables.MAX_ONE_PASS
# elements: 32768 for fp32 and fp16/bf16 today); test_grid_covers_both_paths keeps that true
# when the table changes.
SHAPES = [
    (300, 1),  # many rows per program: a ragged last program
    (37, 3),
    (2, 5, 127),  # 3-D
    (8, 128),
    (5, 1000),
    (2, 1, 3, 1024),  # 4-D
    (3, 4096),
    (3, 4097),
    (2, 32768),
    (2, 32769),
    (1, 65537),  # a 1-element last block
]


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_grid_covers_both_paths(dtype):
    paths = {tables.fwd_config(s[-1], dtype).one_pass for s in SHAPES}
    assert paths == {True, False}, "SHAPES must hold one-pass and looping rows for every dtype"


def make_weight(kind, n, dtype, device, gen):
    if kind is None:
        return None
    return randn((n,), dtype if kind == "same" else torch.float32, device, gen)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("wkind", ["same", "fp32", None])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_matches_float64(device, gen, dtype, wkind, shape):
    x = randn(shape, dtype, device, gen)
    w = make_weight(wkind, shape[-1], dtype, device, gen)
    y = rms_norm(x, w, eps=1e-6)
    assert (y.dtype, y.shape, y.device) == (dtype, x.shape, x.device)
    assert not torch.isnan(y).any(), "NaN in the output of a NaN-free input: unwritten elements"
    assert_close(y, rms_norm_ref(x, w, 1e-6)[0])
    assert not shares_memory(y, x) and not shares_memory(y, w)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_long_one_pass_rows_multiply_w_in_16_bits_with_fp32s_bits(device, gen, dtype, residual,
                                                                   monkeypatch):
    """Rows of options.w_native_one_pass elements and more, held in one pass, multiply x_hat * w
    in their 16-bit dtype (W_NATIVE): bit for bit the fp32 product rounded once. (Under an
    interpreter that truncates bf16, bf16 rounds the fp32 product: common.native_product.)"""
    n = options.get().w_native_one_pass + 5
    assert tables.fwd_config(n, dtype, residual).one_pass
    x, w = randn((3, n), dtype, device, gen), randn((n,), dtype, device, gen)
    r = randn((3, n), dtype, device, gen) if residual else None
    ys = []
    for native in (True, False):
        with options.override(w_native=native):
            out = rms_norm(x, w, residual=r)
        ys.append(out[0] if r is not None else out)
    assert torch.equal(ys[0].view(torch.int16), ys[1].view(torch.int16))
    assert_close(ys[0], rms_norm_ref(x if r is None else (x + r), w, 1e-6)[0])


def test_million_element_row(device, gen):
    n = 1 << 20  # the longest row the issue asks for: 256 blocks
    x = randn((1, n), torch.bfloat16, device, gen)
    w = randn((n,), torch.bfloat16, device, gen)
    assert_close(rms_norm(x, w), rms_norm_ref(x, w)[0])


@pytest.mark.parametrize("eps", [0.0, 1e-6, 0.5])
@pytest.mark.parametrize("n", [127, LONG_FWD])
def test_eps(device, gen, eps, n):
    # mean square ~1e-4: an eps of 0.5 dominates it, so an eps lost or misread shows
    x = randn((3, n), torch.float32, device, gen, scale=1e-2)
    w = randn((n,), torch.float32, device, gen)
    assert_close(rms_norm(x, w, eps), rms_norm_ref(x, w, eps)[0])


# ---- layouts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [127, 4097, LONG_FWD])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_strided_rows_are_read_in_place(device, gen, dtype, n):
    # x is a slice of a wider buffer whose other columns are NaN: reading past a row shows
    wide = torch.full((3, n + 9), float("nan"), dtype=dtype, device=device)
    wide[:, :n] = randn((3, n), dtype, device, gen)
    x = wide[:, :n]
    assert x.stride(0) != n
    v = plan.rows_view(x, n)
    assert v.data_ptr() == x.data_ptr() and v.stride() == x.stride(), "strided rows were copied"
    w = randn((n,), dtype, device, gen)
    y = rms_norm(x, w)
    assert y.is_contiguous()
    assert_close(y, rms_norm_ref(x, w)[0])


def _layouts(device, gen, dtype, n):
    wide3 = torch.full((2, 3, n + 5), float("nan"), dtype=dtype, device=device)
    wide3[..., :n] = randn((2, 3, n), dtype, device, gen)
    base = randn((n, 6), dtype, device, gen)
    row = randn((1, n), dtype, device, gen)
    base4 = randn((2, 4, 3, n), dtype, device, gen)
    return {
        "3d-sliced": wide3[..., :n],  # strided rows that do not view as (M, N): one copy
        "transposed": base.t(),  # last dim not contiguous
        "expanded": row.expand(4, n),  # row stride 0
        "4d-permuted": base4.permute(1, 0, 2, 3),
    }


@pytest.mark.parametrize("layout", ["3d-sliced", "transposed", "expanded", "4d-permuted"])
@pytest.mark.parametrize("n", [127, LONG_FWD])
def test_other_layouts(device, gen, layout, n):
    x = _layouts(device, gen, torch.float32, n)[layout]
    w = randn((n,), torch.float32, device, gen)
    y = rms_norm(x, w)
    assert y.shape == x.shape
    assert_close(y, rms_norm_ref(x, w)[0])


@pytest.mark.parametrize("shape", [(0, 7), (3, 0, 4097), (0, 65537)], ids=str)
@pytest.mark.parametrize("with_weight", [True, False])
def test_no_rows(device, gen, shape, with_weight):
    x = torch.empty(shape, dtype=torch.bfloat16, device=device)
    w = randn(shape[-1:], torch.float32, device, gen) if with_weight else None
    y = rms_norm(x, w)
    assert (y.shape, y.dtype) == (x.shape, x.dtype)
    y, h = rms_norm(x, w, residual=torch.empty_like(x), residual_dtype=torch.float32)
    assert (y.shape, h.shape, h.dtype) == (x.shape, x.shape, torch.float32)


def test_64bit_row_offsets(device, gen):
    # row 1 starts 2^31 elements after row 0: a 32-bit row * stride wraps negative. The buffer
    # is 4 GiB of address space but only the two rows' pages are ever touched.
    for n, dtype in [(1000, torch.bfloat16), (LONG_FWD, torch.float16)]:  # one pass; looping
        # new_empty, not the poisoned torch.empty: NaN-filling 4 GiB would touch every page
        store = torch.zeros(0, dtype=dtype, device=device).new_empty(2**31 + n)
        x = store.as_strided((2, n), (2**31, 1))
        x.copy_(randn((2, n), dtype, device, gen))
        w = randn((n,), dtype, device, gen)
        assert_close(rms_norm(x, w), rms_norm_ref(x, w)[0])
        del store, x


# ---- non-finite input -------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("n", [127, LONG_FWD])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_nonfinite_row(device, gen, dtype, n, bad):
    x = randn((3, n), dtype, device, gen)
    w = randn((n,), dtype, device, gen)
    clean = rms_norm(x, w)
    x[1, n // 3] = bad
    y = rms_norm(x, w)
    expect = llama_rms_norm(x, w)  # torch's own formula: NaN row for NaN, 0 / NaN for inf
    assert torch.equal(y[1].isnan(), expect[1].isnan())
    finite = ~expect[1].isnan()
    assert torch.equal(y[1][finite], expect[1][finite])
    assert torch.equal(y[[0, 2]], clean[[0, 2]]), "a non-finite value leaked into other rows"


# ---- properties -------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lead=st.lists(st.integers(0, 5), max_size=3),
       n=st.one_of(st.integers(1, 300), st.sampled_from([1000, 4097, 33000])),
       dtype=st.sampled_from(FLOATS), wkind=st.sampled_from(["same", "fp32", None]),
       log_scale=st.integers(-10, 10), eps=st.sampled_from([0.0, 1e-6, 1e-2]),
       k=st.integers(-6, 6), seed=st.integers(0, 2**32 - 1))
def test_property_random_shapes_and_values(device, lead, n, dtype, wkind, log_scale, eps, k,
                                           seed):
    n = max(1, min(n, 40000 // max(1, math.prod(lead))))  # the interpreter is slow
    shape = (*lead, n)
    gen = torch.Generator().manual_seed(seed)
    x = randn(shape, dtype, device, gen, scale=2.0**log_scale)
    w = make_weight(wkind, n, dtype, device, gen)
    with poisoned_empty():
        y = rms_norm(x, w, eps)
    assert y.shape == x.shape and y.dtype == dtype
    assert_close(y, rms_norm_ref(x, w, eps)[0])
    if x.numel() == 0:
        return
    # rows are independent: permuting them permutes the output, bit for bit
    x2 = x.reshape(-1, n)
    perm = torch.randperm(x2.shape[0], generator=gen).to(device)
    assert torch.equal(rms_norm(x2[perm], w, eps), y.reshape(-1, n)[perm])
    # with eps = 0, scaling x by 2^k changes no bit of y (every step is exact or correctly
    # rounded), as long as the scaling itself is exact
    if eps == 0.0:
        xs = x * 2.0**k
        if torch.equal(xs / 2.0**k, x) and torch.isfinite(xs).all():
            assert torch.equal(rms_norm(xs, w, 0.0), y)

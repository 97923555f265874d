"""SPLIT's PAIRS path (16-bit chunks loaded as 32-bit words), piece by piece: SPLIT itself runs
only on a GPU (its programs wait for each other), but the load and the unpacking are plain
Triton, so they are checked on every device against the chunk as stored."""

import pytest
import torch
import triton
import triton.language as tl

from rmsnorm_triton import split
from rmsnorm_triton.kernels import meet


@triton.jit
def _pairs_probe(P, OUT, row, stride, N, M, BLOCK_N: tl.constexpr):
    s = tl.program_id(0)
    c = s * BLOCK_N + tl.arange(0, BLOCK_N)
    m = c < N
    cw = s * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)
    mw = cw < N // 2
    # row as a vector: the interpreter rejects a scalar bool in a mask (the GPU does not)
    v = meet.prefetch(P, cw * 0 + row, stride, c, m, cw, mw, M, True)
    tl.store(OUT + c, meet.elements(v, P.dtype.element_ty, True), mask=m)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n, block", [(64, 16), (96, 32), (4096, 1024)])
def test_words_unpack_to_the_stored_chunk(device, dtype, n, block):
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(3, n, generator=gen).to(dtype)
    x[1, :4] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0]).to(dtype)
    x = x.to(device)
    assert split.words(x, n)
    for row in range(3):
        out = torch.full((n,), 7.0, dtype=dtype, device=device)  # poison: all must be written
        _pairs_probe[(triton.cdiv(n, block),)](x, out, row, x.stride(0), n, 3, BLOCK_N=block)
        assert torch.equal(out.view(torch.int16), x[row].view(torch.int16)), f"row {row}"


def test_rows_past_the_last_read_as_zeros(device):
    x = torch.randn(2, 64).to(torch.bfloat16).to(device)
    out = torch.full((64,), 7.0, dtype=torch.bfloat16, device=device)
    _pairs_probe[(4,)](x, out, 2, x.stride(0), 64, 2, BLOCK_N=16)
    assert torch.equal(out.cpu(), torch.zeros(64, dtype=torch.bfloat16))


def test_words_only_where_rows_align():
    base = torch.zeros(4, 72, dtype=torch.bfloat16)
    assert split.words(base, 72)
    assert not split.words(base[:, :70], 69)  # odd N
    assert not split.words(base.view(8, 36), 36)  # stride 36: rows not 16-byte aligned
    assert not split.words(base.view(-1)[1:73].view(1, 72), 72)  # start not 16-byte aligned
    assert not split.words(base.float(), 72)  # 32-bit elements: no pairs

"""SPLIT's meeting through the slots, piece by piece: a row's S partial sums read by poll and
added by total, with the mask (the forward) and with every lane loading a valid slot
(EVERY_LANE, the backward since run 109). SPLIT itself runs only on a GPU (its programs wait for
each other); these pieces are plain Triton, so they are checked on every device."""

import pytest
import torch
import triton
import triton.language as tl

from rmsnorm_triton.kernels import meet

EPOCH = 7


@triton.jit
def _total_probe(PART, OUT, EPOCH, row, S, S_POW2: tl.constexpr, EVERY_LANE: tl.constexpr):
    parts = meet.poll(PART, EPOCH, row, S, S_POW2, True, EVERY_LANE)
    tl.store(OUT, meet.total(PART, EPOCH, row, S, parts, S_POW2, EVERY_LANE))


@triton.jit
def _poll_probe(PART, OUT, EPOCH, row, M, S, S_POW2: tl.constexpr, EVERY_LANE: tl.constexpr):
    i = tl.arange(0, S_POW2)
    tl.store(OUT + i, meet.poll(PART, EPOCH, row, S, S_POW2, i * 0 + row < M, EVERY_LANE))


def slots(sums: torch.Tensor, epoch: int) -> torch.Tensor:
    """(M, S) fp32 partial sums as published: the epoch above each sum's bits, one word each."""
    bits = sums.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    return ((epoch << 32) | bits).reshape(-1)


@pytest.mark.parametrize("s", [1, 3, 5, 8, 13])
def test_every_lane_adds_the_same_bits_as_the_mask(device, s):
    gen = torch.Generator().manual_seed(s)
    m = 4
    sums = torch.rand(m, s, generator=gen) * 1000  # row 3 follows row 2 in memory: the lanes
    part = slots(sums, EPOCH).to(device)  # past S read it unless they are ignored
    s_pow2 = triton.next_power_of_2(s)
    for row in range(m):
        got = {}
        for every in (False, True):
            out = torch.full((1,), float("nan"), device=device)  # poison: must be written
            _total_probe[(1,)](part, out, EPOCH, row, s, S_POW2=s_pow2, EVERY_LANE=every)
            got[every] = out.cpu()
        assert torch.equal(got[False], got[True]), f"row {row}"
        want = sums[row].double().sum().item()
        assert got[True].item() == pytest.approx(want, rel=1e-6), f"row {row}"


def test_every_lane_reads_valid_slots_only(device):
    s, m = 5, 3
    sums = torch.arange(m * s, dtype=torch.float32).reshape(m, s) + 1
    part = slots(sums, EPOCH).to(device)  # exactly M * S words: nothing to read past them
    words = part.cpu()
    for row, every in ((1, True), (m, True), (1, False), (m, False)):
        out = torch.full((8,), -1, dtype=torch.int64, device=device)
        _poll_probe[(1,)](part, out, EPOCH, row, m, s, S_POW2=8, EVERY_LANE=every)
        got = out.cpu()
        if every:  # lanes past S repeat lane S - 1; a row past M reads row 0
            base = (row if row < m else 0) * s
            want = words[[base + min(i, s - 1) for i in range(8)]]
        elif row < m:  # the mask: lanes past S read as arrived zeros
            want = torch.cat([words[row * s:row * s + s], torch.full((3,), EPOCH << 32)])
        else:
            want = torch.full((8,), EPOCH << 32)
        assert torch.equal(got, want), f"row {row}, EVERY_LANE={every}"

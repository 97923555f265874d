"""Host launcher pieces that the CPU suite cannot reach through a kernel: the compiled-kernel
call (run, on a stand-in for Triton's launcher), the small-M tile rule and SPLIT's empty slots."""

import types

import pytest
import torch

from rmsnorm_triton import heuristics, kernels, launch
from rmsnorm_triton.heuristics import Config


class FakeCompiled:
    function, packed_metadata = "fn", "meta"

    def __init__(self):
        self.calls = []

    def _init_handles(self):
        pass

    def run(self, *a):
        self.calls.append(a)


class FakeKernel:
    """Three pointer args, two ints, a float, then two constexprs: the layout of ours."""

    def __init__(self):
        self.params = [types.SimpleNamespace(is_constexpr=i >= 6) for i in range(8)]
        self.compiled = []

    def warmup(self, *args, grid, num_warps):
        self.compiled.append((args, num_warps))
        return FakeCompiled()


@pytest.fixture
def compiled_path(monkeypatch):
    """launch.run as on a GPU, with the device calls answered for CPU tensors."""
    monkeypatch.setattr(launch, "INTERPRETED", False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: -1)  # what a CPU tensor reports
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda dev: 77, raising=False)


def test_run_passes_addresses_and_keeps_the_rest(compiled_path):
    kern = FakeKernel()
    a, b = torch.randn(8), torch.randn(4, dtype=torch.float16)
    args = [a, b, a, 5, 16, 0.5, 128, True]
    launch.run(kern, (3,), args, 4)
    launch.run(kern, (3,), args, 4)
    assert len(kern.compiled) == 1, "the second call must reuse the compiled kernel"
    assert kern.compiled[0][0][0] is a, "compilation sees the tensors (their dtypes)"
    (k,) = [launch._COMPILED[key] for key in launch._COMPILED if key[0] is kern]
    assert len(k.calls) == 2
    grid_stream, rest = k.calls[0][:9], k.calls[0][9:]
    assert grid_stream == (3, 1, 1, 77, "fn", "meta", None, None, None)
    assert list(rest) == [a.data_ptr(), b.data_ptr(), a.data_ptr(), 5, 16, 0.5, 128, True]
    assert all(type(v) is int for v in rest[:3])
    assert args[0] is a, "the caller's list is left as it was"


def test_run_recompiles_for_what_triton_specialises_on(compiled_path):
    kern = FakeKernel()
    a = torch.randn(64)
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 128, True], 4)
    launch.run(kern, (1,), [a[1:], a, a, 5, 16, 0.5, 128, True], 4)  # 4-byte aligned only
    launch.run(kern, (1,), [a, a, a, 1, 16, 0.5, 128, True], 4)  # an int equal to 1
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 256, True], 4)  # another constexpr
    launch.run(kern, (1,), [a.double(), a, a, 5, 16, 0.5, 128, True], 4)  # another dtype
    launch.run(kern, (1,), [a, a, a, 5, 16, 0.5, 128, True], 8)  # other warps
    assert len(kern.compiled) == 6


@pytest.mark.parametrize("m", [1, 3, 8, 100, 131, 132, 256, 300, 4096])
@pytest.mark.parametrize("sms", [1, 132])
def test_small_m_tiles_cover_the_sms(m, sms):
    base = Config(8, 4096, 8, True)
    cfg = heuristics.with_rows(base, m, sms)
    tiles = -(-m // cfg.block_m)
    assert cfg.block_m & (cfg.block_m - 1) == 0 and 1 <= cfg.block_m <= base.block_m
    assert cfg.block_m <= heuristics.pow2(m), "no tile larger than the rows there are"
    assert tiles >= min(m, sms) or cfg.block_m == 1
    if cfg.block_m < min(base.block_m, heuristics.pow2(m)):  # halved: only while needed
        assert -(-m // (cfg.block_m * 2)) < sms
    assert cfg.block_m * cfg.block_n // (32 * cfg.num_warps) >= 8 or cfg.num_warps == 1


def test_empty_slots_hold_the_empty_bits():
    slots = launch.empty_slots(3, 5, "cpu")
    assert slots.dtype == torch.float32 and slots.shape == (3, 5)
    assert (slots.view(torch.int32) == kernels.EMPTY.value).all()
    assert slots.isnan().all(), "EMPTY reads as a NaN, never as a sum"


def test_split_can_be_turned_off(monkeypatch):
    monkeypatch.delenv("RMSNORM_TRITON_SPLIT", raising=False)
    assert launch.split_allowed()
    monkeypatch.setenv("RMSNORM_TRITON_SPLIT", "0")
    assert not launch.split_allowed()

"""The launch tables: keyed by GPU architecture, a generic safe entry for GPUs no table covers
(forced by options.table = "generic", RMSNORM_TRITON_TABLE=generic), and its results."""

import types

import pytest
import torch

from conftest import FLOATS, assert_grad_close, randn, reference_grads
from rmsnorm_triton import options, rms_norm, tables
from rmsnorm_triton.tables import Config
from rmsnorm_triton.reference import rms_norm_ref
from rmsnorm_triton.testing import assert_close

GPUS = {  # (major, minor, SMs, registers an SM, shared memory an SM)
    "H100": (9, 0, 132, 65536, 233472), "H200": (9, 0, 132, 65536, 233472),
    "A100": (8, 0, 108, 65536, 167936), "L40S": (8, 9, 142, 65536, 102400),
    "B200": (10, 0, 148, 65536, 233472), "sm_90 with a small SM": (9, 0, 66, 32768, 102400)}


@pytest.mark.parametrize("gpu", GPUS)
def test_each_gpu_gets_its_architectures_table_or_the_generic_one(monkeypatch, gpu):
    major, minor, sms, regs, smem = GPUS[gpu]
    props = types.SimpleNamespace(major=major, minor=minor, multi_processor_count=sms,
                                  regs_per_multiprocessor=regs,
                                  shared_memory_per_multiprocessor=smem)
    monkeypatch.setattr(tables, "device_props", lambda i: props)
    cuda = types.SimpleNamespace(type="cuda", index=0)
    want = (9, 0) if gpu in ("H100", "H200") else "generic"
    with options.override(table="auto"):  # (whatever RMSNORM_TRITON_TABLE this run has)
        assert tables.table_for(cuda) == want
        assert tables.table_for(torch.device("cpu")) == (9, 0), "the interpreter checks sm_90's"
    with options.override(table="generic"):
        assert tables.table_for(cuda) == "generic"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_the_generic_table_never_splits_and_holds_8k_at_most(dtype):
    for k in range(0, 21):
        n = (1 << k) + (k % 3)
        for cfg in (tables.fwd_config(n, dtype, False, True, "generic"),
                    tables.fwd_config(n, dtype, True, True, "generic"),
                    tables.bwd_config(n, dtype, "generic")):
            assert not cfg.split and not cfg.maxnreg and not cfg.dynamic
            assert cfg.one_pass == (tables.pow2(n) <= 8192), n
            assert cfg.block_m * cfg.block_n <= 8192 and cfg.num_warps <= 8


@pytest.mark.parametrize("n", [1, 127, 4096, 8193, 20000])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_the_generic_table_computes_what_the_reference_does(device, gen, poison, dtype, n):
    """Forward (with and without a residual) and backward under the generic table, outputs
    poisoned, against float64; on a GPU this is the choice an uncovered GPU would make."""
    x, w = randn((3, n), dtype, device, gen), randn((n,), dtype, device, gen)
    r = randn((3, n), dtype, device, gen)
    dy = randn((3, n), dtype, device, gen)
    with options.override(table="generic"):
        assert_close(rms_norm(x, w), rms_norm_ref(x, w)[0])
        y, h = rms_norm(x, w, residual=r)
        assert_close(y, rms_norm_ref(h, w)[0])
        xl, wl = x.clone().requires_grad_(), w.clone().requires_grad_()
        dx, dw = torch.autograd.grad(rms_norm(xl, wl), (xl, wl), dy)
    dh_ref, dw_ref, mag_dh, mag_dw = reference_grads(x, w, dy)
    assert_grad_close(dx, dh_ref, mag_dh, what="dx")
    assert_grad_close(dw, dw_ref, mag_dw, what="dw")


def test_tables_parse_and_the_residual_has_its_own_entries():
    """Each SPLIT entry gives a Config with its register cap; with a residual, the sizes
    FWD_RES names take its entries (FWD's capped layouts were slower there)."""
    for table in (tables.FWD, tables.FWD_RES, tables.FWD_BF16, tables.FWD_FP32,
                  tables.FWD_FP32_RES, tables.BWD, tables.BWD_FP32):
        for key, entry in table.items():
            cfg = tables._lookup(table, key or 1 << 20, 2)
            mode = entry[3].removesuffix("+dyn")
            assert cfg.split == (mode in ("split", "early"))
            assert cfg.dynamic == (entry[3].endswith("+dyn") and table not in (
                tables.BWD, tables.BWD_FP32)), "+dyn: forward tables only"
            assert cfg.maxnreg == (entry[5] if len(entry) > 5 else 0)
            if cfg.maxnreg:  # a cap that lets the programs asked for fit on one SM
                assert cfg.maxnreg * cfg.num_warps * 32 * cfg.progs_per_sm <= 65536
    for n in (65536, 262144, 1 << 20):
        plain = tables.fwd_config(n, torch.bfloat16)
        res = tables.fwd_config(n, torch.bfloat16, True)
        key = n if n in tables.FWD_RES else None
        assert res == tables._lookup(tables.FWD_RES, tables.pow2(n), 2), n
        assert (plain == res) == (tables.FWD.get(key) == tables.FWD_RES[key])
    for n in tables.FWD_BF16:  # bf16's own entries: no residual, w * x_hat in fp32 only
        bf16 = tables.fwd_config(n, torch.bfloat16, native=False)
        assert bf16 == tables._lookup(tables.FWD_BF16, n, 2)
        assert bf16 != tables.fwd_config(n, torch.float16, native=False)
        assert tables.fwd_config(n, torch.bfloat16) == tables.fwd_config(n, torch.float16)
        assert tables.fwd_config(n, torch.bfloat16, True) == tables.fwd_config(
            n, torch.float16, True)
    for n in (65536, 131072, 262144):  # fp32 with a residual keeps its own entries
        assert tables.fwd_config(n, torch.float32, True) == tables._lookup(
            tables.FWD_FP32_RES, n, 4)
        assert tables.fwd_config(n, torch.float32) != tables.fwd_config(
            n, torch.float32, True)
    n = 32768  # in neither: the plain entry serves all
    assert tables.fwd_config(n, torch.float16, True) == tables.fwd_config(n, torch.float16)
    assert tables.fwd_config(n, torch.bfloat16) == tables.fwd_config(n, torch.float16)


@pytest.mark.parametrize("m", [1, 3, 8, 100, 131, 132, 256, 300, 4096])
@pytest.mark.parametrize("sms", [1, 132])
def test_small_m_tiles_cover_the_sms(m, sms):
    base = Config(8, 4096, 8, True)
    cfg = tables.with_rows(base, m, sms)
    tiles = -(-m // cfg.block_m)
    assert cfg.block_m & (cfg.block_m - 1) == 0 and 1 <= cfg.block_m <= base.block_m
    assert cfg.block_m <= tables.pow2(m), "no tile larger than the rows there are"
    assert tiles >= min(m, sms) or cfg.block_m == 1
    if cfg.block_m < min(base.block_m, tables.pow2(m)):  # halved: only while needed
        assert -(-m // (cfg.block_m * 2)) < sms
    assert cfg.block_m * cfg.block_n // (32 * cfg.num_warps) >= 8 or cfg.num_warps == 1


def test_dynamic_rows_only_where_a_split_forward_entry_says_so():
    """"+dyn" in a table entry gives a SPLIT Config with dynamic set; backward entries,
    one-pass ones and fp64's walked rows never have it."""
    assert tables._lookup({None: (1, 2048, 4, "early+dyn", 3)}, 65536, 2) == Config(
        1, 2048, 4, False, True, 3, early=True, dynamic=True)
    assert tables._lookup({None: (1, 2048, 4, "split+dyn", 3)}, 65536, 4).dynamic
    assert not tables._lookup({None: (1, 2048, 4, "early+dyn", 3)}, 65536, 8).dynamic
    assert tables.fwd_config(65536, torch.bfloat16, residual=True).dynamic
    assert not tables.fwd_config(65536, torch.bfloat16).dynamic
    assert not any(tables.bwd_config(1 << k, dt).dynamic for k in range(9, 19)
                   for dt in (torch.bfloat16, torch.float32))

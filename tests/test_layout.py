"""layout.py: the launch chosen before compiling, which the plans and the visualizer share."""

import pytest
import torch

import rmsnorm_triton as R
from rmsnorm_triton import layout, options, plan, split, tables
from rmsnorm_triton.kernels import N_COUNTERS

DEV = "cpu" if R.interpreted() else "cuda"


@pytest.mark.parametrize("m,n,dtype", [(5, 64, torch.float32), (300, 512, torch.bfloat16),
                                       (3, 5000, torch.float16), (40, 1024, torch.float32),
                                       (1, 1, torch.bfloat16)])
def test_the_plans_launch_the_layouts_grid(m, n, dtype):
    """A plan made here launches the grid the layout gives for this device (rows this short
    never take SPLIT): on the interpreter 1 "SM" forward and 4 programs backward."""
    x, w = torch.randn(m, n).to(dtype).to(DEV), torch.randn(n).to(dtype).to(DEV)
    arch = tables.table_for(x.device)
    sms = tables.device_props(x.device.index or 0).multi_processor_count if x.is_cuda else 0
    fwd = plan.FwdPlan(x, w, None, 1e-6, 0.0, "llama", dtype, dtype, True)
    native = options.get().w_native and tables.native_weight(w, "llama", 0.0, dtype, dtype)
    lay = layout.fwd_layout(m, n, dtype, arch, sms or 1, native=native)
    assert lay.walk != "split" and fwd.grid == lay.grid
    bwd = plan.BwdPlan(x, None, x, w, torch.ones(m, device=DEV), 0.0, dtype, None, True)
    cfg = tables.bwd_config(n, dtype, arch)
    tiles = -(-m // cfg.block_m) if cfg.one_pass else m
    assert bwd.grid == layout.bwd_layout(m, n, dtype, arch, sms).grid \
        == min(tiles, sms * cfg.progs_per_sm if sms else 4)


def test_gpus_of_the_table():
    for key in ("H100 SXM", "H200", "H100 PCIe"):
        assert tables.table_for_props(tables.GPUS[key]) == (9, 0)
    assert tables.table_for_props(tables.GPUS["A100 SXM"]) == "generic"  # no sm_80 table
    with options.override(table="generic"):
        assert tables.table_for_props(tables.GPUS["H200"]) == "generic"
    assert tables.GPUS["H200"].multi_processor_count == 132


def test_split_layouts_fill_the_sms_once():
    h100 = tables.GPUS["H100 SXM"].multi_processor_count
    lay = layout.fwd_layout(8192, 131072, torch.bfloat16, (9, 0), h100, native=True)
    cfg = tables.fwd_config(131072, torch.bfloat16, False, True, (9, 0))
    assert lay.walk == "split" and lay.chunks == 131072 // cfg.block_n
    assert lay.groups == h100 * cfg.progs_per_sm // lay.chunks and lay.grid == lay.groups * lay.chunks
    assert layout.fwd_layout(8192, 131072, torch.bfloat16, (9, 0), h100, split_ok=False).walk == "loop"
    assert split.row_groups(3, 4, 132, 2) == 3  # never more groups than rows
    assert split.row_groups(10, N_COUNTERS + 1, 132, 32) == 0  # more chunks than row counters
    assert split.row_groups(10, 300, 132, 2) == 0  # a row needs more programs than fit


def test_few_rows_are_spread_over_the_sms():
    cfg = tables.fwd_config(512, torch.bfloat16, False, True, (9, 0))
    assert cfg.block_m == 2
    lay = layout.fwd_layout(1, 512, torch.bfloat16, (9, 0), 132, native=True)
    assert lay.cfg == tables.with_rows(cfg, 1, 132) and lay.cfg.block_m == 1 and lay.grid == 1


def test_backward_grid_is_what_is_resident():
    cfg = tables.bwd_config(1024, torch.bfloat16, (9, 0))
    lay = layout.bwd_layout(65536, 1024, torch.bfloat16, (9, 0), 132)
    assert lay.walk == "one_pass" and lay.grid == 132 * cfg.progs_per_sm
    assert layout.bwd_layout(65536, 1024, torch.bfloat16, (9, 0), 132, programs=7).grid == 7
    assert layout.bwd_layout(3, 1024, torch.bfloat16, (9, 0), 132).grid == 1  # one tile of 8 rows

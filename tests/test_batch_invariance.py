"""Batch invariance (issue 22): a row's output does not depend on how many rows share the call.

The first M rows of one input, called with M = 1, 3, 64 and all rows, give the same bits in y,
in h (with a residual) and in dx (the backward given the same rstd, so that it is checked apart
from the forward; dw sums over the rows, so it is not a row's output). LLM serving batches
requests by the step and RL replays them one by one: both need a request's result to be the
same in any batch.

On the CPU (Triton's interpreter) this covers the layouts it runs: one pass with BLOCK_M rows a
program (BLOCK_M chosen from M at small M, tables.with_rows) and the block loop. On CUDA it
covers every entry of the launch tables, forward, fused and backward, SPLIT included (its
groups of programs depend on M), the way a caller reaches them: through rms_norm.
"""

import pytest
import torch

from conftest import FLOATS, LONG_BWD, LONG_FWD
from rmsnorm_triton import interpreted, rms_norm

HALF = (torch.float16, torch.bfloat16)


# ---- where the launch tables live (the one place that knows their module) ---------------------
def config(kind, n, dtype):
    """The launch table's layout for rows of n elements of dtype (Llama casting)."""
    from rmsnorm_triton import tables as H

    if kind == "bwd":
        return H.bwd_config(n, dtype)
    return H.fwd_config(n, dtype, kind == "fused", dtype != torch.float32)


def table_cases():
    """(id, kind, n, dtype, casting, rows per program) for every launch-table entry, each
    reached as rms_norm reaches it: kind "fwd" (no residual), "fused" (a residual) or "bwd"; n
    the entry's own size (a power of two; 2 x the largest key for the tables' None entry) and an
    odd size that the entry serves too; plus short rows, which no table lists."""
    from rmsnorm_triton import tables as H

    tables = [  # name, table, kind, dtypes to try, casting
        ("FWD", H.FWD, "fwd", HALF, "llama"),
        ("FWD_RES", H.FWD_RES, "fused", HALF, "llama"),
        ("FWD_BF16", H.FWD_BF16, "fwd", (torch.bfloat16,), "gemma"),  # w * x_hat in fp32
        ("FWD_FP32", H.FWD_FP32, "fwd", (torch.float32,), "llama"),
        ("FWD_FP32_RES", H.FWD_FP32_RES, "fused", (torch.float32,), "llama"),
        ("BWD", H.BWD, "bwd", FLOATS, "llama"),
        ("BWD_FP32", H.BWD_FP32, "bwd", (torch.float32,), "llama"),
    ]
    cases = []
    for name, table, kind, dtypes, casting in tables:
        for key in table:
            top = key or 2 * max(k for k in table if k)
            for i, n in enumerate((top, top // 2 + top // 4 + 1)):
                for dtype in dtypes[i % len(dtypes):] + dtypes[:i % len(dtypes)]:  # by turns
                    size = torch.empty((), dtype=dtype).element_size()
                    want = H._lookup(table, top, size)
                    if kind == "bwd":
                        got = H.bwd_config(n, dtype)
                    else:  # native: Llama casting with x, w and y of one 16-bit dtype
                        native = casting == "llama" and size == 2
                        got = H.fwd_config(n, dtype, kind == "fused", native)
                    if got == want:  # else another table serves this dtype here
                        cases.append((f"{name}[{key}]-{str(dtype)[6:]}-{kind}-n{n}", kind, n,
                                      dtype, casting, want.block_m))
                        break
                else:
                    raise AssertionError(f"no dtype reaches {name}[{key}] at n={n}: "
                                         "table_cases() needs updating")
    for dtype in FLOATS:  # short rows: several rows a program, BLOCK_M by tile size
        for n in (1, 127, 256):
            for kind in ("fwd", "fused", "bwd"):
                cases.append((f"short-{str(dtype)[6:]}-{kind}-n{n}", kind, n, dtype, "llama",
                              config(kind, n, dtype).block_m))
    return cases


# ---- the check --------------------------------------------------------------------------------
def _outputs(kind, x, w, r, dy, casting, rstd):
    """(y, h, dx) for these rows; h None without a residual. The backward ("bwd": dx alone) is
    given the rstd of the call with all rows, so that it is checked apart from the forward."""
    if kind == "bwd":
        return None, None, torch.ops.rmsnorm_triton.bwd(dy, None, x, w, rstd, 0.0, x.dtype, None,
                                                        True)[0]
    out = rms_norm(x, w, 1e-6, residual=r, casting=casting)
    return (*out, None) if r is not None else (out, None, None)


def _differs(a, b):
    """None when a and b hold the same bits, else what differs."""
    if a is None and b is None:
        return None
    same = (a == b) | (a.isnan() & b.isnan())
    if bool(same.all()):
        return None
    bad = (~same).nonzero()
    return f"{len(bad)} of {a.numel()} elements differ, first at {tuple(bad[0].tolist())}"


def check_invariant(kind, n, dtype, casting, m_all, device, gen):
    def rand(shape):  # normal values; drawn on the GPU there (the CPU takes seconds at 256K)
        g = gen if device == "cpu" else torch.Generator(device).manual_seed(gen.initial_seed())
        return torch.randn(shape, generator=g, device=device).to(dtype)

    x = rand((m_all, n))
    w = rand((n,))
    r = rand((m_all, n)) if kind == "fused" else None
    dy = rand((m_all, n))
    rstd = (torch.ops.rmsnorm_triton.fwd(x, w, None, 1e-6, 0.0, casting, None, None)[2]
            if kind == "bwd" else None)
    full = _outputs(kind, x, w, r, dy, casting, rstd)
    for m in (1, 3, 64):
        if m >= m_all:
            continue
        part = _outputs(kind, x[:m], w, r[:m] if r is not None else None, dy[:m], casting,
                        rstd[:m] if rstd is not None else None)
        for name, a, b in zip(("y", "h", "dx"), part, full):
            diff = _differs(a, b[:m] if b is not None else None)
            assert diff is None, f"{name} of rows 0..{m - 1} called alone vs with {m_all}: {diff}"


# ---- CPU: the interpreter's layouts -------------------------------------------------------------
CPU_CASES = {  # id: (kind, n); N odd beside a power of two for each walk
    "one pass, short rows": ("fwd", 127), "one pass, short rows, pow2": ("fwd", 128),
    "one pass": ("fwd", 1000), "one pass, pow2": ("fwd", 1024),
    "one pass, fused": ("fused", 127), "one pass, fused, pow2": ("fused", 1024),
    "block loop": ("fwd", LONG_FWD), "block loop, pow2": ("fwd", 2 * (LONG_FWD - 1)),
    "block loop, fused": ("fused", LONG_FWD),
    "bwd one pass": ("bwd", 127), "bwd one pass, pow2": ("bwd", 1024),
    "bwd block loop": ("bwd", LONG_BWD), "bwd block loop, pow2": ("bwd", 2 * (LONG_BWD - 1)),
}


@pytest.mark.skipif(not interpreted(), reason="the interpreter's layouts: a CPU process only")
@pytest.mark.parametrize("case", list(CPU_CASES))
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_batch_invariant_on_the_cpu(gen, dtype, case):
    kind, n = CPU_CASES[case]
    cfg = config(kind, n, dtype)
    # one pass: full tiles of BLOCK_M rows and a ragged last one. The block loop gives each
    # program its rows whatever M is (the backward's 4 programs take 2 of the 5 rows): 5 do.
    m_all = 2 * cfg.block_m + 67 if cfg.one_pass else 5
    check_invariant(kind, n, dtype, "llama", m_all, "cpu", gen)


# ---- CUDA: every launch-table entry -------------------------------------------------------------
CUDA_CASES = table_cases()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the launch tables' layouts: CUDA")
@pytest.mark.parametrize("mode", ["batch_invariant", "default"])
@pytest.mark.parametrize("case", CUDA_CASES, ids=[c[0] for c in CUDA_CASES])
def test_batch_invariant_on_the_gpu(gen, case, mode):
    """Every entry under options.batch_invariant; by default, the walks whose layout never
    depends on M (SPLIT, the backward, the block loop). The default one-pass forward cuts its
    tiles and loads w early at small M, so its bits may differ there (README, Limits)."""
    from rmsnorm_triton import options

    _, kind, n, dtype, casting, block_m = case
    cfg = config(kind, n, dtype)
    if mode == "default" and kind != "bwd" and cfg.one_pass:
        pytest.skip("the default one-pass forward adapts its tiles to small M (documented)")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    # all rows: enough that no tile is shrunk for a small M, and SPLIT's groups take 4+ rows
    m_all = max(block_m * sms, 4 * sms) + 5
    with options.override(batch_invariant=mode == "batch_invariant"):
        check_invariant(kind, n, dtype, casting, m_all, "cuda", gen)


# ---- the mode that guarantees it: options.batch_invariant ---------------------------------------
def _launch_choice(kind, n, dtype, m, sms, opts):
    """What a forward of m rows compiles and launches with on `sms` SMs: the config (tile rows,
    warps, walk) and W_FIRST, from the planner's own functions."""
    from rmsnorm_triton import tables
    from rmsnorm_triton.layout import fwd_layout, w_first

    lay = fwd_layout(m, n, dtype, (9, 0), sms, residual=kind == "fused",
                     native=dtype != torch.float32, batch_invariant=opts.batch_invariant)
    return lay.cfg, lay.walk, w_first(lay.cfg, m, sms, opts), tables.pow2(lay.chunks)


@pytest.mark.parametrize("case", [c for c in table_cases() if c[1] != "bwd"], ids=lambda c: c[0])
def test_batch_invariant_mode_launches_every_m_alike(case):
    """Under options.batch_invariant a forward's compiled kernel (its config and W_FIRST) is the
    same for M = 1, 3, 64 and a full GPU's rows on an H100's 132 SMs, so each row is reduced
    with the same layout whatever M is (SPLIT aside: its in-row sum order is fixed by chunks).
    The default mode, which cuts tiles and loads w early at small M, differs for some entries:
    test_the_default_mode_adapts_to_small_m."""
    from rmsnorm_triton import options

    _, kind, n, dtype, _, block_m = case
    with options.override(batch_invariant=True) as opts:
        got = {m: _launch_choice(kind, n, dtype, m, 132, opts) for m in (1, 3, 64, 132 * 64)}
    one_pass = [c for c in got.values() if c[1] == "one_pass"]
    assert all(c == one_pass[0] for c in one_pass), got
    assert all(not c[2] for c in got.values())  # W_FIRST never


def test_the_default_mode_adapts_to_small_m():
    """(So the test above can fail:) by default, decoding's few rows get smaller tiles and w
    loaded beside x."""
    from rmsnorm_triton import options

    opts = options.get()
    assert not opts.batch_invariant
    small = _launch_choice("fwd", 512, torch.bfloat16, 1, 132, opts)
    full = _launch_choice("fwd", 512, torch.bfloat16, 132 * 64, 132, opts)
    assert small[0] != full[0] and small[2] and not full[2]

"""The launch as chosen before anything is compiled: the table's config, the row walk, the grid.

The plans (plan.py) start from these, and so does the visualizer's "how the GPU runs it", for
a GPU of tables.GPUS: one choice, so the page cannot drift from the launcher. Only the SPLIT
grid is checked later, against the compiled kernel's registers (split.grid).
"""

from dataclasses import dataclass

from . import tables
from .split import cdiv, row_groups


@dataclass(frozen=True)
class Layout:
    """A launch as chosen before anything is compiled: the table's config (cut to the rows there
    are), the row walk, and the grid. For SPLIT the grid assumes the table's programs per SM are
    resident; the plan checks that against the compiled kernel (split.grid) and takes fewer, or
    the block loop, where they are not."""
    cfg: tables.Config
    walk: str  # "one_pass", "split" or "loop"
    chunks: int  # blocks a row is cut into (SPLIT: programs per row)
    groups: int  # SPLIT: row groups (the grid is groups * chunks); else 0
    grid: int  # programs launched


def for_rows(cfg, m, sms, batch_invariant=False):
    """A one-pass cfg for m rows: at small M (decoding) its tiles are cut to spread the rows
    over the SMs, which changes a row's reduction layout, so not where bits must not depend on
    M (options.batch_invariant)."""
    if cfg.one_pass and cfg.block_m > 1 and m < cfg.block_m * sms and not batch_invariant:
        return tables.with_rows(cfg, m, sms)
    return cfg


def w_first(cfg, m, sms, opts) -> bool:
    """ONE_PASS's W_FIRST: w loaded beside x in a grid of a wave or two (a few rows wait on one
    memory trip, not two); never where bits must not depend on M (it can change the load's
    layout of an unaligned row)."""
    return (cfg.one_pass and not opts.batch_invariant
            and cdiv(m, cfg.block_m) <= opts.w_first_waves * sms)


def fwd_layout(m, n, dtype, arch, sms, *, residual=False, native=False, split_ok=True,
               config=None, batch_invariant=False) -> Layout:
    """The forward's launch for m rows of n on `sms` multiprocessors with the tables `arch`
    (tables.table_for); split_ok: SPLIT may run (a GPU, fp32 sums, options.split)."""
    cfg = for_rows(config or tables.fwd_config(n, dtype, residual, native, arch), m, sms,
                   batch_invariant)
    chunks = cdiv(n, cfg.block_n)
    groups = row_groups(m, chunks, sms, cfg.progs_per_sm) if cfg.split and split_ok else 0
    if groups:
        return Layout(cfg, "split", chunks, groups, groups * chunks)
    return Layout(cfg, "one_pass" if cfg.one_pass else "loop", chunks, 0,
                  cdiv(m, cfg.block_m) if cfg.one_pass else m)


def bwd_layout(m, n, dtype, arch, sms, *, split_ok=True, config=None, programs=None) -> Layout:
    """The backward's launch, as fwd_layout (sms = 0: the interpreter): a persistent grid of at
    most `programs` (default: as many as are resident at once), each taking tiles (one pass) or
    rows (the block loop) p, p + grid, ..."""
    cfg = config or tables.bwd_config(n, dtype, arch)
    chunks = cdiv(n, cfg.block_n)
    groups = row_groups(m, chunks, sms, cfg.progs_per_sm) if cfg.split and split_ok else 0
    if groups:
        return Layout(cfg, "split", chunks, groups, groups * chunks)
    tiles = cdiv(m, cfg.block_m) if cfg.one_pass else m
    return Layout(cfg, "one_pass" if cfg.one_pass else "loop", chunks, 0,
                  min(tiles, programs or tables.programs_at_once(sms, cfg)))

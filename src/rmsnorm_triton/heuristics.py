"""Launch settings as data: (N, dtype) -> block shape, warps, programs.

Each table row notes the run that chose it (benchmarks/results/NOTES.md has the runs).
No autotuning at the first call: a table lookup costs nothing and is the same on every run.
"""

import dataclasses
import functools
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Config:
    block_m: int  # rows per program (one-pass only)
    block_n: int  # elements per block
    num_warps: int
    one_pass: bool  # the whole row fits in one block and stays in registers
    split: bool = False  # GPU only: a row's blocks spread over programs that meet (kernels.py)
    progs_per_sm: int = 1  # split: programs resident per multiprocessor (checked at launch)


# Tables keyed by next_power_of_2(N): (BLOCK_M, BLOCK_N, num_warps, mode, programs per SM).
# Runs are in benchmarks/results/NOTES.md; "r1" = run 1 (tune-run1-*.json) and so on. Entries for
# the 2-byte dtypes were swept in bf16 and serve fp16 too (same bytes, same registers).
FWD = {  # bf16/fp16
    512: (32, 512, 32, "1p", 1),  # r1: 94.4%
    1024: (1, 1024, 4, "1p", 1),  # r1: 95.4%
    2048: (2, 2048, 8, "1p", 1),  # r1: 95.1%
    4096: (4, 4096, 8, "1p", 1),  # r1: 94.5%
    8192: (1, 8192, 16, "1p", 1),  # r1: 94.5%
    16384: (1, 16384, 8, "1p", 1),  # r1: 93.6%
    32768: (1, 32768, 16, "1p", 1),  # r6: 92.3%
    65536: (1, 8192, 8, "split", 2),  # r6: 70.2%
    None: (1, 8192, 16, "split", 2),  # r6: 70.1-70.3% at 128K-256K
}
FWD_FP32 = {
    32768: (1, 32768, 32, "1p", 1),  # r6: 96.1%
    None: (1, 16384, 16, "split", 2),  # r6: 84.8-86.2% at 64K-256K
}
BWD = {  # all dtypes (swept in bf16, r6; fp32 one-pass reached 89-93% before the prefetch, r3)
    512: (16, 512, 8, "1p", 1),  # r6: 87.7%
    1024: (8, 1024, 8, "1p", 1),  # r6: 87.1%
    2048: (4, 2048, 8, "1p", 1),  # r6: 87.8%
    4096: (2, 4096, 8, "1p", 1),  # r6: 89.2%
    8192: (1, 8192, 8, "1p", 1),  # r6: 88.8%
    16384: (1, 8192, 8, "split", 1),  # r6: 64.8% (one-pass 1x16384 w16: 64.0%)
    None: (1, 8192, 16, "split", 2),  # r6: 62.4-64.4% at 32K-256K
}
# Short rows (below the tables' first key): elements a program should hold, by element size.
TILE_ELEMS = {2: 8192, 4: 4096, 8: 2048}
# (largest tile in elements, num_warps); first row that fits wins.
WARPS = [(1024, 2), (4096, 4), (8192, 8), (16384, 8), (32768, 16), (1 << 30, 32)]


def pow2(v: int) -> int:
    """Next power of two >= v (triton.next_power_of_2 costs ~1.5 us a call in triton 3.9)."""
    return 1 << (v - 1).bit_length() if v > 1 else 1


@functools.lru_cache(maxsize=1024)
def with_rows(cfg: Config, m: int) -> Config:
    """cfg with BLOCK_M cut to the rows there are (decoding's M = 1: no idle rows a tile)."""
    return dataclasses.replace(cfg, block_m=pow2(m))


def _size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _lookup(table, block_n: int, size: int) -> Config:
    if block_n < 512:  # short rows: several rows a program, warps by tile size
        block_m = max(1, min(256, TILE_ELEMS[size] // block_n))
        e = block_m * block_n
        return Config(block_m, block_n, next(w for lim, w in WARPS if e <= lim), True)
    bm, bn, w, mode, pps = table.get(block_n) or table[None]
    if size == 8 and mode == "1p" and block_n > 8192:  # fp64: twice the registers
        mode, bn = "split", 4096
    if mode == "1p":
        return Config(bm, bn, w, True, False, pps)
    return Config(1, bn, w, False, True, pps)


@functools.lru_cache(maxsize=1024)
def fwd_config(n: int, dtype: torch.dtype) -> Config:
    size = _size(dtype)
    block_n = pow2(n)
    if size == 4 and block_n >= 32768:
        return _lookup(FWD_FP32, block_n, size)
    if size == 4 and block_n >= 512:  # fp32 below 32K: r1's defaults reached 95.2-97.9%
        block_m = max(1, 4096 // block_n)
        e = block_m * block_n
        return Config(block_m, block_n, next(w for lim, w in WARPS if e <= lim), True)
    return _lookup(FWD, block_n, size)


@functools.lru_cache(maxsize=1024)
def bwd_config(n: int, dtype: torch.dtype) -> Config:
    return _lookup(BWD, pow2(n), _size(dtype))


@functools.lru_cache(maxsize=16)
def device_props(index: int):
    return torch.cuda.get_device_properties(index)


def num_programs(device: torch.device, cfg: Config) -> int:
    """Persistent grid size for the backward: programs that fit on the device at once."""
    if device.type == "cuda":
        return device_props(device.index or 0).multi_processor_count * cfg.progs_per_sm
    return 4  # the interpreter runs programs one after another: few, large ones are faster

"""Launch settings as data: (N, dtype) -> block shape, warps, programs.

Each table row notes the run that chose it (benchmarks/results/NOTES.md has the runs).
No autotuning at the first call: a table lookup costs nothing and is the same on every run.
"""

import functools
from dataclasses import dataclass

import torch
import triton


@dataclass(frozen=True)
class Config:
    block_m: int  # rows per program (one-pass only)
    block_n: int  # elements per block
    num_warps: int
    one_pass: bool  # the whole row fits in one block and stays in registers
    split: bool = False  # GPU only: a row's blocks spread over programs that meet (kernels.py)
    progs_per_sm: int = 1  # split: programs resident per multiprocessor (checked at launch)


# Longest row kept in registers, by input element size. Past it: SPLIT on a GPU, LOOP otherwise.
MAX_ONE_PASS = {2: 32768, 4: 32768, 8: 16384}
MAX_ONE_PASS_BWD = {2: 8192, 4: 8192, 8: 4096}  # the backward holds x, dy, w and dw partials
# Elements a program should hold when rows are short: bytes in flight hide DRAM latency.
TILE_ELEMS = {2: 8192, 4: 4096, 8: 2048}
SPLIT_FWD = Config(1, 8192, 8, False, True, 2)  # first guess, before a sweep
SPLIT_BWD = Config(1, 4096, 8, False, True, 2)  # first guess, before a sweep
# (largest tile in elements, num_warps); first row that fits wins.
WARPS = [(1024, 2), (4096, 4), (8192, 8), (16384, 8), (32768, 16), (1 << 30, 32)]


def _warps(elems: int) -> int:
    return next(w for limit, w in WARPS if elems <= limit)


def _size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


@functools.lru_cache(maxsize=1024)
def fwd_config(n: int, dtype: torch.dtype) -> Config:
    size = _size(dtype)
    block_n = triton.next_power_of_2(n)
    if block_n > MAX_ONE_PASS[size]:
        return SPLIT_FWD
    block_m = max(1, min(256, TILE_ELEMS[size] // block_n))
    return Config(block_m, block_n, _warps(block_m * block_n), True)


@functools.lru_cache(maxsize=1024)
def bwd_config(n: int, dtype: torch.dtype) -> Config:
    size = _size(dtype)
    block_n = triton.next_power_of_2(n)
    if block_n > MAX_ONE_PASS_BWD[size]:
        return SPLIT_BWD
    block_m = max(1, min(256, TILE_ELEMS[size] // 2 // block_n))
    return Config(block_m, block_n, _warps(block_m * block_n), True, False, 2)


@functools.lru_cache(maxsize=16)
def device_props(index: int):
    return torch.cuda.get_device_properties(index)


def num_programs(device: torch.device, cfg: Config) -> int:
    """Persistent grid size for the backward: programs that fit on the device at once."""
    if device.type == "cuda":
        return device_props(device.index or 0).multi_processor_count * cfg.progs_per_sm
    return 4  # the interpreter runs programs one after another: few, large ones are faster

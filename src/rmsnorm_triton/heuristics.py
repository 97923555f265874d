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


# Longest row kept in registers, by input element size. Past it the row is walked in blocks.
MAX_ONE_PASS = {2: 65536, 4: 32768, 8: 16384}
# Elements a program should hold when rows are short: bytes in flight hide DRAM latency.
TILE_ELEMS = {2: 8192, 4: 4096, 8: 2048}
LOOP_BLOCK = 4096  # block of the looping path
# (largest tile in elements, num_warps); first row that fits wins.
WARPS = [(1024, 2), (4096, 4), (8192, 8), (16384, 8), (32768, 16), (1 << 30, 32)]


def _warps(elems: int) -> int:
    return next(w for limit, w in WARPS if elems <= limit)


@functools.lru_cache(maxsize=1024)
def fwd_config(n: int, dtype: torch.dtype) -> Config:
    size = torch.empty((), dtype=dtype).element_size()
    block_n = triton.next_power_of_2(n)
    if block_n > MAX_ONE_PASS[size]:
        return Config(1, LOOP_BLOCK, 8, False)
    block_m = max(1, min(256, TILE_ELEMS[size] // block_n))
    return Config(block_m, block_n, _warps(block_m * block_n), True)


def bwd_config(n: int, dtype: torch.dtype) -> Config:
    # The backward holds x, dy and the dw partials: half the forward's tile.
    c = fwd_config(n, dtype)
    if not c.one_pass:
        return c
    return Config(max(1, c.block_m // 2), c.block_n, c.num_warps, True)


@functools.lru_cache(maxsize=16)
def num_programs(device: torch.device) -> int:
    """Persistent grid size for the backward: programs that fit on the device at once."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count * 2
    return 4  # the interpreter runs programs one after another: few, large ones are faster

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
    pairs: bool = True  # split: 16-bit chunks prefetched as 32-bit words where rows align
    early: bool = False  # split: the next round's loads issued before this round's publish
    maxnreg: int = 0  # split: registers a thread may use (0: as ptxas likes; past it, spills)
    dynamic: bool = False  # split forward: rows handed out at run time (kernels.py DYNAMIC)


# Tables keyed by next_power_of_2(N): (BLOCK_M, BLOCK_N, num_warps, mode, programs per SM); mode
# "1p" one pass, "split" / "early" SPLIT with the next round's loads after / before the publish,
# "+dyn" with rows handed out at run time (forward only; run 93);
# a sixth field, where there is one, caps the registers a thread may use (maxnreg, run 34).
# Runs are in benchmarks/results/NOTES.md; "r1" = run 1 (tune-run1-*.json) and so on; "r54b":
# run 54 on the bench's own clock (tune.py --clock bench; earlier runs' do_bench reads 1-3 points
# lower, so compare figures within a run); from run 60 on, kernels launch with PDL. FWD and
# BWD serve bf16 and fp16 (same bytes); the _RES and _BF16 tables override them where a residual
# or bf16's own code (registers: NOTES.md, run 39) measured differently.
FWD = {  # bf16/fp16
    512: (2, 512, 4, "1p", 1),  # r54b: 98.2% (r1's 32 x 512 x 32 warps: 96.5%)
    1024: (1, 1024, 4, "1p", 1),  # r1: 95.4% (r55b: 97.9%, the best of the sweep)
    2048: (1, 2048, 8, "1p", 1),  # r55b: 97.5% (r1's 2 x 2048 x 8: 97.0%)
    4096: (1, 4096, 8, "1p", 1),  # r55b: 97.1% (r1's 4 x 4096 x 8: 96.3%)
    8192: (1, 8192, 16, "1p", 1),  # r1: 94.5%
    16384: (1, 16384, 16, "1p", 1),  # r79: 99.4 / 99.5% bf16 / fp16 (r1's x 8: 98.4 / 98.8%, with
    # the product in 16 bits, launch.W_NATIVE_ONE_PASS; 99.0 / 99.4% in fp32)
    32768: (1, 32768, 16, "1p", 1),  # r6: 92.3%; r79: 97.1 / 96.8% (x 32: 97.0 / 97.0%)
    65536: (1, 2048, 4, "early", 7, 72),  # r34: 88.2% (r24's 2048 x 4 "split" x 6: 85.8%)
    131072: (1, 4096, 4, "early", 4, 128),  # r45: fp16 91.6% (r31's x 3 uncapped: 88.5%)
    None: (1, 8192, 8, "early", 2, 128),  # r34: 87.8% at 256K (r31's 2048 x 4 x 6: 78.1%)
}
FWD_RES = {  # bf16/fp16 with a residual, where it differs from FWD (r34: FWD's capped entries
    # read 92.0% at 64K and 85.4% at 256K with a residual)
    512: (2, 512, 8, "1p", 1),  # r55b: 99.8% (FWD's 2 x 512 x 4: 99.4%; r1's 32 x 512: 98.6%)
    1024: (1, 1024, 8, "1p", 1),  # r55b: 99.8% (FWD's 1 x 1024 x 4: 99.2%)
    16384: (1, 16384, 8, "1p", 1),  # r79: 99.8 / 99.9% bf16 / fp16 (FWD's x 16: 99.5 / 99.6%)
    65536: (1, 4096, 8, "early+dyn", 2),  # r93: bf16 97.7-97.8% (rows fixed: 96.9-97.1); r65b:
    # 97.3-97.4% twice (r24's 2048 x 4 "split" x 6: 96.6-96.8)
    131072: (1, 4096, 8, "early+dyn", 2),  # rows handed out: +0.2-0.5 against fixed in runs 93,
    # 95, 97, 98, +0.0 in r108 (bf16 97.3-97.8%, fp16 97.3-97.7); r65b: 97.6-97.7% rows fixed
    None: (1, 8192, 8, "early", 1),  # r65b: 97.8-98.1% at 256K (r31's 2048 x 4 "early" x 6: 97.1-97.4)
}
FWD_BF16 = {  # bf16 without a residual and with w * x_hat in fp32 (Gemma casting, an offset;
    # launch.native_weight), where it differs from FWD: at FWD's caps that code spills (2048 x 4
    # "early" at 72 registers: 16 bytes; regs.py) where fp16's does not. Multiplied in bf16, it
    # does not, and FWD's entries serve (r51: 90.6 / 91.9 / 91.7% at 64K / 128K / 256K, against
    # 89.6 / 89.2 / 88.0% for these, multiplied in bf16 too)
    65536: (1, 2048, 4, "early", 6, 80),  # r40: 89.6% (FWD's entry: 88.3% in bf16, 91.0% fp16)
    131072: (1, 4096, 8, "early", 3, 80),  # r45: 88.5% (FWD's: 87.6%, spills 48 bytes in bf16)
}
FWD_FP32 = {  # (r1's defaults below 32K, 4096 elements a program, read 98.1-99.3% in r54b)
    512: (2, 512, 8, "1p", 1),  # r54b: 100.2% (8 x 512 x 4 warps: 99.1%)
    1024: (1, 1024, 8, "1p", 1),  # r54b: 100.2% (4 x 1024 x 4: 99.2%)
    2048: (2, 2048, 16, "1p", 1),  # r54b: 99.4% (2 x 2048 x 4: 99.3%)
    4096: (2, 4096, 32, "1p", 1),  # r54b: 99.7% (1 x 4096 x 4: 98.8%)
    8192: (1, 8192, 32, "1p", 1),  # r54b: 99.4% (x 8: 98.1%)
    16384: (1, 16384, 16, "1p", 1),  # r54b: 98.7% (x 8: 98.2%); r58b: 98.1% both
    32768: (1, 32768, 32, "1p", 1),  # r6: 96.1% (r54b: 97.3%)
    65536: (1, 2048, 4, "early+dyn", 4),  # r93: 98.4% (rows fixed: 97.6-97.7); r31: 95.0%
    131072: (1, 4096, 4, "early", 2),  # r45: 95.5% (r24's 8192 x 8 "split" x 2: 92.9%)
    None: (1, 8192, 8, "early", 1),  # r45: 95.3% at 256K ("split": 92.7%); asked 2, 1 fits (r69)
}
FWD_FP32_RES = {  # fp32 with a residual, where it differs from FWD_FP32
    2048: (1, 2048, 16, "1p", 1),  # r54b: 100.3% (2 x 2048 x 4: 98.5%)
    4096: (1, 4096, 32, "1p", 1),  # r54b: 100.5% (1 x 4096 x 4: 97.9%)
    16384: (1, 16384, 32, "1p", 1),  # r54b: 100.3% (x 16: 98.8%)
    65536: (1, 4096, 8, "early", 1),  # r65b: 98.0-98.2% twice (FWD_FP32's 2048 x 4 x 4: 97.6-97.7)
    131072: (1, 2048, 4, "split+dyn", 3),  # r93: 99.7% (rows fixed: 98.6-98.7); r49: 97.1%; 3 fit an
    # SM, not the 4 asked (r69); capped to fit 4: 97.8% against 98.5-98.8 (r70)
    None: (1, 2048, 4, "early+dyn", 3),  # r93: 99.4% at 256K (rows fixed: 98.8-98.9); r49: 97.6%; 3
    # fit (r69); capped to fit 4: 97.3% against 98.9-99.2 (r70)
}
BWD = {  # bf16/fp16 (one-pass entries serve fp32 too: r3 reached 89-93% there)
    512: (16, 512, 8, "1p", 1),  # r6: 87.7%
    1024: (8, 1024, 8, "1p", 1),  # r6: 87.1%
    2048: (4, 2048, 8, "1p", 1),  # r6: 87.8%
    4096: (2, 4096, 8, "1p", 1),  # r6: 89.2%
    8192: (1, 8192, 8, "1p", 1),  # r6: 88.8%
    16384: (1, 4096, 4, "split", 2),  # r24: 82.3% (one-pass: 64.0%, r6)
    32768: (1, 4096, 4, "split", 2),  # r24: 82.1%
    65536: (1, 2048, 4, "early", 4, 128),  # r34: 85.2% (r24's 4096 x 4 "split" x 2: 81.4%)
    131072: (1, 4096, 8, "early", 2, 128),  # r34: 85.3% (r24's 4096 x 4 "split" x 2: 82.0%)
    None: (1, 8192, 16, "early", 1),  # r31: 85.1% at 256K ("split" 8192 x 8 x 1: 81.0%, r24)
}
BWD_FP32 = {  # fp32 SPLIT falls to 6-12% in layouts that spill (r17, r23): these spill nothing
    512: (4, 512, 8, "1p", 2),  # r55b: 93.5% (r27's 8 x 512 x 4: 90.8%)
    1024: (2, 1024, 4, "1p", 2),  # r55b: 93.3% (BWD's 8 x 1024 x 8: 92.6%)
    16384: (1, 1024, 4, "early", 4, 128),  # r67b: 99.5% twice; uncapped, ptxas took > 128 registers
    # on the GPU after run 59's epoch slots, 3 fit an SM, not 4: 93.2% (r47: 96.0% when 4 fit)
    32768: (1, 2048, 4, "early", 2),  # r47: 94.7% (r24's 2048 x 8 "split" x 2: 90.0%)
    65536: (1, 2048, 4, "early", 2),  # r31: 95.8% ("split" 2048 x 8 x 2: 91.5%, r24)
    131072: (1, 4096, 8, "early", 1),  # r47: 95.2% (r24's 2048 x 4 "split" x 2: 84.8%)
    None: (1, 1024, 4, "early", 4),  # r47: 88.9% at 256K (r24's 2048 x 4 "split" x 2: 82.9%)
}
# Short rows (below the tables' first key): elements a program should hold, by element size.
TILE_ELEMS = {2: 8192, 4: 4096, 8: 2048}
# (largest tile in elements, num_warps); first row that fits wins.
WARPS = [(1024, 2), (4096, 4), (8192, 8), (16384, 8), (32768, 16), (1 << 30, 32)]


def pow2(v: int) -> int:
    """Next power of two >= v (triton.next_power_of_2 costs ~1.5 us a call in triton 3.9)."""
    return 1 << (v - 1).bit_length() if v > 1 else 1


@functools.lru_cache(maxsize=1024)
def with_rows(cfg: Config, m: int, sms: int) -> Config:
    """cfg for only m rows: BLOCK_M no larger than the rows there are, then halved until the
    tiles cover the `sms` multiprocessors (decoding's M = 1 .. a few hundred: one program a row
    on as many SMs as there are rows, instead of a few full tiles), warps cut to match."""
    bm = min(cfg.block_m, pow2(m))
    while bm > 1 and -(-m // bm) < sms:
        bm //= 2
    if bm == cfg.block_m:
        return cfg
    warps = min(cfg.num_warps, max(1, bm * cfg.block_n // 256))  # >= 8 elements a thread
    return dataclasses.replace(cfg, block_m=bm, num_warps=warps)


def _size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _lookup(table, block_n: int, size: int) -> Config:
    if block_n < 512:  # short rows: several rows a program, warps by tile size
        block_m = max(1, min(256, TILE_ELEMS[size] // block_n))
        e = block_m * block_n
        return Config(block_m, block_n, next(w for lim, w in WARPS if e <= lim), True)
    bm, bn, w, mode, pps, *cap = table.get(block_n) or table[None]
    mode, dyn = mode.removesuffix("+dyn"), mode.endswith("+dyn")
    if size == 8 and (mode != "1p" or block_n > 8192):  # fp64: twice the registers; no SPLIT
        mode, bn = "loop", 4096
    if mode == "1p":
        return Config(bm, bn, w, True, False, pps)
    return Config(1, bn, w, False, mode != "loop", pps, early=mode == "early",
                  maxnreg=cap[0] if cap else 0, dynamic=dyn and mode != "loop")


@functools.lru_cache(maxsize=1024)
def fwd_config(n: int, dtype: torch.dtype, residual: bool = False, native: bool = True) -> Config:
    """native: SPLIT would multiply w * x_hat in the 16-bit dtype (launch.native_weight)."""
    size = _size(dtype)
    block_n = pow2(n)
    if size == 4 and block_n >= 512:
        res = residual and _overrides(FWD_FP32_RES, FWD_FP32, block_n)
        return _lookup(FWD_FP32_RES if res else FWD_FP32, block_n, size)
    if residual and _overrides(FWD_RES, FWD, block_n):
        return _lookup(FWD_RES, block_n, size)
    bf16_fp32_multiply = dtype == torch.bfloat16 and not residual and not native
    if bf16_fp32_multiply and _overrides(FWD_BF16, FWD, block_n):
        return _lookup(FWD_BF16, block_n, size)
    return _lookup(FWD, block_n, size)


def regs_for(progs_per_sm: int, num_warps: int) -> int:
    """The most registers a thread may use (a maxnreg) for progs_per_sm programs of num_warps
    warps on one Hopper SM (65536 registers, allocated in 8s)."""
    return min(255, 65536 // (progs_per_sm * num_warps * 32) // 8 * 8)


def _overrides(over, base, block_n: int) -> bool:
    """over's entry applies: it names block_n, or its None entry covers rows past base's keys."""
    return block_n in over or (None in over and block_n > max(k for k in base if k))


@functools.lru_cache(maxsize=1024)
def bwd_config(n: int, dtype: torch.dtype) -> Config:
    size, block_n = _size(dtype), pow2(n)
    fp32 = size == 4 and _overrides(BWD_FP32, BWD, block_n)
    return _lookup(BWD_FP32 if fp32 else BWD, block_n, size)


@functools.lru_cache(maxsize=16)
def device_props(index: int):
    return torch.cuda.get_device_properties(index)


def num_programs(device: torch.device, cfg: Config) -> int:
    """Persistent grid size for the backward: programs that fit on the device at once."""
    if device.type == "cuda":
        return device_props(device.index or 0).multi_processor_count * cfg.progs_per_sm
    return 4  # the interpreter runs programs one after another: few, large ones are faster

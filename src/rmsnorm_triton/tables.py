"""Launch tables as data: (GPU architecture, N, dtype) -> block shape, warps, programs per SM.

No autotuning at the first call: a table lookup costs nothing and is the same on every run.
Each GPU architecture that has its own table is keyed by its compute capability; the device's
own SM count, registers and shared memory per SM size the grids at launch (split.py checks that
a SPLIT grid is resident). A GPU that no table covers takes GENERIC: one pass while a row fits
8K elements, the block loop past it, never SPLIT (whose programs wait for each other and whose
layouts spill where the register file differs). options.table = "generic" (RMSNORM_TRITON_TABLE)
forces GENERIC on any GPU, to test it.

An entry is (BLOCK_M, BLOCK_N, num_warps, mode, programs per SM[, maxnreg]), keyed by
next_power_of_2(N) (None: past the largest key). mode: "1p" one pass; "split" / "early" SPLIT
with the next round's loads after / before the publish; "+dyn" rows handed out at run time
(forward only); "loop" the block loop. maxnreg caps the registers a thread may use (ptxas spills
past it) so that the programs asked for fit an SM.

Where the sm_90 entries come from: `python benchmarks/tune.py --sweep --ops fwd,res,bwd
--dtypes bf16,fp16,fp32` on an H100 SXM (132 SMs), Triton 3.6, each layout timed against the
copy bandwidth measured in the same run; the figure beside an entry is its % of that copy (the
next best layout in brackets); benchmarks/data/results.csv has the current figures per cell.
benchmarks/regs.py --table shows each entry's registers and spills under the installed Triton.
"""

import dataclasses
import functools
from dataclasses import dataclass

import torch

from . import _triton, options


@dataclass(frozen=True)
class Config:
    block_m: int  # rows per program (one-pass only)
    block_n: int  # elements per block
    num_warps: int
    one_pass: bool  # the whole row fits in one block and stays in registers
    split: bool = False  # GPU only: a row's blocks spread over programs that meet (kernels/meet.py)
    progs_per_sm: int = 1  # split: programs resident per multiprocessor (checked at launch)
    pairs: bool = True  # split: 16-bit chunks prefetched as 32-bit words where rows align
    early: bool = False  # split: the next round's loads issued before this round's publish
    maxnreg: int = 0  # split: registers a thread may use (0: as ptxas likes; past it, spills)
    dynamic: bool = False  # split forward: rows handed out at run time (forward.py DYNAMIC)


# ---- sm_90 (H100, H200): tune.py's sweeps, % of copy ------------------------------------------
# FWD and BWD serve bf16 and fp16 (same bytes); the _RES and _BF16 tables override them where a
# residual or bf16's own code (more registers) measured differently.
FWD = {  # bf16/fp16; tune.py --sweep --ops fwd --dtypes bf16,fp16
    512: (2, 512, 4, "1p", 1),  # 98.2% (32 x 512 x 32 warps: 96.5%)
    1024: (1, 1024, 4, "1p", 1),  # 97.9%
    2048: (1, 2048, 8, "1p", 1),  # 97.5% (2 x 2048 x 8: 97.0%)
    4096: (1, 4096, 8, "1p", 1),  # 97.1% (4 x 4096 x 8: 96.3%)
    8192: (1, 8192, 16, "1p", 1),  # 94.5%
    16384: (1, 16384, 16, "1p", 1),  # 99.4 / 99.5% bf16 / fp16 with the product in 16 bits
    # (x 8 warps: 98.4 / 98.8%; in fp32: 99.0 / 99.4%)
    32768: (1, 32768, 16, "1p", 1),  # 97.1 / 96.8% (x 32: 97.0 / 97.0%)
    65536: (1, 2048, 4, "early", 7, 72),  # 88.2% (2048 x 4 "split" x 6: 85.8%)
    131072: (1, 4096, 4, "early", 4, 128),  # fp16 91.6% (x 3 uncapped: 88.5%)
    None: (1, 8192, 8, "early", 2, 128),  # 87.8% at 256K (2048 x 4 x 6: 78.1%)
}
FWD_RES = {  # tune.py --sweep --ops res --dtypes bf16,fp16: where it differs from FWD (FWD's
    # capped entries read 92.0% at 64K and 85.4% at 256K with a residual)
    512: (2, 512, 8, "1p", 1),  # 99.8% (FWD's 2 x 512 x 4: 99.4%; 32 x 512: 98.6%)
    1024: (1, 1024, 8, "1p", 1),  # 99.8% (FWD's 1 x 1024 x 4: 99.2%)
    16384: (1, 16384, 8, "1p", 1),  # 99.8 / 99.9% bf16 / fp16 (FWD's x 16: 99.5 / 99.6%)
    65536: (1, 4096, 8, "early+dyn", 2),  # bf16 97.7-97.8% (rows fixed: 96.9-97.1%; 2048 x 4
    # "split" x 6: 96.6-96.8%)
    131072: (1, 4096, 8, "early+dyn", 2),  # bf16 97.3-97.8%, fp16 97.3-97.7% (rows handed out:
    # +0.0 to +0.5 against fixed over five runs)
    None: (1, 8192, 8, "early", 1),  # 97.8-98.1% at 256K (2048 x 4 "early" x 6: 97.1-97.4%)
}
FWD_BF16 = {  # bf16 without a residual and with w * x_hat in fp32 (Gemma casting, an offset;
    # native_weight), where it differs from FWD: at FWD's caps that code spills (2048 x 4
    # "early" at 72 registers: 16 bytes) where fp16's does not. Multiplied in bf16 it does not,
    # and FWD's entries serve (90.6 / 91.9 / 91.7% at 64K / 128K / 256K against 89.6 / 89.2 /
    # 88.0% for these)
    65536: (1, 2048, 4, "early", 6, 80),  # 89.6% (FWD's entry: 88.3% in bf16, 91.0% fp16)
    131072: (1, 4096, 8, "early", 3, 80),  # 88.5% (FWD's: 87.6%, spills 48 bytes in bf16)
}
FWD_FP32 = {  # tune.py --sweep --ops fwd --dtypes fp32 (4096 elements a program: 98.1-99.3%)
    512: (2, 512, 8, "1p", 1),  # 100.2% (8 x 512 x 4 warps: 99.1%)
    1024: (1, 1024, 8, "1p", 1),  # 100.2% (4 x 1024 x 4: 99.2%)
    2048: (2, 2048, 16, "1p", 1),  # 99.4% (2 x 2048 x 4: 99.3%)
    4096: (2, 4096, 32, "1p", 1),  # 99.7% (1 x 4096 x 4: 98.8%)
    8192: (1, 8192, 32, "1p", 1),  # 99.4% (x 8: 98.1%)
    16384: (1, 16384, 16, "1p", 1),  # 98.1-98.7% (x 8: 98.1-98.2%)
    32768: (1, 32768, 32, "1p", 1),  # 96.1-97.3%
    65536: (1, 2048, 4, "early+dyn", 4),  # 98.4% (rows fixed: 97.6-97.7%)
    131072: (1, 4096, 4, "early", 2),  # 95.5% (8192 x 8 "split" x 2: 92.9%)
    None: (1, 8192, 8, "early", 1),  # 95.3% at 256K ("split": 92.7%); 2 asked, 1 fits an SM
}
FWD_FP32_RES = {  # tune.py --sweep --ops res --dtypes fp32: where it differs from FWD_FP32
    2048: (1, 2048, 16, "1p", 1),  # 100.3% (2 x 2048 x 4: 98.5%)
    4096: (1, 4096, 32, "1p", 1),  # 100.5% (1 x 4096 x 4: 97.9%)
    16384: (1, 16384, 32, "1p", 1),  # 100.3% (x 16: 98.8%)
    65536: (1, 4096, 8, "early", 1),  # 98.0-98.2% (FWD_FP32's 2048 x 4 x 4: 97.6-97.7%)
    131072: (1, 2048, 4, "split+dyn", 3),  # 99.7% (rows fixed: 98.6-98.7%); 3 fit an SM, not the
    # 4 asked; capped to fit 4: 97.8% against 98.5-98.8%
    None: (1, 2048, 4, "early+dyn", 3),  # 99.4% at 256K (rows fixed: 98.8-98.9%); capped to fit
    # 4: 97.3% against 98.9-99.2%
}
BWD = {  # tune.py --sweep --ops bwd --dtypes bf16,fp16 (its one-pass entries serve fp32 too)
    512: (16, 512, 8, "1p", 1),  # 87.7%
    1024: (8, 1024, 8, "1p", 1),  # 87.1%
    2048: (4, 2048, 8, "1p", 1),  # 87.8%
    4096: (2, 4096, 8, "1p", 1),  # 89.2%
    8192: (1, 8192, 8, "1p", 1),  # 88.8%
    16384: (1, 4096, 4, "split", 2),  # 82.3% (one pass: 64.0%)
    32768: (1, 4096, 4, "split", 2),  # 82.1%
    65536: (1, 2048, 4, "early", 4, 128),  # 85.2% (4096 x 4 "split" x 2: 81.4%)
    131072: (1, 4096, 8, "early", 2, 128),  # 85.3% (4096 x 4 "split" x 2: 82.0%)
    None: (1, 8192, 16, "early", 1),  # 85.1% at 256K ("split" 8192 x 8 x 1: 81.0%)
}
BWD_FP32 = {  # tune.py --sweep --ops bwd --dtypes fp32 (layouts that spill fall to 6-12%)
    512: (4, 512, 8, "1p", 2),  # 93.5% (8 x 512 x 4: 90.8%)
    1024: (2, 1024, 4, "1p", 2),  # 93.3% (BWD's 8 x 1024 x 8: 92.6%)
    16384: (1, 1024, 4, "early", 4, 128),  # 99.5% twice; uncapped, ptxas took > 128 registers
    # and 3 fit an SM, not 4: 93.2% (96.0% when 4 fit)
    32768: (1, 2048, 4, "early", 2),  # 94.7% (2048 x 8 "split" x 2: 90.0%)
    65536: (1, 2048, 4, "early", 2),  # 95.8% ("split" 2048 x 8 x 2: 91.5%)
    131072: (1, 4096, 8, "early", 1),  # 95.2% (2048 x 4 "split" x 2: 84.8%)
    None: (1, 1024, 4, "early", 4),  # 88.9% at 256K (2048 x 4 "split" x 2: 82.9%)
}
SM90 = dict(fwd=FWD, fwd_res=FWD_RES, fwd_bf16=FWD_BF16, fwd_fp32=FWD_FP32,
            fwd_fp32_res=FWD_FP32_RES, bwd=BWD, bwd_fp32=BWD_FP32)

# ---- any other GPU: safe, not tuned -----------------------------------------------------------
# One pass while a tile holds 8K elements at 32 a thread (8 warps: ~100 registers, no spill on
# any 64K-register SM), the block loop past that (x read twice, nothing resident assumed).
_GENERIC_FWD = {512: (2, 512, 4, "1p", 1), 1024: (1, 1024, 4, "1p", 1),
                2048: (1, 2048, 8, "1p", 1), 4096: (1, 4096, 8, "1p", 1),
                8192: (1, 8192, 8, "1p", 1), None: (1, 4096, 8, "loop", 1)}
_GENERIC_BWD = {512: (16, 512, 8, "1p", 1), 1024: (8, 1024, 8, "1p", 1),
                2048: (4, 2048, 8, "1p", 1), 4096: (2, 4096, 8, "1p", 1),
                8192: (1, 8192, 8, "1p", 1), None: (1, 4096, 8, "loop", 1)}
GENERIC = dict(fwd=_GENERIC_FWD, fwd_res={}, fwd_bf16={}, fwd_fp32={}, fwd_fp32_res={},
               bwd=_GENERIC_BWD, bwd_fp32={})

# compute capability -> tables; the tables assume an SM of at least this many registers and
# bytes of shared memory (SPLIT's layouts were sized for them)
TABLES = {(9, 0): SM90}
_NEEDS = {(9, 0): (65536, 227 * 1024)}

# Short rows (below the tables' first key): elements a program should hold, by element size.
TILE_ELEMS = {2: 8192, 4: 4096, 8: 2048}
# (largest tile in elements, num_warps); first row that fits wins.
WARPS = [(1024, 2), (4096, 4), (8192, 8), (16384, 8), (32768, 16), (1 << 30, 32)]


def pow2(v: int) -> int:
    """Next power of two >= v (triton.next_power_of_2 costs ~1.5 us a call in triton 3.9)."""
    return 1 << (v - 1).bit_length() if v > 1 else 1


@functools.lru_cache(maxsize=16)
def device_props(index: int):
    return torch.cuda.get_device_properties(index)


@dataclass(frozen=True)
class GPU:
    """A GPU's properties, named as torch.cuda.get_device_properties names them."""
    name: str
    major: int
    minor: int
    multi_processor_count: int
    regs_per_multiprocessor: int
    shared_memory_per_multiprocessor: int
    max_threads_per_multi_processor: int


# GPUs a launch can be planned for without one here (the visualizer's "how the GPU runs it"),
# as torch reports them on each; name is what the bench's data file calls the GPU.
GPUS = {
    "H100 SXM": GPU("NVIDIA H100 80GB HBM3", 9, 0, 132, 65536, 233472, 2048),
    "H200": GPU("NVIDIA H200", 9, 0, 132, 65536, 233472, 2048),
    "H100 PCIe": GPU("NVIDIA H100 PCIe", 9, 0, 114, 65536, 233472, 2048),
    "A100 SXM": GPU("NVIDIA A100-SXM4-80GB", 8, 0, 108, 65536, 167936, 2048),
}


def table_for(device) -> tuple:
    """The tables' key for a device: its compute capability where a table covers it (and its
    SMs have the registers and shared memory that table assumes), else "generic". Under the
    interpreter (a CPU tensor) the sm_90 tables: the layouts the GPU runs, checked on the CPU.
    options.table = "generic" forces the generic tables."""
    if options.get().table == "generic":
        return "generic"
    if device.type != "cuda":
        return (9, 0)
    return table_for_props(device_props(device.index or 0))


def table_for_props(p) -> tuple:
    """table_for of a GPU with properties p (torch's, or a GPU of GPUS)."""
    if options.get().table == "generic":
        return "generic"
    cc = (p.major, p.minor)
    regs, smem = _NEEDS.get(cc, (1 << 62, 0))
    fits = p.regs_per_multiprocessor >= regs and p.shared_memory_per_multiprocessor >= smem
    return cc if cc in TABLES and fits else "generic"


def _tables(arch):
    return GENERIC if arch == "generic" else TABLES[arch]


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
def fwd_config(n: int, dtype: torch.dtype, residual: bool = False, native: bool = True,
               arch=(9, 0)) -> Config:
    """native: SPLIT would multiply w * x_hat in the 16-bit dtype (native_weight below)."""
    t = _tables(arch)
    size = _size(dtype)
    block_n = pow2(n)
    if size == 4 and block_n >= 512 and t["fwd_fp32"]:
        res = residual and _overrides(t["fwd_fp32_res"], t["fwd_fp32"], block_n)
        return _lookup(t["fwd_fp32_res"] if res else t["fwd_fp32"], block_n, size)
    if residual and _overrides(t["fwd_res"], t["fwd"], block_n):
        return _lookup(t["fwd_res"], block_n, size)
    bf16_fp32_multiply = dtype == torch.bfloat16 and not residual and not native
    if bf16_fp32_multiply and _overrides(t["fwd_bf16"], t["fwd"], block_n):
        return _lookup(t["fwd_bf16"], block_n, size)
    return _lookup(t["fwd"], block_n, size)


def regs_for(progs_per_sm: int, num_warps: int, regs_per_sm: int = 65536) -> int:
    """The most registers a thread may use (a maxnreg) for progs_per_sm programs of num_warps
    warps on one SM of regs_per_sm registers (allocated in 8s)."""
    return min(255, regs_per_sm // (progs_per_sm * num_warps * 32) // 8 * 8)


def _overrides(over, base, block_n: int) -> bool:
    """over's entry applies: it names block_n, or its None entry covers rows past base's keys."""
    return block_n in over or (None in over and block_n > max(k for k in base if k))


@functools.lru_cache(maxsize=1024)
def bwd_config(n: int, dtype: torch.dtype, arch=(9, 0)) -> Config:
    t = _tables(arch)
    size, block_n = _size(dtype), pow2(n)
    fp32 = size == 4 and _overrides(t["bwd_fp32"], t["bwd"], block_n)
    return _lookup(t["bwd_fp32"] if fp32 else t["bwd"], block_n, size)


def num_programs(device: torch.device, cfg: Config) -> int:
    """Persistent grid size for the backward: programs that fit on the device at once."""
    sms = device_props(device.index or 0).multi_processor_count if device.type == "cuda" else 0
    return programs_at_once(sms, cfg)


def programs_at_once(sms: int, cfg: Config) -> int:
    """num_programs for a GPU of `sms` multiprocessors (0: the interpreter)."""
    if sms:
        return sms * cfg.progs_per_sm
    return 4  # the interpreter runs programs one after another: few, large ones are faster


# ---- how a launch multiplies and waits ---------------------------------------------------
def native_weight(weight, casting, offset, in_dtype, out_dtype) -> bool:
    """y = x_hat * w in the 16-bit dtype rounds as the fp32 product does: Llama casting (x_hat
    rounded to that dtype first), no offset, and input, weight and output all of that dtype."""
    return (weight is not None and casting == "llama" and offset == 0.0
            and weight.dtype in (torch.bfloat16, torch.float16)
            and weight.dtype == in_dtype == out_dtype)


def native_layout(cfg, split: bool, opts) -> bool:
    """The launch multiplies in 16 bits where native_weight allows it: a SPLIT launch (split:
    taken, not only asked), or one pass over rows of options.w_native_one_pass or more (on the
    H100: +1.3 points of copy at 32K, +0.2-0.4 at 16K, -0.2 at 4K-8K)."""
    return split or (cfg.one_pass and cfg.block_n >= opts.w_native_one_pass)


def pdl_enabled(device: torch.device) -> bool:
    """Launch as a programmatic dependent: a CUDA device of compute capability 9.0 or later
    (griddepcontrol is sm_90 PTX), not under the interpreter, unless options.pdl is off."""
    return (options.get().pdl and not _triton.interpreted() and device.type == "cuda"
            and device_props(device.index or 0).major >= 9)

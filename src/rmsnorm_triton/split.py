"""SPLIT's host side: the slots and their epochs, a grid that is resident at once, PAIRS.

SPLIT's programs wait for each other (kernels/meet.py), so its grid is sized to what the whole
GPU holds at once, checked against the compiled kernel's registers and shared memory. A process
given only part of the multiprocessors (MPS with an active-thread percentage, green contexts)
could then wait forever: options.split = False (RMSNORM_TRITON_SPLIT=0) walks long rows in
blocks instead (slower past 32K, never waiting).
"""

import torch

from . import _triton, options, tables
from .kernels import N_COUNTERS


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def resident_per_sm(launch, num_warps) -> int:
    """How many programs of the compiled kernel one multiprocessor holds at once."""
    props = tables.device_props(_triton.current_device())
    threads = num_warps * 32
    n_regs, shared = launch.resources()
    by_regs = props.regs_per_multiprocessor // max(1, cdiv(n_regs, 8) * 8 * threads)
    by_smem = props.shared_memory_per_multiprocessor // max(1, shared)
    return max(0, min(by_regs, by_smem, props.max_threads_per_multi_processor // threads, 32))


def grid(kernel, named, groups_of, cfg, m, n):
    """(programs, Launch) so that every program is resident at once, or None if N is too long
    for that. groups_of(groups, chunks) is the kernel's NUM_GROUPS / NUM_PROGS, set in named."""
    chunks = cdiv(n, cfg.block_n)
    sms = tables.device_props(_triton.current_device()).multi_processor_count
    # The table's count was chosen for the plain kernel; a variant with more registers (the fused
    # residual: 2048 x 4 warps fits 6 an SM without it, 5 with it) takes the most that fit.
    for per_sm in range(cfg.progs_per_sm, 0, -1):
        groups = row_groups(m, chunks, sms, per_sm)
        if groups < 1:
            return None
        named.update(groups_of(groups, chunks))
        launch = _triton.Launch(kernel, kernel.positional(named), cfg.num_warps, cfg.maxnreg,
                                options.get().cooperative)
        if resident_per_sm(launch, cfg.num_warps) >= per_sm:
            return groups * chunks, groups, launch
    return None


def row_groups(m: int, chunks: int, sms: int, per_sm: int) -> int:
    """SPLIT's row groups (each of `chunks` programs, one per chunk of a row) when per_sm
    programs are resident on each of `sms` multiprocessors; 0 where SPLIT cannot run."""
    if chunks > N_COUNTERS:  # one row counter a chunk (meet.counter)
        return 0
    return max(0, min(m, sms * per_sm // chunks))


def words(t: torch.Tensor, n: int) -> bool:
    """PAIRS: t's rows can be read as 32-bit words, four to a 16-byte load (16-bit elements, an
    even N, rows and start 16-byte aligned)."""
    return t.element_size() == 2 and n % 2 == 0 and t.stride(0) % 8 == 0 and t.data_ptr() % 16 == 0


# The slots, kept from call to call per (device, stream): [int64 tensor, last epoch].
_SLOTS = {}


def slots(m: int, chunks: int, device) -> tuple:
    """The (M, S) partial-sum slots and this call's epoch (kernels/meet.py): a slot arrived
    once it holds the epoch. Calls on one stream run in order, so each reuses the stream's slots
    with the next epoch, and no kernel empties them first. Captured in a CUDA graph, a call
    takes fresh zeroed slots (the zeroing is captured too, so every replay starts empty) and
    epoch 1. The slots are a view past the buffer's first 2 * N_COUNTERS words: the forward's
    row counters (meet.counter), which the kernels address below the slots."""
    device = torch.device(device)
    head = 2 * N_COUNTERS
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return torch.zeros(head + m * chunks, dtype=torch.int64, device=device)[head:], 1
    key = (device, _triton.stream(device.index or 0) if device.type == "cuda" else None)
    entry = _SLOTS.get(key)
    if entry is None or entry[0].numel() < m * chunks or entry[1] >= 2**31 - 1:
        if len(_SLOTS) >= 64:  # many streams (one made per call, say): let their slots go
            _SLOTS.clear()
        # epoch 0 is never used: fresh slots read as not arrived
        buf = torch.zeros(head + m * chunks, dtype=torch.int64, device=device)
        entry = _SLOTS[key] = [buf[head:], 0]
    entry[1] += 1
    return entry[0], entry[1]

"""Keep freed memory in the process instead of returning it to the OS (glibc only).

glibc serves blocks over its mmap threshold (at most 32 MB by default) with mmap and unmaps them on free.
AFM's per-batch pair tensors are that large from batch ~1024 up at k=256, so every training step
page-faulted them back in. Raising the thresholds makes large-batch AFM training faster and changes
nothing at small batches (docs/performance.md has the figures).
The cost: the process keeps its peak memory until it exits. Training commands turn it on; the app, which
lives long and trains occasionally, does not.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MAX_MMAP_THRESHOLD = 1 << 30  # blocks under 1 GiB come from the heap
_MAX_TRIM_THRESHOLD = (1 << 31) - 1  # never give the heap's top back


def _set_thresholds(mmap_threshold: int, trim_threshold: int, trim_now: bool = False) -> bool:
    """glibc's mmap and trim thresholds for this process; True where they took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
        if trim_now:
            libc.malloc_trim(0)
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    return bool(done)


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True where that took effect."""
    return _set_thresholds(_MAX_MMAP_THRESHOLD, _MAX_TRIM_THRESHOLD)


_BOUNDED_MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its sliding threshold: a step's blocks stay in the heap
_BOUNDED_TRIM_THRESHOLD = 64 << 20


def return_freed_memory() -> bool:
    """For work whose point is bounded memory (a streamed click log): blocks over 32 MB are mapped and given
    back when freed, and the heap's free top over 64 MB is returned, so the peak is what is held at once,
    not everything ever allocated. Glibc's own defaults (a 128 KB threshold, fixed once set) would map and
    fault in every step's blocks: FM on 5M Criteo-shaped rows stepped 2.5x slower."""
    return _set_thresholds(_BOUNDED_MMAP_THRESHOLD, _BOUNDED_TRIM_THRESHOLD, trim_now=True)

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


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True where that took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mmap_set = mallopt(_M_MMAP_THRESHOLD, _MAX_MMAP_THRESHOLD)
    return bool(mmap_set) and bool(mallopt(_M_TRIM_THRESHOLD, _MAX_TRIM_THRESHOLD))


_DEFAULT_THRESHOLD = 128 * 1024  # glibc's defaults for both


def return_freed_memory() -> bool:
    """Undo `retain_freed_memory`: work whose point is bounded memory (a streamed click log) gives freed
    blocks back, so its peak is what it holds at once, not everything it ever allocated."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return bool(done)

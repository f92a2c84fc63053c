"""How many CPU threads PyTorch gets for a piece of work.

PyTorch's intra-op threads wait for each other at every operation. When another process holds a core (a
browser beside the app, a second training run), a small operation on two threads waits for the busy core
and gets much slower than on one: measured on a 2-core machine with one other busy process, a wide-data FM
epoch took 12.4 s on two threads and 0.1 s on one (docs/performance.md). Small work therefore runs on one
thread; large work takes the cores other processes leave idle (`choose_threads`). Training decides it
once per run; explaining one instance took the same 0.5 ms either way, so explanations leave the count
alone. Only ever fewer threads than PyTorch would use, so OMP_NUM_THREADS and torch.set_num_threads still
cap everything.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

import torch

# Multiply-adds of one training step (or one explanation batch) below which one thread is used: above it,
# operations are long enough that a second thread pays even when it has to wait now and then.
SMALL_WORK = 50_000_000
DEFAULT = torch.get_num_threads()  # what this process may use (OMP_NUM_THREADS, or one per core)


def _cpu_seconds() -> tuple[float, float] | None:
    """(every core's busy seconds, this process's CPU seconds) now, from /proc; None elsewhere."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and waiting for I/O
    ticks = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return (sum(fields[:8]) - idle) / ticks, own.user + own.system


def busy_cores(window: float = 0.3) -> float | None:
    """How many cores other processes kept busy over `window` seconds; None where it cannot be read."""
    before = _cpu_seconds()
    if before is None:
        return None
    time.sleep(window)
    after = _cpu_seconds()
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / window)


def choose_threads(work: int, requested: int = 0) -> tuple[int, str]:
    """The thread count for a training run and why: `requested` where it is set; one thread for small work
    (below SMALL_WORK multiply-adds a step); else the cores that other processes leave idle when the run
    starts. Beside one busy process, two threads waited on the busy core at every operation: the headline
    model trained 2.0x faster on one (docs/performance.md). A run's bits depend on its thread count, so the
    count and the reason are recorded with the model; `--threads N` repeats a run exactly."""
    if requested:
        count = max(1, min(requested, DEFAULT))
        return count, f"--threads {requested}" + (f" (at most {DEFAULT} in this process)" if count < requested else "")
    if work < SMALL_WORK:
        return 1, "small work: one thread is fastest"
    busy = busy_cores()
    if busy is None:
        return DEFAULT, "large work; the load could not be read here"
    idle = max(1, min(DEFAULT, round(os.cpu_count() - busy)))
    if idle < DEFAULT:
        return idle, f"large work, {busy:.1f} of {os.cpu_count()} cores busy with other processes at the start"
    return DEFAULT, f"large work, the cores idle at the start ({busy:.1f} busy)"


_changing = threading.Lock()


@contextmanager
def threads(count: int):
    """Run the block with `count` intra-op threads (at most the process's), then go back to the process's.
    Only training uses it, once per run, and only where the count changes; the count is global to the
    process, so changes are serialised, and two runs at once (the app's jobs) can leave the other with
    one thread for a while, never with more than the process may use."""
    wanted = max(1, min(count, DEFAULT))
    changed = wanted != torch.get_num_threads()
    if changed:
        with _changing:
            torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if changed:
            with _changing:
                torch.set_num_threads(DEFAULT)

"""How many CPU threads PyTorch gets for a piece of work.

PyTorch's intra-op threads wait for each other at every operation. When another process holds a core (a
browser beside the app, a second training run), a small operation on two threads waits for the busy core
and gets much slower than on one: measured on a 2-core machine with one other busy process, a wide-data FM
epoch took 12.4 s on two threads and 0.1 s on one (docs/performance.md). Small work therefore runs on one
thread; large work keeps PyTorch's default, where splitting pays. Training decides it once per run;
explaining one instance took the same 0.5 ms either way, so explanations leave the count alone. Only ever fewer threads than PyTorch
would use, so OMP_NUM_THREADS and torch.set_num_threads still cap everything.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import torch

# Multiply-adds of one training step (or one explanation batch) below which one thread is used: above it,
# operations are long enough that a second thread pays even when it has to wait now and then.
SMALL_WORK = 50_000_000
DEFAULT = torch.get_num_threads()  # what this process may use (OMP_NUM_THREADS, or one per core)


def threads_for(work: int) -> int:
    return 1 if work < SMALL_WORK else DEFAULT


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

"""A competing busy process, as a browser or a second job beside the app would be: `--load` runs the
benchmark beside one, so the figures show how speed degrades when a core is taken."""
from __future__ import annotations

import multiprocessing
from contextlib import contextmanager


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy_process(enabled: bool = True):
    """One process spinning on a core for the duration of the block (nothing when not enabled)."""
    if not enabled:
        yield
        return
    process = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    process.start()
    try:
        yield
    finally:
        process.terminate()
        process.join(5)

"""Refuse work that cannot fit in memory before allocating it, with a message that says what to change."""
from __future__ import annotations

import os

from afm.core.errors import AFMError

FLOAT_BYTES, ID_BYTES = 4, 8
OPTIMIZER_COPIES = 4  # a parameter, its gradient and up to two optimizer states (Adam)


def available_memory() -> int | None:
    """Bytes of memory available now (POSIX), or None where the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def training_bytes(config, batch_size: int, rows: int) -> int:
    """A generous estimate of what training `config` (an afm.models.ModelConfig) allocates: parameters
    with gradient and optimizer state, the batch tensors its family really builds (`step_bytes`: FM pools
    in O(m k) per row, AFM builds tensors per (row, pair) cell), and the data."""
    parameters = config.parameter_count() * FLOAT_BYTES * OPTIMIZER_COPIES
    data = rows * (config.num_fields * ID_BYTES + FLOAT_BYTES)
    return parameters + config.step_bytes(batch_size) + data


def check_fits(config, batch_size: int, rows: int, available: int | None = None) -> None:
    needed = training_bytes(config, batch_size, rows)
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        raise AFMError(f"training would need about {needed / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is "
                       f"available ({config.num_features:,} features x {config.num_fields} fields, "
                       f"{config.describe()}, batch {batch_size}); use a smaller batch size or embedding size, "
                       "or fewer features")


def check_allocation(count: int, what: str, item_bytes: int = ID_BYTES, available: int | None = None) -> None:
    """Refuse an array of `count` items before allocating it, where it would not fit in memory."""
    available = available_memory() if available is None else available
    if available is not None and count * item_bytes > available:
        raise AFMError(f"{what} would need {count * item_bytes / 2**30:.1f} GiB but {available / 2**30:.1f} GiB "
                       "is available")

"""Refuse work that cannot fit in memory before allocating it, with a message that says what to change."""
from __future__ import annotations

import os

from afm.errors import AFMError

FLOAT_BYTES = 4


def available_memory() -> int | None:
    """Bytes of memory available now (POSIX), or None where the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def training_bytes(num_features: int, num_fields: int, embed_dim: int, attention_factor: int, batch_size: int,
                   rows: int) -> int:
    """A generous estimate of training memory: parameters with gradients and optimiser state (x4), the
    batch's pair tensors (products, attention hidden layer, their gradients) and the data itself."""
    pairs = num_fields * (num_fields - 1) // 2
    parameters = num_features * (embed_dim + 1) * FLOAT_BYTES * 4
    per_batch = batch_size * pairs * (2 * embed_dim + 2 * attention_factor) * FLOAT_BYTES * 2
    data = rows * (num_fields * 8 + 4)
    return parameters + per_batch + data


def check_fits(num_features: int, num_fields: int, embed_dim: int, attention_factor: int, batch_size: int,
               rows: int, available: int | None = None) -> None:
    needed = training_bytes(num_features, num_fields, embed_dim, attention_factor, batch_size, rows)
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        raise AFMError(f"training would need about {needed / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is "
                       f"available ({num_features:,} features x {num_fields} fields, k={embed_dim}, t={attention_factor}, "
                       f"batch {batch_size}); use a smaller batch size or embedding size, or fewer features")

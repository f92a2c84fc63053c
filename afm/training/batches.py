"""An epoch's batches for this process: shuffled rows of an in-memory split, or shuffled chunks of a split
that stays on disk (a prepared click log), so memory holds a bounded buffer, never the split.

In memory, every epoch is a seeded permutation of the rows; under torchrun each rank takes every N-th row
of each global batch, so a step sees the batch one process would. Streamed, an epoch is a seeded
permutation of contiguous chunks; each rank reads only its own share of them (chunks r, r+N, ...), a few
chunks at a time, shuffles the rows of that buffer, and cuts its batches (the global batch over N); every
rank takes as many steps as the rank with the fewest rows this epoch, so all step together. The chunk order
is drawn from the shared generator (the same on every rank); the rows within a buffer from one of the
rank's own.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from afm.data.dataset import Split

CHUNK_ROWS = 1 << 15  # contiguous rows read at once
BUFFER_CHUNKS = 8  # chunks whose rows are shuffled together: 262,144 rows, 41 MB of int32 ids at 39 fields


class ShuffledRows:
    """The whole split as tensors on the device; each epoch a permutation of its rows."""

    def __init__(self, split: Split, batch_size: int, generator: torch.Generator, device, logistic: bool):
        self.x = torch.as_tensor(split.x, device=device)
        y = torch.as_tensor(np.asarray(split.y), device=device)
        self.y = (y > 0).float() if logistic else y  # -1/+1 labels as click / no click
        self.n, self.batch_size, self.generator, self.device = len(split), batch_size, generator, device

    def epoch(self, rank: int, ranks: int) -> tuple[int, object]:
        """(steps, iterator of (ids, labels, global batch rows)) for this rank."""
        order = torch.randperm(self.n, generator=self.generator).to(self.device)
        steps = math.ceil(self.n / self.batch_size)

        def batches():
            for b in range(steps):
                batch = order[b * self.batch_size:(b + 1) * self.batch_size]
                idx = batch[rank::ranks]  # this rank's share of the global batch
                yield self.x[idx], self.y[idx], len(batch)

        return steps, batches()

    def first_rows(self, rows: int) -> torch.Tensor:
        return self.x[:rows]


class ShuffledChunks:
    """A split read from disk a buffer at a time (afm.data.mapped.MappedIds)."""

    def __init__(self, split: Split, batch_size: int, generator: torch.Generator, device, logistic: bool,
                 seed: int = 0, chunk_rows: int = CHUNK_ROWS, buffer_chunks: int = BUFFER_CHUNKS):
        self.split, self.generator, self.device, self.logistic, self.seed = split, generator, device, logistic, seed
        self.n, self.batch_size, self.buffer_chunks = len(split), batch_size, buffer_chunks
        self.epochs = 0
        self.chunk_rows = chunk_rows

    def _chunk_share(self, ranks: int) -> int:
        return max(1, min(self.chunk_rows, self.n // (16 * ranks) or 1))  # small data: still chunks for every rank

    def epoch(self, rank: int, ranks: int) -> tuple[int, object]:
        chunk_rows = self._chunk_share(ranks)
        chunks = math.ceil(self.n / chunk_rows)
        order = torch.randperm(chunks, generator=self.generator).numpy()  # the same on every rank
        sizes = np.minimum(chunk_rows, self.n - order * chunk_rows)
        local_batch = math.ceil(self.batch_size / ranks)
        steps = min(math.ceil(int(sizes[r::ranks].sum()) / local_batch) for r in range(ranks))
        self.epochs += 1
        mine = order[rank::ranks]
        rows_rng = np.random.default_rng([self.seed, rank, self.epochs])

        def batches():
            ids, offsets = self.split.x, torch.from_numpy(self.split.x.offsets)
            done, left_x, left_y = 0, None, None
            for at in range(0, len(mine), self.buffer_chunks):
                group = mine[at:at + self.buffer_chunks]
                carried = 0 if left_y is None else len(left_y)
                rows = carried + int(np.minimum(chunk_rows, self.n - group * chunk_rows).sum())
                x, y = np.empty((rows, ids.shape[1]), dtype=np.int32), np.empty(rows, dtype=np.float32)
                if carried:
                    x[:carried], y[:carried] = left_x, left_y
                at_row = carried
                for c in group.tolist():  # each field's own ids, int32: the offsets are added a batch at a time
                    start, stop = c * chunk_rows, min(self.n, (c + 1) * chunk_rows)
                    ids.read_local(start, stop, x[at_row:at_row + stop - start])
                    y[at_row:at_row + stop - start] = self.split.y[start:stop]
                    at_row += stop - start
                shuffle = rows_rng.permutation(len(y))
                x, y = x[shuffle], y[shuffle]
                last = at + self.buffer_chunks >= len(mine)
                full = len(y) if last else len(y) // local_batch * local_batch
                for start in range(0, full, local_batch):
                    if done == steps:
                        return
                    yield self._tensors(x[start:start + local_batch], y[start:start + local_batch], offsets) + (
                        min(local_batch, full - start) * ranks,)
                    done += 1
                left_x, left_y = (x[full:].copy(), y[full:].copy()) if full < len(y) else (None, None)
                x = y = None  # the next buffer is built without this one beside it

        return steps, batches()

    def _tensors(self, x: np.ndarray, y: np.ndarray, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.from_numpy(np.ascontiguousarray(y)).to(self.device)
        ids = torch.from_numpy(np.ascontiguousarray(x)).long() + offsets  # global ids: each field after the ones before
        return ids.to(self.device), (labels > 0).float() if self.logistic else labels

    def first_rows(self, rows: int) -> torch.Tensor:
        return torch.as_tensor(self.split.x[:rows], device=self.device)


def batch_source(split: Split, batch_size: int, generator: torch.Generator, device, logistic: bool, seed: int = 0):
    """Rows in memory, or chunks from disk for a split that stays there."""
    if split.streamed:
        return ShuffledChunks(split, batch_size, generator, device, logistic, seed)
    return ShuffledRows(split, batch_size, generator, device, logistic)

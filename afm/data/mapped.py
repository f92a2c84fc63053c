"""A prepared split's ids read through a memory map, a few rows at a time, never the whole file.

`MappedIds` stands where an in-memory (N, m) int64 id matrix stands (`Split.x`): `len`, `shape`, and
indexing by a row, a slice or an array of rows return int64 global ids (each field's local id plus its
offset) for just those rows. After every read the mapped pages are released (madvise DONTNEED: clean file
pages, so nothing is lost), so the process's resident memory is what it copied, not what it has read so
far; the pages stay in the kernel's file cache for the next epoch.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

from afm.core.errors import DataError


class MappedIds:
    _map = None

    def __init__(self, path: str | os.PathLike, offsets: np.ndarray):
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            try:
                version = np.lib.format.read_magic(fh)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(fh, max_header_size=1 << 16)
            except ValueError as exc:
                raise DataError(f"{self.path}: not a .npy array ({exc})") from None
            header = fh.tell()
        if dtype != np.int32 or fortran or len(shape) != 2 or shape[1] != len(offsets):
            raise DataError(f"{self.path}: expected a C-ordered int32 (rows, {len(offsets)}) array, found "
                            f"{dtype} {shape}")
        if header + shape[0] * shape[1] * 4 > self.path.stat().st_size:
            raise DataError(f"{self.path}: shorter than the {shape} its header declares")
        self.shape = (int(shape[0]), int(shape[1]))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self._header = header

    dtype = np.dtype(np.int64)
    ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def _local(self) -> np.ndarray:
        if self._map is None:
            with open(self.path, "rb") as fh:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if self.shape[0] else b""
        return np.frombuffer(self._map, dtype=np.int32, count=self.shape[0] * self.shape[1],
                             offset=self._header).reshape(self.shape)

    def release(self) -> None:
        """Drop the mapped pages from this process's resident set (they stay in the file cache)."""
        if isinstance(self._map, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def read_local(self, start: int, stop: int, out: np.ndarray) -> None:
        """Rows start:stop as each field's own int32 ids (no offsets) into `out`: a reader that shuffles
        many rows holds half the bytes of global int64 ids and adds the offsets a batch at a time."""
        out[:] = self._local()[start:stop]
        self.release()

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):  # (rows, fields): the fields' offsets only
            rows, cols = key
            local = self._local()[rows, cols]
            out = local.astype(np.int64) + self.offsets[cols]
        else:
            if isinstance(key, np.ndarray) and key.dtype != bool and key.ndim == 1 and len(key) > 1:
                out = self._scattered(key)
            else:
                out = self._local()[key].astype(np.int64)
            out += self.offsets
        self.release()
        return out

    def _scattered(self, rows: np.ndarray) -> np.ndarray:
        """Rows here and there, read with positioned reads, not through the map: a fault on a mapped page
        maps its neighbours too (64 KB), so 20,000 random rows of a 5M-row file made 400 MB resident."""
        rows = np.asarray(rows, dtype=np.int64)
        rows = np.where(rows < 0, rows + len(self), rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        starts = np.flatnonzero(np.r_[True, np.diff(ordered) > 1])  # runs of consecutive rows: one read each
        ends = np.r_[starts[1:], len(ordered)]
        width = self.shape[1] * 4
        local = np.empty((len(rows), self.shape[1]), dtype=np.int32)
        with open(self.path, "rb", buffering=0) as fh:
            for a, b in zip(starts.tolist(), ends.tolist()):
                first, last = int(ordered[a]), int(ordered[b - 1])
                block = os.pread(fh.fileno(), (last - first + 1) * width, self._header + first * width)
                local[a:b] = np.frombuffer(block, dtype=np.int32).reshape(-1, self.shape[1])[ordered[a:b] - first]
        out = np.empty((len(rows), self.shape[1]), dtype=np.int64)
        out[order] = local
        return out

    def __array__(self, dtype=None, copy=None):
        """The whole matrix in memory: what only small prepared sets should ever do."""
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __getstate__(self):  # a worker process maps the file itself
        return {**self.__dict__, "_map": None}

    def __del__(self):
        if isinstance(self._map, mmap.mmap):
            try:
                self._map.close()
            except BufferError:  # an array still views it: the map closes when that goes
                pass

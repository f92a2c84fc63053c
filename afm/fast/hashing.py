"""Value ids in one pass over a click log: each field's values hashed to 64 bits and kept in an open-
addressing table that lives for the whole file, so a batch costs its own rows, not its field's vocabulary
(arrow's `index_in` hashes the whole value set again for every batch: most of a prepare's time at 5M rows).

Ids are given in order of first appearance; the table also counts each value's train rows. Two distinct
values share an id only if their 64-bit hashes collide: for a field of n values the chance is about
n^2 / 2^65 (3e-8 at a million values).
"""
from __future__ import annotations

import numba
import numpy as np

from afm.fast.kernels import CACHE

_jit = numba.njit(cache=CACHE, nogil=True, boundscheck=False)
EMPTY = np.uint64(0)


@_jit
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@_jit
def hash_strings(offsets, data, first, n):
    """FNV-1a over each string's bytes, then a splitmix finaliser; never 0 (the empty slot)."""
    out = np.empty(n, np.uint64)
    for i in range(n):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(offsets[first + i], offsets[first + i + 1]):
            h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
        h = _mix(h)
        out[i] = h if h != EMPTY else np.uint64(1)
    return out


@_jit
def hash_integers(values):
    out = np.empty(len(values), np.uint64)
    for i in range(len(values)):
        h = _mix(np.uint64(values[i]) + np.uint64(0x9E3779B97F4A7C15))
        out[i] = h if h != EMPTY else np.uint64(1)
    return out


@_jit
def _insert(keys, ids, hashes, valid, train, counts, size, out, new_rows):
    """Ids of `hashes` (-1 where not valid), new values given the next ids; returns (size, new count)."""
    mask = np.uint64(len(keys) - 1)
    fresh = 0
    for i in range(len(hashes)):
        if not valid[i]:
            out[i] = -1
            continue
        h = hashes[i]
        slot = h & mask
        while keys[slot] != EMPTY and keys[slot] != h:
            slot = (slot + np.uint64(1)) & mask
        if keys[slot] == EMPTY:
            keys[slot] = h
            ids[slot] = size
            new_rows[fresh] = i
            fresh += 1
            size += 1
        out[i] = ids[slot]
        if train[i]:
            counts[ids[slot]] += 1
    return size, fresh


@_jit
def _rehash(keys, ids, new_keys, new_ids):
    mask = np.uint64(len(new_keys) - 1)
    for s in range(len(keys)):
        if keys[s] != EMPTY:
            slot = keys[s] & mask
            while new_keys[slot] != EMPTY:
                slot = (slot + np.uint64(1)) & mask
            new_keys[slot] = keys[s]
            new_ids[slot] = ids[s]


class ValueTable:
    """One field's values: hash -> id (first appearance), with train counts."""

    def __init__(self, capacity: int = 1 << 12):
        self.keys = np.zeros(capacity, np.uint64)
        self.ids = np.full(capacity, -1, np.int32)
        self.counts = np.zeros(capacity // 2, np.int64)
        self.size = 0

    def _reserve(self, more: int) -> None:
        capacity = len(self.keys)
        while (self.size + more) * 2 > capacity:
            capacity *= 2
        if capacity == len(self.keys):
            return
        keys, ids = np.zeros(capacity, np.uint64), np.full(capacity, -1, np.int32)
        _rehash(self.keys, self.ids, keys, ids)
        counts = np.zeros(capacity // 2, np.int64)
        counts[:self.size] = self.counts[:self.size]
        self.keys, self.ids, self.counts = keys, ids, counts

    def add(self, hashes: np.ndarray, valid: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids of the rows, -1 where missing; the rows where a value was seen first)."""
        self._reserve(len(hashes))
        out = np.empty(len(hashes), np.int32)
        new_rows = np.empty(len(hashes), np.int64)
        self.size, fresh = _insert(self.keys, self.ids, hashes, valid, train, self.counts, self.size, out, new_rows)
        return out, new_rows[:fresh]

    def state(self) -> dict:
        return {"keys": self.keys, "ids": self.ids, "counts": self.counts, "size": np.int64(self.size)}

    @classmethod
    def from_state(cls, state: dict) -> "ValueTable":
        table = cls.__new__(cls)
        table.keys, table.ids, table.counts = state["keys"], state["ids"], state["counts"]
        table.size = int(state["size"])
        return table


def hash_arrow_strings(column) -> np.ndarray:
    """64-bit hashes of an arrow string array's values (any value for a null: its validity says)."""
    import pyarrow as pa

    if pa.types.is_large_string(column.type):
        offsets_type = np.int64
    elif pa.types.is_string(column.type):
        offsets_type = np.int32
    else:
        raise TypeError(f"expected strings, got {column.type}")
    buffers = column.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offsets_type)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    return hash_strings(offsets, data, column.offset, len(column))


@_jit
def remap_columns(x, maps, starts):
    """out[i, f] = maps[starts[f] + x[i, f] + 1]: every field's first-appearance ids (missing -1) to its local
    ids, row by row (one pass over a block, in cache)."""
    out = np.empty(x.shape, np.int32)
    for i in range(x.shape[0]):
        for f in range(x.shape[1]):
            out[i, f] = maps[starts[f] + x[i, f] + 1]
    return out

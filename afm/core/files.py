"""Writing a file so that no reader ever sees half of it and two writers never share a temporary: the text
goes to a temporary of its own beside the target (a unique name), is flushed to disk, and is renamed into
place in one step."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def check_regular(path: str | os.PathLike, what: str = "file") -> Path:
    """Refuse anything but a regular file (after symlinks) before opening it: a pipe blocks a reader forever,
    a device such as /dev/zero never ends."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise IsADirectoryError(f"{path}: {kind}, not a regular {what}") if stat.S_ISDIR(mode) else \
            OSError(f"{path}: {kind}, not a regular {what}")
    return path


def read_capped(fh, limit: int, path: Path) -> bytes:
    """Read a stream whole, refusing it once it passes `limit` bytes (a compressed file that inflates past
    what memory allows)."""
    chunks, total = [], 0
    while True:
        chunk = fh.read(1 << 20)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise MemoryError(f"{path}: expands to more than {limit / 2**30:.1f} GiB, more than this machine's "
                              f"memory allows")
        chunks.append(chunk)


MAX_JSON_BYTES = 256 << 20  # a model.json, set.json or results file is kilobytes; far larger is not one


def read_small_text(path: str | os.PathLike, limit: int = MAX_JSON_BYTES) -> str:
    """A regular file's text, refused (OSError) when it is a pipe or device or larger than `limit`."""
    path = check_regular(path)
    size = path.stat().st_size
    if size > limit:
        raise OSError(f"{path}: {size / 2**20:.0f} MB, larger than such a file can be")
    with open(path, "rb") as fh:  # what stat said, then 1 MB at a time (a /proc file says 0): never `limit` at once
        chunks = [fh.read(size + 1)]
        total = len(chunks[0])
        while total > size and chunks[-1]:
            if total > limit:
                raise OSError(f"{path}: larger than {limit / 2**20:.0f} MB, more than such a file can be")
            chunks.append(fh.read(1 << 20))
            total += len(chunks[-1])
    return b"".join(chunks).decode("utf-8")

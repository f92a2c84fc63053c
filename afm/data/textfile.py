"""Reading text files that may be gzip-compressed, with errors that name the file."""
from __future__ import annotations

import gzip
import zlib
from contextlib import contextmanager
from pathlib import Path

from afm.core.errors import DataError
from afm.core.files import check_regular, read_capped
from afm.core.limits import available_memory


@contextmanager
def _read_errors(path: Path):
    """Reading problems as one DataError that names the file."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a file") from None
    except (OSError, EOFError, zlib.error) as exc:
        message = str(exc) if str(exc).startswith(str(path)) else f"{path}: cannot read ({exc})"
        raise DataError(message) from None


def read_bytes(path: Path) -> bytes:
    """A regular file's bytes (a pipe or a device is refused before it is opened), decompressed when it ends
    in .gz, refused once it passes a quarter of the available memory."""
    path = Path(path)
    available = available_memory()
    limit = available // 4 if available else 1 << 34
    with _read_errors(path):
        try:
            check_regular(path)
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as fh:
                return read_capped(fh, limit, path)
        except MemoryError as exc:
            raise DataError(str(exc)) from None


def decode_text(data: bytes, path: Path) -> str:
    """UTF-8 first (with or without BOM); Latin-1 for older exports. Binary junk is refused."""
    if b"\x00" in data[:65536]:
        raise DataError(f"{path}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text(path: Path) -> str:
    return decode_text(read_bytes(path), Path(path))


def iter_lines(path: Path, max_bytes: int | None = None):
    """The lines of a text file, gzip-compressed or not, decompressed as they are read (never the whole
    file at once). `max_bytes` (default: a tenth of available memory) refuses a file that expands past it."""
    path = Path(path)
    if max_bytes is None:
        available = available_memory()
        max_bytes = available // 10 if available else None
    with _read_errors(path):
        check_regular(path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            total, checked = 0, False
            for raw in fh:
                if not checked:
                    if b"\x00" in raw[:65536]:
                        raise DataError(f"{path}: looks like a binary file, not text")
                    checked = True
                total += len(raw)
                if max_bytes is not None and total > max_bytes:
                    raise DataError(f"{path}: expands to more than {max_bytes / 2**30:.1f} GiB of text, more than "
                                    "this machine's memory allows")
                try:
                    yield raw.decode("utf-8-sig" if total == len(raw) else "utf-8")
                except UnicodeDecodeError:
                    yield raw.decode("latin-1")

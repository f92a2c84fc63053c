"""Reading text files that may be gzip-compressed, with errors that name the file."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from afm.errors import DataError


def read_bytes(path: Path) -> bytes:
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


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

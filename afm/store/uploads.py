"""Uploaded files kept where models trained on them can find them again: content-addressed, so two
sessions uploading at once never collide and the same file is stored once."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from afm.core.errors import DataError
from afm.store.registry import models_dir

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # the app's limit (also in .streamlit/config.toml)


def uploads_dir(models_flag=None) -> Path:
    return models_dir(models_flag).parent / "uploads"


def store_upload(data: bytes, filename: str, directory: Path | None = None) -> Path:
    """Write an uploaded file atomically as `<its hash>/<its cleaned file name>`: the folder keeps two files
    of one name apart, and the data keeps the name the user gave it."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(f"{filename}: {len(data) / 2**20:.1f} MB is over the {MAX_UPLOAD_BYTES // 2**20} MB upload limit")
    if not data.strip():
        raise DataError(f"{filename}: the file is empty")
    directory = (Path(directory) if directory else uploads_dir()) / hashlib.sha256(data).hexdigest()[:16]
    directory.mkdir(parents=True, exist_ok=True)
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[-60:].lstrip(".") or "upload.csv"
    target = directory / clean
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".upload.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    return target

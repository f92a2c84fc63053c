"""Fetching the public Frappe and MovieLens files into the data directory, each checked before it is kept.

Only `python -m afm download ...` calls this: nothing is fetched at import or implicitly. A file is written
to a temporary name, checked (sha256, or the git blob id where only that is published), then renamed into
place, so a failed or tampered download never leaves a file that looks valid.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from afm.core.errors import DataError

NFM = "https://raw.githubusercontent.com/hexiangnan/neural_factorization_machine/master/data/frappe"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    path: str  # relative to the data directory
    sha256: str | None = None
    git_blob: str | None = None  # sha1 of "blob <size>\0" + content, as git names files

    @property
    def name(self) -> str:
        return Path(self.path).name


CATALOG: dict[str, list[RemoteFile]] = {
    "frappe": [
        # The train file's sha256 is not published anywhere we could check; its git blob id is.
        RemoteFile(f"{NFM}/frappe.train.libfm", "frappe/frappe.train.libfm",
                   git_blob="176b2aaf1f63dd13d3e66a5c17c8ec8186e91893"),
        RemoteFile(f"{NFM}/frappe.validation.libfm", "frappe/frappe.validation.libfm",
                   sha256="fdf4be563a7dd9b15f7a6e8b32671e90e6e7a2a2bd3af4e10bf13c5ad7e76e9e"),
        RemoteFile(f"{NFM}/frappe.test.libfm", "frappe/frappe.test.libfm",
                   sha256="a2ebaef3a9af8e55f8bb0d08bc4923965e42e43760ebd7635ac2f8c5db99e097"),
        RemoteFile("https://www.baltrunas.info/_files/archives/be17b7_474755a5e9684a749a012516d04fb456.zip"
                   "?dn=Mobile_Frappe.zip", "frappe/raw/Mobile_Frappe.zip",
                   sha256="4adc616de57170f282397f6e6e30215f97fa7ad1b7f40bd12ef5dceaaf3e9b4e"),
    ],
    "movielens": [
        RemoteFile("https://files.grouplens.org/datasets/movielens/ml-10m.zip", "movielens/ml-10m.zip",
                   sha256="813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862"),
    ],
}


def file_digest(path: Path, remote: RemoteFile) -> tuple[str, str]:
    """(algorithm, hex digest) of a local file, by what the catalog publishes for it."""
    if remote.sha256:
        h = hashlib.sha256()
    else:
        h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return ("sha256" if remote.sha256 else "git blob"), h.hexdigest()


def verify(path: Path, remote: RemoteFile) -> None:
    algorithm, digest = file_digest(path, remote)
    expected = remote.sha256 or remote.git_blob
    if digest != expected:
        raise DataError(f"{remote.name}: {algorithm} {digest} does not match the published {expected}; file refused")


def fetch(remote: RemoteFile, data_dir: Path, url: str | None = None, timeout: float = 60.0) -> Path:
    """Download one file (from `url` if given, e.g. a mirror) and keep it only if its checksum matches."""
    target = Path(data_dir) / remote.path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url or remote.url, headers={"User-Agent": "afm-explorer"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                shutil.copyfileobj(response, out, length=1 << 20)
        verify(tmp, remote)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        raise DataError(f"{remote.name}: download from {url or remote.url} failed ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def download(name: str, data_dir: Path, mirror: str | None = None, force: bool = False,
             report=print) -> list[Path]:
    """Fetch every file of a dataset that is not already present and valid. `mirror` replaces each file's
    URL by `mirror/<file name>`."""
    if name not in CATALOG:
        raise DataError(f"unknown dataset {name!r}; downloadable: {', '.join(CATALOG)}")
    if mirror is not None and urllib.parse.urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise DataError(f"--mirror {mirror!r} is not a URL; give one starting with https://, http:// or file://")
    fetched, failures = [], []
    for remote in CATALOG[name]:
        target = Path(data_dir) / remote.path
        if target.is_file() and not force:
            try:
                verify(target, remote)
                report(f"{remote.path}: present, checksum ok")
                fetched.append(target)
                continue
            except DataError:
                report(f"{remote.path}: present but its checksum does not match; downloading again")
        url = f"{mirror.rstrip('/')}/{remote.name}" if mirror else None
        try:
            fetched.append(fetch(remote, data_dir, url))
            report(f"{remote.path}: downloaded, checksum ok")
        except DataError as exc:
            failures.append(str(exc))
    if failures:
        raise DataError("; ".join(failures))
    return fetched

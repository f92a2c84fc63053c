"""libfm files as the NFM/AFM authors ship them: `label idx:1 idx:1 ...`, one feature per field, in field order."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from afm.core.errors import DataError
from afm.core.limits import check_allocation
from afm.data.dataset import SPLITS, Dataset, Split, labels_like_train
from afm.data.source import Source
from afm.data.textfile import iter_lines

MAX_FEATURE_ID = 2**31 - 1  # beyond this an embedding table could never be allocated


def parse_libfm(text: str, path: Path, num_fields: int | None = None,
                num_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse one libfm file's text into (x: N x m int64, y: N float32); see `parse_libfm_lines`."""
    return parse_libfm_lines(text.splitlines(), path, num_fields, num_features)


def parse_libfm_lines(lines, path: Path, num_fields: int | None = None,
                      num_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse libfm lines into (x: N x m int64, y: N float32), checking every line.

    Blank lines are skipped; CRLF and LF both work. Errors name the file and the 1-based line number.
    """
    labels: list[float] = []
    rows: list[list[int]] = []
    for lineno, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{path}:{lineno}"
        try:
            label = float(tokens[0])
        except ValueError:
            raise DataError(f"{where}: bad label {tokens[0]!r}, expected a number such as -1 or 1") from None
        if not math.isfinite(label):
            raise DataError(f"{where}: bad label {tokens[0]!r}, expected a finite number")
        ids = []
        for token in tokens[1:]:
            idx, sep, value = token.partition(":")
            if not sep or not (idx.isascii() and idx.isdigit()):
                raise DataError(f"{where}: malformed token {token!r}, expected 'index:1'")
            if value not in ("1", "1.0", "1.", "1.00"):
                try:
                    ok = float(value) == 1.0
                except ValueError:
                    ok = False
                if not ok:
                    raise DataError(f"{where}: token {token!r} has value {value!r}; only one-hot features (value 1) are supported")
            if len(idx) > 10 or int(idx) > MAX_FEATURE_ID:
                raise DataError(f"{where}: feature index {idx} is too large (at most {MAX_FEATURE_ID})")
            ids.append(int(idx))
        if num_fields is None:
            num_fields = len(ids)
            if num_fields < 2:
                raise DataError(f"{where}: {num_fields} feature(s) on the line; at least 2 fields are needed")
        if len(ids) != num_fields:
            raise DataError(f"{where}: wrong field count: expected {num_fields} features, found {len(ids)}")
        if num_features is not None and max(ids) >= num_features:
            raise DataError(f"{where}: feature index {max(ids)} out of range (this data has {num_features} features)")
        labels.append(label)
        rows.append(ids)
    if not rows:
        raise DataError(f"{path}: empty file, no instances found")
    return np.asarray(rows, dtype=np.int64), np.asarray(labels, dtype=np.float32)


def read_libfm(path: Path, num_fields: int | None = None, num_features: int | None = None):
    path = Path(path)
    return parse_libfm_lines(iter_lines(path), path, num_fields, num_features)


def find_split_file(directory: Path, stem: str, split: str) -> Path | None:
    """`stem.split.libfm` or its `.gz`, whichever exists."""
    for suffix in (".libfm", ".libfm.gz"):
        candidate = Path(directory) / f"{stem}.{split}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def libfm_stem(directory: Path) -> str:
    """The NAME shared by NAME.{train,validation,test}.libfm[.gz] in a directory."""
    directory = Path(directory)
    stems = sorted({p.name.split(".")[0] for p in directory.glob("*.train.libfm*")})
    if not stems:
        raise DataError(f"{directory}: no NAME.train.libfm (or .libfm.gz) file found")
    if len(stems) > 1:
        raise DataError(f"{directory}: several libfm datasets found ({', '.join(stems)}); point to a directory with one")
    return stems[0]


def load_libfm_dir(directory: Path) -> Dataset:
    """A directory holding NAME.{train,validation,test}.libfm[.gz]. Fields and features get generic names."""
    directory = Path(directory).resolve()
    stem = libfm_stem(directory)
    arrays = {}
    num_fields = None
    for split in SPLITS:
        path = find_split_file(directory, stem, split)
        if path is None:
            raise DataError(f"{directory}: {stem}.{split}.libfm is missing")
        arrays[split] = read_libfm(path, num_fields=num_fields)
        num_fields = arrays[split][0].shape[1]
    labels = {split: y for split, (_, y) in arrays.items()}
    mapped, task = labels_like_train(labels, directory)
    splits = {split: Split(arrays[split][0], mapped[split]) for split in SPLITS}
    num_features = int(max(x.max() for x, _ in arrays.values())) + 1
    check_allocation(num_features, f"{directory}: feature ids up to {num_features - 1:,} (a table with a row for "
                     "each)", item_bytes=128)
    field_names = [f"field_{f}" for f in range(num_fields)]
    owner = np.full(num_features, -1)
    for x, _ in arrays.values():
        for f in range(num_fields):
            owner[x[:, f]] = f
    feature_names = [f"{field_names[o]}={i}" if o >= 0 else f"unused={i}" for i, o in enumerate(owner)]
    return Dataset(name=stem, field_names=field_names, feature_names=feature_names, splits=splits,
                   source={"kind": "libfm", "path": str(directory)}, task=task)


SOURCE = Source("libfm", "a libfm directory (NAME.{train,validation,test}.libfm[.gz])",
                load=lambda spec, directory, target=None, seed=0: load_libfm_dir(Path(spec).expanduser()),
                recorded=lambda spec, directory: load_libfm_dir(Path(spec["path"])),
                claims=lambda path: path.is_dir(), quick={"epochs": 10}, user_data=True)

"""A user's CSV of categorical columns plus a target: every other column becomes a field.

Numeric columns with many distinct values are cut into quantile bins; missing values become their own
value ('<missing>'). A target of two values maps to -1/+1, any other numeric target is regression.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from afm.core.errors import DataError
from afm.data.dataset import Dataset, binary_or_regression, random_split
from afm.data.source import Source
from afm.data.textfile import read_text

MAX_LEVELS = 20  # a numeric column with more distinct values than this is binned
QUANTILE_BINS = 10
MIN_ROWS = 10
MISSING = "<missing>"


def _read_frame(path: Path) -> pd.DataFrame:
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: empty file")
    try:
        sep = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except (csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a well-formed CSV ({message})") from None
    seen = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: duplicate column name {name!r} in the header")
        seen.add(name)
    return frame


def _field_codes(column: pd.Series, name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every row's value id and the readable values, sorted as text (the ids are their positions). Types are
    inferred once per distinct value, not per row: a 200,000-row column of a few hundred values converts a
    few hundred strings. Numeric columns with many values become quantile bins; missing is a value."""
    codes, uniques = pd.factorize(column)  # missing values get code -1
    uniques = np.asarray(uniques, dtype=object)
    numeric = pd.to_numeric(pd.Series(uniques), errors="coerce").to_numpy(dtype=float)
    if len(uniques) and not np.isnan(numeric).any():
        bad = ~np.isfinite(numeric)
        if bad.any():
            row = int(np.flatnonzero(bad[codes] & (codes >= 0))[0])
            raise DataError(f"{path}: row {row + 2}, column {name!r}: value {column.iloc[row]!r} is infinite")
        if len(np.unique(numeric)) > MAX_LEVELS:
            binned = quantile_bins(np.where(codes >= 0, numeric[np.maximum(codes, 0)], np.nan)).to_numpy(dtype=object)
            codes, uniques = pd.factorize(binned)
            uniques = np.asarray(uniques, dtype=object)
    labels = np.append(uniques.astype(str), MISSING) if (codes < 0).any() else uniques.astype(str)
    labels, inverse = np.unique(labels, return_inverse=True)  # sorted as text, as before
    return inverse[codes], labels  # code -1 takes the last unsorted label: MISSING


def quantile_bins(values: np.ndarray, bins: int = QUANTILE_BINS) -> pd.Series:
    """Readable quantile-bin labels ("[a, b]") for a numeric column; every finite value gets a bin, also
    for denormal or very large numbers, where pandas' qcut can leave values out."""
    present = values[~np.isnan(values)]
    with np.errstate(all="ignore"):
        edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, max(len(edges) - 2, 0))
    labels = np.array([f"[{edges[i]:.4g}, {edges[min(i + 1, len(edges) - 1)]:.4g}]" for i in range(max(len(edges) - 1, 1))],
                      dtype=object)
    return pd.Series(np.where(np.isnan(values), MISSING, labels[codes]))


def load_csv(path: Path, target: str | None, seed: int = 0) -> Dataset:
    path = Path(path).resolve()
    frame = _read_frame(path)
    if not target:
        raise DataError(f"{path}: name the target column (--target); columns: {', '.join(frame.columns)}")
    if target not in frame.columns:
        raise DataError(f"{path}: no target column {target!r}; columns: {', '.join(frame.columns)}")
    if len(frame) < MIN_ROWS:
        raise DataError(f"{path}: {len(frame)} data row(s); at least {MIN_ROWS} are needed to split and train")
    features = [c for c in frame.columns if c != target]
    if len(features) < 2:
        raise DataError(f"{path}: {len(features)} feature column(s) besides the target; at least 2 are needed for pairs")

    raw_target = frame[target]
    if raw_target.isna().any():
        row = int(np.flatnonzero(raw_target.isna().to_numpy())[0])
        raise DataError(f"{path}: row {row + 2}: the target {target!r} is empty")
    if raw_target.nunique() == 2:
        y, task = binary_or_regression(raw_target.to_numpy())
        labels = sorted(raw_target.unique())
        target_note = f"target {target!r}: {labels[0]} -> -1, {labels[1]} -> +1"
    else:
        numeric = pd.to_numeric(raw_target, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(numeric)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: row {row + 2}: target value {raw_target.iloc[row]!r} is not a finite number "
                            f"(a target with more than two values must be numeric)")
        y, task = binary_or_regression(numeric)
        target_note = f"target {target!r}: regression"

    columns, names, offset = [], [], 0
    for name in features:
        codes, uniques = _field_codes(frame[name], name, path)
        columns.append(offset + codes)
        names += [f"{name}={value}" for value in uniques]
        offset += len(uniques)
    x = np.stack(columns, axis=1).astype(np.int64)
    return Dataset(name=path.stem, field_names=features, feature_names=names, splits=random_split(x, y, seed),
                   source={"kind": "csv", "path": str(path), "target": target, "seed": seed}, task=task,
                   notes=f"{len(frame)} rows from {path.name}; {target_note}")


def csv_columns(path: Path) -> list[str]:
    """The header of a CSV file (checked as `load_csv` checks it), for choosing a target column."""
    return list(_read_frame(Path(path)).columns)


SOURCE = Source("csv", "a CSV file (with --target: every other column is a field)",
                load=lambda spec, directory, target=None, seed=0: load_csv(Path(spec).expanduser(), target, seed=seed),
                recorded=lambda spec, directory: load_csv(Path(spec["path"]), spec.get("target"),
                                                          seed=spec.get("seed", 0)),
                claims=lambda path: path.is_file(), quick={"epochs": 10}, user_data=True)

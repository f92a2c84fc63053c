"""A user's table (CSV, TSV, any delimited text, or parquet) of categorical and numeric columns plus a target:
every other column becomes a field.

Columns that identify rows (a pandas index, an id, a counter: afm.data.columns) are left out unless kept.
What each column is, the user decides (`TableOptions`: categorical, numeric, drop, keep); otherwise an integer
column whose name says it is an id (or that has more than ID_VALUES distinct values) is ids, a numeric
column with more than MAX_LEVELS values is cut into quantile bins, and anything else is categorical; each
decision that changes values is said in the notes. Missing values become their own value ('<missing>').
Values are ordered as numbers where every value is a number, else as text (the order LabelEncoder gives
on pandas' dtypes), so ids trained elsewhere line up. A target of two values maps to -1/+1, any other
numeric target is regression.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from afm.core.errors import DataError
from afm.core.files import check_regular
from afm.data.columns import row_identifiers
from afm.data.dataset import Dataset, Split, binary_or_regression, random_split
from afm.data.source import Source
from afm.data.textfile import read_text

MAX_LEVELS = 20  # a numeric column with more distinct values than this is binned
ID_VALUES = 1000  # an integer column with more distinct values than this is ids, not a measurement
ID_NAME = re.compile(r"(?i)(^|[_\-\s.])(id|ids|uid|key|hash|code)$|^(user|item|movie|app|ad|campaign|site|device|"
                     r"advertiser|publisher|creative|query|tag|artist|song|product|shop|store|seller)s?$")
QUANTILE_BINS = 10
MIN_ROWS = 10
MISSING = "<missing>"
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class TableOptions:
    """How a user's table is read: its layout (separator, header) and what its columns are."""

    categorical: tuple[str, ...] = ()  # every value its own feature, whatever it looks like
    numeric: tuple[str, ...] = ()  # binned into quantiles when it has more than MAX_LEVELS values
    drop: tuple[str, ...] = ()  # not a field (a row index, a leak)
    sep: str | None = None  # None: sniffed from , ; tab |
    header: bool = True  # False: columns are named col1, col2, ... (or `names`)
    names: tuple[str, ...] = ()  # column names for a file without a header
    split_column: str | None = None  # a column of train/validation/test naming each row's split (else seeded 7:2:1)
    keep: tuple[str, ...] = ()  # used although they look like row ids (afm.data.columns)
    id_guard: bool = True  # leave out columns that identify rows (afm.data.columns) unless kept

    def record(self) -> dict:
        """What a recorded source keeps (what differs from the defaults, and always the id guard: a source
        recorded before the guard existed has none and loads without it, so its model's fields stay)."""
        defaults = TableOptions()
        return {**{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                   if v != getattr(defaults, k)}, "id_guard": self.id_guard}

    @classmethod
    def from_record(cls, spec: dict) -> "TableOptions":
        return cls(**{**{k: tuple(spec[k]) if isinstance(spec[k], list) else spec[k]
                         for k in asdict(cls()) if k in spec}, "id_guard": bool(spec.get("id_guard", False))})


def _read_frame(path: Path, options: TableOptions = TableOptions()) -> pd.DataFrame:
    if path.suffix == ".parquet" or _is_parquet(path):
        frame = _read_parquet(path)
        _check_header(list(frame.columns), path)
        return frame
    return _read_delimited(path, options)  # checks its header as read: pandas renames duplicates


def _is_parquet(path: Path) -> bool:
    try:
        check_regular(path)  # never open a pipe or device to look at it
        with open(path, "rb") as fh:
            return fh.read(4) == PARQUET_MAGIC
    except OSError:
        return False


def _read_parquet(path: Path) -> pd.DataFrame:
    """A parquet file through pyarrow, as text values (missing stays missing), so it is read as a CSV is."""
    import pyarrow.parquet as pq  # only parquet needs it

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own errors for a damaged file
        raise DataError(f"{path}: not a readable parquet file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    frame = table.to_pandas()
    out = pd.DataFrame({str(c): frame[c].map(_as_text, na_action="ignore").astype(object) for c in frame.columns})
    return out.where(frame.notna().to_numpy(), None)


def _as_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an integer column with missing values arrives as floats
    return str(value)


def _read_delimited(path: Path, options: TableOptions) -> pd.DataFrame:
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: empty file")
    sep = options.sep
    if sep is None:
        try:
            sep = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            sep = "\t" if "\t" in text.split("\n", 1)[0] else ","
    try:
        first = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
        if options.header:
            names = None
            if options.names:
                raise DataError(f"{path}: --names is for a file without a header (add --no-header)")
            _check_header(first, path)
        else:
            names = list(options.names) or [f"col{i + 1}" for i in range(len(first))]
            if len(names) != len(first):
                raise DataError(f"{path}: {len(names)} names for {len(first)} columns")
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                            header=0 if options.header else None, names=names)
    except (csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a well-formed table ({message})") from None
    return frame


def _check_header(header: list[str], path: Path) -> None:
    seen = set()
    for name in header:
        if name in seen:
            hint = " (a file without a header? add --no-header)" if name == "" or _looks_like_data(header) else ""
            raise DataError(f"{path}: duplicate column name {name!r} in the header{hint}")
        seen.add(name)


def _looks_like_data(row: list[str]) -> bool:
    return sum(bool(re.fullmatch(r"-?\d+(\.\d*)?", v)) for v in row) > len(row) / 2


def _field_codes(column: pd.Series, name: str, path: Path, kind: str | None, order: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Every row's value id, the readable values (the ids are their positions) and a note on what was
    decided ('' when nothing changed the values). `kind`: the user's choice, "categorical" or "numeric", or
    None to decide. Types are inferred once per distinct value, not per row. `order`: "natural" (numbers
    as numbers where every value is one) or "text" (models recorded before that)."""
    codes, uniques = pd.factorize(column)  # missing values get code -1
    uniques = np.asarray(uniques, dtype=object)
    numeric = pd.to_numeric(pd.Series(uniques), errors="coerce").to_numpy(dtype=float)
    all_numbers = bool(len(uniques)) and not np.isnan(numeric).any()
    if kind == "numeric" and not all_numbers:
        bad = int(np.flatnonzero(np.isnan(numeric))[0])
        raise DataError(f"{path}: column {name!r} was declared numeric, but has the value {uniques[bad]!r}")
    note = ""
    if all_numbers:
        bad = ~np.isfinite(numeric)
        if bad.any():
            row = int(np.flatnonzero(bad[codes] & (codes >= 0))[0])
            raise DataError(f"{path}: row {row + 2}, column {name!r}: value {column.iloc[row]!r} is infinite")
        distinct = len(np.unique(numeric))
        integers = bool(np.all(numeric == np.round(numeric)))
        looks_like_ids = integers and (bool(ID_NAME.search(name)) or distinct > ID_VALUES)
        if kind == "numeric" or (kind is None and distinct > MAX_LEVELS and not looks_like_ids):
            if distinct > MAX_LEVELS:
                binned = quantile_bins(np.where(codes >= 0, numeric[np.maximum(codes, 0)], np.nan))
                codes, uniques = pd.factorize(binned.to_numpy(dtype=object))
                uniques = np.asarray(uniques, dtype=object)
                note = (f"column {name!r}: numeric, {distinct} values cut into {len(uniques) - (MISSING in uniques)} "
                        f"quantile bins (--categorical {name} keeps every value)")
                numeric = None  # bin labels sort as text
        elif kind is None and looks_like_ids and distinct > MAX_LEVELS:
            note = f"column {name!r}: {distinct} integer values taken as ids (--numeric {name} bins them)"
    has_missing = bool((codes < 0).any())
    labels = uniques.astype(str)
    if order == "natural" and all_numbers and numeric is not None:
        ranks = np.argsort(numeric, kind="stable")  # numbers as numbers: '3' before '10'
        position = np.empty(len(ranks), dtype=np.int64)
        position[ranks] = np.arange(len(ranks))
        labels = labels[ranks]
        mapped = np.where(codes >= 0, position[np.maximum(codes, 0)], len(labels))
        if has_missing:
            labels = np.append(labels, MISSING)
        return mapped, labels, note
    labels = np.append(labels, MISSING) if has_missing else labels
    labels, inverse = np.unique(labels, return_inverse=True)  # sorted as text
    return inverse[codes], labels, note  # code -1 takes the last unsorted label: MISSING


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


def load_csv(path: Path, target: str | None, seed: int = 0, options: TableOptions = TableOptions(),
             order: str = "natural") -> Dataset:
    """A user's table as a Dataset. `order`: how values become ids ("natural", or "text" for a model
    recorded before values were ordered as numbers)."""
    path = Path(path).resolve()
    frame = _read_frame(path, options)
    columns = list(frame.columns)
    if not target:
        raise DataError(f"{path}: name the target column (--target); columns: {', '.join(columns)}")
    if target not in frame.columns:
        raise DataError(f"{path}: no target column {target!r}; columns: {', '.join(columns)}")
    named = {"--categorical": options.categorical, "--numeric": options.numeric, "--drop": options.drop,
             "--keep": options.keep, "--split-column": (options.split_column,) if options.split_column else ()}
    for flag, names in named.items():
        unknown = [n for n in names if n not in frame.columns]
        if unknown:
            raise DataError(f"{path}: {flag} names no column {', '.join(map(repr, unknown))}; columns: {', '.join(columns)}")
        if target in names:
            raise DataError(f"{path}: {flag} names the target {target!r}")
    both = set(options.categorical) & set(options.numeric)
    if both:
        raise DataError(f"{path}: {', '.join(sorted(both))} cannot be both --categorical and --numeric")
    if len(frame) < MIN_ROWS:
        raise DataError(f"{path}: {len(frame)} data row(s); at least {MIN_ROWS} are needed to split and train")
    features = [c for c in columns if c != target and c not in options.drop and c != options.split_column]
    left_out = {}
    if options.id_guard:  # columns the user named are theirs to use
        chosen = set(options.keep) | set(options.categorical) | set(options.numeric)
        left_out = row_identifiers(frame, [c for c in features if c not in chosen])
        features = [c for c in features if c not in left_out]
    if len(features) < 2:
        kept = f" ({', '.join(left_out)} left out as row ids: --keep uses them)" if left_out else ""
        raise DataError(f"{path}: {len(features)} feature column(s) besides the target{kept}; at least 2 are needed "
                        "for pairs")

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

    kinds = {**{c: "categorical" for c in options.categorical}, **{c: "numeric" for c in options.numeric}}
    codes_by_field, names, offset, decisions = [], [], 0, []
    for name in features:
        codes, uniques, note = _field_codes(frame[name], name, path, kinds.get(name), order)
        codes_by_field.append(offset + codes)
        names += [f"{name}={value}" for value in uniques]
        offset += len(uniques)
        decisions += [note] if note else []
    x = np.stack(codes_by_field, axis=1).astype(np.int64)
    source = {**table_spec(path, target, seed, options), **({"value_order": order} if order != "text" else {})}
    dropped = [f"dropped {', '.join(options.drop)}"] if options.drop else []
    dropped += [f"left out {name!r}: {reason}, so it would name rows, not describe them (--keep {name} uses it)"
                for name, reason in left_out.items()]
    splits = random_split(x, y, seed) if not options.split_column else _named_splits(x, y, frame[options.split_column], path)
    return Dataset(name=path.stem, field_names=features, feature_names=names, splits=splits,
                   source=source, task=task,
                   notes="; ".join([f"{len(frame)} rows from {path.name}", target_note, *dropped, *decisions]))


SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
               "test": "test"}


def _named_splits(x: np.ndarray, y: np.ndarray, column: pd.Series, path: Path) -> dict[str, Split]:
    """Splits as a column names them (the user's own held-out rows: what an imported model is judged on)."""
    names = column.fillna("").str.strip().str.lower().map(SPLIT_NAMES)
    if names.isna().any():
        row = int(np.flatnonzero(names.isna().to_numpy())[0])
        raise DataError(f"{path}: row {row + 2}: split {column.iloc[row]!r} is not train, validation or test")
    splits = {}
    for split in ("train", "validation", "test"):
        idx = np.flatnonzero((names == split).to_numpy())
        if not len(idx):
            raise DataError(f"{path}: the split column names no {split} rows")
        splits[split] = Split(np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx], dtype=np.float32))
    return splits


def table_spec(path: Path, target: str, seed: int = 0, options: TableOptions = TableOptions()) -> dict:
    """The recorded source of a user's table, as `load_dataset` takes it (a new table: values ordered as numbers)."""
    return {"kind": "csv", "path": str(Path(path).resolve()), "target": target, "seed": seed, **options.record(),
            "value_order": "natural"}


def table_columns(path: Path, options: TableOptions = TableOptions()) -> list[str]:
    """The columns of a user's table (checked as `load_csv` checks it), for choosing a target column."""
    return list(_read_frame(Path(path), options).columns)


def identifier_columns(path: Path, target: str, options: TableOptions = TableOptions()) -> dict[str, str]:
    """The columns besides the target that `load_csv` leaves out as row ids, each with its reason."""
    frame = _read_frame(Path(path), options)
    return row_identifiers(frame, [c for c in frame.columns if c != target])


def _recorded(spec: dict, directory) -> Dataset:
    # a model recorded before values were ordered as numbers keeps its text order, so its ids still fit
    return load_csv(Path(spec["path"]), spec.get("target"), seed=spec.get("seed", 0),
                    options=TableOptions.from_record(spec), order=spec.get("value_order", "text"))


SOURCE = Source("csv", "a CSV, TSV or parquet file (with --target: every other column is a field)",
                load=lambda spec, directory, target=None, seed=0, table=None: load_csv(
                    Path(spec).expanduser(), target, seed=seed, options=table or TableOptions()),
                recorded=_recorded, claims=lambda path: path.is_file(), quick={"epochs": 10}, user_data=True)

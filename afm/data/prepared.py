"""Click logs prepared once (`python -m afm prepare`): CSV, TSV (gzipped too, headerless with given names) or
parquet read by pyarrow in batches, never whole, into a directory of per-split int32 id matrices (`.npy`,
memory-mappable), labels, each row's place in the source, per-field vocabularies and `dataset.json`
(sources with sizes and sha256, settings, counts).

Two passes over the files. The first counts every field's values on the train rows only; a value seen fewer
than `min_count` times becomes the field's one rare id, a missing value its own id (local ids 0 and 1),
and integer columns are log-square bucketed as the Criteo winners did (floor(ln(x)^2) above 2, the value
itself below). The second writes the ids. A row's split comes from a hash of its position and the seed
(7:2:1), so it does not depend on how the files are batched (a gzipped and a parquet copy prepare to the
same bytes), or from a column naming it. The second pass records its progress; a rerun with the same files
and settings resumes where an interrupted one stopped and writes the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from afm.core.errors import DataError
from afm.core.files import read_small_text, write_text_atomic
from afm.data.dataset import SPLITS, Dataset, Split
from afm.data.source import Source

FORMAT, VERSION = "afm-prepared", 1
META, VOCAB, PROGRESS = "dataset.json", "vocab.json", "progress.json"
MISSING, RARE = "<missing>", "<rare>"  # every field's local ids 0 and 1
FRACTIONS = (0.7, 0.9)  # cumulative: train below 0.7, validation below 0.9, test above


@dataclass(frozen=True)
class PrepareSettings:
    target: str
    names: tuple[str, ...] = ()  # column names of headerless files (empty: the first line names them)
    sep: str = ""  # "": a tab for .tsv/.txt files (gzipped or not), else a comma
    numeric: tuple[str, ...] = ()  # integer columns, log-square bucketed; the others are categories
    min_count: int = 1  # values seen fewer times in train become the rare id
    split_column: str = ""  # a column of train/validation/test; "": a seeded 7:2:1 by a hash of the row
    seed: int = 0
    batch_rows: int = 1 << 16

    def check(self) -> None:
        if self.min_count < 1 or self.batch_rows < 1:
            raise DataError("--min-count and the batch size must be at least 1")
        if self.target in self.numeric or (self.split_column and self.split_column in (self.target, *self.numeric)):
            raise DataError("the target, the split column and the numeric columns must be different columns")


def _separator(path: Path, settings: PrepareSettings) -> str:
    if settings.sep:
        return settings.sep
    suffixes = [s.lower() for s in path.suffixes]
    return "\t" if {".tsv", ".txt"} & set(suffixes) else ","


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _batches(path: Path, settings: PrepareSettings):
    """The file's record batches, every column as text (missing: null)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if _is_parquet(path):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=settings.batch_rows):
            yield pa.RecordBatch.from_arrays([c.cast(pa.string()) for c in batch.columns], names=batch.schema.names)
        return
    read = pacsv.ReadOptions(column_names=list(settings.names) or None, block_size=1 << 22)
    parse = pacsv.ParseOptions(delimiter=_separator(path, settings))
    try:
        with pacsv.open_csv(path, read_options=read, parse_options=parse) as probe:
            names = probe.schema.names
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)
        with pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert) as reader:
            for batch in reader:
                for start in range(0, batch.num_rows, settings.batch_rows):
                    yield batch.slice(start, settings.batch_rows)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot be read as a table ({str(exc).splitlines()[0][:160]})") from None


def _rows(paths: list[Path], settings: PrepareSettings):
    """(first row's position over all files, batch) for every batch of every file, in order."""
    offset = 0
    for path in paths:
        for batch in _batches(path, settings):
            yield offset, batch
            offset += batch.num_rows


def row_splits(start: int, n: int, seed: int) -> np.ndarray:
    """Split codes (0 train, 1 validation, 2 test) of rows start..start+n-1: a splitmix64 hash of each row's
    position and the seed, so a row's split is its own whatever the batching."""
    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) / 2.0**53
    return np.searchsorted(np.array(FRACTIONS), u, side="right").astype(np.int8)


def _batch_splits(offset: int, batch, settings: PrepareSettings) -> np.ndarray:
    if not settings.split_column:
        return row_splits(offset, batch.num_rows, settings.seed)
    named = np.asarray(batch.column(settings.split_column).to_pylist(), dtype=object)
    codes = np.full(len(named), -1, dtype=np.int8)
    for code, name in enumerate(SPLITS):
        codes[named == name] = code
    if (codes < 0).any():
        bad = named[codes < 0][0]
        raise DataError(f"--split-column {settings.split_column}: {bad!r} is none of {', '.join(SPLITS)}")
    return codes


def _tokens(batch, field: str, numeric: bool) -> np.ndarray:
    """A column's values as text tokens (None: missing); integer columns log-square bucketed."""
    values = batch.column(field).to_numpy(zero_copy_only=False)
    if not numeric:
        return values
    import pandas as pd

    number = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bucket = np.where(number > 2, np.floor(np.log(np.maximum(number, 1e-300)) ** 2), np.floor(number))
    out = np.empty(len(values), dtype=object)
    ok = np.isfinite(bucket)
    out[ok] = bucket[ok].astype(np.int64).astype(str)  # one pass, not a Python loop per value
    out[~ok] = None
    return out


def _labels(batch, target: str) -> np.ndarray:
    import pandas as pd

    label = pd.to_numeric(pd.Series(batch.column(target).to_numpy(zero_copy_only=False)), errors="coerce")
    if label.isna().any():
        raise DataError(f"the target column {target!r} has a missing or non-numeric value")
    return label.to_numpy(dtype=np.float32)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _fields(paths: list[Path], settings: PrepareSettings) -> list[str]:
    first = next(_batches(paths[0], settings), None)
    if first is None:
        raise DataError(f"{paths[0]}: no rows")
    names = first.schema.names
    for needed in (settings.target, *settings.numeric, *([settings.split_column] if settings.split_column else [])):
        if needed not in names:
            raise DataError(f"no column {needed!r}; columns: {', '.join(names[:12])}")
    return [n for n in names if n not in (settings.target, settings.split_column)]


def _count(paths, settings, fields, log) -> tuple[list[dict], dict]:
    """Pass 1: every field's value counts on the train rows, rows per split, positives."""
    counts = [dict() for _ in fields]
    rows = {name: 0 for name in SPLITS}
    labels = set()
    started = time.perf_counter()
    for offset, batch in _rows(paths, settings):
        splits = _batch_splits(offset, batch, settings)
        for code, name in enumerate(SPLITS):
            rows[name] += int((splits == code).sum())
        labels.update(np.unique(_labels(batch, settings.target)).tolist()[:3])
        train = splits == 0
        for f, field in enumerate(fields):
            tokens = _tokens(batch, field, field in settings.numeric)[train]
            values, number = np.unique(tokens[tokens != None].astype(str), return_counts=True)  # noqa: E711
            table = counts[f]
            for value, n in zip(values.tolist(), number.tolist()):
                table[value] = table.get(value, 0) + n
        done = offset + batch.num_rows
        log(f"counting: {done:,} rows, {done / (time.perf_counter() - started):,.0f} rows/s")
    return counts, {"rows": rows, "labels": sorted(labels)[:3]}


def _vocabularies(counts: list[dict], min_count: int) -> tuple[list[list[str]], dict]:
    """Per field: [MISSING, RARE, values seen at least min_count times in train, sorted]; and how many values
    each field folded into its rare id."""
    vocab, folded = [], {}
    for table in counts:
        kept = sorted(v for v, n in table.items() if n >= min_count)
        vocab.append([MISSING, RARE, *kept])
        folded[len(vocab) - 1] = len(table) - len(kept)
    return vocab, folded


def _settings_record(paths: list[Path], settings: PrepareSettings) -> dict:
    return {"sources": [{"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": _sha256(p)} for p in paths],
            "settings": asdict(settings)}


def prepare(paths: list[str | Path], out: str | Path, settings: PrepareSettings, log=print,
            stop_after_batches: int | None = None) -> Path:
    """Prepare `paths` into `out` (see the module's docstring). `stop_after_batches`: end the second pass
    after that many batches, as an interruption would (what a resume is tested against)."""
    settings.check()
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = json.loads(json.dumps(_settings_record(paths, settings)))  # as a progress file holds it
    progress_path = out / PROGRESS
    progress = json.loads(read_small_text(progress_path)) if progress_path.is_file() else None
    if progress is not None and progress.get("record") != record:
        progress = None  # other files or settings: start over
    fields = _fields(paths, settings)
    (out / META).unlink(missing_ok=True)  # a finished marker only once these arrays are whole again
    if progress is None:
        counts, totals = _count(paths, settings, fields, log)
        vocab, folded = _vocabularies(counts, settings.min_count)
        write_text_atomic(out / VOCAB, json.dumps(dict(zip(fields, vocab)), ensure_ascii=False))
        progress = {"record": record, "totals": totals, "folded": {fields[f]: n for f, n in folded.items()},
                    "rows_done": 0, "cursors": {name: 0 for name in SPLITS}}
        mode = "w+"
    else:
        vocab = [json.loads(read_small_text(out / VOCAB, limit=1 << 31))[f] for f in fields]
        mode = "r+"
        log(f"resuming at row {progress['rows_done']:,}")
    totals = progress["totals"]
    binary = set(totals["labels"]) <= {0.0, 1.0} or set(totals["labels"]) <= {-1.0, 1.0}
    from numpy.lib.format import open_memmap

    arrays = {}
    for name in SPLITS:
        n = totals["rows"][name]
        arrays[name] = (open_memmap(out / f"{name}.x.npy", mode=mode, dtype=np.int32, shape=(n, len(fields))),
                        open_memmap(out / f"{name}.y.npy", mode=mode, dtype=np.float32, shape=(n,)),
                        open_memmap(out / f"{name}.rows.npy", mode=mode, dtype=np.int64, shape=(n,)))
    import pyarrow as pa
    import pyarrow.compute as pc

    value_sets = [pa.array(v[2:], type=pa.string()) for v in vocab]
    total_rows, written, started = sum(totals["rows"].values()), 0, time.perf_counter()
    cursors = dict(progress["cursors"])
    for offset, batch in _rows(paths, settings):
        if offset + batch.num_rows <= progress["rows_done"]:
            continue  # written before the interruption
        splits = _batch_splits(offset, batch, settings)
        ids = np.empty((batch.num_rows, len(fields)), dtype=np.int32)
        for f, field in enumerate(fields):
            tokens = pa.array(_tokens(batch, field, field in settings.numeric), type=pa.string())
            index = pc.index_in(tokens, value_set=value_sets[f]).to_numpy(zero_copy_only=False)
            local = np.where(np.isnan(index.astype(np.float64)), 1, index + 2) if index.dtype.kind == "f" else index + 2
            ids[:, f] = np.where(tokens.is_null().to_numpy(zero_copy_only=False), 0, local)
        y = _labels(batch, settings.target)
        y = np.where(y > 0, 1.0, -1.0).astype(np.float32) if binary else y
        positions = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
        for code, name in enumerate(SPLITS):
            mask = splits == code
            x_out, y_out, rows_out = arrays[name]
            at, n = cursors[name], int(mask.sum())
            x_out[at:at + n], y_out[at:at + n], rows_out[at:at + n] = ids[mask], y[mask], positions[mask]
            cursors[name] = at + n
        for x_out, y_out, rows_out in arrays.values():
            x_out.flush(), y_out.flush(), rows_out.flush()
        progress.update(rows_done=offset + batch.num_rows, cursors=cursors)
        write_text_atomic(progress_path, json.dumps(progress))
        written += batch.num_rows
        rate = written / (time.perf_counter() - started)
        left = (total_rows - progress["rows_done"]) / rate if rate else math.nan
        log(f"writing: {progress['rows_done']:,} of {total_rows:,} rows, {rate:,.0f} rows/s, about {left:.0f} s left")
        if stop_after_batches is not None:
            stop_after_batches -= 1
            if stop_after_batches <= 0:
                return out
    meta = {"format": FORMAT, "version": VERSION, **record, "fields": fields, "target": settings.target,
            "task": "binary" if binary else "regression", "rows": totals["rows"],
            "vocabulary_sizes": [len(v) for v in vocab], "folded_into_rare": progress["folded"], "finished": True}
    write_text_atomic(out / META, json.dumps(meta, indent=1))
    progress_path.unlink()
    return out


def read_meta(directory: str | Path) -> dict:
    path = Path(directory) / META
    if not path.is_file() and (Path(directory) / PROGRESS).is_file():
        raise DataError(f"{directory}: not a finished prepared dataset (an interrupted prepare: run the same "
                        f"`python -m afm prepare` again to resume it)")
    try:
        meta = json.loads(read_small_text(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable prepared dataset ({type(exc).__name__})") from None
    if meta.get("format") != FORMAT or not meta.get("finished"):
        raise DataError(f"{directory}: not a finished prepared dataset (run `python -m afm prepare` again to finish)")
    return meta


def load_prepared(directory: str | Path) -> Dataset:
    """A prepared directory as a Dataset: global ids (each field's local ids after the fields before it)."""
    directory = Path(directory)
    meta = read_meta(directory)
    vocab = json.loads(read_small_text(directory / VOCAB, limit=1 << 31))
    fields = meta["fields"]
    sizes = [len(vocab[f]) for f in fields]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    splits = {}
    for name in SPLITS:
        x = np.load(directory / f"{name}.x.npy", mmap_mode="r")
        splits[name] = Split(np.asarray(x, dtype=np.int64) + offsets, np.load(directory / f"{name}.y.npy"))
    feature_names = [f"{field}={value}" for field in fields for value in vocab[field]]
    return Dataset(directory.name, fields, feature_names, splits,
                   {"kind": "prepared", "path": str(directory.resolve())}, task=meta["task"],
                   notes=f"prepared from {len(meta['sources'])} file(s); min count {meta['settings']['min_count']}")


SOURCE = Source("prepared", "a directory `python -m afm prepare` wrote",
                load=lambda spec, directory, **_: load_prepared(spec),
                recorded=lambda source, directory: load_prepared(source["path"]),
                claims=lambda path: (path / META).is_file() or (path / PROGRESS).is_file(), user_data=True)

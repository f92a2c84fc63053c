"""Click logs prepared once (`python -m afm prepare`): CSV, TSV (gzipped too, headerless with given names) or
parquet read by pyarrow in batches, never whole, into a directory of per-split int32 id matrices (`.npy`,
memory-mappable), labels, each row's place in the source, per-field vocabularies and `dataset.json`
(sources with sizes and sha256, settings, counts).

One pass over the files (`prepare`): each field's values are hashed into a table that lives for the whole
file (afm.fast.hashing), ids given in order of first appearance and counted on train rows, and appended per
split; at the end a value seen fewer than `min_count` times in train becomes the field's one rare id, a
missing value its own id (local ids 0 and 1), the rest are sorted, and the ids rewritten block by block.
Integer columns are log-square bucketed as the Criteo winners did (floor(ln(x)^2) above 2, the value itself
below) or cut into quantile bins (one extra pass for a sample of their values). A row's split comes from a
hash of its position and the seed (7:2:1), so it does not depend on how the files are batched (a gzipped
and a parquet copy prepare to the same bytes), or from a column naming it. Checkpoints record the tables
and the bytes written; a rerun with the same files and settings resumes from the last one and writes the
same bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from afm.core.errors import DataError
from afm.core.files import read_small_text, write_bytes_atomic, write_text_atomic
from afm.data.dataset import SPLITS, Dataset, Split
from afm.data.mapped import MappedIds
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
    numeric: tuple[str, ...] = ()  # integer columns, bucketed; the others are categories
    buckets: str = "log-square"  # or "quantile": equally filled bins from a sample of train values
    quantiles: int = 32
    min_count: int = 1  # values seen fewer times in train become the rare id
    split_column: str = ""  # a column of train/validation/test; "": a seeded 7:2:1 by a hash of the row
    drop: tuple[str, ...] = ()  # columns that are not fields (a row id, a leak)
    seed: int = 0
    batch_rows: int = 1 << 18  # a value set is hashed once a batch per field: large batches amortise it

    def check(self) -> None:
        if self.min_count < 1 or self.batch_rows < 1:
            raise DataError("--min-count and the batch size must be at least 1")
        if self.buckets not in ("log-square", "quantile") or not 2 <= self.quantiles <= 1000:
            raise DataError("--buckets is log-square or quantile, with 2 to 1000 --quantiles")
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
    read = pacsv.ReadOptions(column_names=list(settings.names) or None, block_size=1 << 20)  # parsed in parallel
    parse = pacsv.ParseOptions(delimiter=_separator(path, settings))
    try:
        names = list(settings.names)
        if not names:  # the first line names the columns: read a small first block for them
            probe_read = pacsv.ReadOptions(block_size=1 << 20)
            with pacsv.open_csv(path, read_options=probe_read, parse_options=parse,
                                convert_options=pacsv.ConvertOptions(column_types={})) as probe:
                names = probe.schema.names
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)
        with pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert) as reader:
            pending = []
            for block in reader:  # parser blocks cut into batches of batch_rows
                pending.append(block)
                if sum(b.num_rows for b in pending) >= settings.batch_rows:
                    joined = pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
                    whole = joined.num_rows // settings.batch_rows * settings.batch_rows
                    for start in range(0, whole, settings.batch_rows):
                        yield joined.slice(start, settings.batch_rows)
                    pending = [joined.slice(whole)] if whole < joined.num_rows else []
            if pending:
                yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot be read as a table ({str(exc).splitlines()[0][:160]})") from None


def _rows(paths: list[Path], settings: PrepareSettings):
    """(first row's position over all files, batch) for every batch of every file, in order; the next batch
    is parsed in a thread while this one is encoded."""
    import queue
    import threading

    done, ahead = object(), queue.Queue(maxsize=2)
    stop = threading.Event()

    def offer(item) -> bool:  # False once the caller has stopped listening
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        offset = 0
        try:
            for path in paths:
                for batch in _batches(path, settings):
                    if not offer((offset, batch)):
                        return
                    offset += batch.num_rows
            offer(done)
        except BaseException as exc:  # raised again in the reader's caller
            offer(exc)

    reader = threading.Thread(target=read, name="afm-prepare-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = ahead.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def row_splits(start: int, n: int, seed: int, fractions=FRACTIONS) -> np.ndarray:
    """Split codes (0 train, 1 validation, 2 test) of rows start..start+n-1: a splitmix64 hash of each row's
    position and the seed, so a row's split is its own whatever the batching. `fractions=None`: the hash
    itself, a uniform number in [0, 1) per row."""
    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) / 2.0**53
    if fractions is None:
        return u
    return np.searchsorted(np.array(fractions), u, side="right").astype(np.int8)


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


def _numbers(column) -> np.ndarray:
    """A text column as float64 (NaN: missing or not a number): arrow's cast, pandas' where text is odd."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import pandas as pd

        return pd.to_numeric(pd.Series(column.to_numpy(zero_copy_only=False)), errors="coerce").to_numpy(np.float64)


def log_square(number: np.ndarray) -> np.ndarray:
    """The Criteo winners' buckets: floor(ln(x)^2) above 2, floor(x) below (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(number > 2, np.floor(np.log(np.maximum(number, 1e-300)) ** 2), np.floor(number))


def _labels(batch, target: str) -> np.ndarray:
    label = _numbers(batch.column(target))
    if not np.isfinite(label).all():
        raise DataError(f"the target column {target!r} has a missing or non-numeric value")
    return label.astype(np.float32)


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
    for dropped in settings.drop:
        if dropped not in names:
            raise DataError(f"--drop {dropped}: no such column; columns: {', '.join(names[:12])}")
    return [n for n in names if n not in (settings.target, settings.split_column, *settings.drop)]


def _field_pool():
    """Threads for the fields of a batch: arrow's, numpy's and the hashing kernels release the GIL."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)))


SKETCH_ROWS = 100_000  # each numeric field's seeded sample of train values, for quantile edges


def _quantile_edges(paths, settings, log) -> dict:
    """The quantile bucketing's extra pass: each numeric field's sample of train values (the SKETCH_ROWS
    rows with the smallest seeded row keys: uniform whatever the batching), then its edges."""
    sketches = {field: (np.zeros(0), np.zeros(0)) for field in settings.numeric}
    for offset, batch in _rows(paths, settings):
        train = _batch_splits(offset, batch, settings) == 0
        keys = row_splits(offset, batch.num_rows, settings.seed + 1, fractions=None)[train]
        for field, (values, old_keys) in sketches.items():
            values = np.concatenate([values, _numbers(batch.column(field))[train]])
            both = np.concatenate([old_keys, keys])
            if len(both) > SKETCH_ROWS:
                chosen = np.argpartition(both, SKETCH_ROWS)[:SKETCH_ROWS]
                values, both = values[chosen], both[chosen]
            sketches[field] = (values, both)
        log(f"sampling numbers for quantiles: {offset + batch.num_rows:,} rows")
    return {field: quantile_edges(values, settings.quantiles) for field, (values, _) in sketches.items()}


def quantile_edges(values: np.ndarray, buckets: int) -> list[float]:
    """Edges between `buckets` equally filled bins of the finite values (equal edges merged)."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return []
    return np.unique(np.quantile(values, np.linspace(0, 1, buckets + 1)[1:-1])).tolist()


def _settings_record(paths: list[Path], settings: PrepareSettings) -> dict:
    return {"sources": [{"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": _sha256(p)} for p in paths],
            "settings": asdict(settings)}


CHECKPOINT_SECONDS = 30.0  # an interrupted prepare resumes from its last checkpoint
RAW = ("x", "y", "rows")  # per split, appended as batches come: first-appearance ids, labels, source rows
RAW_TYPES = {"x": np.int32, "y": np.float32, "rows": np.int64}


class _Encoder:
    """The one pass's state: every field's value table and values in order of first appearance, the raw
    per-split files, the counts; saved at checkpoints (numbered files, then progress.json naming them)."""

    def __init__(self, out: Path, fields: list[str], settings: PrepareSettings, edges: dict):
        from afm.fast.hashing import ValueTable

        self.out, self.fields, self.settings, self.edges = out, fields, settings, edges
        self.tables = [ValueTable() for _ in fields]
        self.values: list[list[str]] = [[] for _ in fields]
        self.rows = {name: 0 for name in SPLITS}
        self.labels: set = set()
        self.rows_done, self.checkpoint = 0, 0

    def raw_path(self, split: str, part: str) -> Path:
        return self.out / f"{split}.{part}.raw"

    def open_raw(self, resume: dict | None) -> None:
        self.files = {}
        for split in SPLITS:
            for part in RAW:
                path = self.raw_path(split, part)
                length = resume["raw_bytes"][f"{split}.{part}"] if resume else 0
                with open(path, "ab" if resume else "wb") as fh:
                    fh.truncate(length)  # what was appended after the checkpoint is written again
                self.files[split, part] = open(path, "ab")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()

    def encode(self, offset: int, batch, pool) -> None:
        from afm.fast.hashing import hash_arrow_strings, hash_integers

        splits = _batch_splits(offset, batch, self.settings)
        train = splits == 0
        ids = np.empty((batch.num_rows, len(self.fields)), dtype=np.int32)

        def field_ids(f: int, field: str) -> None:
            column = batch.column(field)
            if field in self.settings.numeric:
                number = _numbers(column)
                quantile = field in self.edges
                bucket = np.searchsorted(np.asarray(self.edges[field]), np.nan_to_num(number), side="right") \
                    if quantile else log_square(number)
                valid = np.isfinite(number) & np.isfinite(bucket)
                whole = np.where(valid, bucket, 0).astype(np.int64)
                ids[:, f], new_rows = self.tables[f].add(hash_integers(whole), valid, train)
                self.values[f].extend(f"q{v}" if quantile else str(v) for v in whole[new_rows].tolist())
            else:
                valid = column.is_valid().to_numpy(zero_copy_only=False)
                ids[:, f], new_rows = self.tables[f].add(hash_arrow_strings(column), valid, train)
                if len(new_rows):
                    self.values[f].extend(column.take(new_rows).to_pylist())

        list(pool.map(field_ids, range(len(self.fields)), self.fields))
        y = _labels(batch, self.settings.target)
        self.labels.update(np.unique(y).tolist()[:3])
        positions = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
        for code, split in enumerate(SPLITS):
            mask = splits == code
            for part, array in zip(RAW, (ids, y, positions)):
                self.files[split, part].write(np.ascontiguousarray(array[mask]).tobytes())
            self.rows[split] += int(mask.sum())
        self.rows_done = offset + batch.num_rows

    def save(self, record: dict) -> None:
        """A checkpoint: raw files flushed, tables and values in files numbered anew, then progress.json."""
        for fh in self.files.values():
            fh.flush()
            os.fsync(fh.fileno())
        self.checkpoint += 1
        tables = {f"{f}.{key}": value for f, table in enumerate(self.tables) for key, value in table.state().items()}
        buffer = io.BytesIO()
        np.savez(buffer, **tables)
        write_bytes_atomic(self.out / f"tables.{self.checkpoint}.npz", buffer.getvalue())
        write_text_atomic(self.out / f"values.{self.checkpoint}.json", json.dumps(self.values, ensure_ascii=False))
        raw_bytes = {f"{split}.{part}": self.files[split, part].tell() for split in SPLITS for part in RAW}
        write_text_atomic(self.out / PROGRESS, json.dumps(
            {"record": record, "edges": self.edges, "checkpoint": self.checkpoint, "rows_done": self.rows_done,
             "rows": self.rows, "labels": sorted(self.labels)[:3], "raw_bytes": raw_bytes}))
        for old in (self.out / f"tables.{self.checkpoint - 1}.npz", self.out / f"values.{self.checkpoint - 1}.json"):
            old.unlink(missing_ok=True)

    def load(self, progress: dict) -> None:
        from afm.fast.hashing import ValueTable

        self.checkpoint, self.rows_done = progress["checkpoint"], progress["rows_done"]
        self.rows, self.labels = dict(progress["rows"]), set(progress["labels"])
        with np.load(self.out / f"tables.{self.checkpoint}.npz") as saved:
            self.tables = [ValueTable.from_state({key: saved[f"{f}.{key}"] for key in ("keys", "ids", "counts", "size")})
                           for f in range(len(self.fields))]
        self.values = json.loads(read_small_text(self.out / f"values.{self.checkpoint}.json", limit=1 << 34))

    def vocabularies(self) -> tuple[list[list[str]], list[np.ndarray], dict]:
        """Per field: [MISSING, RARE, values seen at least min_count times in train, sorted] (a quantile-
        bucketed field: every bucket, in order); the map from first-appearance ids (shifted by one, so
        missing's -1 is 0) to these local ids; and how many train values each field folded into rare."""
        vocab, maps, folded = [], [], {}
        for f, field in enumerate(self.fields):
            table, values = self.tables[f], self.values[f]
            counts = table.counts[:table.size]
            if field in self.edges:
                kept = [f"q{i}" for i in range(len(self.edges[field]) + 1)]
                where = {value: 2 + i for i, value in enumerate(kept)}
                local = np.array([where[v] for v in values], dtype=np.int32)
            else:
                chosen = np.flatnonzero(counts >= self.settings.min_count)
                order = sorted(chosen.tolist(), key=values.__getitem__)  # code point order, as utf-8 bytes
                kept = [values[i] for i in order]
                local = np.ones(table.size, dtype=np.int32)  # rare
                local[order] = 2 + np.arange(len(order), dtype=np.int32)
            vocab.append([MISSING, RARE, *kept])
            maps.append(np.concatenate([[0], local]).astype(np.int32))
            folded[field] = int(((counts > 0) & (counts < self.settings.min_count)).sum()) if field not in self.edges else 0
        return vocab, maps, folded

    def row_identifiers(self) -> dict[str, str]:
        """Fields that identify rows rather than describe them (afm.data.columns' rules on names and on
        distinct train values): kept, but said; `--drop` leaves them out."""
        from afm.data.columns import INDEX_NAME, MIN_ROWS, NEAR_UNIQUE

        train_rows, flagged = self.rows["train"], {}
        for f, field in enumerate(self.fields):
            distinct = int((self.tables[f].counts[:self.tables[f].size] > 0).sum())
            if INDEX_NAME.match(field.strip()):
                flagged[field] = "named like a row index"
            elif train_rows >= MIN_ROWS and distinct >= NEAR_UNIQUE * train_rows:
                flagged[field] = f"{distinct:,} distinct values in {train_rows:,} train rows, like an id of the row"
        return flagged


def prepare(paths: list[str | Path], out: str | Path, settings: PrepareSettings, log=print,
            stop_after_batches: int | None = None) -> Path:
    """Prepare `paths` into `out` (see the module's docstring). `stop_after_batches`: end after that many
    batches with a checkpoint, as an interruption would (what a resume is tested against)."""
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
    if progress is not None and (progress.get("record") != record or "checkpoint" not in progress):
        progress = None  # other files or settings: start over
    fields = _fields(paths, settings)
    (out / META).unlink(missing_ok=True)  # a finished marker only once these arrays are whole again
    if progress is None:
        edges = _quantile_edges(paths, settings, log) if settings.buckets == "quantile" else {}
    else:
        edges = progress["edges"]
        log(f"resuming at row {progress['rows_done']:,}")
    encoder = _Encoder(out, fields, settings, edges)
    if progress is not None:
        encoder.load(progress)
    encoder.open_raw(progress)
    pool = _field_pool()
    started, last_save, batches = time.perf_counter(), time.perf_counter(), 0
    try:
        for offset, batch in _rows(paths, settings):
            if offset + batch.num_rows <= encoder.rows_done:
                continue  # encoded before the interruption
            encoder.encode(offset, batch, pool)
            batches += 1
            rate = (encoder.rows_done - (progress or {}).get("rows_done", 0)) / (time.perf_counter() - started)
            log(f"reading: {encoder.rows_done:,} rows, {rate:,.0f} rows/s")
            if stop_after_batches is not None and batches >= stop_after_batches:
                encoder.save(record)
                return out
            if time.perf_counter() - last_save > CHECKPOINT_SECONDS:
                encoder.save(record)
                last_save = time.perf_counter()
    finally:
        pool.shutdown()
        encoder.close()
    _finish(encoder, record, log)
    return out


def _finish(encoder: _Encoder, record: dict, log) -> None:
    """Local ids from first-appearance ids, split by split, a block at a time; vocab.json; dataset.json last."""

    out, fields, totals = encoder.out, encoder.fields, encoder.rows
    vocab, maps, folded = encoder.vocabularies()
    labels = encoder.labels
    binary = labels <= {0.0, 1.0} or labels <= {-1.0, 1.0}
    write_text_atomic(out / VOCAB, json.dumps(dict(zip(fields, vocab)), ensure_ascii=False))
    from afm.fast.hashing import remap_columns

    starts = np.concatenate([[0], np.cumsum([len(m) for m in maps])[:-1]]).astype(np.int64)
    maps = np.concatenate(maps)
    block, m = 1 << 18, len(fields)
    for split in SPLITS:  # read and written through files, not maps: the process holds one block
        n = totals[split]
        raw = {part: open(encoder.raw_path(split, part), "rb") for part in RAW}
        outs = {part: open(out / f"{split}.{part}.npy", "wb") for part in RAW}
        try:
            for part, fh in outs.items():
                np.lib.format.write_array_header_1_0(fh, {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(RAW_TYPES[part])), "fortran_order": False,
                    "shape": (n, m) if part == "x" else (n,)})
            for start in range(0, n, block):
                rows = min(block, n - start)
                x = np.fromfile(raw["x"], dtype=np.int32, count=rows * m).reshape(rows, m)
                outs["x"].write(remap_columns(x, maps, starts).tobytes())
                y = np.fromfile(raw["y"], dtype=np.float32, count=rows)
                outs["y"].write((np.where(y > 0, 1.0, -1.0).astype(np.float32) if binary else y).tobytes())
                outs["rows"].write(np.fromfile(raw["rows"], dtype=np.int64, count=rows).tobytes())
            for fh in outs.values():
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            for fh in (*raw.values(), *outs.values()):
                fh.close()
        log(f"written: {split}")
    meta = {"format": FORMAT, "version": VERSION, **record, "fields": fields, "target": encoder.settings.target,
            "task": "binary" if binary else "regression", "rows": totals,
            "vocabulary_sizes": [len(v) for v in vocab], "folded_into_rare": folded,
            "row_identifiers": encoder.row_identifiers(),
            "numeric_buckets": {"method": encoder.settings.buckets, "fields": list(encoder.settings.numeric),
                                **({"edges": encoder.edges} if encoder.edges else {})}, "finished": True}
    write_text_atomic(out / META, json.dumps(meta, indent=1))
    (out / PROGRESS).unlink(missing_ok=True)
    for leftover in [*out.glob("*.raw"), *out.glob("tables.*.npz"), *out.glob("values.*.json")]:
        leftover.unlink()


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
    """A prepared directory as a Dataset whose ids stay on disk (afm.data.mapped): global ids, each field's
    local ids after the fields before it. Its fingerprint is the sha256 of its record (the sources' sha256
    and the settings decide every id), so no id is read to load it."""
    directory = Path(directory)
    meta = read_meta(directory)
    vocab = json.loads(read_small_text(directory / VOCAB, limit=1 << 31))
    fields = meta["fields"]
    if sorted(vocab) != sorted(fields):
        raise DataError(f"{directory / VOCAB}: its fields are not those of {META}")
    sizes = [len(vocab[f]) for f in fields]
    if sizes != meta.get("vocabulary_sizes"):
        raise DataError(f"{directory / VOCAB}: its vocabularies are not the sizes {META} records")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    splits = {}
    for name in SPLITS:
        x = MappedIds(directory / f"{name}.x.npy", offsets)
        y = np.load(directory / f"{name}.y.npy", mmap_mode="r")
        if len(x) != meta["rows"][name] or y.shape != (len(x),):
            raise DataError(f"{directory}: the {name} arrays do not hold the {meta['rows'][name]:,} rows {META} records")
        splits[name] = Split(x, y)
    feature_names = [f"{field}={value}" for field in fields for value in vocab[field]]
    record = {key: meta[key] for key in ("format", "version", "sources", "settings", "fields", "vocabulary_sizes")}
    record["sources"] = [source["sha256"] for source in record["sources"]]  # not where the files lay
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    return Dataset(directory.name, fields, feature_names, splits,
                   {"kind": "prepared", "path": str(directory.resolve())}, task=meta["task"], digest=digest,
                   field_sizes=sizes,
                   notes=f"prepared from {len(meta['sources'])} file(s); min count {meta['settings']['min_count']}")


SOURCE = Source("prepared", "a directory `python -m afm prepare` wrote",
                load=lambda spec, directory, **_: load_prepared(spec),
                recorded=lambda source, directory: load_prepared(source["path"]),
                claims=lambda path: (path / META).is_file() or (path / PROGRESS).is_file(), user_data=True)

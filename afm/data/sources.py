"""The data-source registry: where data lives and how a source name, a path or a recorded source becomes
a Dataset. Each source is one module declaring a `Source` (afm.data.source); a new one is one line in
SOURCES.

Data directory: the `--data-dir` flag, else `AFM_DATA_DIR`, else a per-user cache directory.
Layout inside it (what `python -m afm download` writes):
    frappe/frappe.{train,validation,test}.libfm[.gz]   frappe/raw/Mobile_Frappe.zip
    movielens/ml-10m.zip  (or movielens/tags.dat, movielens/tags.csv)
"""
from __future__ import annotations

import os
from pathlib import Path

from afm.core.errors import DataError
from afm.core.paths import user_directory
from afm.data import frappe, libfm, movielens, prepared, synthetic, tabular
from afm.data.dataset import Dataset
from afm.data.permuted import KEY as PERMUTED
from afm.data.permuted import original_source, permute_labels
from afm.data.source import Source

SOURCES: tuple[Source, ...] = (synthetic.SYNTHETIC, synthetic.WIDE, frappe.SOURCE, movielens.SOURCE, prepared.SOURCE,
                               libfm.SOURCE, tabular.SOURCE)
BY_NAME = {source.name: source for source in SOURCES}
NAMED_SOURCES = tuple(source.name for source in SOURCES if source.named)


def data_dir(flag: str | os.PathLike | None = None) -> Path:
    """`flag`, else `AFM_DATA_DIR`, else a per-user cache directory."""
    return user_directory(flag, "AFM_DATA_DIR", "cache", "data")


def _choices() -> str:
    return ", ".join(NAMED_SOURCES) + ", " + " or ".join(s.summary.split(" (")[0] for s in SOURCES if not s.named)


def source_for(spec: str) -> Source:
    """The source a --data value names: a named source, or the first path source that claims the path."""
    if spec in BY_NAME and BY_NAME[spec].named:
        return BY_NAME[spec]
    path = Path(spec).expanduser()
    for source in SOURCES:
        if not source.named and source.claims(path):
            return source
    raise DataError(f"unknown data source {spec!r}: use {_choices()}")


def load_dataset(source: str | dict, data_dir_flag: str | os.PathLike | None = None,
                 target: str | None = None, seed: int = 0, table=None) -> Dataset:
    """`source` is a named source ('synthetic', 'frappe', ...), a libfm directory, a CSV or parquet path,
    or the `source` dict a Dataset (and so a checkpoint) records. `table`: how a user's table is read
    (afm.data.tabular.TableOptions)."""
    directory = data_dir(data_dir_flag)
    if isinstance(source, dict):
        kind = source.get("kind")
        if kind not in BY_NAME:
            raise DataError(f"unknown recorded data source {source!r}")
        if PERMUTED in source:  # null data: the original, its labels permuted (afm.data.permuted)
            return permute_labels(BY_NAME[kind].recorded(original_source(source), directory), source[PERMUTED])
        return BY_NAME[kind].recorded(source, directory)
    chosen = source_for(source)
    if table is not None and table != tabular.TableOptions():
        if chosen is not tabular.SOURCE:
            raise DataError(f"column choices (--categorical, --numeric, --drop, --keep, --sep, --no-header, --names, --split-column) are for "
                            f"a CSV or parquet file, not {source!r}")
        return chosen.load(source, directory, target=target, seed=seed, table=table)
    return chosen.load(source, directory, target=target, seed=seed)


def presets(dataset_name: str) -> dict:
    """The settings a named source's data trains with by default ({} for a user's data)."""
    source = BY_NAME.get(dataset_name)
    return dict(source.presets) if source is not None and source.named else {}


def quick_overrides(dataset_name: str) -> dict:
    """--quick: the same protocol at a size that runs in minutes on a 2-core CPU."""
    source = BY_NAME.get(dataset_name)
    return dict(source.quick) if source is not None and source.named else {"epochs": 10}


def is_user_data(source_kind: str) -> bool:
    return source_kind in BY_NAME and BY_NAME[source_kind].user_data


def dataset_status(data_dir_flag=None) -> list[dict]:
    """What is available locally, and how to get the rest: one dict per named source."""
    directory = data_dir(data_dir_flag)
    return [{"name": source.name, **source.status(directory)} for source in SOURCES if source.named]

"""Frappe as the NFM/AFM authors encoded it, named from the raw Frappe release.

The NFM encoding (documented in the team's data notes, checked against the original validation and test
files): feature 0..956 = user id; 957 + item id for the app; each context field gets its offset plus the
order in which its value first appears reading `frappe.csv` top to bottom; `cnt` is dropped. 5,382 features.
Apps are named from `meta.csv` where it has a name.

The original train split is not always available; `rebuild_train` recreates it from the raw log plus the
original validation and test files: exact positives and exact (user, context) keys of the negatives, with
negative apps redrawn (so results on it are on a *reconstructed* split).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from afm.core.errors import DataError
from afm.data.dataset import Dataset, Split, draw_negatives
from afm.data.libfm import find_split_file, read_libfm
from afm.data.source import Source

FIELDS = ["user", "app", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city"]
RAW_COLUMNS = ["user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city"]
NUM_USERS, NUM_ITEMS, NUM_FEATURES = 957, 4082, 5382
RAW_ZIP = "Mobile_Frappe.zip"
REBUILD_SEED = 20170802


def find_raw_zip(frappe_dir: Path) -> Path | None:
    for candidate in (frappe_dir / "raw" / RAW_ZIP, frappe_dir / RAW_ZIP):
        if candidate.is_file():
            return candidate
    return None


def read_raw(zip_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(frappe.csv log, meta.csv item/name) from the official archive."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            log = pd.read_csv(io.BytesIO(archive.read("Mobile_Frappe/frappe/frappe.csv")), sep="\t", dtype=str)
            meta = pd.read_csv(io.BytesIO(archive.read("Mobile_Frappe/frappe/meta.csv")), sep="\t",
                               usecols=["item", "name"], dtype=str)
    except (zipfile.BadZipFile, KeyError, OSError, pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{zip_path}: not the Frappe v1.0 archive ({exc})") from None
    missing = [c for c in RAW_COLUMNS if c not in log.columns]
    if missing:
        raise DataError(f"{zip_path}: frappe.csv lacks columns {', '.join(missing)}")
    return log, meta


def encode_raw(log: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The NFM encoding of every raw row, and the name of every feature id."""
    user = log["user"].astype(np.int64).to_numpy()
    item = log["item"].astype(np.int64).to_numpy()
    if user.max() >= NUM_USERS or item.max() >= NUM_ITEMS:
        raise DataError("frappe.csv has more users or items than the NFM encoding (957 users, 4082 apps)")
    columns = [user, NUM_USERS + item]
    names = [f"user={u}" for u in range(NUM_USERS)] + [None] * NUM_ITEMS
    offset = NUM_USERS + NUM_ITEMS
    for field in RAW_COLUMNS[2:]:
        codes, uniques = pd.factorize(log[field], sort=False)  # order of first appearance
        columns.append(offset + codes)
        names += [f"{field}={value}" for value in uniques]
        offset += len(uniques)
    if offset != NUM_FEATURES:
        raise DataError(f"frappe.csv encodes to {offset} features, expected {NUM_FEATURES}")
    return np.stack(columns, axis=1).astype(np.int64), names


def app_names(meta: pd.DataFrame | None) -> list[str]:
    """'app=Name' for every item id; 'app=#id' where meta.csv has no name; repeated names get their id."""
    names = {}
    if meta is not None:
        for item, name in zip(meta["item"], meta["name"]):
            if isinstance(name, str) and name.strip() and name.strip().lower() != "unknown":
                names[int(item)] = name.strip()
    counts = pd.Series(list(names.values())).value_counts() if names else pd.Series(dtype=int)
    out = []
    for item in range(NUM_ITEMS):
        name = names.get(item)
        if name is None:
            out.append(f"app=#{item}")
        elif counts[name] > 1:
            out.append(f"app={name} (#{item})")
        else:
            out.append(f"app={name}")
    return out


def generic_names() -> list[str]:
    """Names when the raw archive is absent: fields are known from the offsets, values are not."""
    offsets = [0, NUM_USERS, NUM_USERS + NUM_ITEMS, 5046, 5053, 5055, 5058, 5060, 5069, 5149, NUM_FEATURES]
    names = []
    for f, field in enumerate(FIELDS):
        names += [f"{field}=#{i - offsets[f]}" for i in range(offsets[f], offsets[f + 1])]
    return names


def _row_keys(x: np.ndarray, columns: list[int]) -> np.ndarray:
    """One int64 per row over the given columns (mixed radix over feature ids)."""
    key = np.zeros(len(x), dtype=np.int64)
    for c in columns:
        key = key * NUM_FEATURES + x[:, c]
    return key


def rebuild_train(raw_x: np.ndarray, held_out: list[tuple[np.ndarray, np.ndarray]],
                  seed: int = REBUILD_SEED) -> Split:
    """Recreate frappe train from the encoded raw log and the original validation/test splits.

    Positives: the raw rows (duplicates kept) minus the held-out positives. Negatives: each raw row has
    two, with the same user and context and an app the user never used; each (user, context) key needs
    2 * (raw rows with it) - (held-out negatives with it), drawn uniformly without replacement within
    the key, leaving out that key's held-out negative apps.
    """
    rng = np.random.default_rng(seed)
    held_x = np.concatenate([x for x, _ in held_out])
    held_y = np.concatenate([y for _, y in held_out])
    all_cols = list(range(raw_x.shape[1]))
    # Positives: multiset difference on whole rows.
    raw_keys, held_pos_keys = _row_keys(raw_x, all_cols), _row_keys(held_x[held_y > 0], all_cols)
    uniq, first, raw_counts = np.unique(raw_keys, return_index=True, return_counts=True)
    held_counts = np.zeros_like(raw_counts)
    pos = np.searchsorted(uniq, held_pos_keys)
    if (pos >= len(uniq)).any() or (uniq[np.minimum(pos, len(uniq) - 1)] != held_pos_keys).any():
        raise DataError("a validation/test positive is not a raw Frappe row; the files do not belong together")
    np.add.at(held_counts, pos, 1)
    keep = raw_counts - held_counts
    if (keep < 0).any():
        raise DataError("validation/test hold more copies of a row than the raw log; the files do not belong together")
    positives = np.repeat(raw_x[first], keep, axis=0)

    # Negatives: per (user, context) key.
    ctx_cols = [0] + list(range(2, raw_x.shape[1]))
    raw_ctx = _row_keys(raw_x, ctx_cols)
    held_neg = held_x[held_y < 0]
    held_ctx = _row_keys(held_neg, ctx_cols)
    ctx_uniq, ctx_first, ctx_counts = np.unique(raw_ctx, return_index=True, return_counts=True)
    held_ctx_pos = np.searchsorted(ctx_uniq, held_ctx)
    if (held_ctx_pos >= len(ctx_uniq)).any() or (ctx_uniq[np.minimum(held_ctx_pos, len(ctx_uniq) - 1)] != held_ctx).any():
        raise DataError("a validation/test negative has a (user, context) that is not in the raw log")
    needed = 2 * ctx_counts - np.bincount(held_ctx_pos, minlength=len(ctx_uniq))
    if (needed < 0).any():
        raise DataError("validation/test hold more negatives for a (user, context) than the raw log allows")
    slot_key = np.repeat(np.arange(len(ctx_uniq)), needed)
    slot_user = raw_x[ctx_first[slot_key], 0]
    used = np.unique(raw_x[:, 0] * NUM_ITEMS + (raw_x[:, 1] - NUM_USERS))
    excluded = np.unique(held_ctx_pos * NUM_ITEMS + (held_neg[:, 1] - NUM_USERS))
    first_draw = rng.integers(0, NUM_ITEMS, size=len(slot_key))  # overwritten, but kept: the published seed's stream
    items = draw_negatives(slot_key, NUM_ITEMS, lambda items, combo: np.isin(slot_user * NUM_ITEMS + items, used)
                           | np.isin(combo, excluded), rng, drawn=first_draw)
    negatives = raw_x[ctx_first[slot_key]].copy()
    negatives[:, 1] = NUM_USERS + items

    x = np.concatenate([positives, negatives])
    y = np.concatenate([np.ones(len(positives)), -np.ones(len(negatives))]).astype(np.float32)
    order = rng.permutation(len(y))
    return Split(np.ascontiguousarray(x[order]), y[order])


def load_frappe(data_dir: Path) -> Dataset:
    frappe_dir = Path(data_dir) / "frappe"
    held_out = {}
    for split in ("validation", "test"):
        path = find_split_file(frappe_dir, "frappe", split)
        if path is None:
            raise DataError(f"Frappe's {split} split (frappe.{split}.libfm) is not in {frappe_dir}; "
                            f"run: python -m afm download frappe")
        x, y = read_libfm(path, num_fields=len(FIELDS), num_features=NUM_FEATURES)
        held_out[split] = Split(x, y)
    zip_path = find_raw_zip(frappe_dir)
    log = meta = None
    if zip_path is not None:
        log, meta = read_raw(zip_path)
    notes = []
    train_path = find_split_file(frappe_dir, "frappe", "train") or \
        find_split_file(frappe_dir / "reconstructed", "frappe", "train.reconstructed")
    if train_path is not None:
        x, y = read_libfm(train_path, num_fields=len(FIELDS), num_features=NUM_FEATURES)
        train = Split(x, y)
        if "reconstructed" in train_path.name:
            notes.append("train split: reconstructed (exact positives and contexts, resampled negative apps), "
                         "not the paper's original file")
    elif log is not None:
        raw_x, _ = encode_raw(log)
        train = rebuild_train(raw_x, [(s.x, s.y) for s in held_out.values()])
        notes.append("train split: rebuilt here from the raw log (exact positives and contexts, "
                     f"resampled negative apps, seed {REBUILD_SEED}), not the paper's original file")
    else:
        raise DataError(f"Frappe's train split is not in {frappe_dir}, and the raw archive {RAW_ZIP} "
                        f"needed to rebuild it is missing; run: python -m afm download frappe")
    if log is not None:
        _, names = encode_raw(log)
        names[NUM_USERS:NUM_USERS + NUM_ITEMS] = app_names(meta)
    else:
        names = generic_names()
        notes.append(f"feature values unnamed: {RAW_ZIP} not found")
    splits = {"train": train, **held_out}
    for split, part in splits.items():
        if not np.isin(part.y, (-1.0, 1.0)).all():
            raise DataError(f"Frappe's {split} split has labels other than -1 and 1")
    return Dataset(name="frappe", field_names=FIELDS, feature_names=names, splits=splits,
                   source={"kind": "frappe"}, task="binary", notes="; ".join(notes))


def frappe_status(data_dir: Path) -> dict:
    frappe_dir = Path(data_dir) / "frappe"
    have = all(find_split_file(frappe_dir, "frappe", s) is not None for s in ("validation", "test"))
    return {"available": have, "where": str(frappe_dir), "get": "" if have else "python -m afm download frappe"}


# The paper's settings for Frappe (embedding size 256, Adagrad, batch 128, 100 epochs); each family adds its own.
SOURCE = Source("frappe", "the NFM/AFM Frappe libfm files (app usage in context), named from the raw release",
                load=lambda spec, directory, target=None, seed=0: load_frappe(directory),
                recorded=lambda spec, directory: load_frappe(directory), status=frappe_status,
                presets={"embed_dim": 256, "epochs": 100, "batch_size": 128, "optimizer": "adagrad"},
                quick={"embed_dim": 64, "attention_factor": 64, "epochs": 6, "batch_size": 512})

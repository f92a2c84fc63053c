"""The model registry: a directory of saved model directories, plus the read-only models shipped in
`assets/models` (trained on the synthetic default by `assets/build_models.sh`).

Names are unique per save (dataset, kind, time and a random suffix), so two app sessions saving at once
get two intact models; a save never replaces an existing registry entry.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from afm.core.errors import AFMError, CheckpointError
from afm.core.paths import user_directory
from afm.data.permuted import is_null, original_source
from afm.models import family
from afm.store.checkpoints import is_model_dir, read_meta, recover_interrupted
from afm.store.modelsets import is_set_dir, set_members

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def models_dir(flag: str | os.PathLike | None = None) -> Path:
    """`flag`, else `AFM_MODELS_DIR`, else a per-user data directory."""
    return user_directory(flag, "AFM_MODELS_DIR", "data", "models")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    builtin: bool
    kind: str
    dataset: str
    test_rmse: float | None
    created: str
    loss: str = "squared"
    test_auc: float | None = None
    test_logloss: float | None = None
    set_dir: Path | None = None  # the model set it belongs to, if any
    null: bool = False  # trained on permuted labels: a null model (afm.data.permuted)
    data_source: str = ""  # the recorded source of its data (a null model's: of the data it permutes), as JSON


def _entry(path: Path, builtin: bool, set_dir: Path | None = None) -> ModelEntry:
    meta = read_meta(path)  # checks every field read below
    name = f"{set_dir.name}/{path.name}" if set_dir else path.name
    test = meta.get("metrics", {}).get("test", {})
    return ModelEntry(name=name, path=path, builtin=builtin, kind=meta["model"]["kind"],
                      dataset=meta["data"]["name"], test_rmse=test.get("rmse"), created=meta.get("created", ""),
                      set_dir=set_dir, loss=meta["model"].get("loss", "squared"), test_auc=test.get("auc"),
                      test_logloss=test.get("logloss"), null=is_null(meta["data"].get("source")),
                      data_source=json.dumps(original_source(meta["data"].get("source") or {}), sort_keys=True))


def _model_paths(root: Path) -> list[tuple[Path, Path | None]]:
    """(model directory, its set directory or None) for the models and model sets in a folder."""
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        if is_model_dir(path):
            found.append((path, None))
        elif is_set_dir(path):
            try:
                found += [(member, path) for member in set_members(path)]
            except (CheckpointError, OSError):
                continue  # said by scan_models, which reads the set again for its message
    return found


def scan_models(directory: str | os.PathLike | None = None,
                include_builtin: bool = True) -> tuple[list[ModelEntry], list[str]]:
    """The complete models, newest first, then the shipped ones; and one line for each model directory
    that could not be read (a malformed or foreign model.json), which is skipped, never fatal. Hidden
    temporaries and folders that are no model directory at all are passed over silently."""
    found, problems = [], []
    root = models_dir(directory)
    paths = []
    if root.is_dir():
        recover_interrupted(root)
        paths = [(p, s, False) for p, s in _model_paths(root)]
    if include_builtin and BUILTIN_DIR.is_dir():
        paths += [(p, s, True) for p, s in _model_paths(BUILTIN_DIR)]
    for path, set_dir, is_builtin in paths:
        try:
            found.append(_entry(path, is_builtin, set_dir))
        except CheckpointError as exc:
            problems.append(str(exc))
        except OSError as exc:  # a name too long, a folder that vanished or cannot be read: skipped, said
            problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
    if root.is_dir():
        for path in sorted(root.iterdir()):
            try:
                if not path.name.startswith(".") and is_set_dir(path):
                    set_members(path)
            except CheckpointError as exc:
                problems.append(str(exc))
            except OSError as exc:
                problems.append(f"{path}: a model set that cannot be read ({exc.strerror or exc})")
    users = sorted((e for e in found if not e.builtin), key=lambda e: e.created, reverse=True)
    return users + [e for e in found if e.builtin], problems


def list_models(directory: str | os.PathLike | None = None, include_builtin: bool = True) -> list[ModelEntry]:
    """`scan_models` without the problems."""
    return scan_models(directory, include_builtin)[0]


def registry_table(entries: list[ModelEntry]) -> pd.DataFrame:
    return pd.DataFrame([{"name": e.name, "model": family(e.kind).label + (" (null)" if e.null else ""),
                          "dataset": e.dataset, "loss": e.loss,
                          "test RMSE": e.test_rmse, "test AUC": e.test_auc, "test logloss": e.test_logloss,
                          "set": e.set_dir.name if e.set_dir else "", "created": e.created, "shipped": e.builtin}
                         for e in entries],
                        columns=["name", "model", "dataset", "loss", "test RMSE", "test AUC", "test logloss", "set",
                                 "created", "shipped"])


UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{16}-")  # uploads stored before they had a folder each (afm.store.uploads)


def readable_dataset(name: str) -> str:
    """A dataset's name without the content hash an upload's file name once began with."""
    return UPLOAD_PREFIX.sub("", name)


def _label(entry: ModelEntry, when: str) -> str:
    family_label = family(entry.kind).label
    if entry.set_dir is not None:
        family_label += f" set {entry.set_dir.name}" if entry.builtin else " set"
        when = entry.path.name.replace("-", " ") + ("" if entry.builtin else f" · {when}")
    elif entry.builtin:
        when = "shipped"
    return " · ".join(part for part in (readable_dataset(entry.dataset), family_label + (" (null)" if entry.null else ""),
                                         when) if part)


def display_names(entries: list[ModelEntry]) -> dict[str, str]:
    """A name a person can read for every entry ("titanic · AFM · 05:44"): the data, the family, the time
    it was made; the date joins where the time alone repeats, the folder name where both do. The folder
    name (with its random suffix) stays the entry's key."""
    def when(entry: ModelEntry, detail: int) -> str:
        stamp = entry.created.replace("T", " ")[:19]  # 2026-12-03 05:44:06
        return [stamp[11:16], f"{stamp[5:10]} {stamp[11:16]}", stamp[:19]][detail] if stamp else ""

    labels = {}
    for detail in range(3):
        labels = {e.name: _label(e, when(e, detail)) for e in entries}
        if len(set(labels.values())) == len(labels):
            return labels
    seen: dict[str, int] = {}
    for name, label in list(labels.items()):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[name] = f"{label} · {name}"
    return labels


def set_entries(entries: list[ModelEntry], set_dir: Path) -> list[ModelEntry]:
    """The registry entries of one model set."""
    return [e for e in entries if e.set_dir == set_dir]


def new_model_path(directory: str | os.PathLike | None, dataset: str, kind: str) -> Path:
    """A fresh, unused path for a model: `<dataset>-<kind>-<time>-<random>`."""
    root = models_dir(directory)
    root.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{dataset}-{kind}")[:40]
    while True:
        path = root / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        if not path.exists():
            return path


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise AFMError(f"{name!r} is not a valid model name: use letters, digits, '.', '_' and '-' (at most 80)")
    return name


def rename_model(entry: ModelEntry, new_name: str) -> Path:
    if entry.builtin:
        raise AFMError(f"{entry.name} is shipped with the app and cannot be renamed")
    if entry.set_dir is not None:
        raise AFMError(f"{entry.name} is a member of a model set; its name is its seed")
    target = entry.path.with_name(check_name(new_name))
    if target.exists():
        raise AFMError(f"a model named {new_name} already exists")
    os.rename(entry.path, target)  # atomic within one directory
    return target


def delete_model(entry: ModelEntry) -> None:
    if entry.builtin:
        raise AFMError(f"{entry.name} is shipped with the app and cannot be deleted")
    if entry.set_dir is not None:
        raise AFMError(f"{entry.name} is a member of a model set; delete the set's folder {entry.set_dir} instead")
    doomed = entry.path.with_name(f".{entry.name}.{secrets.token_hex(3)}.deleting")
    os.rename(entry.path, doomed)  # disappears from the registry at once, then is removed
    shutil.rmtree(doomed, ignore_errors=True)

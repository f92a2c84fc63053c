"""The model registry: a directory of saved model directories, plus the read-only models shipped in
`assets/models` (trained on the synthetic default by `assets/build_models.sh`).

Names are unique per save (dataset, kind, time and a random suffix), so two app sessions saving at once
get two intact models; a save never replaces an existing registry entry.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from afm.checkpoints import is_model_dir, read_meta, recover_interrupted
from afm.errors import AFMError, CheckpointError

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def models_dir(flag: str | os.PathLike | None = None) -> Path:
    """`flag`, else `AFM_MODELS_DIR`, else a per-user data directory."""
    if flag:
        return Path(flag).expanduser()
    if os.environ.get("AFM_MODELS_DIR"):
        return Path(os.environ["AFM_MODELS_DIR"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("afm-explorer")) / "models"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    builtin: bool
    kind: str
    dataset: str
    test_rmse: float | None
    created: str


def _entry(path: Path, builtin: bool) -> ModelEntry | None:
    try:
        meta = read_meta(path)
    except CheckpointError:
        return None  # half-written or foreign directories are not listed
    test = meta.get("metrics", {}).get("test", {})
    return ModelEntry(name=path.name, path=path, builtin=builtin, kind=meta.get("model", {}).get("kind", "?"),
                      dataset=meta.get("data", {}).get("name", "?"), test_rmse=test.get("rmse"),
                      created=meta.get("created", ""))


def list_models(directory: str | os.PathLike | None = None, include_builtin: bool = True) -> list[ModelEntry]:
    """Complete models only (hidden temporaries and foreign folders are skipped), newest first, then the
    shipped ones."""
    found = []
    root = models_dir(directory)
    if root.is_dir():
        recover_interrupted(root)
        for path in root.iterdir():
            if not path.name.startswith(".") and path.is_dir() and is_model_dir(path):
                entry = _entry(path, builtin=False)
                if entry:
                    found.append(entry)
    found.sort(key=lambda e: e.created, reverse=True)
    if include_builtin and BUILTIN_DIR.is_dir():
        found += [e for p in sorted(BUILTIN_DIR.iterdir()) if (e := _entry(p, builtin=True))]
    return found


def registry_table(entries: list[ModelEntry]) -> pd.DataFrame:
    return pd.DataFrame([{"name": e.name, "model": e.kind.upper(), "dataset": e.dataset, "test RMSE": e.test_rmse,
                          "created": e.created, "shipped": e.builtin} for e in entries],
                        columns=["name", "model", "dataset", "test RMSE", "created", "shipped"])


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
    target = entry.path.with_name(check_name(new_name))
    if target.exists():
        raise AFMError(f"a model named {new_name} already exists")
    os.rename(entry.path, target)  # atomic within one directory
    return target


def delete_model(entry: ModelEntry) -> None:
    if entry.builtin:
        raise AFMError(f"{entry.name} is shipped with the app and cannot be deleted")
    doomed = entry.path.with_name(f".{entry.name}.{secrets.token_hex(3)}.deleting")
    os.rename(entry.path, doomed)  # disappears from the registry at once, then is removed
    shutil.rmtree(doomed, ignore_errors=True)

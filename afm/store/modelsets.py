"""Model sets: several models trained on the same data that are about equally accurate (seeds, settings).

A set directory holds one ordinary model directory per member (`seed-0`, `seed-1`, ...) and `set.json`,
which names them; any list of saved models, or of sets, can also be compared as a set."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from afm.core.errors import AFMError, CheckpointError
from afm.core.files import read_small_text, write_text_atomic
from afm.store.checkpoints import LoadedModel, is_model_dir, load_model

SET_FORMAT, SET_FILE = "afm-explorer-set", "set.json"


def is_set_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / SET_FILE).is_file()


def set_members(path: str | os.PathLike) -> list[Path]:
    """The member model directories of a set directory, in seed order."""
    path = Path(path)
    try:
        info = json.loads(read_small_text(path / SET_FILE))
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path / SET_FILE}: cannot be read ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != SET_FORMAT or not isinstance(info.get("members"), list):
        raise CheckpointError(f"{path}: not an AFM Explorer model set ({SET_FILE} malformed)")
    members = []
    for name in info["members"]:
        if not isinstance(name, str) or "/" in name or name.startswith(".") or not name or len(name.encode()) > 255:
            raise CheckpointError(f"{path / SET_FILE}: bad member name {name!r:.80}")
        if (path / name).is_symlink():  # a model from elsewhere would join a set it was not trained in
            raise CheckpointError(f"{path / name}: a link; a set's members are folders of the set itself")
        if is_model_dir(path / name):  # a member still training or removed is left out
            members.append(path / name)
    return members


def member_for_seed(path: str | os.PathLike, seed: int) -> Path:
    """The member of a set trained with this seed (AFM seed s starts from FM seed s)."""
    candidate = Path(path) / f"seed-{seed}"
    if not is_model_dir(candidate):
        raise AFMError(f"the model set {path} has no member for seed {seed}")
    return candidate


def expand(paths) -> list[Path]:
    """Model directories from a list of model and set directories."""
    found = []
    for path in map(Path, paths):
        if is_set_dir(path):
            found += set_members(path)
        elif is_model_dir(path):
            found.append(path)
        else:
            raise AFMError(f"{path} is neither a model directory nor a model set")
    if not found:
        raise AFMError("no models to compare")
    return found


def set_of(path: Path) -> str:
    """The name of the set a model directory belongs to ("" when none)."""
    return path.parent.name if is_set_dir(path.parent) else ""


def member_name(path: Path) -> str:
    """A model's readable name: `set/seed-S` for a set member, else its folder name."""
    return f"{set_of(path)}/{path.name}" if set_of(path) else path.name


def load_models(paths) -> dict[str, LoadedModel]:
    """Every model of the given model and set directories, by `member_name`."""
    return {member_name(path): load_model(path) for path in expand(paths)}


def write_set_file(directory: Path, members: list[str], kind: str, settings: dict, null: bool = False) -> None:
    info = {"format": SET_FORMAT, "kind": kind, "members": members, "settings": settings,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if null:
        info["null"] = True  # trained on permuted labels (afm.data.permuted)
    write_text_atomic(directory / SET_FILE, json.dumps(info, indent=1))  # concurrent writers: one temporary each

"""A saved model is a directory: `model.safetensors` (weights) and `model.json` (config, data, metrics).

safetensors holds tensors only, so loading can never run code from the file. Saving writes a temporary
directory beside the target and renames it into place: a model directory appears whole or not at all,
and an earlier model of the same name stays intact until the new one is complete.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from afm.core.errors import AFMError, CheckpointError
from afm.core.files import read_small_text, write_text_atomic
from afm.core.limits import check_allocation
from afm.core.provenance import git_state, library_versions
from afm.models import ModelConfig, build_model

FORMAT = "afm-explorer-model"
FORMAT_VERSION = 1
WEIGHTS, META = "model.safetensors", "model.json"
LEGACY_NAMES = {"weight.weight": "linear.weight"}  # the first-order table's name before it was `linear`


@dataclass
class LoadedModel:
    model: torch.nn.Module
    meta: dict
    path: Path


class SavedElsewhereWarning(UserWarning):
    """The asked-for model directory appeared while this model was being made; it was saved beside it."""


def save_model(model: torch.nn.Module, directory: str | os.PathLike, *, data: dict, training: dict | None = None,
               metrics: dict | None = None, history: list | None = None, extra: dict | None = None,
               overwrite: bool = False) -> Path:
    """Write a model directory atomically and return where it went. `data` is `Dataset.describe()`.

    With `overwrite`, an existing model there is replaced in one step. Without it, an existing directory is
    never touched: the model goes to the first free `NAME-2`, `NAME-3`, ... with a SavedElsewhereWarning,
    so two runs saving to one new path both keep their model."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "data": data,
        "training": training or {},
        "metrics": metrics or {},
        "history": history or [],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": library_versions(),
        "git": git_state(),
        **(extra or {}),
    }
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        save_file(tensors, str(tmp / WEIGHTS))
        (tmp / META).write_text(json.dumps(meta, indent=2, allow_nan=True), encoding="utf-8")
        for name in (WEIGHTS, META):
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        saved = _replace_directory(tmp, directory) if overwrite else _place_new(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if saved != directory:
        warnings.warn(f"{directory} already exists; this model was saved as {saved}", SavedElsewhereWarning)
    return saved


def _rename_noreplace(source: Path, target: Path) -> bool:
    """Rename unless `target` exists, in one atomic step where the system allows (renameat2
    RENAME_NOREPLACE); False when the target exists."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        AT_FDCWD, RENAME_NOREPLACE = -100, 1
        if renameat2(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), RENAME_NOREPLACE) == 0:
            return True
        error = ctypes.get_errno()
        if error == errno.EEXIST:
            return False
        if error not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(error, os.strerror(error), str(target))
    if target.exists() or target.is_symlink():  # no atomic primitive: a tiny window remains
        return False
    os.rename(source, target)
    return True


def _place_new(new: Path, target: Path) -> Path:
    """Put `new` at `target`, or at the first free `target-N` when something is already there."""
    candidate, n = target, 1
    while not _rename_noreplace(new, candidate):
        n += 1
        candidate = target.with_name(f"{target.name}-{n}")
    return candidate


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def _replace_directory(new: Path, target: Path) -> Path:
    """Put `new` at `target`. An existing model there is swapped out in one atomic step where the system
    allows it; elsewhere it is moved aside first and `recover_interrupted` puts it back if a crash came
    between the two renames. Either way `target` always holds one complete model."""
    if not target.exists() and _rename_noreplace(new, target):
        return target
    if not is_model_dir(target):
        raise CheckpointError(f"{target} exists and is not a model directory; refusing to overwrite it")
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now holds the previous model
        return target
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


STALE_TEMPORARY_SECONDS = 3600  # a save fills its temporary in seconds; one this old lost its process


def recover_interrupted(directory: Path) -> None:
    """Restore a model moved aside by a save that was killed before its new version was in place, and
    remove the temporaries of killed saves (not recent ones: another process may be writing them)."""
    for old in Path(directory).glob(".*.old"):
        name = old.name[1:].rsplit(".", 2)[0]
        target = old.with_name(name)
        if not target.exists() and is_model_dir(old):
            os.rename(old, target)
    for tmp in Path(directory).glob(".*.tmp"):
        try:
            stale = time.time() - tmp.stat().st_mtime > STALE_TEMPORARY_SECONDS
        except FileNotFoundError:  # its save just finished
            continue
        if stale and tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)


def update_meta(directory: str | os.PathLike, **fields) -> None:
    """Add fields to a saved model's model.json, atomically (a temporary file renamed into place): a
    statistic computed after the model was written can never cost the model."""
    directory = Path(directory)
    meta = read_meta(directory)
    meta.update(fields)
    write_text_atomic(directory / META, json.dumps(meta, indent=2, allow_nan=True))


def is_model_dir(path: Path) -> bool:
    return (Path(path) / META).is_file() and (Path(path) / WEIGHTS).is_file()


def read_meta(directory: str | os.PathLike) -> dict:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    if not (directory / META).is_file() or not (directory / WEIGHTS).is_file():
        raise CheckpointError(f"{directory}: not a model directory (needs {META} and {WEIGHTS})")
    try:
        meta = json.loads(read_small_text(directory / META))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{directory / META}: not valid JSON ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{directory / META}: nested too deeply to be a model description") from None
    except OSError as exc:
        raise CheckpointError(f"{directory / META}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{directory}: not an AFM Explorer model (format marker missing)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{directory}: model format version {meta.get('format_version')!r}; "
                              f"this version reads {FORMAT_VERSION}")
    check_meta(meta, directory)
    return meta


_META_TYPES = {"model": dict, "data": dict, "training": dict, "metrics": dict, "history": list, "created": str,
               "versions": dict, "best_epoch": int, "stop_reason": str, "train_seconds": (int, float),
               "device": str, "attention_spread": dict, "start": dict, "git": dict, "untrained": bool}


def check_meta(meta: dict, where: Path) -> None:
    """Every field this project reads has the type it should, and the data description agrees with the
    model config: a model.json edited by hand or by another program is refused with one line."""
    for key, kind in _META_TYPES.items():
        if key in meta and (not isinstance(meta[key], kind) or (isinstance(meta[key], bool) and kind is not bool)):
            raise CheckpointError(f"{where}: '{key}' in {META} should be {_type_name(kind)}, not {meta[key]!r:.60}")
    config = config_from_meta(meta, where)
    data = meta.get("data", {})
    fields_ = data.get("fields")
    if not (isinstance(fields_, list) and all(isinstance(f, str) for f in fields_)):
        raise CheckpointError(f"{where}: 'data.fields' in {META} should be a list of field names")
    if len(fields_) != config.num_fields or data.get("num_features") != config.num_features:
        raise CheckpointError(f"{where}: {META} describes {config.num_features} features in {config.num_fields} "
                              f"fields, but its data has {data.get('num_features')!r} features in "
                              f"{len(fields_)} fields")
    for key in ("name", "fingerprint"):
        if not isinstance(data.get(key), str):
            raise CheckpointError(f"{where}: 'data.{key}' in {META} should be text")
    if "source" in data and not isinstance(data["source"], dict):
        raise CheckpointError(f"{where}: 'data.source' in {META} should be an object")
    for split, values in meta.get("metrics", {}).items():
        if not isinstance(values, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values.values()):
            raise CheckpointError(f"{where}: 'metrics.{split}' in {META} should map names to numbers")
    if not all(isinstance(row, dict) for row in meta.get("history", [])):
        raise CheckpointError(f"{where}: 'history' in {META} should be a list of objects")


def _type_name(kind) -> str:
    names = {dict: "an object", list: "a list", str: "text", int: "a whole number", bool: "true or false"}
    return names.get(kind, "a number")


def config_from_meta(meta: dict, where: Path) -> ModelConfig:
    raw = meta.get("model")
    known = {f.name for f in fields(ModelConfig)}
    if not isinstance(raw, dict) or set(raw) - known or not {"kind", "num_features", "num_fields"} <= set(raw):
        raise CheckpointError(f"{where}: the model config in {META} is malformed")
    try:
        return ModelConfig(**raw)
    except (TypeError, AFMError) as exc:
        raise CheckpointError(f"{where}: the model config in {META} is not usable ({exc})") from None


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model directory, checking names, shapes and values of every tensor against the config."""
    directory = Path(directory)
    meta = read_meta(directory)
    config = config_from_meta(meta, directory)
    check_weights_header(directory / WEIGHTS, config)  # names, shapes and dtypes, before anything is allocated
    try:
        check_allocation(config.parameter_count() * 2, f"{directory}: the model", item_bytes=4)
    except AFMError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        tensors = load_file(str(directory / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{directory / WEIGHTS}: not a valid safetensors file ({exc})") from None
    tensors = {LEGACY_NAMES.get(name, name): tensor for name, tensor in tensors.items()}
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{directory}: {name} holds NaN or infinite values")
    model = build_model(config)
    model.load_state_dict(tensors)
    model.to(device).eval()
    return LoadedModel(model=model, meta=meta, path=directory)


def check_weights_header(path: Path, config: ModelConfig) -> None:
    """The safetensors header (read without loading any tensor) names exactly the config's tensors, with
    its shapes, in float32."""
    expected = config.tensor_shapes()
    try:
        with safe_open(str(path), framework="pt") as fh:
            found = {LEGACY_NAMES.get(name, name): (tuple(fh.get_slice(name).get_shape()), fh.get_slice(name).get_dtype())
                     for name in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors file ({exc})") from None
    if set(found) != set(expected):
        missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        raise CheckpointError(f"{path.parent}: weights do not match the config (missing {missing}, "
                              f"unexpected {unexpected})")
    for name, (shape, dtype) in found.items():
        if shape != expected[name]:
            raise CheckpointError(f"{path.parent}: {name} has shape {shape}, the config needs {expected[name]}")
        if dtype not in ("F32", "float32"):
            raise CheckpointError(f"{path.parent}: {name} has dtype {dtype}, expected float32")

"""A saved model is a directory: `model.safetensors` (weights) and `model.json` (config, data, metrics).

safetensors holds tensors only, so loading can never run code from the file. Saving writes a temporary
directory beside the target and renames it into place: a model directory appears whole or not at all,
and an earlier model of the same name stays intact until the new one is complete.
"""
from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from afm.errors import CheckpointError
from afm.models import ModelConfig, build_model

FORMAT = "afm-explorer-model"
FORMAT_VERSION = 1
WEIGHTS, META = "model.safetensors", "model.json"


def library_versions() -> dict:
    import numpy
    import safetensors

    from afm import __version__

    return {"afm": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


@dataclass
class LoadedModel:
    model: torch.nn.Module
    meta: dict
    path: Path


def save_model(model: torch.nn.Module, directory: str | os.PathLike, *, data: dict, training: dict | None = None,
               metrics: dict | None = None, history: list | None = None, extra: dict | None = None) -> Path:
    """Write a model directory atomically. `data` is `Dataset.describe()`."""
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
        _replace_directory(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def _replace_directory(new: Path, target: Path) -> None:
    """Put `new` at `target`. An existing model there is swapped out in one atomic step where the system
    allows it; elsewhere it is moved aside first and `recover_interrupted` puts it back if a crash came
    between the two renames. Either way `target` always holds one complete model."""
    if not target.exists():
        os.rename(new, target)
        return
    if not is_model_dir(target):
        raise CheckpointError(f"{target} exists and is not a model directory; refusing to overwrite it")
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now holds the previous model
        return
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


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


def is_model_dir(path: Path) -> bool:
    return (Path(path) / META).is_file() and (Path(path) / WEIGHTS).is_file()


def read_meta(directory: str | os.PathLike) -> dict:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    if not (directory / META).is_file() or not (directory / WEIGHTS).is_file():
        raise CheckpointError(f"{directory}: not a model directory (needs {META} and {WEIGHTS})")
    try:
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{directory / META}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{directory}: not an AFM Explorer model (format marker missing)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{directory}: model format version {meta.get('format_version')!r}; "
                              f"this version reads {FORMAT_VERSION}")
    return meta


def config_from_meta(meta: dict, where: Path) -> ModelConfig:
    raw = meta.get("model")
    known = {f.name for f in fields(ModelConfig)}
    if not isinstance(raw, dict) or set(raw) - known or not {"kind", "num_features", "num_fields"} <= set(raw):
        raise CheckpointError(f"{where}: the model config in {META} is malformed")
    try:
        return ModelConfig(**raw)
    except TypeError as exc:
        raise CheckpointError(f"{where}: the model config in {META} is malformed ({exc})") from None


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model directory, checking names, shapes and values of every tensor against the config."""
    directory = Path(directory)
    meta = read_meta(directory)
    config = config_from_meta(meta, directory)
    try:
        model = build_model(config)
    except Exception as exc:  # a config with impossible sizes
        raise CheckpointError(f"{directory}: cannot build the model its config describes ({exc})") from None
    try:
        tensors = load_file(str(directory / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{directory / WEIGHTS}: not a valid safetensors file ({exc})") from None
    expected = model.state_dict()
    if set(tensors) != set(expected):
        missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise CheckpointError(f"{directory}: weights do not match the config (missing {missing}, unexpected {unexpected})")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{directory}: {name} has shape {tuple(tensor.shape)}, "
                                  f"the config needs {tuple(expected[name].shape)}")
        if tensor.dtype != expected[name].dtype:
            raise CheckpointError(f"{directory}: {name} has dtype {tensor.dtype}, expected {expected[name].dtype}")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{directory}: {name} holds NaN or infinite values")
    model.load_state_dict(tensors)
    model.to(device).eval()
    return LoadedModel(model=model, meta=meta, path=directory)

"""Training a model set: one model per seed into `out/seed-N`, named in `set.json` (afm.store.modelsets)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from afm.core.errors import AFMError
from afm.data.permuted import permute_labels
from afm.store.checkpoints import is_model_dir, read_meta
from afm.store.modelsets import is_set_dir, member_for_seed, write_set_file
from afm.training.workflows import train_and_save


def check_resumable(member: Path, kind: str, dataset, overrides: dict) -> None:
    """A member already saved is kept only when it is what this run would train: the same family, data and
    given settings; anything else is refused (a set of FMs does not become a set of AFMs by its set.json)."""
    meta = read_meta(member)
    differs = []
    if meta["model"].get("kind") != kind:
        differs.append(f"family {meta['model'].get('kind')} (asked: {kind})")
    if meta.get("data", {}).get("fingerprint") != dataset.fingerprint:
        differs.append("other data")
    recorded = {**meta.get("model", {}), **meta.get("training", {}), **meta.get("start", {})}
    for name, value in overrides.items():
        if value is not None and name in recorded and recorded[name] != value:
            differs.append(f"{name} {recorded[name]!r} (asked: {value!r})")
    if differs:
        raise AFMError(f"{member} was trained with {', '.join(differs)}; resuming would mix two runs in one set: "
                       f"use another --out, or remove it")


@contextmanager
def claimed(member: Path):
    """Claim a member before training it (an exclusive file beside it), so two processes training one set
    never both train it; the claim goes when the member is saved or the run fails."""
    claim = member.with_name(f".{member.name}.claim")
    try:
        handle = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise AFMError(f"{member} is being trained by another process (or one that was killed: remove "
                       f"{claim} if none runs)") from None
    try:
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        yield
    finally:
        claim.unlink(missing_ok=True)


def train_set(dataset, kind: str, out: str | os.PathLike, seeds: list[int], overrides: dict | None = None,
              pretrain_dir: str | os.PathLike | None = None, log=print, null: bool = False, **callbacks) -> list:
    """Train one model per seed into `out/seed-N` (each a model directory) and name them in `set.json`.
    With a set as `pretrain_dir`, the AFM of seed s starts from the FM of seed s. Members already saved
    are kept, so an interrupted set resumes where it stopped. `null`: a null set, each member trained on the
    data with its train and validation labels permuted by its own seed (afm.data.permuted)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AFMError(f"{out} is a file; a model set is a folder")
    if is_model_dir(out):
        raise AFMError(f"{out} is a model directory; a model set needs a folder of its own")
    out.mkdir(parents=True, exist_ok=True)
    if pretrain_dir and is_set_dir(pretrain_dir):  # every start there before any member trains
        for seed in seeds:
            member_for_seed(pretrain_dir, seed)
    done = []
    for seed in seeds:
        member = out / f"seed-{seed}"
        data = permute_labels(dataset, seed) if null else dataset
        if is_model_dir(member):
            check_resumable(member, kind, data, {**(overrides or {}), "seed": seed})
        else:
            start = member_for_seed(pretrain_dir, seed) if pretrain_dir and is_set_dir(pretrain_dir) else pretrain_dir
            with claimed(member):  # saved by another process between our look and our claim: kept
                trained = None if is_model_dir(member) else train_and_save(
                    data, kind, member, {**(overrides or {}), "seed": seed}, start, **callbacks)
            if trained is None:
                check_resumable(member, kind, data, {**(overrides or {}), "seed": seed})
            elif trained.diverged:
                raise AFMError(f"seed {seed}: {trained.divergence_message()}")
            else:
                log(f"seed {seed}: best epoch {trained.result.best_epoch}, validation {trained.result.selected_by} "
                    f"{trained.result.best_validation:.4f} ({trained.result.seconds:.0f}s)")
        done.append(member.name)
        write_set_file(out, done, kind, {k: v for k, v in (overrides or {}).items() if v is not None}, null=null)
        should_stop = callbacks.get("should_stop")
        if should_stop is not None and should_stop():
            break  # the member that was stopped keeps its best epoch; no further seeds start
    return [out / name for name in done]

"""Training a model set: one model per seed into `out/seed-N`, named in `set.json` (afm.store.modelsets)."""
from __future__ import annotations

import os
from pathlib import Path

from afm.core.errors import AFMError
from afm.data.permuted import permute_labels
from afm.store.checkpoints import is_model_dir
from afm.store.modelsets import is_set_dir, member_for_seed, write_set_file
from afm.training.workflows import train_and_save


def train_set(dataset, kind: str, out: str | os.PathLike, seeds: list[int], overrides: dict | None = None,
              pretrain_dir: str | os.PathLike | None = None, log=print, null: bool = False, **callbacks) -> list:
    """Train one model per seed into `out/seed-N` (each a model directory) and name them in `set.json`.
    With a set as `pretrain_dir`, the AFM of seed s starts from the FM of seed s. Members already saved
    are kept, so an interrupted set resumes where it stopped. `null`: a null set, each member trained on the
    data with its train and validation labels permuted by its own seed (afm.data.permuted)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for seed in seeds:
        member = out / f"seed-{seed}"
        if not is_model_dir(member):
            start = member_for_seed(pretrain_dir, seed) if pretrain_dir and is_set_dir(pretrain_dir) else pretrain_dir
            data = permute_labels(dataset, seed) if null else dataset
            trained = train_and_save(data, kind, member, {**(overrides or {}), "seed": seed}, start, **callbacks)
            if trained.diverged:
                raise AFMError(f"seed {seed}: {trained.divergence_message()}")
            log(f"seed {seed}: best epoch {trained.result.best_epoch}, validation {trained.result.selected_by} "
                f"{trained.result.best_validation:.4f} ({trained.result.seconds:.0f}s)")
        done.append(member.name)
        write_set_file(out, done, kind, {k: v for k, v in (overrides or {}).items() if v is not None}, null=null)
        should_stop = callbacks.get("should_stop")
        if should_stop is not None and should_stop():
            break  # the member that was stopped keeps its best epoch; no further seeds start
    return [out / name for name in done]

"""The steps the command line, the app and the experiments share: train a model on a dataset (and save
it); load a saved model together with the data it was trained on."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from afm.core import settings
from afm.core.errors import AFMError, CheckpointError
from afm.core.limits import check_fits
from afm.data import Dataset, load_dataset
from afm.data.sources import is_user_data
from afm.explain.statistics import streamed_attention_spread
from afm.models import ModelConfig, build_model
from afm.models.families import FAMILIES, family, hyperparameters
from afm.models.inference import evaluate
from afm.store.checkpoints import LoadedModel, load_model, save_model, update_meta
from afm.store.importers import import_model
from afm.training import distributed
from afm.training.loop import TrainConfig, TrainResult, epoch_seconds, train, train_sample


class DataChangedWarning(UserWarning):
    """The data a model is used with has the model's fields and features, but not its exact rows."""


@dataclass
class Trained:
    """What a training run gives back: the model at its best epoch, how training went, the settings it
    ran with (`params`, every setting of `afm.core.settings`), and where it was saved, if it was."""

    model: torch.nn.Module
    result: TrainResult
    config: TrainConfig
    params: dict
    path: Path | None = None

    @property
    def diverged(self) -> bool:
        return self.result.diverged

    @property
    def untrained(self) -> bool:
        """No epoch beat the model as initialised on validation: what was kept is the initialisation."""
        return self.result.best_epoch == 0 and self.config.epochs > 0

    def untrained_message(self) -> str:
        return (f"training never beat the untrained model on validation (best epoch 0 of "
                f"{len(self.result.history) - 1}): the saved model is its initialisation; try another --lr or "
                f"--optimizer, or more --epochs")

    def raise_if_diverged(self) -> None:
        """For callers that need a finished model (experiments): divergence as an AFMError."""
        if self.diverged:
            raise AFMError(self.divergence_message())

    def divergence_message(self) -> str:
        """One line for people: what diverged and what was kept."""
        if self.result.best_epoch == 0:
            kept = "no epoch finished, so nothing was saved" if self.path is None else "nothing was trained"
        else:
            kept = f"the best epoch ({self.result.best_epoch}) was kept" + (f" in {self.path}" if self.path else "")
        return f"{self.result.message}; {kept}"


def make_model(dataset: Dataset, kind: str, params: dict, pretrain: LoadedModel | None = None):
    """Build a model of family `kind` for a dataset from a run's params; a family that starts from another
    (AFM from FM) takes the trained model's embeddings."""
    config = ModelConfig(kind=kind, num_features=dataset.num_features, num_fields=dataset.num_fields,
                         **settings.part(params, "model"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.get("seed", 0))
        model = build_model(config)
    if pretrain is not None:
        start = family(kind).starts_from
        if start is None or pretrain.model.config.kind != start:
            raise AFMError(pretrain_message())
        check_same_data(pretrain.meta, dataset, str(pretrain.path))
        model.load_fm_embeddings(pretrain.model, params.get("p_start", "ones"))
    if params.get("freeze_fm"):
        if pretrain is None:
            raise AFMError("freezing FM's parameters (FM+A) needs a trained FM to start from (--pretrain)")
        for frozen in (model.bias, model.linear.weight, model.embedding.weight):
            frozen.requires_grad_(False)  # the paper's FM+A: only the attention network (and p) learn
    return model


def pretrain_message() -> str:
    """What --pretrain takes, from the families that can start from another."""
    pairs = [f"a trained {FAMILIES[f.starts_from].label} model directory, for training an {f.label}"
             for f in FAMILIES.values() if f.starts_from]
    return "--pretrain takes " + "; or ".join(pairs)


def default_loss(dataset: Dataset) -> str:
    """A user's two-valued target trains as the CTR field does (logistic); everything else as the paper."""
    return "logistic" if dataset.task == "binary" and is_user_data(dataset.source.get("kind", "")) else \
        settings.default("loss")


LARGE_TABLE_ROWS = 50_000
# A user's large table (a click log): measured on a Criteo-shaped 200,000-row headerless TSV (13 counts, 26
# long-tailed categories; tests/test_practitioner.py's criteo_like), FM's validation AUC at its best epoch
# was 0.7912 with the general defaults (batch 256, Adam lr 0.01: best at epoch 1, then rare ids memorised),
# 0.8352 at lr 0.001, 0.8389 at batch 2048 and lr 0.001 in a third of the time. Small tables keep the small
# batch, so an epoch still takes many steps.
LARGE_TABLE_DEFAULTS = {"batch_size": 2048, "lr": 0.001}


def data_defaults(dataset: Dataset) -> dict:
    """Settings a user's data trains with unless the user says otherwise: the CTR field's loss for a
    two-valued target, and for a large table a larger batch and a smaller learning rate."""
    defaults = {"loss": default_loss(dataset)}
    if is_user_data(dataset.source.get("kind", "")) and len(dataset.splits["train"]) >= LARGE_TABLE_ROWS:
        defaults.update(LARGE_TABLE_DEFAULTS)
    return defaults


def check_same_data(meta: dict, dataset: Dataset, where: str) -> None:
    """A model fits only data with its fields and features; a changed fingerprint is only warned about."""
    recorded = meta.get("data", {})
    config = meta.get("model", {})
    if (recorded.get("num_features") != dataset.num_features or recorded.get("fields") != dataset.field_names
            or config.get("num_features") != dataset.num_features or config.get("num_fields") != dataset.num_fields):
        raise AFMError(f"{where} was made for {config.get('num_features')} features in {config.get('num_fields')} "
                       f"fields ({recorded.get('fields')}); this data has {dataset.num_features} features in "
                       f"{dataset.num_fields} fields ({dataset.field_names})")
    if recorded.get("fingerprint") != dataset.fingerprint:
        warnings.warn(f"the data differs from what {where} was trained on (fingerprint changed)", DataChangedWarning)


def run_settings(dataset: Dataset, kind: str, overrides: dict | None = None,
                 pretrain: LoadedModel | None = None) -> dict:
    """Every setting of a run: the preset for this data, the overrides, and an FM's embedding size and loss
    when AFM starts from it; a user's two-valued target defaults to logistic loss. The batch is capped at
    the training rows (one batch an epoch)."""
    overrides = dict(overrides or {})
    for name in ("embed_dim", "loss"):  # an AFM takes these from the FM it starts from
        if pretrain is not None and overrides.get(name) is None:
            overrides[name] = getattr(pretrain.model.config, name)
    for name, value in data_defaults(dataset).items():
        if overrides.get(name) is None:
            overrides[name] = value
    params = hyperparameters(dataset.name, kind, overrides)
    params["batch_size"] = min(params["batch_size"], len(dataset.splits["train"]))
    return params


def fit(dataset: Dataset, kind: str, overrides: dict | None = None, pretrain_dir: str | os.PathLike | None = None,
        on_progress=None, should_stop=None, show_progress: bool = False) -> Trained:
    """Train FM or AFM on a dataset with the preset settings plus overrides. The model ends at its best
    validation epoch, also when training diverged (see `Trained.diverged`)."""
    pretrain = load_model(pretrain_dir) if pretrain_dir else None
    params = run_settings(dataset, kind, overrides, pretrain)
    config = ModelConfig(kind=kind, num_features=dataset.num_features, num_fields=dataset.num_fields,
                         **settings.part(params, "model"))
    check_fits(config, params["batch_size"], len(dataset.splits["train"]))
    model = make_model(dataset, kind, params, pretrain=pretrain)
    train_config = TrainConfig(**settings.part(params, "train"))
    result = train(model, dataset, train_config, on_progress=on_progress, should_stop=should_stop,
                   show_progress=show_progress)
    if pretrain is not None:
        result.extra["pretrained_from"] = str(pretrain.path)
    return Trained(model, result, train_config, params)


def save_trained(trained: Trained, dataset: Dataset, out: str | os.PathLike, overwrite: bool = False) -> Trained:
    """Write a trained model's directory (on rank 0 under torchrun) and record where in `trained.path`."""
    if not distributed.is_main():
        return trained  # under torchrun, rank 0 alone writes the one checkpoint
    model, result = trained.model, trained.result
    # A click log on disk: train metrics on the fixed sample the epochs used, not another pass over every row.
    metrics = {split: evaluate(model, dataset, split, train_sample(len(dataset.splits[split]))
                               if split == "train" and dataset.streamed else None)
               for split in ("train", "validation", "test")}
    extra = {"best_epoch": result.best_epoch, "stop_reason": result.stop_reason, "train_seconds": result.seconds,
             "device": result.device, "start": settings.part(trained.params, "start"),
             "untrained": trained.untrained, **result.extra}
    trained.path = save_model(model, out, data=dataset.describe(), training=trained.config.to_dict(),
                              metrics=metrics, history=result.history, extra=extra, overwrite=overwrite)
    _record_spread(model, dataset, trained.path)
    return trained


def _record_spread(model, dataset: Dataset, path: Path) -> None:
    """Every model with attention records its spread, so no one reads a constant attention map unawares;
    computed after the model is written and one batch at a time, so it can cost neither the model nor memory."""
    if model.config.family.attention:
        update_meta(path, attention_spread=streamed_attention_spread(model, dataset.splits["validation"].x))


LONG_RUN_SECONDS = 600  # a run expected to take longer is announced before it starts


def expected_seconds(dataset: Dataset, kind: str, overrides: dict | None = None) -> tuple[float, int]:
    """(about how long one epoch takes here, the epochs it may run): timed on a throwaway model of the same
    settings (afm.training.loop.epoch_seconds); early stopping may end the run sooner."""
    params = run_settings(dataset, kind, overrides)
    model = make_model(dataset, kind, params)
    config = TrainConfig(**settings.part(params, "train"))
    return epoch_seconds(model, dataset, config), config.epochs


def train_and_save(dataset: Dataset, kind: str, out, overrides=None, pretrain_dir=None, overwrite: bool = False,
                   **callbacks) -> Trained:
    """fit + save_trained. A run that diverged is saved when at least one epoch finished before it."""
    trained = fit(dataset, kind, overrides, pretrain_dir, **callbacks)
    if not trained.diverged or trained.result.best_epoch > 0:
        save_trained(trained, dataset, out, overwrite)
    return trained


def import_and_save(library: str, file, dataset: Dataset, out, overwrite: bool = False, vocab=None, check=None,
                    kind: str | None = None, heads: int | None = None):
    """Import another library's model (afm.store.importers), evaluate it on every split and save it as ours;
    (where it went, the model, notes on what was dropped or assumed). Its metrics are on the user's own
    splits only where the data names them (a split column, or data of ours it was encoded from); else the
    notes say they are on rows the model may have been trained on."""
    model, notes = import_model(library, file, dataset, vocab=vocab, check=check, kind=kind, heads=heads)
    metrics = {split: evaluate(model, dataset, split) for split in ("train", "validation", "test")}
    if not held_out_known(dataset):
        notes.append(SPLIT_UNKNOWN)
    extra = {"imported": {"library": library, "file": str(Path(file).resolve()), "notes": notes,
                          "held_out_known": held_out_known(dataset)}}
    path = save_model(model, out, data=dataset.describe(), metrics=metrics, extra=extra, overwrite=overwrite)
    _record_spread(model, dataset, path)
    return path, model, notes


SPLIT_UNKNOWN = ("metrics on rows the model may have been trained on: this split is ours (seeded 7:2:1), not the "
                 "one it was trained with; name the held-out rows with --split-column")


def held_out_known(dataset: Dataset) -> bool:
    """Whether a dataset's test split is one another library's user could have held out: data of ours, whose
    splits `afm encode` wrote, or a user's table with a split column."""
    return not is_user_data(dataset.source.get("kind", "")) or bool(dataset.source.get("split_column"))


def load_with_data(model_dir: str | os.PathLike, data_dir_flag=None) -> tuple[LoadedModel, Dataset]:
    """A saved model and the data its checkpoint names, checked to fit together."""
    loaded = load_model(model_dir)
    spec = loaded.meta.get("data", {}).get("source")
    if not isinstance(spec, dict):
        raise CheckpointError(f"{model_dir}: the checkpoint does not record its data source")
    dataset = load_dataset(spec, data_dir_flag)
    check_same_data(loaded.meta, dataset, str(model_dir))
    return loaded, dataset

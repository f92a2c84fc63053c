"""The steps the command line and the app share: train a model on a dataset and save it; load a saved
model together with the data it was trained on."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from afm import distributed
from afm.checkpoints import LoadedModel, load_model, save_model
from afm.data import Dataset, load_dataset
from afm.errors import AFMError, CheckpointError, TrainingDiverged
from afm.explain import explain_split
from afm.limits import check_fits
from afm.models import ModelConfig, build_model
from afm.presets import MODEL_KEYS, TRAIN_KEYS, hyperparameters
from afm.statistics import attention_spread
from afm.training import TrainConfig, TrainResult, evaluate, train


class DataChangedWarning(UserWarning):
    """The data a model is used with has the model's fields and features, but not its exact rows."""


def make_model(dataset: Dataset, kind: str, params: dict, seed: int = 0, pretrain: LoadedModel | None = None):
    """Build FM or AFM for a dataset; AFM can start from a trained FM's embeddings."""
    model_args = {k: params[k] for k in MODEL_KEYS if k in params}
    if kind == "fm":
        model_args = {k: v for k, v in model_args.items() if k in ("embed_dim", "dropout")}
    config = ModelConfig(kind=kind, num_features=dataset.num_features, num_fields=dataset.num_fields, **model_args)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config)
    if pretrain is not None:
        if kind != "afm" or pretrain.model.config.kind != "fm":
            raise AFMError("--pretrain takes a trained FM model directory, for training an AFM")
        check_same_data(pretrain.meta, dataset, str(pretrain.path))
        model.load_fm_embeddings(pretrain.model, params.get("p_start", "ones"))
    if params.get("freeze_fm"):
        if pretrain is None:
            raise AFMError("freezing FM's parameters (FM+A) needs a trained FM to start from (--pretrain)")
        for frozen in (model.bias, model.weight.weight, model.embedding.weight):
            frozen.requires_grad_(False)  # the paper's FM+A: only the attention network (and p) learn
    return model


def check_same_data(meta: dict, dataset: Dataset, where: str) -> None:
    """A model fits only data with its fields and features; a changed fingerprint is only warned about."""
    recorded = meta.get("data", {})
    if recorded.get("num_features") != dataset.num_features or recorded.get("fields") != dataset.field_names:
        raise AFMError(f"{where} was trained on data with {recorded.get('num_features')} features and fields "
                       f"{recorded.get('fields')}; this data has {dataset.num_features} and {dataset.field_names}")
    if recorded.get("fingerprint") != dataset.fingerprint:
        warnings.warn(f"the data differs from what {where} was trained on (fingerprint changed)", DataChangedWarning)


def fit(dataset: Dataset, kind: str, overrides: dict | None = None, pretrain_dir: str | os.PathLike | None = None,
        on_progress=None, should_stop=None, show_progress: bool = False):
    """Train FM or AFM on a dataset with the preset hyperparameters plus overrides.

    Returns (model, result, train config). Raises TrainingDiverged (with the best state restored) on NaN loss.
    """
    overrides = dict(overrides or {})
    pretrain = load_model(pretrain_dir) if pretrain_dir else None
    if pretrain is not None and overrides.get("embed_dim") is None:
        overrides["embed_dim"] = pretrain.model.config.embed_dim
    params = hyperparameters(dataset.name, kind, overrides)
    seed = params.setdefault("seed", 0)
    check_fits(dataset.num_features, dataset.num_fields, params["embed_dim"],
               params.get("attention_factor", 0) if kind == "afm" else 0, params["batch_size"],
               len(dataset.splits["train"]))
    model = make_model(dataset, kind, params, seed=seed, pretrain=pretrain)
    config = TrainConfig(**{k: params[k] for k in TRAIN_KEYS if k in params})
    try:
        result = train(model, dataset, config, on_progress=on_progress, should_stop=should_stop,
                       show_progress=show_progress)
    except TrainingDiverged as exc:
        exc.model, exc.config = model, config  # the best state is restored: callers may keep it
        raise
    if pretrain is not None:
        result.extra["pretrained_from"] = str(pretrain.path)
        result.extra["p_start"] = params.get("p_start", "ones")
    if params.get("freeze_fm"):
        result.extra["freeze_fm"] = True
    return model, result, config


def save_trained(model, dataset: Dataset, config: TrainConfig, result: TrainResult, out: str | os.PathLike) -> Path:
    if not distributed.is_main():
        return Path(out)  # under torchrun, rank 0 alone writes the one checkpoint
    metrics = {split: evaluate(model, dataset.splits[split], dataset.label_range)
               for split in ("train", "validation", "test")}
    extra = {"best_epoch": result.best_epoch, "stop_reason": result.stop_reason, "train_seconds": result.seconds,
             "device": result.device, **result.extra}
    if model.config.kind == "afm":  # saved with every AFM, so no one reads a constant attention map unawares
        extra["attention_spread"] = attention_spread(explain_split(model, dataset, "validation"))
    return save_model(model, out, data=dataset.describe(), training=config.to_dict(), metrics=metrics,
                      history=result.history, extra=extra)


def train_and_save(dataset: Dataset, kind: str, out, overrides=None, pretrain_dir=None, **callbacks):
    """fit + save_trained; on divergence the best model so far is saved before the error is raised."""
    try:
        model, result, config = fit(dataset, kind, overrides, pretrain_dir, **callbacks)
    except TrainingDiverged as exc:
        if exc.result is not None and exc.result.best_epoch > 0:
            save_trained(exc.model, dataset, exc.config, exc.result, out)
            raise TrainingDiverged(f"{exc}, saved to {out}", exc.result) from None
        raise
    path = save_trained(model, dataset, config, result, out)
    return model, result, path


def load_with_data(model_dir: str | os.PathLike, data_dir_flag=None) -> tuple[LoadedModel, Dataset]:
    """A saved model and the data its checkpoint names, checked to fit together."""
    loaded = load_model(model_dir)
    spec = loaded.meta.get("data", {}).get("source")
    if not isinstance(spec, dict):
        raise CheckpointError(f"{model_dir}: the checkpoint does not record its data source")
    dataset = load_dataset(spec, data_dir_flag)
    check_same_data(loaded.meta, dataset, str(model_dir))
    return loaded, dataset

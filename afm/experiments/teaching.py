"""The teaching experiment: plant interactions, train FM and AFM, measure whether attention finds them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from afm.data.synthetic import FIELDS, make_synthetic
from afm.explain.parts import SplitExplanation, explain_split, field_pairs
from afm.explain.statistics import planted_precision
from afm.models import AFM_KIND, FM_KIND
from afm.models.inference import evaluate
from afm.store.checkpoints import load_model
from afm.store.registry import list_models
from afm.training.workflows import fit


@dataclass
class PlantedResult:
    fm_rmse: float
    afm_rmse: float
    precision: pd.DataFrame  # afm.explain.statistics.planted_precision of AFM
    afm_explanation: SplitExplanation
    histories: dict


def planted_experiment(planted, strength: float = 1.0, noise: float = 0.3, rows: int = 20000, seed: int = 0,
                       on_progress=None, should_stop=None) -> PlantedResult:
    """Generate synthetic data with these planted pairs; train FM and AFM with the default presets.
    `on_progress(epoch, batch, batches, history, stage)` reports each model ("FM", then "AFM") as it trains;
    `should_stop` ends the current model at its best epoch so far (and skips what is left)."""
    dataset = make_synthetic(seed=seed, rows=rows, planted=planted, strength=strength, noise=noise)
    trained = {}
    for kind in (FM_KIND, AFM_KIND):
        report = None if on_progress is None else (
            lambda epoch, batch, batches, history, stage=kind.upper(): on_progress(epoch, batch, batches, history, stage))
        epochs = {"epochs": 0} if should_stop is not None and should_stop() else {}
        trained[kind] = fit(dataset, kind, {"seed": seed, **epochs}, on_progress=report, should_stop=should_stop)
    fm, afm = trained[FM_KIND], trained[AFM_KIND]
    explanation = explain_split(afm.model, dataset, "test")
    return PlantedResult(fm_rmse=evaluate(fm.model, dataset, "test")["rmse"],
                         afm_rmse=evaluate(afm.model, dataset, "test")["rmse"],
                         precision=planted_precision(explanation), afm_explanation=explanation,
                         histories={"FM": fm.result.history, "AFM": afm.result.history})


def shipped_planted(planted, strength: float = 1.0, noise: float = 0.3, rows: int = 20000,
                    seed: int = 0) -> PlantedResult | None:
    """The planted experiment's result from the shipped FM and AFM where they were trained on exactly this
    data (the synthetic default), at once, with no training; None for any other setting. The shipped AFM
    started from the FM's embeddings (the paper's protocol), where the experiment trains AFM from scratch."""
    data = make_synthetic(seed=seed, rows=rows, planted=planted, strength=strength, noise=noise)
    found = {}
    for entry in list_models(include_builtin=True):
        if entry.builtin and not entry.null and entry.set_dir is None and entry.kind in (FM_KIND, AFM_KIND):
            loaded = load_model(entry.path)
            if loaded.meta["data"].get("fingerprint") == data.fingerprint:
                found.setdefault(entry.kind, loaded)
    if len(found) < 2:
        return None
    fm, afm = found[FM_KIND], found[AFM_KIND]
    explanation = explain_split(afm.model, data, "test")
    return PlantedResult(fm_rmse=evaluate(fm.model, data, "test")["rmse"],
                         afm_rmse=evaluate(afm.model, data, "test")["rmse"],
                         precision=planted_precision(explanation), afm_explanation=explanation,
                         histories={"FM": fm.meta.get("history", []), "AFM": afm.meta.get("history", [])})


def planted_truth(planted, strength: float = 1.0) -> tuple[list[str], np.ndarray]:
    """The field names and one value per field pair (the models' pair order): the planted strength where a
    pair is planted, 0 elsewhere; the picture of what a model should find, drawn before any training."""
    fields = list(FIELDS)
    chosen = {frozenset(p) for p in planted}
    return fields, np.array([strength if frozenset(p) in chosen else 0.0 for p in field_pairs(fields)])

"""The teaching experiment: plant interactions, train FM and AFM, measure whether attention finds them."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from afm.data.synthetic import make_synthetic
from afm.explain import SplitExplanation, explain_split
from afm.statistics import planted_precision
from afm.training import evaluate
from afm.workflows import fit


@dataclass
class PlantedResult:
    fm_rmse: float
    afm_rmse: float
    precision: pd.DataFrame  # afm.statistics.planted_precision of AFM
    afm_explanation: SplitExplanation
    histories: dict


def planted_experiment(planted, strength: float = 1.0, noise: float = 0.3, rows: int = 20000, seed: int = 0) -> PlantedResult:
    """Generate synthetic data with these planted pairs; train FM and AFM with the default presets."""
    dataset = make_synthetic(seed=seed, rows=rows, planted=planted, strength=strength, noise=noise)
    fm, afm = fit(dataset, "fm", {"seed": seed}), fit(dataset, "afm", {"seed": seed})
    explanation = explain_split(afm.model, dataset, "test")
    return PlantedResult(fm_rmse=evaluate(fm.model, dataset, "test")["rmse"],
                         afm_rmse=evaluate(afm.model, dataset, "test")["rmse"],
                         precision=planted_precision(explanation), afm_explanation=explanation,
                         histories={"FM": fm.result.history, "AFM": afm.result.history})

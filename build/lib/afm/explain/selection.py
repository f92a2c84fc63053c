"""Ways to pick an instance to explain: at random, by feature values, by largest error or disagreement."""
from __future__ import annotations

import numpy as np
import pandas as pd

from afm.data.dataset import Dataset
from afm.models import AFM_KIND


def random_row(dataset: Dataset, split: str, seed: int | None = None) -> int:
    return int(np.random.default_rng(seed).integers(len(dataset.splits[split])))


def rows_matching(dataset: Dataset, split: str, features: dict[str, int]) -> np.ndarray:
    """Rows whose feature in each given field is the given feature id."""
    x = dataset.splits[split].x
    mask = np.ones(len(x), dtype=bool)
    for field, feature_id in features.items():
        mask &= x[:, dataset.field_names.index(field)] == feature_id
    return np.flatnonzero(mask)


def rows_by_error(errors: pd.DataFrame, model: str = AFM_KIND, count: int = 20) -> pd.DataFrame:
    """The rows with the largest absolute error of one model (see `afm.explain.compare.paired_errors`)."""
    order = errors[f"{model}_error"].abs().sort_values(ascending=False, kind="stable").index[:count]
    return errors.loc[order].reset_index(drop=True)


def rows_by_disagreement(errors: pd.DataFrame, count: int = 20) -> pd.DataFrame:
    """The rows where FM's and AFM's (clipped) predictions differ most."""
    gap = (errors.afm_prediction - errors.fm_prediction).abs()
    order = gap.sort_values(ascending=False, kind="stable").index[:count]
    return errors.loc[order].assign(disagreement=gap[order]).reset_index(drop=True)

"""Fields that may leak the label: what one field alone predicts, beside what the whole model does.

A field's values alone predict the label through their mean label in train (smoothed toward the overall
mean, so a value seen once says little); scored on validation, that is the field's AUC alone. A field is a
likely leak when alone it predicts nearly perfectly (AUC > LEAK_AUC), or gets nearly all of the model's
lift over chance (LEAK_SHARE): an id that sorts the file by the label, a column written after the outcome.
Data alone decides the first; the second needs the model's validation AUC.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from afm.core.metrics import weighted_auc
from afm.data.dataset import Dataset

LEAK_AUC = 0.99
LEAK_SHARE = 0.95  # of the model's validation AUC above 0.5
SMOOTHING = 10.0  # pseudo-rows at the overall mean behind every value's mean label


def _positive(y: np.ndarray, task: str) -> np.ndarray:
    return y > 0 if task != "regression" else y > np.median(y)


def field_alone(dataset: Dataset, split: str = "validation") -> pd.DataFrame:
    """Per field: its AUC alone on `split` (each value scored by its smoothed mean label in train)."""
    train, held = dataset.splits["train"], dataset.splits[split]
    y_train = _positive(train.y, dataset.task).astype(float)
    positive = _positive(held.y, dataset.task)
    overall = float(y_train.mean())
    rows = []
    for f, field in enumerate(dataset.field_names):
        counts = np.bincount(train.x[:, f], minlength=dataset.num_features).astype(float)
        sums = np.bincount(train.x[:, f], weights=y_train, minlength=dataset.num_features)
        means = (sums + SMOOTHING * overall) / (counts + SMOOTHING)
        auc = weighted_auc(means[held.x[:, f]], positive) if 0 < positive.sum() < len(positive) else float("nan")
        rows.append({"field": field, "auc_alone": float(auc)})
    return pd.DataFrame(rows)


def likely_leaks(dataset: Dataset, model_auc: float | None = None, split: str = "validation") -> pd.DataFrame:
    """`field_alone` with each field's share of the model's lift (`model_auc`: its AUC on `split`) and
    whether it is a likely leak; the likely leaks first."""
    table = field_alone(dataset, split)
    lift = None if model_auc is None or not np.isfinite(model_auc) or model_auc <= 0.5 else model_auc - 0.5
    table["share_of_model"] = (table.auc_alone - 0.5) / lift if lift else np.nan
    table["likely_leak"] = (table.auc_alone > LEAK_AUC) | (table.share_of_model >= LEAK_SHARE)
    return table.sort_values(["likely_leak", "auc_alone"], ascending=False, kind="stable").reset_index(drop=True)


def leak_sentence(leaks: pd.DataFrame, model_auc: float | None = None) -> str | None:
    """One line naming the likely leaks, or None when there are none."""
    found = leaks[leaks.likely_leak]
    if found.empty:
        return None
    parts = [f"{row.field} alone predicts the label with validation AUC {row.auc_alone:.3f}"
             + (f" ({row.share_of_model:.0%} of the model's lift over chance)" if np.isfinite(row.share_of_model) else "")
             for row in found.itertuples()]
    return ("Likely leak: " + "; ".join(parts) + ". A field that alone predicts the outcome is often an id, a row order "
            "or a value recorded after the outcome; its interactions say little about the data. Drop it and train again.")

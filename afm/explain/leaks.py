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


def _threshold(y: np.ndarray, task: str) -> float:
    """Above it a label counts as positive: 0 for -1/+1 labels, a regression target's median."""
    return float(np.median(y)) if task == "regression" else 0.0


def field_alone(dataset: Dataset, split: str = "validation", block: int = 1 << 16) -> pd.DataFrame:
    """Per field: its AUC alone on `split` (each value scored by its smoothed mean label in train). Read a
    block of rows at a time, so a click log that stays on disk is counted, never loaded: feature ids are
    global, so one count per id serves every field, and a field's AUC comes from its values' counts of
    positive and negative held-out rows (rows of one value share its score)."""
    train, held = dataset.splits["train"], dataset.splits[split]
    n_feat, m = dataset.num_features, dataset.num_fields
    counts, sums = np.zeros(n_feat), np.zeros(n_feat)
    train_threshold, threshold = _threshold(np.asarray(train.y), dataset.task), _threshold(np.asarray(held.y), dataset.task)
    for start in range(0, len(train), block):
        x = np.asarray(train.x[start:start + block])
        y = (np.asarray(train.y[start:start + block]) > train_threshold).astype(float)
        counts += np.bincount(x.ravel(), minlength=n_feat)
        sums += np.bincount(x.ravel(), weights=np.repeat(y, m), minlength=n_feat)
    overall = float(sums.sum() / counts.sum())  # each row counted once per field
    means = (sums + SMOOTHING * overall) / (counts + SMOOTHING)
    held_pos, held_neg = np.zeros(n_feat), np.zeros(n_feat)
    for start in range(0, len(held), block):
        x = np.asarray(held.x[start:start + block])
        positive = np.repeat(np.asarray(held.y[start:start + block]) > threshold, m)
        held_pos += np.bincount(x.ravel(), weights=positive.astype(float), minlength=n_feat)
        held_neg += np.bincount(x.ravel(), weights=(~positive).astype(float), minlength=n_feat)
    owner = dataset.feature_field
    rows = []
    for f, field in enumerate(dataset.field_names):
        ids = np.flatnonzero((owner == f) & (held_pos + held_neg > 0))
        weights = np.concatenate([held_pos[ids], held_neg[ids]])[None, :]
        score = np.concatenate([means[ids], means[ids]])
        flag = np.r_[np.ones(len(ids), bool), np.zeros(len(ids), bool)]
        rows.append({"field": field, "auc_alone": float(weighted_auc(score, flag, weights)[0])})
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

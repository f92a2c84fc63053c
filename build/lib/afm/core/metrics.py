"""Error metrics. The paper's: RMSE and MAE with predictions clipped to the label range first, as the AFM
authors compute them. The CTR field's, for binary labels (-1/+1): AUC from any model's scores, and logloss
from a logistic model's probabilities.

A model's raw output is its score: the prediction itself under squared loss, a logit under logistic loss.
`in_label_units` turns either into a prediction on the label scale, so RMSE means the same for both.
"""
from __future__ import annotations

import numpy as np

LOSSES = ("squared", "logistic")
PROBABILITY_FLOOR = 1e-7  # logloss of a probability of exactly 0 or 1 would be infinite


def clipped(prediction: np.ndarray, label_range: tuple[float, float]) -> np.ndarray:
    return np.clip(prediction, *label_range)


def sigmoid(score: np.ndarray) -> np.ndarray:
    score = np.asarray(score, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * score))  # no overflow for large |score|


def in_label_units(score: np.ndarray, label_range: tuple[float, float], loss: str = "squared") -> np.ndarray:
    """A prediction on the label scale: the score clipped (squared loss), or low + (high - low) * P(y=high)
    (logistic loss; a binary model's labels are -1/+1)."""
    if loss == "logistic":
        low, high = label_range
        return low + (high - low) * sigmoid(score)
    return clipped(np.asarray(score, dtype=np.float64), label_range)


def clipped_errors(prediction: np.ndarray, label: np.ndarray, label_range: tuple[float, float]) -> np.ndarray:
    return clipped(prediction, label_range) - label


def rmse_mae(prediction: np.ndarray, label: np.ndarray, label_range: tuple[float, float]) -> dict:
    err = clipped_errors(np.asarray(prediction, dtype=np.float64), np.asarray(label, dtype=np.float64), label_range)
    rmse, mae = weighted_rmse_mae(err)
    return {"rmse": rmse, "mae": mae, "n": int(len(err))}


def weighted_rmse_mae(errors: np.ndarray, weights: np.ndarray | None = None):
    """RMSE and MAE of errors already clipped; with `weights` (S, N), one pair per row of weights (the
    counts of a bootstrap resample)."""
    if weights is None:
        return float(np.sqrt(np.mean(errors ** 2))), float(np.mean(np.abs(errors)))
    n = weights.sum(1)
    return np.sqrt(weights @ errors ** 2 / n), weights @ np.abs(errors) / n


def instance_logloss(score: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each instance from its logit, computed stably; probabilities are floored at
    PROBABILITY_FLOOR as sklearn's log_loss does."""
    p = np.clip(sigmoid(score), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return -np.where(positive, np.log(p), np.log1p(-p))


def weighted_auc(score: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None):
    """Area under the ROC curve: the chance that a random positive scores above a random negative, ties
    counting one half. With `weights` (S, N), one AUC per row (bootstrap counts); NaN where one class is
    missing."""
    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    w = np.ones((1, len(score))) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(score, kind="stable")
    _, group = np.unique(score[order], return_inverse=True)  # tied scores share a group
    w, pos = w[:, order], positive[order]
    negatives = np.where(pos, 0.0, w)
    positives = np.where(pos, w, 0.0)
    ends = np.flatnonzero(np.r_[group[1:] != group[:-1], True])  # last index of each tie group
    neg_by_group = np.diff(np.concatenate([np.zeros((len(w), 1)), np.cumsum(negatives, 1)[:, ends]], 1), axis=1)
    pos_by_group = np.diff(np.concatenate([np.zeros((len(w), 1)), np.cumsum(positives, 1)[:, ends]], 1), axis=1)
    neg_below = np.cumsum(neg_by_group, 1) - neg_by_group  # negatives in strictly lower groups
    wins = (pos_by_group * (neg_below + 0.5 * neg_by_group)).sum(1)
    total = positives.sum(1) * negatives.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(total > 0, wins / total, np.nan)
    return float(auc[0]) if weights is None else auc


def score_metrics(score: np.ndarray, label: np.ndarray, label_range: tuple[float, float], loss: str = "squared",
                  binary: bool = False) -> dict:
    """Every metric of a model's scores on labelled rows: rmse, mae and n always (predictions in label
    units, clipped); auc for binary labels (the dataset's task says which); logloss for a logistic model."""
    score = np.asarray(score, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    out = rmse_mae(in_label_units(score, label_range, loss), label, label_range)
    if binary:
        positive = label > 0
        out["auc"] = weighted_auc(score, positive)
        if loss == "logistic":
            out["logloss"] = float(instance_logloss(score, positive).mean())
    return out


def selection_metric(loss: str) -> str:
    """The validation metric that picks the best epoch and the best configuration: lower is better."""
    return "logloss" if loss == "logistic" else "rmse"


METRIC_LABELS = {"rmse": "RMSE", "mae": "MAE", "auc": "AUC", "logloss": "logloss"}


def metrics_text(metrics: dict) -> str:
    """'RMSE 0.3100  MAE 0.1200  AUC 0.9700  logloss 0.2100' for the metrics present."""
    return "  ".join(f"{label} {metrics[key]:.4f}" for key, label in METRIC_LABELS.items() if key in metrics)


def metrics_line(history_row: dict) -> str:
    """A history row's metrics, split by split: 'train RMSE 0.30, validation RMSE 0.32 logloss 0.21'."""
    parts = []
    for split in ("train", "validation"):
        found = {key: history_row[f"{split}_{key}"] for key in METRIC_LABELS if f"{split}_{key}" in history_row}
        parts.append(f"{split} {metrics_text(found)}")
    return ", ".join(parts)

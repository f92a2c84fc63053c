"""Error metrics as the AFM authors compute them: predictions clipped to the label range first."""
from __future__ import annotations

import numpy as np


def clipped(prediction: np.ndarray, label_range: tuple[float, float]) -> np.ndarray:
    return np.clip(prediction, *label_range)


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

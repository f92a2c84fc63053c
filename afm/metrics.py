"""Error metrics as the AFM authors compute them: predictions clipped to the label range first."""
from __future__ import annotations

import numpy as np


def clipped_errors(prediction: np.ndarray, label: np.ndarray, label_range: tuple[float, float]) -> np.ndarray:
    return np.clip(prediction, *label_range) - label


def rmse_mae(prediction: np.ndarray, label: np.ndarray, label_range: tuple[float, float]) -> dict:
    err = clipped_errors(np.asarray(prediction, dtype=np.float64), np.asarray(label, dtype=np.float64), label_range)
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))), "n": int(len(err))}

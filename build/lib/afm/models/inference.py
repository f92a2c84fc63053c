"""Predictions and metrics of any model on a dataset, in batches on the model's device."""
from __future__ import annotations

import numpy as np
import torch

from afm.core.metrics import score_metrics
from afm.data.dataset import Dataset


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, batch_size: int = 32768) -> np.ndarray:
    """Predictions without dropout, in batches, on the model's device."""
    device = next(model.parameters()).device
    out = [model.predict(torch.as_tensor(x[start:start + batch_size], device=device)).float().cpu()
           for start in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def evaluate(model: torch.nn.Module, dataset: Dataset, split: str, rows: np.ndarray | None = None) -> dict:
    """A model's metrics on one split (afm.core.metrics.score_metrics): rmse, mae and n; auc on binary data;
    logloss for a logistic model. `rows`: only these rows of the split."""
    data = dataset.splits[split]
    x, y = (data.x, data.y) if rows is None else (data.x[rows], data.y[rows])
    return score_metrics(predict(model, x), y, dataset.label_range, model.config.loss,
                         binary=dataset.task == "binary")

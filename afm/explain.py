"""Explanations computed from a model's exact decomposition (see `afm.models.Parts`).

Functions take a model and data and return plain dicts or pandas DataFrames; the CLI and app only print
or draw them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from afm.data.dataset import Dataset
from afm.errors import AFMError


def field_pairs(dataset: Dataset) -> list[tuple[str, str]]:
    """Field-name pairs in the models' pair order (i < j, row by row)."""
    names = dataset.field_names
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]


def batch_parts(model, x: np.ndarray, batch_size: int = 4096) -> dict[str, np.ndarray]:
    """`model.parts` over many rows, in batches, as numpy arrays (keys as in `Parts`)."""
    device = next(model.parameters()).device
    chunks: dict[str, list] = {}
    for start in range(0, len(x), batch_size):
        parts = model.parts(torch.as_tensor(x[start:start + batch_size], device=device))
        for key, value in vars(parts).items():
            chunks.setdefault(key, []).append(value.detach().float().cpu().numpy())
    return {key: np.concatenate(values) for key, values in chunks.items()}


def field_pair_summary(model, dataset: Dataset, split: str = "test") -> pd.DataFrame:
    """One row per field pair: mean attention and mean |contribution| over a split, by attention descending."""
    parts = batch_parts(model, dataset.splits[split].x)
    pairs = field_pairs(dataset)
    table = pd.DataFrame({
        "field_a": [a for a, _ in pairs],
        "field_b": [b for _, b in pairs],
        "mean_attention": parts["attention"].mean(0),
        "mean_abs_contribution": np.abs(parts["contribution"]).mean(0),
    })
    return table.sort_values("mean_attention", ascending=False, kind="stable").reset_index(drop=True)


def decompose(model, dataset: Dataset, split: str = "test", row: int = 0) -> dict:
    """One instance's prediction split into bias, first-order terms and one term per pair; they sum to it."""
    data = dataset.splits[split]
    if not 0 <= row < len(data):
        raise AFMError(f"row {row} is out of range: the {split} split has rows 0..{len(data) - 1}")
    x = data.x[row:row + 1]
    parts = batch_parts(model, x)
    names = dataset.feature_names
    ids = x[0]
    first_order = [{"field": f, "feature": names[i], "value": float(w)}
                   for f, i, w in zip(dataset.field_names, ids, parts["first_order"][0])]
    rows, cols = np.triu_indices(dataset.num_fields, k=1)
    pairs = [{
        "field_a": dataset.field_names[i], "field_b": dataset.field_names[j],
        "feature_a": names[ids[i]], "feature_b": names[ids[j]],
        "attention": float(a), "interaction": float(v), "contribution": float(c),
    } for i, j, a, v, c in zip(rows, cols, parts["attention"][0], parts["interaction"][0], parts["contribution"][0])]
    pairs.sort(key=lambda p: abs(p["contribution"]), reverse=True)
    return {
        "split": split,
        "row": row,
        "prediction": float(parts["prediction"][0]),
        "label": float(data.y[row]),
        "bias": float(parts["bias"][0]),
        "first_order": first_order,
        "pairs": pairs,
    }

"""Self-attention over fields (AutoInt's), read per layer and head, and set beside the function-level
interactions: attention says which fields a field's output reads, not which pairs act together on the
prediction, so how far the two rankings agree is measured, not assumed."""
from __future__ import annotations

import numpy as np
import torch

from afm.data.dataset import Dataset
from afm.explain.interactions import DEFAULT_REFERENCES, interactions, sample_rows
from afm.explain.parts import row_spearman
from afm.models.inference import model_device


def field_attention(model, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """(N, layers, heads, m, m): row i of each map is how field i's output weighs the fields (sums to 1)."""
    device = model_device(model)
    maps = [model.field_attention(torch.as_tensor(x[start:start + batch_size], device=device)).cpu().numpy()
            for start in range(0, len(x), batch_size)]
    return np.concatenate(maps)


def attention_pair_scores(maps: np.ndarray) -> np.ndarray:
    """(P,) one score per field pair (the models' pair order): the attention between the two fields, both
    ways, averaged over rows, layers and heads."""
    m = maps.shape[-1]
    rows, cols = np.triu_indices(m, k=1)
    mean = maps.reshape(-1, m, m).mean(0)
    return (mean[rows, cols] + mean[cols, rows]) / 2


def attention_agreement(model, dataset: Dataset, split: str = "test", sample: int = 1000,
                        reference_count: int = DEFAULT_REFERENCES, seed: int = 0) -> dict:
    """The field pairs ranked by attention and by function-level |I_AB| on the same rows: their Spearman,
    and both vectors (the models' pair order)."""
    x = dataset.splits[split].x
    rows = sample_rows(len(x), sample, seed)
    attention = attention_pair_scores(field_attention(model, x[rows]))
    strength = np.abs(interactions(model, dataset, split, sample, reference_count, seed).values).mean(0)
    return {"spearman": float(row_spearman(attention[None], strength[None])[0]), "attention": attention,
            "interaction": strength}

"""Explanations computed from a model's exact decomposition (see `afm.models.Parts`).

Everything is vectorised over whole splits (in batches); functions return dicts, numpy arrays or pandas
DataFrames, so the CLI and the app only print or draw them.

Ablation of pair q: the prediction change when q is removed. For AFM the attention is renormalised over
the remaining pairs, so with S = sum of contributions, the pair term becomes (S - c_q) / (1 - a_q); for FM
(weights all one, nothing to renormalise) it becomes S - c_q.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from afm.core.errors import AFMError
from afm.core.metrics import sigmoid
from afm.data.dataset import Dataset

PART_KEYS = ("bias", "first_order", "attention", "interaction", "contribution", "prediction", "rest")


def field_pairs(field_names: list[str]) -> list[tuple[str, str]]:
    """Field-name pairs in the models' pair order (i < j, row by row)."""
    m = len(field_names)
    return [(field_names[i], field_names[j]) for i in range(m) for j in range(i + 1, m)]


def pair_labels(field_names: list[str]) -> list[str]:
    return [f"{a} x {b}" for a, b in field_pairs(field_names)]


def batch_parts(model, x: np.ndarray, batch_size: int = 32768) -> dict[str, np.ndarray]:
    """`model.parts` over many rows, in batches, as numpy arrays (keys as in `Parts`). Large batches share
    more distinct feature pairs (see `parts`), so they are cheaper per row."""
    device = next(model.parameters()).device
    chunks: dict[str, list] = {key: [] for key in PART_KEYS}
    for start in range(0, len(x), batch_size):
        parts = model.parts(torch.as_tensor(x[start:start + batch_size], device=device))
        for key in PART_KEYS:
            chunks[key].append(getattr(parts, key).detach().float().cpu().numpy())
    return {key: np.concatenate(values) for key, values in chunks.items()}


def ablation_effects(attention: np.ndarray, contribution: np.ndarray, normalised: bool) -> np.ndarray:
    """(N, P) prediction change when each pair is removed (see module docstring)."""
    a = attention.astype(np.float64)
    c = contribution.astype(np.float64)
    total = c.sum(1, keepdims=True)
    if not normalised:
        return -c
    remaining = 1.0 - a
    with np.errstate(divide="ignore", invalid="ignore"):
        without = np.where(remaining > 1e-12, (total - c) / remaining, 0.0)  # all weight on q: nothing remains
    return without - total


def row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of a with the same row of b (average ranks for ties); NaN where
    a row is constant."""
    ra = pd.DataFrame(a).rank(axis=1).to_numpy(dtype=np.float64, copy=True)
    rb = pd.DataFrame(b).rank(axis=1).to_numpy(dtype=np.float64, copy=True)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, (ra * rb).sum(1) / denom, np.nan)


@dataclass(eq=False)
class SplitExplanation:
    """Every part of every prediction of one model on one split, and what follows from them."""

    dataset: Dataset
    split: str
    model_kind: str
    normalised: bool  # attention sums to one over pairs (AFM) or is all ones (FM)
    parts: dict[str, np.ndarray]

    @property
    def x(self) -> np.ndarray:
        return self.dataset.splits[self.split].x

    @property
    def labels(self) -> list[str]:
        return pair_labels(self.dataset.field_names)

    @cached_property
    def ablation(self) -> np.ndarray:
        return ablation_effects(self.parts["attention"], self.parts["contribution"], self.normalised)

    @cached_property
    def faithfulness(self) -> pd.DataFrame:
        """Per instance: Spearman between attention, |contribution| and |ablation effect| over the pairs.
        For FM, attention is constant, so its correlations are NaN: equal weights explain nothing."""
        att, con, abl = self.parts["attention"], np.abs(self.parts["contribution"]), np.abs(self.ablation)
        return pd.DataFrame({
            "attention_vs_contribution": row_spearman(att, con),
            "attention_vs_ablation": row_spearman(att, abl),
            "contribution_vs_ablation": row_spearman(con, abl),
        })


def explain_split(model, dataset: Dataset, split: str = "test", batch_size: int = 32768) -> SplitExplanation:
    return SplitExplanation(dataset=dataset, split=split, model_kind=model.config.kind,
                            normalised=model.config.normalised_weights,
                            parts=batch_parts(model, dataset.splits[split].x, batch_size))


def decompose_ids(model, dataset: Dataset, ids, label: float | None = None) -> dict:
    """One instance given by its feature ids (one per field): bias, first-order terms, one entry per pair
    with attention, interaction, contribution and ablation effect, and the non-additive rest (`rest`, zero
    for the additive families); the parts sum to the prediction. A non-additive family's pair entries hold
    its exact pair terms where it has them (DeepFM's FM part), its ablations are NaN.
    Pairs are sorted by |contribution|, largest first."""
    ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
    if ids.shape[1] != dataset.num_fields or ids.min() < 0 or ids.max() >= dataset.num_features:
        raise AFMError(f"an instance needs {dataset.num_fields} feature ids in 0..{dataset.num_features - 1}")
    parts = batch_parts(model, ids)
    additive = model.config.additive
    ablation = ablation_effects(parts["attention"], parts["contribution"], model.config.normalised_weights)[0]
    if not additive:  # removing a pair's exact term is not removing the pair: the rest mixes it in too
        ablation = np.full_like(ablation, np.nan)
    names, fields = dataset.feature_names, dataset.field_names
    first_order = [{"field": f, "feature": names[i], "value": float(w)}
                   for f, i, w in zip(fields, ids[0], parts["first_order"][0])]
    rows, cols = np.triu_indices(dataset.num_fields, k=1)
    pairs = [{
        "field_a": fields[i], "field_b": fields[j], "feature_a": names[ids[0, i]], "feature_b": names[ids[0, j]],
        "attention": float(a), "interaction": float(v), "contribution": float(c), "ablation": float(d),
    } for i, j, a, v, c, d in zip(rows, cols, parts["attention"][0], parts["interaction"][0],
                                  parts["contribution"][0], ablation)]
    pairs.sort(key=lambda p: abs(p["contribution"]), reverse=True)
    att = parts["attention"][0:1]
    faith = row_spearman(att, np.abs(parts["contribution"][0:1]))[0], row_spearman(att, np.abs(ablation[None]))[0]
    logistic = model.config.loss == "logistic"
    return {
        "prediction": float(parts["prediction"][0]),  # a logit for a logistic model: the parts add up in log-odds
        "loss": model.config.loss,
        "probability": float(sigmoid(parts["prediction"][0])) if logistic else None,
        "label": None if label is None else float(label),
        "bias": float(parts["bias"][0]),
        "first_order_total": float(parts["first_order"][0].sum()),
        "pairs_total": float(parts["contribution"][0].sum()),
        "rest": float(parts["rest"][0]),  # the non-additive part (an MLP's, a cross network's); 0 when additive
        "additive": additive,
        "pair_terms": model.config.family.pair_terms,
        "first_order": first_order,
        "pairs": pairs,
        "faithfulness": {"attention_vs_contribution": _none_if_nan(faith[0]),
                         "attention_vs_ablation": _none_if_nan(faith[1])},
    }


def _none_if_nan(value: float):
    return None if np.isnan(value) else float(value)


def decompose(model, dataset: Dataset, split: str = "test", row: int = 0) -> dict:
    """`decompose_ids` for one row of a split."""
    data = dataset.splits[split]
    if not 0 <= row < len(data):
        raise AFMError(f"row {row} is out of range: the {split} split has rows 0..{len(data) - 1}")
    return {"split": split, "row": row, **decompose_ids(model, dataset, data.x[row], data.y[row])}


def pairs_frame(decomposition: dict) -> pd.DataFrame:
    """The pairs of a decomposition as a table, with a readable pair label."""
    table = pd.DataFrame(decomposition["pairs"])
    table.insert(0, "pair", table.feature_a + " x " + table.feature_b)
    return table


def side_by_side(fm_decomposition: dict, afm_decomposition: dict) -> pd.DataFrame:
    """FM's and AFM's view of the same instance, one row per pair: FM's contribution (weight one) beside
    AFM's attention and contribution, by AFM's |contribution|."""
    key = ["field_a", "field_b"]
    fm = pd.DataFrame(fm_decomposition["pairs"])[key + ["contribution"]].rename(columns={"contribution": "fm_contribution"})
    afm = pd.DataFrame(afm_decomposition["pairs"])[key + ["feature_a", "feature_b", "attention", "contribution"]]
    table = afm.rename(columns={"attention": "afm_attention", "contribution": "afm_contribution"}).merge(fm, on=key)
    table.insert(0, "pair", table.feature_a + " x " + table.feature_b)
    return table.drop(columns=["feature_a", "feature_b"])


def pair_values(decomposition: dict, field_names: list[str], key: str = "attention") -> np.ndarray:
    """One value per pair of a decomposition, back in the models' pair order (for heatmaps)."""
    by_pair = {(p["field_a"], p["field_b"]): p[key] for p in decomposition["pairs"]}
    return np.array([by_pair[pair] for pair in field_pairs(field_names)])


PAIR_VIEWS = {  # how to read a pair heatmap; a flat-looking raw attention map can still matter
    "attention": "attention a_ij (sums to 1 over the pairs)",
    "attention relative to uniform": "a_ij x pairs (1 = the uniform weight FM-like averaging would give)",
    "contribution": "exact contribution a_ij * p^T(v_i*v_j) to the prediction",
}


def pair_view(decomposition: dict, field_names: list[str], view: str) -> np.ndarray:
    """One instance's pair values in the models' pair order for one of PAIR_VIEWS."""
    if view == "attention relative to uniform":
        return pair_values(decomposition, field_names, "attention") * len(decomposition["pairs"])
    if view not in PAIR_VIEWS:
        raise AFMError(f"unknown view {view!r}; one of {', '.join(PAIR_VIEWS)}")
    return pair_values(decomposition, field_names, view)

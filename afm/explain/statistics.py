"""Global statistics of one model on one split, from a `SplitExplanation`: per field pair, attention
shape per instance, recovery of planted pairs, and faithfulness. All vectorised over the split."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from afm.explain.parts import SplitExplanation, field_pairs, row_spearman
from afm.models.inference import model_device

QUANTILES = (0.1, 0.25, 0.75, 0.9)


def pair_statistics(ex: SplitExplanation) -> pd.DataFrame:
    """One row per field pair: attention mean, median and quantiles; mean |contribution|; its share of
    all |pair contribution|; how often the pair is the instance's top pair by attention and by
    |contribution|. Sorted by mean attention, then mean |contribution|, descending."""
    att = ex.parts["attention"].astype(np.float64)
    con = np.abs(ex.parts["contribution"].astype(np.float64))
    n, p = att.shape
    pairs = field_pairs(ex.dataset.field_names)
    quantiles = np.quantile(att, (0.5, *QUANTILES), axis=0)  # one partition for all five
    table = pd.DataFrame({
        "field_a": [a for a, _ in pairs],
        "field_b": [b for _, b in pairs],
        "mean_attention": att.mean(0),
        "median_attention": quantiles[0],
        **{f"q{int(q * 100):02d}_attention": row for q, row in zip(QUANTILES, quantiles[1:])},
        "mean_abs_contribution": con.mean(0),
        "contribution_share": con.sum(0) / max(con.sum(), 1e-300),
        "top_by_attention": np.bincount(att.argmax(1), minlength=p) / n if ex.normalised else np.full(p, np.nan),
        "top_by_contribution": np.bincount(con.argmax(1), minlength=p) / n,
    })
    return table.sort_values(["mean_attention", "mean_abs_contribution"], ascending=False,
                             kind="stable").reset_index(drop=True)


def _normalised_entropy(weights: np.ndarray) -> np.ndarray:
    """Per row of weights that sum to 1: entropy / log(pairs); one pair is as uniform as it can be (1)."""
    if weights.shape[1] <= 1:
        return np.ones(len(weights))
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(weights > 0, weights * np.log(weights), 0.0).sum(1) / np.log(weights.shape[1])


def attention_shape(ex: SplitExplanation) -> pd.DataFrame:
    """Per instance: attention entropy / log(pairs) (1 = uniform, 0 = one pair) and the mass on the top 3
    pairs, comparable across datasets with different field counts. FM's equal weights count as uniform."""
    att = ex.parts["attention"].astype(np.float64)
    p = att.shape[1]
    weights = att / att.sum(1, keepdims=True)
    entropy = _normalised_entropy(weights)
    top3 = np.partition(weights, max(p - 3, 0), axis=1)[:, -3:].sum(1) if p > 3 else weights.sum(1)
    return pd.DataFrame({"normalised_entropy": entropy, "top3_mass": top3})


def planted_precision(ex: SplitExplanation, k: int | None = None) -> pd.DataFrame:
    """Precision@k of the top pairs by mean attention and by mean |contribution| against the dataset's
    planted pairs (k defaults to their number). Empty where the dataset has none."""
    planted = {frozenset(p) for p in ex.dataset.planted_pairs}
    if not planted:
        return pd.DataFrame(columns=["ranking", "k", "precision", "top_pairs"])
    k = k or len(planted)
    pairs = [frozenset(p) for p in field_pairs(ex.dataset.field_names)]
    labels = ex.labels
    rows = []
    for ranking, score in (("attention", ex.parts["attention"].mean(0)),
                           ("contribution", np.abs(ex.parts["contribution"]).mean(0))):
        if ranking == "attention" and not ex.normalised:  # FM: equal weights rank nothing
            rows.append({"ranking": ranking, "k": k, "precision": np.nan, "top_pairs": "(equal weights)"})
            continue
        top = np.argsort(-score, kind="stable")[:k]
        rows.append({"ranking": ranking, "k": k, "precision": sum(pairs[i] in planted for i in top) / k,
                     "top_pairs": ", ".join(labels[i] for i in top)})
    return pd.DataFrame(rows)


def faithfulness_summary(ex: SplitExplanation) -> pd.DataFrame:
    """Mean, spread and quartiles of the per-instance rank correlations (NaN rows, e.g. FM, left out)."""
    faith = ex.faithfulness
    return pd.DataFrame({
        "measure": faith.columns,
        "mean": faith.mean().to_numpy(),
        "std": faith.std().to_numpy(),
        "q25": faith.quantile(0.25).to_numpy(),
        "median": faith.median().to_numpy(),
        "q75": faith.quantile(0.75).to_numpy(),
        "instances": faith.notna().sum().to_numpy(),
    })


def compare_explanations(explanations: dict) -> pd.DataFrame:
    """One row per named SplitExplanation: dataset, pairs, attention shape and faithfulness means, so
    models on datasets with different field counts can be compared."""
    rows = []
    for name, ex in explanations.items():
        shape, faith = attention_shape(ex), ex.faithfulness
        rows.append({"model": name, "kind": ex.model_kind.upper(), "dataset": ex.dataset.name, "split": ex.split,
                     "instances": len(shape), "pairs": ex.parts["attention"].shape[1],
                     "mean_normalised_entropy": shape.normalised_entropy.mean(),
                     "mean_top3_mass": shape.top3_mass.mean(),
                     "attention_vs_contribution": faith.attention_vs_contribution.mean(),
                     "attention_vs_ablation": faith.attention_vs_ablation.mean()})
    return pd.DataFrame(rows)


# Attention whose every instance varies by less than this ratio between its largest and smallest pair
# weight is constant: the failure of the authors' released code (softmax over an axis of size one).
DEGENERATE_MAX_MIN_RATIO = 1.001


def attention_spread(ex: SplitExplanation) -> dict:
    """How far attention moves away from uniform, per instance, averaged over the split.

    relative_entropy: entropy / log(pairs), 1 for uniform, 0 for one pair. concentration: 1 minus that.
    max_min_ratio: largest over smallest weight (1 for uniform). cv: standard deviation over mean of the
    weights (0 for uniform, sqrt(pairs - 1) for one pair). degenerate: no instance's attention varies by
    more than DEGENERATE_MAX_MIN_RATIO."""
    return _spread([_row_spread(ex.parts["attention"])])


def streamed_attention_spread(model, x: np.ndarray, batch_size: int = 32768) -> dict:
    """attention_spread over rows `x`, one batch at a time: memory bounded by the batch, whatever the rows."""
    device = model_device(model)
    sums = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            parts = model.parts(torch.as_tensor(x[start:start + batch_size], device=device))
            sums.append(_row_spread(parts.attention.float().cpu().numpy()))
    return _spread(sums)


def _row_spread(attention: np.ndarray) -> dict:
    """Sums over rows of the per-instance spread figures (and the largest max/min), to combine batches."""
    att = attention.astype(np.float64)
    p = att.shape[1]
    weights = att / att.sum(1, keepdims=True)
    entropy = _normalised_entropy(weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = weights.max(1) / weights.min(1)
    cv = weights.std(1) / weights.mean(1)
    return {"entropy": entropy.sum(), "ratio": ratio.sum(), "cv": cv.sum(), "ratio_max": ratio.max(initial=1.0),
            "rows": len(att), "pairs": p}


def _spread(sums: list[dict]) -> dict:
    rows = sum(s["rows"] for s in sums)
    relative_entropy = float(np.clip(sum(s["entropy"] for s in sums) / rows, 0.0, 1.0))  # no rounding noise past 1
    return {
        "relative_entropy": relative_entropy,
        "concentration": 1.0 - relative_entropy,
        "max_min_ratio": float(sum(s["ratio"] for s in sums) / rows),
        "cv": float(sum(s["cv"] for s in sums) / rows),
        "degenerate": bool(max(s["ratio_max"] for s in sums) < DEGENERATE_MAX_MIN_RATIO),
        "pairs": int(sums[0]["pairs"]),
    }


def describe_spread(spread: dict, config=None) -> str:
    """One line for people: the spread figures, and a plain warning where attention is constant. With the
    model's config, a model whose pair weights are fixed says so instead."""
    if config is not None and not config.additive:
        return (f"{config.label}: no per-pair weights (its pairs are mixed in "
                f"{'self-attention over fields' if config.has_field_attention else 'an MLP or a cross network'}); "
                "read the function-level interactions")
    if config is not None and not config.pairwise:
        return f"{config.label}: no pair terms (first order only)"
    if config is not None and not config.normalised_weights:
        return f"{config.label}: every pair has weight 1 (no attention)"
    line = (f"attention spread: entropy/log(pairs) {spread['relative_entropy']:.3f}, max/min {spread['max_min_ratio']:.2f}, "
            f"coefficient of variation {spread['cv']:.3f}")
    if spread.get("pairs") == 1:
        return "one field pair only: its attention is always 1, so attention ranks nothing here"
    if spread["degenerate"]:
        line += (". WARNING: attention is constant across pairs and instances, so it explains nothing (the "
                 "failure of the authors' released code); read the contributions instead")
    return line


def importance_agreement(a: SplitExplanation, b: SplitExplanation) -> dict:
    """Spearman rank agreement of two models' global field-pair importances, by mean attention and by
    mean |contribution|: is the story a property of the data or of one training run?"""
    def ranks(ex, key):
        values = ex.parts[key].astype(np.float64)
        return (np.abs(values) if key == "contribution" else values).mean(0)[None]

    return {"by_attention": float(row_spearman(ranks(a, "attention"), ranks(b, "attention"))[0]),
            "by_contribution": float(row_spearman(ranks(a, "contribution"), ranks(b, "contribution"))[0])}

"""Global statistics of one model on one split, from a `SplitExplanation`: per field pair, attention
shape per instance, recovery of planted pairs, and faithfulness. All vectorised over the split."""
from __future__ import annotations

import numpy as np
import pandas as pd

from afm.explain import SplitExplanation, field_pairs

QUANTILES = (0.1, 0.25, 0.75, 0.9)


def pair_statistics(ex: SplitExplanation) -> pd.DataFrame:
    """One row per field pair: attention mean, median and quantiles; mean |contribution|; its share of
    all |pair contribution|; how often the pair is the instance's top pair by attention and by
    |contribution|. Sorted by mean attention, then mean |contribution|, descending."""
    att = ex.parts["attention"].astype(np.float64)
    con = np.abs(ex.parts["contribution"].astype(np.float64))
    n, p = att.shape
    pairs = field_pairs(ex.dataset.field_names)
    table = pd.DataFrame({
        "field_a": [a for a, _ in pairs],
        "field_b": [b for _, b in pairs],
        "mean_attention": att.mean(0),
        "median_attention": np.median(att, axis=0),
        **{f"q{int(q * 100):02d}_attention": np.quantile(att, q, axis=0) for q in QUANTILES},
        "mean_abs_contribution": con.mean(0),
        "contribution_share": con.sum(0) / max(con.sum(), 1e-300),
        "top_by_attention": np.bincount(att.argmax(1), minlength=p) / n if ex.normalised else np.full(p, np.nan),
        "top_by_contribution": np.bincount(con.argmax(1), minlength=p) / n,
    })
    return table.sort_values(["mean_attention", "mean_abs_contribution"], ascending=False,
                             kind="stable").reset_index(drop=True)


def attention_shape(ex: SplitExplanation) -> pd.DataFrame:
    """Per instance: attention entropy / log(pairs) (1 = uniform, 0 = one pair) and the mass on the top 3
    pairs, comparable across datasets with different field counts. FM's equal weights count as uniform."""
    att = ex.parts["attention"].astype(np.float64)
    p = att.shape[1]
    weights = att / att.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(weights > 0, weights * np.log(weights), 0.0).sum(1) / np.log(p)
    top3 = np.sort(weights, axis=1)[:, -3:].sum(1)
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

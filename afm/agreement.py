"""Which conclusions survive retraining: field-pair importance by four measures in each model of a set
(several about equally accurate models: seeds, settings), their spread across the set, and how well the
models agree on the ranking.

Measures, per field pair over (a sample of) a split:
- attention: mean attention weight (AFM only: FM's equal weights rank nothing);
- contribution: mean |a_ij p^T(v_i*v_j)|, the exact pair term of the prediction;
- ablation: mean |change of the prediction| when the pair is removed (attention renormalised);
- interaction: mean |I_AB|, the function-level mixed difference (afm.interactions), which does not depend
  on how a model splits its function between attention and embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from afm.data.dataset import Dataset
from afm.explain import batch_parts, ablation_effects, field_pairs, row_spearman
from afm.interactions import DEFAULT_REFERENCES, interactions, sample_rows
from afm.training import evaluate

MEASURES = ("attention", "contribution", "ablation", "interaction")


def pair_measures(model, dataset: Dataset, split: str = "test", sample: int | None = 2000,
                  reference_count: int = DEFAULT_REFERENCES, seed: int = 0) -> pd.DataFrame:
    """One row per field pair (the models' pair order) with the four measures."""
    x = dataset.splits[split].x[sample_rows(len(dataset.splits[split]), sample, seed)]
    parts = batch_parts(model, x)
    normalised = model.config.kind == "afm"
    ablation = ablation_effects(parts["attention"], parts["contribution"], normalised)
    strength = np.abs(interactions(model, dataset, split, sample, reference_count, seed).values).mean(0)
    pairs = field_pairs(dataset.field_names)
    return pd.DataFrame({
        "field_a": [a for a, _ in pairs], "field_b": [b for _, b in pairs],
        "attention": parts["attention"].astype(np.float64).mean(0) if normalised and model.config.attention
        else np.full(len(pairs), np.nan),
        "contribution": np.abs(parts["contribution"].astype(np.float64)).mean(0),
        "ablation": np.abs(ablation).mean(0),
        "interaction": strength,
    })


def kendall_w(scores: np.ndarray) -> float:
    """Kendall's coefficient of concordance of several rankings (rows: raters, columns: items), from
    average ranks: 1 when every rater ranks the items alike, near 0 for unrelated rankings."""
    raters, items = scores.shape
    if raters < 2 or items < 2:
        return float("nan")
    ranks = pd.DataFrame(scores).rank(axis=1).to_numpy()
    totals = ranks.sum(0)
    spread = ((totals - totals.mean()) ** 2).sum()
    return float(12 * spread / (raters ** 2 * (items ** 3 - items)))


@dataclass
class SetComparison:
    """Field-pair importance across a set of models on one split."""

    values: pd.DataFrame  # long: model, field_a, field_b, measure, value, rank (1 = most important)
    bands: pd.DataFrame  # per pair and measure: median, q10, q90 across models; robust (top k in every model)
    agreement: pd.DataFrame  # per measure: models, mean pairwise Spearman, Kendall's W
    accuracy: pd.DataFrame  # per model: RMSE on the split
    accuracy_note: str
    top_k: int

    def stability_line(self, measure: str) -> str:
        """One line for beside a single model's picture."""
        row = self.agreement.set_index("measure").loc[measure]
        if row.models < 2 or np.isnan(row.mean_spearman):
            return f"No set to compare the ranking by {measure} with."
        robust = self.bands[(self.bands.measure == measure) & self.bands.robust]
        pairs = ", ".join(f"{a} x {b}" for a, b in zip(robust.field_a, robust.field_b)) or "none"
        return (f"Across {int(row.models)} models of its set, the ranking by {measure} agrees at mean Spearman "
                f"{row.mean_spearman:.2f} (Kendall's W {row.kendall_w:.2f}); in the top {self.top_k} of every "
                f"model: {pairs}.")


def measure_models(models: dict, dataset: Dataset, split: str = "test", sample: int | None = 2000,
                   reference_count: int = DEFAULT_REFERENCES, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Every model's four measures per field pair (long: model, field_a, field_b, measure, value, rank with
    1 the most important), and every model's RMSE on the split."""
    frames, rmse = [], {}
    for name, model in models.items():
        table = pair_measures(model, dataset, split, sample, reference_count, seed)
        long = table.melt(id_vars=["field_a", "field_b"], value_vars=list(MEASURES), var_name="measure")
        long["rank"] = long.groupby("measure")["value"].rank(ascending=False, method="min")
        frames.append(long.assign(model=name))
        rmse[name] = evaluate(model, dataset, split)["rmse"]
    return pd.concat(frames, ignore_index=True), rmse


def summarize(values: pd.DataFrame, rmse: dict, top_k: int = 3, sets: dict[str, str] | None = None) -> SetComparison:
    """Bands, agreement and the accuracy note of measured models (`measure_models`), or of any subset."""
    pairs_count = values[["field_a", "field_b"]].drop_duplicates().shape[0]
    k = min(top_k, pairs_count)
    grouped = values.dropna(subset=["value"]).groupby(["measure", "field_a", "field_b"], sort=False)
    bands = grouped.agg(median=("value", "median"), q10=("value", lambda v: v.quantile(0.1)),
                        q90=("value", lambda v: v.quantile(0.9)), worst_rank=("rank", "max"),
                        models=("value", "size")).reset_index()
    bands["robust"] = bands.worst_rank <= k
    bands = bands.sort_values(["measure", "median"], ascending=[True, False], kind="stable").reset_index(drop=True)
    rows = []
    for measure in MEASURES:
        wide = values[values.measure == measure].pivot_table(index="model", columns=["field_a", "field_b"],
                                                              values="value", sort=False).dropna()
        scores = wide.to_numpy()
        pairs = list(combinations(range(len(scores)), 2))
        spearman = [float(row_spearman(scores[i][None], scores[j][None])[0]) for i, j in pairs]
        rows.append({"measure": measure, "models": len(scores),
                     "mean_spearman": float(np.nanmean(spearman)) if spearman else float("nan"),
                     "min_spearman": float(np.nanmin(spearman)) if spearman else float("nan"),
                     "kendall_w": kendall_w(scores)})
    names = list(dict.fromkeys(values.model))
    accuracy = pd.DataFrame([{"model": name, "set": (sets or {}).get(name, ""), "rmse": rmse[name]} for name in names])
    return SetComparison(values, bands, pd.DataFrame(rows), accuracy, accuracy_note(accuracy), k)


def compare_models(models: dict, dataset: Dataset, split: str = "test", sample: int | None = 2000,
                   reference_count: int = DEFAULT_REFERENCES, top_k: int = 3, seed: int = 0,
                   sets: dict[str, str] | None = None) -> SetComparison:
    """`models`: name -> model (torch module), all on `dataset`. `sets`: name -> set name, for the note on
    accuracy (the seed noise is the spread within a set)."""
    values, rmse = measure_models(models, dataset, split, sample, reference_count, seed)
    return summarize(values, rmse, top_k, sets)


def accuracy_note(accuracy: pd.DataFrame) -> str:
    """Whether the models are about equally accurate: their RMSE range against the seed noise (the
    standard deviation within a set of seeds, where there is one)."""
    low, high = accuracy.rmse.min(), accuracy.rmse.max()
    by_set = accuracy[accuracy.set != ""].groupby("set").rmse
    noise = by_set.std().dropna()
    line = f"RMSE from {low:.4f} to {high:.4f} across {len(accuracy)} models"
    if noise.empty:
        return line + " (no set of seeds to measure the seed noise)."
    seed_noise = float(noise.max())
    means = by_set.mean()
    if len(means) > 1 and means.max() - means.min() > 2 * seed_noise:
        return (line + f"; the sets' mean RMSE differ by {means.max() - means.min():.4f}, more than twice the seed "
                f"noise ({seed_noise:.4f}): they are not equally good models, so disagreement may be real.")
    return line + f"; seed noise (std within a set) {seed_noise:.4f}: about equally accurate."

"""Which conclusions survive retraining: field-pair importance by four measures in each model of a set
(several about equally accurate models: seeds, settings), their spread across the set, and how well the
models agree on the ranking.

Measures, per field pair over (a sample of) a split:
- attention: mean attention weight (AFM's over pairs; AutoInt's between two fields, both ways; FM's equal
  weights rank nothing);
- contribution: mean |a_ij p^T(v_i*v_j)|, the exact pair term of the prediction (additive families only);
- ablation: mean |change of the prediction| when the pair is removed (attention renormalised; additive only);
- interaction: mean |I_AB|, the function-level mixed difference (afm.explain.interactions), which does not depend
  on how a model splits its function between attention and embeddings;
- interaction_changed: the same, averaged only over the references that change both fields (I_AB is zero
  when either stays), so it does not grow with how many values a field has;
- h_statistic: Friedman and Popescu's H2, the share of the pair's joint partial dependence that is
  interaction (afm.explain.hstatistic; the costliest, so asked for by name).

What could make an answer fail, beside it: null models (the same settings on permuted labels,
`null_comparison`), what the data alone would rank (`structure_baselines`: the product of the two fields'
cardinalities, and of their Gini impurities, P(x_A != r_A) P(x_B != r_B)), and the noise of the estimate
itself (`noise_ceiling`: one model against itself over fresh draws of rows and references).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from afm.data.dataset import Dataset
from afm.explain.hstatistic import H_BACKGROUND, H_ROWS, h_statistic
from afm.explain.interactions import DEFAULT_REFERENCES, interactions, references, sample_rows
from afm.explain.parts import ablation_effects, batch_parts, field_pairs, row_spearman
from afm.explain.truth import truth_agreement, truth_strength
from afm.models.inference import evaluate

MEASURES = ("attention", "contribution", "ablation", "interaction", "interaction_changed", "h_statistic")
FAST_MEASURES = MEASURES[:-1]  # what a page computes at once; the H-statistic on request
FUNCTION_LEVEL = ("interaction", "interaction_changed", "h_statistic")  # need only predictions: any family


def pair_measures(model, dataset: Dataset, split: str = "test", sample: int | None = 2000,
                  reference_count: int = DEFAULT_REFERENCES, seed: int = 0, reference_seed: int | None = None,
                  measures=FAST_MEASURES) -> pd.DataFrame:
    """One row per field pair (the models' pair order) with the asked measures; `seed` draws the rows,
    `reference_seed` (default: `seed`) the references."""
    x = dataset.splits[split].x[sample_rows(len(dataset.splits[split]), sample, seed)]
    pairs = field_pairs(dataset.field_names)
    table = {"field_a": [a for a, _ in pairs], "field_b": [b for _, b in pairs]}
    if {"attention", "contribution", "ablation"} & set(measures):
        none = np.full(len(pairs), np.nan)
        config = model.config
        parts = batch_parts(model, x) if config.additive or config.has_attention else None
        table["attention"] = parts["attention"].astype(np.float64).mean(0) if config.has_attention else none
        if config.additive:  # the pair terms are the whole of each pair's part of the prediction
            table["contribution"] = np.abs(parts["contribution"].astype(np.float64)).mean(0)
            table["ablation"] = np.abs(ablation_effects(parts["attention"], parts["contribution"],
                                                        config.normalised_weights)).mean(0)
        else:  # an MLP or a cross network mixes the pairs: only the function-level measures read them
            table["contribution"] = table["ablation"] = none
    if {"interaction", "interaction_changed"} & set(measures):
        result = interactions(model, dataset, split, sample, reference_count, seed, reference_seed)
        table["interaction"] = np.abs(result.values).mean(0)
        with np.errstate(invalid="ignore"):
            table["interaction_changed"] = np.nanmean(np.abs(result.both_changed()), 0)
    if "h_statistic" in measures:
        x_all = dataset.splits[split].x
        rows = x_all[sample_rows(len(x_all), min(sample or len(x_all), H_ROWS), seed)]
        background = references(x_all, H_BACKGROUND, seed if reference_seed is None else reference_seed)
        table["h_statistic"] = h_statistic(model, rows, background)
    return pd.DataFrame(table)[["field_a", "field_b", *[m for m in MEASURES if m in measures]]]


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
    structure: pd.DataFrame | None = None  # per measure: Spearman with the data-only baselines
    null_agreement: pd.DataFrame | None = None  # per measure: trained, null, null vs trained (with a null set)
    noise: pd.DataFrame | None = None  # per measure: one model against itself over fresh draws
    truth: pd.DataFrame | None = None  # per model and measure: agreement with the Bayes-optimal ranking
    families: pd.DataFrame | None = None  # per two families and measure: agreement across them (cross pairs)

    def baseline_warnings(self, measure: str) -> list[str]:
        """What could make this measure's answer fail, in a sentence each: a ranking the field structure
        predicts, an agreement the null reaches too, an agreement at the noise ceiling."""
        notes = []
        if self.structure is not None and measure in set(self.structure.measure):
            row = self.structure.set_index("measure").loc[measure]
            best = max(row.cardinality_product, row.impurity_product)
            if best > STRUCTURE_WARNING:
                notes.append(f"The data alone predicts this ranking: Spearman {best:.2f} with the product of the two "
                             "fields' value counts or impurities, no model needed.")
        if self.null_agreement is not None and measure in set(self.null_agreement.measure):
            row = self.null_agreement.set_index("measure").loc[measure]
            if row.null_vs_trained == row.null_vs_trained and row.null_vs_trained > 0.5:
                notes.append(f"Models trained on permuted labels rank the pairs alike too (Spearman "
                             f"{row.null_vs_trained:.2f} with the trained models): agreement here is not evidence.")
        else:
            notes.append("No null set: the agreement has no baseline yet (train one with permuted labels).")
        if self.noise is not None and measure in set(self.noise.measure):
            row = self.agreement.set_index("measure").loc[measure]
            ceiling = self.noise.set_index("measure").loc[measure, "mean_spearman"]
            if row.mean_spearman == row.mean_spearman and row.mean_spearman >= ceiling - 0.01:
                notes.append(f"The models agree as well as one model agrees with itself over fresh draws "
                             f"({ceiling:.2f}): at the noise ceiling.")
        return notes

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
                   reference_count: int = DEFAULT_REFERENCES, seed: int = 0, reference_seed: int | None = None,
                   measures=FAST_MEASURES, draw_per_model: bool = False) -> tuple[pd.DataFrame, dict]:
    """Every model's measures per field pair (long: model, field_a, field_b, measure, value, rank with 1
    the most important), and every model's RMSE on the split. With `draw_per_model`, model i draws its
    references with reference seed + i, so what agrees agrees over models and draws."""
    frames, rmse = [], {}
    base = seed if reference_seed is None else reference_seed
    for i, (name, model) in enumerate(models.items()):
        table = pair_measures(model, dataset, split, sample, reference_count, seed,
                              base + i if draw_per_model else base, measures)
        long = table.melt(id_vars=["field_a", "field_b"], value_vars=[m for m in MEASURES if m in table],
                          var_name="measure")
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
    for measure in [m for m in MEASURES if m in set(values.measure)]:
        scores = _scores(values, measure).to_numpy()
        pairs = list(combinations(range(len(scores)), 2))
        spearman = [float(row_spearman(scores[i][None], scores[j][None])[0]) for i, j in pairs]
        defined = [s for s in spearman if s == s]  # a ranking of all-equal values (LR's pairs) has none
        rows.append({"measure": measure, "models": len(scores),
                     "mean_spearman": float(np.mean(defined)) if defined else float("nan"),
                     "min_spearman": float(np.min(defined)) if defined else float("nan"),
                     "kendall_w": kendall_w(scores)})
    names = list(dict.fromkeys(values.model))
    accuracy = pd.DataFrame([{"model": name, "set": (sets or {}).get(name, ""), "rmse": rmse.get(name, float("nan"))}
                             for name in names])
    return SetComparison(values, bands, pd.DataFrame(rows), accuracy, accuracy_note(accuracy), k)


def compare_models(models: dict, dataset: Dataset, split: str = "test", sample: int | None = 2000,
                   reference_count: int = DEFAULT_REFERENCES, top_k: int = 3, seed: int = 0,
                   sets: dict[str, str] | None = None, null_models: dict | None = None,
                   reference_seed: int | None = None, draw_per_model: bool = False, noise_draws: int = 0,
                   measures=FAST_MEASURES) -> SetComparison:
    """`models`: name -> model (torch module), all on `dataset`. `sets`: name -> set name, for the note on
    accuracy (the seed noise is the spread within a set). With `null_models` (the same settings trained on
    permuted labels, measured on the same rows) the bands carry the null's band and `beats_null`; with
    `noise_draws`, the first model is measured again over that many fresh draws and a pair is `robust` only
    when it is in the top k of every model and every draw. The data-only baselines, and on generated data
    the truth, are always beside."""
    options = dict(split=split, sample=sample, reference_count=reference_count, seed=seed,
                   reference_seed=reference_seed, measures=measures, draw_per_model=draw_per_model)
    values, rmse = measure_models(models, dataset, **options)
    null_values = measure_models(null_models, dataset, **options)[0] if null_models else None
    noise = truth = None
    if noise_draws:
        noise = noise_ceiling(next(iter(models.values())), dataset, split, sample, reference_count, noise_draws,
                              seed, measures, top_k)
    if dataset.latent is not None:
        loss = next(iter(models.values())).config.loss
        truth = truth_strength(dataset, loss, split, sample, reference_count, seed, reference_seed)
    return compare_measured(values, rmse, dataset, top_k, sets, null_values, noise, truth,
                            families={name: model.config.label for name, model in models.items()})


def compare_measured(values: pd.DataFrame, rmse: dict, dataset: Dataset, top_k: int = 3,
                     sets: dict[str, str] | None = None, null_values: pd.DataFrame | None = None,
                     noise: pd.DataFrame | None = None, truth: np.ndarray | None = None,
                     families: dict[str, str] | None = None) -> SetComparison:
    """A comparison from measurements already taken (`measure_models` of the models and of their null,
    `noise_ceiling`, `truth_strength`): what `compare_models` returns, without measuring anything again.
    `families`: model name -> family label; with two or more, `family_agreement` compares them."""
    comparison = summarize(values, rmse, top_k, sets)
    if families and len(set(families.values())) > 1:
        comparison.families = family_agreement(values, families)
    comparison.structure = structure_agreement(comparison.bands, structure_baselines(dataset))
    if null_values is not None and not null_values.empty:
        null_bands, comparison.null_agreement = null_comparison(values, null_values)
        comparison.bands = comparison.bands.merge(null_bands, on=["measure", "field_a", "field_b"], how="left")
    if noise is not None:
        comparison.noise = noise
        over_draws = {(m, pair) for m, pairs in zip(noise.measure, noise.robust_over_draws) for pair in pairs}
        comparison.bands["robust_over_models"] = comparison.bands.robust
        comparison.bands["robust"] = comparison.bands.robust & np.array([
            (m, f"{a} x {b}") in over_draws for m, a, b in
            zip(comparison.bands.measure, comparison.bands.field_a, comparison.bands.field_b)], dtype=bool)
    if truth is not None:
        comparison.truth = truth_agreement(values, truth, dataset, top_k)
    return comparison


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


def _scores(values: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Models (rows) by field pairs (columns) of one measure; models without it left out."""
    return values[values.measure == measure].pivot_table(index="model", columns=["field_a", "field_b"],
                                                         values="value", sort=False).dropna()


def cross_agreement(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Per measure, the mean Spearman of every model of `first` with every model of `second` (cross-set
    pairs only: no model is compared with a member of its own set)."""
    rows = []
    for measure in [m for m in MEASURES if m in set(first.measure) & set(second.measure)]:
        a, b = _scores(first, measure), _scores(second, measure)
        b = b.reindex(columns=a.columns)
        spearman = [float(row_spearman(x[None], y[None])[0]) for x in a.to_numpy() for y in b.to_numpy()]
        defined = [s for s in spearman if s == s]
        rows.append({"measure": measure, "pairs_of_models": len(spearman),
                     "mean_spearman": float(np.mean(defined)) if defined else float("nan"),
                     "min_spearman": float(np.min(defined)) if defined else float("nan")})
    return pd.DataFrame(rows, columns=["measure", "pairs_of_models", "mean_spearman", "min_spearman"])


def family_agreement(values: pd.DataFrame, families: dict[str, str]) -> pd.DataFrame:
    """Per two model families and measure, the mean Spearman of every model of one with every model of the
    other (cross-family pairs only: agreement within a family is the set's own): do different architectures
    name the same pairs? Measures a family lacks (attention outside AFM) are left out."""
    frames = []
    labels = list(dict.fromkeys(families[name] for name in dict.fromkeys(values.model) if name in families))
    for first, second in combinations(labels, 2):
        a = values[values.model.map(families) == first]
        b = values[values.model.map(families) == second]
        across = cross_agreement(a, b).dropna(subset=["mean_spearman"])
        frames.append(across.assign(families=f"{first} vs {second}"))
    columns = ["families", "measure", "pairs_of_models", "mean_spearman", "min_spearman"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _shares(values: pd.DataFrame) -> pd.DataFrame:
    """Each value as a share of its model's total over the pairs, per measure: a model that is simply
    larger everywhere (trained longer, a larger scale) does not stand out by that alone."""
    totals = values.groupby(["model", "measure"], sort=False).value.transform("sum")
    return values.assign(value=values.value / totals.where(totals > 0))


def null_comparison(values: pd.DataFrame, null_values: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trained models' measures beside their null's (the same settings trained on permuted labels).

    Bands: per measure and pair, the null models' 10%, 50% and 90% values, and `beats_null`: the pair's
    share of the model's total (over all pairs) is above the null models' 90th percentile share in every
    trained model. Agreement: per measure, how far the trained models agree among themselves, the null
    models among themselves, and the null with the trained (cross pairs): an agreement the null reaches
    too says nothing about the labels."""
    keys = ["measure", "field_a", "field_b"]
    null = null_values.dropna(subset=["value"]).groupby(keys, sort=False).value
    bands = null.quantile([0.1, 0.5, 0.9]).unstack().rename(columns={0.1: "null_q10", 0.5: "null_median",
                                                                      0.9: "null_q90"}).reset_index()
    null_share = _shares(null_values).dropna(subset=["value"]).groupby(keys, sort=False).value.quantile(0.9)
    lowest_share = _shares(values).dropna(subset=["value"]).groupby(keys, sort=False).value.min()
    shares = pd.concat([lowest_share.rename("trained_min_share"), null_share.rename("null_q90_share")], axis=1)
    bands = bands.merge(shares.reset_index(), on=keys)
    bands["beats_null"] = bands.trained_min_share > bands.null_q90_share
    trained, nulls = summarize(values, {}).agreement, summarize(null_values, {}).agreement
    across = cross_agreement(values, null_values)
    agreement = (trained[["measure", "mean_spearman"]].rename(columns={"mean_spearman": "trained"})
                 .merge(nulls[["measure", "mean_spearman"]].rename(columns={"mean_spearman": "null"}), on="measure")
                 .merge(across[["measure", "mean_spearman"]].rename(columns={"mean_spearman": "null_vs_trained"}),
                        on="measure"))
    return bands.drop(columns=["trained_min_share"]), agreement


def structure_baselines(dataset: Dataset, split: str = "train") -> pd.DataFrame:
    """What the data alone ranks, per field pair: the product of the two fields' numbers of values, and of
    their Gini impurities (the chance that two random rows differ in the field), on a split."""
    x = dataset.splits[split].x
    cardinality, impurity = [], []
    for f in range(x.shape[1]):
        _, counts = np.unique(x[:, f], return_counts=True)
        share = counts / counts.sum()
        cardinality.append(float(len(counts)))
        impurity.append(float(1.0 - share @ share))
    pairs = field_pairs(dataset.field_names)
    rows, cols = np.triu_indices(x.shape[1], k=1)
    return pd.DataFrame({"field_a": [a for a, _ in pairs], "field_b": [b for _, b in pairs],
                         "cardinality_product": np.asarray(cardinality)[rows] * np.asarray(cardinality)[cols],
                         "impurity_product": np.asarray(impurity)[rows] * np.asarray(impurity)[cols]})


STRUCTURE_WARNING = 0.8  # a ranking this predictable from the fields' value counts restates the data


def structure_agreement(bands: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """Per measure, the Spearman of the median ranking across models with each data-only baseline."""
    rows = []
    for measure, part in bands.groupby("measure", sort=False):
        merged = part.merge(baselines, on=["field_a", "field_b"])
        row = {"measure": measure}
        for name in ("cardinality_product", "impurity_product"):
            row[name] = float(row_spearman(merged["median"].to_numpy()[None], merged[name].to_numpy()[None])[0])
        rows.append(row)
    return pd.DataFrame(rows, columns=["measure", "cardinality_product", "impurity_product"])


def noise_ceiling(model, dataset: Dataset, split: str = "test", sample: int | None = 2000,
                  reference_count: int = DEFAULT_REFERENCES, draws: int = 5, seed: int = 0,
                  measures=FAST_MEASURES, top_k: int = 3) -> pd.DataFrame:
    """How far one model agrees with itself over `draws` fresh draws of rows and references: per measure,
    the mean pairwise Spearman (the ceiling any between-model agreement is read against) and the pairs in
    the top k of every draw."""
    frames = []
    for draw in range(draws):
        table = pair_measures(model, dataset, split, sample, reference_count, seed + 1000 * (draw + 1),
                              measures=measures)
        long = table.melt(id_vars=["field_a", "field_b"], value_vars=[m for m in MEASURES if m in table],
                          var_name="measure")
        long["rank"] = long.groupby("measure")["value"].rank(ascending=False, method="min")
        frames.append(long.assign(model=f"draw {draw}"))
    comparison = summarize(pd.concat(frames, ignore_index=True), {}, top_k)
    robust = comparison.bands[comparison.bands.robust].groupby("measure", sort=False).apply(
        lambda b: [f"{a} x {c}" for a, c in zip(b.field_a, b.field_b)], include_groups=False)
    ceiling = comparison.agreement[["measure", "mean_spearman", "min_spearman"]].copy()
    ceiling["robust_over_draws"] = ceiling.measure.map(robust).map(lambda v: v if isinstance(v, list) else [])
    return ceiling

"""Which conclusions survive retraining, and what could make them fail, as a results file: several model
sets on one dataset; each measure's rank agreement within every set and across every two sets (cross-set
model pairs only); each set beside its null (the same settings on permuted labels), beside what the data
alone ranks, and beside its noise ceiling (one model against itself over fresh draws); accuracy; the pairs
robust in each set and those that beat the null; and on generated data every model's agreement with the
truth (the Bayes-optimal function) over all pairs, and its recovery of the planted pairs."""
from __future__ import annotations

import time
from itertools import combinations

import pandas as pd

from afm.core.errors import AFMError
from afm.experiments.results import header
from afm.explain.agreement import (
    MEASURES,
    cross_agreement,
    measure_models,
    noise_ceiling,
    null_comparison,
    structure_agreement,
    structure_baselines,
    summarize,
)
from afm.explain.truth import truth_agreement, truth_strength

ORDER = list(MEASURES)


def interaction_study(sets: dict[str, dict], dataset, split: str = "test", sample: int | None = 2000,
                      reference_count: int = 16, top_k: int = 3, log=print, nulls: dict[str, dict] | None = None,
                      noise_draws: int = 5, measures=MEASURES) -> dict:
    """`sets`: set name -> {member name: model}, all trained on `dataset`; `nulls` the same for null sets
    (each trained set is read against every null set of its family, or every null set where none is)."""
    if not sets:
        raise AFMError("no model sets to study")
    started = time.perf_counter()
    nulls = nulls or {}
    everything = {**sets, **nulls}
    models = {f"{name}/{member}": model for name, members in everything.items() for member, model in members.items()}
    membership = {f"{name}/{member}": name for name, members in everything.items() for member in members}
    log(f"measuring {len(models)} models on {split} ({sample or 'every'} rows, R={reference_count}) ...")
    values, rmse = measure_models(models, dataset, split, sample, reference_count, measures=measures)
    of = lambda names: values[values.model.map(membership).isin(names)]  # noqa: E731
    baselines = structure_baselines(dataset)
    within, across, robust, null_rows, structure, noise = [], [], [], [], [], []
    for name in everything:
        comparison = summarize(of([name]), rmse, top_k, membership)
        within += [{"set": name, **row} for row in comparison.agreement.to_dict(orient="records")]
        structure += [{"set": name, **row} for row in
                      structure_agreement(comparison.bands, baselines).to_dict(orient="records")]
        for measure in comparison.bands.measure.unique():
            bands = comparison.bands[comparison.bands.measure == measure]
            robust.append({"set": name, "measure": measure,
                           "robust_pairs": [f"{a} x {b}" for a, b, r in zip(bands.field_a, bands.field_b, bands.robust) if r],
                           "top_pairs": [f"{a} x {b}" for a, b in zip(bands.field_a[:top_k], bands.field_b[:top_k])]})
    for a, b in combinations(everything, 2):
        across += [{"sets": f"{a} + {b}", **row} for row in cross_agreement(of([a]), of([b])).to_dict(orient="records")]
    for name, members in sets.items():
        first = next(iter(members.values()))
        if noise_draws:
            log(f"noise ceiling of {name}: one model over {noise_draws} fresh draws ...")
            ceiling = noise_ceiling(first, dataset, split, sample, reference_count, noise_draws, measures=measures,
                                    top_k=top_k)
            noise += [{"set": name, **row} for row in ceiling.to_dict(orient="records")]
        for null in _nulls_of(first, sets[name], nulls):
            bands, agreement = null_comparison(of([name]), of([null]))
            null_rows += [{"set": name, "null_set": null, **row} for row in agreement.to_dict(orient="records")]
            beats = bands[bands.beats_null]
            robust += [{"set": name, "measure": m, "null_set": null, "beats_null": [f"{a} x {b}" for a, b in
                                                                              zip(part.field_a, part.field_b)]}
                       for m, part in beats.groupby("measure", sort=False)]
    truth = []
    if dataset.latent is not None:
        for loss in sorted({m.config.loss for m in models.values()}):
            log(f"the truth on the {loss} scale ...")
            strength = truth_strength(dataset, loss, split, sample, reference_count)
            chosen = values[values.model.map(lambda m: models[m].config.loss == loss)]
            truth += [{**row, "set": membership[row["model"]], "loss": loss}
                      for row in truth_agreement(chosen, strength, dataset, top_k).to_dict(orient="records")]
    accuracy = pd.DataFrame([{"set": membership[m], "model": m, "rmse": r} for m, r in rmse.items()])
    results = {
        **header("interactions", dataset, False, "cpu"),
        "settings": {"split": split, "sample": min(sample, len(dataset.splits[split])) if sample else None,
                     "references": reference_count, "top_k": top_k,
                     "noise_draws": noise_draws, "measures": list(measures)},
        "sets": {name: list(members) for name, members in sets.items()},
        "null_sets": {name: list(members) for name, members in nulls.items()},
        "accuracy": accuracy.to_dict(orient="records"),
        "accuracy_by_set": accuracy.groupby("set", sort=False).rmse.agg(["mean", "std", "min", "max", "size"])
        .reset_index().to_dict(orient="records"),
        "within": within, "across": across, "robust": robust, "null": null_rows, "structure": structure,
        "noise": noise, "truth": truth,
        "planted_recovery": planted_recovery(values, dataset.planted_pairs, membership),
    }
    results["wall_seconds"] = time.perf_counter() - started
    return results


def _nulls_of(model, members: dict, nulls: dict) -> list[str]:
    """The null sets a trained set is read against: those of its family, else all of them."""
    same = [name for name, null in nulls.items() if next(iter(null.values())).config.kind == model.config.kind]
    return same or list(nulls)


def planted_recovery(values: pd.DataFrame, planted, membership: dict) -> list[dict]:
    """Per model and measure: the share of the planted pairs among its top len(planted) pairs."""
    if not planted:
        return []
    wanted, k = {frozenset(p) for p in planted}, len(planted)
    rows = []
    for (model, measure), part in values.dropna(subset=["value"]).groupby(["model", "measure"], sort=False):
        top = part.nsmallest(k, "rank")
        rows.append({"set": membership[model], "model": model, "measure": measure,
                     "precision": sum(frozenset(p) in wanted for p in zip(top.field_a, top.field_b)) / k})
    return rows


def _pivot(rows: list[dict], index: str, column: str = "measure", value: str = "mean_spearman") -> pd.DataFrame:
    table = pd.DataFrame(rows).pivot_table(index=index, columns=column, values=value, sort=False)
    return table.reindex(columns=[m for m in ORDER if m in table.columns]).reset_index()


def agreement_table(results: dict) -> pd.DataFrame:
    """Mean pairwise Spearman per measure (columns): within each set, and across every two sets from
    cross-set model pairs only (rows)."""
    rows = [{"sets": r["set"] + " (within)", "measure": r["measure"], "mean_spearman": r["mean_spearman"]}
            for r in results["within"]]
    rows += [{"sets": r["sets"] + " (across)", "measure": r["measure"], "mean_spearman": r["mean_spearman"]}
             for r in results["across"]]
    return _pivot(rows, "sets")


def null_table(results: dict) -> pd.DataFrame:
    """Per trained set, null set and measure: how far the trained models agree, the null models, and the
    null with the trained (cross pairs)."""
    rows = [{"row": f"{r['set']} vs {r['null_set']}: {kind.replace('_', ' ')}", "measure": r["measure"], "spearman": r[kind]}
            for r in results.get("null", []) for kind in ("trained", "null", "null_vs_trained")]
    return _pivot(rows, "row", value="spearman") if rows else pd.DataFrame()


def structure_table(results: dict) -> pd.DataFrame:
    """Per set and data-only baseline, the Spearman of each measure's median ranking with it."""
    rows = [{"row": f"{r['set']}: {name.replace('_', ' ')}", "measure": r["measure"], "spearman": r[name]}
            for r in results.get("structure", []) for name in ("cardinality_product", "impurity_product")]
    return _pivot(rows, "row", value="spearman") if rows else pd.DataFrame()


def noise_table(results: dict) -> pd.DataFrame:
    """Per set, each measure's noise ceiling: one model's mean Spearman with itself over fresh draws."""
    rows = results.get("noise", [])
    return _pivot(rows, "set") if rows else pd.DataFrame()


def truth_table(results: dict) -> pd.DataFrame:
    """Per set and measure: the mean Spearman of its models' rankings of all pairs with the truth's."""
    rows = [{"set": r["set"], "measure": r["measure"], "spearman": r["spearman_with_truth"]}
            for r in results.get("truth", [])]
    if not rows:
        return pd.DataFrame()
    grouped = pd.DataFrame(rows).groupby(["set", "measure"], sort=False).spearman.mean().reset_index()
    return _pivot(grouped.to_dict("records"), "set", value="spearman")


def recovery_table(results: dict) -> pd.DataFrame:
    """Planted-pair precision per set and measure: mean over the set's models, and the worst model."""
    rows = pd.DataFrame(results["planted_recovery"])
    if rows.empty:
        return rows
    table = rows.groupby(["set", "measure"], sort=False).precision.agg(["mean", "min"]).reset_index()
    return table.pivot_table(index="set", columns="measure", values=["mean", "min"], sort=False)

"""Which conclusions survive retraining, as a results file: several model sets on one dataset, each
measure's rank agreement within every set and across every two sets, accuracy, the pairs robust in each
set, and on planted data every model's recovery of the planted pairs by each measure."""
from __future__ import annotations

import time
from itertools import combinations

import pandas as pd

from afm.agreement import MEASURES, measure_models, summarize
from afm.errors import AFMError
from afm.experiments.results import header


def interaction_study(sets: dict[str, dict], dataset, split: str = "test", sample: int | None = 2000,
                      reference_count: int = 16, top_k: int = 3, log=print) -> dict:
    """`sets`: set name -> {member name: model}, all trained on `dataset`."""
    if not sets:
        raise AFMError("no model sets to study")
    started = time.perf_counter()
    models = {f"{name}/{member}": model for name, members in sets.items() for member, model in members.items()}
    membership = {f"{name}/{member}": name for name, members in sets.items() for member in members}
    log(f"measuring {len(models)} models on {split} ({sample or 'every'} rows, R={reference_count}) ...")
    values, rmse = measure_models(models, dataset, split, sample, reference_count)
    within, across, robust = [], [], []
    for name in sets:
        part = values[values.model.map(membership) == name]
        comparison = summarize(part, rmse, top_k, membership)
        within += [{"set": name, **row} for row in comparison.agreement.to_dict(orient="records")]
        for measure in MEASURES:
            bands = comparison.bands[(comparison.bands.measure == measure)]
            robust.append({"set": name, "measure": measure,
                           "robust_pairs": [f"{a} x {b}" for a, b, r in zip(bands.field_a, bands.field_b, bands.robust) if r],
                           "top_pairs": [f"{a} x {b}" for a, b in zip(bands.field_a[:top_k], bands.field_b[:top_k])]})
    for a, b in combinations(sets, 2):
        part = values[values.model.map(membership).isin([a, b])]
        comparison = summarize(part, rmse, top_k, membership)
        across += [{"sets": f"{a} + {b}", **row} for row in comparison.agreement.to_dict(orient="records")]
    accuracy = pd.DataFrame([{"set": membership[m], "model": m, "rmse": r} for m, r in rmse.items()])
    results = {
        **header("interactions", dataset, False, "cpu"),
        "settings": {"split": split, "sample": sample, "references": reference_count, "top_k": top_k},
        "sets": {name: list(members) for name, members in sets.items()},
        "accuracy": accuracy.to_dict(orient="records"),
        "accuracy_by_set": accuracy.groupby("set", sort=False).rmse.agg(["mean", "std", "min", "max", "size"])
        .reset_index().to_dict(orient="records"),
        "within": within, "across": across, "robust": robust,
        "planted_recovery": planted_recovery(values, dataset.planted_pairs, membership),
    }
    results["wall_seconds"] = time.perf_counter() - started
    return results


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


def agreement_table(results: dict) -> pd.DataFrame:
    """Mean pairwise Spearman per measure (columns) within each set and across every two sets (rows)."""
    rows = [{"sets": r["set"], "measure": r["measure"], "spearman": r["mean_spearman"], "models": r["models"]}
            for r in results["within"]]
    rows += [{"sets": r["sets"], "measure": r["measure"], "spearman": r["mean_spearman"], "models": r["models"]}
             for r in results["across"]]
    table = pd.DataFrame(rows).pivot_table(index="sets", columns="measure", values="spearman", sort=False)
    return table.reindex(columns=[m for m in ("attention", "contribution", "ablation", "interaction")
                                  if m in table.columns]).reset_index()


def recovery_table(results: dict) -> pd.DataFrame:
    """Planted-pair precision per set and measure: mean over the set's models, and the worst model."""
    rows = pd.DataFrame(results["planted_recovery"])
    if rows.empty:
        return rows
    table = rows.groupby(["set", "measure"], sort=False).precision.agg(["mean", "min"]).reset_index()
    return table.pivot_table(index="set", columns="measure", values=["mean", "min"], sort=False)

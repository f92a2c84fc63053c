"""The lesson of the first screen, in words: which pairs the selected model relies on, whether those are
the pairs planted in the data (generated data knows them), how its weights differ from FM's equal ones,
and how the two sidebar models compare on test. Generated from the numbers, so it never says more than
they do."""
from __future__ import annotations

import numpy as np

from afm.explain.parts import SplitExplanation, field_pairs
from afm.explain.statistics import pair_statistics

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _count(n: int) -> str:
    return NUMBER_WORDS.get(n, str(n))


def _names(pairs: list[tuple[str, str]]) -> str:
    names = [f"{a} x {b}" for a, b in pairs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def planted_pairs(explanation: SplitExplanation) -> list[tuple[str, str]]:
    """The pairs planted in generated data (in the models' field order), [] for any other data."""
    latent = explanation.dataset.latent
    if latent is None:
        return []
    names = explanation.dataset.field_names  # the latent score names fields by position
    return [(names[min(a, b)], names[max(a, b)]) for a, b, _ in latent.pairs]


def strongest_pairs(explanation: SplitExplanation, count: int) -> list[tuple[str, str]]:
    """The `count` pairs with the largest mean |contribution| on the split, strongest first."""
    table = pair_statistics(explanation).sort_values("mean_abs_contribution", ascending=False, kind="stable")
    return list(zip(table.field_a[:count], table.field_b[:count]))


def attention_share(explanation: SplitExplanation, pairs: list[tuple[str, str]]) -> float | None:
    """The mean share of an instance's attention on these pairs; None where attention is not normalised
    (FM gives every pair weight 1)."""
    if not explanation.normalised:
        return None
    index = {pair: i for i, pair in enumerate(field_pairs(explanation.dataset.field_names))}
    columns = [index[p] for p in pairs]
    return float(explanation.parts["attention"][:, columns].sum(1).mean())


def lesson(explanation: SplitExplanation, model_label: str) -> str:
    """One sentence: the model's strongest pairs; on generated data whether they are the planted ones; and,
    for a model with attention, how much of its weight it puts on them against FM's equal weights."""
    planted = planted_pairs(explanation)
    count = len(planted) or 2
    top = strongest_pairs(explanation, count)
    pairs = len(field_pairs(explanation.dataset.field_names))
    lead = f"The {_count(count)} strongest interactions in {model_label}, {_names(top)},"
    if planted:
        found = [p for p in top if p in set(planted)]
        if len(found) == len(planted):
            text = f"{lead} are exactly the pairs planted in this data"
        elif found:
            text = (f"{lead} include {_count(len(found))} of the {_count(len(planted))} pairs planted in this data "
                    f"({_names(planted)})")
        else:
            text = f"{lead} are none of the pairs planted in this data ({_names(planted)})"
    else:
        share = pair_statistics(explanation).set_index(["field_a", "field_b"]).loc[top, "contribution_share"].sum()
        text = f"{lead} carry {share:.0%} of what its {pairs} pair terms add to its predictions"
    weight = attention_share(explanation, top)
    if weight is not None:
        text += (f"; FM weighs all {pairs} pairs equally, {model_label} puts {weight:.0%} of its attention on "
                 f"{'them' if count > 1 else 'it'} ({count / pairs:.0%} if it weighed them equally)")
    else:
        text += f"; {model_label} gives all {pairs} pairs the same weight, 1: they differ only in the size of their terms"
    return text + "."


def metric_contrast(model: dict, baseline: dict, model_label: str, baseline_label: str) -> tuple[str, float, float, bool]:
    """(metric label, the model's value, the baseline's, lower is better) for two test-metric dicts:
    logloss where both have it, else RMSE."""
    for key, label, lower in (("logloss", "test logloss", True), ("rmse", "test RMSE", True), ("auc", "test AUC", False)):
        if model.get(key) is not None and baseline.get(key) is not None and np.isfinite(model[key]) \
                and np.isfinite(baseline[key]):
            return label, float(model[key]), float(baseline[key]), lower
    raise ValueError(f"no test metric shared by {model_label} and {baseline_label}")

"""Do the pairs a measure names help a model? Two retraining checks of an interaction ranking:

- encode and retrain (GLIDER, Tsang et al., ICLR 2020): each of a measure's top-K pairs becomes one crossed
  field (its value pairs; those seen fewer than MIN_COUNT times in train become one "other" value), added to
  a first-order model (LR); the gain in validation and test logloss and AUC over no crosses is read against
  the mean gain of K random pairs (RANDOM_DRAWS draws) and of the K pairs with the largest cardinality
  product (what the data alone would name);
- remove and retrain (ROAR, Hooker et al., 2019): an FM trained with the top-K pairs' terms masked, against
  K random pairs masked; a named pair should hurt more when removed.

Every model gets one fixed budget (the same epochs, batch, optimizer and learning rate), and each run is
repeated over seeds for the spread. Rankings come from the train split, so nothing here is tuned on the
splits the gains are read on."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from afm.core.errors import AFMError
from afm.data.dataset import Dataset, Split
from afm.experiments.results import header
from afm.explain.agreement import compare_models, structure_baselines
from afm.explain.parts import field_pairs
from afm.fast.ops import gather_rows, pairwise_sum
from afm.models import FM, FM_KIND, LR, LR_KIND, ModelConfig
from afm.models.inference import evaluate
from afm.training.loop import TrainConfig, train

MIN_COUNT = 5  # value pairs rarer than this in train share one "other" value of the crossed field
RANDOM_DRAWS = 10
BUDGET = {"epochs": 5, "batch_size": 2048, "lr": 0.01, "optimizer": "adam", "patience": 2}


def crossed(dataset: Dataset, pairs: list[tuple[str, str]], min_count: int = MIN_COUNT) -> Dataset:
    """The dataset with one more field per pair: the pair's value combinations seen at least `min_count`
    times in train, every other combination (and any unseen in train) one "other" value."""
    names = list(dataset.field_names)
    splits = {name: [part.x] for name, part in dataset.splits.items()}
    features, offset = list(dataset.feature_names), dataset.num_features
    for a, b in pairs:
        fa, fb = names.index(a), names.index(b)
        keys = {name: part.x[:, fa] * dataset.num_features + part.x[:, fb] for name, part in dataset.splits.items()}
        values, counts = np.unique(keys["train"], return_counts=True)
        kept = values[counts >= min_count]
        for name, key in keys.items():
            position = np.searchsorted(kept, key)
            found = (position < len(kept)) & (kept[np.minimum(position, len(kept) - 1)] == key)
            splits[name].append((offset + np.where(found, position + 1, 0))[:, None])
        features += [f"{a} x {b}=other"] + [f"{a} x {b}={dataset.feature_names[k // dataset.num_features]}&"
                                            f"{dataset.feature_names[k % dataset.num_features]}" for k in kept]
        offset += len(kept) + 1
        names.append(f"{a} x {b}")
    return replace(dataset, field_names=names, feature_names=features,
                   splits={name: Split(np.concatenate(parts, 1), dataset.splits[name].y)
                           for name, parts in splits.items()},
                   source={"kind": "crossed", "of": dataset.source, "pairs": [list(p) for p in pairs]})


class MaskedFM(FM):
    """An FM whose terms for some field pairs are removed: the remove-and-retrain check."""

    def __init__(self, config: ModelConfig, masked: list[int]):
        super().__init__(config)
        masked = torch.as_tensor(sorted(masked), dtype=torch.long)
        self.register_buffer("masked_rows", self.pair_rows[masked], persistent=False)
        self.register_buffer("masked_cols", self.pair_cols[masked], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = gather_rows(self.embedding, x)
        removed = (v[:, self.masked_rows] * v[:, self.masked_cols]).sum(1)
        return self.output(x, pairwise_sum(v) - removed)


def _fit(model, dataset: Dataset, seed: int, budget: dict) -> dict:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        train(model, dataset, TrainConfig(**budget, seed=seed))
    return {split: evaluate(model, dataset, split) for split in ("validation", "test")}


def _first_order(dataset: Dataset, seed: int, budget: dict) -> dict:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LR(ModelConfig(LR_KIND, dataset.num_features, dataset.num_fields, loss="logistic"))
    return _fit(model, dataset, seed, budget)


def _masked_fm(dataset: Dataset, masked: list[int], seed: int, budget: dict, embed_dim: int) -> dict:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MaskedFM(ModelConfig(FM_KIND, dataset.num_features, dataset.num_fields, embed_dim=embed_dim,
                                     loss="logistic"), masked)
    return _fit(model, dataset, seed, budget)


def _gain(base: dict, run: dict) -> dict:
    """Positive: better than the baseline (lower logloss, higher AUC), on each split."""
    return {f"{split}_gain_logloss": base[split]["logloss"] - run[split]["logloss"] for split in base} | {
        f"{split}_gain_auc": run[split]["auc"] - base[split]["auc"] for split in base}


def crosses(models: dict, dataset: Dataset, ks=(1, 3, 5), seeds: int = 3, sample: int = 2000,
            reference_count: int = 16, budget: dict | None = None, embed_dim: int = 16, log=print,
            should_stop=None) -> dict:
    """Encode-and-retrain and remove-and-retrain for every measure's top-K pairs (the median ranking of
    `models` on the train split), against random pairs and the cardinality product; a results file.
    `should_stop` (a background job's stop button) ends it between two retrainings, with an AFMError."""
    if dataset.task != "binary":
        raise AFMError(f"{dataset.name}: the crosses check trains logistic models; it needs a two-valued target")
    if not ks or min(ks) < 1 or max(ks) > len(field_pairs(dataset.field_names)):
        raise AFMError(f"--k takes 1 to {len(field_pairs(dataset.field_names))} pairs, not {list(ks)}")
    started = time.perf_counter()
    budget = {**BUDGET, **(budget or {})}
    pairs = field_pairs(dataset.field_names)
    comparison = compare_models(models, dataset, "train", sample, reference_count)
    rankings = {measure: [(a, b) for a, b in zip(part.field_a, part.field_b)]  # strongest first
                for measure, part in comparison.bands.groupby("measure", sort=False)}
    structure = structure_baselines(dataset).sort_values("cardinality_product", ascending=False, kind="stable")
    rankings["structure"] = list(zip(structure.field_a, structure.field_b))
    rng = np.random.default_rng(0)
    random_draws = {k: [[pairs[i] for i in rng.choice(len(pairs), size=k, replace=False)]
                        for _ in range(RANDOM_DRAWS)] for k in ks}
    cache: dict = {}

    def run(kind: str, chosen: list[tuple[str, str]], seed: int) -> dict:
        key = (kind, frozenset(chosen), seed)
        if should_stop is not None and should_stop():
            raise AFMError("the crosses check was stopped")
        if key not in cache:
            if kind == "cross":
                cache[key] = _first_order(crossed(dataset, chosen) if chosen else dataset, seed, budget)
            else:
                cache[key] = _masked_fm(dataset, [pairs.index(p) for p in chosen], seed, budget, embed_dim)
        return cache[key]

    rows = []
    for check in ("cross", "remove"):
        for k in ks:
            for seed in range(seeds):
                base = run(check, [], seed)
                randoms = [_gain(base, run(check, draw, seed)) for draw in random_draws[k]]
                random_mean = {f"random_{name}": float(np.mean([r[name] for r in randoms])) for name in randoms[0]}
                for measure, ranking in rankings.items():
                    rows.append({"check": check, "measure": measure, "k": k, "seed": seed,
                                 "pairs": [f"{a} x {b}" for a, b in ranking[:k]],
                                 **_gain(base, run(check, ranking[:k], seed)), **random_mean})
            log(f"{check}: K = {k} done ({len(cache)} models trained, {time.perf_counter() - started:.0f}s)")
    results = {**header("crosses", dataset, False, "cpu"),
               "settings": {"ks": list(ks), "seeds": seeds, "sample": sample, "references": reference_count,
                            "budget": budget, "embed_dim": embed_dim, "min_count": MIN_COUNT,
                            "random_draws": RANDOM_DRAWS, "ranked_on": "train"},
               "models": list(models), "runs": rows, "summary": summary_rows(rows)}
    results["wall_seconds"] = time.perf_counter() - started
    return results


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per check, measure and K over the seeds: the gains (mean, min, max) beside random pairs' mean gain.
    For `remove`, a gain is negative: the named pairs should hurt more (a lower gain) than random ones."""
    frame = pd.DataFrame(rows)
    out = []
    for (check, measure, k), part in frame.groupby(["check", "measure", "k"], sort=False):
        row = {"check": check, "measure": measure, "k": int(k), "seeds": len(part), "pairs": part.pairs.iloc[0]}
        for name in ("gain_logloss", "gain_auc"):
            for split in ("validation", "test"):
                values = part[f"{split}_{name}"]
                row[f"{split}_{name}"] = float(values.mean())
                row[f"{split}_{name}_min"], row[f"{split}_{name}_max"] = float(values.min()), float(values.max())
                row[f"{split}_random_{name}"] = float(part[f"random_{split}_{name}"].mean())
        row["gain_logloss"], row["gain_auc"] = row["validation_gain_logloss"], row["validation_gain_auc"]
        row["random_gain_logloss"] = row["validation_random_gain_logloss"]
        row["random_gain_auc"] = row["validation_random_gain_auc"]
        out.append(row)
    return out

"""FM against AFM on the same split: per-instance errors, paired bootstrap intervals, errors by segment,
and the instances where AFM gains or loses most."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from afm.core.metrics import in_label_units, instance_logloss, weighted_auc, weighted_rmse_mae
from afm.core.paper import paper_table
from afm.data.dataset import Dataset
from afm.models import AFM_KIND, FM_KIND
from afm.models.inference import predict


def paired_errors(fm, afm, dataset: Dataset, split: str = "test") -> pd.DataFrame:
    """One row per instance: label, both models' scores (a logistic model's are logits), both predictions
    in label units (clipped) and both errors (prediction - label); on binary data with a logistic model,
    its per-instance logloss too."""
    data = dataset.splits[split]
    y = data.y.astype(np.float64)
    table = {"row": np.arange(len(y)), "label": y}
    for name, model in ((FM_KIND, fm), (AFM_KIND, afm)):
        score = predict(model, data.x).astype(np.float64)
        prediction = in_label_units(score, dataset.label_range, model.config.loss)
        table.update({f"{name}_score": score, f"{name}_prediction": prediction, f"{name}_error": prediction - y})
        if dataset.task == "binary" and model.config.loss == "logistic":
            table[f"{name}_logloss"] = instance_logloss(score, y > 0)
    return pd.DataFrame(table)


def bootstrap_comparison(errors: pd.DataFrame, samples: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Each metric of both models, their difference (AFM - FM) and a paired bootstrap interval of it: the
    same resampled instances for both models. RMSE and MAE always; AUC on -1/+1 labels; logloss where
    both models are logistic."""
    n = len(errors)
    binary = bool(np.isin(errors.label.unique(), (-1.0, 1.0)).all())
    positive = errors.label.to_numpy() > 0

    def metrics(side: str, weights=None) -> dict:
        rmse, mae = weighted_rmse_mae(errors[f"{side}_error"].to_numpy(), weights)
        out = {"rmse": rmse, "mae": mae}
        if binary:
            out["auc"] = weighted_auc(errors[f"{side}_score"].to_numpy(), positive, weights)
        if "fm_logloss" in errors and "afm_logloss" in errors:
            loss = errors[f"{side}_logloss"].to_numpy()
            out["logloss"] = loss.mean() if weights is None else weights @ loss / weights.sum(1)
        return out

    rng = np.random.default_rng(seed)
    diffs: dict[str, list] = {}
    for start in range(0, samples, 100):  # resampling counts, 100 bootstrap samples at a time
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(100, samples - start)).astype(np.float64)
        fm, afm = metrics(FM_KIND, counts), metrics(AFM_KIND, counts)
        for metric in fm:
            diffs.setdefault(metric, []).append(afm[metric] - fm[metric])
    fm, afm = metrics(FM_KIND), metrics(AFM_KIND)
    tail = (1 - level) / 2
    rows = []
    for metric in fm:
        d = np.concatenate(diffs[metric])
        rows.append({"metric": metric, FM_KIND: float(fm[metric]), AFM_KIND: float(afm[metric]),
                     "difference": float(afm[metric] - fm[metric]), "relative": float((afm[metric] - fm[metric]) / fm[metric]),
                     "ci_low": np.quantile(d, tail), "ci_high": np.quantile(d, 1 - tail), "n": n})
    return pd.DataFrame(rows)


def comparison_words(table: pd.DataFrame, model: str, baseline: str, split: str = "test") -> str:
    """The comparison of `bootstrap_comparison` in words first, then its numbers: on the headline metric
    (logloss where both are logistic, else RMSE) whether the interval excludes zero, and AUC beside it."""
    by_metric = table.set_index("metric")
    lower = {"logloss": True, "rmse": True, "auc": False}
    metric = "logloss" if "logloss" in by_metric.index else "rmse"
    parts = []
    for name in (metric, "auc"):
        if name not in by_metric.index:
            continue
        row = by_metric.loc[name]
        clear = row.ci_high < 0 or row.ci_low > 0
        better = (row.difference < 0) == lower[name]
        word = ("better than" if better else "worse than") if clear else "not clearly different from"
        parts.append((name, word, row))
    (name, word, row), rest = parts[0], parts[1:]
    label = {"logloss": "logloss", "rmse": "RMSE", "auc": "AUC"}
    text = f"On the {split} split, {model} is {word} {baseline} by {label[name]}"
    if rest:
        auc_word = rest[0][1]
        text += f", and {auc_word} it by AUC" if auc_word != word else " and by AUC"
    text += (f" ({label[name]} {row.afm:.4f} against {row.fm:.4f}, {row.relative:+.1%}; 95% interval of the "
             f"difference [{row.ci_low:+.4f}, {row.ci_high:+.4f}])")
    return text + "."


def feature_frequency(dataset: Dataset, split: str = "test") -> np.ndarray:
    """Per instance of a split: how often its rarest feature occurs in train (0 = never seen)."""
    counts = np.bincount(dataset.splits["train"].x.ravel(), minlength=dataset.num_features)
    return counts[dataset.splits[split].x].min(1)


LEADING_NUMBER = re.compile(r"^[\[(]?\s*(-?\d+(?:\.\d*)?(?:e[-+]?\d+)?)", re.IGNORECASE)


def value_order(labels: list[str]) -> list[str]:
    """Values in reading order: those with a leading number by it ("[5, 8]" before "[40, 80]", "9" before
    "10"), then the others ("<missing>") as given."""
    numbered = [(float(m.group(1)), label) for label in labels if (m := LEADING_NUMBER.match(label))]
    return [label for _, label in sorted(numbered, key=lambda t: t[0])] + \
        [label for label in labels if not LEADING_NUMBER.match(label)]


def _segment_rows(errors: pd.DataFrame, kind: str, keys: pd.Series) -> list[dict]:
    rows = []
    for key, group in errors.groupby(keys, observed=True, sort=True):
        row = {"segment_kind": kind, "segment": str(key), "n": len(group),
               "fm_rmse": float(np.sqrt((group.fm_error ** 2).mean())),
               "afm_rmse": float(np.sqrt((group.afm_error ** 2).mean()))}
        if "fm_logloss" in group and "afm_logloss" in group:  # both logistic
            row.update({"fm_logloss": float(group.fm_logloss.mean()), "afm_logloss": float(group.afm_logloss.mean())})
        rows.append(row)
    return rows


def errors_by_segment(errors: pd.DataFrame, dataset: Dataset, split: str = "test", top_values: int = 8) -> pd.DataFrame:
    """RMSE (and logloss, both models logistic) of both models by label, by how often the instance's rarest feature occurs in train
    (quartiles), and by each field's most frequent values."""
    rows = _segment_rows(errors, "label", errors.label.map(lambda v: f"{v:+g}"))
    frequency = feature_frequency(dataset, split)
    codes, edges = pd.qcut(frequency, 4, labels=False, retbins=True, duplicates="drop")
    bin_names = [f"{edges[i]:.0f} to {edges[i + 1]:.0f}" for i in range(len(edges) - 1)]
    rows += _segment_rows(errors, "rarest feature's train count",  # bins in the order of their counts, not as text
                          pd.Series(pd.Categorical([bin_names[c] for c in codes], categories=bin_names, ordered=True),
                                    index=errors.index))
    x = dataset.splits[split].x
    names = np.asarray(dataset.feature_names, dtype=object)
    for f, field in enumerate(dataset.field_names):
        ids = pd.Series(x[:, f], index=errors.index)
        common = np.sort(ids.value_counts().index[:top_values].to_numpy())  # ids follow the values' own order
        mask = ids.isin(common)
        labels = value_order(pd.Series(names[common]).str.removeprefix(f"{field}=").tolist())
        keys = pd.Categorical(pd.Series(names[ids[mask]]).str.removeprefix(f"{field}="), categories=labels, ordered=True)
        rows += _segment_rows(errors[mask], field, pd.Series(keys, index=errors.index[mask]))
    table = pd.DataFrame(rows)
    table["difference"] = table.afm_rmse - table.fm_rmse
    if "fm_logloss" in table:
        table["logloss_difference"] = table.afm_logloss - table.fm_logloss
    return table


def largest_differences(errors: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """The instances where AFM's absolute error is most below FM's ("gain") and most above ("loss")."""
    gain = errors.fm_error.abs() - errors.afm_error.abs()
    ranked = errors.assign(afm_gain=gain).sort_values("afm_gain", ascending=False, kind="stable")
    return pd.concat([ranked.head(count).assign(direction="gain"),
                      ranked.tail(count).iloc[::-1].assign(direction="loss")]).reset_index(drop=True)


def results_beside_paper(comparison: pd.DataFrame, dataset_name: str) -> pd.DataFrame:
    """Our FM and AFM test RMSE beside the paper's table (where the paper used this dataset)."""
    ours = comparison.set_index("metric").loc["rmse"]
    table = paper_table(dataset_name)
    table["our_test_rmse"] = table.method.map({"LibFM": ours.fm, "AFM": ours.afm})
    return table

"""FM against AFM on the same split: per-instance errors, paired bootstrap intervals, errors by segment,
and the instances where AFM gains or loses most."""
from __future__ import annotations

import numpy as np
import pandas as pd

from afm.data.dataset import Dataset
from afm.metrics import clipped, weighted_rmse_mae
from afm.paper import paper_table
from afm.training import predict


def paired_errors(fm, afm, dataset: Dataset, split: str = "test") -> pd.DataFrame:
    """One row per instance: label, both clipped predictions and both errors (prediction - label)."""
    data = dataset.splits[split]
    y = data.y.astype(np.float64)
    fm_pred = clipped(predict(fm, data.x), dataset.label_range).astype(np.float64)
    afm_pred = clipped(predict(afm, data.x), dataset.label_range).astype(np.float64)
    return pd.DataFrame({"row": np.arange(len(y)), "label": y, "fm_prediction": fm_pred, "afm_prediction": afm_pred,
                         "fm_error": fm_pred - y, "afm_error": afm_pred - y})


def bootstrap_comparison(errors: pd.DataFrame, samples: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """RMSE and MAE of both models, their difference (AFM - FM) and a paired bootstrap interval of it:
    the same resampled instances for both models."""
    fm_e, afm_e = errors.fm_error.to_numpy(), errors.afm_error.to_numpy()
    n = len(fm_e)
    rng = np.random.default_rng(seed)
    diffs = {"rmse": [], "mae": []}
    for start in range(0, samples, 100):  # resampling counts, 100 bootstrap samples at a time
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(100, samples - start)).astype(np.float64)
        fm_r, fm_m = weighted_rmse_mae(fm_e, counts)
        afm_r, afm_m = weighted_rmse_mae(afm_e, counts)
        diffs["rmse"].append(afm_r - fm_r)
        diffs["mae"].append(afm_m - fm_m)
    fm_r, fm_m = weighted_rmse_mae(fm_e)
    afm_r, afm_m = weighted_rmse_mae(afm_e)
    tail = (1 - level) / 2
    rows = []
    for metric, fm_v, afm_v in (("rmse", fm_r, afm_r), ("mae", fm_m, afm_m)):
        d = np.concatenate(diffs[metric])
        rows.append({"metric": metric, "fm": fm_v, "afm": afm_v, "difference": afm_v - fm_v,
                     "relative": (afm_v - fm_v) / fm_v, "ci_low": np.quantile(d, tail),
                     "ci_high": np.quantile(d, 1 - tail), "n": n})
    return pd.DataFrame(rows)


def feature_frequency(dataset: Dataset, split: str = "test") -> np.ndarray:
    """Per instance of a split: how often its rarest feature occurs in train (0 = never seen)."""
    counts = np.bincount(dataset.splits["train"].x.ravel(), minlength=dataset.num_features)
    return counts[dataset.splits[split].x].min(1)


def _segment_rows(errors: pd.DataFrame, kind: str, keys: pd.Series) -> list[dict]:
    rows = []
    for key, group in errors.groupby(keys, observed=True, sort=True):
        rows.append({"segment_kind": kind, "segment": str(key), "n": len(group),
                     "fm_rmse": float(np.sqrt((group.fm_error ** 2).mean())),
                     "afm_rmse": float(np.sqrt((group.afm_error ** 2).mean()))})
    return rows


def errors_by_segment(errors: pd.DataFrame, dataset: Dataset, split: str = "test", top_values: int = 8) -> pd.DataFrame:
    """RMSE of both models by label, by how often the instance's rarest feature occurs in train
    (quartiles), and by each field's most frequent values."""
    rows = _segment_rows(errors, "label", errors.label.map(lambda v: f"{v:+g}"))
    frequency = feature_frequency(dataset, split)
    codes, edges = pd.qcut(frequency, 4, labels=False, retbins=True, duplicates="drop")
    bin_names = [f"{edges[i]:.0f} to {edges[i + 1]:.0f}" for i in range(len(edges) - 1)]
    rows += _segment_rows(errors, "rarest feature's train count",
                          pd.Series([bin_names[c] for c in codes], index=errors.index))
    x = dataset.splits[split].x
    names = np.asarray(dataset.feature_names, dtype=object)
    for f, field in enumerate(dataset.field_names):
        values = pd.Series(names[x[:, f]], index=errors.index).str.removeprefix(f"{field}=")
        common = values.value_counts().index[:top_values]
        mask = values.isin(common)
        rows += _segment_rows(errors[mask], field, values[mask])
    table = pd.DataFrame(rows)
    table["difference"] = table.afm_rmse - table.fm_rmse
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

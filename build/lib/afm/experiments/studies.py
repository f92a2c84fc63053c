"""The paper's studies: sweeps of the attention factor t, lambda and dropout (validation only); FM+A (FM's
parameters frozen, only attention learns); and the micro-level case study of MovieLens (which field pair
gets the attention)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from afm.data.dataset import Dataset
from afm.explain.parts import batch_parts, pair_labels
from afm.models import AFM_KIND
from afm.models.inference import evaluate
from afm.training.workflows import Trained, fit

STUDY_GRIDS = {"attention_factor": [1, 4, 16, 64], "l2_attention": [0.0, 1.0, 4.0, 16.0], "dropout": [0.0, 0.2, 0.5]}


def sweep(dataset: Dataset, parameter: str, values, overrides: dict, fm_dir: Path, log=print) -> pd.DataFrame:
    """Validation RMSE of AFM (from FM's embeddings) for each value of one hyperparameter; never the test
    split, which is not for tuning."""
    rows = []
    for value in values:
        log(f"study: AFM with {parameter}={value} ...")
        result = fit(dataset, AFM_KIND, {**overrides, parameter: value}, pretrain_dir=fm_dir).result
        rows.append({"parameter": parameter, "value": value, "validation_rmse": result.best_row["validation_rmse"],
                     "best_epoch": result.best_epoch, "seconds": result.seconds, "stop_reason": result.stop_reason})
    return pd.DataFrame(rows)


def fm_plus_attention(dataset: Dataset, fm_dir: Path, overrides: dict) -> Trained:
    """FM+A: FM's embeddings and biases frozen, only the attention network (and p) trained, started as
    exactly the FM (p = P, uniform attention), as the ablation and the verdict run it."""
    return fit(dataset, AFM_KIND, {**overrides, "freeze_fm": True, "p_start": "fm"}, pretrain_dir=fm_dir)


def run_studies(dataset: Dataset, fm, fm_dir: Path, overrides: dict, log=print) -> tuple[dict, Trained]:
    """The sweeps and FM+A, as a results-file section; and the FM+A run, for the case study."""
    out = {"sweeps": {}}
    for parameter, values in STUDY_GRIDS.items():
        out["sweeps"][parameter] = sweep(dataset, parameter, values, overrides, fm_dir, log).to_dict(orient="records")
    log("study: FM+A (FM frozen, attention trained) ...")
    trained = fm_plus_attention(dataset, fm_dir, overrides)
    scores = {name: evaluate(m, dataset, "validation")["rmse"]
              for name, m in (("FM", fm), ("FM+A", trained.model))}
    out["fm_plus_attention"] = {"validation_rmse": scores, "history": trained.result.history}
    return out, trained


def case_study(fm, attentive, dataset: Dataset, split: str = "test") -> pd.DataFrame:
    """Per instance: each pair's FM interaction score (weight 1, shown as 1/P to compare with attention)
    beside the attentive model's attention and score. For FM+A the interactions are FM's own, so only the
    weights differ, as in the paper's micro-level analysis."""
    x = dataset.splits[split].x
    fm_parts, att_parts = batch_parts(fm, x), batch_parts(attentive, x)
    labels = pair_labels(dataset.field_names)
    table = pd.DataFrame({"row": np.arange(len(x)), "label": dataset.splits[split].y})
    for q, label in enumerate(labels):
        table[f"{label}: FM score"] = fm_parts["interaction"][:, q]
        table[f"{label}: attention"] = att_parts["attention"][:, q]
        table[f"{label}: attentive score"] = att_parts["contribution"][:, q]
    return table


def case_study_summary(fm, attentive, dataset: Dataset, split: str = "test") -> dict:
    """Mean attention per pair and how often each pair gets the most attention (vs FM's uniform 1/P)."""
    parts = batch_parts(attentive, dataset.splits[split].x)
    labels = pair_labels(dataset.field_names)
    top = np.bincount(parts["attention"].argmax(1), minlength=len(labels)) / len(parts["attention"])
    return {"pairs": labels, "fm_weight": [1 / len(labels)] * len(labels),
            "mean_attention": parts["attention"].mean(0).tolist(), "top_pair_share": top.tolist(),
            "most_attended_pair": labels[int(np.argmax(parts["attention"].mean(0)))]}

"""The paper's studies and its reproduction: FM, then AFM from FM's embeddings, with the paper's settings;
sweeps of the attention factor t, lambda and dropout; FM+A (FM's parameters frozen, only attention
learns); and the micro-level case study of MovieLens (which field pair gets the attention)."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from afm.checkpoints import library_versions, load_model
from afm.compare import bootstrap_comparison, paired_errors
from afm.data.dataset import Dataset
from afm.explain import batch_parts, pair_labels
from afm.paper import TEST_RMSE
from afm.presets import hyperparameters, quick_overrides
from afm.training import evaluate
from afm.workflows import fit, save_trained

SCHEMA, SCHEMA_VERSION = "afm-explorer-results", 1
STUDY_GRIDS = {"attention_factor": [1, 4, 16, 64], "l2_attention": [0.0, 1.0, 4.0, 16.0], "dropout": [0.0, 0.2, 0.5]}


def _run_record(model, result, config, dataset: Dataset, params: dict) -> dict:
    return {
        "settings": {**config.to_dict(), **{k: v for k, v in params.items() if k not in config.to_dict()}},
        "metrics": {s: evaluate(model, dataset.splits[s], dataset.label_range) for s in ("train", "validation", "test")},
        "best_epoch": result.best_epoch, "epochs_run": len(result.history) - 1, "stop_reason": result.stop_reason,
        "seconds": result.seconds, "device": result.device, "history": result.history,
    }


def reproduce(dataset: Dataset, quick: bool = False, device: str = "auto", studies: bool = False,
              log=print, fm_dir: Path | None = None, epochs: int | None = None,
              keep_models: Path | None = None, p_start: str = "ones", afm_overrides: dict | None = None) -> dict:
    """FM, then AFM from FM's embeddings (and, with `studies`, the sweeps and FM+A), as a results dict.

    `fm_dir` reuses an FM trained earlier (e.g. by a run that was cut short); `epochs` caps training;
    `keep_models` saves both models there (never commit those trained on licensed data); `afm_overrides`
    changes AFM's settings from the paper's (tuning chosen on validation; the file records them)."""
    extra = quick_overrides(dataset.name) if quick else {}
    extra["device"] = device
    if epochs:
        extra["epochs"] = epochs
    started = time.perf_counter()

    def epoch_done(epoch, batch, batches, history):
        if batch == batches:
            row = history[-1]
            log(f"  epoch {epoch}: train {row['train_rmse']:.4f}, validation {row['validation_rmse']:.4f} ({row['seconds']:.0f}s)")

    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(keep_models) if keep_models else Path(tmp)
        if fm_dir is None:
            fm_dir = models_dir / f"{dataset.name}-fm"
            log(f"training FM on {dataset.name} ...")
            fm, fm_result, fm_config = fit(dataset, "fm", extra, on_progress=epoch_done)
            save_trained(fm, dataset, fm_config, fm_result, fm_dir)
        fm_loaded = load_model(fm_dir)
        fm = fm_loaded.model
        log(f"training AFM from FM's embeddings on {dataset.name} ...")
        afm_extra = {**extra, **(afm_overrides or {}), "p_start": p_start}
        afm, afm_result, afm_config = fit(dataset, "afm", afm_extra, pretrain_dir=fm_dir, on_progress=epoch_done)
        if keep_models:
            save_trained(afm, dataset, afm_config, afm_result, models_dir / f"{dataset.name}-afm")
        results = {
            "schema": SCHEMA, "version": SCHEMA_VERSION, "kind": "reproduce", "quick": quick,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": library_versions(),
            "device": afm_result.device, "data": dataset.describe(),  # counts, names of fields, a hash: no rows
            "models": {
                "fm": _saved_record(fm_loaded, dataset),
                "afm": _run_record(afm, afm_result, afm_config, dataset, hyperparameters(dataset.name, "afm", afm_extra)),
            },
            "comparison": bootstrap_comparison(paired_errors(fm, afm, dataset, "test")).to_dict(orient="records"),
            "paper_test_rmse": TEST_RMSE.get(dataset.name, {}),
        }
        if studies:
            results["studies"] = run_studies(dataset, fm, fm_dir, afm_extra, log)  # the AFM settings used above
            if dataset.name == "movielens":
                results["case_study"] = case_study_summary(fm, results["studies"]["fm_plus_attention_model"], dataset)
            results["studies"].pop("fm_plus_attention_model", None)
    results["wall_seconds"] = time.perf_counter() - started
    return results


def _saved_record(loaded, dataset: Dataset) -> dict:
    """The same record as `_run_record`, for a model read back from its directory."""
    meta = loaded.meta
    return {
        "settings": {**meta["training"], **{k: v for k, v in meta["model"].items() if k in ("embed_dim", "dropout")}},
        "metrics": {s: evaluate(loaded.model, dataset.splits[s], dataset.label_range) for s in ("train", "validation", "test")},
        "best_epoch": meta["best_epoch"], "epochs_run": len(meta["history"]) - 1, "stop_reason": meta["stop_reason"],
        "seconds": meta["train_seconds"], "device": meta["device"], "history": meta["history"],
    }


def sweep(dataset: Dataset, parameter: str, values, overrides: dict, fm_dir: Path, log=print) -> pd.DataFrame:
    """Validation RMSE of AFM (from FM's embeddings) for each value of one hyperparameter; never the test
    split, which is not for tuning."""
    rows = []
    for value in values:
        log(f"study: AFM with {parameter}={value} ...")
        _, result, _ = fit(dataset, "afm", {**overrides, parameter: value}, pretrain_dir=fm_dir)
        rows.append({"parameter": parameter, "value": value, "validation_rmse": result.best_validation_rmse,
                     "best_epoch": result.best_epoch, "seconds": result.seconds})
    return pd.DataFrame(rows)


def fm_plus_attention(dataset: Dataset, fm, fm_dir: Path, overrides: dict):
    """FM+A: FM's embeddings and biases frozen, only the attention network (and p) trained."""
    model, result, _ = fit(dataset, "afm", {**overrides, "freeze_fm": True}, pretrain_dir=fm_dir)
    scores = {name: evaluate(m, dataset.splits["validation"], dataset.label_range)["rmse"]
              for name, m in (("FM", fm), ("FM+A", model))}
    return model, result, scores


def run_studies(dataset: Dataset, fm, fm_dir: Path, overrides: dict, log=print) -> dict:
    out = {"sweeps": {}}
    for parameter, values in STUDY_GRIDS.items():
        out["sweeps"][parameter] = sweep(dataset, parameter, values, overrides, fm_dir, log).to_dict(orient="records")
    log("study: FM+A (FM frozen, attention trained) ...")
    model, result, scores = fm_plus_attention(dataset, fm, fm_dir, overrides)
    out["fm_plus_attention"] = {"validation_rmse": scores, "history": result.history}
    out["fm_plus_attention_model"] = model
    return out


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


def results_table(results: dict) -> pd.DataFrame:
    """Our FM and AFM beside the paper (test RMSE), from a results dict."""
    rows = [{"method": "FM (ours)", "test_rmse": results["models"]["fm"]["metrics"]["test"]["rmse"]},
            {"method": "AFM (ours)", "test_rmse": results["models"]["afm"]["metrics"]["test"]["rmse"]}]
    rows += [{"method": f"{name} (paper)", "test_rmse": value} for name, value in results["paper_test_rmse"].items()]
    return pd.DataFrame(rows)


SETTINGS_SHOWN = ("optimizer", "lr", "batch_size", "embed_dim", "attention_factor", "dropout", "l2_attention",
                  "p_start")


def settings_table(results: dict) -> pd.DataFrame:
    """FM's and AFM's settings in a results file beside the reference for that data, and whether they
    differ (a tuned run says so plainly); plus each model's best and last epoch. The reference column is
    "paper" for the paper's datasets and "preset" (our defaults) for other data, which the paper never ran."""
    reference = _reference(results)
    rows = []
    for kind in ("fm", "afm"):
        record = results["models"][kind]
        preset = hyperparameters(results["data"]["name"], kind)
        for key in SETTINGS_SHOWN:
            if key in record["settings"] and (key in preset or key == "p_start"):
                ours, theirs = record["settings"][key], preset.get(key, "ones")
                rows.append({"model": kind.upper(), "setting": key, "value": str(ours), reference: str(theirs),
                             "differs": ours != theirs})
        rows.append({"model": kind.upper(), "setting": "best epoch / epochs run",
                     "value": f"{record['best_epoch']} / {record['epochs_run']}", reference: "", "differs": False})
    return pd.DataFrame(rows)


def settings_note(results: dict) -> str:
    """One line: which settings of a results file are not the reference's, and why."""
    reference = _reference(results)
    table = settings_table(results)
    changed = table[table.differs]
    theirs = "the paper's" if reference == "paper" else "our defaults"
    if changed.empty:
        return f"Settings: {theirs}."
    why = "--quick, to run in minutes" if results.get("quick") else "chosen on validation"
    return f"Settings other than {theirs} ({why}): " + ", ".join(
        f"{r.model} {r.setting} {r.value} ({reference} {getattr(r, reference)})" for r in changed.itertuples())


def _reference(results: dict) -> str:
    return "paper" if results["data"]["name"] in TEST_RMSE else "preset"  # the paper's datasets


RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def committed_results(directory: Path = RESULTS_DIR) -> dict[str, dict]:
    """The results files of full runs committed with the project (metrics only), by file stem."""
    found = {}
    for path in sorted(Path(directory).glob("*.json")):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(results, dict) and results.get("schema") == SCHEMA:
            found[path.stem] = results
    return found


def sweep_table(results: dict) -> pd.DataFrame:
    """All sweeps of a results file as one table (empty without studies)."""
    sweeps = results.get("studies", {}).get("sweeps", {})
    return pd.DataFrame([row for rows in sweeps.values() for row in rows],
                        columns=["parameter", "value", "validation_rmse", "best_epoch", "seconds"])


def case_study_table(results: dict) -> pd.DataFrame:
    """The case-study summary of a results file as a table: FM's equal weight beside mean attention."""
    case = results["case_study"]
    return pd.DataFrame({"pair": case["pairs"], "fm_weight": case["fm_weight"],
                         "mean_attention": case["mean_attention"], "top_pair_share": case["top_pair_share"]})

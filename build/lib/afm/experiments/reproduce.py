"""The paper's protocol: FM, then AFM from FM's embeddings, with the paper's settings (or settings chosen
on validation, which the results file records); optionally the studies (afm.experiments.studies)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from afm.core.paper import TEST_RMSE
from afm.data.dataset import Dataset
from afm.data.sources import quick_overrides
from afm.experiments.results import header, run_record, saved_record
from afm.experiments.studies import case_study_summary, run_studies
from afm.explain.compare import bootstrap_comparison, paired_errors
from afm.models import AFM_KIND, FM_KIND
from afm.store.checkpoints import load_model
from afm.training.workflows import fit, save_trained


def epoch_logger(log):
    """An on_progress callback that logs one line per finished epoch."""
    def epoch_done(epoch, batch, batches, history):
        if batch == batches:
            row = history[-1]
            log(f"  epoch {epoch}: train {row['train_rmse']:.4f}, validation {row['validation_rmse']:.4f} "
                f"({row['seconds']:.0f}s)")
    return epoch_done


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
    on_progress = epoch_logger(log)
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(keep_models) if keep_models else Path(tmp)
        if fm_dir is None:
            log(f"training FM on {dataset.name} ...")
            fm_trained = fit(dataset, FM_KIND, extra, on_progress=on_progress)
            fm_trained.raise_if_diverged()
            fm_dir = save_trained(fm_trained, dataset, models_dir / f"{dataset.name}-fm").path
        fm_loaded = load_model(fm_dir)
        fm = fm_loaded.model
        log(f"training AFM from FM's embeddings on {dataset.name} ...")
        afm_extra = {**extra, **(afm_overrides or {}), "p_start": p_start}
        afm = fit(dataset, AFM_KIND, afm_extra, pretrain_dir=fm_dir, on_progress=on_progress)
        afm.raise_if_diverged()
        if keep_models:
            save_trained(afm, dataset, models_dir / f"{dataset.name}-afm")
        results = {
            **header("reproduce", dataset, quick, afm.result.device),
            "models": {FM_KIND: saved_record(fm_loaded, dataset), AFM_KIND: run_record(afm, dataset)},
            "comparison": bootstrap_comparison(paired_errors(fm, afm.model, dataset, "test")).to_dict(orient="records"),
            "paper_test_rmse": TEST_RMSE.get(dataset.name, {}),
        }
        if studies:
            results["studies"], fm_plus_attention = run_studies(dataset, fm, fm_dir, afm_extra, log)
            if dataset.name == "movielens":
                results["case_study"] = case_study_summary(fm, fm_plus_attention.model, dataset)
    results["wall_seconds"] = time.perf_counter() - started
    return results

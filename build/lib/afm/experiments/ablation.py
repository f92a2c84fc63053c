"""Is it the attention? AFM differs from FM in three ways (attention, a learned p, retraining from FM's
embeddings); these runs switch them one at a time, with identical data, settings and epochs."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from afm.data.dataset import Dataset
from afm.data.sources import quick_overrides
from afm.experiments.results import header
from afm.explain.compare import bootstrap_comparison, paired_errors
from afm.explain.parts import explain_split
from afm.explain.statistics import attention_spread, importance_agreement
from afm.models import AFM_KIND, FM_KIND
from afm.models.inference import evaluate
from afm.store.checkpoints import load_model
from afm.training.workflows import fit, save_trained

VARIANTS = {  # name: (overrides on top of AFM's preset, what it isolates)
    "uniform AFM": ({"attention": False}, "attention fixed to 1/P; learned p; retrained from FM"),
    "FM+A": ({"freeze_fm": True, "p_start": "fm"}, "FM's parameters frozen; only attention (and p) learn, "
                                                   "starting as exactly the FM"),
    "AFM, lambda=0": ({"l2_attention": 0.0}, "full AFM without the L2 penalty on W"),
    "AFM": ({}, "full AFM with the paper's lambda"),
}


def ablate(dataset: Dataset, quick: bool = False, device: str = "auto", log=print, fm_dir: Path | None = None,
           epochs: int | None = None, optimizer: dict | None = None, afm_overrides: dict | None = None) -> dict:
    """FM and the AFM variants with identical data, settings and epochs. `fm_dir` reuses a trained FM;
    `optimizer` ({"optimizer", "lr"}) applies to every model trained here, `afm_overrides` to the AFMs."""
    base = quick_overrides(dataset.name) if quick else {}
    base.update({"device": device, "epochs": epochs, **(optimizer or {})})
    base = {k: v for k, v in base.items() if v is not None}
    started = time.perf_counter()
    rows, explanations, records = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        if fm_dir is None:
            log(f"ablation on {dataset.name}: FM ...")
            fm_trained = fit(dataset, FM_KIND, base)
            fm_trained.raise_if_diverged()
            fm_dir = save_trained(fm_trained, dataset, Path(tmp) / FM_KIND).path
        fm_loaded = load_model(fm_dir)
        fm, fm_device = fm_loaded.model, fm_loaded.meta["device"]
        base.update({k: v for k, v in (afm_overrides or {}).items() if v is not None})
        models = {"FM": fm}
        records["FM"] = {"meaning": "the FM every AFM starts from", "settings": fm_loaded.meta["training"],
                         "best_epoch": fm_loaded.meta["best_epoch"], "seconds": fm_loaded.meta["train_seconds"],
                         "history": fm_loaded.meta["history"]}
        for name, (overrides, meaning) in VARIANTS.items():
            log(f"ablation: {name} ...")
            trained = fit(dataset, AFM_KIND, {**base, **overrides}, pretrain_dir=fm_dir)
            trained.raise_if_diverged()
            models[name], result = trained.model, trained.result
            records[name] = {"meaning": meaning, "settings": trained.params,
                             "best_epoch": result.best_epoch, "seconds": result.seconds, "history": result.history}
        log("ablation: AFM with another seed, for stability ...")
        trained = fit(dataset, AFM_KIND, {**base, "seed": 1}, pretrain_dir=fm_dir)
        trained.raise_if_diverged()
        models["AFM, seed 1"] = trained.model
        for name, model in models.items():
            test = evaluate(model, dataset, "test")
            row = {"model": name, "test_rmse": test["rmse"], "test_mae": test["mae"]}
            if name != "FM":
                ci = bootstrap_comparison(paired_errors(fm, model, dataset, "test")).set_index("metric").loc["rmse"]
                row.update({"difference_vs_fm": ci.difference, "relative_vs_fm": ci.relative,
                            "ci_low": ci.ci_low, "ci_high": ci.ci_high})
                explanations[name] = explain_split(model, dataset, "test")
                row.update(attention_spread(explanations[name]))
            rows.append(row)
    pairs = [("AFM", "AFM, seed 1"), ("AFM", "AFM, lambda=0")]
    stability = [{"a": a, "b": b, **importance_agreement(explanations[a], explanations[b])} for a, b in pairs]
    return {**header("ablation", dataset, quick, fm_device), "table": rows, "runs": records,
            "stability": stability, "wall_seconds": time.perf_counter() - started}

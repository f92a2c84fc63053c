"""Hyperparameter search with Optuna (the field's standard tuner, rather than a loop of ours): a seeded TPE
sampler, a Hyperband pruner on the validation metric reported every epoch, one search space per
family built from one table of ranges (so two families search the same range of every setting they share),
a total epoch budget, and a rule that a configuration still improving at its cap (`still_improving`) is
trained again with the cap doubled before it may be chosen. A search keeps its trials in an Optuna journal file, so an
interrupted search resumes. It reads the train and validation splits only.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from afm.core import settings
from afm.core.errors import AFMError
from afm.core.metrics import selection_metric
from afm.core.provenance import git_state, library_versions
from afm.data.dataset import Dataset
from afm.models.families import family, hyperparameters
from afm.training.workflows import fit

# Every searched setting's range, whichever family searches it (k and the loss are fixed by the caller).
# The learning rate spans both optimizers' useful values (Adam ~1e-3, Adagrad ~1e-2 to 1e-1).
RANGES: dict[str, BaseDistribution] = {
    "optimizer": CategoricalDistribution(("adagrad", "adam")),
    "lr": FloatDistribution(1e-4, 0.2, log=True),
    "dropout": CategoricalDistribution((0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)),
    "attention_factor": CategoricalDistribution((8, 16, 32, 64, 128, 256)),
    "l2_attention": CategoricalDistribution((0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)),
}
# Hyperband: several brackets of successive halving, from one that judges at epoch 2 to one that waits
# until epoch 18 (cap 40), so a slow starter (Adagrad at a small rate) is not judged by its first epochs alone.
PRUNER = {"min_resource": 2, "reduction_factor": 3}
STARTUP_TRIALS = 5  # random trials before TPE models the results


def still_improving(record: dict) -> bool:
    """A trial that ran to its epoch cap without `patience` epochs of no improvement at its end: stopped by
    the cap while still improving (best epoch 79 of 80 is as unfinished as 80 of 80). A pruned trial, or one
    that stopped by itself, is not."""
    if record.get("stop_reason") != "finished":
        return False
    patience = record.get("patience", settings.default("patience"))
    if patience == 0:
        return record["best_epoch"] >= record["epoch_cap"]
    return record["best_epoch"] > record["epoch_cap"] - patience


def search_space(kind: str) -> dict[str, BaseDistribution]:
    """The settings family `kind` searches: those of RANGES it takes."""
    return {name: dist for name, dist in RANGES.items() if family(kind).takes(name)}


def check_grids(spaces: dict[str, dict[str, BaseDistribution]]) -> None:
    """Refuse a comparison where one side searches a narrower range of a setting both take."""
    sides = list(spaces)
    for i, a in enumerate(sides):
        for b in sides[i + 1:]:
            for name in spaces[a].keys() & spaces[b].keys():
                if spaces[a][name] != spaces[b][name]:
                    raise AFMError(f"the two sides search {name} differently ({a}: {describe(spaces[a][name])}; "
                                   f"{b}: {describe(spaces[b][name])}); a fair comparison searches one range")


def describe(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return "{" + ", ".join(str(c) for c in dist.choices) + "}"
    return f"{dist.low:g} to {dist.high:g}{' (log)' if dist.log else ''}"


def space_table(spaces: dict[str, dict[str, BaseDistribution]]) -> dict[str, dict[str, str]]:
    """What each side searched, in words (for the results file)."""
    return {side: {name: describe(dist) for name, dist in space.items()} for side, space in spaces.items()}


def preset_trial(dataset_name: str, kind: str, space: dict[str, BaseDistribution]) -> dict:
    """The family's preset for this data (the paper's configuration on its datasets), as one trial."""
    preset = hyperparameters(dataset_name, kind)
    trial = {name: preset[name] for name in space}
    for name, value in trial.items():
        if not contains(space[name], value):
            raise AFMError(f"the preset {name}={value} lies outside the searched range {describe(space[name])}")
    return trial


def contains(dist: BaseDistribution, value) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    return dist.low <= value <= dist.high


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution):
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


@dataclass(frozen=True)
class SearchBudget:
    """The same for both sides of a comparison: trials, each trial's epoch cap, the total epochs (pruned
    trials count what they ran), and how often a chosen configuration at its cap is trained again."""

    trials: int = 12
    epoch_cap: int = 40
    epoch_budget: int | None = None  # None: trials x cap / 2
    extensions: int = 2

    @property
    def total_epochs(self) -> int:
        return self.epoch_budget if self.epoch_budget is not None else max(self.trials, self.trials * self.epoch_cap // 2)

    def to_dict(self) -> dict:
        return {"trials": self.trials, "epoch_cap": self.epoch_cap, "epoch_budget": self.total_epochs,
                "extensions": self.extensions, "sampler": f"TPE (seed 0, {STARTUP_TRIALS} random trials first)",
                "pruner": f"Hyperband (min {PRUNER['min_resource']} epochs, max the cap, reduction "
                          f"{PRUNER['reduction_factor']})"}


def tune(dataset: Dataset, kind: str, base: dict, budget: SearchBudget, journal: Path, name: str,
         pretrain_dir=None, first: dict | None = None, log=print) -> dict:
    """Search family `kind`'s space on validation (seed 0 for every trial) and return the trials and the
    choice. `first`: a configuration tried first (the paper's). `journal`: the Optuna journal (resumed when
    it holds this search already)."""
    space = search_space(kind)
    metric = f"validation_{selection_metric(hyperparameters(dataset.name, kind, base)['loss'])}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
        study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True, direction="minimize",
                                    sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=STARTUP_TRIALS),
                                    pruner=optuna.pruners.HyperbandPruner(max_resource=budget.epoch_cap, **PRUNER))
    except (ValueError, KeyError, TypeError, AssertionError, OSError) as exc:  # a damaged or foreign journal
        raise AFMError(f"{journal}: the search journal cannot be read ({type(exc).__name__}); move it away to "
                       f"start the search over") from None
    plan = {"budget": budget.to_dict(), "base": {k: v for k, v in sorted(base.items()) if k != "device"},
            "data": dataset.fingerprint, "kind": kind, "pretrain": str(pretrain_dir) if pretrain_dir else None}
    recorded = study.user_attrs.get("plan")
    if recorded is None:
        study.set_user_attr("plan", plan)
    elif recorded != json.loads(json.dumps(plan)):  # a rerun with another budget, data or settings
        raise AFMError(f"{journal}: holds the search {name!r} with another budget, data or settings; use another "
                       f"--models-dir (or move it away) to search again")
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # an interrupted run's trial
    if not study.trials and first is not None:
        study.enqueue_trial(first, user_attrs={"first": True})

    def objective(trial: optuna.Trial) -> float:
        config = {key: _suggest(trial, key, dist) for key, dist in space.items()}
        cap = int(trial.user_attrs.get("epoch_cap", budget.epoch_cap))
        extension = "extends" in trial.user_attrs
        pruned = False

        def on_progress(epoch, batch, batches, history):
            nonlocal pruned
            if batch == batches and not extension:  # an epoch ended: report its best so far
                trial.report(min(row[metric] for row in history[1:]), epoch)
                pruned = trial.should_prune()

        log(f"{name} trial {trial.number}: {config}, cap {cap}" + (" (the cap doubled)" if extension else ""))
        trained = fit(dataset, kind, {**base, **config, "epochs": cap, "seed": 0}, pretrain_dir=pretrain_dir,
                      on_progress=on_progress, should_stop=lambda: pruned)
        result = trained.result
        trial.set_user_attr("epoch_cap", cap)
        record = {
            "config": config, "validation": result.best_validation, "selected_by": result.selected_by,
            "validation_rmse": result.best_row["validation_rmse"], "best_epoch": result.best_epoch,
            "epochs_run": len(result.history) - 1, "epoch_cap": cap, "patience": trained.config.patience,
            "stop_reason": "pruned" if pruned else result.stop_reason,
            "seconds": result.seconds, "git": git_state(), "versions": library_versions()}
        trial.set_user_attr("record", {**record, "at_cap": still_improving(record)})
        if pruned:
            raise optuna.TrialPruned()
        return result.best_validation if math.isfinite(result.best_validation) else float("inf")

    def searched() -> list:
        return [t for t in study.get_trials(deepcopy=False) if "record" in t.user_attrs and "extends" not in t.user_attrs]

    def spent() -> int:
        return sum(t.user_attrs["record"]["epochs_run"] for t in study.get_trials(deepcopy=False)
                   if "record" in t.user_attrs)

    while len(searched()) < budget.trials and spent() < budget.total_epochs:
        study.optimize(objective, n_trials=1)
    while sum("extends" in t.user_attrs for t in study.trials) < budget.extensions:  # counted, so a resume adds none
        best = _chosen(study)
        if best is None or not best.user_attrs["record"]["at_cap"]:
            break
        study.enqueue_trial(best.params, user_attrs={"epoch_cap": 2 * best.user_attrs["epoch_cap"], "extends": best.number})
        study.optimize(objective, n_trials=1)
    return _summary(study, name, budget)


def _chosen(study: optuna.Study):
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None


def _summary(study: optuna.Study, name: str, budget: SearchBudget) -> dict:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if "record" not in t.user_attrs:
            continue
        rows.append({"trial": t.number, **t.user_attrs["record"], "state": t.state.name.lower(),
                     **({"extends": t.user_attrs["extends"]} if "extends" in t.user_attrs else {}),
                     **({"first": True} if t.user_attrs.get("first") else {})})
    best = _chosen(study)
    if best is None:
        raise AFMError(f"{name}: no trial finished (every one was pruned or failed)")
    chosen = next(r for r in rows if r["trial"] == best.number)
    searched = [r for r in rows if "extends" not in r]
    return {"name": name, "budget": budget.to_dict(), "trials": rows, "chosen": chosen["config"],
            "chosen_trial": best.number, "chosen_validation": chosen["validation"],
            "chosen_epoch_cap": chosen["epoch_cap"], "chosen_best_epoch": chosen["best_epoch"],
            "chosen_at_cap": chosen["at_cap"], "searched": len(searched),
            "pruned": sum(r["state"] == "pruned" for r in rows),
            "ended_at_cap": sum(r["at_cap"] for r in rows), "epochs_spent": sum(r["epochs_run"] for r in rows)}

"""A fair FM vs AFM verdict. Three searches on validation with one budget (afm.experiments.tuning: the same
trials, pruner, epoch cap and total epochs, the same range of every shared setting, the paper's
configuration one trial on each side; k and the loss fixed): FM, AFM from the chosen FM (the paper's
protocol, its epochs counted with its FM's) and AFM from scratch. The choices then run with several seeds,
beside FM given AFM's epochs in all, uniform AFM (no attention) and FM+A (FM frozen, started as exactly the
FM); only those final runs are read on the test split. Each comparison gets two intervals, across seeds
(paired by seed, Student t) and per seed (paired bootstrap over instances); the verdict uses the wider. No
headline while a chosen configuration has its best epoch at its cap, or while the chosen FM is worse on
validation than an FM recorded in another results file for the same data.
"""
from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from afm.core.metrics import selection_metric
from afm.core.paper import bars_table
from afm.data.dataset import Dataset
from afm.data.sources import quick_overrides
from afm.experiments.markdown import markdown_table
from afm.experiments.results import committed_results, header
from afm.experiments.tuning import (SearchBudget, check_grids, preset_trial, search_space, space_table,
                                   still_improving, tune)
from afm.explain.compare import bootstrap_comparison, paired_errors
from afm.models import AFM_KIND, FM_KIND
from afm.models.families import hyperparameters
from afm.models.inference import evaluate
from afm.store.checkpoints import load_model
from afm.training.loop import resolve_device
from afm.training.sets import train_set

def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with df degrees of freedom (bisection on its CDF, integrated by
    Simpson's rule): enough digits for an interval."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t: float) -> float:
        x = np.linspace(0.0, t, 4001)
        y = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
        h = x[1] - x[0]
        return 0.5 + h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())

    low, high = 0.0, 1000.0
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


def seed_interval(differences: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Paired-by-seed t interval of the mean difference; NaN with fewer than two seeds."""
    n = len(differences)
    if n < 2:
        return float("nan"), float("nan")
    half = t_quantile(1 - (1 - level) / 2, n - 1) * differences.std(ddof=1) / math.sqrt(n)
    return float(differences.mean() - half), float(differences.mean() + half)


VARIANTS = {  # the final runs beside FM and AFM, each from FM seed s, with AFM's chosen settings
    "uniform AFM": {"attention": False},
    "FM+A": {"freeze_fm": True, "p_start": "fm"},
}
# (model, baseline) pairs compared on test, paired by seed; the first is the headline: AFM from the tuned FM
# against the tuned FM (the paper's protocol); then AFM from scratch, then FM given AFM's epochs in all.
COMPARISONS = (("AFM", "FM"), ("AFM (scratch)", "FM"), ("AFM", "FM (AFM's epochs)"),
               ("uniform AFM", "FM"), ("FM+A", "FM"))
SIDES = {FM_KIND: "FM", AFM_KIND: "AFM from the chosen FM", "afm-scratch": "AFM from scratch"}


STAGES = ("FM search", "FM seeds", "AFM search", "AFM-from-scratch search", "AFM seeds", "AFM-from-scratch seeds",
          "FM given AFM's epochs", "variants")


def verdict(dataset: Dataset, budget: SearchBudget = SearchBudget(), seeds: int = 5, quick: bool = False,
            device: str = "auto", models_dir: Path | None = None, log=print, fixed: dict | None = None,
            variants: bool = True, others: dict[str, dict] | None = None, on_stage=None) -> dict:
    """The whole protocol as a results dict. Three searches with one budget (FM; AFM from the chosen FM;
    AFM from scratch), then `seeds` final runs of each choice, FM again with AFM's total epochs, and the
    variants; only the final runs are read on test. `models_dir` keeps (and resumes from) the search
    journal and the final models (never commit those trained on licensed data). `fixed`: settings both
    sides share and nobody searches (loss, embed_dim). `others`: results files (by name) whose FMs on the
    same data the chosen FM must match on validation (default: the committed ones). `on_stage(results)`: called with
    the unfinished results after each stage (STAGES), so a long run leaves a file that says what it has."""
    started = time.perf_counter()
    spaces = {FM_KIND: search_space(FM_KIND), AFM_KIND: search_space(AFM_KIND)}
    check_grids(spaces)
    base = {**(quick_overrides(dataset.name) if quick else {}), **(fixed or {}), "device": device}
    fixed_settings = hyperparameters(dataset.name, FM_KIND, base)
    results = {**header("verdict", dataset, quick, str(resolve_device(device))), "protocol": 2, "finished": False,
               "budget": {**budget.to_dict(), "embed_dim": fixed_settings["embed_dim"], "loss": fixed_settings["loss"],
                          "seeds": seeds},
               "spaces": space_table({FM_KIND: spaces[FM_KIND], AFM_KIND: spaces[AFM_KIND],
                                      "afm-scratch": spaces[AFM_KIND]}),
               "search": {}, "chosen": {}, "done": [], "runs": [], "summary": [], "comparisons": []}
    stages = [s for s in STAGES if variants or s != "variants"]

    def finish_stage(name):
        results["done"].append(name)
        results["missing"] = [s for s in stages if s not in results["done"]]
        results["commits"] = run_commits(results)
        if on_stage is not None:
            on_stage(copy.deepcopy({**results, "wall_seconds": time.perf_counter() - started}))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(models_dir) if models_dir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        journal = root / "search.journal"  # a rerun with the same --models-dir resumes every search

        def search(kind, name, stage, pretrain_dir=None):
            searched = tune(dataset, kind, base, budget, journal, name, pretrain_dir,
                            first=preset_trial(dataset.name, kind, spaces[kind]), log=log)
            results["search"][name], results["chosen"][name] = searched, searched["chosen"]
            if name == FM_KIND:
                results["sanity"] = sanity_check(results, committed_results() if others is None else others)
            finish_stage(stage)
            return searched

        def final(kind, searched, folder, pretrain=None, extra=None, seed_list=None):
            settings = {**base, **searched["chosen"], "epochs": searched["chosen_epoch_cap"], **(extra or {})}
            return train_set(dataset, kind, root / folder, seed_list or list(range(seeds)), settings,
                             pretrain_dir=pretrain, log=log)

        fm_search = search(FM_KIND, FM_KIND, "FM search")
        log(f"FM chosen on validation: {fm_search['chosen']}; {seeds} seeds ...")
        runs = {"FM": final(FM_KIND, fm_search, FM_KIND)}
        finish_stage("FM seeds")
        afm_search = search(AFM_KIND, AFM_KIND, "AFM search", pretrain_dir=runs["FM"][0])
        afm_search["epochs_with_fm"] = afm_search["epochs_spent"] + fm_search["epochs_spent"]
        scratch_search = search(AFM_KIND, "afm-scratch", "AFM-from-scratch search")
        runs["AFM"] = final(AFM_KIND, afm_search, AFM_KIND, pretrain=root / FM_KIND)
        finish_stage("AFM seeds")
        runs["AFM (scratch)"] = final(AFM_KIND, scratch_search, "afm-scratch")
        finish_stage("AFM-from-scratch seeds")
        runs["FM (AFM's epochs)"] = [  # FM given as many epochs as AFM used in all (its FM's and its own)
            final(FM_KIND, fm_search, "fm-afm-epochs", extra={"epochs": _total_epochs(afm, fm), "patience": 0},
                  seed_list=[seed])[0] for seed, (fm, afm) in enumerate(zip(runs["FM"], runs["AFM"]))]
        finish_stage("FM given AFM's epochs")
        for name, extra in (VARIANTS.items() if variants else ()):
            folder = name.lower().replace(" ", "-").replace("+", "-plus-")
            runs[name] = final(AFM_KIND, afm_search, folder, pretrain=root / FM_KIND, extra=extra)
        rows = final_runs(runs, dataset)
    results["summary"], results["comparisons"] = summarize_runs(rows)
    results.update(runs=rows, finished=True, device=rows[0]["device"], done=stages, missing=[],
                   commits=run_commits(results))
    return {**results, "wall_seconds": time.perf_counter() - started}


def _total_epochs(afm_dir: Path, fm_dir: Path) -> int:
    return _epochs_run(load_model(afm_dir).meta) + _epochs_run(load_model(fm_dir).meta)


def _epochs_run(meta: dict) -> int:
    return len(meta.get("history", [])) - 1


def final_runs(runs: dict[str, list[Path]], dataset: Dataset) -> list[dict]:
    """The chosen runs, read on the test split (the only place that reads it), each with the commit and
    library versions it was trained with, its epochs (an AFM from FM counts its FM's), and each seed's
    paired bootstrap against its baselines of the same seed (COMPARISONS)."""
    loaded = {name: {path.name: load_model(path) for path in paths} for name, paths in runs.items()}
    rows = []
    for name, members in loaded.items():
        for member, model in members.items():
            meta = model.meta
            test = evaluate(model.model, dataset, "test")
            settings = {**meta["training"], **meta.get("start", {})}
            own = _epochs_run(meta)
            fm_epochs = _epochs_run(loaded["FM"][member].meta) if "pretrained_from" in meta else 0  # AFM from FM
            row = {"model": name, "seed": int(member.split("-")[1]),
                   **{f"test_{key}": value for key, value in test.items() if key != "n"},
                   **{f"validation_{key}": value for key, value in meta["metrics"]["validation"].items() if key != "n"},
                   "best_epoch": meta["best_epoch"], "epoch_cap": meta["training"]["epochs"], "epochs_run": own,
                   "total_epochs": own + fm_epochs, "device": meta["device"], "settings": settings,
                   "git": meta.get("git", {}), "versions": meta.get("versions", {})}
            versus = {}
            for model_name, baseline in COMPARISONS:
                if model_name == name and baseline in loaded and member in loaded[baseline]:
                    cis = bootstrap_comparison(paired_errors(loaded[baseline][member].model, model.model, dataset, "test"))
                    versus[baseline] = {ci.metric: {"difference": float(ci.difference), "low": float(ci.ci_low),
                                                    "high": float(ci.ci_high)}
                                        for ci in cis.itertuples() if ci.metric in VERDICT_METRICS}
            if versus:
                row["versus"] = versus
            rows.append(row)
    return rows


def recorded_fms(others: dict[str, dict], fingerprint: str, loss: str, embed_dim: int) -> list[dict]:
    """Every FM run recorded in other results files on the same data (fingerprint), loss and k, with its
    validation metrics: reproduce files' FM, ablation files' FM, verdict files' FM runs."""
    found = []
    for file, results in others.items():
        if results.get("data", {}).get("fingerprint") != fingerprint:
            continue
        candidates = []
        if isinstance(results.get("models"), dict) and FM_KIND in results["models"]:  # reproduce: by family
            candidates.append((FM_KIND, results["models"][FM_KIND]))
        if results.get("kind") == "ablation" and isinstance(results.get("runs"), dict) and "FM" in results["runs"]:
            candidates.append(("FM", results["runs"]["FM"]))
        if results.get("kind") == "verdict":
            candidates += [(f"{r['model']} seed {r['seed']}", {"settings": r.get("settings", {}), "metrics": {
                "validation": {k[len("validation_"):]: v for k, v in r.items() if k.startswith("validation_")}}})
                for r in results.get("runs", []) if r.get("model", "").startswith("FM") and r["model"] != "FM+A"]
        for where, record in candidates:
            settings = record.get("settings", {})
            if settings.get("loss", "squared") != loss or settings.get("embed_dim") != embed_dim:
                continue
            validation = record.get("metrics", {}).get("validation", {})
            metric = selection_metric(loss)
            if metric in validation:
                found.append({"file": file, "kind": results.get("kind"), "run": where,
                              "data": results["data"]["name"], "validation": float(validation[metric])})
    return found


def sanity_check(results: dict, others: dict[str, dict]) -> dict:
    """Is the verdict's chosen FM at least as good on validation as every FM the project recorded for the
    same data, loss and k? Where not, the verdict prints no headline."""
    budget = results["budget"]
    recorded = recorded_fms(others, results["data"]["fingerprint"], budget["loss"], budget["embed_dim"])
    ours = results["search"][FM_KIND]["chosen_validation"]
    best = min(recorded, key=lambda r: r["validation"]) if recorded else None
    return {"metric": selection_metric(budget["loss"]), "chosen_fm_validation": ours, "recorded": len(recorded),
            "best_recorded": best, "passes": best is None or ours <= best["validation"] + 1e-4}


def run_commits(results: dict) -> list[str]:
    """The distinct commits the file's runs (final and searched) were trained at; more than one is said."""
    commits = [r.get("git", {}).get("commit") for r in results.get("runs", [])]
    for searched in results.get("search", {}).values():
        if isinstance(searched, dict):
            commits += [t.get("git", {}).get("commit") for t in searched.get("trials", [])]
    return sorted({c or "not recorded" for c in commits})


VERDICT_METRICS = {"rmse": "RMSE", "logloss": "logloss", "auc": "AUC"}  # which are compared, as named


def _versus(row: dict, baseline: str, metric: str):
    """A run row's bootstrap against `baseline` on `metric`: (low, high); files before the nested form
    kept the one baseline FM in flat keys."""
    if "versus" in row:
        ci = row["versus"].get(baseline, {}).get(metric)
        return (ci["low"], ci["high"]) if ci else (math.nan, math.nan)
    prefix = "" if metric == "rmse" else f"{metric}_"
    if baseline != "FM" or f"{prefix}bootstrap_low" not in row:
        return math.nan, math.nan
    return row[f"{prefix}bootstrap_low"], row[f"{prefix}bootstrap_high"]


def summarize_runs(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Mean and standard deviation per model of each test metric (and of the epochs it used in all); and
    per comparison (COMPARISONS, or every model against FM in older files), per metric: the mean
    difference, the across-seed t interval, the widest per-seed bootstrap interval, and the verdict
    interval (the wider). The first metric is the headline: logloss for logistic models, else RMSE."""
    table = pd.DataFrame(rows)
    metrics = [m for m in ("logloss", "rmse", "auc") if f"test_{m}" in table]
    summary = []
    for name, part in table.groupby("model", sort=False):
        row = {"model": name, "mean": float(part[f"test_{metrics[0]}"].mean()),
               "std": float(part[f"test_{metrics[0]}"].std()), "seeds": len(part)}
        for m in metrics[1:]:
            row.update({f"{m}_mean": float(part[f"test_{m}"].mean()), f"{m}_std": float(part[f"test_{m}"].std())})
        if "total_epochs" in part:
            row["epochs_in_all"] = float(part["total_epochs"].mean())
        summary.append({**row, "metric": metrics[0]})
    names = set(table.model)
    pairs = [p for p in COMPARISONS if set(p) <= names] if "versus" in table else         [(name, "FM") for name in table.model.unique() if name != "FM"]
    comparisons = []
    for metric in metrics:
        for name, baseline in pairs:
            base = table[table.model == baseline].set_index("seed")[f"test_{metric}"]
            part = table[table.model == name].set_index("seed")
            differences = (part[f"test_{metric}"] - base.reindex(part.index)).to_numpy()
            seed_low, seed_high = seed_interval(differences)
            bounds = [_versus(row, baseline, metric) for row in part.to_dict("records")]
            boot_half = float(np.nanmax([(high - low) / 2 for low, high in bounds])) if bounds else math.nan
            mean = float(differences.mean())
            seed_half = (seed_high - seed_low) / 2 if not math.isnan(seed_low) else float("nan")
            half = boot_half if math.isnan(seed_half) else max(seed_half, boot_half)
            comparisons.append({"model": name, "baseline": baseline, "metric": metric, "mean_difference": mean,
                                "relative": mean / float(base.mean()), "seed_low": seed_low, "seed_high": seed_high,
                                "bootstrap_half_width": boot_half, "verdict_low": mean - half,
                                "verdict_high": mean + half,
                                "interval_used": "per-seed bootstrap" if half == boot_half else "across-seed t interval"})
    return summary, comparisons


def _headline(results: dict) -> tuple[str, dict[tuple[str, str], dict]]:
    """The headline metric and each comparison on it, by (model, baseline) (older files: RMSE, against FM)."""
    if not results["comparisons"]:  # an unfinished run
        return selection_metric(results["budget"]["loss"]), {}
    metric = results["comparisons"][0].get("metric", "rmse")
    return metric, {(c["model"], c.get("baseline", "FM")): c for c in results["comparisons"]
                    if c.get("metric", "rmse") == metric}


def blockers(results: dict) -> list[str]:
    """Why the file may not call a winner: a chosen configuration still improving at its cap when the search
    chose it (`still_improving`), a chosen FM worse on validation than one the project recorded
    elsewhere, or a file that predates these checks."""
    found = []
    for side, searched in results.get("search", {}).items():
        label = SIDES.get(side, side)
        if isinstance(searched, dict):  # the tuned protocol
            chosen = next((t for t in searched["trials"] if t["trial"] == searched["chosen_trial"]), {})
            if searched["chosen_at_cap"] or (chosen and still_improving(chosen)):
                found.append(f"the chosen {label} configuration was still improving at its cap (best epoch "
                             f"{searched['chosen_best_epoch']} of {searched['chosen_epoch_cap']})")
            continue
        cap = results["budget"][side]["epoch_cap"]  # an older file: a list of rows, one cap for all
        chosen = next((r for r in searched if r["config"] == results["chosen"][side]), None)
        if chosen is not None and chosen["best_epoch"] >= cap:
            found.append(f"the chosen {label} configuration has its best epoch at the search cap ({cap})")
    sanity = results.get("sanity")
    if sanity is None:
        found.append("the chosen FM was not checked against the project's other FM runs (an older file)")
    elif not sanity["passes"]:
        best = sanity["best_recorded"]
        found.append(f"the chosen FM (validation {sanity['metric']} {sanity['chosen_fm_validation']:.4f}) is worse "
                     f"than an FM recorded in {best['file']} ({best['run']}: {best['validation']:.4f})")
    return found


def _outcome(c: dict, metric: str) -> str:
    """What a comparison's verdict interval says, in words: is better than, is worse than, or cannot be told
    apart from (the interval holds zero). Lower is better but for AUC."""
    better = c["verdict_high"] < 0 if metric != "auc" else c["verdict_low"] > 0
    worse = c["verdict_low"] > 0 if metric != "auc" else c["verdict_high"] < 0
    return "is better than" if better else "is worse than" if worse else "cannot be told apart from"


def _claim(c: dict, metric: str, against: str) -> str:
    word = _outcome(c, metric)
    size = f" by {abs(c['relative']):.1%}" if word != "cannot be told apart from" else f" ({c['relative']:+.1%})"
    return (f"{word} {against}{size} (test {VERDICT_METRICS[metric]} difference {c['mean_difference']:+.4f}, "
            f"interval [{c['verdict_low']:+.4f}, {c['verdict_high']:+.4f}] from the {c['interval_used']})")


def verdict_sentence(results: dict) -> str:
    """The verdict in words, whichever way it comes out; no headline while a blocker stands."""
    if not results.get("finished", True):
        stops = blockers(results)
        return (f"No verdict yet: the run is unfinished (done: {', '.join(results['done']) or 'nothing'}; missing: "
                f"{', '.join(results['missing'])})." + (" Already: " + "; ".join(stops) + "." if stops else ""))
    metric, comparisons = _headline(results)
    epochs = {row["model"]: row.get("epochs_in_all") for row in results["summary"]}
    afm = comparisons[("AFM", "FM")]
    if "protocol" in results:
        lead = (f"AFM from the tuned FM (the paper's protocol, {epochs['AFM']:.0f} epochs in all with its FM's) "
                + _claim(afm, metric, f"the tuned FM ({epochs['FM']:.0f} epochs)"))
    else:
        lead = "AFM " + _claim(afm, metric, "the tuned FM")
    parts = [lead]
    for (name, baseline), c in comparisons.items():
        if (name, baseline) == ("AFM", "FM"):
            continue
        if name in VARIANTS:
            parts.append(f"{name} {c['relative']:+.1%} [{c['verdict_low']:+.4f}, {c['verdict_high']:+.4f}]")
        else:
            parts.append(f"{name} {_claim(c, metric, baseline)}")
    capped = capped_runs(results)
    note = "" if not capped else (" Caution: best epoch at the epoch cap (still improving) for " + ", ".join(
        f"{name} in {count} of {total} seeds" for name, (count, total) in capped.items())
        + "; a longer cap could change the difference.")
    text = "; ".join(parts) + "." + note
    stops = blockers(results)
    if stops:
        return "No verdict: " + "; ".join(stops) + ". What the runs gave: " + text
    return text


IN_WORDS = {"AFM": "AFM trained from the tuned FM (the paper's protocol)", "AFM (scratch)": "AFM trained from scratch",
            "FM": "the tuned FM", "FM (AFM's epochs)": "FM given as many epochs as AFM had in all",
            "uniform AFM": "AFM without attention", "FM+A": "attention on top of the frozen FM"}


def verdict_words(results: dict) -> str:
    """The verdict in words alone, numbers left to `verdict_sentence`: what beats what by the headline
    metric, or why there is no verdict yet."""
    if not results.get("finished", True):
        return f"No verdict yet: the run is unfinished ({', '.join(results['missing'])} still to run)."
    metric, comparisons = _headline(results)
    parts = []
    for (name, baseline), c in comparisons.items():
        parts.append(f"{IN_WORDS.get(name, name)} {_outcome(c, metric)} {IN_WORDS.get(baseline, baseline)}")
    text = f"By test {VERDICT_METRICS[metric]}: " + "; ".join(parts) + "."
    if blockers(results):
        return "No verdict: a check failed (below), so this is what the runs gave, not a result. " + text
    return text


def verdict_overview(files: dict[str, dict]) -> pd.DataFrame:
    """Every verdict file side by side: its data, loss and k, the budget each side was given, the seeds,
    whether it may call a winner, and the verdict in words."""
    rows = []
    for name, results in files.items():
        if results.get("kind") != "verdict":
            continue
        budget = results.get("budget", {})
        rows.append({"file": name, "data": results["data"].get("name"), "loss": budget.get("loss"),
                     "k": budget.get("embed_dim"), "trials_a_side": budget.get("trials"),
                     "epoch_cap": budget.get("epoch_cap"), "epochs_a_search": budget.get("epoch_budget"),
                     "seeds": budget.get("seeds"),
                     "state": "unfinished" if not results.get("finished", True)
                     else "no headline (a check failed)" if blockers(results) else "headline",
                     "verdict": verdict_words(results)})
    return pd.DataFrame(rows)


def capped_runs(results: dict) -> dict[str, tuple[int, int]]:
    """Per model, how many final runs had their best epoch at the epoch cap (so were still improving when
    stopped) out of how many; files before the cap was recorded say nothing. FM given AFM's epochs runs
    to its cap by design and is left out."""
    table = pd.DataFrame(results["runs"])
    if "epoch_cap" not in table:
        return {}
    out = {}
    for name, part in table.groupby("model", sort=False):
        count = int((part.best_epoch >= part.epoch_cap).sum())
        if count and name != "FM (AFM's epochs)":
            out[name] = (count, len(part))
    return out


def commits_note(results: dict) -> str:
    """One line where a file's runs come from more than one commit (or from none it recorded)."""
    commits = results.get("commits") or run_commits(results)
    if len(commits) > 1:
        return "The runs in this file were trained at " + str(len(commits)) + " commits: " + ", ".join(
            c[:10] for c in commits) + "."
    if commits == ["not recorded"]:
        return "The runs in this file record no commit of their own (an older file); its header names the last."
    return ""


def budget_table(results: dict) -> pd.DataFrame:
    """Each side's search: what it searched, what it spent and chose, how many trials ended at their cap."""
    searches = results["search"]
    rows = []
    for side, searched in searches.items():
        if isinstance(searched, dict):
            rows.append({"side": SIDES.get(side, side), "trials": searched["searched"], "pruned": searched["pruned"],
                         "ended at cap": searched["ended_at_cap"], "epochs spent": searched["epochs_spent"],
                         "epochs with its FM's": searched.get("epochs_with_fm", searched["epochs_spent"]),
                         "epoch budget": searched["budget"]["epoch_budget"],
                         "chosen": ", ".join(f"{k}={_short(v)}" for k, v in searched["chosen"].items()),
                         f"chosen validation {_selected(searched)}": searched["chosen_validation"],
                         "chosen best epoch / cap": f"{searched['chosen_best_epoch']} / {searched['chosen_epoch_cap']}"})
        else:
            b = results["budget"][side]
            rows.append({"side": side.upper(), "trials": b["configurations"], "epoch cap": b["epoch_cap"],
                         "chosen": ", ".join(f"{k}={v}" for k, v in results["chosen"][side].items())})
    return pd.DataFrame(rows)


def _selected(searched: dict) -> str:
    return next((t.get("selected_by", "rmse") for t in searched["trials"]), "rmse")


def sanity_line(results: dict) -> str:
    """The check against the project's other FM runs, in one line."""
    sanity = results.get("sanity")
    if not sanity:
        return ""
    best = sanity["best_recorded"]
    if best is None:
        return "No other results file records an FM on this data, loss and k to check the chosen FM against."
    verdict = "at least as good as" if sanity["passes"] else "worse than"
    return (f"The chosen FM (validation {sanity['metric']} {sanity['chosen_fm_validation']:.4f}) is {verdict} the best "
            f"of {sanity['recorded']} FM runs recorded in other results files ({best['file']}, {best['run']}: "
            f"{best['validation']:.4f}).")


def _short(value):
    return f"{value:.3g}" if isinstance(value, float) else value


def search_table(results: dict) -> pd.DataFrame:
    """Every searched configuration (validation only)."""
    rows = []
    for side, searched in results["search"].items():
        trials = searched["trials"] if isinstance(searched, dict) else searched
        for row in trials:
            rows.append({"side": SIDES.get(side, side.upper()), **({"trial": row["trial"], "state": row["state"]}
                                                               if "trial" in row else {}),
                         **row["config"], "validation_rmse": row["validation_rmse"],
                         **({f"validation_{row['selected_by']}": row["validation"]}
                            if row.get("selected_by", "rmse") != "rmse" else {}),
                         "best_epoch": row["best_epoch"], **({"epoch_cap": row["epoch_cap"]} if "epoch_cap" in row else {})})
    return pd.DataFrame(rows)


def verdict_tables(results: dict, others: list[dict] = ()) -> dict[str, pd.DataFrame]:
    """A verdict results file as tables: each side's search and budget, the test metrics per model (mean,
    std over seeds; the headline metric first), each comparison with both intervals (per metric where
    there are several), and the search (validation only). `others`: see reference_table."""
    headline, _ = _headline(results)
    names = {"mean": f"test {VERDICT_METRICS[headline]} (mean)", "std": "std over seeds", "epochs_in_all": "epochs in all"}
    for metric, label in VERDICT_METRICS.items():
        names.update({f"{metric}_mean": f"test {label} (mean)", f"{metric}_std": f"{label} std"})
    summary = pd.DataFrame(results["summary"]).drop(columns=["metric"], errors="ignore").rename(columns=names)
    columns = ["model", "baseline", "mean_difference", "relative", "seed_low", "seed_high", "bootstrap_half_width",
               "verdict_low", "verdict_high", "interval_used"]
    comparisons = pd.DataFrame(results["comparisons"], columns=None if results["comparisons"] else columns)
    if "baseline" not in comparisons:
        comparisons["baseline"] = "FM"
    several = comparisons.get("metric", pd.Series(["rmse"])).nunique() > 1
    comparisons = comparisons[(["metric"] if several else []) + columns]
    tables = {"budget": budget_table(results), "summary": summary, "comparisons": comparisons,
              "search": search_table(results)}
    if headline == "logloss" and results["summary"]:  # a logistic verdict: beside the field's public leaderboard, where it has the data
        tables["reference"] = reference_table(results, others)
    return tables


def reference_table(results: dict, others: list[dict] = ()) -> pd.DataFrame:
    """Our FM and AFM (mean over seeds) beside the BARS leaderboard's figures for the same data (FuxiCTR,
    embedding size 10; their train split is the original Frappe's, ours is reconstructed). `others`: more
    results files; the logistic verdicts on the same data add their own columns (another embedding size
    beside this one), so the leaderboard, k = 10 and k = 256 read in one table."""
    bars = bars_table(results["data"]["name"])
    bars = bars[bars.method.isin({row["model"] for row in results["summary"]})].reset_index(drop=True)  # FM, AFM
    if bars.empty:
        return bars
    for verdict_results in [results, *others]:
        if (verdict_results.get("kind") != "verdict" or verdict_results["data"]["name"] != results["data"]["name"]
                or _headline(verdict_results)[0] != "logloss"):
            continue
        ours = {row["model"]: row for row in verdict_results["summary"]}
        budget = verdict_results["budget"]
        k = budget["embed_dim"] if "embed_dim" in budget else budget[FM_KIND]["embed_dim"]
        bars[f"ours_test_auc (k={k})"] = bars.method.map(lambda m: ours.get(m, {}).get("auc_mean", math.nan))
        bars[f"ours_test_logloss (k={k})"] = bars.method.map(lambda m: ours.get(m, {}).get("mean", math.nan))
    return bars


def verdict_markdown(results: dict) -> str:
    tables = verdict_tables(results)
    comparisons = tables["comparisons"].drop(columns=["bootstrap_half_width"])
    notes = [line for line in (commits_note(results), sanity_line(results)) if line]
    parts = [verdict_sentence(results), *[x for line in notes for x in ("", line)], "",
             markdown_table(tables["budget"], 4)]
    if not tables["summary"].empty:
        parts += ["", markdown_table(tables["summary"], 4), "", markdown_table(comparisons, 4)]
    if not tables.get("reference", pd.DataFrame()).empty:
        parts += ["", markdown_table(tables["reference"], 4)]
    if "protocol" in results:  # every trial, validation only
        parts += ["", "Every trial of the searches (validation only; pruned trials stopped at a Hyperband rung):", "",
                  markdown_table(tables["search"], 4)]
    return "\n".join(parts)

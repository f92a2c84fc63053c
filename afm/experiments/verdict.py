"""A fair FM vs AFM verdict. Both sides get the same search budget on validation (the same number of
configurations, the same epoch cap; k fixed), the chosen FM and AFM then run with several seeds beside
uniform AFM (no attention) and FM+A (FM frozen, started as exactly the FM), and only those finished, chosen
runs are read on the test split. AFM vs FM gets two intervals, across seeds (paired by seed, Student t) and
per seed (paired bootstrap over instances); the verdict uses the wider.
"""
from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from afm.core.paper import bars_table
from afm.data.dataset import Dataset
from afm.data.sources import quick_overrides
from afm.experiments.markdown import markdown_table
from afm.experiments.reproduce import epoch_logger
from afm.experiments.results import header, run_record
from afm.explain.compare import bootstrap_comparison, paired_errors
from afm.models import AFM_KIND, FM_KIND
from afm.models.families import hyperparameters
from afm.models.inference import evaluate
from afm.store.checkpoints import load_model
from afm.training.sets import train_set
from afm.training.workflows import fit

SEARCH = {  # what each side may change (k fixed); AFM also its attention factor and lambda
    FM_KIND: {"optimizer": ("adagrad", "adam"), "dropout": (0.0, 0.2, 0.3, 0.5)},
    AFM_KIND: {"optimizer": ("adagrad", "adam"), "dropout": (0.0, 0.2, 0.3, 0.5),
            "attention_factor": (16, 64, 256), "l2_attention": (0.0, 1.0, 4.0, 16.0)},
}
LEARNING_RATES = {"adagrad": (0.005, 0.01, 0.015, 0.05, 0.1), "adam": (3e-4, 1e-3, 3e-3)}
VARIANTS = {  # the final runs beside FM and AFM, each from FM seed s
    "uniform AFM": {"attention": False},
    "FM+A": {"freeze_fm": True, "p_start": "fm"},
}


def candidate_configs(dataset_name: str, kind: str, count: int, seed: int = 0) -> list[dict]:
    """`count` distinct configurations: the preset (the paper's, on its datasets) first, then random ones."""
    preset = hyperparameters(dataset_name, kind)
    space = SEARCH[kind]
    configs = [{**{k: preset[k] for k in space}, "lr": preset["lr"]}]
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        if len(configs) >= count:
            break
        config = {k: values[rng.integers(len(values))] for k, values in space.items()}
        config["lr"] = LEARNING_RATES[config["optimizer"]][rng.integers(len(LEARNING_RATES[config["optimizer"]]))]
        config = {k: (v.item() if hasattr(v, "item") else v) for k, v in config.items()}
        if config not in configs:
            configs.append(config)
    return configs


def search(dataset: Dataset, kind: str, configs: list[dict], base: dict, pretrain_dir=None, log=print,
           cache: Path | None = None) -> list[dict]:
    """Train each configuration (seed 0) and record its validation metric (RMSE, or logloss for logistic
    loss) at the best epoch; never the test split. With `cache` (a JSON file), rows already searched with
    the same data, base settings and configuration are read back, and each new row is added as it finishes,
    so an interrupted verdict resumes its search."""
    key = json.dumps({"data": dataset.fingerprint, "kind": kind, "base": base,
                      "pretrain": str(pretrain_dir) if pretrain_dir else None}, sort_keys=True, default=str)
    cached = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    rows = []
    for i, config in enumerate(configs):
        found = next((row for row in cached.get(key, []) if row["config"] == config), None)
        if found is not None:
            log(f"search {kind.upper()} {i + 1}/{len(configs)}: {config} (done before)")
            rows.append(found)
            continue
        log(f"search {kind.upper()} {i + 1}/{len(configs)}: {config}")
        trained = fit(dataset, kind, {**base, **config, "seed": 0}, pretrain_dir=pretrain_dir)
        record = run_record(trained, dataset, final=False)
        rows.append({"config": config, "validation": trained.result.best_validation,
                     "selected_by": trained.result.selected_by,
                     "validation_rmse": trained.result.best_row["validation_rmse"], "best_epoch": record["best_epoch"], "epochs_run": record["epochs_run"],
                     "stop_reason": record["stop_reason"], "seconds": record["seconds"]})
        if cache is not None:
            cached.setdefault(key, []).append(rows[-1])
            tmp = cache.with_name(cache.name + ".tmp")
            tmp.write_text(json.dumps(cached, indent=1), encoding="utf-8")
            tmp.replace(cache)
    return rows


def _validation(row: dict) -> float:
    return row.get("validation", row.get("validation_rmse"))  # files before logistic loss: RMSE


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


def verdict(dataset: Dataset, configs: int = 6, search_epochs: int = 10, seeds: int = 5, epochs: int | None = None,
            quick: bool = False, device: str = "auto", models_dir: Path | None = None, log=print,
            fixed: dict | None = None) -> dict:
    """The whole protocol as a results dict. `models_dir` keeps (and resumes from) the final runs' models
    (never commit those trained on licensed data). `fixed`: settings both sides share and nobody searches
    (loss, embed_dim)."""
    started = time.perf_counter()
    base = {**(quick_overrides(dataset.name) if quick else {}), **(fixed or {}), "device": device}
    search_base = {**base, "epochs": search_epochs}
    final_base = {**base, **({"epochs": epochs} if epochs else {})}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(models_dir) if models_dir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        cache = root / "search.json"  # a rerun with the same --models-dir resumes the search
        fm_rows = search(dataset, FM_KIND, candidate_configs(dataset.name, FM_KIND, configs), search_base, log=log,
                         cache=cache)
        fm_best = min(fm_rows, key=_validation)["config"]
        log(f"FM chosen on validation: {fm_best}; {seeds} seeds ...")
        fm_dirs = train_set(dataset, FM_KIND, root / FM_KIND, list(range(seeds)), {**final_base, **fm_best}, log=log,
                            on_progress=epoch_logger(log))
        afm_rows = search(dataset, AFM_KIND, candidate_configs(dataset.name, AFM_KIND, configs), search_base,
                          pretrain_dir=fm_dirs[0], log=log, cache=cache)
        afm_best = min(afm_rows, key=_validation)["config"]
        log(f"AFM chosen on validation: {afm_best}; {seeds} seeds and the variants ...")
        runs = {"FM": fm_dirs}
        for name, extra in {"AFM": {}, **VARIANTS}.items():
            folder = root / name.lower().replace(" ", "-").replace("+", "-plus-")
            runs[name] = train_set(dataset, AFM_KIND, folder, list(range(seeds)), {**final_base, **afm_best, **extra},
                                   pretrain_dir=root / FM_KIND, log=log)
        final = final_runs(runs, dataset)
    summary, comparisons = summarize_runs(final)
    chosen_settings = hyperparameters(dataset.name, FM_KIND, base)
    budget = {"configurations": configs, "epoch_cap": search_epochs, "seed": 0,
              "embed_dim": chosen_settings["embed_dim"], "loss": chosen_settings["loss"]}
    return {**header("verdict", dataset, quick, final[0]["device"]),
            "budget": {FM_KIND: budget, AFM_KIND: budget}, "search": {FM_KIND: fm_rows, AFM_KIND: afm_rows},
            "chosen": {FM_KIND: fm_best, AFM_KIND: afm_best}, "runs": final, "summary": summary,
            "comparisons": comparisons, "wall_seconds": time.perf_counter() - started}


def final_runs(runs: dict[str, list[Path]], dataset: Dataset) -> list[dict]:
    """The chosen runs, read on the test split (the only place that reads it), and each seed's paired
    bootstrap against the FM of the same seed."""
    fms = {path.name: load_model(path).model for path in runs["FM"]}
    rows = []
    for name, paths in runs.items():
        for path in paths:
            loaded = load_model(path)
            test = evaluate(loaded.model, dataset, "test")
            row = {"model": name, "seed": int(path.name.split("-")[1]),
                   **{f"test_{key}": value for key, value in test.items() if key != "n"},
                   **{f"validation_{key}": value for key, value in loaded.meta["metrics"]["validation"].items()
                      if key != "n"},
                   "best_epoch": loaded.meta["best_epoch"], "epoch_cap": loaded.meta["training"]["epochs"],
                   "device": loaded.meta["device"],
                   "settings": {**loaded.meta["training"], **loaded.meta.get("start", {})}}
            if name != "FM":
                cis = bootstrap_comparison(paired_errors(fms[path.name], loaded.model, dataset, "test"))
                for ci in cis.itertuples():
                    if ci.metric in VERDICT_METRICS:
                        prefix = "" if ci.metric == "rmse" else f"{ci.metric}_"  # rmse keeps its older names
                        row.update({f"{prefix}difference_vs_fm": float(ci.difference),
                                    f"{prefix}bootstrap_low": float(ci.ci_low),
                                    f"{prefix}bootstrap_high": float(ci.ci_high)})
            rows.append(row)
    return rows


VERDICT_METRICS = {"rmse": "RMSE", "logloss": "logloss", "auc": "AUC"}  # which are compared, as named


def summarize_runs(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Mean and standard deviation per model of each test metric; and per variant against FM, per metric:
    the mean difference, the across-seed t interval, the widest per-seed bootstrap interval, and the
    verdict interval (the wider). The first metric is the headline: logloss for logistic models, else RMSE."""
    table = pd.DataFrame(rows)
    metrics = [m for m in ("logloss", "rmse", "auc") if f"test_{m}" in table]
    summary = []
    for name, part in table.groupby("model", sort=False):
        row = {"model": name, "mean": float(part[f"test_{metrics[0]}"].mean()),
               "std": float(part[f"test_{metrics[0]}"].std()), "seeds": len(part)}
        for m in metrics[1:]:
            row.update({f"{m}_mean": float(part[f"test_{m}"].mean()), f"{m}_std": float(part[f"test_{m}"].std())})
        summary.append({**row, "metric": metrics[0]})
    comparisons = []
    for metric in metrics:
        prefix = "" if metric == "rmse" else f"{metric}_"
        fm = table[table.model == "FM"].set_index("seed")[f"test_{metric}"]
        for name, part in table[table.model != "FM"].groupby("model", sort=False):
            part = part.set_index("seed")
            differences = (part[f"test_{metric}"] - fm.reindex(part.index)).to_numpy()
            seed_low, seed_high = seed_interval(differences)
            boot_half = float(np.max((part[f"{prefix}bootstrap_high"] - part[f"{prefix}bootstrap_low"]) / 2))
            mean = float(differences.mean())
            seed_half = (seed_high - seed_low) / 2 if not math.isnan(seed_low) else float("nan")
            half = boot_half if math.isnan(seed_half) else max(seed_half, boot_half)
            comparisons.append({"model": name, "metric": metric, "mean_difference": mean,
                                "relative": mean / float(fm.mean()), "seed_low": seed_low, "seed_high": seed_high,
                                "bootstrap_half_width": boot_half, "verdict_low": mean - half,
                                "verdict_high": mean + half,
                                "interval_used": "per-seed bootstrap" if half == boot_half else "across-seed t interval"})
    return summary, comparisons


def _headline(results: dict) -> tuple[str, dict[str, dict]]:
    """The headline metric and each model's comparison on it (files before logistic loss: RMSE)."""
    metric = results["comparisons"][0].get("metric", "rmse")
    return metric, {c["model"]: c for c in results["comparisons"] if c.get("metric", "rmse") == metric}


def verdict_sentence(results: dict) -> str:
    """The verdict in words, whichever way it comes out."""
    metric, comparisons = _headline(results)
    afm = comparisons["AFM"]
    better = afm["verdict_high"] < 0 if metric != "auc" else afm["verdict_low"] > 0
    worse = afm["verdict_low"] > 0 if metric != "auc" else afm["verdict_high"] < 0
    if better:
        claim = f"AFM is better than the tuned FM by {abs(afm['relative']):.1%}"
    elif worse:
        claim = f"AFM is worse than the tuned FM by {abs(afm['relative']):.1%}"
    else:
        claim = f"AFM and the tuned FM cannot be told apart ({afm['relative']:+.1%})"
    parts = [f"{claim} (test {VERDICT_METRICS[metric]} difference {afm['mean_difference']:+.4f}, interval "
             f"[{afm['verdict_low']:+.4f}, {afm['verdict_high']:+.4f}] from the {afm['interval_used']})"]
    for name in VARIANTS:
        if name in comparisons:
            c = comparisons[name]
            parts.append(f"{name} {c['relative']:+.1%} [{c['verdict_low']:+.4f}, {c['verdict_high']:+.4f}]")
    capped = capped_runs(results)
    note = "" if not capped else (" Caution: best epoch at the epoch cap (still improving) for " + ", ".join(
        f"{name} in {count} of {total} seeds" for name, (count, total) in capped.items())
        + "; a longer cap could change the difference.")
    return "; ".join(parts) + "." + note


def capped_runs(results: dict) -> dict[str, tuple[int, int]]:
    """Per model, how many final runs had their best epoch at the epoch cap (so were still improving when
    stopped) out of how many; files before the cap was recorded say nothing."""
    table = pd.DataFrame(results["runs"])
    if "epoch_cap" not in table:
        return {}
    out = {}
    for name, part in table.groupby("model", sort=False):
        count = int((part.best_epoch >= part.epoch_cap).sum())
        if count:
            out[name] = (count, len(part))
    return out


def verdict_tables(results: dict, others: list[dict] = ()) -> dict[str, pd.DataFrame]:
    """A verdict results file as tables: the budget of each side, the test metrics per model (mean, std
    over seeds; the headline metric first), each variant against FM with both intervals (per metric where
    there are several), and the search (validation only). `others`: see reference_table."""
    budget = pd.DataFrame([{"side": side.upper(), **b, "chosen": ", ".join(f"{k}={v}" for k, v in results["chosen"][side].items())}
                           for side, b in results["budget"].items()])
    headline, _ = _headline(results)
    names = {"mean": f"test {VERDICT_METRICS[headline]} (mean)", "std": "std over seeds"}
    for metric, label in VERDICT_METRICS.items():
        names.update({f"{metric}_mean": f"test {label} (mean)", f"{metric}_std": f"{label} std"})
    summary = pd.DataFrame(results["summary"]).drop(columns=["metric"], errors="ignore").rename(columns=names)
    comparisons = pd.DataFrame(results["comparisons"])
    several = comparisons.get("metric", pd.Series(["rmse"])).nunique() > 1
    comparisons = comparisons[(["metric"] if several else []) + [
        "model", "mean_difference", "relative", "seed_low", "seed_high", "bootstrap_half_width", "verdict_low",
        "verdict_high", "interval_used"]]
    search_rows = [{"side": side.upper(), **row["config"], "validation_rmse": row["validation_rmse"],
                    **({f"validation_{row['selected_by']}": row["validation"]} if row.get("selected_by", "rmse") != "rmse"
                       else {}), "best_epoch": row["best_epoch"]}
                   for side, rows in results["search"].items() for row in rows]
    tables = {"budget": budget, "summary": summary, "comparisons": comparisons, "search": pd.DataFrame(search_rows)}
    if headline == "logloss":  # a logistic verdict: beside the field's public leaderboard, where it has the data
        tables["reference"] = reference_table(results, others)
    return tables


def reference_table(results: dict, others: list[dict] = ()) -> pd.DataFrame:
    """Our FM and AFM (mean over seeds) beside the BARS leaderboard's figures for the same data (FuxiCTR,
    embedding size 10; their train split is the original Frappe's, ours is reconstructed). `others`: more
    results files; the logistic verdicts on the same data add their own columns (another embedding size
    beside this one), so the leaderboard, k = 10 and k = 256 read in one table."""
    bars = bars_table(results["data"]["name"])
    if bars.empty:
        return bars
    for verdict_results in [results, *others]:
        if (verdict_results.get("kind") != "verdict" or verdict_results["data"]["name"] != results["data"]["name"]
                or _headline(verdict_results)[0] != "logloss"):
            continue
        ours = {row["model"]: row for row in verdict_results["summary"]}
        k = verdict_results["budget"][FM_KIND]["embed_dim"]
        bars[f"ours_test_auc (k={k})"] = bars.method.map(lambda m: ours[m]["auc_mean"])
        bars[f"ours_test_logloss (k={k})"] = bars.method.map(lambda m: ours[m]["mean"])
    return bars


def verdict_markdown(results: dict) -> str:
    tables = verdict_tables(results)
    comparisons = tables["comparisons"].drop(columns=["bootstrap_half_width"])
    parts = [verdict_sentence(results), "", markdown_table(tables["budget"]), "", markdown_table(tables["summary"], 4), "",
             markdown_table(comparisons, 4)]
    if not tables.get("reference", pd.DataFrame()).empty:
        parts += ["", markdown_table(tables["reference"], 4)]
    return "\n".join(parts)

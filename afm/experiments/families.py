"""Every family on one dataset, loss and embedding size, each tuned with the verdict's search and budget
(afm.experiments.tuning: the same trials, pruner, epoch cap, total epochs and range of every shared setting,
its preset one trial), then several seeds of its choice; only those final runs are read on the test split.
Beside them: the same data's logistic verdict at the same k and budget (FM, AFM from FM, AFM from scratch)
and the BARS leaderboard (afm.core.paper). A long run writes its file after each family, so what it has is
kept and what it lacks is named.
"""
from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

import pandas as pd

from afm.core.paper import BARS_FRAPPE, BARS_SOURCE
from afm.data.dataset import Dataset
from afm.experiments.markdown import markdown_table
from afm.experiments.results import committed_results, header
from afm.experiments.tuning import SearchBudget, check_grids, preset_trial, search_space, space_table, tune
from afm.experiments.verdict import final_runs
from afm.models import AFM_KIND, FM_KIND
from afm.models.families import family
from afm.training.loop import resolve_device
from afm.training.sets import train_set


def family_table(dataset: Dataset, kinds: list[str], budget: SearchBudget = SearchBudget(), seeds: int = 5,
                 fixed: dict | None = None, device: str = "auto", models_dir: Path | None = None, log=print,
                 on_family=None) -> dict:
    """Search each family of `kinds` on validation, train `seeds` seeds of its choice, read them on test.
    `fixed`: settings every family shares and nobody searches (loss, embed_dim); `on_family(results)` is
    called after each family with the results so far."""
    started = time.perf_counter()
    spaces = {kind: search_space(kind) for kind in kinds}
    check_grids(spaces)
    base = {**(fixed or {}), "device": device}
    results = {**header("families", dataset, False, str(resolve_device(device))), "finished": False,
               "budget": {**budget.to_dict(), **(fixed or {}), "seeds": seeds}, "spaces": space_table(spaces),
               "families": {}, "missing": list(kinds)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(models_dir) if models_dir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            searched = tune(dataset, kind, base, budget, root / "search.journal", kind,
                            first=preset_trial(dataset.name, kind, spaces[kind]), log=log)
            settings = {**base, **searched["chosen"], "epochs": searched["chosen_epoch_cap"]}
            label = family(kind).label
            paths = train_set(dataset, kind, root / kind, list(range(seeds)), settings, log=log)
            results["families"][kind] = {"label": label, "search": searched,
                                         "runs": final_runs({label: paths}, dataset)}
            results["missing"].remove(kind)
            results["commits"] = sorted({r["git"].get("commit") or "not recorded"
                                         for f in results["families"].values() for r in f["runs"]})
            if on_family is not None:
                on_family(copy.deepcopy({**results, "wall_seconds": time.perf_counter() - started}))  # a snapshot
    return {**results, "finished": True, "wall_seconds": time.perf_counter() - started}


def family_summary(results: dict) -> pd.DataFrame:
    """Per family: test AUC and logloss, mean and standard deviation over seeds, the epochs the seeds ran, and
    what its search chose."""
    rows = []
    for kind, entry in results["families"].items():
        runs = pd.DataFrame(entry["runs"])
        rows.append({"model": entry["label"], "seeds": len(runs),
                     "test_auc": runs.test_auc.mean(), "auc_std": runs.test_auc.std(),
                     "test_logloss": runs.test_logloss.mean(), "logloss_std": runs.test_logloss.std(),
                     "epochs_run": runs.epochs_run.mean(), "chosen": _config(entry["search"]["chosen"]),
                     "source": "this file"})
    return pd.DataFrame(rows)


def _config(chosen: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in chosen.items())


SEARCHES = {"FM": FM_KIND, "AFM": AFM_KIND, "AFM (scratch)": "afm-scratch"}  # a verdict's summary row: its search


def _same_protocol(results: dict, other: dict) -> bool:
    """The same data (fingerprint), loss, k and search budget: rows that may stand in one table."""
    keys = ("trials", "epoch_cap", "epoch_budget", "embed_dim", "loss")
    return (other["data"]["fingerprint"] == results["data"]["fingerprint"]
            and all(other.get("budget", {}).get(k) == results["budget"].get(k) for k in keys))


def verdict_rows(results: dict, others: dict[str, dict]) -> pd.DataFrame:
    """The FM and AFM rows of a logistic verdict on the same data, k and budget (the verdict's protocol is
    this file's: one search and budget per side, its seeds, test read for the chosen runs only)."""
    rows = []
    for name, other in others.items():
        if other.get("kind") != "verdict" or not other.get("finished") or not _same_protocol(results, other):
            continue
        for row in other["summary"]:
            if row["model"] in ("FM", "AFM", "AFM (scratch)"):
                rows.append({"model": row["model"] + (" (from FM)" if row["model"] == "AFM" else ""),
                             "seeds": row["seeds"], "test_auc": row["auc_mean"], "auc_std": row["auc_std"],
                             "test_logloss": row["mean"], "logloss_std": row["std"],
                             "epochs_run": row.get("epochs_in_all", math.nan),
                             "chosen": _config(other["chosen"][SEARCHES[row["model"]]]),
                             "source": f"results/{name}.json"})
    return pd.DataFrame(rows)


def family_tables(results: dict, others: dict[str, dict] | None = None) -> pd.DataFrame:
    """Every family of this file and of the other families files of the same protocol (one run a file, so
    families can run side by side), and the matching verdict's FM and AFM, beside BARS' figures (Frappe)."""
    others = committed_results() if others is None else others
    files = [("this file", results)] + [(f"results/{name}.json", other) for name, other in others.items()
                                        if other.get("kind") == "families"
                                        and other.get("created") != results.get("created")  # not this file again
                                        and _same_protocol(results, other)]
    table = pd.concat([verdict_rows(results, others)]
                      + [family_summary(other).assign(source=source) for source, other in files], ignore_index=True)
    table = table.drop_duplicates(subset=["model"], keep="first").reset_index(drop=True)
    if results["data"]["name"] == "frappe" and not table.empty:
        bars = {name.split(" ")[0]: value for name, value in BARS_FRAPPE.items()}
        table["bars_auc"] = table.model.map(lambda m: bars.get(m.split(" ")[0], {}).get("auc", math.nan))
        table["bars_logloss"] = table.model.map(lambda m: bars.get(m.split(" ")[0], {}).get("logloss", math.nan))
    return table


def still_missing(results: dict, table: pd.DataFrame) -> list[str]:
    """The families this file was asked for that its table (`family_tables`: this file and the other files
    of the same protocol) does not hold."""
    return [kind for kind in results.get("missing", []) if family(kind).label not in set(table.model)]


def families_markdown(results: dict) -> str:
    budget = results["budget"]
    lines = [f"Every family on {results['data']['name']} with {budget.get('loss', 'the default')} loss at k = "
             f"{budget.get('embed_dim', 'the default')}, each searched with the same budget ({budget['trials']} "
             f"trials, epoch cap {budget['epoch_cap']}, {budget['epoch_budget']} epochs in all), then "
             f"{budget['seeds']} seeds of its choice read on test."]
    table = family_tables(results)
    missing = still_missing(results, table)
    if missing:
        lines += ["", "Not run yet (the run was stopped before them, and no other file of this protocol has them): "
                  + ", ".join(family(kind).label for kind in missing) + "."]
    lines += ["", markdown_table(table, 4)]
    if results["data"]["name"] == "frappe":
        lines += ["", f"BARS: {BARS_SOURCE}. BARS searched each model with FuxiCTR at batch 4096 with embedding "
                  "regularisation and a learning rate divided by 10 on each plateau; we search optimizer, learning "
                  "rate and dropout at the paper's batch 128. Their validation and test splits have our sizes "
                  "(57,722 and 28,860 rows), so the columns stand beside each other as a reference, not a match."]
    return "\n".join(lines)

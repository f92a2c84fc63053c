"""The results file: the one format every experiment writes (metrics and settings, never data or weights),
its provenance header, atomic writing, reading the committed files back, and the tables made from them."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from afm import settings
from afm.provenance import git_state, library_versions
from afm.data.dataset import Dataset
from afm.paper import TEST_RMSE
from afm.training import evaluate

SCHEMA, SCHEMA_VERSION = "afm-explorer-results", 1
ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "results"


def header(kind: str, dataset: Dataset, quick: bool, device: str) -> dict:
    """What every results file starts with: what it is, when, from which code, on what, with which data."""
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "kind": kind, "quick": quick,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_state(), "versions": library_versions(),
            "device": device, "data": dataset.describe()}  # counts, names of fields, a hash: no rows


def write_results(results: dict, out: str | Path) -> Path:
    """Write a results file atomically (a temporary file renamed into place)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
    tmp.replace(out)
    return out


def run_record(trained, dataset: Dataset, final: bool = True) -> dict:
    """One trained run as a results file records it: settings, metrics, epochs, time. The test split is
    read only for a finished, chosen run (`final`); a run that is part of a search records train and
    validation alone, and says so."""
    result = trained.result
    splits = ("train", "validation", "test") if final else ("train", "validation")
    return {
        "settings": dict(trained.params), "final": final,
        "metrics": {s: evaluate(trained.model, dataset, s) for s in splits},
        "best_epoch": result.best_epoch, "epochs_run": len(result.history) - 1, "stop_reason": result.stop_reason,
        "seconds": result.seconds, "device": result.device, "history": result.history,
    }


def saved_record(loaded, dataset: Dataset) -> dict:
    """The same record as `run_record`, for a model read back from its directory."""
    meta = loaded.meta
    model_settings = {k: v for k, v in meta["model"].items() if k in settings.BY_NAME
                      and settings.applies(k, meta["model"]["kind"])}
    return {
        "settings": {**meta["training"], **model_settings, **meta.get("start", {})},
        "metrics": {s: evaluate(loaded.model, dataset, s)
                    for s in ("train", "validation", "test")},
        "best_epoch": meta["best_epoch"], "epochs_run": len(meta["history"]) - 1, "stop_reason": meta["stop_reason"],
        "seconds": meta["train_seconds"], "device": meta["device"], "history": meta["history"],
    }


def committed_results(directory: Path = RESULTS_DIR) -> dict[str, dict]:
    """The results files committed with the project (metrics only), by file stem."""
    found = {}
    for path in sorted(Path(directory).glob("*.json")):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, RecursionError):
            continue
        if isinstance(results, dict) and results.get("schema") == SCHEMA:
            found[path.stem] = results
    return found


def provenance_line(results: dict) -> str:
    """Which code, libraries, threads and device produced a results file, in one line."""
    commit, versions = results.get("git") or {}, results.get("versions", {})
    if commit.get("commit"):
        code = f"code {commit['commit'][:10]}{' with uncommitted changes' if commit.get('dirty') else ''}"
    elif commit.get("committed_in"):  # a run that predates provenance: what git history can say
        code = f"code: not recorded by the run; at or before the parent of {commit['committed_in'][:10]}"
    else:
        code = "code: not recorded"
    return (f"{code}; torch {versions.get('torch', '?')}, {versions.get('torch_threads', '?')} threads, "
            f"{results.get('device', '?')}")


def results_table(results: dict) -> pd.DataFrame:
    """Our FM and AFM beside the paper (test RMSE), from a reproduce results file."""
    rows = [{"method": "FM (ours)", "test_rmse": results["models"]["fm"]["metrics"]["test"]["rmse"]},
            {"method": "AFM (ours)", "test_rmse": results["models"]["afm"]["metrics"]["test"]["rmse"]}]
    rows += [{"method": f"{name} (paper)", "test_rmse": value} for name, value in results["paper_test_rmse"].items()]
    return pd.DataFrame(rows)


def _reference(results: dict) -> str:
    return "paper" if results["data"]["name"] in TEST_RMSE else "preset"  # the paper's datasets


def settings_table(results: dict) -> pd.DataFrame:
    """FM's and AFM's settings in a results file beside the reference for that data, and whether they
    differ (a tuned run says so plainly); plus each model's best and last epoch. The reference column is
    "paper" for the paper's datasets and "preset" (our defaults) for other data, which the paper never ran."""
    reference = _reference(results)
    rows = []
    for kind in ("fm", "afm"):
        record = results["models"][kind]
        preset = settings.hyperparameters(results["data"]["name"], kind)
        for key in settings.RESULTS_SETTINGS:
            if key in record["settings"] and key in preset:
                ours, theirs = record["settings"][key], preset[key]
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


def ablation_table(results: dict) -> pd.DataFrame:
    return pd.DataFrame(results["table"])


def stability_table(results: dict) -> pd.DataFrame:
    return pd.DataFrame(results["stability"])


# --- the README's result tables, generated from the committed files ---------------------------------------

def _markdown(table: pd.DataFrame, digits: int = 3) -> str:
    def cell(value):
        if isinstance(value, float):
            return "n/a" if value != value else f"{value:.{digits}f}"
        return str(value)
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def interactions_markdown(results: dict) -> str:
    """An interactions results file as the README shows it: agreement, accuracy, robust pairs, recovery."""
    from afm.experiments.interaction_study import agreement_table

    parts = ["Mean pairwise Spearman of the field-pair ranking (1: every model ranks the pairs alike), within "
             "each set and across every two sets:", "", _markdown(agreement_table(results))]
    accuracy = pd.DataFrame(results["accuracy_by_set"]).rename(columns={"size": "models"})
    parts += ["", f"{results['settings']['split'].capitalize()} RMSE per set:", "",
              _markdown(accuracy[["set", "models", "mean", "std", "min", "max"]], 4)]
    robust = pd.DataFrame(results["robust"])
    robust = robust[robust.measure == "interaction"][["set", "robust_pairs"]]
    robust["robust_pairs"] = robust.robust_pairs.map(lambda pairs: ", ".join(pairs) or "none")
    parts += ["", f"Pairs in the top {results['settings']['top_k']} of every model of the set by function-level "
              "interaction:", "", _markdown(robust.rename(columns={"robust_pairs": "robust pairs"}))]
    recovery = pd.DataFrame(results["planted_recovery"])
    if not recovery.empty:
        table = recovery.groupby(["set", "measure"], sort=False).precision.min().unstack()
        table = table.reindex(columns=[m for m in ("attention", "contribution", "ablation", "interaction")
                                       if m in table.columns]).reset_index()
        parts += ["", "Planted pairs among the top pairs, in the worst model of each set (1: every model finds "
                  "them all):", "", _markdown(table, 2)]
    return "\n".join(parts)


def _verdict_markdown(results: dict) -> str:
    from afm.experiments.verdict import verdict_markdown

    return verdict_markdown(results)


def reproduce_markdown(results: dict) -> str:
    """A reproduce results file as the README shows it: the code and settings that made it, FM and AFM on
    test with the paired bootstrap interval, the paper's figures, and the studies where it has them."""
    models, rmse = results["models"], next(c for c in results["comparison"] if c["metric"] == "rmse")
    rows = [{"model": kind.upper(), "test RMSE": models[kind]["metrics"]["test"]["rmse"],
             "best epoch / epochs run": f"{models[kind]['best_epoch']} / {models[kind]['epochs_run']}",
             "seconds": f"{models[kind].get('seconds', float('nan')):.0f}"} for kind in ("fm", "afm")]
    note = settings_note(results).rstrip(".")
    parts = [f"{'Quick run (--quick). ' if results.get('quick') else ''}{note}. Made by {provenance_line(results)}.",
             "", _markdown(pd.DataFrame(rows), 4), "",
             f"AFM vs FM: {rmse['relative']:+.1%} test RMSE, 95% CI of the difference "
             f"[{rmse['ci_low']:+.4f}, {rmse['ci_high']:+.4f}] (paired bootstrap over test instances)."]
    if results["data"]["name"] in TEST_RMSE:
        parts[-1] += " The paper's test RMSE on its data: " + ", ".join(
            f"{name} {value}" for name, value in results["paper_test_rmse"].items()) + "."
    sweeps = sweep_table(results)
    if not sweeps.empty:
        sweeps = sweeps.rename(columns={"validation_rmse": "validation RMSE", "best_epoch": "best epoch"})
        sweeps["value"] = sweeps["value"].map(lambda v: f"{v:g}")
        parts += ["", "Studies (validation RMSE; every AFM from the same FM):", "",
                  _markdown(sweeps[["parameter", "value", "validation RMSE", "best epoch"]], 4)]
        fm_plus = results["studies"].get("fm_plus_attention", {}).get("validation_rmse")
        if fm_plus:
            parts += ["", "FM+A (FM frozen, attention and p trained): validation RMSE "
                      + ", ".join(f"{name} {value:.4f}" for name, value in fm_plus.items()) + "."]
    if "case_study" in results:
        parts += ["", "Case study (test split):", "", _markdown(case_study_table(results), 3)]
    return "\n".join(parts)


def _number(value, spec: str) -> str:
    """A formatted number, blank where there is none (FM has no attention spread)."""
    return "" if value is None or value != value else format(value, spec)


def ablation_markdown(results: dict) -> str:
    """An ablation results file as the README shows it: test RMSE against FM with the paired interval, the
    attention's spread, and how two about equally accurate models rank the pairs."""
    rows = [{"model": r["model"], "test RMSE": f"{r['test_rmse']:.4f}",
             "vs FM (95% CI)": "" if r["model"] == "FM" else
             f"{r['relative_vs_fm']:+.1%} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
             "entropy / log P": _number(r.get("relative_entropy"), ".3f"),
             "max/min": _number(r.get("max_min_ratio"), ".3g"), "CV": _number(r.get("cv"), ".3f")}
            for r in ablation_table(results).to_dict("records")]
    parts = [f"{'Quick run (--quick). ' if results.get('quick') else ''}Made by {provenance_line(results)}.", "",
             _markdown(pd.DataFrame(rows))]
    stability = stability_table(results)
    if not stability.empty:
        stability = stability.rename(columns={"by_attention": "Spearman by attention",
                                              "by_contribution": "Spearman by contribution"})
        parts += ["", "How two models rank the field pairs:", "", _markdown(stability, 2)]
    return "\n".join(parts)


MARKDOWN = {"interactions": interactions_markdown, "verdict": _verdict_markdown, "reproduce": reproduce_markdown,
            "ablation": ablation_markdown}


def results_markdown(directory: Path = RESULTS_DIR) -> dict[str, str]:
    """Markdown for every committed results file of a kind with a README table, by file stem."""
    return {stem: MARKDOWN[r["kind"]](r) for stem, r in committed_results(directory).items() if r.get("kind") in MARKDOWN}


def readme_blocks(text: str) -> dict[str, str]:
    """The generated blocks of a README: `<!-- results:STEM -->` ... `<!-- /results -->`."""
    import re

    return {m.group(1): m.group(2).strip() for m in
            re.finditer(r"<!-- results:([\w.-]+) -->\n(.*?)<!-- /results -->", text, flags=re.S)}


def update_readme(path: Path, directory: Path = RESULTS_DIR) -> list[str]:
    """Rewrite every generated block of the README from the results files; the stems rewritten."""
    import re

    text = Path(path).read_text(encoding="utf-8")
    generated = results_markdown(directory)
    done = []

    def replace(match):
        stem = match.group(1)
        if stem not in generated:
            return match.group(0)
        done.append(stem)
        return f"<!-- results:{stem} -->\n{generated[stem]}\n<!-- /results -->"

    text = re.sub(r"<!-- results:([\w.-]+) -->\n.*?<!-- /results -->", replace, text, flags=re.S)
    Path(path).write_text(text, encoding="utf-8")
    return done

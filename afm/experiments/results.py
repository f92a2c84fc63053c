"""The results file: the one format every experiment writes (metrics and settings, never data or weights),
its provenance header, atomic writing, reading the committed files back, and the tables made from them."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from afm.core import settings
from afm.core.files import read_small_text, write_text_atomic
from afm.core.paper import TEST_RMSE
from afm.core.provenance import git_state, library_versions
from afm.data.dataset import Dataset
from afm.models import AFM_KIND, FM_KIND
from afm.models.families import family, hyperparameters
from afm.models.inference import evaluate

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
    write_text_atomic(out, json.dumps(results, indent=1))
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
                      and family(meta["model"]["kind"]).takes(k)}
    return {
        "settings": {**meta["training"], **model_settings, **meta.get("start", {})},
        "metrics": {s: evaluate(loaded.model, dataset, s)
                    for s in ("train", "validation", "test")},
        "best_epoch": meta["best_epoch"], "epochs_run": len(meta["history"]) - 1, "stop_reason": meta["stop_reason"],
        "seconds": meta["train_seconds"], "device": meta["device"], "history": meta["history"],
    }


def committed_results(directory: Path = RESULTS_DIR, problems: list | None = None) -> dict[str, dict]:
    """The results files committed with the project (metrics only), by file stem. A file that cannot be
    read as one is skipped, and said in `problems` when a list is given."""
    found = {}
    for path in sorted(Path(directory).glob("*.json")):
        try:
            results = json.loads(read_small_text(path))
        except (OSError, ValueError, RecursionError) as exc:  # invalid JSON, bad text, a pipe or device
            if problems is not None:
                problems.append(f"{path.name}: skipped, not a readable results file ({type(exc).__name__})")
            continue
        if isinstance(results, dict) and results.get("schema") == SCHEMA:
            found[path.stem] = results
        elif problems is not None:
            problems.append(f"{path.name}: skipped, not an AFM Explorer results file")
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
    rows = [{"method": "FM (ours)", "test_rmse": results["models"][FM_KIND]["metrics"]["test"]["rmse"]},
            {"method": "AFM (ours)", "test_rmse": results["models"][AFM_KIND]["metrics"]["test"]["rmse"]}]
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
    for kind in (FM_KIND, AFM_KIND):
        record = results["models"][kind]
        preset = hyperparameters(results["data"]["name"], kind)
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

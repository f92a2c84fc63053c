"""The generated result tables: each committed results file as Markdown, written to docs/results/STEM.md
(`python -m afm results --update-docs`); tests/test_results_docs.py checks every file is what its
results file gives."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from afm.core.errors import AFMError
from afm.core.paper import TEST_RMSE
from afm.experiments.families import families_markdown
from afm.experiments.interaction_study import (
    ORDER,
    agreement_table,
    noise_table,
    null_table,
    structure_table,
    truth_table,
)
from afm.experiments.markdown import markdown_table
from afm.experiments.results import (
    RESULTS_DIR,
    ROOT,
    ablation_table,
    case_study_table,
    committed_results,
    provenance_line,
    settings_note,
    stability_table,
    sweep_table,
)
from afm.experiments.scale import scale_markdown
from afm.experiments.verdict import verdict_markdown
from afm.models import AFM_KIND, FM_KIND


def interactions_markdown(results: dict) -> str:
    """An interactions results file as docs/results shows it: agreement within and across sets, each set
    beside its null, the data-only baselines and its noise ceiling, the truth where known, accuracy, the
    robust pairs and those that beat the null, and planted-pair recovery."""
    parts = [f"Made by {provenance_line(results)}.", "",
             "Mean pairwise Spearman of the field-pair ranking (1: every model ranks the pairs alike), within each "
             "set and across every two sets (cross-set model pairs only):", "", markdown_table(agreement_table(results))]
    for title, table in (
            ("Against the null (the same settings on permuted labels): the trained models' agreement, the null "
             "models', and the null's with the trained:", null_table(results)),
            ("Against the data alone: Spearman of each set's median ranking with the product of the two fields' "
             "value counts, and of their Gini impurities (above 0.8, the ranking restates the data):",
             structure_table(results)),
            ("Noise ceiling: one model against itself over fresh draws of rows and references:", noise_table(results)),
            ("Against the truth: mean Spearman over all pairs with the Bayes-optimal function's ranking:",
             truth_table(results))):
        if not table.empty:
            parts += ["", title, "", markdown_table(table)]
    accuracy = pd.DataFrame(results["accuracy_by_set"]).rename(columns={"size": "models"})
    parts += ["", f"{results['settings']['split'].capitalize()} RMSE per set:", "",
              markdown_table(accuracy[["set", "models", "mean", "std", "min", "max"]], 4)]
    robust = pd.DataFrame([r for r in results["robust"] if "robust_pairs" in r])
    robust = robust[robust.measure == "interaction"][["set", "robust_pairs"]]
    robust["robust_pairs"] = robust.robust_pairs.map(lambda pairs: ", ".join(pairs) or "none")
    parts += ["", f"Pairs in the top {results['settings']['top_k']} of every model of the set by function-level "
              "interaction:", "", markdown_table(robust.rename(columns={"robust_pairs": "robust pairs"}))]
    beats = pd.DataFrame([r for r in results["robust"] if "beats_null" in r and r["measure"] == "interaction"])
    if not beats.empty:
        beats["pairs"] = beats.beats_null.map(lambda pairs: ", ".join(pairs[:8]) + (" ..." if len(pairs) > 8 else "")
                                              + f" ({len(pairs)})")
        parts += ["", "Pairs whose function-level interaction beats the null's 90th percentile in every model:", "",
                  markdown_table(beats[["set", "null_set", "pairs"]].rename(columns={"null_set": "null"}))]
    recovery = pd.DataFrame(results["planted_recovery"])
    if not recovery.empty:
        table = recovery.groupby(["set", "measure"], sort=False).precision.min().unstack()
        table = table.reindex(columns=[m for m in ORDER if m in table.columns]).reset_index()
        parts += ["", "Planted pairs among the top pairs, in the worst model of each set (1: every model finds "
                  "them all):", "", markdown_table(table, 2)]
    return "\n".join(parts)


def crosses_table(results: dict) -> pd.DataFrame:
    """A crosses results file's summary: per check, measure and K, the validation and test gains (mean over
    seeds) beside random pairs' mean gain."""
    rows = [{"check": r["check"], "measure": r["measure"], "K": r["k"], "pairs": ", ".join(r["pairs"]),
             "val logloss gain": r["validation_gain_logloss"], "random": r["validation_random_gain_logloss"],
             "test logloss gain": r["test_gain_logloss"], "random ": r["test_random_gain_logloss"],
             "val AUC gain": r["validation_gain_auc"], "random  ": r["validation_random_gain_auc"]}
            for r in results["summary"]]
    return pd.DataFrame(rows)


def crosses_markdown(results: dict) -> str:
    s = results["settings"]
    return "\n".join([
        f"Made by {provenance_line(results)}. Rankings from {', '.join(results['models'])} on the train split; "
        f"every model trained with {s['budget']}, {s['seeds']} seeds; random: the mean of {s['random_draws']} draws "
        f"of K pairs; structure: the K pairs with the largest cardinality product.", "",
        "cross: a first-order model (LR) with the K pairs as crossed fields, gain over no crosses (positive: "
        "better). remove: an FM with the K pairs' terms masked, gain over the full FM (negative: the pairs "
        "mattered).", "", markdown_table(crosses_table(results), 4)])


def reproduce_markdown(results: dict) -> str:
    """A reproduce results file as docs/results shows it: the code and settings that made it, FM and AFM on
    test with the paired bootstrap interval, the paper's figures, and the studies where it has them."""
    models, rmse = results["models"], next(c for c in results["comparison"] if c["metric"] == "rmse")
    rows = [{"model": kind.upper(), "test RMSE": models[kind]["metrics"]["test"]["rmse"],
             "best epoch / epochs run": f"{models[kind]['best_epoch']} / {models[kind]['epochs_run']}",
             "seconds": f"{models[kind].get('seconds', float('nan')):.0f}"} for kind in (FM_KIND, AFM_KIND)]
    note = settings_note(results).rstrip(".")
    parts = [f"{'Quick run (--quick). ' if results.get('quick') else ''}{note}. Made by {provenance_line(results)}.",
             "", markdown_table(pd.DataFrame(rows), 4), "",
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
                  markdown_table(sweeps[["parameter", "value", "validation RMSE", "best epoch"]], 4)]
        fm_plus = results["studies"].get("fm_plus_attention", {}).get("validation_rmse")
        if fm_plus:
            parts += ["", "FM+A (FM frozen, attention and p trained): validation RMSE "
                      + ", ".join(f"{name} {value:.4f}" for name, value in fm_plus.items()) + "."]
    if "case_study" in results:
        parts += ["", "Case study (test split):", "", markdown_table(case_study_table(results), 3)]
    return "\n".join(parts)


def _number(value, spec: str) -> str:
    """A formatted number, blank where there is none (FM has no attention spread)."""
    return "" if value is None or value != value else format(value, spec)


def ablation_markdown(results: dict) -> str:
    """An ablation results file as docs/results shows it: test RMSE against FM with the paired interval, the
    attention's spread, and how two about equally accurate models rank the pairs."""
    rows = [{"model": r["model"], "test RMSE": f"{r['test_rmse']:.4f}",
             "vs FM (95% CI)": "" if r["model"] == "FM" else
             f"{r['relative_vs_fm']:+.1%} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
             "entropy / log P": _number(r.get("relative_entropy"), ".3f"),
             "max/min": _number(r.get("max_min_ratio"), ".3g"), "CV": _number(r.get("cv"), ".3f")}
            for r in ablation_table(results).to_dict("records")]
    parts = [f"{'Quick run (--quick). ' if results.get('quick') else ''}Made by {provenance_line(results)}.", "",
             markdown_table(pd.DataFrame(rows))]
    stability = stability_table(results)
    if not stability.empty:
        stability = stability.rename(columns={"by_attention": "Spearman by attention",
                                              "by_contribution": "Spearman by contribution"})
        parts += ["", "How two models rank the field pairs:", "", markdown_table(stability, 2)]
    return "\n".join(parts)


MARKDOWN = {"interactions": interactions_markdown, "verdict": verdict_markdown, "families": families_markdown, "reproduce": reproduce_markdown,
            "ablation": ablation_markdown, "crosses": crosses_markdown, "scale": scale_markdown}


def results_markdown(directory: Path = RESULTS_DIR) -> dict[str, str]:
    """Markdown for every committed results file of a kind with a table, by file stem; a file whose contents
    do not have its kind's shape is refused in one line that names it."""
    pages = {}
    for stem, results in committed_results(directory).items():
        if results.get("kind") not in MARKDOWN:
            continue
        try:
            pages[stem] = MARKDOWN[results["kind"]](results)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise AFMError(f"results/{stem}.json: not a well-formed {results['kind']} results file "
                           f"({type(exc).__name__}: {str(exc)[:80]})") from None
    return pages


DOCS_RESULTS = ROOT / "docs" / "results"


def generated_page(stem: str, markdown: str) -> str:
    """The text of docs/results/STEM.md: where it comes from, then the tables."""
    return (f"<!-- generated from results/{stem}.json by `python -m afm results --update-docs`; do not edit -->\n"
            f"# {stem}\n\n{markdown}\n")


def write_docs(directory: Path = RESULTS_DIR, out: Path = DOCS_RESULTS) -> list[str]:
    """Write docs/results/STEM.md for every results file with a table; the stems written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, markdown in results_markdown(directory).items():
        path = out / f"{stem}.md"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(generated_page(stem, markdown), encoding="utf-8")
        tmp.replace(path)
        written.append(stem)
    return written

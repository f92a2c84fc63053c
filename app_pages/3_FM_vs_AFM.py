"""FM vs AFM: is AFM better here, by how much, and for which instances?"""
import pandas as pd
import streamlit as st

from afm.core.metrics import METRIC_LABELS
from afm.experiments.results import (
    ablation_table,
    case_study_table,
    committed_results,
    provenance_line,
    results_table,
    settings_note,
    settings_table,
    stability_table,
    sweep_table,
)
from afm.experiments.verdict import commits_note, verdict_sentence, verdict_tables
from afm.explain import charts
from afm.explain.compare import bootstrap_comparison, errors_by_segment, largest_differences, results_beside_paper
from afm.models import AFM_KIND, FM_KIND
from ui import friendly_errors, model_label, selected_pair, show_chart, show_table

st.title("FM vs AFM")

with friendly_errors():
    pair = selected_pair()
    fm, afm, dataset = pair.baseline, pair.explained, pair.dataset  # FM and AFM by default: any two models
    if fm is None or afm is None:
        st.info("Choose a model and a baseline of the same dataset in the sidebar (FM and AFM by default; train "
                "them on the Train page).")
        st.stop()
    if not pair.same_data:
        st.error("The selected model and baseline were trained on different data; choose two models of the same "
                 "dataset.")
        st.stop()
    A, B = model_label(fm), model_label(afm)
    if A == B:
        A, B = f"{A} (baseline)", f"{B} (model)"
    split = st.selectbox("Split", ["test", "validation"], key="compare_split")
    errors = pair.errors(split)
    table = bootstrap_comparison(errors)
    losses = (fm.model.config.loss, afm.model.config.loss)
    if losses[0] != losses[1]:
        st.warning(f"{A} was trained with {losses[0]} loss and {B} with {losses[1]}: RMSE and AUC compare them, "
                   "logloss needs both logistic.")
    by_metric = table.set_index("metric")
    for metric, lower_is_better in (("logloss", True), ("rmse", True), ("auc", False)):
        if metric not in by_metric.index:
            continue
        row, label = by_metric.loc[metric], METRIC_LABELS[metric]
        a, b, c = st.columns(3)
        a.metric(f"{A} {label}", f"{row.fm:.4f}")
        b.metric(f"{B} {label}", f"{row.afm:.4f}", delta=f"{row.relative:+.1%}",
                 delta_color="inverse" if lower_is_better else "normal")
        c.metric(f"95% interval of {B} - {A} ({label})", f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]",
                 help="Paired bootstrap over instances (1,000 resamples). An interval that excludes 0 means the "
                      "difference is unlikely to be noise of this split.")
    main = by_metric.loc["logloss" if "logloss" in by_metric.index else "rmse"]
    st.caption("RMSE clips predictions to the label range, as the AFM authors did; a logistic model's "
               "probability is mapped to it (-1 + 2p). AUC ranks the scores; logloss reads a logistic model's "
               "probabilities. "
               + ("The headline interval excludes 0." if main.ci_high < 0 or main.ci_low > 0
                  else "The headline interval includes 0: no clear winner."))
    show_table(table, "fm_vs_afm_metrics")
    paper = results_beside_paper(table, dataset.name)
    if not paper.empty:
        st.subheader("Beside the paper's Table 2 (test RMSE, k = 256)")
        st.caption(f"Our FM sits in the LibFM row. Our data: {dataset.notes or dataset.name}.")
        show_table(paper, "paper_table")
    show_chart(charts.error_scatter(errors), "error_scatter")
    segments = errors_by_segment(errors, dataset, split)
    kinds = list(dict.fromkeys(segments.segment_kind))
    chosen = st.multiselect("Segments", kinds, default=kinds[:2], key="compare_segments")
    show_chart(charts.segment_bars(segments, chosen), "segment_rmse")
    show_table(segments, "segments")
    st.subheader("Where AFM gains and loses most")
    show_table(largest_differences(errors), "largest_differences")
    show_chart(charts.learning_curves({"FM": fm.meta.get("history", []), "AFM": afm.meta.get("history", [])}),
               "learning_curves")

st.header("The fair verdict")
st.caption("Three searches on validation with one budget (Optuna: the same trials, pruner, epoch cap and total "
           "epochs, the same ranges, the paper's configuration one trial on each side; k fixed): FM, AFM from the "
           "chosen FM (its epochs counted with its FM's) and AFM from scratch. The choices run with several seeds "
           "beside FM given AFM's epochs in all, uniform AFM and FM+A; only those final runs are read on test. The "
           "interval is the wider of the across-seed t interval and the per-seed paired bootstrap. No headline "
           "while a chosen configuration was still improving at its cap, or while another results file holds a "
           "better FM (`python -m afm verdict --dataset ...`).")


COMMITTED = committed_results()  # read once per run of the page


def choose_results(kind: str, label: str, command: str):
    """One committed results file of a kind, chosen in a selectbox, with its provenance; None without any."""
    found = {name: r for name, r in COMMITTED.items() if r.get("kind") == kind}
    if not found:
        st.info(f"No results files of this kind yet: run `{command}`.")
        return None, None
    name = st.selectbox(label, list(found), key=f"{kind}_file",
                        format_func=lambda n: f"{n}{' (quick)' if found[n].get('quick') else ''}")
    st.caption(f"{found[name]['data'].get('notes') or found[name]['data']['name']}. {provenance_line(found[name])}.")
    return name, found[name]


name, results = choose_results("verdict", "Verdict results", "python -m afm verdict --dataset frappe")
if results is not None:
    st.markdown(f"**{verdict_sentence(results)}**")
    if commits_note(results):
        st.caption(commits_note(results))
    tables = verdict_tables(results, list(COMMITTED.values()))
    show_table(tables["budget"], f"verdict_budget_{name}", "Each side's search budget, and what it chose.")
    show_table(tables["summary"], f"verdict_summary_{name}")
    show_table(tables["comparisons"], f"verdict_comparisons_{name}")
    if not tables.get("reference", pd.DataFrame()).empty:
        st.caption("Beside the BARS open benchmark (FuxiCTR, Frappe_x1, embedding size 10, logistic loss): the same "
                   "validation and test sizes; their train split is the original, ours is reconstructed. Every "
                   "committed logistic verdict on this data is a pair of columns (embedding size k).")
        show_table(tables["reference"], f"verdict_reference_{name}")
    with st.popover("Every searched configuration (validation only)"):
        show_table(tables["search"], f"verdict_search_{name}")

st.header("Is it the attention?")
st.caption("AFM differs from FM in three ways: attention, a learned projection p, and retraining from FM's "
           "embeddings. Each run below switches one of them, with the same data, settings and epochs "
           "(`python -m afm ablate --dataset ...`). Spread: entropy/log(pairs) is 1 for uniform attention; "
           "max/min is 1 for uniform; the coefficient of variation is 0 for uniform.")
# one file at a time: every file's charts at once made leaving this page slow in the browser
name, results = choose_results("ablation", "Ablation results", "python -m afm ablate --dataset frappe")
if results is not None:
    show_table(ablation_table(results), f"ablation_{name}")
    st.caption("Explanation stability: Spearman rank agreement of the global field-pair importances of two "
               "about equally accurate models. High by contribution but low by attention means the heatmap "
               "tells a story of one training run, not of the data.")
    show_table(stability_table(results), f"stability_{name}")

st.header("Full runs: the paper's protocol, reproduced")
st.caption("Results files committed with the project (metrics only; `python -m afm reproduce --dataset ...`). "
           "Each says what data it ran on: Frappe's train split is reconstructed, and MovieLens is built from the "
           "ML-10M tags (about 7x smaller than the paper's ml-tag).")
name, results = choose_results("reproduce", "Results file", "python -m afm reproduce --dataset frappe")
if results is not None:
    show_table(results_table(results), f"results_{name}")
    st.caption(settings_note(results))
    with st.popover("All settings"):
        show_table(settings_table(results), f"settings_{name}")
    show_chart(charts.learning_curves({"FM": results["models"][FM_KIND]["history"],
                                       "AFM": results["models"][AFM_KIND]["history"]}), f"results_curves_{name}")
    sweeps = sweep_table(results)
    if not sweeps.empty:
        show_chart(charts.study_curves(sweeps), f"studies_{name}")
        show_table(sweeps, f"sweeps_{name}")
    if "case_study" in results:
        st.markdown(f"**Case study** (FM+A on the test split): the most attended pair is "
                    f"**{results['case_study']['most_attended_pair']}**; FM gives every pair the same weight.")
        show_table(case_study_table(results), f"case_study_{name}")

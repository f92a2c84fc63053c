"""Published results: the committed, multi-seed results files (the fair verdicts, the ablations, the paper's
protocol reproduced), each labelled with its data, budget and seeds. They are about the data they name, not
about the models in the sidebar."""
import streamlit as st

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
from afm.core.paper import BARS_SOURCE
from afm.experiments.families import family_tables, still_missing
from afm.experiments.verdict import commits_note, verdict_overview, verdict_sentence, verdict_tables, verdict_words
from afm.explain import charts
from afm.models import AFM_KIND, FM_KIND
from ui import download_csv, plain, show_chart, show_table

st.title("Published results")
st.caption("Results files committed with the project, each run with several seeds on the data it names; they do "
           "not change with the sidebar. The FM vs AFM page compares the two models you selected.")

COMMITTED = committed_results()  # read once per run of the page


def choose_results(kind: str, label: str, command: str):
    """One committed results file of a kind, chosen in a selectbox, with its data and provenance."""
    found = {name: r for name, r in COMMITTED.items() if r.get("kind") == kind}
    if not found:
        st.info(f"No results files of this kind yet: run `{command}`.")
        return None, None
    name = st.selectbox(label, list(found), key=f"{kind}_file",
                        format_func=lambda n: f"{n} ({found[n]['data']['name']}{', quick' if found[n].get('quick') else ''})")
    st.caption(plain(f"Data: {found[name]['data'].get('notes') or found[name]['data']['name']}. "
                     f"{provenance_line(found[name])}."))
    return name, found[name]


st.header("The fair verdict: FM against AFM, both tuned")
st.caption("Three searches on validation with one budget (Optuna: the same trials, pruner, epoch cap and total "
           "epochs, the same ranges, the paper's configuration one trial on each side; k fixed): FM, AFM from the "
           "chosen FM (its epochs counted with its FM's) and AFM from scratch. The choices run with several seeds "
           "beside FM given AFM's epochs in all; only those final runs are read on test. No headline while a chosen "
           "configuration was still improving at its cap, or while another results file holds a better FM "
           "(`python -m afm verdict --dataset ...`).")
overview = verdict_overview(COMMITTED)
if overview.empty:
    st.info("No verdict files yet: run `python -m afm verdict --dataset frappe`.")
else:
    for start in range(0, len(overview), 3):  # the datasets side by side, each card labelled
        for column, row in zip(st.columns(3), overview.iloc[start:start + 3].itertuples()):
            with column.container(border=True):
                st.markdown(f"**{plain(row.data)}** · {row.loss} loss · k = {row.k}")
                st.caption(f"{row.trials_a_side} trials a side, epoch cap {row.epoch_cap}, {row.epochs_a_search} "
                           f"epochs a search, {row.seeds} seeds · `{row.file}`")
                (st.success if row.state == "headline" else st.warning)(plain(row.verdict))
    with st.expander("Every verdict file as one table"):
        show_table(overview, "verdicts", download=False)
    download_csv(overview, "verdicts", label="Download the verdicts (CSV)")
    name, results = choose_results("verdict", "One verdict in detail", "python -m afm verdict --dataset frappe")
    if results is not None:
        st.markdown(f"**{plain(verdict_words(results))}**")
        st.caption(plain(verdict_sentence(results)))
        if commits_note(results):
            st.caption(plain(commits_note(results)))
        tables = verdict_tables(results, list(COMMITTED.values()))
        show_table(tables["summary"], f"verdict_summary_{name}", download=False)
        with st.expander("The comparisons, with their intervals"):
            show_table(tables["comparisons"], f"verdict_comparisons_{name}", download=False)
        with st.expander("Each side's search budget, and what it chose"):
            show_table(tables["budget"], f"verdict_budget_{name}", download=False)
        reference = tables.get("reference")
        if reference is not None and not reference.empty:
            with st.expander("Beside the BARS open benchmark (FuxiCTR, Frappe_x1, k = 10)"):
                st.caption("The same validation and test sizes; their train split is the original, ours is "
                           "reconstructed. Every committed logistic verdict on this data is a pair of columns.")
                show_table(reference, f"verdict_reference_{name}", download=False)
        with st.expander("Every searched configuration (validation only)"):
            show_table(tables["search"], f"verdict_search_{name}", download=False)
        download_csv(tables["summary"], f"verdict_summary_{name}", label="Download the summary (CSV)")

st.header("Every family, tuned alike")
st.caption("DeepFM, DCN-v2, AutoInt and NFM searched with the verdict's budget (the same trials, epoch cap, total "
           "epochs and ranges), then seeds of each choice read on test, beside the verdict's FM and AFM of the same "
           "budget and the BARS leaderboard (`python -m afm families --dataset frappe --loss logistic --embed-dim 10`).")
name, results = choose_results("families", "A families table", "python -m afm families --dataset frappe")
if results is not None:
    table = family_tables(results, COMMITTED)
    missing = still_missing(results, table)
    if missing:
        st.warning(f"Not run yet: {', '.join(missing)} (the run was stopped before them, and no other file of "
                   "this protocol has them).")
    show_table(table, f"families_{name}", download=False)
    download_csv(table, f"families_{name}", label="Download the families table (CSV)")
    if "bars_auc" in table:
        st.caption(plain(f"BARS: {BARS_SOURCE}. BARS searched each model at batch 4096 with embedding "
                         "regularisation and a learning-rate cut on each plateau; here optimizer, rate and dropout "
                         "are searched at the paper's batch 128. A reference, not a match."))

st.header("Is it the attention?")
st.caption("AFM differs from FM in three ways: attention, a learned projection p, and retraining from FM's "
           "embeddings. Each run below switches one of them, with the same data, settings and epochs "
           "(`python -m afm ablate --dataset ...`). Spread: entropy/log(pairs) is 1 for uniform attention; "
           "max/min is 1 for uniform; the coefficient of variation is 0 for uniform.")
name, results = choose_results("ablation", "Ablation results", "python -m afm ablate --dataset frappe")
if results is not None:
    show_table(ablation_table(results), f"ablation_{name}")
    with st.expander("Explanation stability across about equally accurate models"):
        st.caption("Spearman rank agreement of the global field-pair importances of two about equally accurate "
                   "models. High by contribution but low by attention means the heatmap tells a story of one "
                   "training run, not of the data.")
        show_table(stability_table(results), f"stability_{name}", download=False)

st.header("The paper's protocol, reproduced")
st.caption("FM, then AFM from FM's embeddings, with the paper's settings (`python -m afm reproduce --dataset "
           "...`). Frappe's train split is reconstructed, and MovieLens is built from the ML-10M tags (about 7x "
           "smaller than the paper's ml-tag).")
name, results = choose_results("reproduce", "Results file", "python -m afm reproduce --dataset frappe")
if results is not None:
    show_table(results_table(results), f"results_{name}")
    st.caption(plain(settings_note(results)))
    with st.expander("All settings"):
        show_table(settings_table(results), f"settings_{name}", download=False)
    show_chart(charts.learning_curves({"FM": results["models"][FM_KIND]["history"],
                                       "AFM": results["models"][AFM_KIND]["history"]}), f"results_curves_{name}")
    sweeps = sweep_table(results)
    if not sweeps.empty:
        with st.expander("The paper's studies: validation RMSE against t, lambda and dropout"):
            show_chart(charts.study_curves(sweeps), f"studies_{name}")
            show_table(sweeps, f"sweeps_{name}", download=False)
    if "case_study" in results:
        with st.expander("Case study (FM+A on the test split)"):
            st.markdown(f"The most attended pair is **{plain(results['case_study']['most_attended_pair'])}**; FM "
                        "gives every pair the same weight.")
            show_table(case_study_table(results), f"case_study_{name}", download=False)

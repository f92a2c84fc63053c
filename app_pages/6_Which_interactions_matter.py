"""Which interactions matter? Field-pair importance by several measures across a set of equally good
models, what could make that answer fail (a null of the same models on permuted labels, what the data alone
ranks, the noise of the estimate), whether the named pairs help a model when retrained, and one pair value
by value."""
import streamlit as st

from afm.experiments.crosses import crosses
from afm.experiments.tables import crosses_table
from afm.explain import charts
from afm.explain.agreement import FAST_MEASURES, MEASURES
from afm.explain.interactions import interactions, pair_term_view, view_correlations
from afm.store.registry import new_model_path
from afm.training.jobs import TaskJob, TrainingJob, progress_line
from ui import (
    compare_entries,
    entries,
    friendly_errors,
    load_entry,
    noise_for,
    null_entries,
    plain,
    same_settings,
    selection,
    show_chart,
    show_table,
)

TOP = 20  # pairs drawn per chart; the tables hold them all
MEANING = {
    "interaction": "function-level: mean |f(x) - f(x, A from r) - f(x, B from r) + f(x, A and B from r)|, "
                   "whatever the parameters say",
    "interaction_changed": "function-level, averaged only over references that change both fields (the plain "
                           "mean is zero whenever one stays, so it grows with a field's number of values)",
    "h_statistic": "Friedman's H²: the share of the pair's joint partial dependence that is interaction",
    "contribution": "mean |a_ij · p^T(v_i ⊙ v_j)|, the exact pair term of the prediction (FM and AFM: families "
                    "with an MLP have no exact per-pair split)",
    "ablation": "mean |prediction change| when the pair is removed (attention renormalised; FM and AFM)",
    "attention": "mean attention weight (AFM only)",
}

st.title("Which interactions matter?")
st.caption("One model's attention is one training run's story. Here every measure is taken in each model of a "
           "set of about equally accurate models (seeds): the bars are medians, the whiskers the 10-90% band "
           "across the models, the grey band behind them the same measure in null models (the same settings "
           "trained on permuted labels), and a pair in the main colour is in the top 3 of every model. An answer "
           "that the null, the data alone or the noise of the estimate reproduces is no answer: each is shown.")

all_entries = entries()
chosen_model = selection().explained
default_note = None
if chosen_model is None or chosen_model.set_dir is None:  # a set of equally accurate models by default
    sets = [e for e in all_entries if e.set_dir is not None and not e.null]
    same_data = [e for e in sets if chosen_model is not None and e.dataset == chosen_model.dataset]
    shipped = [e for e in sets if e.builtin]
    if same_data:
        chosen_model = same_data[0]
    elif chosen_model is not None and not chosen_model.builtin:  # the user's own model, as they chose it
        default_note = ("One model is one training run's story: train a set of seeds on the Train page (Models "
                        "(seeds) above 1) to see which of its pairs survive retraining.")
    elif shipped:  # the shipped default has no set of its data: the shipped set of another
        if chosen_model is not None:
            default_note = (f"{chosen_model.dataset} has no set of equally accurate models (seeds) yet, so the "
                            f"page opens on the shipped {shipped[0].set_dir.name} ({shipped[0].dataset} data). "
                            "Train a set on the Train page (Models (seeds) above 1) to study your own.")
        chosen_model = shipped[0]
dataset_name = chosen_model.dataset if chosen_model else (all_entries[0].dataset if all_entries else None)
candidates = [e for e in all_entries if e.dataset == dataset_name and not e.null]
if chosen_model is not None and chosen_model.set_dir is not None:
    default = [e.name for e in candidates if e.set_dir == chosen_model.set_dir]
else:
    default = [e.name for e in (chosen_model, selection().baseline) if e is not None and e.dataset == dataset_name]
if default_note:
    st.info(default_note)
names = st.multiselect(f"Models to compare ({dataset_name} data; a set of seeds is the usual choice)",
                       [e.name for e in candidates], default=[n for n in default if n in {e.name for e in candidates}],
                       key="which_models")
chosen = [e for e in candidates if e.name in names]
null_candidates = [e for e in all_entries if e.null and chosen and e.data_source == chosen[0].data_source]
null_default = [e.name for e in null_entries(chosen[0])] if chosen else []
null_names = st.multiselect("Null models (the same settings on permuted labels)", [e.name for e in null_candidates],
                            default=null_default, key="which_nulls")
nulls = [e for e in null_candidates if e.name in null_names]
left, middle, right = st.columns(3)
split = left.selectbox("Split", ["test", "validation"], key="which_split")
sample = middle.select_slider("Rows (a seeded sample)", [500, 1000, 2000, 5000], value=1000, key="which_sample")
references = right.select_slider("Reference rows R", [4, 8, 16, 32], value=16, key="which_refs")


def offer_null_training() -> None:
    """No null yet: say what that means, and train one in the background."""
    st.info("No null set for these models: their agreement has no baseline yet. A null set is the same settings "
            "trained on permuted labels; whatever it also shows, the labels did not put there.")
    job = st.session_state.get("null_job")
    if job is not None and job.running:
        state = job.snapshot()
        done, line = progress_line(state, job.epochs)
        st.progress(done, text=f"Training the null set (3 seeds, one after another): {line}")
        if st.button("Stop", key="null_stop"):
            job.stop()
        return
    if job is not None:
        state = job.snapshot()
        (st.success if state.status == "finished" else st.error)(f"Null set: {state.message}")
    if st.button("Train a null set (3 seeds, in the background)", key="train_null", disabled=not chosen):
        loaded, dataset, _ = load_entry(chosen[0])
        out = new_model_path(None, dataset.name, f"{chosen[0].kind}-null-set")
        st.session_state["null_job"] = TrainingJob(dataset, chosen[0].kind, out, same_settings(loaded), seeds=3,
                                                   null=True).start()
        st.rerun()


def show_crosses(models: dict, dataset) -> None:
    """Do the named pairs help a model? Encode-and-retrain and remove-and-retrain, in the background."""
    st.subheader("Do these pairs help a model?")
    st.caption("Each measure's top-K pairs become crossed fields of a first-order model (LR) and are masked in an "
               "FM, retrained with one fixed budget, against K random pairs (10 draws) and the K pairs with the "
               "largest cardinality product. Named pairs should help more when added, and hurt more when removed.")
    key = ("crosses",) + tuple(sorted(models))
    job = st.session_state.get("crosses_job")
    if job is not None and job.settings.get("key") == key:
        state = job.snapshot()
        if job.running:
            st.progress(0.5, text="Retraining with and without the named pairs...")
            return
        if state.status == "finished":
            show_table(crosses_table(job.result), "crosses", "Gains over no crosses (positive: better); for "
                       "'remove', over the full FM (negative: the pairs mattered).")
            return
        st.error(state.message)
    if st.button("Run the check (K = 1, 3, 5; 3 seeds)", key="run_crosses"):
        st.session_state["crosses_job"] = TaskJob("crosses", _crosses_task, key=key, models=models,
                                                  dataset=dataset).start()
        st.rerun()


def _crosses_task(key, models, dataset, on_progress=None, should_stop=None):
    return crosses(models, dataset, ks=(1, 3, 5), seeds=3, log=lambda line: None, should_stop=should_stop)


with friendly_errors():
    if not chosen:
        st.info("Choose at least one model; two or more show how far the models agree.")
        st.stop()
    measure = st.radio("Measure", MEASURES[::-1], index=MEASURES[::-1].index("interaction"), horizontal=True,
                       key="which_measure", help="; ".join(f"{k}: {v}" for k, v in MEANING.items()))
    measures = MEASURES if measure == "h_statistic" else FAST_MEASURES
    st.caption(plain(MEANING[measure]))
    chart = st.empty()  # the trained models' bands first; the null's band joins them once it is measured
    comparison = compare_entries(chosen, split, sample, references, measures=measures)
    bands = comparison.bands[comparison.bands.measure == measure]
    if not bands.empty and nulls:
        with chart.container():
            show_chart(charts.pair_bands(bands, f"Field pairs by {measure}", measure, top=TOP), "which_bands_first")
        comparison = compare_entries(chosen, split, sample, references, nulls=nulls, measures=measures)
        bands = comparison.bands[comparison.bands.measure == measure]
    st.caption(plain(comparison.accuracy_note))
    for warning in comparison.baseline_warnings(measure):
        st.warning(warning)
    if bands.empty:
        st.info("No model here has this measure (attention needs an AFM with attention; contribution and ablation "
                "an additive model, FM or AFM: the function-level measures read every family).")
    else:
        with chart.container():
            show_chart(charts.pair_bands(bands, f"Field pairs by {measure}", measure, top=TOP), "which_bands")
        if len(bands) > TOP:
            st.caption(f"The {TOP} strongest of {len(bands)} pairs are drawn; the table below has them all.")
        robust = bands[bands.robust]
        st.markdown(f"**In the top {comparison.top_k} of every model by {measure}:** "
                    + (", ".join(f"{a} x {b}" for a, b in zip(robust.field_a, robust.field_b)) or "no pair"))
        if "beats_null" in bands:
            beating = bands[bands.beats_null.fillna(False).astype(bool)]
            st.markdown(f"**Above the null's 90th percentile in every model:** {len(beating)} of {len(bands)} pairs"
                        + (": " + ", ".join(f"{a} x {b}" for a, b in zip(beating.field_a[:8], beating.field_b[:8]))
                           + (" ..." if len(beating) > 8 else "") if len(beating) else "."))
        show_table(bands.drop(columns=["measure"]), f"which_{measure}")
    if not nulls:
        offer_null_training()

    st.subheader("Do the models agree, and is that evidence?")
    agreement = comparison.agreement.merge(noise_for(chosen[0], split, sample, references, measures), on="measure",
                                           how="left")
    show_table(agreement, "agreement", "Rank agreement of the field pairs across models, per measure: mean pairwise "
               "Spearman and Kendall's W (1: identical rankings); noise ceiling: one model against itself over "
               "5 fresh draws of rows and references (between-model agreement cannot be read above it).")
    if comparison.families is not None and not comparison.families.empty:
        show_table(comparison.families, "family_agreement", "Across model families: the mean Spearman of every model of "
                   "one family with every model of the other (cross-family pairs only). Families that name the same "
                   "pairs by different arithmetic make the answer less a property of one architecture.")
    if comparison.null_agreement is not None:
        show_table(comparison.null_agreement, "null_agreement", "Mean Spearman among the trained models, among the "
                   "null models, and between null and trained models: an agreement the null reaches too is not "
                   "evidence about the labels.")
    show_table(comparison.structure, "structure", "Spearman of the median ranking with what the data alone ranks: the "
               "product of the two fields' numbers of values, and of their impurities.")
    if comparison.truth is not None:
        show_table(comparison.truth, "truth", "Generated data: each model's ranking of all pairs against the "
                   "Bayes-optimal function's (Spearman), and how many of the true top pairs it puts on top.")

    loaded_models = {e.name: load_entry(e)[0].model for e in chosen}
    show_crosses(loaded_models, load_entry(chosen[0])[1])

    st.subheader("One pair, value by value")
    ranked = comparison.bands[comparison.bands.measure == "interaction"]  # strongest first
    pairs = list(zip(ranked.field_a, ranked.field_b))
    pair = st.selectbox("Field pair (strongest function-level interaction first)", pairs,
                        format_func=lambda p: f"{p[0]} x {p[1]}", key="which_pair")
    model_name = st.selectbox("Model", [e.name for e in chosen], key="which_view_model")
    loaded, dataset, _ = load_entry(next(e for e in chosen if e.name == model_name))
    result = interactions(loaded.model, dataset, split, sample, references)
    view = pair_term_view(loaded.model, result, pair[0], pair[1])
    correlations = view_correlations(view)
    columns = st.columns(2)
    for i, (name, table) in enumerate(view.items()):
        with columns[i % 2]:
            note = f" (correlation with planted: {correlations[name]:.2f})" if name in correlations else ""
            show_chart(charts.value_matrix(table, f"{name}{note}", name), f"which_view_{i}")
    st.caption(plain("Attention score: AFM's context-free h^T ReLU(W(v_a ⊙ v_b)+b), before the softmax over an "
                     "instance's pairs. Interaction: p^T(v_a ⊙ v_b). Function-level: the mean mixed difference over "
                     "the rows with these two values. Planted: what the pair adds to the synthetic score. The most "
                     "frequent 12 values of each field are shown. Each map has its own colour scale: the four "
                     "measure different things in different units."))

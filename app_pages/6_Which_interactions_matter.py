"""Which interactions matter? Four measures of field-pair importance across a set of equally good models,
how far the models agree, and one pair value by value."""
import streamlit as st

from afm import charts
from afm.agreement import MEASURES
from afm.interactions import interactions, pair_term_view, view_correlations
from ui import compare_entries, entries, friendly_errors, load_entry, selection, show_chart, show_table

TOP = 20  # pairs drawn per chart; the tables hold them all
MEANING = {
    "interaction": "function-level: mean |f(x) - f(x, A from r) - f(x, B from r) + f(x, A and B from r)|, "
                   "whatever the parameters say",
    "contribution": "mean |a_ij p^T(v_i*v_j)|, the exact pair term of the prediction",
    "ablation": "mean |prediction change| when the pair is removed (attention renormalised)",
    "attention": "mean attention weight (AFM only)",
}

st.title("Which interactions matter?")
st.caption("One model's attention is one training run's story. Here every measure is taken in each model of a "
           "set of about equally accurate models (seeds, settings): the bars are medians, the whiskers the "
           "10-90% band across the models, and a pair in the main colour is in the top 3 of every model. The "
           "function-level measure is computed on what each model predicts, so two models that split the same "
           "function differently between attention and embeddings agree on it.")

all_entries = entries()
chosen_afm = selection().afm
dataset_name = chosen_afm.dataset if chosen_afm else (all_entries[0].dataset if all_entries else None)
candidates = [e for e in all_entries if e.dataset == dataset_name]
if chosen_afm is not None and chosen_afm.set_dir is not None:
    default = [e.name for e in candidates if e.set_dir == chosen_afm.set_dir]
else:  # the sidebar's models (one set of data)
    default = [e.name for e in (chosen_afm, selection().fm) if e is not None and e.dataset == dataset_name]
names = st.multiselect(f"Models to compare ({dataset_name} data; a set of seeds is the usual choice)",
                       [e.name for e in candidates], default=default, key="which_models")
left, middle, right = st.columns(3)
split = left.selectbox("Split", ["test", "validation"], key="which_split")
sample = middle.select_slider("Rows (a seeded sample)", [500, 1000, 2000, 5000], value=1000, key="which_sample")
references = right.select_slider("Reference rows R", [4, 8, 16, 32], value=16, key="which_refs")

with friendly_errors():
    if not names:
        st.info("Choose at least one model; two or more show how far the models agree.")
        st.stop()
    chosen = [e for e in candidates if e.name in names]
    comparison = compare_entries(chosen, split, sample, references)
    st.caption(comparison.accuracy_note)
    st.subheader("Do the models agree?")
    show_table(comparison.agreement, "agreement",
               "Rank agreement of the field pairs across models, per measure: mean pairwise Spearman and "
               "Kendall's W (1: identical rankings).")
    measure = st.radio("Measure", MEASURES[::-1], horizontal=True, key="which_measure",
                       format_func=lambda m: m, help="; ".join(f"{k}: {v}" for k, v in MEANING.items()))
    st.caption(MEANING[measure])
    bands = comparison.bands[comparison.bands.measure == measure]
    if bands.empty:
        st.info("No model here has this measure (attention needs an AFM with attention).")
    else:
        show_chart(charts.pair_bands(bands, f"Field pairs by {measure}", measure, top=TOP), "which_bands")
        if len(bands) > TOP:
            st.caption(f"The {TOP} strongest of {len(bands)} pairs are drawn; the table below has them all.")
        robust = bands[bands.robust]
        st.markdown(f"**In the top {comparison.top_k} of every model by {measure}:** "
                    + (", ".join(f"{a} x {b}" for a, b in zip(robust.field_a, robust.field_b)) or "no pair"))
        show_table(bands.drop(columns=["measure"]), f"which_{measure}")

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
    st.caption("Attention score: AFM's context-free h^T ReLU(W(v_a*v_b)+b), before the softmax over an "
               "instance's pairs. Interaction: p^T(v_a*v_b). Function-level: the mean mixed difference over the "
               "rows with these two values. Planted: what the pair adds to the synthetic score. The most frequent "
               "12 values of each field are shown.")

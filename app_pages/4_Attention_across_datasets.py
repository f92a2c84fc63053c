"""Attention across datasets: how sharp is attention, which pairs does it favour, can it be trusted?"""
import streamlit as st

from afm.explain import charts
from afm.explain.statistics import attention_shape, compare_explanations, faithfulness_summary, pair_statistics
from afm.models import family
from ui import (
    cached_explanation,
    entries,
    friendly_errors,
    load_entry,
    selection,
    show_chart,
    show_table,
    null_line,
    stability_note,
)

st.title("Attention across datasets")
st.caption("Entropy is divided by log(number of pairs), so datasets with different field counts compare: 1 "
           "means uniform attention, 0 means all weight on one pair. Every model with attention is offered: AFM's "
           "weighs each pair's term; AutoInt's is read per pair as the attention between its two fields, both ways, "
           "averaged over layers and heads and normalised over the pairs (it weighs no term).")

all_entries = entries()
names = [e.name for e in all_entries if family(e.kind).attention]  # AFM's over pairs, AutoInt's between fields
chosen_model = selection().explained
other = next((e for e in all_entries if family(e.kind).attention and not e.null and chosen_model is not None
              and e.dataset != chosen_model.dataset), None)  # attention on another dataset, from the first visit
default = [e.name for e in (chosen_model, other or selection().baseline) if e is not None and e.name in names]
chosen = st.multiselect("Models to compare (two or more)", names, default=default, key="across_models")
split = st.selectbox("Split", ["test", "validation"], key="across_split")

explanations = {}
with friendly_errors():
    for entry in (e for e in all_entries if e.name in chosen):
        loaded, dataset, key = load_entry(entry)
        explanations[f"{entry.name}"] = cached_explanation(key, split, loaded.model, dataset)
if len(explanations) < 2:
    st.info("Choose at least two models above, e.g. an AFM on synthetic data and one on Frappe.")
if explanations:
    st.subheader("Summary")
    show_table(compare_explanations(explanations), "across_summary")
    shapes = {n: attention_shape(ex) for n, ex in explanations.items()}
    show_chart(charts.shape_distributions(shapes),
               "entropy_distributions")
    show_chart(charts.shape_distributions(shapes, "top3_mass"),
               "top3_distributions")
    st.subheader("Mean attention per field pair")
    means = {name: ex.parts["attention"].mean(0) for name, ex in explanations.items()}
    shared = charts.shared_range(*means.values())
    st.caption(f"One colour scale for every map ({shared[0]:.3g} to {shared[1]:.3g}): the same colour is the same "
               "weight. A model with more pairs spreads its weight thinner (uniform is 1/pairs), so its map is "
               "darker overall.")
    columns = st.columns(min(len(explanations), 3))
    for i, (name, ex) in enumerate(explanations.items()):
        with columns[i % len(columns)]:
            show_chart(charts.pair_heatmap(means[name], ex.dataset.field_names, name, "mean attention",
                                           value_range=shared), f"heatmap_{i}")
    st.subheader("One model in detail")
    name = st.selectbox("Model", list(explanations), key="across_detail")
    ex = explanations[name]
    entry = next((e for e in all_entries if e.name == name), None)
    for note in (stability_note(entry), null_line(entry, "attention" if ex.normalised else "contribution")):
        if note:
            st.caption(note)
    statistics = pair_statistics(ex)
    show_chart(charts.pair_distributions(statistics), "pair_distributions")
    show_table(statistics, "pair_statistics")
    st.caption("Faithfulness: per instance, the Spearman correlation between attention, |contribution| and "
               "|ablation effect| over the pairs. Near 1: attention ranks pairs as their effects do; near 0 or "
               "negative: the heatmap is not an explanation of this model's predictions.")
    show_table(faithfulness_summary(ex), "faithfulness")

"""AFM Explorer: `streamlit run app.py`. This is the Home page; the other pages are in pages/. Every page
calls `afm/` for its numbers and charts and computes nothing itself."""
import streamlit as st

from afm.explain import decompose
from afm.registry import registry_table
from afm.statistics import describe_spread
from ui import PAGES, entries, friendly_errors, load_entry, setup, show_table


def home():
    selection = setup("Home")
    st.title("AFM Explorer")
    st.markdown(
        "Which feature interactions matter? A **factorization machine** (FM) sums every pair of features with "
        "equal weight. An **attentional factorization machine** (AFM, Xiao et al., IJCAI 2017) learns how much "
        "each pair counts, per instance, with weights that sum to one over the pairs:")
    st.latex(r"\hat y = w_0 + \sum_i w_i + p^\top \sum_{i<j} a_{ij}\,(v_i \odot v_j), \qquad "
             r"a_{ij} = \operatorname{softmax}_{(i,j)}\; h^\top \mathrm{ReLU}(W (v_i \odot v_j) + b)")
    with friendly_errors():
        model, dataset, _ = load_entry(selection.afm)
        if model is not None:
            parts = decompose(model.model, dataset, "test", 0)
            top = parts["pairs"][0]
            st.markdown(f"**With this model's own numbers**, for instance 0 of the {dataset.name} test split "
                        f"(label {parts['label']:+g}):")
            st.latex(rf"\hat y = \underbrace{{{parts['bias']:+.3f}}}_{{w_0}} "
                     rf"\underbrace{{{parts['first_order_total']:+.3f}}}_{{\sum_i w_i}} "
                     rf"\underbrace{{{parts['pairs_total']:+.3f}}}_{{\text{{{len(parts['pairs'])} pairs}}}} = {parts['prediction']:+.3f}")
            spread = model.meta.get("attention_spread")
            if spread:
                (st.warning if spread["degenerate"] else st.caption)(describe_spread(spread, "afm") + " (validation split).")
            st.caption(f"The largest pair term is {top['feature_a']} x {top['feature_b']}: attention "
                       f"{top['attention']:.3f} times interaction {top['interaction']:+.3f} = {top['contribution']:+.3f}. "
                       "FM would give every pair weight 1.")
    st.subheader("What each page answers")
    for script, title, icon, question in PAGES[1:]:
        st.page_link(script, label=f"**{title}**: {question}", icon=icon)
    st.subheader("Models in the registry")
    show_table(registry_table(entries()), "models", "Saved models, newest first; shipped models last.")


home()

"""AFM Explorer: `streamlit run app.py`. The page list lives here (st.navigation); Home is drawn here, the
other pages are in app_pages/ (a folder named pages/ beside this file would switch Streamlit back to its
older multipage mode, which ignores st.navigation on a deep link). Every page calls `afm/` for its numbers
and charts and computes nothing itself."""
import streamlit as st

from afm.core.provenance import git_state
from afm.explain import charts
from afm.explain.parts import decompose
from afm.explain.statistics import describe_spread, pair_statistics
from afm.store.registry import registry_table
from ui import (
    cached_explanation,
    entries,
    friendly_errors,
    load_entry,
    show_chart,
    show_registry_problems,
    show_table,
    sidebar,
    null_line,
    stability_note,
)


def importance_picture():
    """The selected model's field pairs by mean |contribution| on the test split, and how stable that is."""
    chosen = st.session_state["selection"].explained or st.session_state["selection"].baseline
    model, dataset, key = load_entry(chosen)
    if model is None:
        st.info("No model yet: train one on the Train page.")
        return
    table = pair_statistics(cached_explanation(key, "test", model.model, dataset))
    labels = (table.field_a + " x " + table.field_b).tolist()
    show_chart(charts.pair_bars(labels, table.mean_abs_contribution, f"Which field pairs matter most in {chosen.name} "
                                f"({dataset.name}, test split)", "mean |contribution|", top=12), "home_pairs")
    note = stability_note(chosen)
    null = null_line(chosen, "contribution")
    st.caption(" ".join(line for line in (note, null) if line) + " Whether this survives retraining, and what the "
               "null and the data alone would show: the page Which interactions matter?")


def home():
    st.title("AFM Explorer")
    with friendly_errors():
        importance_picture()
    st.markdown(
        "Which feature interactions matter? A **factorization machine** (FM) sums every pair of features with "
        "equal weight. An **attentional factorization machine** (AFM, Xiao et al., IJCAI 2017) learns how much "
        "each pair counts, per instance, with weights that sum to one over the pairs:")
    st.latex(r"\hat y = w_0 + \sum_i w_i + p^\top \sum_{i<j} a_{ij}\,(v_i \odot v_j), \qquad "
             r"a_{ij} = \operatorname{softmax}_{(i,j)}\; h^\top \mathrm{ReLU}(W (v_i \odot v_j) + b)")
    with friendly_errors():
        model, dataset, _ = load_entry(st.session_state["selection"].explained)
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
                (st.warning if spread["degenerate"] else st.caption)(describe_spread(spread, model.model.config) + " (validation split).")
            st.caption(f"The largest pair term is {top['feature_a']} x {top['feature_b']}: attention "
                       f"{top['attention']:.3f} times interaction {top['interaction']:+.3f} = {top['contribution']:+.3f}. "
                       "FM would give every pair weight 1.")
    st.subheader("What each page answers")
    for page, question in PAGES[1:]:
        st.page_link(page, label=f"**{page.title}**: {question}", icon=page.icon)
    st.subheader("Models in the registry")
    show_registry_problems()
    show_table(registry_table(entries()), "models", "Saved models, newest first; shipped models last.")


PAGES = [  # (page, the question it answers)
    (st.Page(home, title="Home", icon=":material/home:", default=True),
     "What are FM and AFM, and which models are here?"),
    (st.Page("app_pages/1_Train.py", title="Train", icon=":material/model_training:", url_path="Train"),
     "Train FM or AFM on synthetic data, Frappe, MovieLens or your own CSV; manage saved models."),
    (st.Page("app_pages/2_Instance_explorer.py", title="Instance explorer", icon=":material/search:",
             url_path="Instance_explorer"),
     "Why did the model predict this? Attention, the exact decomposition, ablation, what-if."),
    (st.Page("app_pages/3_FM_vs_AFM.py", title="FM vs AFM", icon=":material/compare_arrows:", url_path="FM_vs_AFM"),
     "Is AFM really better here, by how much, and for which instances?"),
    (st.Page("app_pages/4_Attention_across_datasets.py", title="Attention across datasets", icon=":material/grid_on:",
             url_path="Attention_across_datasets"),
     "How sharp is attention, which pairs does it favour, and can it be trusted?"),
    (st.Page("app_pages/5_Planted_interactions.py", title="Planted interactions", icon=":material/school:",
             url_path="Planted_interactions"),
     "Plant the interactions yourself, train in seconds, and see whether attention finds them."),
    (st.Page("app_pages/6_Which_interactions_matter.py", title="Which interactions matter?", icon=":material/hub:",
             url_path="Which_interactions_matter"),
     "Which field pairs matter by four measures, and does the answer survive another equally good model?"),
]

st.set_page_config(page_title="AFM Explorer", page_icon=":material/hub:", layout="wide")
git_state()  # the commit of the code this server loaded, recorded with every model it trains
page = st.navigation([p for p, _ in PAGES])
st.session_state["selection"] = sidebar()
page.run()

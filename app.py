"""AFM Explorer: `streamlit run app.py`. The page list lives here (st.navigation); Home is drawn here, the
other pages are in app_pages/ (a folder named pages/ beside this file would switch Streamlit back to its
older multipage mode, which ignores st.navigation on a deep link). Every page calls `afm/` for its numbers
and charts and computes nothing itself."""
import streamlit as st

from afm.core.provenance import git_state
from afm.explain import charts
from afm.explain.parts import decompose
from afm.explain.lesson import lesson, metric_contrast, planted_pairs
from afm.explain.statistics import describe_spread, pair_statistics
from afm.store.registry import readable_dataset, registry_table
from ui import (
    cached_explanation,
    delta_colour,
    entries,
    friendly_errors,
    load_entry,
    model_label,
    null_line,
    plain,
    show_chart,
    show_registry_problems,
    show_table,
    sidebar,
    stability_note,
)


def importance_picture():
    """The lesson first: which pairs the selected model relies on, in one sentence and one chart (planted
    pairs in their own colour), then how it compares with the baseline on test."""
    chosen = st.session_state["selection"].explained or st.session_state["selection"].baseline
    sentence, picture = st.empty(), st.empty()
    if chosen is None:
        st.info("No model yet: train one on the Train page.")
        return
    with picture.container():
        show_chart(charts.placeholder(f"Which field pairs matter most in {chosen.name}"), "home_pairs_placeholder")
    model, dataset, key = load_entry(chosen)
    explanation = cached_explanation(key, "test", model.model, dataset)
    label = model_label(model)
    sentence.markdown(f"#### {plain(lesson(explanation, label))}")
    table = pair_statistics(explanation)
    labels = (table.field_a + " x " + table.field_b).tolist()
    planted = [f"{a} x {b}" for a, b in planted_pairs(explanation)]
    with picture.container():
        show_chart(charts.pair_bars(labels, table.mean_abs_contribution, f"Which field pairs matter most in {label} "
                                    f"({readable_dataset(dataset.name)}, test split)", "mean |pair term|", top=12,
                                    highlight=planted), "home_pairs")
    contrast(chosen, st.session_state["selection"].baseline)
    note = stability_note(chosen)
    null = null_line(chosen, "contribution")
    st.caption(" ".join(line for line in (note, null) if line) + " Whether this survives retraining, and what the "
               "null and the data alone would show: the page Which interactions matter?")


def contrast(chosen, baseline) -> None:
    """The two sidebar models side by side on test, on the first screen."""
    if baseline is None or baseline.name == chosen.name:
        return
    model, base = (load_entry(e)[0] for e in (chosen, baseline))
    label, base_label = model_label(model), model_label(base)
    if label == base_label:
        label, base_label = f"{label} (model)", f"{base_label} (baseline)"
    try:
        metric, value, base_value, lower = metric_contrast(model.meta["metrics"]["test"], base.meta["metrics"]["test"],
                                                           label, base_label)
    except ValueError:
        return
    relative = (value - base_value) / abs(base_value) if base_value else 0.0
    left, right = st.columns(2)
    left.metric(f"{base_label} {metric}", f"{base_value:.4f}")
    right.metric(f"{label} {metric}", f"{value:.4f}", delta=f"{relative:+.1%}", delta_color=delta_colour(relative, lower))
    st.page_link(PAGES[3][0], label="Is that difference more than noise? FM vs AFM", icon=":material/compare_arrows:")


def formula() -> None:
    """The model's formula and one instance's own numbers (behind an expander: jargon for the curious)."""
    with st.expander("How AFM computes a prediction: the formula, with this model's own numbers"):
        st.markdown(
            "A **factorization machine** (FM) sums every pair of features with equal weight. An **attentional "
            "factorization machine** (AFM, Xiao et al., IJCAI 2017) learns how much each pair counts, per "
            "instance, with weights that sum to one over the pairs:")
        st.latex(r"\hat y = w_0 + \sum_i w_i + p^\top \sum_{i<j} a_{ij}\,(v_i \odot v_j)")
        st.latex(r"a_{ij} = \operatorname{softmax}_{(i,j)}\; h^\top \mathrm{ReLU}(W (v_i \odot v_j) + b)")
        model, dataset, _ = load_entry(st.session_state["selection"].explained)
        if model is None:
            return
        parts = decompose(model.model, dataset, "test", 0)
        top = parts["pairs"][0]
        st.markdown(f"**With this model's own numbers**, for instance 0 of the {readable_dataset(dataset.name)} "
                    f"test split (label {parts['label']:+g}):")
        logit = parts.get("probability") is not None
        left = r"\text{logit}" if logit else r"\hat y"
        st.latex(left + rf" = \underbrace{{{parts['bias']:+.3f}}}_{{w_0}} "
                 rf"\underbrace{{{parts['first_order_total']:+.3f}}}_{{\sum_i w_i}} "
                 rf"\underbrace{{{parts['pairs_total']:+.3f}}}_{{\text{{{len(parts['pairs'])} pairs}}}} = {parts['prediction']:+.3f}")
        if logit:
            st.markdown(f"The model was trained with logistic loss, so this sum is a logit: the probability of +1 is "
                        f"1 / (1 + e^(-logit)) = **{parts['probability']:.3f}**.")
        st.caption(f"The largest pair term is {plain(top['feature_a'])} x {plain(top['feature_b'])}: attention "
                   f"{top['attention']:.3f} times interaction {top['interaction']:+.3f} = {top['contribution']:+.3f}. "
                   "FM would give every pair weight 1.")
        spread = model.meta.get("attention_spread")
        if spread:
            (st.warning if spread["degenerate"] else st.caption)(plain(describe_spread(spread, model.model.config))
                                                                  + " (validation split).")


def home():
    st.title("AFM Explorer")
    st.caption("Which feature interactions does a model rely on, and should you believe it? The sidebar picks the "
               "model; every page explains it.")
    with friendly_errors():
        importance_picture()
    with friendly_errors():
        formula()
    st.subheader("What each page answers")
    for page, question in PAGES[1:]:  # the question beneath the link: a link does not wrap on a phone
        st.page_link(page, label=f"**{page.title}**", icon=page.icon)
        st.caption(question)
    with st.expander("Models in the registry"):
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
     "Is the model better than its baseline here, by how much, and for which instances?"),
    (st.Page("app_pages/4_Attention_across_datasets.py", title="Attention across datasets", icon=":material/grid_on:",
             url_path="Attention_across_datasets"),
     "How sharp is attention, which pairs does it favour, and can it be trusted?"),
    (st.Page("app_pages/5_Planted_interactions.py", title="Planted interactions", icon=":material/school:",
             url_path="Planted_interactions"),
     "Plant the interactions yourself, train in seconds, and see whether attention finds them."),
    (st.Page("app_pages/6_Which_interactions_matter.py", title="Which interactions matter?", icon=":material/hub:",
             url_path="Which_interactions_matter"),
     "Which field pairs matter by four measures, and does the answer survive another equally good model?"),
    (st.Page("app_pages/7_Published_results.py", title="Published results", icon=":material/library_books:",
             url_path="Published_results"),
     "What the committed multi-seed runs found: the fair verdicts, the ablations, the paper reproduced."),
]

st.set_page_config(page_title="AFM Explorer", page_icon=":material/hub:", layout="wide")
git_state()  # the commit of the code this server loaded, recorded with every model it trains
page = st.navigation([p for p, _ in PAGES])
st.session_state["selection"] = sidebar()
page.run()

"""Instance explorer: why did the model predict this for this instance?"""
import numpy as np
import streamlit as st

from afm.explain import charts
from afm.explain.field_attention import attention_agreement, field_attention
from afm.explain.interactions import instance_frame, instance_interactions
from afm.explain.parts import PAIR_VIEWS, decompose_ids, pair_labels, pair_view, pairs_frame, side_by_side
from afm.explain.selection import random_row, rows_by_disagreement, rows_by_error, rows_matching
from afm.explain.statistics import attention_spread, describe_spread
from ui import (friendly_errors, model_label, null_line, plain, selected_pair, selection, show_chart, show_table,
                stability_note)

st.title("Instance explorer")
LOG_ODDS_NOTE = ("This model was trained with logistic loss: its parts add up to the logit, so each contribution "
                 "is a change in log-odds (+0.69 doubles the odds of +1), not in probability.")


def pick_row(dataset, split, pair) -> int:
    n = len(dataset.splits[split])
    how = st.radio("Pick an instance", ["by index", "at random", "by feature values", "largest error",
                                        "largest disagreement with the baseline"], horizontal=True, key="pick_how",
                   help="Largest error: of the model the sidebar explains. Disagreement: between it and the baseline.")
    if how == "by index":
        return int(st.number_input(f"Row of the {split} split (0 to {n - 1})", 0, n - 1, 0, key="pick_index"))
    if how == "at random":
        if st.button("Another one", key="pick_again") or "pick_random" not in st.session_state:
            st.session_state["pick_random"] = random_row(dataset, split)
        return min(st.session_state["pick_random"], n - 1)
    if how == "by feature values":
        cols = st.columns(min(4, dataset.num_fields))
        wanted = {}
        for f, field in enumerate(dataset.field_names):
            ids = dataset.field_values(field)
            choice = cols[f % len(cols)].selectbox(field, [None, *ids.tolist()], key=f"pick_{field}",
                                                   format_func=lambda i: "any" if i is None else dataset.feature_names[i])
            if choice is not None:
                wanted[field] = choice
        rows = rows_matching(dataset, split, wanted)
        if len(rows) == 0:
            st.warning("No instance of this split has all these values; showing row 0.")
            return 0
        st.caption(f"{len(rows):,} matching instances")
        return int(st.selectbox("Matching row", rows.tolist(), key="pick_matching"))
    if not pair.same_data:
        st.warning("Choose a model and a baseline of the same data in the sidebar for this.")
        return 0
    errors = pair.errors(split)
    ranked = rows_by_error(errors) if how == "largest error" else rows_by_disagreement(errors)
    show_table(ranked, f"{how.replace(' ', '_')}", height=200)
    return int(st.selectbox("Row", ranked.row.tolist(), key="pick_ranked"))


def show_prediction(result: dict, kind: str, column) -> None:
    if result["probability"] is None:
        column.metric(f"{kind} prediction", f"{result['prediction']:+.4f}")
    else:
        column.metric(f"{kind} probability of +1", f"{result['probability']:.3f}", help=LOG_ODDS_NOTE)


@st.cache_data(show_spinner="Ranking the pairs by attention and by the function...", max_entries=8)
def agreement_with_function(model_key: str, split: str, _model, _dataset) -> dict:
    return attention_agreement(_model, _dataset, split, sample=500)


def show_non_additive(model, dataset, x, result: dict, kind: str, changed: bool, label: float, split: str) -> None:
    """A family with no exact per-pair split: this instance's function-level interactions as the heatmap
    and ranking, the exact parts it has and the rest in one bar, and self-attention maps where it has them."""
    config = model.model.config
    a, b, c = st.columns(3)
    show_prediction(result, kind, a)
    b.metric("Label", "changed instance" if changed else f"{label:+g}")
    c.metric("Non-additive part", f"{result['rest']:+.4f}",
             help="What the MLP, cross network or self-attention adds: it splits into no per-pair terms.")
    values = instance_interactions(model.model, dataset, x)
    st.caption(plain(f"{describe_spread({}, config)}. The heatmap is the function-level interaction of each field "
                     "pair at this instance: f(x) - f(x, A from r) - f(x, B from r) + f(x, A and B from r), averaged "
                     "over 64 reference rows r of the train split (zero for a pair that does not act together "
                     "here). It needs only the model's predictions."))
    labels = pair_labels(dataset.field_names)
    feature_names = [dataset.feature_names[i] for i in x]
    left, right = st.columns(2)
    with left:
        show_chart(charts.pair_heatmap(values, dataset.field_names, f"{kind}: function-level interaction at this "
                                       "instance", "interaction", feature_names=feature_names, diverging=True),
                   "instance_function_level")
    with right:
        show_chart(charts.pair_bars(labels, np.abs(values).tolist(), "Pairs ranked by |function-level interaction|",
                                    "|interaction|", top=12), "instance_pairs")
    show_chart(charts.decomposition_waterfall(result), "instance_waterfall")
    exact = "bias, first-order terms, " + ("the FM part's pair terms, " if result["pair_terms"] else "")
    st.caption(f"The bars add up exactly to the prediction: {exact}and the non-additive part in one bar."
               + ("" if result["probability"] is None else f" Logit {result['prediction']:+.4f}, probability "
                  f"{result['probability']:.3f}. {LOG_ODDS_NOTE}"))
    show_table(instance_frame(dataset, x, values, result), "instance_function_level")
    if config.has_field_attention:
        st.subheader("Self-attention over fields, per layer and head")
        maps = field_attention(model.model, x[None])[0]
        show_chart(charts.field_attention_maps(maps, dataset.field_names, f"{kind}: which fields each field reads",
                                               feature_names), "instance_field_attention")
        agreement = agreement_with_function(f"{model.path} {model.meta.get('created', '')}", split, model.model, dataset)
        st.caption(plain(f"Attention is not interaction: it says which fields a field's output reads, not which pairs "
                         f"act together on the prediction. Over 500 rows of the {split} split, the pairs ranked by "
                         f"attention (both ways, every layer and head) and by function-level |interaction| agree at "
                         f"Spearman {agreement['spearman']:.2f}."))


with friendly_errors():
    pair = selected_pair()
    model, model_dataset = pair.model, pair.dataset
    if model is None:
        st.info("No model is selected: train one on the Train page, or pick one in the sidebar.")
        st.stop()
    if pair.baseline is not None and pair.explained is not None and not pair.same_data:
        st.warning("The selected model and baseline were trained on different data; the baseline's view is left out.")
    split = st.selectbox("Split", ["test", "validation", "train"], key="instance_split")
    row = pick_row(model_dataset, split, pair)
    x = model_dataset.splits[split].x[row].copy()
    label = float(model_dataset.splits[split].y[row])

    with st.expander("What if? Change any field's value", expanded=False):
        cols = st.columns(min(4, model_dataset.num_fields))
        for f, field in enumerate(model_dataset.field_names):
            ids = model_dataset.field_values(field).tolist()
            x[f] = cols[f % len(cols)].selectbox(field, ids, index=ids.index(int(x[f])), key=f"whatif_{split}_{row}_{field}",
                                                 format_func=lambda i: model_dataset.feature_names[i])
    changed = not (x == model_dataset.splits[split].x[row]).all()

    result = decompose_ids(model.model, model_dataset, x, None if changed else label)
    kind = model_label(model)
    if not model.model.config.additive:
        show_non_additive(model, model_dataset, x, result, kind, changed, label, split)
        st.stop()
    a, b, c = st.columns(3)
    show_prediction(result, kind, a)
    b.metric("Label", "changed instance" if changed else f"{label:+g}")
    faith = result["faithfulness"]["attention_vs_ablation"]
    c.metric("Attention vs ablation (Spearman)", "n/a" if faith is None else f"{faith:.2f}",
             help="Do the pairs with the most attention also change the prediction most when removed? "
                  "1: attention ranks the pairs exactly as their removal effects do.")
    feature_names = [model_dataset.feature_names[i] for i in x]
    spread = attention_spread(pair.explanation(split))
    if spread["degenerate"] and model.model.config.normalised_weights:
        st.warning(describe_spread(spread, model.model.config))
    pairs = pairs_frame(result)
    view = st.radio("Heatmap shows", list(PAIR_VIEWS), horizontal=True, key="instance_view",
                    help="Raw attention can look flat while the model relies on it: small weight shifts on large "
                         "pair terms. Relative to uniform, 1 is the weight every pair would get without attention.")
    st.caption(plain(f"{PAIR_VIEWS[view]}. {describe_spread(spread, model.model.config)}."))
    entry = selection().explained if model is pair.explained else selection().baseline
    for note in (stability_note(entry), null_line(entry, "contribution")):
        if note:
            st.caption(note)
    left, right = st.columns(2)
    with left:
        show_chart(charts.pair_heatmap(pair_view(result, model_dataset.field_names, view), model_dataset.field_names,
                                       f"{kind}: {view} over field pairs", view, feature_names=feature_names,
                                       diverging=view == "contribution"),
                   "instance_attention")
    with right:
        show_chart(charts.pair_bars(pairs.pair.tolist(), pairs.attention.tolist(), "Pairs ranked by attention",
                                    "attention", top=12), "instance_pairs")
    show_chart(charts.decomposition_waterfall(result), "instance_waterfall")
    st.caption("The bars add up exactly to the prediction: bias, first-order terms, and each pair's attention "
               "times its interaction. Ablation: the prediction change if the pair were removed and attention "
               "renormalised over the rest."
               + ("" if result["probability"] is None else f" Logit {result['prediction']:+.4f}, probability "
                  f"{result['probability']:.3f}. {LOG_ODDS_NOTE}"))
    show_table(pairs[["pair", "attention", "interaction", "contribution", "ablation"]], "instance_decomposition")
    if pair.same_data and not pair.baseline.model.config.additive:
        baseline = pair.baseline.model.config
        st.subheader(f"The baseline's view of the same instance ({baseline.label})")
        st.caption(f"{baseline.label} has no exact per-pair split: its function-level interactions at this instance "
                   "beside this model's exact pair terms.")
        show_table(instance_frame(model_dataset, x, instance_interactions(pair.baseline.model, model_dataset, x),
                                  result, name="baseline_function_level"), "fm_vs_afm_instance")
    elif pair.same_data:
        baseline = pair.baseline.model.config
        st.subheader(f"The baseline's view of the same instance ({baseline.label})")
        baseline_result = decompose_ids(pair.baseline.model, model_dataset, x, None if changed else label)
        st.caption(f"{baseline.label} predicts {baseline_result['prediction']:+.4f}"
                   + (", weighting every pair 1" if baseline.pairwise and not baseline.normalised_weights else "")
                   + f"; {kind} predicts {result['prediction']:+.4f}.")
        show_table(side_by_side(baseline_result, result), "fm_vs_afm_instance")

"""FM vs AFM: is the selected model better than its baseline here, by how much, and for which instances? (The
committed multi-seed verdicts live on the page Published results.)"""
import streamlit as st

from afm.core.metrics import METRIC_LABELS
from afm.explain import charts
from afm.explain.compare import (bootstrap_comparison, comparison_words, errors_by_segment, largest_differences,
                                 results_beside_paper)
from ui import delta_colour, download_csv, friendly_errors, model_label, plain, selected_pair, show_chart, show_table

st.title("FM vs AFM")
st.caption("The two models chosen in the sidebar (FM and AFM by default), on their own data. The project's "
           "committed multi-seed verdicts are on the page Published results.")

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
    st.markdown(f"#### {plain(comparison_words(table, B, A, split))}")
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
                 delta_color=delta_colour(row.relative, lower_is_better, clear=row.ci_high < 0 or row.ci_low > 0))
        c.metric(f"95% interval of {B} - {A} ({label})", f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]",
                 help="Paired bootstrap over instances (1,000 resamples). An interval that excludes 0 means the "
                      "difference is unlikely to be noise of this split.")
    st.caption("RMSE clips predictions to the label range, as the AFM authors did; a logistic model's probability "
               "is mapped to it (-1 + 2p). AUC ranks the scores; logloss reads a logistic model's probabilities. "
               "One split and one seed of each model: the page Which interactions matter? and the verdicts on "
               "Published results show the spread over seeds.")
    with st.expander("Every metric with its interval"):
        show_table(table, "fm_vs_afm_metrics", download=False)
    paper = results_beside_paper(table, dataset.name)
    if not paper.empty:
        with st.expander("Beside the paper's Table 2 (test RMSE, k = 256)"):
            st.caption(plain(f"Our FM sits in the LibFM row. Our data: {dataset.notes or dataset.name}."))
            show_table(paper, "paper_table", download=False)
    download_csv(table, "fm_vs_afm_metrics", label="Download the metrics (CSV)")

    st.subheader("For which instances?")
    show_chart(charts.error_scatter(errors, f"Per-instance absolute error, {A} against {B}", A, B), "error_scatter")
    segments = errors_by_segment(errors, dataset, split)
    kinds = list(dict.fromkeys(segments.segment_kind))
    chosen = st.multiselect("Segments", kinds, default=kinds[:2], key="compare_segments")
    show_chart(charts.segment_bars(segments, chosen, names=(A, B)), "segment_rmse")
    with st.expander("Every segment"):
        show_table(segments, "segments", download=False)
    with st.expander(f"Where {B} gains and loses most against {A}"):
        show_table(largest_differences(errors), "largest_differences", download=False)
    download_csv(errors, f"instance_errors_{split}", label="Download every instance's errors (CSV)")

    st.subheader("How they trained")
    show_chart(charts.learning_curves({A: fm.meta.get("history", []), B: afm.meta.get("history", [])}),
               "learning_curves")

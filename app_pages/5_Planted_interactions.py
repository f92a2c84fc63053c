"""Planted interactions: plant pairs, train FM and AFM in seconds, and see whether attention finds them."""
import streamlit as st

from afm.data.synthetic import DEFAULT_PLANTED, FIELDS
from afm.experiments.teaching import planted_experiment, planted_truth
from afm.explain import charts
from afm.explain.parts import field_pairs
from afm.training.jobs import TaskJob
from ui import friendly_errors, show_chart, show_table

st.title("Planted interactions")
st.caption("Only the pairs you plant drive the label; every other pair is noise. A model that explains well "
           "puts its attention on the planted pairs.")

planted = st.multiselect("Pairs to plant", field_pairs(list(FIELDS)), default=[tuple(p) for p in DEFAULT_PLANTED],
                         format_func=lambda pair: f"{pair[0]} x {pair[1]}", max_selections=4, key="planted_pairs")
left, middle, right = st.columns(3)
strength = left.slider("Strength of the planted pairs", 0.2, 3.0, 1.0, 0.1, key="planted_strength")
noise = middle.slider("Noise", 0.0, 2.0, 0.3, 0.1, key="planted_noise")
rows = right.select_slider("Rows", [5000, 10000, 20000, 40000], value=20000, key="planted_rows")


@st.cache_resource(max_entries=16, show_spinner=False)
def planted_job(pairs: tuple, strength: float, noise: float, rows: int) -> TaskJob:
    """One background run per setting, shared by every session: a setting seen before shows at once."""
    return TaskJob("planted", planted_experiment, planted=list(pairs), strength=strength, noise=noise,
                   rows=rows).start()


def show_result(job: TaskJob) -> None:
    result = job.result
    a, b, c = st.columns(3)
    a.metric("FM test RMSE", f"{result.fm_rmse:.4f}")
    b.metric("AFM test RMSE", f"{result.afm_rmse:.4f}", delta=f"{result.afm_rmse - result.fm_rmse:+.4f}",
             delta_color="inverse")
    found = result.precision.set_index("ranking").loc["attention", "precision"]
    c.metric(f"Planted pairs in AFM's top {len(planted)} by attention", f"{found:.0%}")
    if job.snapshot().message:
        st.caption(job.snapshot().message)
    show_table(result.precision, "planted_precision")
    ex = result.afm_explanation
    show_chart(charts.pair_heatmap(ex.parts["attention"].mean(0), ex.dataset.field_names,
                                   "AFM's mean attention (planted pairs should light up)", "mean attention"),
               "planted_heatmap")
    show_chart(charts.pair_bars(ex.labels, ex.parts["attention"].mean(0), "Pairs by mean attention"), "planted_bars")
    show_chart(charts.learning_curves(result.histories), "planted_curves")


@st.fragment(run_every=0.5)
def watch(job: TaskJob) -> None:
    """Progress and live curves while FM, then AFM, train; the page redraws once when they are done."""
    state = job.snapshot()
    if not job.running:
        st.rerun(scope="app")
    stage = state.stage or "FM"
    st.progress(min(1.0, state.batch / state.batches) if state.batches else 0.0,
                text=f"Training {stage} (FM first, then AFM): epoch {max(state.epoch, 1)}, early stopping on "
                     f"validation")
    if st.button("Stop and show the best epochs so far", key="planted_stop"):
        job.stop()
    if any(len(h) > 1 for h in state.histories.values()):
        show_chart(charts.learning_curves(state.histories, "Train and validation RMSE, live"), "planted_live_curves")


if not planted:
    st.info("Choose at least one pair to plant.")
    st.stop()
with friendly_errors():
    fields, truth = planted_truth(planted, strength)
    show_chart(charts.pair_heatmap(truth, fields, "What you planted: the pairs a good explanation should find",
                                   "planted strength"), "planted_truth")
    job = planted_job(tuple(planted), strength, noise, rows)
    if job.running:
        watch(job)
    elif job.snapshot().status == "failed":
        st.error(f"Training failed: {job.snapshot().message}")
    else:
        show_result(job)

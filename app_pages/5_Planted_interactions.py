"""Planted interactions: plant pairs, train FM and AFM in seconds, and see whether attention finds them."""
import streamlit as st

from afm.data.synthetic import DEFAULT_PLANTED, FIELDS
from afm.experiments.teaching import planted_experiment, planted_truth, shipped_planted
from afm.explain import charts
from afm.explain.parts import field_pairs
from afm.models.families import hyperparameters
from afm.training.jobs import TaskJob, progress_line
from ui import delta_colour, friendly_errors, show_chart, show_table

st.title("Planted interactions")
st.caption("Only the pairs you plant drive the label; every other pair is noise. A model that explains well "
           "puts its attention on the planted pairs.")

planted = st.multiselect("Pairs to plant", field_pairs(list(FIELDS)), default=[tuple(p) for p in DEFAULT_PLANTED],
                         format_func=lambda pair: f"{pair[0]} x {pair[1]}", max_selections=4, key="planted_pairs")
left, middle, right = st.columns(3)
strength = left.slider("Strength of the planted pairs", 0.2, 3.0, 1.0, 0.1, key="planted_strength")
noise = middle.slider("Noise", 0.0, 2.0, 0.3, 0.1, key="planted_noise")
rows = right.select_slider("Rows", [5000, 10000, 20000, 40000], value=20000, key="planted_rows")


KEPT_RESULTS = 16  # finished settings kept for every session; each holds an explained test split


@st.cache_resource(show_spinner=False)
def finished_results() -> dict:
    """Finished experiments by setting, shared by every browser session: a setting seen before shows at once."""
    return {}


def keep_result(settings: tuple, result) -> None:
    kept = finished_results()
    kept[settings] = result
    while len(kept) > KEPT_RESULTS:  # the oldest first: dicts keep insertion order
        kept.pop(next(iter(kept)))


@st.cache_resource(show_spinner=False)
def shipped_result(pairs: tuple, strength: float, noise: float, rows: int):
    return shipped_planted(list(pairs), strength, noise, rows)


def current_job(settings: tuple) -> TaskJob:
    """This browser session's run for these settings; the run of settings it replaces is stopped (moving a
    slider five times trains one model pair, not five)."""
    previous = st.session_state.get("planted_job")
    if previous is not None and key(previous) == settings:
        return previous
    if previous is not None and previous.running:
        previous.stop()  # said by the page, which stopped it first
    pairs, strength, noise, rows = settings
    job = TaskJob("planted", planted_experiment, planted=list(pairs), strength=strength, noise=noise, rows=rows)
    st.session_state["planted_job"] = job.start()
    return job


def key(job: TaskJob) -> tuple:
    """The settings a run was started with, in the form the page keys its results by."""
    arguments = job.settings
    return (tuple(tuple(p) for p in arguments["planted"]), arguments["strength"], arguments["noise"], arguments["rows"])


def show_result(result, note: str = "") -> None:
    a, b, c = st.columns(3)
    a.metric("FM test RMSE", f"{result.fm_rmse:.4f}")
    b.metric("AFM test RMSE", f"{result.afm_rmse:.4f}", delta=f"{result.afm_rmse - result.fm_rmse:+.4f}",
             delta_color=delta_colour((result.afm_rmse - result.fm_rmse) / result.fm_rmse, lower_is_better=True))
    found = result.precision.set_index("ranking").loc["attention", "precision"]
    c.metric(f"Planted pairs in AFM's top {len(planted)} by attention", f"{found:.0%}")
    if note:
        st.caption(note)
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
    done, line = progress_line(state, hyperparameters("synthetic", stage.lower())["epochs"])
    st.progress(done, text=f"Training {stage} (FM first, then AFM; early stopping on validation): {line}")
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
    settings = (tuple(tuple(p) for p in planted), strength, noise, rows)
    job = st.session_state.get("planted_job")
    if job is not None and key(job) != settings and job.running:
        job.stop()  # a setting changed: the run for the old one is of no use any more
        st.session_state["planted_superseded"] = key(job)
    superseded = st.session_state.pop("planted_superseded", None)
    if superseded is not None:
        st.caption(f"The run for the previous setting (strength {superseded[1]:g}, noise {superseded[2]:g}, "
                   f"{superseded[3]:,} rows) was stopped: only the newest setting trains.")
    done = finished_results().get(settings)
    shipped = shipped_result(*settings) if done is None else None
    if done is None and shipped is not None and not (job is not None and key(job) == settings):
        show_result(shipped, "Shown at once: the shipped FM and AFM were trained on exactly this data (the "
                             "synthetic default; AFM from FM's embeddings, as the paper does). Change a setting "
                             "to train new ones, or train these here (FM, then AFM from scratch, about a minute).")
        if st.button("Train FM and AFM on this data here", key="planted_retrain"):
            current_job(settings)
            st.rerun()
    elif done is not None:
        show_result(done)
    else:
        job = current_job(settings)
        if job.running:
            watch(job)
        elif job.snapshot().status == "failed":
            st.error(f"Training failed: {job.snapshot().message}")
        else:
            if not job.snapshot().stop_requested:
                keep_result(settings, job.result)  # a stopped run is not the setting's result
            show_result(job.result, job.snapshot().message)

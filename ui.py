"""The Streamlit glue every page shares: page set-up with the navigation and the model choice in the
sidebar, cached loading of models, data and explanations, and helpers that show charts (PNG download in
the chart toolbar) and tables (CSV download). Computation stays in `afm/`; this module only caches and
arranges. It lives beside app.py, not in pages/, because Streamlit makes every file in pages/ a page."""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from afm.checkpoints import LoadedModel, load_model
from afm.compare import paired_errors
from afm.data import Dataset, load_dataset
from afm.errors import AFMError
from afm.explain import SplitExplanation, explain_split
from afm.registry import ModelEntry, list_models, models_dir

PENDING = "pending_selection"  # a page asks the sidebar to select models on the next run


@contextmanager
def friendly_errors():
    """Show a problem the user can fix as a readable message; the page and app keep working."""
    try:
        yield
    except AFMError as exc:
        st.error(str(exc))


def model_key(entry: ModelEntry) -> str:
    """Changes when the model directory is replaced or renamed, so caches never serve a stale model."""
    meta = entry.path / "model.json"
    return f"{entry.path}:{meta.stat().st_mtime_ns if meta.exists() else 0}"


@st.cache_resource(show_spinner="Loading the model...", max_entries=32)
def cached_model(key: str) -> LoadedModel:
    return load_model(key.rsplit(":", 1)[0])


@st.cache_data(show_spinner="Loading the data...", max_entries=8)
def cached_dataset(source_json: str) -> Dataset:
    return load_dataset(json.loads(source_json))


@st.cache_resource(show_spinner="Explaining every instance of the split...", max_entries=16)
def cached_explanation(key: str, split: str, _model, _dataset: Dataset) -> SplitExplanation:
    return explain_split(_model, _dataset, split)


@st.cache_data(show_spinner="Comparing FM and AFM instance by instance...", max_entries=16)
def cached_errors(fm_key: str, afm_key: str, split: str, _fm, _afm, _dataset: Dataset) -> pd.DataFrame:
    return paired_errors(_fm, _afm, _dataset, split)


def dataset_of(loaded: LoadedModel) -> Dataset:
    return cached_dataset(json.dumps(loaded.meta["data"]["source"], sort_keys=True))


def load_entry(entry: ModelEntry | None):
    """(LoadedModel, Dataset, cache key) of a registry entry, or three Nones."""
    if entry is None:
        return None, None, None
    key = model_key(entry)
    loaded = cached_model(key)
    return loaded, dataset_of(loaded), key


@dataclass
class Selection:
    """The FM and AFM chosen in the sidebar."""

    fm: ModelEntry | None
    afm: ModelEntry | None


def entries() -> list[ModelEntry]:
    return list_models(models_dir())


PAGES = [  # (script, title, icon, the question it answers)
    ("app.py", "Home", ":material/home:", "What are FM and AFM, and which models are here?"),
    ("pages/1_Train.py", "Train", ":material/model_training:",
     "Train FM or AFM on synthetic data, Frappe, MovieLens or your own CSV; manage saved models."),
    ("pages/2_Instance_explorer.py", "Instance explorer", ":material/search:",
     "Why did the model predict this? Attention, the exact decomposition, ablation, what-if."),
    ("pages/3_FM_vs_AFM.py", "FM vs AFM", ":material/compare_arrows:",
     "Is AFM really better here, by how much, and for which instances?"),
    ("pages/4_Attention_across_datasets.py", "Attention across datasets", ":material/grid_on:",
     "How sharp is attention, which pairs does it favour, and can it be trusted?"),
    ("pages/5_Planted_interactions.py", "Planted interactions", ":material/school:",
     "Plant the interactions yourself, train in seconds, and see whether attention finds them."),
]


def setup(title: str) -> Selection:
    """Start a page: configuration, navigation, and the sidebar's model choice (kept across pages)."""
    st.set_page_config(page_title=f"{title} · AFM Explorer", page_icon=":material/hub:", layout="wide")
    for script, label, icon, _ in PAGES:
        st.sidebar.page_link(script, label=label, icon=icon)
    return sidebar()


def _choose(label: str, options: list[str], store: str, **kw) -> str | None:
    """A sidebar selectbox whose choice is kept under `store` (widget state does not survive a page
    switch; plain session state does)."""
    current = st.session_state.get(store)
    index = options.index(current) if current in options else 0
    value = st.sidebar.selectbox(label, options, index=index if options else None, **kw)
    st.session_state[store] = value
    return value


def sidebar() -> Selection:
    """Dataset, FM and AFM choices."""
    all_entries = entries()
    pending = st.session_state.pop(PENDING, None)
    for kind, name in (pending or {}).items():
        entry = next((e for e in all_entries if e.name == name), None)
        if entry:
            st.session_state["chosen_dataset"], st.session_state[f"chosen_{kind}"] = entry.dataset, name
    st.sidebar.header("Models")
    datasets = sorted({e.dataset for e in all_entries}) or ["synthetic"]
    if st.session_state.get("chosen_dataset") not in datasets:
        st.session_state["chosen_dataset"] = "synthetic" if "synthetic" in datasets else datasets[0]
    dataset = _choose("Dataset", datasets, "chosen_dataset", help="Models are listed for the dataset they were trained on.")
    chosen = {}
    for kind in ("fm", "afm"):
        names = [e.name for e in all_entries if e.kind == kind and e.dataset == dataset]
        name = _choose(kind.upper(), names, f"chosen_{kind}", placeholder="no model yet: train one",
                       help=f"The {kind.upper()} model the pages explain.")
        chosen[kind] = next((e for e in all_entries if e.name == name), None)
    st.sidebar.caption(f"Registry: `{models_dir()}`")
    return Selection(chosen["fm"], chosen["afm"])


def show_chart(fig, name: str) -> None:
    """A Plotly chart; the camera button in its toolbar downloads it as a PNG named after it."""
    st.plotly_chart(fig, width="stretch", key=f"chart_{name}", config={
        "displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}})


def show_table(table: pd.DataFrame, name: str, caption: str | None = None, **kw) -> None:
    """A table with a CSV download button beneath it."""
    st.dataframe(table, hide_index=True, width="stretch", **kw)
    st.download_button("Download CSV", table.to_csv(index=False).encode("utf-8"), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv_{name}", help=caption)

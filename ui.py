"""The Streamlit glue every page shares: the model choice in the sidebar, the selected FM/AFM pair with its
data (`selected_pair`), cached loading of models, data and explanations, and helpers that show charts
(PNG download in the chart toolbar) and tables (CSV download). Computation stays in `afm/`; this module
only caches and arranges. app.py holds the page list (st.navigation)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from afm.agreement import SetComparison, compare_models
from afm.checkpoints import LoadedModel, load_model
from afm.compare import paired_errors
from afm.data import Dataset, load_dataset
from afm.errors import AFMError
from afm.explain import SplitExplanation, explain_split
from afm.registry import ModelEntry, models_dir, scan_models

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


@st.cache_resource(show_spinner="Measuring every field pair in every model (function-level too)...", max_entries=8)
def cached_comparison(keys: tuple, split: str, sample: int | None, references: int, _models: dict, _dataset: Dataset,
                      _sets: dict) -> SetComparison:
    return compare_models(_models, _dataset, split, sample, references, sets=_sets)


def compare_entries(chosen: list[ModelEntry], split: str = "test", sample: int | None = 2000,
                    references: int = 16) -> SetComparison:
    """The set comparison of registry entries (all of one dataset), cached by their keys."""
    loaded = {e.name: load_entry(e) for e in chosen}
    fingerprints = {data.fingerprint for _, data, _ in loaded.values()}
    if len(fingerprints) > 1:
        raise AFMError("the chosen models were trained on different data; compare models of one dataset")
    dataset = next(iter(loaded.values()))[1]
    keys = tuple(key for _, _, key in loaded.values())
    return cached_comparison(keys, split, sample, references, {n: m.model for n, (m, _, _) in loaded.items()},
                             dataset, {e.name: e.set_dir.name if e.set_dir else "" for e in chosen})


def stability_note(entry: ModelEntry | None, measure: str = "attention") -> str | None:
    """One line on how stable this model's pair ranking is across its model set; None outside a set."""
    if entry is None or entry.set_dir is None:
        return None
    members = [e for e in entries() if e.set_dir == entry.set_dir]
    if len(members) < 2:
        return None
    comparison = compare_entries(members, "test", sample=500, references=8)
    return comparison.stability_line(measure if entry.kind == "afm" else "contribution")


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
    return scan_models(models_dir())[0]


def show_registry_problems() -> None:
    """Model directories that could not be read are skipped; say which, and why, without stopping."""
    problems = scan_models(models_dir())[1]
    if problems:
        st.warning(f"{len(problems)} model folder(s) could not be read and are not listed: " + "; ".join(problems[:3])
                   + ("; ..." if len(problems) > 3 else ""))


def selection() -> Selection:
    """The FM and AFM chosen in the sidebar (app.py draws it before every page)."""
    return st.session_state.get("selection") or Selection(None, None)


@dataclass
class ModelPair:
    """The selected FM and AFM, loaded once with the data they were trained on; pages ask it for models,
    errors and explanations instead of loading each themselves."""

    fm: LoadedModel | None
    afm: LoadedModel | None
    dataset: Dataset | None  # AFM's data, else FM's
    fm_key: str | None
    afm_key: str | None
    same_data: bool  # both selected and trained on the same rows

    @property
    def model(self) -> LoadedModel | None:
        """The model a single-model view explains: AFM where there is one."""
        return self.afm if self.afm is not None else self.fm

    @property
    def model_key(self) -> str | None:
        return self.afm_key if self.afm is not None else self.fm_key

    def errors(self, split: str) -> pd.DataFrame:
        return cached_errors(self.fm_key, self.afm_key, split, self.fm.model, self.afm.model, self.dataset)

    def explanation(self, split: str, which: str | None = None) -> SplitExplanation:
        loaded, key = (self.fm, self.fm_key) if which == "fm" else (self.model, self.model_key)
        return cached_explanation(key, split, loaded.model, self.dataset)


def selected_pair() -> ModelPair:
    """The sidebar's FM and AFM with their data. FM's data is used when only FM is chosen."""
    chosen = selection()
    fm, fm_data, fm_key = load_entry(chosen.fm)
    afm, afm_data, afm_key = load_entry(chosen.afm)
    same = fm is not None and afm is not None and fm_data.fingerprint == afm_data.fingerprint
    return ModelPair(fm, afm, afm_data if afm is not None else fm_data, fm_key, afm_key, same)


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

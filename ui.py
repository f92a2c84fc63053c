"""The Streamlit glue every page shares: the model choice in the sidebar (the model the pages explain and
the baseline it is compared with; AFM and FM by default), the selected pair with its data (`selected_pair`), cached loading of models, data and explanations, and helpers that show charts
(PNG download in the chart toolbar) and tables (CSV download). Computation stays in `afm/`; this module
only caches and arranges. app.py holds the page list (st.navigation)."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from afm.core.errors import AFMError
from afm.data import Dataset, load_dataset
from afm.data.dataset import for_pages, sample_note
from afm.data.permuted import is_null
from afm.explain.agreement import FAST_MEASURES, SetComparison, compare_measured, measure_models, noise_ceiling
from afm.explain.compare import paired_errors
from afm.explain.leaks import leak_sentence, likely_leaks
from afm.explain.parts import SplitExplanation, explain_split
from afm.explain.truth import truth_strength
from afm.models import AFM_KIND, FM_KIND, family
from afm.store.checkpoints import LoadedModel, load_model
from afm.store.registry import ModelEntry, display_names, models_dir, readable_dataset, scan_models

PENDING = "pending_selection"  # a page asks the sidebar to select models on the next run
NOISE_DRAWS = 5


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


@st.cache_resource(show_spinner="Opening the data...", max_entries=8)
def training_dataset(source_json: str) -> Dataset:
    """The whole data a run trains on: a prepared click log stays on disk (a resource, never copied)."""
    return load_dataset(json.loads(source_json))


@st.cache_data(show_spinner="Loading the data...", max_entries=8)
def cached_dataset(source_json: str) -> Dataset:
    """The data the pages explain: of a prepared click log, a seeded sample (afm.data.dataset.for_pages)."""
    return for_pages(training_dataset(source_json))


@st.cache_resource(show_spinner="Explaining every instance of the split...", max_entries=16)
def cached_explanation(key: str, split: str, _model, _dataset: Dataset) -> SplitExplanation:
    return explain_split(_model, _dataset, split)


@st.cache_data(show_spinner="Comparing the two models instance by instance...", max_entries=16)
def cached_errors(baseline_key: str, explained_key: str, split: str, _baseline, _explained, _dataset: Dataset) -> pd.DataFrame:
    return paired_errors(_baseline, _explained, _dataset, split)


@st.cache_data(show_spinner="Measuring every field pair (function-level too)...", max_entries=64)
def _measures(key: str, split: str, sample: int | None, references: int, measures: tuple, _model,
              _dataset: Dataset) -> tuple[pd.DataFrame, float]:
    """One model's measures on a seeded sample (every model is measured on the same rows and references)."""
    values, rmse = measure_models({key: _model}, _dataset, split, sample, references, measures=measures)
    return values, rmse[key]


@st.cache_data(show_spinner="Measuring the truth of the generated data...", max_entries=8)
def _truth(fingerprint: str, loss: str, split: str, sample: int | None, references: int, _dataset: Dataset):
    return truth_strength(_dataset, loss, split, sample, references)


def _measured(entries_: list[ModelEntry], split, sample, references, measures) -> tuple[pd.DataFrame, dict]:
    frames, rmse = [], {}
    for entry in entries_:
        loaded, dataset, key = load_entry(entry)
        values, rmse[entry.name] = _measures(key, split, sample, references, tuple(measures), loaded.model, dataset)
        frames.append(values.assign(model=entry.name))
    return pd.concat(frames, ignore_index=True), rmse


def compare_entries(chosen: list[ModelEntry], split: str = "test", sample: int | None = 2000,
                    references: int = 16, nulls: list[ModelEntry] = (), measures: tuple = FAST_MEASURES) -> SetComparison:
    """The set comparison of registry entries (all of one dataset), each model measured once and cached by
    its key; null entries (permuted labels) are measured on the same rows, and on generated data the truth."""
    datasets = {data.fingerprint: data for data in (load_entry(e)[1] for e in chosen)}
    if len(datasets) > 1:
        raise AFMError("the chosen models were trained on different data; compare models of one dataset")
    dataset = next(iter(datasets.values()))
    values, rmse = _measured(chosen, split, sample, references, measures)
    null_values = _measured(list(nulls), split, sample, references, measures)[0] if nulls else None
    truth = None
    if dataset.latent is not None:
        truth = _truth(dataset.fingerprint, load_entry(chosen[0])[0].model.config.loss, split, sample, references,
                       dataset)
    return compare_measured(values, rmse, dataset, sets={e.name: e.set_dir.name if e.set_dir else "" for e in chosen},
                            null_values=null_values, truth=truth,
                            families={e.name: load_entry(e)[0].model.config.label for e in chosen})


@st.cache_data(show_spinner="Measuring one model over fresh draws (the noise ceiling)...", max_entries=16)
def _noise(key: str, split: str, sample: int | None, references: int, measures: tuple, _model,
           _dataset: Dataset) -> pd.DataFrame:
    ceiling = noise_ceiling(_model, _dataset, split, sample, references, NOISE_DRAWS, measures=measures)
    return ceiling[["measure", "mean_spearman"]].rename(columns={"mean_spearman": "noise_ceiling"})


def noise_for(entry: ModelEntry, split: str, sample: int | None, references: int, measures=FAST_MEASURES):
    """Per measure, how far this model agrees with itself over NOISE_DRAWS fresh draws."""
    loaded, dataset, key = load_entry(entry)
    return _noise(key, split, sample, references, tuple(measures), loaded.model, dataset)


def model_label(loaded: LoadedModel) -> str:
    """The family's label, and "(null)" for a model trained on permuted labels."""
    return loaded.model.config.label + (" (null)" if is_null(loaded.meta.get("data", {}).get("source")) else "")


def same_settings(loaded: LoadedModel) -> dict:
    """The settings a saved model was trained with, as overrides for training another like it."""
    model = {k: v for k, v in loaded.meta["model"].items() if k not in ("kind", "num_features", "num_fields")}
    return {k: v for k, v in {**loaded.meta.get("training", {}), **model}.items() if family(loaded.model.config.kind).takes(k)}


def null_entries(entry: ModelEntry | None) -> list[ModelEntry]:
    """The null models (permuted labels) for a model: those of its dataset and family, the set's first."""
    if entry is None:
        return []
    nulls = [e for e in entries() if e.null and e.data_source == entry.data_source and e.kind == entry.kind]
    sets = sorted({e.set_dir for e in nulls if e.set_dir}, key=str)
    return [e for e in nulls if e.set_dir == sets[0]] if sets else nulls


def null_line(entry: ModelEntry | None, measure: str, top: int = 3) -> str | None:
    """One line for a single model's picture: do its top pairs beat the null? None without a null."""
    nulls = null_entries(entry) if entry is not None and not entry.null else []
    if not nulls:
        return None
    comparison = compare_entries([entry], "test", sample=500, references=8, nulls=nulls)
    bands = comparison.bands[comparison.bands.measure == measure].sort_values("median", ascending=False).head(top)
    if bands.empty or "beats_null" not in bands:
        return None
    beating = [f"{a} x {b}" for a, b, beats in zip(bands.field_a, bands.field_b, bands.beats_null)
               if beats == 1]  # NaN (no null value for the pair) is not beating it
    null_set = nulls[0].set_dir.name if nulls[0].set_dir else nulls[0].name
    return (f"Against {len(nulls)} null models ({null_set}, permuted labels): {len(beating)} of its top {len(bands)} "
            f"pairs by {measure} beat the null's 90th percentile" + (f" ({', '.join(beating)})." if beating else "."))


def stability_note(entry: ModelEntry | None, measure: str = "attention") -> str | None:
    """One line on how stable this model's pair ranking is across its model set; None outside a set."""
    if entry is None or entry.set_dir is None:
        return None
    members = [e for e in entries() if e.set_dir == entry.set_dir]
    if len(members) < 2:
        return None
    comparison = compare_entries(members, "test", sample=500, references=8)
    chosen = family(entry.kind)
    return comparison.stability_line("attention" if chosen.attention else "contribution" if chosen.additive
                                     else "interaction")


def dataset_of(loaded: LoadedModel) -> Dataset:
    return cached_dataset(json.dumps(loaded.meta["data"]["source"], sort_keys=True))


def load_entry(entry: ModelEntry | None):
    """(LoadedModel, Dataset, cache key) of a registry entry, or three Nones."""
    if entry is None:
        return None, None, None
    key = model_key(entry)
    loaded = cached_model(key)
    dataset = dataset_of(loaded)
    note = sample_note(dataset)
    if note:
        st.caption(note)
    return loaded, dataset, key


@dataclass
class Selection:
    """The two models chosen in the sidebar: the one the pages explain, and the baseline it is compared with."""

    baseline: ModelEntry | None
    explained: ModelEntry | None


def entries() -> list[ModelEntry]:
    return scan_models(models_dir())[0]


def show_registry_problems() -> None:
    """Model directories that could not be read are skipped; say which, and why, without stopping."""
    problems = scan_models(models_dir())[1]
    if problems:
        st.warning(f"{len(problems)} model folder(s) could not be read and are not listed: " + "; ".join(problems[:3])
                   + ("; ..." if len(problems) > 3 else ""))


def selection() -> Selection:
    """The two models chosen in the sidebar (app.py draws it before every page)."""
    return st.session_state.get("selection") or Selection(None, None)


@dataclass
class ModelPair:
    """The selected baseline and explained model, loaded once with the data they were trained on; pages ask
    it for models, errors and explanations instead of loading each themselves."""

    baseline: LoadedModel | None
    explained: LoadedModel | None
    dataset: Dataset | None  # the explained model's data, else the baseline's
    baseline_key: str | None
    explained_key: str | None
    same_data: bool  # both selected and trained on the same rows

    @property
    def model(self) -> LoadedModel | None:
        """The model a single-model view explains: the explained one where there is one."""
        return self.explained if self.explained is not None else self.baseline

    @property
    def model_key(self) -> str | None:
        return self.explained_key if self.explained is not None else self.baseline_key

    def errors(self, split: str) -> pd.DataFrame:
        """Per-instance errors, the baseline's as `fm_*` columns and the explained model's as `afm_*`."""
        return cached_errors(self.baseline_key, self.explained_key, split, self.baseline.model, self.explained.model,
                             self.dataset)

    def explanation(self, split: str, which: str | None = None) -> SplitExplanation:
        loaded, key = (self.baseline, self.baseline_key) if which == "baseline" else (self.model, self.model_key)
        return cached_explanation(key, split, loaded.model, self.dataset)


def selected_pair() -> ModelPair:
    """The sidebar's two models with their data; the baseline's data where only it is chosen."""
    chosen = selection()
    baseline, baseline_data, baseline_key = load_entry(chosen.baseline)
    explained, explained_data, explained_key = load_entry(chosen.explained)
    same = baseline is not None and explained is not None and baseline_data.fingerprint == explained_data.fingerprint
    return ModelPair(baseline, explained, explained_data if explained is not None else baseline_data, baseline_key,
                     explained_key, same)


def _choose(label: str, options: list[str], store: str, **kw) -> str | None:
    """A sidebar selectbox whose choice is kept under `store` (widget state does not survive a page
    switch; plain session state does)."""
    current = st.session_state.get(store)
    index = options.index(current) if current in options else 0
    value = st.sidebar.selectbox(label, options, index=index if options else None, **kw)
    st.session_state[store] = value
    return value


# The sidebar's two slots: (role, label, the family it starts on, help)
SLOTS = (("explained", "Model", AFM_KIND, "The model the pages explain."),
         ("baseline", "Baseline", FM_KIND, "The model it is compared with (FM vs AFM, the Instance explorer's "
                                           "second view)."))


OWN = "own_models"  # the models this browser session trained, oldest first


def remember_own(name: str) -> None:
    """A model this browser session trained: the sidebar's default from now on (another session's never is)."""
    own = st.session_state.setdefault(OWN, [])
    if name not in own:
        own.append(name)


def default_name(here: list[ModelEntry], first_family: str, own: list[str], explained: bool) -> str | None:
    """The sidebar's default for a slot: this session's own last trained model (the explained slot), else a
    shipped model of the slot's family, else a shipped one, else this session's own of the family; never a
    model another browser session trained (on a shared classroom server that would change everyone's Home)."""
    by_name = {e.name: e for e in here}
    mine = [by_name[n] for n in own if n in by_name]
    if explained and mine:
        return mine[-1].name
    for candidates in ([e for e in here if e.builtin and e.kind == first_family and not e.null],
                       [e for e in here if e.builtin and not e.null],
                       [e for e in reversed(mine) if e.kind == first_family], list(reversed(mine))):
        if candidates:
            return candidates[0].name
    return None


def sidebar() -> Selection:
    """Dataset, then the explained model and its baseline: any two models of the dataset, of any family."""
    all_entries = entries()
    pending = st.session_state.pop(PENDING, None)
    for role, name in (pending or {}).items():
        entry = next((e for e in all_entries if e.name == name), None)
        if entry:
            st.session_state["chosen_dataset"], st.session_state[f"chosen_{role}"] = entry.dataset, name
    own = st.session_state.get(OWN, [])
    st.sidebar.header("Models")
    datasets = sorted({e.dataset for e in all_entries}) or ["synthetic"]
    if st.session_state.get("chosen_dataset") not in datasets:
        last_own = next((e.dataset for e in all_entries if own and e.name == own[-1]), None)
        st.session_state["chosen_dataset"] = last_own or ("synthetic" if "synthetic" in datasets else datasets[0])
    dataset = _choose("Dataset", datasets, "chosen_dataset", help="Models are listed for the dataset they were trained on.",
                      format_func=readable_dataset)
    here = [e for e in all_entries if e.dataset == dataset]
    labels = display_names(here)
    chosen = {}
    for role, label, first_family, help_text in SLOTS:
        by_name = {e.name: e for e in here}
        names = sorted(labels, key=lambda n: (by_name[n].kind != first_family, by_name[n].null))  # stable
        if st.session_state.get(f"chosen_{role}") not in names and names:
            st.session_state[f"chosen_{role}"] = default_name(here, first_family, own, role == "explained") or names[0]
        name = _choose(label, names, f"chosen_{role}", placeholder="no model yet: train one", help=help_text,
                       format_func=labels.get)
        chosen[role] = next((e for e in here if e.name == name), None)
    leak = leak_line(chosen["explained"])
    if leak:
        st.sidebar.warning(leak)
    st.sidebar.caption(f"Registry: `{models_dir()}`")
    return Selection(chosen["baseline"], chosen["explained"])


@st.cache_data(show_spinner=False, max_entries=32)
def _leaks(key: str, model_auc: float | None, _dataset: Dataset) -> str | None:
    return leak_sentence(likely_leaks(_dataset, model_auc), model_auc)


def leak_line(entry: ModelEntry | None) -> str | None:
    """A likely leak in the data of the model the pages explain (afm.explain.leaks), said on every page."""
    if entry is None:
        return None
    loaded, dataset, key = load_entry(entry)
    return _leaks(key, loaded.meta.get("metrics", {}).get("validation", {}).get("auc"), dataset)


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~$])")


def plain(text: str) -> str:
    """Text shown as written, not read as Markdown: `v_i*v_j` stays itself instead of turning italic."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def show_chart(fig, name: str) -> None:
    """A Plotly chart under its title. The title is drawn by the page, not inside the chart, so it wraps at
    any width and Plotly's toolbar never covers it (a 390 px phone put the toolbar over every title); the
    camera button in the toolbar downloads the chart as a PNG named after it."""
    title = fig.layout.title.text
    if title:
        st.markdown(f"**{plain(title)}**")
        fig.update_layout(title=None, margin=dict(t=30), meta={"title": title})  # meta: what tests read
    st.plotly_chart(fig, width="stretch", key=f"chart_{name}", config={
        "displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}})


def delta_colour(relative: float, lower_is_better: bool, clear: bool = True) -> str:
    """st.metric's delta colour: neutral where the change rounds to 0.0% (a green arrow for +0.0% said
    "better" about nothing) or is not `clear` (its interval includes 0), else green for better, red for worse."""
    if round(abs(relative) * 1000) == 0 or not clear:
        return "off"
    return "inverse" if lower_is_better else "normal"


def show_table(table: pd.DataFrame, name: str, caption: str | None = None, download: bool = True, **kw) -> None:
    """A table, with a CSV download button beneath it unless its section offers one already (one a section)."""
    st.dataframe(table, hide_index=True, width="stretch", **kw)
    if caption and not download:
        st.caption(plain(caption))
    if download:
        download_csv(table, name, caption)


def download_csv(table: pd.DataFrame, name: str, caption: str | None = None, label: str = "Download CSV") -> None:
    st.download_button(label, table.to_csv(index=False).encode("utf-8"), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv_{name}", help=caption)

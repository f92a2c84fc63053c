"""Train: choose data and a model, watch it learn, stop it when you like; manage saved models."""
import json
from pathlib import Path

import streamlit as st

from afm.core.errors import AFMError
from afm.core.settings import BY_NAME
from afm.data import dataset_status
from afm.data.prepared import read_meta
from afm.data.sources import BY_NAME as SOURCES
from afm.data.tabular import TableOptions, identifier_columns, table_columns, table_spec
from afm.explain import charts
from afm.models.families import FAMILIES, family, widgets
from afm.store.modelsets import is_set_dir, member_for_seed
from afm.store.registry import delete_model, new_model_path, registry_table, rename_model
from afm.store.uploads import store_upload
from afm.training.jobs import TrainingJob, duration, progress_line
from afm.training.loop import available_devices
from afm.training.workflows import LONG_RUN_SECONDS, expected_seconds, import_and_save, run_settings
from ui import (PENDING, entries, friendly_errors, remember_own, show_chart, show_registry_problems, show_table,
                training_dataset)

st.title("Train")
st.caption("Train FM first, then AFM from FM's embeddings (as the paper does). Defaults are the paper's for "
           "Frappe and MovieLens, and small fast settings elsewhere.")

def choose_source():
    """The data source as a `load_dataset` argument (a JSON-able spec), or None when it is unavailable."""
    status = {row["name"]: row for row in dataset_status()}
    kind = st.radio("Data", [*status, "your CSV file", "a prepared click log"], horizontal=True, key="train_data",
                    help="; ".join(f"{name}: {SOURCES[name].summary}" for name in status)
                    + "; a prepared click log: a directory `python -m afm prepare` wrote")
    if kind == "a prepared click log":
        where = st.text_input("The prepared directory (what `python -m afm prepare --out DIR` wrote)",
                              key="train_prepared").strip()
        if not where:
            return None
        read_meta(where)  # a directory that is not one is said in one line (friendly_errors)
        return {"kind": "prepared", "path": str(Path(where).expanduser().resolve())}
    if kind in status and not SOURCES[kind].generated:
        if not status[kind]["available"]:
            st.info(f"{kind.capitalize()} is not on this machine. Its licence forbids redistribution, so fetch it "
                    f"from the public source yourself: `{status[kind]['get']}` (or set `AFM_DATA_DIR` to a "
                    "folder that has it).")
            return None
        return {"kind": kind}
    if kind in status:  # generated here, from a seed
        return {"kind": kind, "seed": int(st.number_input("Data seed", 0, 10_000, 0, key="train_seed"))}
    upload = st.file_uploader("A table: categorical and numeric columns and a target (CSV, TSV or parquet)",
                              type=["csv", "tsv", "txt", "parquet"])
    if upload is None:
        return None
    path = store_upload(upload.getvalue(), upload.name)
    header = not st.checkbox("The first row is data (no header): name the columns col1, col2, ...",
                             key="train_no_header")
    columns = table_columns(path, TableOptions(header=header))
    target = st.selectbox("Target column", columns, index=len(columns) - 1, key="train_target",
                          help="Two values become -1/+1; a numeric target with more values is regression. "
                               "The last column is offered first, where most exports put the label.")
    others = [c for c in columns if c != target]
    identifiers = identifier_columns(path, target, TableOptions(header=header))
    use = st.multiselect("Columns to use as fields", others, default=[c for c in others if c not in identifiers],
                         key=f"train_use_{path.name}_{target}",
                         help="Every column but the target is a field unless you leave it out here. Columns that "
                              "identify rows (a pandas index, an id, a counter) are left out at first: as fields they "
                              "name rows instead of describing them, and leak the label where the file is sorted.")
    for name, reason in identifiers.items():
        st.caption(f"Left out {name!r}: {reason}. Add it above to use it anyway." if name not in use
                   else f"Used although {name!r} looks like a row id ({reason}).")
    with st.expander("Column types (what was decided is said below the data line)"):
        left, right = st.columns(2)
        categorical = left.multiselect("Categorical: every value its own feature", use, key="train_categorical",
                                       help="Integer ids or codes; otherwise a numeric column with many values is "
                                            "cut into quantile bins (columns named like ids stay ids).")
        numeric = right.multiselect("Numeric: binned", [c for c in use if c not in categorical], key="train_numeric")
    options = TableOptions(categorical=tuple(categorical), numeric=tuple(numeric),
                           drop=tuple(c for c in others if c not in use and c not in identifiers),
                           keep=tuple(c for c in use if c in identifiers), header=header)
    return table_spec(path, target, 0, options)


def choose_parameters(dataset, kind: str) -> dict:
    preset, dataset_name = run_settings(dataset, kind), dataset.name
    values = {}
    with st.expander("Hyperparameters", expanded=False):
        cols = st.columns(3)
        for i, s in enumerate(widgets(kind)):  # one widget per setting of afm.core.settings, with its help and bounds
            widget_key, column, default = f"hp_{dataset_name}_{kind}_{s.name}", cols[i % 3], preset[s.name]
            if s.choices:
                values[s.name] = column.selectbox(s.name, s.choices, index=s.choices.index(default), help=s.help,
                                                  key=widget_key)
            elif s.type is bool:
                values[s.name] = column.checkbox(s.name, value=bool(default), help=s.help, key=widget_key)
            elif s.type is str:  # a checked text (the MLP's layer sizes): a bad one is said, nothing trains
                values[s.name] = s.check(column.text_input(s.name, value=default, help=s.help, key=widget_key).strip())
            elif s.type is int:
                values[s.name] = column.number_input(s.name, min_value=int(s.low or 0), value=default, step=1,
                                                     max_value=None if s.below is None else int(s.below) - 1,
                                                     help=s.help, key=widget_key)
            else:
                values[s.name] = column.number_input(s.name, min_value=float(s.low or 0),
                                                     max_value=None if s.below is None else float(s.below),
                                                     value=float(default), format="%g", help=s.help, key=widget_key)
        values["device"] = cols[1].selectbox("device", available_devices(), key="hp_device",
                                             help="auto takes a CUDA or Apple GPU when there is one.")
        if family(kind).takes("attention"):
            st.caption("Ablations: each of AFM's differences from FM can be switched off.")
            for name in ("attention", "learn_p"):  # the two switches that turn an AFM difference off
                s = BY_NAME[name]
                values[name] = s.switched if st.checkbox(s.help, key=f"hp_{name}") else not s.switched
    return values


def show_job():
    job = st.session_state.get("job")
    if job is None:
        return
    state = job.snapshot()
    if state.status == "running":
        if state.halted:
            st.info(f"Stopped at epoch {max(state.epoch, 1)}, {duration(state.halted - state.stop_requested)} after "
                    "Stop was pressed; now keeping the best epoch, measuring it on every split and saving it.")
        elif state.stop_requested:
            st.info("Stopping after this batch...")
        else:
            done, line = progress_line(state, job.epochs)
            st.progress(done, text=f"Training {family(job.kind).label}: {line}")
            if st.button("Stop and keep the best epoch", key="stop_job"):
                job.stop()
                st.info("Stopping after this batch...")
    elif state.status == "finished":
        trained = state.path.name + ("/seed-0" if job.seeds > 1 else "")
        remember_own(trained)
        st.success(f"{family(job.kind).label} saved as **{state.path.name}** ({state.message}).")
        if state.halted:
            st.caption(f"Stop acted {duration(state.halted - state.stop_requested)} after it was pressed (training "
                       "checks for it after every batch); the best epoch so far was kept.")
        if state.warning:
            st.warning(state.warning[0].upper() + state.warning[1:] + ".")
        if st.button("Explain it: select it in the sidebar", key="select_trained"):
            st.session_state[PENDING] = {"explained": trained}
            st.rerun()
    else:
        st.error(f"Training failed: {state.message}")
    if len(state.history) > 1:
        show_chart(charts.learning_curves({family(job.kind).label: state.history}, "Train and validation RMSE"), "training_curves")


@st.cache_data(show_spinner="Timing a few training steps...", max_entries=32)
def expected(source_json: str, kind: str, params_json: str, _dataset) -> tuple[float, int]:
    return expected_seconds(_dataset, kind, json.loads(params_json))


def say_expected(dataset, source: dict, kind: str, params: dict) -> None:
    """How long the run will take here, said before it starts; a warning past LONG_RUN_SECONDS."""
    settings = {k: v for k, v in params.items() if k != "device" or v != "auto"}
    per_epoch, epochs = expected(json.dumps(source, sort_keys=True), kind, json.dumps(settings, sort_keys=True), dataset)
    line = (f"About {duration(per_epoch)} an epoch here, so at most about {duration(per_epoch * epochs)} for "
            f"{epochs} epochs (early stopping may end it sooner).")
    if per_epoch * epochs > LONG_RUN_SECONDS:
        st.warning(line + " That is more than 10 minutes: fewer epochs, a smaller embedding size or attention "
                   "size, or a larger batch make it shorter; Stop keeps the best epoch so far at any time.")
    else:
        st.caption(line)


@st.fragment(run_every=0.5)
def watch_job():
    """Redraws the running job every second; when it ends, reruns the page once so the lists update."""
    show_job()
    if not st.session_state["job"].running:
        st.rerun(scope="app")


source = dataset = None  # stay None where choosing the data failed (the import section reads them)
with friendly_errors():
    source = choose_source()
    kind = st.radio("Model", list(FAMILIES), format_func=lambda name: FAMILIES[name].label, horizontal=True,
                    key="train_kind", help="; ".join(f"{f.label}: {f.summary}" for f in FAMILIES.values()))
    if source is not None:
        dataset = training_dataset(json.dumps(source, sort_keys=True))
        st.caption(f"{dataset.name}: {dataset.num_fields} fields, {dataset.num_features} features; "
                   + ", ".join(f"{s} {len(p):,}" for s, p in dataset.splits.items()) + (f". {dataset.notes}" if dataset.notes else ""))
        params = choose_parameters(dataset, kind)
        pretrain = None
        start_family = family(kind).starts_from
        if start_family is not None:
            label, start_label = family(kind).label, family(start_family).label
            fms = [e for e in entries() if e.kind == start_family and e.dataset == dataset.name]
            starts = {e.name: e.path for e in fms}
            starts.update({f"set {d.name} ({label} seed s from {start_label} seed s)": d for d in
                           sorted({e.set_dir for e in fms if e.set_dir}, key=str)})
            choice = st.selectbox(f"Start from a trained {start_label}'s embeddings", ["(random start)", *starts],
                                  index=1 if fms else 0, key="train_pretrain")
            pretrain = starts.get(choice)
        running = st.session_state.get("job") is not None and st.session_state["job"].running
        seeds = int(st.number_input("Models (seeds)", 1, 10, 1, key="train_seeds",
                                    help="More than one trains a model set: the same settings with seeds 0, 1, ..., "
                                         "to see which explanations survive retraining (page: Which interactions "
                                         "matter?). With an FM set as the start, AFM seed s starts from FM seed s."))
        if pretrain is not None and seeds == 1 and is_set_dir(pretrain):
            pretrain = member_for_seed(pretrain, params.get("seed") or 0)
        say_expected(dataset, source, kind, params)
        if st.button("Train", type="primary", disabled=running, key="start_training"):
            out = new_model_path(None, dataset.name, kind + ("-set" if seeds > 1 else ""))
            st.session_state["job"] = TrainingJob(dataset, kind, out, params, pretrain, seeds=seeds).start()
previous = st.session_state.get("job")
if previous is not None and not previous.running and (dataset is None
                                                      or previous.dataset.fingerprint != dataset.fingerprint):
    del st.session_state["job"]  # trained on other data: its result and its "Explain it" belong to that data
if st.session_state.get("job") is not None and st.session_state["job"].running:
    watch_job()
else:
    show_job()

st.subheader("Import a model")
st.caption("An FM or AFM trained with pytorch-fm (`FactorizationMachineModel`, `AttentionalFactorizationMachineModel`) "
           "or DeepCTR-Torch (`AFM`), saved with `torch.save(model.state_dict(), FILE)`, on the data chosen above. "
           "Their per-field ids must be ours: `python -m afm encode --data ... --out DIR` writes the data that way "
           "(for a CSV: sklearn's LabelEncoder on each column read as text). DeepCTR's feature names must be the "
           "field names. The file is read as tensors only; nothing in it runs.")
with friendly_errors():
    library = st.radio("Library", ["torchfm", "deepctr"], horizontal=True, key="import_library",
                       format_func={"torchfm": "pytorch-fm", "deepctr": "DeepCTR-Torch"}.get)
    upload = st.file_uploader("State dict", type=["pt", "pth", "bin"], key="import_file")
    if dataset is None:
        st.info("Choose the data the model was trained on above first.")
    elif upload is not None and st.button("Import", key="import_button"):
        saved, model, notes = import_and_save(library, store_upload(upload.getvalue(), upload.name), dataset,
                                              new_model_path(None, dataset.name, f"{library}-import"))
        st.success(f"Imported an {model.config.label} as **{saved.name}** (logistic loss: explanations are in "
                   "log-odds).")
        for note in notes:
            st.caption(note)

st.subheader("Saved models")
show_registry_problems()
all_entries = entries()
show_table(registry_table(all_entries), "saved_models")
names = [e.name for e in all_entries]
if names:
    chosen = st.selectbox("Model", names, key="manage_model")
    entry = all_entries[names.index(chosen)]
    left, middle, right = st.columns(3)
    if left.button("Select in the sidebar", key="manage_select"):
        st.session_state[PENDING] = {"explained": entry.name}
        st.rerun()
    fixed = entry.builtin or entry.set_dir is not None  # shipped models and set members keep their names
    new_name = middle.text_input("New name", value=entry.name, key="manage_new_name", disabled=fixed)
    if middle.button("Rename", disabled=fixed, key="manage_rename"):
        try:
            rename_model(entry, new_name)
            st.rerun()
        except AFMError as exc:
            st.error(str(exc))
    confirm = right.checkbox("Yes, delete it", key="manage_confirm", disabled=fixed)
    if right.button("Delete", disabled=fixed or not confirm, key="manage_delete"):
        with friendly_errors():
            delete_model(entry)
            st.rerun()
    if entry.builtin:
        st.caption("Shipped models (trained on our synthetic data by `assets/build_models.sh`) cannot be changed.")
    elif entry.set_dir is not None:
        st.caption(f"A member of the model set {entry.set_dir.name}: its name is its seed; delete the set's folder "
                   f"`{entry.set_dir}` to remove the set.")

"""Every page run by Streamlit's AppTest (real script runs, no browser)."""
import base64
import re
import time

import numpy as np
import plotly.io
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from afm.data import make_synthetic
from afm.explain.parts import decompose_ids, pair_values, pair_view
from afm.store.checkpoints import load_model
from afm.store.registry import BUILTIN_DIR, list_models


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("AFM_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def sidebar_choice(app, label: str):
    return next(box.value for box in app.sidebar.selectbox if box.label == label)


def open_page(page: str | None = None) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    if page:
        app.switch_page(f"app_pages/{page}.py").run()
    assert not app.exception, app.exception
    return app


def figures(app) -> list:
    return [plotly.io.from_json(chart.proto.spec) for chart in app.get("plotly_chart")]


def title(figure) -> str:
    """A chart's title: the page draws it above the chart (show_chart) and keeps it in the layout's meta."""
    return (figure.layout.meta or {}).get("title", "")


def array(value) -> np.ndarray:
    """Plotly sends numeric arrays as base64 typed arrays ({"dtype", "bdata", "shape"})."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value, dtype=float)


def test_home_states_its_lesson_then_the_formula_with_numbers_and_the_registry(registry):
    app = open_page()
    assert app.title[0].value == "AFM Explorer"
    lesson = next(m.value for m in app.markdown if m.value.startswith("#### "))  # the first thing said
    assert "app\\_category x daytime and user\\_group x weather, are exactly the pairs planted in this data" in lesson
    bars = next(f for f in figures(app) if f.data[0].type == "bar")  # Home opens on the model's pair importance
    assert "AFM (synthetic, test split)" in title(bars)
    planted = next(t for t in bars.data if t.name == "planted in the data")
    assert set(planted.y) == {"app_category x daytime", "user_group x weather"}
    assert [m.label for m in app.metric] == ["FM test RMSE", "AFM test RMSE"]  # the contrast, on the first screen
    assert float(app.metric[1].value) < float(app.metric[0].value)
    assert len(app.latex) == 3 and "28 pairs" in app.latex[2].value  # behind the expander
    assert app.expander[0].label.startswith("How AFM computes a prediction")
    table = app.dataframe[0].value
    assert {"synthetic-fm", "synthetic-afm", "wide-afm-set/seed-2"} <= set(table.name) and table.shipped.all()
    assert sidebar_choice(app, "Model") == "synthetic-afm" and sidebar_choice(app, "Baseline") == "synthetic-fm"


def test_shipped_models_match_the_synthetic_default():
    data = make_synthetic(seed=0)
    for name in ("synthetic-fm", "synthetic-afm"):
        meta = load_model(BUILTIN_DIR / name).meta
        assert meta["data"]["fingerprint"] == data.fingerprint
        assert meta["metrics"]["test"]["rmse"] < (0.62 if name.endswith("fm") else 0.55)


def test_instance_explorer_heatmap_is_what_afm_computes(registry):
    app = open_page("2_Instance_explorer")
    app.number_input(key="pick_index").set_value(7).run()
    assert not app.exception
    heatmap = next(f for f in figures(app) if f.data[0].type == "heatmap")
    model = load_model(BUILTIN_DIR / "synthetic-afm")
    data = make_synthetic(seed=0)
    expected = pair_values(decompose_ids(model.model, data, data.splits["test"].x[7]), data.field_names)
    z = array(heatmap.data[0].z)
    rows, cols = np.triu_indices(8, k=1)
    np.testing.assert_allclose(z[rows, cols], expected, rtol=1e-6)
    labels = [m.label for m in app.metric]
    assert "AFM prediction" in labels and "Label" in labels
    assert any(df.value.columns[0] == "pair" for df in app.dataframe)  # FM beside AFM, decomposition


def test_instance_explorer_what_if_and_pickers(registry):
    app = open_page("2_Instance_explorer")
    before = app.metric[0].value
    app.selectbox(key="whatif_test_0_daytime").set_value(int(make_synthetic().field_values("daytime")[4])).run()
    assert not app.exception and app.metric[1].value == "changed instance" and app.metric[0].value != before
    for how in ("at random", "by feature values", "largest error", "largest disagreement with the baseline"):
        app.radio(key="pick_how").set_value(how).run()
        assert not app.exception, how
        assert len(app.get("plotly_chart")) >= 3


def test_fm_vs_afm_page(registry):
    app = open_page("3_FM_vs_AFM")
    labels = [m.label for m in app.metric]
    assert labels == ["FM RMSE", "AFM RMSE", "95% interval of AFM - FM (RMSE)",  # squared loss: RMSE first,
                      "FM AUC", "AFM AUC", "95% interval of AFM - FM (AUC)"]  # AUC on binary labels, no logloss
    assert float(app.metric[1].value) < float(app.metric[0].value)
    kinds = [f.data[0].type for f in figures(app)]
    assert "scattergl" in kinds and "bar" in kinds and "scatter" in kinds
    assert app.markdown[0].value.startswith("#### On the test split, AFM is better than FM by RMSE")  # words first
    # one story: the sidebar's pair on its own data; one CSV per section; no committed Frappe verdict here
    assert [b.label for b in app.get("download_button")] == ["Download the metrics (CSV)",
                                                             "Download every instance's errors (CSV)"]
    shown = " ".join(e.value for kind in ("markdown", "caption", "header", "subheader", "info")
                     for e in app.get(kind) if isinstance(e.value, str))
    assert "frappe" not in shown.lower() and "tuned fm" not in shown.lower()  # no committed verdict's sentence
    assert not [e for e in app.get("selectbox") if e.key in ("verdict_file", "ablation_file", "reproduce_file")]


def test_published_results_page_shows_each_committed_results_file(registry):
    from afm.experiments.results import committed_results
    from afm.experiments.verdict import verdict_sentence, verdict_words

    committed = committed_results()
    app = open_page("7_Published_results")
    shown = committed[app.selectbox(key="verdict_file").value]
    markdown = [re.sub(r"\\(.)", r"\1", m.value) for m in app.markdown]  # as read: Markdown escapes undone
    captions = [re.sub(r"\\(.)", r"\1", c.value) for c in app.caption]
    words = markdown.index(f"**{verdict_words(shown)}**")  # words first, then the numbers beneath
    assert verdict_sentence(shown) in captions and words >= 0
    cards = [m for m in markdown if " loss · k = " in m]  # the datasets side by side, each labelled
    assert len(cards) == sum(r.get("kind") == "verdict" for r in committed.values())
    budget = next(df.value for df in app.dataframe if "trials" in df.value.columns)
    assert list(budget.side)[0] == "FM" and budget.trials.nunique() == 1  # the same budget on every side
    for key, kind in (("reproduce_file", "reproduce"), ("ablation_file", "ablation"), ("verdict_file", "verdict")):
        names = [name for name, results in committed.items() if results.get("kind") == kind]
        assert app.selectbox(key=key).options and len(app.selectbox(key=key).options) == len(names)
        for name in names:
            app.selectbox(key=key).set_value(name).run()
            assert not app.exception
            if kind == "reproduce":  # ours beside the paper's, and how the settings differ from the paper's
                table = app.dataframe[[i for i, d in enumerate(app.dataframe) if "method" in d.value][-1]].value
                assert "AFM (ours)" in set(table.method)
                assert any(c.value.startswith("Settings") for c in app.caption)
            provenance = [c.value for c in app.caption if "threads" in c.value]
            # every committed file says which code made it, or what git history can say of it
            assert provenance and ("code " in provenance[0] or "at or before the parent of" in provenance[0])
    families = [name for name, results in committed.items() if results.get("kind") == "families"]
    if families:  # every family tuned alike, beside the verdict's FM and AFM and BARS
        app.selectbox(key="families_file").set_value(families[0]).run()
        table = next(d.value for d in app.dataframe if "bars_auc" in d.value.columns)
        assert {"FM", "DeepFM"} <= set(table.model) and table.bars_auc.notna().all()
        assert not any("DCN-v2" in w.value for w in app.warning)  # held by another file of the same protocol


def test_attention_across_datasets_page(registry):
    app = open_page("4_Attention_across_datasets")
    assert app.multiselect(key="across_models").value == ["synthetic-afm", "wide-afm-set/seed-0"]  # two datasets
    summary = app.dataframe[0].value
    assert list(summary.model) == ["synthetic-afm", "wide-afm-set/seed-0"]
    assert list(summary.dataset) == ["synthetic", "wide"] and list(summary.pairs) == [28, 276]
    assert len([f for f in figures(app) if f.data[0].type == "histogram"]) == 2


def test_planted_interactions_page(registry):
    app = open_page("5_Planted_interactions")
    assert "What you planted" in title(figures(app)[0])  # a picture before any training
    # the default experiment is the shipped models' data: its result shows at once, no job runs
    assert [m.value for m in app.metric if m.label.startswith("Planted pairs in AFM")] == ["100%"]
    assert "planted_job" not in app.session_state
    app.slider(key="planted_strength").set_value(1.5).run()  # a new setting trains; moving on stops that run
    first = app.session_state["planted_job"]
    assert first.running
    app.slider(key="planted_strength").set_value(1.6).run()
    second = app.session_state["planted_job"]
    assert second is not first and first.snapshot().stop_requested and first.wait(60).halted
    for _ in range(240):  # FM then AFM train in the background; the page shows their progress meanwhile
        if not second.running and any(m.label.startswith("Planted pairs in AFM") for m in app.metric):
            break
        time.sleep(0.5)
        app.run()
    assert not app.exception, app.exception
    found = [m for m in app.metric if m.label.startswith("Planted pairs in AFM")]
    assert found[0].value == "100%"
    assert float(app.metric[1].value) < float(app.metric[0].value)


def test_training_from_the_train_page_creates_a_model(registry):
    app = open_page("1_Train")
    app.number_input(key="hp_synthetic_fm_epochs").set_value(2).run()
    app.button(key="start_training").click().run()
    assert not app.exception
    state = app.session_state["job"].wait(120)
    assert state.status == "finished"
    app.run()
    assert not app.exception
    assert any("saved as" in s.value for s in app.success)
    saved = list_models(registry, include_builtin=False)
    assert len(saved) == 1 and saved[0].kind == "fm" and saved[0].name.startswith("synthetic-fm-")
    assert load_model(saved[0].path).meta["training"]["epochs"] == 2
    app.button(key="select_trained").click().run()
    assert sidebar_choice(app, "Model") == saved[0].name  # what every page now explains
    app.switch_page("app_pages/3_FM_vs_AFM.py").run()
    assert sidebar_choice(app, "Model") == saved[0].name  # kept across pages


def test_missing_data_says_how_to_get_it(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("AFM_DATA_DIR", str(tmp_path / "empty"))
    app = open_page("1_Train")
    app.radio(key="train_data").set_value("frappe").run()
    assert not app.exception
    assert "python -m afm download frappe" in app.info[0].value


def test_a_broken_model_shows_a_message_and_the_app_keeps_working(registry):
    app = open_page("1_Train")
    app.number_input(key="hp_synthetic_fm_epochs").set_value(1).run()
    app.button(key="start_training").click().run()
    path = app.session_state["job"].wait(120).path
    (path / "model.safetensors").write_bytes(b"not a safetensors file")
    app = open_page()
    next(box for box in app.sidebar.selectbox if box.label == "Baseline").set_value(path.name).run()
    app.switch_page("app_pages/3_FM_vs_AFM.py").run()
    assert not app.exception
    assert "not a valid safetensors file" in app.error[0].value
    app.switch_page("app_pages/5_Planted_interactions.py").run()  # other pages still work
    assert not app.exception and app.metric


def test_two_sessions_training_at_once_keep_both_models(registry):
    first, second = open_page("1_Train"), open_page("1_Train")
    for app in (first, second):
        app.number_input(key="hp_synthetic_fm_epochs").set_value(2).run()
        app.button(key="start_training").click().run()
    states = [app.session_state["job"].wait(120) for app in (first, second)]
    assert states[0].path != states[1].path and {s.status for s in states} == {"finished"}
    assert len(list_models(registry, include_builtin=False)) == 2
    first.run()
    first.button(key="select_trained").click().run()
    second.run()
    assert sidebar_choice(first, "Model") == states[0].path.name
    assert sidebar_choice(second, "Model") == "synthetic-afm"  # one session's choice never leaks into another


def test_instance_explorer_heatmap_views(registry):
    app = open_page("2_Instance_explorer")
    model = load_model(BUILTIN_DIR / "synthetic-afm")
    data = make_synthetic(seed=0)
    result = decompose_ids(model.model, data, data.splits["test"].x[0])
    rows, cols = np.triu_indices(8, k=1)
    for view in ("attention relative to uniform", "contribution"):
        app.radio(key="instance_view").set_value(view).run()
        assert not app.exception
        heatmap = next(f for f in figures(app) if f.data[0].type == "heatmap")
        np.testing.assert_allclose(array(heatmap.data[0].z)[rows, cols], pair_view(result, data.field_names, view),
                                   rtol=1e-6)


def test_which_interactions_matter_compares_the_shipped_wide_set(registry):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    app.sidebar.selectbox[0].set_value("wide").run()
    app.switch_page("app_pages/6_Which_interactions_matter.py").run()
    assert not app.exception, app.exception
    assert app.multiselect(key="which_models").value == [f"wide-afm-set/seed-{s}" for s in range(3)]
    agreement = next(df.value for df in app.dataframe if "kendall_w" in df.value.columns)
    assert set(agreement.measure) == {"attention", "contribution", "ablation", "interaction", "interaction_changed"}
    assert (agreement.models == 3).all() and agreement.kendall_w.between(0, 1).all()
    robust = next(m.value for m in app.markdown if "In the top 3 of every model" in m.value)
    for a, b in (("site_category", "hour"), ("app_category", "device_type"), ("banner_pos", "ad_size")):
        assert f"{a} x {b}" in robust or f"{b} x {a}" in robust  # the planted pairs survive retraining
    titles = [title(f) for f in figures(app) if f.data[0].type == "heatmap"]
    assert len(titles) == 4 and titles[-1] == "planted"  # interaction, function-level, attention score, planted
    assert all("correlation with planted" in t for t in titles[:-1])  # the strongest pair is a planted one
    app.switch_page("app_pages/2_Instance_explorer.py").run()  # a set member's page says how stable it is
    assert any("Across 3 models of its set" in c.value for c in app.caption)


def test_a_model_with_32_fields_works_on_every_page(registry):
    from afm.data import make_synthetic
    from afm.training.workflows import train_and_save

    fields = {f"field_{i:02d}": [f"v{j}" for j in range(3 + i % 4)] for i in range(32)}
    data = make_synthetic(seed=0, rows=400, fields=fields, planted=[("field_01", "field_07")])
    fm = train_and_save(data, "fm", registry / "wide32-fm", {"epochs": 1})
    train_and_save(data, "afm", registry / "wide32-afm", {"epochs": 1}, fm.path)
    app = open_page()
    app.sidebar.selectbox[0].set_value("synthetic").run()
    app.sidebar.selectbox[1].set_value("wide32-fm").run()
    app.sidebar.selectbox[2].set_value("wide32-afm").run()
    assert not app.exception
    for page in ("2_Instance_explorer", "3_FM_vs_AFM", "4_Attention_across_datasets", "6_Which_interactions_matter"):
        app.switch_page(f"app_pages/{page}.py").run()
        assert not app.exception, (page, app.exception)
        assert not app.error, (page, app.error[0].value)
        if page == "2_Instance_explorer":
            heatmap = next(f for f in figures(app) if f.data[0].type == "heatmap")
            assert len(heatmap.data[0].x) == 32 and heatmap.layout.height >= 16 * 32  # 32 x 32, tall enough
    bars = next(f for f in figures(app) if f.data[0].type == "bar")
    assert len(bars.data[0].y) == 20  # 496 pairs: the chart is capped, the table holds them all
    assert any("The 20 strongest of 496 pairs" in c.value for c in app.caption)


def test_which_interactions_matter_opens_on_a_set_of_equally_accurate_models(registry):
    """The newcomer's default (the shipped synthetic FM and AFM) has no set: the page opens on the shipped wide
    set of seeds rather than FM beside AFM, and says why."""
    app = open_page("6_Which_interactions_matter")
    assert app.multiselect(key="which_models").value == [f"wide-afm-set/seed-{s}" for s in range(3)]
    assert "synthetic has no set of equally accurate models" in app.info[0].value


def test_a_likely_leak_is_named_on_every_page(registry, tmp_path):
    """A field that alone predicts the label (a status written after the outcome) is named in the sidebar, so
    on every page that explains the model."""
    from afm.data.tabular import load_csv
    from afm.training.workflows import train_and_save

    rng = np.random.default_rng(0)
    rows = 1500
    colour, size = rng.choice(list("rgb"), rows), rng.integers(0, 5, rows)
    label = (rng.random(rows) < 0.3 + 0.3 * (colour == "r")).astype(int)
    csv = tmp_path / "refunds.csv"
    import pandas as pd
    pd.DataFrame({"colour": colour, "size": size, "refund_status": np.where(label == 1, "paid", "open"),
                  "label": label}).to_csv(csv, index=False)
    train_and_save(load_csv(csv, "label"), "fm", registry / "refunds-fm", {"epochs": 2})
    app = open_page()
    app.sidebar.selectbox[0].set_value("refunds").run()
    assert sidebar_choice(app, "Model") == "refunds-fm"
    for page in (None, "2_Instance_explorer", "4_Attention_across_datasets", "6_Which_interactions_matter"):
        if page:
            app.switch_page(f"app_pages/{page}.py").run()
        assert not app.exception, (page, app.exception)
        warning = [w.value for w in app.sidebar.warning]
        assert warning and "Likely leak: refund_status alone predicts the label" in warning[0], page


def test_the_previous_job_is_cleared_when_the_data_changes(registry):
    """A finished run on synthetic data, then wide data chosen: its result and its "Explain it" (which would
    select a model of the other data) are gone."""
    app = open_page("1_Train")
    app.number_input(key="hp_synthetic_fm_epochs").set_value(1).run()
    app.button(key="start_training").click().run()
    app.session_state["job"].wait(120)
    app.run()
    assert any("saved as" in s.value for s in app.success)
    app.radio(key="train_data").set_value("wide").run()
    assert not app.exception and not app.success and "job" not in app.session_state
    assert not [b for b in app.button if b.key == "select_trained"]


def test_a_run_expected_to_take_over_ten_minutes_is_announced(registry, shared_data, monkeypatch):
    monkeypatch.setenv("AFM_DATA_DIR", str(shared_data))
    app = open_page("1_Train")
    app.radio(key="train_data").set_value("frappe").run()
    app.radio(key="train_kind").set_value("afm").run()  # the paper's preset: k = t = 256, 100 epochs
    assert not app.exception
    warning = next(w.value for w in app.warning if "more than 10 minutes" in w.value)
    assert warning.startswith("About ") and "for 100 epochs" in warning
    app.radio(key="train_kind").set_value("lr").run()
    assert not [w for w in app.warning if "more than 10 minutes" in w.value]
    assert any(c.value.startswith("About ") and "for 100 epochs" in c.value for c in app.caption)

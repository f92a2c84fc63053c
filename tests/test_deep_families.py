"""The families CTR teams deploy (DeepFM, DCN-v2, AutoInt, NFM): trained here, split exactly into their additive
parts and one non-additive rest, saved and loaded with their batch-norm statistics, read by the function-level
measures, and shown on the pages."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT

from afm.data import make_synthetic
from afm.explain import charts
from afm.explain.agreement import compare_models, pair_measures
from afm.explain.field_attention import attention_agreement, attention_pair_scores, field_attention
from afm.explain.interactions import by_prediction, instance_frame, instance_interactions, references
from afm.explain.parts import batch_parts, decompose_ids
from afm.models import FAMILIES, ModelConfig, build_model
from afm.store.checkpoints import load_model
from afm.training.workflows import fit, train_and_save

DEEP = ("deepfm", "dcn", "autoint", "nfm")
SETTINGS = {"deepfm": {}, "dcn": {"cross_structure": "stacked"}, "autoint": {"hidden_layers": "32"}, "nfm": {}}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(seed=0, rows=6000)


@pytest.mark.parametrize("kind", DEEP)
def test_each_family_splits_its_prediction_exactly_and_keeps_batch_norm_through_a_save(kind, data, tmp_path):
    trained = train_and_save(data, kind, tmp_path / kind, {"epochs": 2, "batch_norm": True, "loss": "logistic",
                                                           **SETTINGS[kind]})
    model = trained.model
    config = model.config
    assert not config.additive and config.family is FAMILIES[kind]
    state = model.state_dict()
    assert {name: tuple(t.shape) for name, t in state.items()} == config.tensor_shapes()  # no integer counters
    norms = [name for name in state if name.endswith("running_var")]
    assert norms and all(not torch.equal(state[name], torch.ones_like(state[name])) for name in norms)  # it learned
    x = torch.as_tensor(data.splits["test"].x[:300])
    parts = model.parts(x)
    total = parts.bias + parts.first_order.sum(1) + parts.contribution.sum(1) + parts.rest
    torch.testing.assert_close(total, parts.prediction, atol=1e-5, rtol=0)
    model.eval()
    torch.testing.assert_close(model.predict(x), model(x))
    assert parts.rest.abs().max() > 0  # the MLP, cross network or self-attention adds something
    if kind == "deepfm":  # its FM part is exact per pair: the contributions are <v_i, v_j>
        v = model.embedding.weight[x]
        rows, cols = np.triu_indices(config.num_fields, k=1)
        torch.testing.assert_close(parts.contribution, (v[:, rows] * v[:, cols]).sum(-1))
    else:
        assert torch.equal(parts.contribution, torch.zeros_like(parts.contribution))
    loaded = load_model(tmp_path / kind).model
    torch.testing.assert_close(loaded.predict(x), model.predict(x), atol=0, rtol=0)


@pytest.mark.parametrize("kind", DEEP)
def test_the_function_level_measures_read_every_family_and_the_exact_ones_do_not_pretend(kind, data):
    model = fit(data, kind, {"epochs": 1, **SETTINGS[kind]}).model
    table = pair_measures(model, data, "test", sample=200, reference_count=4)
    assert np.isfinite(table.interaction).all() and (table.interaction > 0).any()
    assert table.contribution.isna().all() and table.ablation.isna().all()  # no exact per-pair split to read
    assert table.attention.notna().all() == model.config.has_attention  # AutoInt's between-field attention
    ids = data.splits["test"].x[7]
    one = instance_interactions(model, data, ids, reference_count=8)
    refs = references(data.splits["train"].x, 8)
    np.testing.assert_allclose(one, by_prediction(model, ids[None], refs)[0], atol=1e-6)
    frame = instance_frame(data, ids, one, decompose_ids(model, data, ids))
    assert np.abs(frame.function_level).is_monotonic_decreasing and len(frame) == len(one)
    assert ("exact_pair_term" in frame) == (kind == "deepfm")  # only DeepFM has exact pair terms beside


def test_the_waterfall_sums_to_the_prediction_with_one_non_additive_bar(data):
    for kind in ("deepfm", "nfm"):
        model = fit(data, kind, {"epochs": 1}).model
        result = decompose_ids(model, data, data.splits["test"].x[3])
        figure = charts.decomposition_waterfall(result)
        steps, total = np.asarray(figure.data[0].x[:-1], dtype=float), float(figure.data[0].x[-1])
        assert "non-additive part" in list(figure.data[0].y)
        assert steps.sum() == pytest.approx(total, abs=1e-5) and total == pytest.approx(result["prediction"])
        assert all(np.isnan(p["ablation"]) for p in result["pairs"])
        pair_bars = [label for label in figure.data[0].y if " x<br>" in label or "other pairs" in label]
        assert bool(pair_bars) == (kind == "deepfm")  # only DeepFM has exact pair terms to draw


def test_autoint_attention_is_read_per_layer_and_head_and_set_beside_the_function(data):
    model = fit(data, "autoint", {"epochs": 2, "attention_layers": 2, "attention_heads": 3, "head_size": 4}).model
    maps = field_attention(model, data.splits["test"].x[:50])
    assert maps.shape == (50, 2, 3, data.num_fields, data.num_fields)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)  # each field's row is a distribution
    weights = batch_parts(model, data.splits["test"].x[:50])["attention"]
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-5)
    one = attention_pair_scores(maps[4:5])  # row 4's pair weights: its between-field attention, normalised
    np.testing.assert_allclose(weights[4], one / one.sum(), atol=1e-6)
    agreement = attention_agreement(model, data, "test", sample=100, reference_count=4)
    assert -1 <= agreement["spearman"] <= 1 and len(agreement["attention"]) == data.num_fields * (data.num_fields - 1) // 2
    figure = charts.field_attention_maps(maps[0], data.field_names)
    assert len(figure.data) == 6 and all(trace.zmax == pytest.approx(maps[0].max()) for trace in figure.data)


def test_families_are_compared_across_families_only(data):
    models = {f"{kind}-{seed}": fit(data, kind, {"epochs": 2, "seed": seed}).model
              for kind in ("deepfm", "nfm", "afm") for seed in (0, 1)}
    comparison = compare_models(models, data, sample=200, reference_count=4)
    table = comparison.families
    assert set(table.families) == {"DeepFM vs NFM", "DeepFM vs AFM", "NFM vs AFM"}
    assert (table.pairs_of_models == 4).all()  # 2 x 2 models: no pair within one family
    assert set(table[table.families == "DeepFM vs NFM"].measure) == {"interaction", "interaction_changed"}


def _two_valued_csv(data, path):
    frame = pd.DataFrame({name: [data.feature_names[i].split("=", 1)[1] for i in data.splits["train"].x[:, f]]
                          for f, name in enumerate(data.field_names)})
    frame["clicked"] = (data.splits["train"].y > 0).astype(int)
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", DEEP)
def test_a_family_trains_from_the_cli_and_its_three_seed_set_finds_the_planted_pairs(kind, data, tmp_path):
    csv = _two_valued_csv(data, tmp_path / "clicks.csv")
    run = subprocess.run([sys.executable, "-m", "afm", "train", "--data", str(csv), "--model", kind, "--epochs", "2", "--target", "clicked",
                          "--out", str(tmp_path / "one"), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "one" / "model.json").read_text())["model"]["loss"] == "logistic"
    out = tmp_path / "set"
    run = subprocess.run([sys.executable, "-m", "afm", "train", "--data", "synthetic", "--model", kind, "--epochs", "6",
                          "--seeds", "3", "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([sys.executable, "-m", "afm", "interactions", str(out), "--sample", "500", "--references",
                          "8", "--measures", "interaction", "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    bands = pd.DataFrame(json.loads(run.stdout)["bands"])
    top = bands[bands.measure == "interaction"].sort_values("median", ascending=False).head(2)
    planted = {tuple(sorted(pair)) for pair in make_synthetic(seed=0).planted_effects}
    assert {tuple(sorted(pair)) for pair in zip(top.field_a, top.field_b)} == planted


def test_settings_refuse_what_the_families_cannot_build():
    from afm.core.errors import AFMError

    for bad in ({"hidden_layers": "64,,64"}, {"hidden_layers": "0"}, {"cross_structure": "diagonal"},
                {"attention_heads": 0}):
        with pytest.raises(AFMError):
            ModelConfig("dcn", 20, 4, **bad)
    config = ModelConfig("dcn", 20, 4, hidden_layers="", cross_layers=2)
    assert set(build_model(config).state_dict()) == set(config.tensor_shapes())
    assert "2 cross layers (parallel)" in config.describe() and "MLP" not in config.describe()


PAGES = ["2_Instance_explorer", "3_FM_vs_AFM", "4_Attention_across_datasets", "6_Which_interactions_matter"]


def test_every_page_opens_on_a_deepfm_and_an_autoint_and_the_waterfall_sums(tmp_path, monkeypatch):
    import plotly.io
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AFM_MODELS_DIR", str(tmp_path / "models"))
    default = make_synthetic(seed=0)
    for kind in ("deepfm", "autoint"):
        train_and_save(default, kind, tmp_path / "models" / f"synthetic-{kind}", {"epochs": 2})
    for kind in ("deepfm", "autoint"):
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
        next(box for box in app.sidebar.selectbox if box.label == "Model").set_value(f"synthetic-{kind}").run()
        for page in PAGES:
            app.switch_page(f"app_pages/{page}.py").run()
            assert not app.exception, (kind, page, app.exception)
            assert not app.error, (kind, page, app.error[0].value)
            figures = [plotly.io.from_json(chart.proto.spec) for chart in app.get("plotly_chart")]
            if page == "2_Instance_explorer":
                waterfall = next(f for f in figures if f.data[0].type == "waterfall")
                steps = np.asarray(waterfall.data[0].x, dtype=float)
                assert "non-additive part" in list(waterfall.data[0].y)
                expected = decompose_ids(load_model(tmp_path / "models" / f"synthetic-{kind}").model, default,
                                         default.splits["test"].x[0])["prediction"]
                assert steps[:-1].sum() == pytest.approx(steps[-1], abs=1e-5) and steps[-1] == pytest.approx(expected, abs=1e-5)
                heatmap = next(f for f in figures if f.data[0].type == "heatmap")
                assert "function-level" in (heatmap.layout.meta or {}).get("title", "")
                maps = [f for f in figures if len(f.data) > 1 and all(t.type == "heatmap" for t in f.data)]
                assert bool(maps) == (kind == "autoint")  # a map per layer and head, AutoInt only
                if maps:
                    assert len(maps[0].data) == 2 * 2  # the synthetic preset: 2 layers of 2 heads
                    assert any("Attention is not interaction" in c.value for c in app.caption)
            if page == "4_Attention_across_datasets":
                offered = app.multiselect(key="across_models").options
                assert (f"synthetic-{kind}" in offered) == (kind == "autoint")  # DeepFM has no attention


def test_the_train_page_offers_each_familys_settings_and_trains_it(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AFM_MODELS_DIR", str(tmp_path / "models"))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    app.switch_page("app_pages/1_Train.py").run()
    for kind in DEEP:
        app.radio(key="train_kind").set_value(kind).run()
        assert not app.exception, (kind, app.exception)
        offered = {w.key for w in [*app.number_input, *app.text_input, *app.checkbox, *app.selectbox]}
        for name in FAMILIES[kind].settings:
            assert any(key == f"hp_synthetic_{kind}_{name}" for key in offered), (kind, name)
    app.radio(key="train_kind").set_value("deepfm").run()
    app.text_input(key="hp_synthetic_deepfm_hidden_layers").set_value("64,,8").run()
    assert not app.exception and any("hidden" in e.value and "64,,8" in e.value for e in app.error)
    app.text_input(key="hp_synthetic_deepfm_hidden_layers").set_value("16").run()
    app.checkbox(key="hp_synthetic_deepfm_batch_norm").check().run()
    app.number_input(key="hp_synthetic_deepfm_epochs").set_value(1).run()
    app.button(key="start_training").click().run()
    state = app.session_state["job"].wait(120)
    assert state.status == "finished", state.message
    config = load_model(state.path).model.config
    assert (config.kind, config.hidden_layers, config.batch_norm) == ("deepfm", "16", True)


def test_the_families_table_tunes_each_family_alike_and_keeps_what_a_stopped_run_has(tmp_path):
    from afm.experiments.families import families_markdown, family_table, family_tables
    from afm.experiments.tuning import SearchBudget

    data = make_synthetic(seed=0, rows=3000)
    partial = []
    budget = SearchBudget(trials=2, epoch_cap=2, extensions=0)
    results = family_table(data, ["nfm", "deepfm"], budget, seeds=2, fixed={"loss": "logistic", "embed_dim": 8},
                           log=lambda line: None, on_family=partial.append)
    assert partial[0]["missing"] == ["deepfm"] and set(partial[0]["families"]) == {"nfm"}  # a stop keeps NFM
    assert results["finished"] and results["missing"] == [] and results["budget"]["embed_dim"] == 8
    for entry in results["families"].values():  # test read for the chosen runs only, never in the search
        assert all("test_auc" in run for run in entry["runs"])
        assert not any(key.startswith("test") for trial in entry["search"]["trials"] for key in trial)
    other = {**results, "created": "elsewhere", "families": {"nfm": {**results["families"]["nfm"], "label": "X"}}}
    another_budget = {**other, "budget": {**results["budget"], "trials": 3}}
    table = family_tables(results, {"same": other, "different": another_budget})
    assert list(table.model) == ["NFM", "DeepFM", "X"]  # the other file of the same protocol joins; not the other
    assert (table.test_auc > 0.5).all() and "bars_auc" not in table  # BARS only beside Frappe
    text = families_markdown(results)
    assert "| NFM |" in text and "2 trials" in text
    run = subprocess.run([sys.executable, "-m", "afm", "families", "--dataset", "synthetic", "--families", "nfm,xdeepfm",
                          "--out", str(tmp_path / "x.json")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "xdeepfm" in run.stderr


def test_afm_explain_reads_a_deepfm_by_its_function_and_its_exact_parts(tmp_path):
    trained = train_and_save(make_synthetic(seed=0), "deepfm", tmp_path / "dfm", {"epochs": 2})
    run = lambda *a: subprocess.run([sys.executable, "-m", "afm", "explain", str(tmp_path / "dfm"), *a], cwd=ROOT,
                                    capture_output=True, text=True, timeout=300)
    split = run("--json")
    assert split.returncode == 0, split.stderr
    table = pd.DataFrame(json.loads(split.stdout))
    assert "mean_attention" not in table and table.mean_abs_interaction.is_monotonic_decreasing
    row = run("--row", "3", "--json")
    result = json.loads(row.stdout)
    parts = result["bias"] + result["first_order_total"] + result["pairs_total"] + result["rest"]
    assert parts == pytest.approx(result["prediction"], abs=1e-5) and len(result["function_level"]) == 28
    assert trained.model.config.kind == "deepfm"


def test_a_deep_familys_interactions_stand_beside_its_null(tmp_path):
    """The null (the same settings on permuted labels) works for any family: NFM's planted pairs beat it."""
    run = lambda *a: subprocess.run([sys.executable, "-m", "afm", *a], cwd=ROOT, capture_output=True, text=True,
                                    timeout=600)
    for out, extra in ((tmp_path / "set", []), (tmp_path / "null", ["--permute-labels"])):
        trained = run("train", "--model", "nfm", "--epochs", "6", "--seeds", "2", "--out", str(out), "--quiet", *extra)
        assert trained.returncode == 0, trained.stderr
    measured = run("interactions", str(tmp_path / "set"), "--null", str(tmp_path / "null"), "--sample", "400",
                   "--references", "8", "--measures", "interaction", "--json")
    assert measured.returncode == 0, measured.stderr
    result = json.loads(measured.stdout)
    bands = pd.DataFrame(result["bands"])
    beating = {tuple(sorted(p)) for p in zip(bands[bands.beats_null == True].field_a,  # noqa: E712
                                            bands[bands.beats_null == True].field_b)}
    planted = {tuple(sorted(pair)) for pair in make_synthetic(seed=0).planted_effects}
    assert planted <= beating and "interaction" in result["null_agreement"]

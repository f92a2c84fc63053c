"""The model-family registry: each family declares its capabilities and settings, code asks for those, and a
family added as one file and one registry line (LR, first order only) trains, saves, loads and opens on
every page."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from afm.cli import build_parser
from afm.core.errors import AFMError
from afm.explain.interactions import by_prediction, interactions, references
from afm.models import FAMILIES, ModelConfig, build_model, family
from afm.models.families import hyperparameters, widgets
from afm.models.inference import evaluate
from afm.store.checkpoints import load_model
from afm.store.registry import new_model_path
from afm.training.workflows import fit, train_and_save

PAGES = ["1_Train", "2_Instance_explorer", "3_FM_vs_AFM", "4_Attention_across_datasets", "6_Which_interactions_matter"]


def test_the_cli_and_the_train_page_offer_every_registered_family():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    model = next(a for a in train._actions if a.dest == "model")
    assert tuple(model.choices) == tuple(FAMILIES) and {"fm", "afm", "lr"} <= set(FAMILIES)
    assert [s.name for s in widgets("lr")] == [s.name for s in widgets("fm") if s.name not in ("embed_dim", "dropout")]


def test_capabilities_say_what_each_family_can_show():
    configs = {kind: ModelConfig(kind, num_features=20, num_fields=4) for kind in FAMILIES}
    assert {kind for kind, config in configs.items() if config.additive} == {"fm", "afm", "lr"}
    assert [kind for kind, config in configs.items() if config.has_field_attention] == ["autoint"]
    assert configs["afm"].has_attention and not configs["fm"].has_attention and not configs["lr"].has_attention
    assert not ModelConfig("afm", 20, 4, attention=False).has_attention  # uniform AFM: attention switched off
    assert configs["afm"].normalised_weights and not configs["fm"].normalised_weights
    assert not configs["lr"].pairwise and configs["lr"].tensor_shapes() == {"bias": (1,), "linear.weight": (20, 1)}
    with pytest.raises(AFMError, match="unknown model family 'xdeepfm'"):
        ModelConfig("xdeepfm", 20, 4)


def test_settings_come_from_the_table_the_source_and_the_family():
    frappe_afm, frappe_fm = hyperparameters("frappe", "afm"), hyperparameters("frappe", "fm")
    assert (frappe_afm["embed_dim"], frappe_afm["batch_size"], frappe_afm["optimizer"]) == (256, 128, "adagrad")
    assert (frappe_afm["attention_factor"], frappe_afm["lr"], frappe_afm["l2_attention"]) == (256, 0.015, 16.0)
    assert frappe_fm["lr"] == 0.01 and "attention_factor" not in frappe_fm
    assert hyperparameters("movielens", "afm")["batch_size"] == 4096
    lr = hyperparameters("synthetic", "lr", {"attention_factor": 99, "epochs": 3})  # others' settings ignored
    assert "embed_dim" not in lr and lr["epochs"] == 3 and lr["lr"] == 0.05


def test_an_lr_has_no_pair_terms_and_its_parts_sum_to_the_prediction(synthetic):
    trained = fit(synthetic, "lr", {"epochs": 3})
    model, x = trained.model, torch.as_tensor(synthetic.splits["test"].x[:50])
    parts = model.parts(x)
    assert torch.equal(parts.contribution, torch.zeros_like(parts.contribution))
    torch.testing.assert_close(parts.bias + parts.first_order.sum(1), parts.prediction)
    torch.testing.assert_close(model.predict(x), model(x))
    fm_rmse = evaluate(fit(synthetic, "fm", {"epochs": 3}).model, synthetic, "test")["rmse"]
    assert evaluate(model, synthetic, "test")["rmse"] > fm_rmse  # the planted pairs are what LR cannot see
    data = synthetic.splits["test"].x[:40]
    refs = references(synthetic.splits["test"].x, 4)
    np.testing.assert_allclose(by_prediction(model, data, refs), 0.0, atol=1e-6)  # additive: no interaction
    assert np.abs(interactions(model, synthetic, sample=40).values).max() < 1e-6


def test_lr_trains_from_the_cli_and_loads(tmp_path):
    out = tmp_path / "lr"
    run = subprocess.run([sys.executable, "-m", "afm", "train", "--model", "lr", "--epochs", "2", "--out", str(out),
                          "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == f"saved {out}" and "LR best epoch 2" in run.stdout
    loaded = load_model(out)
    assert loaded.meta["model"]["kind"] == "lr" and "attention_spread" not in loaded.meta
    assert set(loaded.model.state_dict()) == {"bias", "linear.weight"}
    refused = subprocess.run([sys.executable, "-m", "afm", "train", "--model", "lr", "--embed-dim", "8", "--out",
                              str(tmp_path / "x")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--embed-dim apply to --model afm or " in refused.stderr and "not lr" in refused.stderr


def test_every_page_opens_on_an_lr(tmp_path, monkeypatch, synthetic):
    monkeypatch.setenv("AFM_MODELS_DIR", str(tmp_path / "models"))
    path = train_and_save(synthetic, "lr", new_model_path(None, "synthetic", "lr"), {"epochs": 2}).path
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    next(box for box in app.sidebar.selectbox if box.label == "Model").set_value(path.name).run()
    assert not app.exception, app.exception
    assert family(json.loads((path / "model.json").read_text())["model"]["kind"]).label == "LR"
    for page in PAGES:
        app.switch_page(f"app_pages/{page}.py").run()
        assert not app.exception, (page, app.exception)
    app.switch_page("app_pages/3_FM_vs_AFM.py").run()
    assert any(m.label.startswith("LR ") for m in app.metric)  # LR beside the FM baseline, by its own name
    app.switch_page("app_pages/1_Train.py").run()
    app.radio(key="train_kind").set_value("lr").run()
    assert not app.exception and not any(n.key.startswith("hp_synthetic_lr_embed") for n in app.number_input)


def test_build_model_builds_the_family_of_the_config():
    for kind, spec in FAMILIES.items():
        model = build_model(ModelConfig(kind, num_features=12, num_fields=3))
        assert isinstance(model, spec.model)
        assert {name: tuple(t.shape) for name, t in model.state_dict().items()} == model.config.tensor_shapes()

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from afm.data import make_synthetic
from afm.experiments.results import SCHEMA, results_table
from afm.experiments.studies import case_study, case_study_summary, fm_plus_attention, sweep
from afm.store.checkpoints import load_model
from afm.training.workflows import fit, save_trained


@pytest.fixture(scope="module")
def small():
    return make_synthetic(seed=2, rows=3000)


@pytest.fixture(scope="module")
def fm_dir(small, tmp_path_factory):
    return save_trained(fit(small, "fm", {"epochs": 4}), small, tmp_path_factory.mktemp("fm") / "fm").path


def test_reproduce_quick_on_synthetic_end_to_end(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "afm", "reproduce", "--dataset", "synthetic", "--quick",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "FM (ours)" in run.stdout and "AFM (ours)" in run.stdout and f"wrote {out}" in run.stdout
    results = json.loads(out.read_text())
    assert results["schema"] == SCHEMA and results["version"] == 1 and results["quick"] is True
    assert {"created", "versions", "device", "data", "models", "comparison", "paper_test_rmse", "wall_seconds"} <= set(results)
    for kind in ("fm", "afm"):
        record = results["models"][kind]
        assert set(record["metrics"]) == {"train", "validation", "test"}
        assert {"rmse", "mae", "auc", "n"} == set(record["metrics"]["test"])
        assert record["epochs_run"] == len(record["history"]) - 1 <= 10 and record["settings"]["epochs"] == 10
        assert record["device"] == "cpu" and record["seconds"] > 0
    assert results["models"]["afm"]["settings"]["attention_factor"] == 16
    assert results["data"]["name"] == "synthetic" and results["data"]["rows"]["test"] == 2000
    rmse = {row["metric"]: row for row in results["comparison"]}["rmse"]
    assert rmse["afm"] == pytest.approx(results["models"]["afm"]["metrics"]["test"]["rmse"])
    assert list(results_table(results).method[:2]) == ["FM (ours)", "AFM (ours)"]


def test_sweep_reports_validation_rmse_per_value(small, fm_dir):
    table = sweep(small, "attention_factor", [2, 8], {"epochs": 2}, fm_dir, log=lambda *_: None)
    assert table.value.tolist() == [2, 8] and (table.validation_rmse < 1.0).all()
    assert "test_rmse" not in table.columns  # the test split is not for tuning


def test_fm_plus_attention_trains_only_attention(small, fm_dir):
    fm = load_model(fm_dir).model
    trained = fm_plus_attention(small, fm_dir, {"epochs": 3})
    model = trained.model
    assert trained.result.best_epoch >= 1 and trained.params["freeze_fm"]
    for name in ("bias", "linear.weight", "embedding.weight"):
        assert torch.equal(model.state_dict()[name], fm.state_dict()[name]), name
    assert not torch.equal(model.attention_W, fit(small, "afm", {"epochs": 0}).model.attention_W)  # attention learned


def test_case_study_compares_equal_weights_with_attention(small, fm_dir):
    fm = load_model(fm_dir).model
    attentive = fm_plus_attention(small, fm_dir, {"epochs": 2}).model
    table = case_study(fm, attentive, small)
    attention = table[[c for c in table.columns if c.endswith(": attention")]]
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-5)
    x = small.splits["test"].x[0]
    i, j = small.field_names.index("user_group"), small.field_names.index("weather")
    v = fm.embedding.weight.detach()
    assert table["user_group x weather: FM score"][0] == pytest.approx(float((v[x[i]] * v[x[j]]).sum()), rel=1e-5)
    summary = case_study_summary(fm, attentive, small)
    assert len(summary["pairs"]) == 28 and sum(summary["top_pair_share"]) == pytest.approx(1.0)
    assert summary["most_attended_pair"] == summary["pairs"][int(np.argmax(summary["mean_attention"]))]


def test_committed_results_and_tables(tmp_path, small, fm_dir):
    from afm.experiments.results import case_study_table, committed_results, sweep_table

    fm = load_model(fm_dir).model
    attentive = fm_plus_attention(small, fm_dir, {"epochs": 1}).model
    results = {"schema": SCHEMA, "version": 1, "studies": {"sweeps": {"dropout": [
        {"parameter": "dropout", "value": 0.2, "validation_rmse": 0.5, "best_epoch": 1, "seconds": 1.0}]}},
        "case_study": case_study_summary(fm, attentive, small)}
    (tmp_path / "a.json").write_text(json.dumps(results))
    (tmp_path / "other.json").write_text('{"schema": "something else"}')
    (tmp_path / "broken.json").write_text("{")
    assert list(committed_results(tmp_path)) == ["a"]
    assert sweep_table(results).validation_rmse.tolist() == [0.5]
    table = case_study_table(results)
    assert len(table) == 28 and table.mean_attention.sum() == pytest.approx(1.0, abs=1e-5)


def test_reproduce_can_reuse_a_trained_fm_and_keep_models(tmp_path, small, fm_dir):
    from afm.experiments.reproduce import reproduce

    results = reproduce(small, quick=True, log=lambda *_: None, fm_dir=fm_dir, epochs=2, keep_models=tmp_path,
                        afm_overrides={"attention_factor": 3, "optimizer": "adagrad", "lr": None})
    settings = results["models"]["afm"]["settings"]
    assert settings["attention_factor"] == 3 and settings["optimizer"] == "adagrad"  # tuning is recorded
    assert load_model(tmp_path / "synthetic-afm").model.attention_W.shape[0] == 3
    fm_meta = load_model(fm_dir).meta
    assert results["models"]["fm"]["history"] == fm_meta["history"]
    assert results["models"]["fm"]["metrics"]["test"]["rmse"] == pytest.approx(fm_meta["metrics"]["test"]["rmse"])
    assert results["models"]["afm"]["epochs_run"] <= 2 and (tmp_path / "synthetic-afm" / "model.json").is_file()


def test_settings_table_marks_what_differs_from_the_paper(tmp_path, small, fm_dir):
    from afm.experiments.reproduce import reproduce
    from afm.experiments.results import settings_note, settings_table

    results = reproduce(small, quick=True, log=lambda *_: None, fm_dir=fm_dir, epochs=1,
                        afm_overrides={"attention_factor": 3})
    table = settings_table(results).set_index(["model", "setting"])
    assert table.loc[("AFM", "attention_factor"), "differs"] and table.loc[("AFM", "attention_factor"), "value"] == "3"
    assert not table.loc[("AFM", "dropout"), "differs"]
    # The paper never ran synthetic data: the reference there is our preset, and it says so.
    assert "preset" in table.columns and "paper" not in table.columns
    assert "AFM attention_factor 3 (preset 16)" in settings_note(results) and "--quick" in settings_note(results)
    assert "our defaults" in settings_note(results)


def test_settings_of_the_committed_frappe_run_are_compared_with_the_papers():
    from afm.experiments.results import committed_results, settings_note, settings_table

    results = committed_results()["frappe-tuned"]
    table = settings_table(results).set_index(["model", "setting"])
    assert table.loc[("AFM", "attention_factor"), "paper"] == "256"  # the authors' Frappe t
    assert "(paper 256)" in settings_note(results) and "chosen on validation" in settings_note(results)

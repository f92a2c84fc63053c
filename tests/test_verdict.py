"""The fair verdict's guarantees, on real runs on small data."""
import json

import numpy as np
import pytest
import torch

from afm.data import make_synthetic
from afm.experiments.results import run_record
from afm.experiments.verdict import candidate_configs, search, seed_interval, summarize_runs, t_quantile, verdict
from afm.models.inference import predict
from afm.training.workflows import fit, save_trained


@pytest.fixture(scope="module")
def small():
    return make_synthetic(seed=0, rows=1500)


def test_t_quantiles_match_the_tables():
    assert t_quantile(0.975, 4) == pytest.approx(2.7764, abs=2e-3)
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=2e-2)
    assert t_quantile(0.975, 200) == pytest.approx(1.972, abs=2e-3)


def test_the_seed_interval_is_a_t_interval():
    low, high = seed_interval(np.array([-0.01, -0.02, -0.03]))
    assert (low + high) / 2 == pytest.approx(-0.02)
    assert (high - low) / 2 == pytest.approx(4.3027 * 0.01 / np.sqrt(3), rel=1e-3)
    assert np.isnan(seed_interval(np.array([-0.01]))[0])


def test_both_sides_search_the_same_number_of_configurations_starting_from_the_preset():
    fm, afm = candidate_configs("frappe", "fm", 6), candidate_configs("frappe", "afm", 6)
    assert len(fm) == len(afm) == 6 and len({json.dumps(c, sort_keys=True) for c in fm}) == 6
    assert fm[0] == {"optimizer": "adagrad", "dropout": 0.3, "lr": 0.01}  # the paper's FM on Frappe
    assert afm[0]["attention_factor"] == 256 and afm[0]["l2_attention"] == 16.0


def test_a_search_never_reads_the_test_split(small):
    rows = search(small, "fm", candidate_configs("synthetic", "fm", 2), {"epochs": 1}, log=lambda *_: None)
    assert "test" not in json.dumps(rows)
    record = run_record(fit(small, "fm", {"epochs": 1}), small, final=False)
    assert set(record["metrics"]) == {"train", "validation"} and record["final"] is False


def test_fm_plus_attention_starts_as_exactly_the_fm(small, tmp_path):
    fm = save_trained(fit(small, "fm", {"epochs": 2}), small, tmp_path / "fm")
    start = fit(small, "afm", {"epochs": 0, "freeze_fm": True, "p_start": "fm"}, pretrain_dir=fm.path)
    x = small.splits["validation"].x
    np.testing.assert_allclose(predict(start.model, x), predict(fm.model, x), rtol=1e-5, atol=1e-5)
    trained = fit(small, "afm", {"epochs": 3, "freeze_fm": True, "p_start": "fm"}, pretrain_dir=fm.path)
    fm_validation = trained.result.history[0]["validation_rmse"]  # epoch 0 is the FM itself
    assert trained.result.best_validation <= fm_validation  # best epoch by validation: never worse
    assert torch.equal(trained.model.embedding.weight, fm.model.embedding.weight)


def test_the_verdict_uses_the_wider_interval():
    rows = [{"model": "FM", "seed": s, "test_rmse": 0.60 + 0.001 * s} for s in range(3)]
    rows += [{"model": "AFM", "seed": s, "test_rmse": 0.55 + 0.02 * s, "bootstrap_low": -0.051, "bootstrap_high": -0.049}
             for s in range(3)]
    summary, comparisons = summarize_runs(rows)
    afm = comparisons[0]
    assert afm["interval_used"] == "across-seed t interval" and afm["verdict_low"] == pytest.approx(afm["seed_low"])
    assert [r["seeds"] for r in summary] == [3, 3]


def test_a_quick_verdict_records_budget_provenance_and_test_only_for_final_runs(small, tmp_path):
    results = verdict(small, configs=2, search_epochs=2, seeds=2, epochs=3, models_dir=tmp_path, log=lambda *_: None)
    assert results["budget"]["fm"] == results["budget"]["afm"]
    assert len(results["search"]["fm"]) == len(results["search"]["afm"]) == 2
    assert "test" not in json.dumps(results["search"])
    assert {r["model"] for r in results["runs"]} == {"FM", "AFM", "uniform AFM", "FM+A"}
    assert results["git"]["commit"] and "torch_threads" in results["versions"]
    assert {c["model"] for c in results["comparisons"]} == {"AFM", "uniform AFM", "FM+A"}


def test_a_verdict_resumes_its_search_and_says_when_runs_hit_the_epoch_cap(small, tmp_path):
    lines = []
    first = verdict(small, configs=2, search_epochs=2, seeds=2, epochs=1, models_dir=tmp_path, log=lines.append)
    assert (tmp_path / "search.json").is_file() and not any("done before" in line for line in lines)
    lines.clear()
    again = verdict(small, configs=2, search_epochs=2, seeds=2, epochs=1, models_dir=tmp_path, log=lines.append)
    assert sum("done before" in line for line in lines) == 4  # both sides' configurations, read back
    assert again["search"] == first["search"] and again["chosen"] == first["chosen"]
    assert all(row["epoch_cap"] == 1 for row in again["runs"])
    from afm.experiments.verdict import capped_runs, verdict_sentence
    capped = capped_runs(again)  # one epoch: every run that improved at all ends at the cap
    assert capped and "Caution: best epoch at the epoch cap" in verdict_sentence(again)

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from afm.explain.parts import PAIR_VIEWS, SplitExplanation, decompose, explain_split, pair_view
from afm.explain.statistics import DEGENERATE_MAX_MIN_RATIO, attention_spread, describe_spread, importance_agreement
from afm.training.workflows import fit


def explanation(weights: np.ndarray, dataset) -> SplitExplanation:
    n, p = weights.shape
    parts = {"attention": weights, "contribution": weights * 0.1, "interaction": np.full((n, p), 0.1),
             "bias": np.zeros(n), "first_order": np.zeros((n, 2)), "prediction": np.zeros(n)}
    return SplitExplanation(dataset=dataset, split="test", model_kind="afm", normalised=True, parts=parts)


def test_spread_is_zero_for_uniform_and_maximal_for_one_hot(synthetic):
    p = synthetic.num_pairs
    uniform = attention_spread(explanation(np.full((5, p), 1 / p), synthetic))
    assert uniform["concentration"] == pytest.approx(0) and uniform["cv"] == pytest.approx(0)
    assert uniform["max_min_ratio"] == pytest.approx(1) and uniform["relative_entropy"] == pytest.approx(1)
    assert uniform["degenerate"]
    one_hot = np.zeros((5, p))
    one_hot[:, 3] = 1.0
    peaked = attention_spread(explanation(one_hot, synthetic))
    assert peaked["concentration"] == pytest.approx(1) and peaked["cv"] == pytest.approx(np.sqrt(p - 1))
    assert peaked["max_min_ratio"] == np.inf and not peaked["degenerate"]


def test_uniform_afm_has_exactly_1_over_p_and_no_attention_parameters(synthetic):
    model = fit(synthetic, "afm", {"attention": False, "epochs": 2}).model
    ex = explain_split(model, synthetic, "test")
    assert np.array_equal(ex.parts["attention"], np.full_like(ex.parts["attention"], np.float32(1 / 28)))
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained == {"bias", "linear.weight", "embedding.weight", "p"}  # what its optimizer receives


def test_degenerate_check_fires_on_constant_logits_and_not_on_planted_data(trained_pair, synthetic):
    constant = fit(synthetic, "afm", {"epochs": 1}).model
    with torch.no_grad():
        constant.attention_h.zero_()  # every pair's score is 0: softmax gives 1/P everywhere
    spread = attention_spread(explain_split(constant, synthetic, "test"))
    assert spread["degenerate"] and "WARNING: attention is constant" in describe_spread(spread)
    planted = attention_spread(explain_split(trained_pair["afm"], synthetic, "test"))
    assert not planted["degenerate"] and planted["max_min_ratio"] > DEGENERATE_MAX_MIN_RATIO
    assert "WARNING" not in describe_spread(planted)


def test_views_of_a_pair_heatmap(trained_pair, synthetic):
    result = decompose(trained_pair["afm"], synthetic, "test", 3)
    attention = pair_view(result, synthetic.field_names, "attention")
    np.testing.assert_allclose(pair_view(result, synthetic.field_names, "attention relative to uniform"), attention * 28)
    contribution = pair_view(result, synthetic.field_names, "contribution")
    assert contribution.sum() == pytest.approx(sum(p["contribution"] for p in result["pairs"]), abs=1e-6)
    assert set(PAIR_VIEWS) == {"attention", "attention relative to uniform", "contribution"}


def test_importance_agreement_is_one_with_itself(trained_pair, synthetic):
    ex = explain_split(trained_pair["afm"], synthetic, "test")
    assert importance_agreement(ex, ex) == {"by_attention": pytest.approx(1.0), "by_contribution": pytest.approx(1.0)}


def test_ablate_quick_end_to_end(tmp_path):
    out = tmp_path / "ablation.json"
    run = subprocess.run([sys.executable, "-m", "afm", "ablate", "--dataset", "synthetic", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    table = {row["model"]: row for row in results["table"]}
    assert list(table) == ["FM", "uniform AFM", "FM+A", "AFM, lambda=0", "AFM", "AFM, seed 1"]
    assert table["uniform AFM"]["cv"] == pytest.approx(0) and table["uniform AFM"]["degenerate"]
    assert table["AFM"]["ci_low"] <= table["AFM"]["difference_vs_fm"] <= table["AFM"]["ci_high"]
    assert not table["AFM"]["degenerate"]
    assert {(s["a"], s["b"]) for s in results["stability"]} == {("AFM", "AFM, seed 1"), ("AFM", "AFM, lambda=0")}
    assert "explanation stability" in run.stdout


def test_ablate_reuses_a_trained_fm_and_records_the_settings(tmp_path, synthetic):
    from afm.experiments.ablation import ablate
    from afm.store.checkpoints import read_meta
    from afm.training.workflows import train_and_save

    fm_dir = train_and_save(synthetic, "fm", tmp_path / "fm", {"epochs": 3}).path
    results = ablate(synthetic, fm_dir=fm_dir, epochs=2, optimizer={"optimizer": "adagrad", "lr": 0.05},
                     afm_overrides={"attention_factor": 4}, log=lambda line: None)
    fm_test = read_meta(fm_dir)["metrics"]["test"]["rmse"]
    assert results["table"][0]["model"] == "FM" and results["table"][0]["test_rmse"] == pytest.approx(fm_test)
    assert results["runs"]["FM"]["history"] == read_meta(fm_dir)["history"]  # not retrained
    for name in ("uniform AFM", "FM+A", "AFM, lambda=0", "AFM"):
        run = results["runs"][name]
        assert run["settings"]["optimizer"] == "adagrad" and run["settings"]["lr"] == 0.05
        assert run["settings"]["attention_factor"] == 4 and len(run["history"]) - 1 <= 2

"""Binary classification as the CTR field trains it: logistic loss, AUC and logloss, explanations in logit
space. Real training on small data; metrics checked against definitions computed the slow way."""
import itertools
import json

import numpy as np
import pytest

from afm.core.errors import AFMError
from afm.core.metrics import in_label_units, instance_logloss, score_metrics, sigmoid, weighted_auc
from afm.data import load_dataset, make_synthetic
from afm.experiments.tuning import SearchBudget
from afm.experiments.verdict import reference_table, verdict, verdict_sentence, verdict_tables
from afm.explain.compare import bootstrap_comparison, errors_by_segment, paired_errors
from afm.explain.parts import decompose
from afm.models.inference import evaluate, predict
from afm.training.workflows import fit, run_settings, save_trained


@pytest.fixture(scope="module")
def small():
    return make_synthetic(seed=1, rows=3000)


@pytest.fixture(scope="module")
def logistic_pair(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("logistic")
    fm = save_trained(fit(small, "fm", {"epochs": 8, "loss": "logistic"}), small, out / "fm")
    afm = save_trained(fit(small, "afm", {"epochs": 8}, pretrain_dir=fm.path), small, out / "afm")
    return fm, afm


def slow_auc(score, positive, weight=None):
    """Every (positive, negative) pair, ties one half: the definition."""
    weight = np.ones(len(score)) if weight is None else weight
    pos = [i for i in range(len(score)) if positive[i]]
    neg = [i for i in range(len(score)) if not positive[i]]
    wins = sum(weight[i] * weight[j] * (1.0 if score[i] > score[j] else 0.5 if score[i] == score[j] else 0.0)
               for i, j in itertools.product(pos, neg))
    return wins / (weight[pos].sum() * weight[neg].sum())


def test_auc_is_the_chance_a_positive_outscores_a_negative_ties_half():
    rng = np.random.default_rng(0)
    score = np.round(rng.normal(size=120), 1)  # many ties
    positive = rng.random(120) < sigmoid(2 * score)
    assert weighted_auc(score, positive) == pytest.approx(slow_auc(score, positive), abs=1e-12)
    counts = rng.multinomial(120, np.full(120, 1 / 120), size=3).astype(float)
    np.testing.assert_allclose(weighted_auc(score, positive, counts),
                               [slow_auc(score, positive, w) for w in counts], atol=1e-12)
    assert np.isnan(weighted_auc(score, np.ones(120, bool)))  # one class only


def test_logloss_is_the_mean_binary_cross_entropy_and_stays_finite():
    score = np.array([-3.0, 0.0, 2.0, 800.0, -800.0])
    positive = np.array([False, True, True, False, True])
    p = 1 / (1 + np.exp(-score[:3]))
    np.testing.assert_allclose(instance_logloss(score[:3], positive[:3]),
                               -np.log(np.where(positive[:3], p, 1 - p)), rtol=1e-12)
    assert np.isfinite(instance_logloss(score, positive)).all()  # confident mistakes are floored, not infinite


def test_logistic_training_lowers_validation_logloss_and_records_it(small, logistic_pair):
    fm, afm = logistic_pair
    for trained in (fm, afm):
        history = trained.result.history
        assert trained.result.selected_by == "logloss"
        assert trained.result.best_validation == min(row["validation_logloss"] for row in history)
        assert history[trained.result.best_epoch]["validation_logloss"] < history[0]["validation_logloss"] - 0.1
        saved = json.loads((trained.path / "model.json").read_text())
        assert saved["model"]["loss"] == "logistic"
        assert {"rmse", "mae", "auc", "logloss"} <= set(saved["metrics"]["test"])
    metrics = evaluate(afm.model, small, "test")
    assert 0.5 < metrics["auc"] <= 1 and metrics["logloss"] < np.log(2)


def test_squared_models_on_binary_data_report_auc_but_no_logloss(small):
    trained = fit(small, "fm", {"epochs": 3})
    metrics = evaluate(trained.model, small, "test")
    assert "auc" in metrics and "logloss" not in metrics and trained.result.selected_by == "rmse"


def test_rmse_of_a_logistic_model_reads_its_probability_on_the_label_scale(small, logistic_pair):
    _, afm = logistic_pair
    test = small.splits["test"]
    score = predict(afm.model, test.x)
    expected = np.sqrt(np.mean((-1 + 2 * sigmoid(score) - test.y) ** 2))
    assert evaluate(afm.model, small, "test")["rmse"] == pytest.approx(expected, rel=1e-9)
    assert score_metrics(score, test.y, small.label_range, "logistic", binary=True)["auc"] == pytest.approx(
        weighted_auc(sigmoid(score), test.y > 0), abs=1e-12)  # AUC ranks: logits and probabilities agree
    np.testing.assert_allclose(in_label_units(np.array([0.0]), (-1, 1), "logistic"), [0.0])


def test_the_decomposition_adds_up_to_the_logit_and_gives_the_probability(small, logistic_pair):
    _, afm = logistic_pair
    result = decompose(afm.model, small, "test", 5)
    total = result["bias"] + result["first_order_total"] + result["pairs_total"]
    assert total == pytest.approx(result["prediction"], abs=1e-5)
    assert result["probability"] == pytest.approx(1 / (1 + np.exp(-result["prediction"])), abs=1e-6)
    assert decompose(fit(small, "fm", {"epochs": 1}).model, small, "test", 5)["probability"] is None


def test_paired_comparison_gives_auc_and_logloss_intervals(small, logistic_pair):
    fm, afm = logistic_pair
    errors = paired_errors(fm.model, afm.model, small, "test")
    table = bootstrap_comparison(errors, samples=300).set_index("metric")
    assert set(table.index) == {"rmse", "mae", "auc", "logloss"}
    for metric in ("auc", "logloss"):
        row = table.loc[metric]
        assert row.ci_low <= row.difference <= row.ci_high
    assert table.loc["logloss", "afm"] == pytest.approx(evaluate(afm.model, small, "test")["logloss"], rel=1e-9)
    segments = errors_by_segment(errors, small, "test")
    assert {"fm_logloss", "afm_logloss", "logloss_difference"} <= set(segments.columns)


def test_a_users_two_valued_target_defaults_to_logistic_and_a_numeric_one_refuses_it(tmp_path):
    rows = "".join(f"{'abc'[i % 3]},{i % 4},{(i * 7) % 5},{'yes' if (i % 3 == 0) ^ (i % 4 == 1) else 'no'},{i % 7}\n"
                   for i in range(300))
    (tmp_path / "d.csv").write_text("colour,size,shape,bought,score\n" + rows)
    binary = load_dataset({"kind": "csv", "path": str(tmp_path / "d.csv"), "target": "bought", "seed": 0})
    numeric = load_dataset({"kind": "csv", "path": str(tmp_path / "d.csv"), "target": "score", "seed": 0})
    assert run_settings(binary, "fm")["loss"] == "logistic"
    assert run_settings(numeric, "fm")["loss"] == "squared"
    assert run_settings(make_synthetic(seed=0, rows=1000), "fm")["loss"] == "squared"  # presets keep the paper's
    with pytest.raises(AFMError, match="two-valued target"):
        fit(numeric, "fm", {"epochs": 1, "loss": "logistic"})


def test_an_afm_takes_its_fms_loss_and_refuses_another(small, logistic_pair):
    fm, _ = logistic_pair
    assert fit(small, "afm", {"epochs": 1}, pretrain_dir=fm.path).model.config.loss == "logistic"
    with pytest.raises(AFMError, match="logistic loss and this AFM uses squared"):
        fit(small, "afm", {"epochs": 1, "loss": "squared"}, pretrain_dir=fm.path)


def test_a_logistic_verdict_selects_by_logloss_and_reports_auc(small, tmp_path):
    results = verdict(small, SearchBudget(trials=2, epoch_cap=2), seeds=2, models_dir=tmp_path, log=lambda *_: None,
                      fixed={"loss": "logistic"}, others={}, variants=False)
    assert results["budget"]["loss"] == "logistic"
    assert all(row["selected_by"] == "logloss" for s in results["search"].values() for row in s["trials"])
    assert {c["metric"] for c in results["comparisons"]} == {"logloss", "rmse", "auc"}
    assert results["comparisons"][0]["metric"] == "logloss" and "logloss" in verdict_sentence(results)
    tables = verdict_tables(results)
    assert "test logloss (mean)" in tables["summary"] and "test AUC (mean)" in tables["summary"]
    assert tables["reference"].empty  # BARS has figures for Frappe alone
    frappe_like = {**results, "data": {**results["data"], "name": "frappe"}}
    reference = verdict_tables(frappe_like)["reference"].set_index("method")
    summary = {row["model"]: row for row in results["summary"]}
    assert reference.loc["AFM", "bars_test_auc"] == 0.9697
    assert reference.loc["AFM", "ours_test_auc (k=16)"] == summary["AFM"]["auc_mean"]
    # another logistic verdict on the same data at another k adds its own columns; other data or losses do not
    at_k256 = {**frappe_like, "budget": {**results["budget"], "embed_dim": 256},
               "summary": [{**row, "auc_mean": row["auc_mean"] - 0.01} for row in results["summary"]]}
    other_data = {**results, "budget": at_k256["budget"]}
    merged = reference_table(frappe_like, [at_k256, other_data]).set_index("method")
    assert list(merged.columns[-4:]) == ["ours_test_auc (k=16)", "ours_test_logloss (k=16)",
                                         "ours_test_auc (k=256)", "ours_test_logloss (k=256)"]
    assert merged.loc["AFM", "ours_test_auc (k=256)"] == summary["AFM"]["auc_mean"] - 0.01

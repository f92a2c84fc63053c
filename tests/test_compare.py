import numpy as np
import pandas as pd
import pytest

from afm.explain.compare import (
    bootstrap_comparison,
    errors_by_segment,
    feature_frequency,
    largest_differences,
    paired_errors,
    results_beside_paper,
)


@pytest.fixture(scope="module")
def errors(trained_pair, synthetic):
    return paired_errors(trained_pair["fm"], trained_pair["afm"], synthetic, "test")


def test_paired_errors_are_clipped_predictions_minus_labels(errors, synthetic):
    assert len(errors) == 2000
    assert errors.fm_prediction.between(-1, 1).all() and errors.afm_prediction.between(-1, 1).all()
    np.testing.assert_allclose(errors.afm_error, errors.afm_prediction - synthetic.splits["test"].y)


def test_bootstrap_interval_contains_the_difference_and_narrows_with_more_data(errors):
    table = bootstrap_comparison(errors, samples=500).set_index("metric")
    for metric in ("rmse", "mae"):
        row = table.loc[metric]
        assert row.ci_low <= row.difference <= row.ci_high
    rmse = table.loc["rmse"]
    assert rmse.fm == pytest.approx(np.sqrt((errors.fm_error ** 2).mean()))
    assert rmse.difference == pytest.approx(rmse.afm - rmse.fm)
    small = bootstrap_comparison(errors.head(200), samples=500).set_index("metric").loc["rmse"]
    assert (rmse.ci_high - rmse.ci_low) < 0.6 * (small.ci_high - small.ci_low)  # ~ 1/sqrt(10) in theory
    assert rmse.ci_high < 0  # AFM's gain on the planted data is not noise
    again = bootstrap_comparison(errors, samples=500).set_index("metric").loc["rmse"]
    assert again.ci_low == rmse.ci_low  # seeded


def test_segments_cover_label_frequency_and_field_values(errors, synthetic):
    table = errors_by_segment(errors, synthetic, "test")
    labels = table[table.segment_kind == "label"]
    assert set(labels.segment) == {"-1", "+1"} and labels.n.sum() == 2000
    negatives = errors[errors.label < 0]
    row = labels.set_index("segment").loc["-1"]
    assert row.fm_rmse == pytest.approx(np.sqrt((negatives.fm_error ** 2).mean()))
    assert set(synthetic.field_names) <= set(table.segment_kind)
    weather = table[table.segment_kind == "weather"]
    assert weather.n.sum() == 2000 and "sunny" in set(weather.segment)
    freq = table[table.segment_kind == "rarest feature's train count"]
    assert freq.n.sum() == 2000
    counts = feature_frequency(synthetic, "test")
    train_counts = np.bincount(synthetic.splits["train"].x.ravel())
    assert counts[0] == train_counts[synthetic.splits["test"].x[0]].min()


def test_largest_differences(errors):
    table = largest_differences(errors, 5)
    assert list(table.direction) == ["gain"] * 5 + ["loss"] * 5
    gain = errors.fm_error.abs() - errors.afm_error.abs()
    assert table.afm_gain[0] == pytest.approx(gain.max()) and table.afm_gain[5] == pytest.approx(gain.min())


def test_results_beside_paper():
    comparison = pd.DataFrame([{"metric": "rmse", "fm": 0.35, "afm": 0.32}, {"metric": "mae", "fm": 0.2, "afm": 0.19}])
    table = results_beside_paper(comparison, "frappe").set_index("method")
    assert table.loc["AFM", "paper_test_rmse"] == 0.3102 and table.loc["AFM", "our_test_rmse"] == 0.32
    assert table.loc["LibFM", "our_test_rmse"] == 0.35 and np.isnan(table.loc["HOFM", "our_test_rmse"])
    assert results_beside_paper(comparison, "synthetic").empty

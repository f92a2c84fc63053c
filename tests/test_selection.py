import numpy as np
import pytest

from afm.explain.compare import paired_errors
from afm.explain.parts import explain_split
from afm.explain.selection import random_row, rows_by_disagreement, rows_by_error, rows_matching
from afm.explain.statistics import compare_explanations


def test_rows_matching_feature_values(synthetic):
    daytime = synthetic.field_values("daytime")[2]
    weather = synthetic.field_values("weather")[0]
    rows = rows_matching(synthetic, "test", {"daytime": daytime, "weather": weather})
    x = synthetic.splits["test"].x
    expected = [i for i in range(len(x)) if x[i, 2] == daytime and x[i, 4] == weather]
    assert rows.tolist() == expected and len(rows) > 0


def test_error_and_disagreement_rankings(trained_pair, synthetic):
    errors = paired_errors(trained_pair["fm"], trained_pair["afm"], synthetic)
    worst = rows_by_error(errors, "afm", 5)
    assert worst.afm_error.abs().tolist() == sorted(errors.afm_error.abs(), reverse=True)[:5]
    gap = rows_by_disagreement(errors, 5)
    assert gap.disagreement[0] == (errors.afm_prediction - errors.fm_prediction).abs().max()
    assert 0 <= random_row(synthetic, "test", seed=1) < 2000
    assert random_row(synthetic, "test", seed=1) == random_row(synthetic, "test", seed=1)


def test_compare_explanations(trained_pair, synthetic):
    table = compare_explanations({"a": explain_split(trained_pair["afm"], synthetic),
                                  "f": explain_split(trained_pair["fm"], synthetic)}).set_index("model")
    assert table.loc["f", "mean_normalised_entropy"] == pytest.approx(1.0) and np.isnan(table.loc["f", "attention_vs_ablation"])
    assert table.loc["a", "mean_normalised_entropy"] < 0.9 and table.loc["a", "pairs"] == 28

import numpy as np
import pytest

from afm.errors import AFMError
from afm.explain import batch_parts, decompose, field_pair_summary, field_pairs
from afm.training import predict


def test_decomposition_sums_to_the_prediction_with_names(trained_pair, synthetic):
    for kind in ("fm", "afm"):
        result = decompose(trained_pair[kind], synthetic, "test", 17)
        total = result["bias"] + sum(t["value"] for t in result["first_order"]) + sum(p["contribution"] for p in result["pairs"])
        assert total == pytest.approx(result["prediction"], abs=1e-5)
        assert result["prediction"] == pytest.approx(float(predict(trained_pair[kind], synthetic.splits["test"].x[17:18])[0]), abs=1e-5)
        assert len(result["pairs"]) == 28
        x = synthetic.splits["test"].x[17]
        assert [t["feature"] for t in result["first_order"]] == [synthetic.feature_names[i] for i in x]
        contributions = [abs(p["contribution"]) for p in result["pairs"]]
        assert contributions == sorted(contributions, reverse=True)
    fm_pairs = decompose(trained_pair["fm"], synthetic, "test", 17)["pairs"]
    assert all(p["attention"] == 1.0 for p in fm_pairs)


def test_summary_means_match_the_batched_parts(trained_pair, synthetic):
    parts = batch_parts(trained_pair["afm"], synthetic.splits["test"].x, batch_size=333)  # uneven batches
    summary = field_pair_summary(trained_pair["afm"], synthetic, "test")
    pairs = field_pairs(synthetic)
    first = pairs.index((summary.field_a[0], summary.field_b[0]))
    assert summary.mean_attention[0] == pytest.approx(parts["attention"][:, first].mean(), rel=1e-5)
    assert summary.mean_abs_contribution[0] == pytest.approx(np.abs(parts["contribution"][:, first]).mean(), rel=1e-5)
    assert len(parts["prediction"]) == len(synthetic.splits["test"])


def test_row_out_of_range(trained_pair, synthetic):
    with pytest.raises(AFMError, match="rows 0..1999"):
        decompose(trained_pair["afm"], synthetic, "test", 2000)

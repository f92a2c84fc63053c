import numpy as np
import pytest
import torch

from afm.core.errors import AFMError
from afm.explain.parts import (
    ablation_effects,
    batch_parts,
    decompose,
    decompose_ids,
    explain_split,
    pairs_frame,
    side_by_side,
)
from afm.models.inference import predict


def test_decomposition_sums_to_the_prediction_with_names(trained_pair, synthetic):
    for kind in ("fm", "afm"):
        result = decompose(trained_pair[kind], synthetic, "test", 17)
        total = result["bias"] + sum(t["value"] for t in result["first_order"]) + sum(p["contribution"] for p in result["pairs"])
        assert total == pytest.approx(result["prediction"], abs=1e-5)
        assert result["first_order_total"] == pytest.approx(sum(t["value"] for t in result["first_order"]), abs=1e-5)
        assert result["pairs_total"] == pytest.approx(sum(p["contribution"] for p in result["pairs"]), abs=1e-5)
        x = synthetic.splits["test"].x[17:18]
        assert result["prediction"] == pytest.approx(float(predict(trained_pair[kind], x)[0]), abs=1e-5)
        assert len(result["pairs"]) == 28
        assert [t["feature"] for t in result["first_order"]] == [synthetic.feature_names[i] for i in x[0]]
        contributions = [abs(p["contribution"]) for p in result["pairs"]]
        assert contributions == sorted(contributions, reverse=True)
    fm = decompose(trained_pair["fm"], synthetic, "test", 17)
    assert all(p["attention"] == 1.0 for p in fm["pairs"])
    assert fm["faithfulness"]["attention_vs_contribution"] is None  # equal weights rank nothing


def brute_force_without(model, ids, q):
    """Prediction recomputed from the weights with pair q left out (attention renormalised for AFM)."""
    with torch.no_grad():
        x = torch.as_tensor(ids).unsqueeze(0)
        v = model.embedding(x)[0]
        m = v.shape[0]
        pairs = [(i, j) for i in range(m) for j in range(i + 1, m) if (i, j) != q]
        products = torch.stack([v[i] * v[j] for i, j in pairs])
        if model.config.kind == "afm":
            scores = torch.relu(products @ model.attention_W.T + model.attention_b) @ model.attention_h
            weights = torch.softmax(scores, dim=0)
        else:
            weights = torch.ones(len(pairs))
        pair_term = (weights[:, None] * products).sum(0) @ model.p
        return float(model.bias + model.linear(x).sum() + pair_term)


@pytest.mark.parametrize("kind", ["fm", "afm"])
def test_ablation_equals_brute_force_recomputation(trained_pair, synthetic, kind):
    model = trained_pair[kind]
    for row in (0, 5, 99):
        ids = synthetic.splits["test"].x[row]
        result = decompose(model, synthetic, "test", row)
        for pair in result["pairs"][:6]:
            i, j = synthetic.field_names.index(pair["field_a"]), synthetic.field_names.index(pair["field_b"])
            expected = brute_force_without(model, ids, (i, j)) - result["prediction"]
            assert pair["ablation"] == pytest.approx(expected, abs=2e-5)


def test_ablation_when_one_pair_holds_all_the_weight():
    attention = np.array([[1.0, 0.0, 0.0]])
    contribution = np.array([[2.0, 0.0, 0.0]])
    assert ablation_effects(attention, contribution, normalised=True).tolist() == [[-2.0, 0.0, 0.0]]
    assert ablation_effects(attention, contribution, normalised=False).tolist() == [[-2.0, -0.0, -0.0]]


def test_split_explanation_is_batched_exactly(trained_pair, synthetic):
    ex = explain_split(trained_pair["afm"], synthetic, "test", batch_size=333)  # uneven batches
    whole = batch_parts(trained_pair["afm"], synthetic.splits["test"].x[:10])
    for key, value in whole.items():
        np.testing.assert_allclose(ex.parts[key][:10], value, rtol=1e-5, atol=1e-6)
    assert ex.ablation.shape == (2000, 28) and len(ex.faithfulness) == 2000


def test_what_if_instance_by_feature_ids(trained_pair, synthetic):
    ids = synthetic.splits["test"].x[3].copy()
    base = decompose_ids(trained_pair["afm"], synthetic, ids)
    ids[2] = synthetic.field_values("daytime")[(list(synthetic.field_values("daytime")).index(ids[2]) + 1) % 5]
    changed = decompose_ids(trained_pair["afm"], synthetic, ids)
    assert base["label"] is None and changed["prediction"] != base["prediction"]
    table = pairs_frame(changed)
    assert table.pair[0] == f"{changed['pairs'][0]['feature_a']} x {changed['pairs'][0]['feature_b']}"
    with pytest.raises(AFMError, match="needs 8 feature ids"):
        decompose_ids(trained_pair["afm"], synthetic, ids[:3])


def test_row_out_of_range(trained_pair, synthetic):
    with pytest.raises(AFMError, match="rows 0..1999"):
        decompose(trained_pair["afm"], synthetic, "test", 2000)


def test_fm_and_afm_side_by_side(trained_pair, synthetic):
    fm, afm = (decompose(trained_pair[k], synthetic, "test", 4) for k in ("fm", "afm"))
    table = side_by_side(fm, afm)
    assert len(table) == 28 and list(table.columns) == ["pair", "field_a", "field_b", "afm_attention",
                                                        "afm_contribution", "fm_contribution"]
    assert table.fm_contribution.sum() + fm["bias"] + sum(t["value"] for t in fm["first_order"]) == pytest.approx(fm["prediction"], abs=1e-5)
    assert table.afm_contribution.tolist() == [p["contribution"] for p in afm["pairs"]]

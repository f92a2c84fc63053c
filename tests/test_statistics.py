"""Global statistics against slow reference loops over a small sample, one instance at a time."""
import math

import numpy as np
import pytest
import torch

from afm.data.dataset import Split
from afm.explain.parts import explain_split
from afm.explain.statistics import attention_shape, faithfulness_summary, pair_statistics, planted_precision


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(list(a)), ranks(list(b))
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return num / den


@pytest.fixture(scope="module")
def sample(trained_pair, synthetic):
    """The first 60 test rows as their own split, explained in one go and row by row."""
    import copy

    small = copy.copy(synthetic)
    small.splits = dict(synthetic.splits, test=Split(synthetic.splits["test"].x[:60], synthetic.splits["test"].y[:60]))
    model = trained_pair["afm"]
    slow = []
    for ids in small.splits["test"].x:
        parts = model.parts(torch.as_tensor(ids[None]))
        slow.append({k: getattr(parts, k)[0].numpy().astype(np.float64) for k in ("attention", "contribution")})
    return explain_split(model, small, "test"), slow


def test_pair_statistics_match_a_loop(sample):
    ex, slow = sample
    table = pair_statistics(ex).set_index(["field_a", "field_b"])
    labels = ex.labels
    total_abs = sum(np.abs(s["contribution"]).sum() for s in slow)
    for q, label in enumerate(labels):
        a, b = label.split(" x ")
        att = [s["attention"][q] for s in slow]
        con = [abs(s["contribution"][q]) for s in slow]
        row = table.loc[(a, b)]
        assert row.mean_attention == pytest.approx(sum(att) / len(att), rel=1e-5)
        assert row.median_attention == pytest.approx(sorted(att)[29] / 2 + sorted(att)[30] / 2, rel=1e-5)
        assert row.mean_abs_contribution == pytest.approx(sum(con) / len(con), rel=1e-5)
        assert row.contribution_share == pytest.approx(sum(con) / total_abs, rel=1e-5)
        assert row.top_by_attention == pytest.approx(sum(int(np.argmax(s["attention"]) == q) for s in slow) / 60)
        assert row.top_by_contribution == pytest.approx(
            sum(int(np.argmax(np.abs(s["contribution"])) == q) for s in slow) / 60)
    assert list(table.mean_attention) == sorted(table.mean_attention, reverse=True)


def test_attention_shape_matches_a_loop(sample):
    ex, slow = sample
    shape = attention_shape(ex)
    for n, s in enumerate(slow):
        a = s["attention"] / s["attention"].sum()
        entropy = -sum(w * math.log(w) for w in a if w > 0) / math.log(len(a))
        assert shape.normalised_entropy[n] == pytest.approx(entropy, rel=1e-6)
        assert shape.top3_mass[n] == pytest.approx(sum(sorted(a)[-3:]), rel=1e-6)
    assert ((shape.normalised_entropy > 0) & (shape.normalised_entropy <= 1)).all()


def test_faithfulness_matches_a_loop(sample):
    ex, slow = sample
    faith = ex.faithfulness
    for n, s in enumerate(slow[:20]):
        assert faith.attention_vs_contribution[n] == pytest.approx(spearman(s["attention"], np.abs(s["contribution"])), abs=1e-9)
        assert faith.attention_vs_ablation[n] == pytest.approx(spearman(s["attention"], np.abs(ex.ablation[n])), abs=1e-9)
    summary = faithfulness_summary(ex).set_index("measure")
    assert summary.loc["attention_vs_ablation", "mean"] == pytest.approx(faith.attention_vs_ablation.mean())
    assert summary.loc["attention_vs_ablation", "instances"] == 60


def test_planted_pairs_are_recovered_at_precision_one(trained_pair, synthetic):
    table = planted_precision(explain_split(trained_pair["afm"], synthetic, "test")).set_index("ranking")
    assert table.loc["attention", "precision"] == 1.0
    assert table.loc["contribution", "precision"] == 1.0
    assert table.loc["attention", "k"] == 2
    fm_table = planted_precision(explain_split(trained_pair["fm"], synthetic, "test")).set_index("ranking")
    assert np.isnan(fm_table.loc["attention", "precision"])  # equal weights rank nothing


def test_fm_attention_counts_as_uniform(trained_pair, synthetic):
    ex = explain_split(trained_pair["fm"], synthetic, "test")
    shape = attention_shape(ex)
    np.testing.assert_allclose(shape.normalised_entropy, 1.0)
    np.testing.assert_allclose(shape.top3_mass, 3 / 28)
    assert pair_statistics(ex).top_by_attention.isna().all()

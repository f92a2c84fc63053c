"""Interaction answers against what could make them fail: null models (permuted labels), the data-only
baselines, the noise of the estimate, the truth on generated data, and retraining with the named pairs."""
import json
import math
from itertools import combinations

import numpy as np
import pytest
import torch
from torch import nn

from afm.cli import main
from afm.data import load_dataset, make_synthetic
from afm.data.permuted import is_null, permute_labels
from afm.experiments.crosses import crossed, crosses
from afm.explain.agreement import (compare_models, cross_agreement, measure_models, noise_ceiling,
                                   structure_baselines)
from afm.explain.hstatistic import h_statistic
from afm.explain.interactions import by_prediction, changed_both, interactions, references
from afm.explain.parts import field_pairs, row_spearman
from afm.explain.truth import BayesOptimal, truth_strength
from afm.store.checkpoints import load_model
from afm.training.sets import train_set
from afm.training.workflows import fit, load_with_data

QUICK = {"epochs": 8, "embed_dim": 8, "attention_factor": 8}


class TableModel(nn.Module):
    """f(a, b) = table[a, b] over two fields (ids 0..n_a-1 and n_a..n_a+n_b-1): an exact, hand-checkable model."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.table = torch.as_tensor(table, dtype=torch.float32)
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)

    def predict(self, x):
        return self.table[x[:, 0], x[:, 1] - self.table.shape[0]]


def test_null_data_permutes_train_and_validation_labels_and_rebuilds_from_its_source(synthetic):
    null = permute_labels(synthetic, 3)
    for split in ("train", "validation"):
        assert np.array_equal(null.splits[split].x, synthetic.splits[split].x)
        assert sorted(null.splits[split].y) == sorted(synthetic.splits[split].y)
        assert (null.splits[split].y != synthetic.splits[split].y).mean() > 0.3
    assert np.array_equal(null.splits["test"].y, synthetic.splits["test"].y)
    assert is_null(null.source) and not is_null(synthetic.source)
    assert load_dataset(null.source).fingerprint == null.fingerprint != synthetic.fingerprint


def test_a_null_model_is_trained_not_its_initialisation(synthetic):
    trained = fit(permute_labels(synthetic, 0), "fm", {"epochs": 4, "patience": 2})
    assert trained.result.best_epoch >= 1  # epoch 0, the untrained model, is never kept


def test_the_h_statistic_equals_a_hand_computed_value_on_a_two_field_table():
    table = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, -1.0]])
    x = np.array([[a, 2 + b] for a in range(2) for b in range(3)] + [[0, 2], [1, 4]])
    model = TableModel(table)
    pd_a = np.array([table[a, x[:, 1] - 2].mean() for a in x[:, 0]])
    pd_b = np.array([table[x[:, 0], b - 2].mean() for b in x[:, 1]])
    pd_ab = table[x[:, 0], x[:, 1] - 2]
    pd_a, pd_b, pd_ab = pd_a - pd_a.mean(), pd_b - pd_b.mean(), pd_ab - pd_ab.mean()
    expected = ((pd_ab - pd_a - pd_b) ** 2).sum() / (pd_ab ** 2).sum()
    assert h_statistic(model, x, x)[0] == pytest.approx(expected, rel=1e-6)
    assert h_statistic(TableModel(np.add.outer([0.0, 2.0], [1.0, -1.0, 5.0])), x[:6] % [2, 10] + [0, 0], x[:6])[0] \
        == pytest.approx(0.0, abs=1e-9)  # an additive table: no interaction at all


def test_an_additive_model_has_zero_h_and_zero_mixed_differences(synthetic):
    lr = fit(synthetic, "lr", {"epochs": 2}).model
    x = synthetic.splits["test"].x[:64]
    refs = references(synthetic.splits["test"].x, 8)
    assert np.abs(h_statistic(lr, x, refs)).max() < 1e-6
    assert np.abs(by_prediction(lr, x, refs)).max() < 1e-6


def test_the_both_changed_average_rescales_by_the_references_that_change_both_fields(synthetic):
    model = fit(synthetic, "fm", {"epochs": 2}).model
    result = interactions(model, synthetic, sample=100, reference_count=8)
    refs = references(synthetic.splits["test"].x, 8)
    counts = changed_both(synthetic.splits["test"].x[result.rows], refs)
    np.testing.assert_array_equal(result.changed, counts)
    valid = counts > 0
    np.testing.assert_allclose(result.both_changed()[valid], (result.values * 8 / np.maximum(counts, 1))[valid])
    assert np.isnan(result.both_changed()[~valid]).all()


def test_cross_set_agreement_uses_cross_pairs_only(synthetic):
    members = {f"s{i}": fit(synthetic, "fm", {"epochs": 2, "seed": i}).model for i in range(2)}
    values, _ = measure_models(members, synthetic, sample=300, reference_count=4)
    same = cross_agreement(values, values.assign(model=values.model + "'"))
    scores = values[values.measure == "interaction"].pivot_table(index="model", columns=["field_a", "field_b"],
                                                                 values="value", sort=False)
    pairs = [row_spearman(scores.iloc[i].to_numpy()[None], scores.iloc[j].to_numpy()[None])[0]
             for i in range(2) for j in range(2)]
    assert same.set_index("measure").loc["interaction", "mean_spearman"] == pytest.approx(np.mean(pairs))
    identical = cross_agreement(values[values.model == "s0"], values[values.model == "s0"].assign(model="copy"))
    assert identical.set_index("measure").loc["interaction", "mean_spearman"] == pytest.approx(1.0)


def test_structure_baselines_are_value_counts_and_impurities(synthetic):
    baselines = structure_baselines(synthetic).set_index(["field_a", "field_b"])
    x = synthetic.splits["train"].x
    a, b = synthetic.field_names.index("user_group"), synthetic.field_names.index("weather")
    share = lambda f: np.unique(x[:, f], return_counts=True)[1] / len(x)  # noqa: E731
    assert baselines.loc[("user_group", "weather"), "cardinality_product"] == 6 * 5
    expected = (1 - share(a) @ share(a)) * (1 - share(b) @ share(b))
    assert baselines.loc[("user_group", "weather"), "impurity_product"] == pytest.approx(expected)


def test_the_bayes_optimal_strengths_match_a_brute_force_computation():
    data = make_synthetic(seed=5, rows=600)
    x, refs = data.splits["test"].x[:6], references(data.splits["test"].x, 3)
    latent = data.latent

    def truth(row, loss):  # the Bayes-optimal prediction, from the generator's own numbers
        values = row - latent.offsets
        s = sum(w[values[f]] for f, w in enumerate(latent.first_order)) + sum(
            t[values[a], values[b]] for a, b, t in latent.pairs)
        p = 0.5 * (1 + math.erf((s - latent.threshold) / latent.noise / math.sqrt(2)))
        return 2 * p - 1 if loss == "squared" else math.log(max(p, 1e-7) / max(1 - p, 1e-7))

    for loss in ("squared", "logistic"):
        expected = np.zeros((len(x), len(field_pairs(data.field_names))))
        for i, row in enumerate(x):
            for q, (a, b) in enumerate(combinations(range(x.shape[1]), 2)):
                for r in refs:
                    only_a, only_b, both = row.copy(), row.copy(), row.copy()
                    only_a[a], only_b[b], both[[a, b]] = r[a], r[b], r[[a, b]]
                    expected[i, q] += (truth(row, loss) - truth(only_a, loss) - truth(only_b, loss)
                                       + truth(both, loss)) / len(refs)
        np.testing.assert_allclose(by_prediction(BayesOptimal(data, loss), x, refs), expected, atol=1e-4)


def test_the_truth_ranks_the_planted_pairs_first_and_sees_interactions_between_them(synthetic):
    strength = truth_strength(synthetic, "squared", sample=500, reference_count=8)
    pairs = field_pairs(synthetic.field_names)
    top = {pairs[i] for i in np.argsort(-strength)[:2]}
    assert top == {("user_group", "weather"), ("app_category", "daytime")}
    assert strength[pairs.index(("user_group", "app_category"))] > 0.2 * strength.max()  # between planted fields


@pytest.fixture(scope="module")
def holdout(tmp_path_factory):
    """Planted data nobody here tuned to: another seed and other pairs, an AFM set and its null set."""
    data = make_synthetic(seed=11, rows=12000, planted=[("weekday", "network"), ("user_group", "city_size")])
    root = tmp_path_factory.mktemp("holdout")
    train_set(data, "afm", root / "afm", [0, 1, 2], QUICK, log=lambda *_: None)
    train_set(data, "afm", root / "null", [0, 1, 2], QUICK, log=lambda *_: None, null=True)
    return data, root


def test_a_holdout_planted_dataset_comes_out_right(holdout):
    data, root = holdout
    trained = {f"afm/{i}": load_model(root / "afm" / f"seed-{i}").model for i in range(3)}
    nulls = {f"null/{i}": load_model(root / "null" / f"seed-{i}").model for i in range(3)}
    comparison = compare_models(trained, data, sample=1000, reference_count=8, null_models=nulls)
    bands = comparison.bands[comparison.bands.measure == "interaction"].set_index(["field_a", "field_b"])
    for pair in data.planted_pairs:
        assert bands.loc[tuple(pair), "beats_null"], pair  # above the null's 90th percentile in every model
    agreement = comparison.null_agreement.set_index("measure").loc["interaction"]
    assert agreement.null < agreement.trained and agreement.null_vs_trained < agreement.trained
    checked = crosses(trained, data, ks=(2,), seeds=1, sample=1000, reference_count=8, log=lambda *_: None)
    row = next(r for r in checked["summary"] if r["check"] == "cross" and r["measure"] == "interaction")
    assert row["gain_logloss"] > row["random_gain_logloss"]  # crossing the top-2 beats 2 random pairs
    assert {tuple(p.split(" x ")) for p in row["pairs"]} == {tuple(p) for p in data.planted_pairs}


def test_a_null_model_does_not_beat_its_own_null(holdout):
    data, root = holdout
    extra = root / "null-more"
    train_set(data, "afm", extra, [3, 4, 5], QUICK, log=lambda *_: None, null=True)
    nulls = {f"null/{i}": load_model(root / "null" / f"seed-{i}").model for i in range(3)}
    more = {f"more/{i}": load_model(extra / f"seed-{i}").model for i in (3, 4, 5)}
    comparison = compare_models(more, data, sample=1000, reference_count=8, null_models=nulls)
    bands = comparison.bands[comparison.bands.measure == "interaction"]
    assert bands.beats_null.mean() < 0.15  # noise against noise: hardly a pair above the null in every model


def test_the_noise_ceiling_is_one_model_against_itself_over_fresh_draws(synthetic):
    model = fit(synthetic, "fm", {"epochs": 2}).model
    ceiling = noise_ceiling(model, synthetic, sample=300, reference_count=4, draws=3).set_index("measure")
    assert 0.5 < ceiling.loc["interaction", "mean_spearman"] <= 1.0
    assert ceiling.loc["contribution", "mean_spearman"] <= 1.0
    assert all(isinstance(pairs, list) for pairs in ceiling.robust_over_draws)


def test_interactions_json_carries_the_null_the_baselines_and_the_noise_ceiling(holdout, capsys):
    data, root = holdout
    code = main(["interactions", str(root / "afm"), "--null", str(root / "null"), "--sample", "300",
                 "--references", "4", "--noise-draws", "2", "--reference-seed", "7", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert all("beats_null" in row for row in out["bands"]) and any(row["beats_null"] for row in out["bands"])
    for key in ("null_agreement", "structure_spearman", "noise_ceiling"):
        assert set(out[key]) >= {"interaction", "contribution"}, key
    assert set(out["null_agreement"]["interaction"]) == {"trained", "null", "null_vs_trained"}
    assert {row["measure"] for row in out["truth"]} >= {"interaction"}  # generated data: the truth beside


def test_crosses_json_rows_and_the_crossed_fields(holdout, capsys):
    data, root = holdout
    wide = crossed(data, [("weekday", "network")], min_count=5)
    assert wide.field_names[-1] == "weekday x network" and wide.num_fields == data.num_fields + 1
    combos = data.splits["train"].x[:, [3, 6]]
    assert len(np.unique(wide.splits["train"].x[:, -1])) == len(np.unique(combos, axis=0))  # 21, all frequent
    code = main(["crosses", str(root / "afm"), "--k", "1", "--seeds", "1", "--sample", "300", "--epochs", "2",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)
    keys = {"measure", "k", "gain_logloss", "gain_auc", "random_gain_logloss", "random_gain_auc", "seeds"}
    assert all(keys <= set(row) for row in rows)
    assert {row["measure"] for row in rows} >= {"interaction", "structure"}


def test_train_permute_labels_records_a_null_model(tmp_path, capsys):
    assert main(["train", "--model", "fm", "--epochs", "2", "--permute-labels", "--out", str(tmp_path / "m"),
                 "--quiet"]) == 0
    assert "null: labels permuted" in capsys.readouterr().out
    loaded, data = load_with_data(tmp_path / "m")
    assert is_null(loaded.meta["data"]["source"]) and is_null(data.source)
    assert main(["train", "--model", "fm", "--epochs", "1", "--seeds", "2", "--permute-labels", "--out",
                 str(tmp_path / "set"), "--quiet"]) == 0
    assert json.loads((tmp_path / "set" / "set.json").read_text())["null"] is True

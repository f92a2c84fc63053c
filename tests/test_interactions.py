"""Function-level interaction strength and model sets, on real computations."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from afm.cli import main
from afm.data import make_synthetic
from afm.explain.agreement import compare_models, kendall_w
from afm.explain.interactions import (
    by_prediction,
    interactions,
    mixed_differences,
    pair_strength,
    pair_term_view,
    references,
    value_pair_strength,
    view_correlations,
)
from afm.models import ModelConfig, build_model
from afm.store.modelsets import load_models
from afm.training.sets import train_set
from afm.training.workflows import fit


@pytest.fixture(scope="module")
def small():
    return make_synthetic(seed=0, rows=600)


def random_model(data, kind, **kw):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind, data.num_features, data.num_fields, embed_dim=8, attention_factor=4, **kw))
    with torch.no_grad():
        model.embedding.weight.normal_(0, 0.5)
        model.linear.weight.normal_(0, 0.3)
        if kind == "afm":
            model.p.normal_(1, 0.5)
            if model.config.attention:
                model.attention_h.mul_(3)
    return model.eval()


def test_fm_matches_its_closed_form(small):
    model = random_model(small, "fm")
    x, refs = small.splits["test"].x, references(small.splits["test"].x, 5)
    v = model.embedding.weight.detach().double().numpy()
    rows, cols = np.triu_indices(small.num_fields, k=1)
    expected = np.mean([((v[x[:, rows]] - v[r[rows]]) * (v[x[:, cols]] - v[r[cols]])).sum(-1) for r in refs], axis=0)
    np.testing.assert_allclose(mixed_differences(model, x, refs), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind, options", [("fm", {}), ("afm", {}), ("afm", {"attention": False}),
                                           ("afm", {"learn_p": False})])
def test_the_fast_path_is_the_function_evaluated_row_by_row(small, kind, options):
    model = random_model(small, kind, **options)
    x, refs = small.splits["test"].x, references(small.splits["test"].x, 4)
    fast, slow = mixed_differences(model, x, refs), by_prediction(model, x, refs)
    assert np.abs(slow).max() > 0.05  # there are interactions to measure
    np.testing.assert_allclose(fast, slow, atol=2e-5 * max(1.0, np.abs(slow).max()))


class OneInteraction(nn.Module):
    """A model of our own making, no FM: additive in every field, plus one table over fields 1 and 4."""

    def __init__(self, data):
        super().__init__()
        generator = torch.Generator().manual_seed(1)
        self.additive = torch.randn(data.num_features, generator=generator)
        self.table = torch.randn(data.num_features, data.num_features, generator=generator)
        self.dummy = nn.Parameter(torch.zeros(1))  # predict() asks the model for its device

    def predict(self, x):
        return self.additive[x].sum(1) + self.table[x[:, 1], x[:, 4]]


def test_a_hand_built_model_has_its_one_interaction_and_no_other(small):
    model = OneInteraction(small)
    x, refs = small.splits["test"].x, references(small.splits["test"].x, 6)
    measured = mixed_differences(model, x, refs)
    q = [(i, j) for i in range(small.num_fields) for j in range(i + 1, small.num_fields)].index((1, 4))
    others = np.delete(measured, q, axis=1)
    assert np.abs(others).max() < 1e-5  # additive parts cancel exactly
    table = model.table.double().numpy()
    expected = np.mean([table[x[:, 1], x[:, 4]] - table[r[1], x[:, 4]] - table[x[:, 1], r[4]] + table[r[1], r[4]]
                        for r in refs], axis=0)
    np.testing.assert_allclose(measured[:, q], expected, rtol=1e-5, atol=1e-5)


def test_an_additive_model_has_no_interaction(small):
    model = random_model(small, "fm")
    with torch.no_grad():
        model.embedding.weight.zero_()  # only bias and first-order terms remain
    assert np.abs(mixed_differences(model, small.splits["test"].x, references(small.splits["test"].x, 4))).max() == 0


def test_pair_and_value_pair_tables(small):
    model = random_model(small, "afm")
    result = interactions(model, small, "test", sample=100, reference_count=4)
    strength = pair_strength(result)
    assert len(strength) == small.num_pairs and strength.share.sum() == pytest.approx(1.0)
    assert strength.mean_abs_interaction.is_monotonic_decreasing
    table = value_pair_strength(result, "daytime", "app_category", limit=3)
    assert table.shape == (3, 3) and table.index[0].startswith("daytime=")


def test_kendall_w_is_one_for_identical_rankings_and_low_for_reversed():
    scores = np.array([[1, 2, 3, 4.0], [10, 20, 30, 40], [0.1, 0.2, 0.3, 0.4]])
    assert kendall_w(scores) == pytest.approx(1.0)
    assert kendall_w(np.array([[1, 2, 3, 4.0], [4, 3, 2, 1]])) == pytest.approx(0.0)


def test_planted_pairs_lead_by_function_level_strength_in_every_afm_of_a_set():
    data = make_synthetic(seed=0, rows=6000)
    models = {f"afm-{seed}": fit(data, "afm", {"seed": seed, "epochs": 15}).model for seed in range(5)}
    models["fm-0"] = fit(data, "fm", {"epochs": 15}).model
    comparison = compare_models(models, data, "test", sample=600, reference_count=8, top_k=2)
    planted = {frozenset(p) for p in data.planted_pairs}
    values = comparison.values[comparison.values.measure == "interaction"]
    for name in models:
        top = values[values.model == name].nsmallest(2, "rank")
        found = {frozenset(p) for p in zip(top.field_a, top.field_b)}
        if name.startswith("afm"):
            assert found == planted, name
    robust = comparison.bands[(comparison.bands.measure == "interaction") & comparison.bands.robust]
    assert {frozenset(p) for p in zip(robust.field_a, robust.field_b)} == planted
    assert comparison.agreement.set_index("measure").loc["interaction", "models"] == 6


def test_the_pair_term_view_follows_the_planted_table():
    data = make_synthetic(seed=0, rows=6000)
    model = fit(data, "afm", {"epochs": 15}).model
    result = interactions(model, data, "test", sample=None, reference_count=8)
    view = pair_term_view(model, result, "app_category", "daytime")
    assert set(view) == {"interaction", "function-level", "attention score", "planted"}
    assert view["planted"].shape == view["function-level"].shape == (8, 5)
    assert view_correlations(view)["function-level"] > 0.6


def test_a_set_trains_resumes_and_is_compared_from_the_cli(tmp_path, capsys):
    data = make_synthetic(seed=0, rows=400)
    train_set(data, "fm", tmp_path / "fms", [0, 1], {"epochs": 1}, log=lambda *_: None)
    before = (tmp_path / "fms" / "seed-0" / "model.safetensors").stat().st_mtime_ns
    train_set(data, "fm", tmp_path / "fms", [0, 1, 2], {"epochs": 1}, log=lambda *_: None)  # resumes
    assert (tmp_path / "fms" / "seed-0" / "model.safetensors").stat().st_mtime_ns == before
    assert json.loads((tmp_path / "fms" / "set.json").read_text())["members"] == ["seed-0", "seed-1", "seed-2"]
    train_set(data, "afm", tmp_path / "afms", [0, 1], {"epochs": 1}, tmp_path / "fms", log=lambda *_: None)
    assert sorted(load_models([tmp_path / "afms", tmp_path / "fms" / "seed-2"])) == \
        ["afms/seed-0", "afms/seed-1", "fms/seed-2"]
    code = main(["interactions", str(tmp_path / "afms"), "--sample", "50", "--references", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert {row["measure"] for row in out["agreement"]} == {"attention", "contribution", "ablation", "interaction",
                                                         "interaction_changed"}
    assert len(out["accuracy"]) == 2

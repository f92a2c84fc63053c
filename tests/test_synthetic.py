import numpy as np
import pytest

from afm.core.errors import DataError
from afm.data import make_synthetic


def test_seeded_and_recorded():
    a, b, c = make_synthetic(seed=3), make_synthetic(seed=3), make_synthetic(seed=4)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a.planted_pairs == [("app_category", "daytime"), ("user_group", "weather")]
    assert a.source["seed"] == 3 and a.source["planted"] == [["app_category", "daytime"], ["user_group", "weather"]]


def test_readable_names_balanced_labels_and_field_order():
    ds = make_synthetic(seed=0, rows=5000)
    assert "weather=rainy" in ds.feature_names and "daytime=night" in ds.feature_names
    y = np.concatenate([p.y for p in ds.splits.values()])
    assert abs(y.mean()) < 0.01
    owner = ds.feature_field
    assert (owner[ds.splits["train"].x] == np.arange(ds.num_fields)).all()


def test_only_planted_pairs_carry_interaction_signal():
    """With noise and first-order effects off, the label is a function of the planted pair's values alone."""
    ds = make_synthetic(seed=1, rows=4000, planted=[("weather", "device")], first_order=0.0, noise=0.0)
    x, y = ds.splits["train"].x, ds.splits["train"].y
    w, d = ds.field_names.index("weather"), ds.field_names.index("device")
    for key in set(zip(x[:, w], x[:, d])):
        cell = y[(x[:, w] == key[0]) & (x[:, d] == key[1])]
        assert len(set(cell.tolist())) == 1


def test_custom_planted_pairs_and_bad_ones():
    ds = make_synthetic(planted=[("device", "network")], strength=[2.0])
    assert ds.planted_pairs == [("device", "network")]
    with pytest.raises(DataError, match="must name two different fields"):
        make_synthetic(planted=[("device", "planet")])
    with pytest.raises(DataError, match="rows from 30 to"):
        make_synthetic(rows=5)

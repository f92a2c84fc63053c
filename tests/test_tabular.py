import numpy as np
import pandas as pd
import pytest

from afm.core.errors import DataError
from afm.data.tabular import load_csv


def write_csv(path, frame, **kw):
    frame.to_csv(path, index=False, **kw)
    return path


def frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "city": rng.choice(["Oslo", "Lima", "Köln"], n),
        "age": rng.integers(18, 90, n),
        "device": rng.choice(["phone", "tablet"], n),
        "clicked": rng.choice(["yes", "no"], n),
    })


def test_every_column_but_the_target_becomes_a_field(tmp_path):
    ds = load_csv(write_csv(tmp_path / "d.csv", frame()), "clicked")
    assert ds.field_names == ["city", "age", "device"]
    assert ds.task == "binary" and sorted(np.unique(ds.splits["train"].y)) == [-1, 1]
    assert "no -> -1, yes -> +1" in ds.notes
    assert "city=Köln" in ds.feature_names
    age_values = [n for n in ds.feature_names if n.startswith("age=")]
    assert 5 <= len(age_values) <= 10 and all("," in n for n in age_values)  # quantile bins
    assert sum(len(p) for p in ds.splits.values()) == 200


def test_numeric_target_is_regression_with_its_range(tmp_path):
    f = frame()
    f["clicked"] = np.linspace(0.0, 5.0, len(f))
    ds = load_csv(write_csv(tmp_path / "d.csv", f), "clicked")
    assert ds.task == "regression"
    lo, hi = ds.label_range
    assert 0.0 <= lo < hi <= 5.0


def test_semicolon_separated_latin1_file(tmp_path):
    path = tmp_path / "d.csv"
    write_csv(path, frame(), sep=";", encoding="latin-1")
    ds = load_csv(path, "clicked")
    assert "city=Köln" in ds.feature_names


def test_missing_values_become_their_own_value(tmp_path):
    f = frame()
    f.loc[::7, "city"] = None
    ds = load_csv(write_csv(tmp_path / "d.csv", f), "clicked")
    assert "city=<missing>" in ds.feature_names


@pytest.mark.parametrize("edit, target, problem", [
    (lambda f: f, "label", "no target column 'label'; columns: city, age, device, clicked"),
    (lambda f: f, None, "name the target column"),
    (lambda f: f.head(3), "clicked", "3 data row"),
    (lambda f: f[["city", "clicked"]], "clicked", "1 feature column"),
    (lambda f: f.assign(clicked=[None] + ["yes"] * (len(f) - 1)), "clicked", "row 2: the target 'clicked' is empty"),
    (lambda f: f.assign(clicked=np.r_[np.inf, np.arange(len(f) - 1)]), "clicked", "row 2: target value 'inf'"),
    (lambda f: f.assign(clicked=["a", "b", "c"] * (len(f) // 3) + ["a"] * (len(f) % 3)), "clicked", "must be numeric"),
    (lambda f: f.assign(age=np.r_[np.inf, np.arange(len(f) - 1)]), "clicked", "column 'age': value 'inf' is infinite"),
])
def test_bad_csv_input_gets_a_clear_message(tmp_path, edit, target, problem):
    path = write_csv(tmp_path / "d.csv", edit(frame()))
    with pytest.raises(DataError) as err:
        load_csv(path, target)
    assert problem in str(err.value)


def test_duplicate_headers_and_empty_file(tmp_path):
    (tmp_path / "dup.csv").write_text("a,b,a,y\n1,2,3,1\n")
    with pytest.raises(DataError, match="duplicate column name 'a'"):
        load_csv(tmp_path / "dup.csv", "y")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_csv(tmp_path / "empty.csv", "y")

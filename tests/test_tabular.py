import numpy as np
import pandas as pd
import pytest

from afm.core.errors import DataError
from afm.data.tabular import TableOptions, load_csv


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


def test_integer_values_are_ordered_as_numbers_as_label_encoders_order_them(tmp_path):
    rng = np.random.default_rng(0)
    school = rng.integers(3, 17, 300)
    f = pd.DataFrame({"school": school, "exper": rng.integers(0, 12, 300), "union": rng.integers(0, 2, 300)})
    ds = load_csv(write_csv(tmp_path / "males.csv", f), "union")
    names = [n.split("=")[1] for n in ds.feature_names if n.startswith("school=")]
    assert names == [str(v) for v in sorted(set(school))]  # 3, 4, ..., 16: not '10' < '3'
    # a model recorded before that keeps the text order its ids were trained on
    from afm.data.sources import load_dataset

    old = load_dataset({k: v for k, v in ds.source.items() if k != "value_order"})
    old_names = [n.split("=")[1] for n in old.feature_names if n.startswith("school=")]
    assert old_names == sorted(names) and old_names != names
    assert load_dataset(ds.source).feature_names == ds.feature_names


def test_id_columns_stay_ids_and_each_binned_column_is_said(tmp_path):
    rng = np.random.default_rng(1)
    n = 600
    f = pd.DataFrame({"user": rng.integers(0, 400, n), "x": rng.integers(0, 60, n), "age": rng.integers(18, 90, n),
                      "row": np.arange(n), "y": rng.integers(0, 2, n)})
    path = write_csv(tmp_path / "ids.csv", f)
    ds = load_csv(path, "y", options=TableOptions(drop=("row",)))
    assert ds.field_names == ["user", "x", "age"]
    assert sum(n.startswith("user=") for n in ds.feature_names) == f.user.nunique()  # ids by name
    assert f"column 'user': {f.user.nunique()} integer values taken as ids" in ds.notes
    assert sum(n.startswith("x=") for n in ds.feature_names) == 10 and "column 'x': numeric, 60 values cut into 10" in ds.notes
    assert "dropped row" in ds.notes
    kept = load_csv(path, "y", options=TableOptions(categorical=("x",), numeric=("user",), drop=("row",)))
    assert sum(n.startswith("x=") for n in kept.feature_names) == f.x.nunique()  # --categorical keeps every id
    assert sum(n.startswith("user=") for n in kept.feature_names) == 10
    from afm.data.sources import load_dataset

    assert load_dataset(kept.source).feature_names == kept.feature_names  # the choices are recorded
    with pytest.raises(DataError, match="--categorical names no column 'nope'"):
        load_csv(path, "y", options=TableOptions(categorical=("nope",)))
    with pytest.raises(DataError, match="declared numeric, but has the value"):
        load_csv(write_csv(tmp_path / "t.csv", frame()), "clicked", options=TableOptions(numeric=("city",)))


def criteo_rows(n, seed=0):
    """Criteo's raw layout: no header, tab-separated, the label, 13 integer counts, 26 hashed categories,
    many empty."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        cats = [f"{rng.integers(0, 40):08x}" if rng.random() > 0.1 else "" for _ in range(26)]
        ints = [str(rng.integers(0, 500)) if rng.random() > 0.2 else "" for _ in range(13)]
        label = int(int(cats[0] or "0", 16) % 3 == 0)  # a signal a model can learn
        rows.append("\t".join([str(label), *ints, *cats]))
    return "\n".join(rows) + "\n"


def test_a_headerless_tsv_in_criteos_raw_layout_trains(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    path = tmp_path / "day_0.tsv"
    path.write_text(criteo_rows(400))
    with pytest.raises(DataError, match="add --no-header"):
        load_csv(path, "col1")
    ds = load_csv(path, "col1", options=TableOptions(header=False))
    assert ds.num_fields == 39 and ds.field_names[0] == "col2" and ds.task == "binary"
    done = subprocess.run([sys.executable, "-m", "afm", "train", "--data", str(path), "--no-header", "--target", "col1",
                           "--model", "fm", "--epochs", "3", "--quiet", "--out", str(tmp_path / "m")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    named = load_csv(path, "click", options=TableOptions(header=False, sep="\t",
                                                          names=("click", *[f"I{i}" for i in range(1, 14)],
                                                                 *[f"C{i}" for i in range(1, 27)])))
    assert named.field_names[:2] == ["I1", "I2"] and named.num_features == ds.num_features


def test_a_parquet_file_reads_as_the_same_table_in_csv(tmp_path):
    f = frame()
    f.loc[3, "city"] = None
    f.to_parquet(tmp_path / "d.parquet")
    write_csv(tmp_path / "d.csv", f)
    from_parquet, from_csv = load_csv(tmp_path / "d.parquet", "clicked"), load_csv(tmp_path / "d.csv", "clicked")
    assert from_parquet.feature_names == from_csv.feature_names
    assert np.array_equal(from_parquet.splits["train"].x, from_csv.splits["train"].x)

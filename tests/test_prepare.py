"""Click logs prepared once (`afm prepare`): the ids are the values (rare ones folded), every row lands in
exactly one split, an interrupted prepare resumes to the same bytes, and a gzipped and a parquet copy
prepare identically; the prepared directory trains like any data."""
import gzip
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from afm.core.errors import DataError
from afm.data import load_dataset
from afm.data.clicklog import COLUMNS, NUMERIC, write_criteo_like
from afm.data.prepared import MISSING, RARE, PrepareSettings, load_prepared, prepare, read_meta, row_splits

SETTINGS = PrepareSettings("label", tuple(COLUMNS), sep="\t", numeric=NUMERIC, min_count=3, batch_rows=1500)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    return write_criteo_like(tmp_path_factory.mktemp("log") / "day_0", 6000, seed=4)


def files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_the_ids_are_the_values_with_rare_ones_folded_and_every_row_in_one_split(log, tmp_path):
    out = prepare([log], tmp_path / "p", SETTINGS, log=lambda line: None)
    meta = read_meta(out)
    raw = pd.read_csv(log, sep="\t", header=None, names=COLUMNS, dtype=str, keep_default_na=False)
    rows = np.concatenate([np.load(out / f"{s}.rows.npy") for s in ("train", "validation", "test")])
    assert sorted(rows.tolist()) == list(range(len(raw)))  # each row once
    x = np.concatenate([np.load(out / f"{s}.x.npy") for s in ("train", "validation", "test")])
    vocab = json.loads((out / "vocab.json").read_text())
    train_rows = np.load(out / "train.rows.npy")
    for f, field in enumerate(meta["fields"]):
        values = raw[field].to_numpy()[rows]
        if field in NUMERIC:  # log-square buckets: floor(ln(v)^2) above 2, the value itself below
            number = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
            expected = np.where(number > 2, np.floor(np.log(np.maximum(number, 1)) ** 2), number)
            values = np.array(["" if math.isnan(v) else str(int(v)) for v in expected], dtype=object)
        tokens = np.array([vocab[field][i] for i in x[:, f]], dtype=object)
        counts = pd.Series(raw[field].to_numpy()[train_rows] if field not in NUMERIC else
                           values[np.isin(rows, train_rows)]).value_counts()
        kept = tokens != RARE
        assert (tokens[values == ""] == MISSING).all() and (values[tokens == MISSING] == "").all()
        assert (tokens[kept & (values != "")] == values[kept & (values != "")]).all()  # the id is the value
        folded = values[~kept]
        assert all(counts.get(v, 0) < 3 for v in folded)  # only values rare in train are folded
    assert meta["folded_into_rare"] and sum(meta["folded_into_rare"].values()) > 0
    np.testing.assert_array_equal(row_splits(5, 10, 0), row_splits(0, 15, 0)[5:])  # a row's own, whatever the batch
    shares = np.bincount(row_splits(0, 100_000, 3), minlength=3) / 100_000
    np.testing.assert_allclose(shares, [0.7, 0.2, 0.1], atol=0.01)
    assert (row_splits(0, 1000, 3) != row_splits(0, 1000, 4)).any()
    assert set(np.load(out / "train.y.npy").tolist()) == {-1.0, 1.0}
    assert [s["sha256"] for s in meta["sources"]] == [__import__("hashlib").sha256(log.read_bytes()).hexdigest()]


def test_an_interrupted_prepare_resumes_to_the_same_bytes(log, tmp_path):
    whole = prepare([log], tmp_path / "whole", SETTINGS, log=lambda line: None)
    shutil.copytree(whole, tmp_path / "part")  # an older finished dataset in the folder: not readable midway
    part = prepare([log], tmp_path / "part", PrepareSettings(**{**SETTINGS.__dict__, "seed": 1}),
                   log=lambda line: None, stop_after_batches=2)
    assert (part / "progress.json").exists() and not (part / "dataset.json").exists()
    part = prepare([log], tmp_path / "part", SETTINGS, log=lambda line: None, stop_after_batches=2)
    assert (part / "progress.json").exists() and not (part / "dataset.json").exists()
    with pytest.raises(DataError, match="not a finished prepared dataset"):
        load_prepared(part)
    said = []
    prepare([log], part, SETTINGS, log=said.append)
    assert said[0] == "resuming at row 3,000" and files(part) == files(whole)


def test_a_gzipped_and_a_parquet_copy_prepare_identically(log, tmp_path):
    plain = prepare([log], tmp_path / "plain", SETTINGS, log=lambda line: None)
    gz = tmp_path / "day_0.gz"
    with open(log, "rb") as source, gzip.open(gz, "wb") as target:
        shutil.copyfileobj(source, target)
    table = pd.read_csv(log, sep="\t", header=None, names=COLUMNS, dtype=str, keep_default_na=False)
    table.replace("", None).to_parquet(tmp_path / "day_0.parquet", index=False)
    for copy, settings in ((gz, SETTINGS), (tmp_path / "day_0.parquet", PrepareSettings(
            "label", numeric=NUMERIC, min_count=3, batch_rows=999))):  # parquet names its columns; other batches
        out = prepare([copy], tmp_path / copy.suffix[1:], settings, log=lambda line: None)
        ours = {k: v for k, v in files(out).items() if k != "dataset.json"}
        assert ours == {k: v for k, v in files(plain).items() if k != "dataset.json"}, copy.name


def test_a_prepared_directory_trains_and_bad_input_is_one_line(log, tmp_path):
    out = prepare([log], tmp_path / "p", SETTINGS, log=lambda line: None)
    data = load_dataset(str(out))
    assert data.num_fields == 39 and data.task == "binary" and data.source["kind"] == "prepared"
    assert load_dataset(data.source).fingerprint == data.fingerprint  # a checkpoint's record finds it again
    run = lambda *a: subprocess.run([sys.executable, "-m", "afm", *a], cwd=ROOT, capture_output=True, text=True,
                                    timeout=300)
    trained = run("train", "--data", str(out), "--model", "fm", "--epochs", "1", "--quiet", "--out",
                  str(tmp_path / "fm"))
    assert trained.returncode == 0, trained.stderr
    assert json.loads((tmp_path / "fm" / "model.json").read_text())["model"]["loss"] == "logistic"
    bad = run("prepare", str(log), "--target", "clicked", "--names", ",".join(COLUMNS), "--sep", "\t", "--out",
              str(tmp_path / "x"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no column 'clicked'" in bad.stderr


def test_the_train_page_takes_a_prepared_directory(log, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AFM_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr("afm.data.dataset.PAGE_SAMPLE_ROWS", 1000)  # this log is small: the pages sample it smaller
    out = prepare([log], tmp_path / "p", SETTINGS, log=lambda line: None)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    app.switch_page("app_pages/1_Train.py").run()
    app.radio(key="train_data").set_value("a prepared click log").run()
    app.text_input(key="train_prepared").set_value(str(tmp_path)).run()  # not a prepared directory: said
    assert not app.exception and any("not a readable prepared dataset" in e.value for e in app.error)
    app.text_input(key="train_prepared").set_value(str(out)).run()
    assert not app.exception and any("39 fields" in c.value for c in app.caption)
    app.radio(key="train_kind").set_value("fm").run()
    app.number_input(key="hp_p_fm_epochs").set_value(1).run()
    app.button(key="start_training").click().run()
    state = app.session_state["job"].wait(120)
    assert state.status == "finished", state.message
    meta = json.loads(next((tmp_path / "models").rglob("model.json")).read_text())
    assert meta["data"]["rows"] == {s: len(p) for s, p in load_prepared(out).splits.items()}  # trained on all rows
    app.run()  # the finished job's model becomes this session's
    app.button(key="select_trained").click().run()
    for page in ("app_pages/2_Instance_explorer.py", "app_pages/6_Which_interactions_matter.py"):
        app.switch_page(page).run()
        assert not app.exception, page
        note = [c.value for c in app.caption if "A seeded sample" in c.value]
        assert note and "train 1,000 of 4," in note[0], page

"""A prepared click log stays on disk: its ids are read a few rows at a time (MappedIds), training reads
shuffled chunks (each torchrun rank its own), and the pages explain a seeded sample whose size they say."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from afm.data.clicklog import COLUMNS, NUMERIC, write_criteo_like
from afm.data.dataset import Dataset, Split, for_pages, sample_note
from afm.data.prepared import PrepareSettings, load_prepared, prepare
from afm.training.batches import ShuffledChunks
from afm.training.workflows import fit

SETTINGS = PrepareSettings("label", tuple(COLUMNS), sep="\t", numeric=NUMERIC, min_count=2, batch_rows=4000)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    log = write_criteo_like(folder / "day_0", 12_000, seed=7)
    return prepare([log], folder / "p", SETTINGS, log=lambda line: None)


def in_memory(data: Dataset) -> Dataset:
    """The same ids and labels, held whole (what the rows would be without the memory map)."""
    splits = {name: Split(np.asarray(part.x), np.array(part.y)) for name, part in data.splits.items()}
    return Dataset(data.name, data.field_names, data.feature_names, splits, data.source, task=data.task)


def test_mapped_ids_read_what_the_file_holds(prepared):
    data = load_prepared(prepared)
    x = data.splits["validation"].x
    assert data.streamed and x.shape[1] == 39
    whole = np.load(prepared / "validation.x.npy").astype(np.int64) + x.offsets
    rows = np.array([17, 3, 3, len(x) - 1, 0])
    np.testing.assert_array_equal(x[rows], whole[rows])  # any order, repeats
    np.testing.assert_array_equal(x[5:905], whole[5:905])
    np.testing.assert_array_equal(x[12], whole[12])
    np.testing.assert_array_equal(x[:, 30], whole[:, 30])
    assert x[rows].dtype == np.int64
    assert (whole < data.num_features).all() and (data.feature_field[whole] == np.arange(39)).all()


def test_a_streamed_epoch_shards_and_covers_the_rows(prepared):
    split = load_prepared(prepared).splits["train"]
    seen = []
    steps_of = []
    for rank in range(2):
        source = ShuffledChunks(split, 64, torch.Generator().manual_seed(3), "cpu", logistic=False, seed=3)
        steps, batches = source.epoch(rank, 2)
        rows = [x for x, _, _ in batches]
        assert len(rows) == steps and all(len(r) <= 32 for r in rows)  # half the global batch each
        seen.append({tuple(r) for block in rows for r in block.tolist()})
        steps_of.append(steps)
    assert steps_of[0] == steps_of[1]  # every rank steps together
    everything = {tuple(r) for r in np.asarray(split.x).tolist()}
    assert len(seen[0] & seen[1]) < 0.01 * len(everything)  # each its own chunks (equal rows aside)
    assert len(seen[0] | seen[1]) > 0.95 * len(everything)  # an epoch reads (almost) every row


def test_streamed_training_learns_as_in_memory_training_does(prepared):
    data = load_prepared(prepared)
    settings = {"epochs": 3, "batch_size": 256, "embed_dim": 8, "optimizer": "adagrad", "lr": 0.05}
    streamed = fit(data, "fm", settings)
    whole = fit(in_memory(data), "fm", settings)
    first = streamed.result.history[0]["validation_auc"]
    best = streamed.result.best_row["validation_auc"]
    assert best > first + 0.05  # it learned
    assert abs(best - whole.result.best_row["validation_auc"]) < 0.02


def test_pages_explain_a_seeded_sample_and_say_so(prepared):
    data = load_prepared(prepared)
    shown = for_pages(data, rows=500, seed=0)
    assert not shown.streamed and [len(p) for p in shown.splits.values()] == [500, 500, 500]
    assert shown.fingerprint == data.fingerprint and shown.num_features == data.num_features
    again = for_pages(data, rows=500, seed=0)
    np.testing.assert_array_equal(shown.splits["test"].x, again.splits["test"].x)  # seeded
    other = for_pages(data, rows=500, seed=1)
    assert not np.array_equal(shown.splits["test"].x, other.splits["test"].x)
    rows = [tuple(r) for r in np.asarray(data.splits["test"].x).tolist()]
    assert all(tuple(r) in set(rows) for r in shown.splits["test"].x.tolist())  # rows of the split
    assert "500 of" in sample_note(shown) and sample_note(data) is None
    small = for_pages(in_memory(data), rows=500)
    assert len(small.splits["train"]) == len(data.splits["train"])  # data in memory is shown whole


def test_quantile_buckets_are_equally_filled_and_recorded(prepared, tmp_path):
    log = prepared.parent / "day_0"
    out = prepare([log], tmp_path / "q", PrepareSettings(**{**SETTINGS.__dict__, "buckets": "quantile",
                                                              "quantiles": 8}), log=lambda line: None)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["numeric_buckets"]["method"] == "quantile" and len(meta["numeric_buckets"]["edges"]["I5"]) >= 4
    ids = np.load(out / "train.x.npy")[:, meta["fields"].index("I5")]
    shares = np.bincount(ids[ids >= 2]) [2:] / (ids >= 2).sum()
    assert shares.max() < 0.35  # no bucket holds most rows (log-square would put half in a few)


def test_two_torchrun_ranks_train_on_a_prepared_dataset(prepared, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "afm",
               "train", "--data", str(prepared), "--model", "fm", "--epochs", "2", "--quiet", "--out",
               str(tmp_path / "ddp")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((tmp_path / "ddp" / "model.json").read_text())
    assert meta["metrics"]["validation"]["auc"] > meta["history"][0]["validation_auc"] + 0.03
    assert done.stdout.count("saved ") == 1


def test_a_field_alone_is_scored_a_block_at_a_time_as_on_whole_rows(prepared):
    from afm.core.metrics import weighted_auc
    from afm.data import load_dataset
    from afm.explain.leaks import SMOOTHING, field_alone

    data = load_dataset("wide")
    train, held = data.splits["train"], data.splits["validation"]
    for f in (0, 7):  # each value scored by its smoothed mean train label, as the whole rows give it
        counts = np.bincount(train.x[:, f], minlength=data.num_features)
        sums = np.bincount(train.x[:, f], weights=(train.y > 0).astype(float), minlength=data.num_features)
        means = (sums + SMOOTHING * (train.y > 0).mean()) / (counts + SMOOTHING)
        direct = weighted_auc(means[held.x[:, f]], held.y > 0)
        assert field_alone(data, block=97).auc_alone[f] == pytest.approx(direct, abs=1e-12)
    streamed = load_prepared(prepared)
    np.testing.assert_allclose(field_alone(streamed).auc_alone, field_alone(in_memory(streamed), block=1000).auc_alone,
                               atol=1e-12)


def test_prepare_names_row_identifiers_and_leaks_and_drops_them(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    clicked = rng.integers(0, 2, n)
    import pandas as pd

    pd.DataFrame({"row_id": np.arange(n), "ad": rng.integers(0, 20, n), "site": rng.integers(0, 5, n),
                  "ticket": rng.permutation(n), "outcome": np.where(clicked == 1, "yes", "no"),
                  "clicked": clicked}).to_csv(tmp_path / "log.csv", index=False)
    run = lambda *a: subprocess.run([sys.executable, "-m", "afm", "prepare", str(tmp_path / "log.csv"), "--target",  # noqa: E731
                                     "clicked", *a], cwd=ROOT, capture_output=True, text=True, timeout=300)
    said = run("--out", str(tmp_path / "p")).stdout
    assert "row_id looks like a row identifier (named like a row index)" in said
    assert "ticket looks like a row identifier" in said and "ad looks like" not in said
    assert "Likely leak: outcome alone predicts the label with validation AUC 1.000" in said
    said = run("--out", str(tmp_path / "q"), "--drop", "row_id,ticket,outcome").stdout
    assert "warning" not in said and json.loads((tmp_path / "q" / "dataset.json").read_text())["fields"] == ["ad", "site"]
    bad = run("--out", str(tmp_path / "r"), "--drop", "nope")
    assert bad.returncode == 2 and "--drop nope: no such column" in bad.stderr

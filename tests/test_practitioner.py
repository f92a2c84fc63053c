"""A practitioner's run cannot end untrained in silence, its evaluation costs a fraction of training, and
the model is on disk before any statistic computed after training."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from afm.data import make_synthetic
from afm.explain.parts import explain_split
from afm.explain.statistics import attention_spread, streamed_attention_spread
from afm.models.inference import evaluate
from afm.store.checkpoints import load_model, read_meta
from afm.training import loop, workflows
from afm.training.workflows import fit, save_trained


def run(*args):
    return subprocess.run([sys.executable, "-m", "afm", *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ), timeout=600)


@pytest.fixture(scope="module")
def small():
    return make_synthetic(seed=0, rows=1500)


def test_a_run_that_never_beats_its_initialisation_says_so_and_exits_3(tmp_path):
    # labels that no column predicts, and a learning rate that overfits them at once: every epoch is worse
    # on validation than the initialisation (seeded, so the same on every run)
    rng = np.random.default_rng(0)
    rows = ["user,item,hour,click"] + [f"u{rng.integers(300)},i{rng.integers(300)},{rng.integers(24)},"
                                       f"{rng.integers(2)}" for _ in range(600)]
    (tmp_path / "noise.csv").write_text("\n".join(rows) + "\n")
    done = run("train", "--data", str(tmp_path / "noise.csv"), "--target", "click", "--model", "fm", "--epochs", "2",
               "--lr", "0.2", "--optimizer", "adam", "--quiet", "--out", str(tmp_path / "fm"))
    assert done.returncode == 3, done.stderr
    assert "training never beat the untrained model" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert read_meta(tmp_path / "fm")["untrained"] is True
    trained = run("train", "--model", "fm", "--epochs", "2", "--quiet", "--out", str(tmp_path / "ok"))
    assert trained.returncode == 0 and read_meta(tmp_path / "ok")["untrained"] is False
    assert "time: steps" in trained.stdout and "evaluation" in trained.stdout


def test_train_metrics_each_epoch_are_measured_on_a_fixed_sample(monkeypatch):
    data = make_synthetic(seed=0, rows=4000)
    monkeypatch.setattr(loop, "TRAIN_METRIC_ROWS", 500)  # a small cap, so this data is larger than it
    trained = fit(data, "fm", {"epochs": 2})
    rows = loop.train_sample(len(data.splits["train"]))
    assert len(rows) == 500 and trained.result.extra["train_metrics_rows"] == 500
    last = trained.result.history[-1]
    if trained.result.best_epoch == 2:  # the model holds the last epoch: its train RMSE is the sample's
        assert last["train_rmse"] == pytest.approx(evaluate(trained.model, data, "train", rows)["rmse"], rel=1e-6)
    assert last["validation_rmse"] == pytest.approx(trained.result.history[-1]["validation_rmse"])
    assert np.array_equal(rows, loop.train_sample(len(data.splits["train"])))  # the same rows every epoch and run
    assert all(row["evaluation_seconds"] >= 0 for row in trained.result.history)


def test_the_streamed_attention_spread_is_the_whole_split_spread(small):
    model = fit(small, "afm", {"epochs": 2}).model
    whole = attention_spread(explain_split(model, small, "validation"))
    streamed = streamed_attention_spread(model, small.splits["validation"].x, batch_size=97)
    assert streamed.keys() == whole.keys()
    for key, value in whole.items():
        assert streamed[key] == pytest.approx(value, rel=1e-9), key


def test_the_model_is_written_before_the_statistics_after_training(small, tmp_path, monkeypatch):
    trained = fit(small, "afm", {"epochs": 1})

    def out_of_memory(*args, **kwargs):
        raise MemoryError("the spread of a huge split")

    monkeypatch.setattr(workflows, "streamed_attention_spread", out_of_memory)
    with pytest.raises(MemoryError):
        save_trained(trained, small, tmp_path / "afm")
    loaded = load_model(tmp_path / "afm")  # the trained model survived the statistic that failed
    x = small.splits["test"].x[:50]
    assert np.allclose(loaded.model.predict(__import__("torch").as_tensor(x)).detach().numpy(),
                       trained.model.predict(__import__("torch").as_tensor(x)).detach().numpy())
    monkeypatch.undo()
    saved = save_trained(trained, small, tmp_path / "afm2")
    assert "attention_spread" in json.loads((saved.path / "model.json").read_text())

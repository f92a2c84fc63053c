"""The command line end to end: real processes on small data, and one-line errors for bad input."""
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from afm.cli import main


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "afm", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    fm = run("train", "--model", "fm", "--out", str(out / "fm"), "--epochs", "6", "--quiet")
    assert fm.returncode == 0, fm.stderr
    afm = run("train", "--model", "afm", "--out", str(out / "afm"), "--pretrain", str(out / "fm"),
              "--epochs", "6", "--quiet")
    assert afm.returncode == 0, afm.stderr
    return out, fm, afm


def test_train_reports_and_saves(models):
    out, fm, afm = models
    assert "saved" in fm.stdout and "FM best epoch" in fm.stdout
    assert "AFM best epoch" in afm.stdout
    meta = json.loads((out / "afm" / "model.json").read_text())
    assert meta["pretrained_from"] == str(out / "fm")
    assert meta["data"]["source"]["kind"] == "synthetic"
    assert meta["model"]["embed_dim"] == 16 and len(meta["history"]) >= 2


def test_evaluate_json(models):
    out, _, _ = models
    result = run("evaluate", str(out / "afm"), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"rmse", "mae", "auc", "n"} and metrics["n"] == 2000  # binary labels: AUC; squared: no logloss
    saved = json.loads((out / "afm" / "model.json").read_text())["metrics"]["test"]
    assert metrics["rmse"] == pytest.approx(saved["rmse"], abs=1e-9)


def test_explain_pairs_and_one_row(models, capsys):
    out, _, _ = models
    assert main(["explain", str(out / "afm"), "--json"]) == 0
    pairs = json.loads(capsys.readouterr().out)
    assert len(pairs) == 28 and set(pairs[0]) == {"field_a", "field_b", "mean_attention", "mean_abs_contribution"}
    attention = [p["mean_attention"] for p in pairs]
    assert attention == sorted(attention, reverse=True)

    assert main(["explain", str(out / "afm"), "--row", "5", "--json", "--split", "validation"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert {"prediction", "label", "bias", "first_order", "pairs"} <= set(row)
    assert set(row["pairs"][0]) >= {"feature_a", "feature_b", "attention", "interaction", "contribution"}
    total = row["bias"] + sum(t["value"] for t in row["first_order"]) + sum(p["contribution"] for p in row["pairs"])
    assert total == pytest.approx(row["prediction"], abs=1e-5)

    assert main(["explain", str(out / "afm"), "--row", "5"]) == 0
    text = capsys.readouterr().out
    assert "prediction" in text and " x " in text


def test_datasets_lists_sources(tmp_path, capsys):
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "synthetic  available" in text
    assert "frappe     missing" in text and "python -m afm download frappe" in text


@pytest.mark.parametrize("argv, problem", [
    (["train", "--data", "/no/such/file.csv", "--out", "{tmp}/m"], "unknown data source '/no/such/file.csv'"),
    (["train", "--data", "{tmp}/data.csv", "--out", "{tmp}/m"], "name the target column"),
    (["train", "--data", "{tmp}/data.csv", "--target", "nope", "--out", "{tmp}/m"], "no target column 'nope'"),
    (["train", "--model", "fm", "--fixed-p", "--out", "{tmp}/m"], "apply to --model afm"),
    (["train", "--data", "frappe", "--data-dir", "{tmp}", "--out", "{tmp}/m"], "python -m afm download frappe"),
    (["evaluate", "{tmp}/missing-model"], "no such model directory"),
    (["evaluate", "{tmp}"], "not a model directory"),
    (["train", "--model", "svm", "--out", "x"], "invalid choice: 'svm'"),
    (["train", "--epochs", "three", "--out", "x"], "invalid int value"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, problem):
    (tmp_path / "data.csv").write_text("a,b,y\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(40)))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and problem in err, err


def test_bad_learning_rate_diverges_with_a_message(tmp_path):
    result = run("train", "--model", "fm", "--lr", "1e12", "--optimizer", "adagrad", "--epochs", "3",
                 "--out", str(tmp_path / "m"), "--quiet")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: the loss became") and "lower learning rate" in lines[-1]


def test_train_on_a_csv_with_a_target(tmp_path):
    rows = "".join(f"{'abc'[i % 3]},{i % 4},{(i * 7) % 5},{'yes' if (i % 3 == 0) ^ (i % 4 == 1) else 'no'}\n"
                   for i in range(300))
    (tmp_path / "d.csv").write_text("colour,size,shape,bought\n" + rows)
    result = run("train", "--data", str(tmp_path / "d.csv"), "--target", "bought", "--out", str(tmp_path / "m"),
                 "--epochs", "3", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "3 fields" in result.stdout and result.stderr == ""
    explained = run("explain", str(tmp_path / "m"), "--row", "0", "--json")
    assert json.loads(explained.stdout)["first_order"][0]["feature"].startswith("colour=")



def test_changed_data_is_warned_about_in_one_line(tmp_path, capsys):
    make = lambda n: "a,b,y\n" + "".join(f"{i % 3},{i % 5},{int(i % 3 == 0)}\n" for i in range(n))  # y follows a
    (tmp_path / "d.csv").write_text(make(60))
    assert main(["train", "--data", str(tmp_path / "d.csv"), "--target", "y", "--out", str(tmp_path / "m"),
                 "--epochs", "1", "--quiet"]) == 0
    (tmp_path / "d.csv").write_text(make(90))  # same fields and values, more rows
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert err == f"warning: the data differs from what {tmp_path / 'm'} was trained on (fingerprint changed)\n"

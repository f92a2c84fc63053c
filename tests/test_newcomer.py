"""A newcomer and a teacher get the right lesson (issue #32), library side: row ids left out of a table, likely
leaks named, Home's sentence generated from the numbers, readable names, defaults a class can share, jobs
that say how long and stop at once, verdicts in words first."""
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from afm.data import make_synthetic
from afm.data.columns import row_identifier
from afm.data.tabular import TableOptions, load_csv
from afm.explain.compare import bootstrap_comparison, comparison_words, errors_by_segment, paired_errors, value_order
from afm.explain.leaks import leak_sentence, likely_leaks
from afm.explain.lesson import lesson, metric_contrast
from afm.explain.parts import explain_split, field_pairs
from afm.store.checkpoints import load_model
from afm.store.registry import BUILTIN_DIR, ModelEntry, display_names, list_models


def titanic_like(path: Path, rows: int = 600, seed: int = 1) -> Path:
    """A Titanic-shaped export written by pandas with its index (the unnamed first column), sorted by class,
    sex and survival as a public copy was: the index then predicts survival."""
    rng = np.random.default_rng(seed)
    pclass = rng.choice([1, 2, 3], rows, p=[.24, .21, .55])
    sex = rng.choice(["male", "female"], rows, p=[.65, .35])
    age = np.round(rng.uniform(1, 70, rows), 1)
    logit = -0.5 + 2.4 * (sex == "female") - 0.9 * (pclass - 2) - 0.02 * (age - 30)
    frame = pd.DataFrame({"PassengerId": np.arange(1, rows + 1), "Pclass": pclass,
                          "Name": [f"Passenger {i}" for i in range(rows)], "Sex": sex, "Age": age,
                          "Fare": np.round(rng.gamma(2, 15, rows), 4), "Embarked": rng.choice(list("SCQ"), rows),
                          "Survived": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)})
    frame.sort_values(["Pclass", "Sex", "Survived"]).reset_index(drop=True).to_csv(path)
    return path


def test_row_ids_are_left_out_of_a_table_and_said(tmp_path):
    data = load_csv(titanic_like(tmp_path / "titanic.csv"), "Survived")
    assert data.field_names == ["Pclass", "Sex", "Age", "Fare", "Embarked"]
    for name in ("Unnamed: 0", "PassengerId", "Name"):
        assert f"left out {name!r}" in data.notes and f"--keep {name}" in data.notes
    kept = load_csv(tmp_path / "titanic.csv", "Survived", options=TableOptions(keep=("Unnamed: 0",)))
    assert kept.field_names[0] == "Unnamed: 0" and "PassengerId" not in kept.field_names
    # a model recorded before the guard (no "id_guard" in its source) keeps every field it was trained with
    recorded = load_csv(tmp_path / "titanic.csv", "Survived", options=TableOptions.from_record({}))
    assert {"Unnamed: 0", "PassengerId", "Name"} <= set(recorded.field_names)
    assert TableOptions.from_record(TableOptions().record()) == TableOptions()


@pytest.mark.parametrize("name, values, flagged", [
    ("Unnamed: 0", list(range(30)), True), ("index", ["a"] * 30, True),
    ("user_id", [f"u{i}" for i in range(30)], True), ("user_id", [f"u{i % 5}" for i in range(30)], False),
    ("step", [str(3 * i + 7) for i in range(30)], True),  # a counter
    ("ticket", [f"T-{i * 7919 % 1000}" for i in range(30)], True),  # text, every value different
    ("fare", [f"{np.sin(i) * 40 + 50:.4f}" for i in range(30)], False),  # a measurement: binned, not an id
    ("cents", [str((i * 7919) % 30 * 1000 + 17) for i in range(30)], False),  # whole, distinct, not packed: an amount
    ("passenger", [str((i * 7) % 30 + 1) for i in range(30)], True),  # 1..30 shuffled: ids
    ("age", [str(20 + i % 7) for i in range(30)], False), ("n", [str(i) for i in range(5)], False),  # few rows
])
def test_what_counts_as_a_row_id(name, values, flagged):
    assert (row_identifier(pd.Series(values, dtype=object), name) is not None) == flagged


def test_the_cli_leaves_row_ids_out_with_one_line_each(tmp_path):
    csv = titanic_like(tmp_path / "titanic.csv")
    run = subprocess.run([sys.executable, "-m", "afm", "train", "--data", str(csv), "--target", "Survived", "--model",
                          "fm", "--epochs", "1", "--out", str(tmp_path / "m"), "--quiet"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [line for line in (run.stdout + run.stderr).splitlines() if "left out" in line]
    assert len(lines) == 3 and all(line.count("left out") == 1 for line in lines)
    assert load_model(tmp_path / "m").meta["data"]["fields"] == ["Pclass", "Sex", "Age", "Fare", "Embarked"]
    bad = subprocess.run([sys.executable, "-m", "afm", "train", "--data", str(csv), "--target", "Survived",
                          "--keep", "nosuch", "--out", str(tmp_path / "n")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "--keep names no column 'nosuch'" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_a_field_that_alone_predicts_the_label_is_named_a_likely_leak(tmp_path):
    rng = np.random.default_rng(0)
    rows = 2000
    colour, size = rng.choice(list("rgb"), rows), rng.integers(0, 5, rows)
    label = (rng.random(rows) < 0.3 + 0.3 * (colour == "r")).astype(int)
    outcome = np.where(rng.random(rows) < 0.005, 1 - label, label)  # recorded after the fact: a near copy
    path = tmp_path / "leak.csv"
    pd.DataFrame({"colour": colour, "size": size, "refund_status": np.where(outcome == 1, "paid", "open"),
                  "label": label}).to_csv(path, index=False)
    data = load_csv(path, "label")
    table = likely_leaks(data, model_auc=0.999)
    assert table.field[0] == "refund_status" and table.likely_leak[0] and table.auc_alone[0] > 0.99
    assert not table.likely_leak[1:].any()
    assert "refund_status alone predicts the label" in leak_sentence(table, 0.999)
    # a field with nearly all of the model's lift over chance is named too; the same field beside a far better
    # model is not
    colour_auc = table.set_index("field").loc["colour", "auc_alone"]
    assert 0.55 < colour_auc < 0.9
    close = likely_leaks(data, model_auc=0.5 + (colour_auc - 0.5) / 0.97).set_index("field")  # 97% of its lift
    assert close.loc["colour", "share_of_model"] >= 0.95 and close.loc["colour", "likely_leak"]
    far = likely_leaks(data, model_auc=0.5 + 2 * (colour_auc - 0.5)).set_index("field")
    assert far.loc["colour", "share_of_model"] == pytest.approx(0.5) and not far.loc["colour", "likely_leak"]


@pytest.mark.parametrize("source", ["synthetic", "wide"])
def test_the_shipped_data_has_no_likely_leak(source):
    from afm.data import load_dataset

    data = load_dataset(source)
    model = next(e for e in list_models(include_builtin=True) if e.dataset == source and not e.null)
    auc = load_model(model.path).meta["metrics"]["validation"]["auc"]
    assert not likely_leaks(data, auc).likely_leak.any() and leak_sentence(likely_leaks(data, auc), auc) is None


def test_home_says_whether_the_strongest_pairs_are_the_planted_ones():
    afm = load_model(BUILTIN_DIR / "synthetic-afm")
    data = make_synthetic(seed=0)
    sentence = lesson(explain_split(afm.model, data, "test"), "AFM")
    assert sentence.startswith("The two strongest interactions in AFM, app_category x daytime and user_group x "
                               "weather, are exactly the pairs planted in this data; FM weighs all 28 pairs equally")
    share = float(sentence.split("AFM puts ")[1].split("%")[0])
    attention = explain_split(afm.model, data, "test").parts["attention"]
    pairs = field_pairs(data.field_names)
    planted = [pairs.index(("app_category", "daytime")), pairs.index(("user_group", "weather"))]
    assert share == round(100 * attention[:, planted].sum(1).mean())
    # the same model against data whose planted pairs are others: the sentence says it found none of them
    other = make_synthetic(seed=0, planted=[("weekday", "network"), ("device", "city_size")])
    assert "are none of the pairs planted in this data (weekday x network and device x city_size)" in \
        lesson(explain_split(afm.model, other, "test"), "AFM")
    fm = load_model(BUILTIN_DIR / "synthetic-fm")
    assert "gives all 28 pairs the same weight" in lesson(explain_split(fm.model, data, "test"), "FM")


def test_home_contrast_takes_the_metric_both_models_have():
    assert metric_contrast({"rmse": 0.5, "auc": 0.9}, {"rmse": 0.6, "auc": 0.8}, "AFM", "FM") == \
        ("test RMSE", 0.5, 0.6, True)
    assert metric_contrast({"rmse": 0.5, "logloss": 0.3}, {"rmse": 0.6, "logloss": 0.4}, "A", "B")[0] == "test logloss"
    with pytest.raises(ValueError):
        metric_contrast({"rmse": float("nan")}, {"auc": 0.5}, "A", "B")


def entry(name, created, kind="afm", dataset="4febdf52a3812a80-titanic", builtin=False, set_dir=None):
    return ModelEntry(name=name, path=Path(name), builtin=builtin, kind=kind, dataset=dataset, test_rmse=None,
                      created=created, set_dir=set_dir)


def test_names_a_person_can_read():
    entries = [entry("4febdf52a3812a80-titanic-afm-20261203-054406-b3c2d3", "2026-12-03T05:44:06+0000"),
               entry("4febdf52a3812a80-titanic-fm-20261203-054401-aa11bb", "2026-12-03T05:44:01+0000", kind="fm"),
               entry("synthetic-afm", "2026-11-30T20:25:34+0000", dataset="synthetic", builtin=True)]
    labels = display_names(entries)
    assert list(labels.values()) == ["titanic · AFM · 05:44", "titanic · FM · 05:44", "synthetic · AFM · shipped"]
    twins = display_names(entries[:1] + [entry("x", "2026-12-04T05:44:59+0000")])
    assert list(twins.values()) == ["titanic · AFM · 12-03 05:44", "titanic · AFM · 12-04 05:44"]
    same = display_names([entry("a", "2026-12-03T05:44:06+0000"), entry("b", "2026-12-03T05:44:06+0000")])
    assert len(set(same.values())) == 2  # unique even then, by the folder name


def test_the_sidebar_default_is_shipped_or_this_sessions_own():
    import ui

    shipped = [entry("synthetic-fm", "", kind="fm", dataset="synthetic", builtin=True),
               entry("synthetic-afm", "", dataset="synthetic", builtin=True)]
    others = [entry("synthetic-afm-20261207-1", "2026-12-07T10:00:00+0000", dataset="synthetic")]
    here = others + shipped  # another browser session's model is the newest
    assert ui.default_name(here, "afm", own=[], explained=True) == "synthetic-afm"
    assert ui.default_name(here, "fm", own=[], explained=False) == "synthetic-fm"
    mine = entry("synthetic-fm-20261207-2", "2026-12-07T09:00:00+0000", kind="fm", dataset="synthetic")
    assert ui.default_name([mine, *here], "afm", own=[mine.name], explained=True) == mine.name
    assert ui.default_name(others, "afm", own=[], explained=True) is None  # never another session's


def test_progress_says_where_training_is_and_how_long_is_left():
    from afm.training.jobs import JobState, duration, progress_line

    assert [duration(s) for s in (0.43, 44.6, 200, 7500)] == ["0.4 s", "45 s", "3 min 20 s", "2 h 5 min"]
    state = JobState(status="running", epoch=3, batch=50, batches=100, started=1000.0)
    done, line = progress_line(state, 10, now=1250.0)
    assert done == pytest.approx(0.25)
    assert line == "epoch 3 of 10, batch 50 of 100 · 4 min 10 s so far · at most about 12 min 30 s left"
    done, line = progress_line(JobState(status="running", started=1000.0), 10, now=1003.0)
    assert done == 0.0 and line.startswith("starting: ") and "epoch" not in line.split("before")[0]


def test_stop_pressed_before_the_first_batch_acts_there(tmp_path):
    """A Stop pressed while the model is built and measured is seen before any batch runs: the run ends
    at once with the measured start kept (best epoch 0), not after a first epoch."""
    from afm.training.jobs import TrainingJob

    data = make_synthetic(seed=0, rows=20000)
    job = TrainingJob(data, "afm", tmp_path / "m", {"epochs": 500, "patience": 0, "batch_size": 64})
    job.stop()  # before it starts: the check before the first epoch is the one that sees it
    state = job.start().wait(120)
    assert state.status == "finished" and state.batch == 0 and state.halted > 0
    meta = load_model(tmp_path / "m").meta
    assert meta["stop_reason"] == "stopped" and meta["best_epoch"] == 0

    from afm.training.loop import TrainConfig, train
    from afm.training.workflows import make_model

    model = make_model(data, "afm", {})
    steps = []
    model.register_forward_hook(lambda module, args, out: steps.append(1) if module.training else None)
    result = train(model, data, TrainConfig(epochs=5, patience=0), should_stop=lambda: True)
    assert result.stop_reason == "stopped" and result.best_epoch == 0 and steps == []  # not one training step


def test_stop_acts_within_two_seconds(tmp_path):
    """Stop is checked between batches: training leaves its loop at the next one, whatever the epoch count."""
    from afm.training.jobs import TrainingJob

    data = make_synthetic(seed=0, rows=20000)
    job = TrainingJob(data, "afm", tmp_path / "m", {"epochs": 500, "patience": 0, "batch_size": 64}).start()
    deadline = time.time() + 120
    while job.snapshot().epoch < 2 and time.time() < deadline:
        time.sleep(0.05)
    job.stop()
    while not job.snapshot().halted and time.time() < deadline:
        time.sleep(0.01)
    state = job.wait(120)
    assert state.halted - state.stop_requested < 2.0
    assert state.status == "finished" and state.message.startswith("stopped")
    assert load_model(tmp_path / "m").meta["stop_reason"] == "stopped"


def test_a_run_is_timed_before_it_starts():
    from afm.training.workflows import expected_seconds

    per_epoch, epochs = expected_seconds(make_synthetic(seed=0), "afm", {"epochs": 7})
    assert epochs == 7 and 0 < per_epoch < 60 and math.isfinite(per_epoch)


def test_comparisons_and_verdicts_say_words_before_numbers(synthetic, trained_pair):
    table = bootstrap_comparison(paired_errors(trained_pair["fm"], trained_pair["afm"], synthetic, "test"))
    words = comparison_words(table, "AFM", "FM")
    assert words.startswith("On the test split, AFM is ") and " by RMSE" in words
    assert not any(ch.isdigit() for ch in words.split("(")[0].replace("test", ""))
    from afm.experiments.results import committed_results
    from afm.experiments.verdict import verdict_overview, verdict_words

    files = committed_results()
    overview = verdict_overview(files)
    assert set(overview.file) == {n for n, r in files.items() if r.get("kind") == "verdict"}
    for name, results in files.items():
        if results.get("kind") == "verdict":
            text = verdict_words(results)
            assert not any(ch.isdigit() for ch in text.replace("k = ", "")), text
    unfinished = overview.set_index("file").loc["verdict-frappe"]
    assert unfinished.state == "unfinished" and unfinished.verdict.startswith("No verdict yet")


def test_segments_are_in_the_order_of_their_values(synthetic, trained_pair):
    assert value_order(["[40, 80]", "[5, 8]", "<missing>", "[0.42, 14]"]) == ["[0.42, 14]", "[5, 8]", "[40, 80]",
                                                                              "<missing>"]
    segments = errors_by_segment(paired_errors(trained_pair["fm"], trained_pair["afm"], synthetic, "test"), synthetic)
    bins = segments[segments.segment_kind == "rarest feature's train count"].segment.tolist()
    lows = [float(b.split(" to ")[0]) for b in bins]
    assert lows == sorted(lows) and len(lows) > 1


def test_the_default_planted_experiment_is_shipped():
    from afm.data.synthetic import DEFAULT_PLANTED
    from afm.experiments.teaching import shipped_planted

    result = shipped_planted(DEFAULT_PLANTED)
    assert result.precision.set_index("ranking").loc["attention", "precision"] == 1.0
    assert result.afm_rmse < result.fm_rmse and len(result.histories["AFM"]) > 1
    assert shipped_planted(DEFAULT_PLANTED, strength=1.5) is None and shipped_planted(DEFAULT_PLANTED, rows=5000) is None


def test_captions_show_text_as_written_and_a_zero_change_is_neutral():
    import ui

    assert ui.plain("a_ij * p^T(v_i*v_j) [x]") == r"a\_ij \* p^T\(v\_i\*v\_j\) \[x\]"
    assert ui.delta_colour(0.0004, lower_is_better=True) == "off"  # rounds to +0.0%: no green arrow
    assert ui.delta_colour(-0.134, lower_is_better=True) == "inverse"
    assert ui.delta_colour(0.0008, lower_is_better=False, clear=False) == "off"  # its interval includes 0
    assert ui.delta_colour(0.02, lower_is_better=False) == "normal"

"""Reliability, round two: every case found by trying to break the tool, on real files and real runs.
The CLI answers each with exit status 2 and one line on stderr; the registry and the app keep working."""
import json
import shutil
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from test_bad_input import cli

from afm.core.errors import AFMError, CheckpointError, DataError
from afm.core.limits import check_fits
from afm.data import make_synthetic
from afm.data.libfm import load_libfm_dir
from afm.data.tabular import load_csv
from afm.data.textfile import iter_lines
from afm.explain.parts import explain_split
from afm.explain.statistics import attention_spread, describe_spread
from afm.models import ModelConfig, build_model
from afm.store.checkpoints import load_model, save_model
from afm.store.registry import BUILTIN_DIR, scan_models
from afm.training.workflows import fit


def one_line_refusal(code, err, *needles):
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


def copy_model(tmp_path, name="synthetic-afm"):
    target = tmp_path / name
    shutil.copytree(BUILTIN_DIR / name, target)
    return target


def edit_meta(model_dir, change):
    meta = json.loads((model_dir / "model.json").read_text())
    change(meta)
    (model_dir / "model.json").write_text(json.dumps(meta))


# 1. One malformed model directory never breaks the registry or the app
@pytest.mark.parametrize("field, value", [("metrics", "x"), ("model", [1]), ("data", "x"), ("created", 5)])
def test_a_malformed_model_json_is_skipped_and_reported(tmp_path, field, value):
    good, bad = copy_model(tmp_path, "synthetic-fm"), copy_model(tmp_path, "synthetic-afm")
    edit_meta(bad, lambda meta: meta.update({field: value}))
    entries, problems = scan_models(tmp_path, include_builtin=False)
    assert [e.name for e in entries] == [good.name]
    assert len(problems) == 1 and f"'{field}'" in problems[0]


def test_every_page_keeps_working_beside_a_malformed_model(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    bad = copy_model(tmp_path / "models")
    edit_meta(bad, lambda meta: meta.update({"metrics": "x"}))
    monkeypatch.setenv("AFM_MODELS_DIR", str(tmp_path / "models"))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    assert not app.exception and any("could not be read" in w.value for w in app.warning)
    for page in ("1_Train", "2_Instance_explorer", "5_Planted_interactions"):
        app.switch_page(f"app_pages/{page}.py").run()
        assert not app.exception, page


# 2. Sizes are checked before memory is allocated
def test_a_huge_config_is_refused_from_the_weights_header(tmp_path):
    model_dir = copy_model(tmp_path)
    edit_meta(model_dir, lambda meta: (meta["model"].update(num_features=50_000_000),
                                       meta["data"].update(num_features=50_000_000)))
    with pytest.raises(CheckpointError, match=r"has shape \(41, 16\), the config needs \(50000000, 16\)"):
        load_model(model_dir)


def test_a_libfm_id_near_two_billion_is_refused_before_allocating(tmp_path):
    for split in ("train", "validation", "test"):
        (tmp_path / f"big.{split}.libfm").write_text("1 0:1 2147483646:1\n-1 1:1 2147483646:1\n1 0:1 5:1\n")
    with pytest.raises(AFMError, match="GiB"):
        load_libfm_dir(tmp_path)


def test_compressed_input_is_streamed_and_a_bomb_refused(tmp_path):
    import gzip

    path = tmp_path / "bomb.libfm.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"1 0:1 1:1\n" * 200_000)  # 2 MB of text from a few kB
    assert path.stat().st_size < 50_000
    with pytest.raises(DataError, match="expands to more than"):
        for _ in iter_lines(path, max_bytes=1_000_000):
            pass
    assert sum(1 for _ in iter_lines(path, max_bytes=10_000_000)) == 200_000


def test_the_memory_estimate_counts_what_each_model_allocates():
    eight_gib = 8 * 2**30
    wide_fm = ModelConfig("fm", num_features=100_000, num_fields=10_000, embed_dim=16)
    check_fits(wide_fm, batch_size=256, rows=10_000, available=eight_gib)  # FM never builds pair tensors
    wide_afm = ModelConfig("afm", num_features=100_000, num_fields=10_000, embed_dim=16, attention_factor=16)
    with pytest.raises(AFMError, match="GiB is available"):
        check_fits(wide_afm, batch_size=256, rows=10_000, available=eight_gib)
    huge_t = ModelConfig("afm", num_features=50, num_fields=8, embed_dim=1000, attention_factor=1_000_000)
    with pytest.raises(AFMError, match="t=1000000"):  # the t x k attention weights count
        check_fits(huge_t, batch_size=1, rows=100, available=eight_gib)


# 3. What model.json says must agree with the weights and the data
def test_num_fields_that_disagree_with_the_data_are_refused(tmp_path, capsys):
    model_dir = copy_model(tmp_path)
    edit_meta(model_dir, lambda meta: meta["model"].update(num_fields=3))
    for command in ("evaluate", "explain"):
        one_line_refusal(*cli([command, model_dir], capsys), "3 fields")


# 4. Two saves to one new path both keep their model
def test_concurrent_saves_to_one_new_path_keep_every_model(tmp_path):
    data = make_synthetic(seed=0, rows=200)
    models = [build_model(ModelConfig("fm", data.num_features, data.num_fields, embed_dim=4)) for _ in range(6)]
    saved, errors = [], []

    def save(model):
        try:
            saved.append(save_model(model, tmp_path / "same", data=data.describe()))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(saved)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in saved)
    assert all(load_model(p).model.config.embed_dim == 4 for p in saved)


def test_the_cli_refuses_an_out_that_holds_a_model_before_training(tmp_path, capsys):
    model_dir = copy_model(tmp_path)
    before = (model_dir / "model.safetensors").read_bytes()
    one_line_refusal(*cli(["train", "--model", "fm", "--out", model_dir, "--epochs", "1", "--quiet"], capsys),
                     "--overwrite")
    assert (model_dir / "model.safetensors").read_bytes() == before


# 5 and 6. Bad settings and input: exit 2 and one line, before any training
@pytest.mark.parametrize("args, needle", [
    (["--embed-dim", "-3"], "at least 1"), (["--attention-factor", "-2"], "at least 1"),
    (["--dropout", "1.5"], "below 1"), (["--attention-dropout", "-0.1"], "at least 0"),
    (["--model", "fm", "--embed-dim", "0"], "at least 1"), (["--embed-dim", "0"], "at least 1"),
    (["--attention-factor", "0"], "at least 1"), (["--device", "xla"], "--device"),
    (["--l2-attention", "-1"], "at least 0"), (["--l2-attention", "nan"], "finite"),
    (["--patience", "-1"], "at least 0"), (["--model", "fm", "--attention-factor", "8"], "apply to --model afm"),
])
def test_bad_settings_are_refused_in_one_line(tmp_path, capsys, args, needle):
    one_line_refusal(*cli(["train", "--out", tmp_path / "m", "--quiet", *args], capsys), needle)
    assert not (tmp_path / "m").exists()


def test_out_under_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    one_line_refusal(*cli(["train", "--out", tmp_path / "file" / "m", "--quiet"], capsys), "is a file")


def test_download_with_a_mirror_that_is_no_url(tmp_path, capsys):
    one_line_refusal(*cli(["download", "frappe", "--mirror", "notaurl", "--data-dir", tmp_path], capsys),
                     "is not a URL")


def test_a_superscript_digit_in_a_libfm_index(tmp_path, capsys):
    for split in ("train", "validation", "test"):
        shutil.copy(ROOT / "tests/data/bad/superscript_index.libfm.txt", tmp_path / f"s.{split}.libfm")
    one_line_refusal(*cli(["train", "--data", tmp_path, "--out", tmp_path / "m", "--quiet"], capsys),
                     "malformed token")


def test_a_model_json_nested_100000_deep(tmp_path, capsys):
    model_dir = copy_model(tmp_path)
    (model_dir / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    one_line_refusal(*cli(["evaluate", model_dir], capsys), "model.json")


@pytest.mark.parametrize("rows", ["many", 1e12, 10**12, -5])
def test_a_synthetic_source_with_impossible_rows(tmp_path, capsys, rows):
    model_dir = copy_model(tmp_path)
    edit_meta(model_dir, lambda meta: meta["data"]["source"].update(rows=rows))
    one_line_refusal(*cli(["evaluate", model_dir], capsys), "rows")


def test_libfm_lines_must_list_one_feature_per_field_in_order(tmp_path):
    (tmp_path / "d.train.libfm").write_text("1 0:1 3:1\n-1 1:1 4:1\n1 4:1 0:1\n")  # the last line is swapped
    (tmp_path / "d.validation.libfm").write_text("1 0:1 3:1\n")
    (tmp_path / "d.test.libfm").write_text("-1 1:1 4:1\n")
    with pytest.raises(DataError, match="one feature per field, in field order"):
        load_libfm_dir(tmp_path)


def test_test_labels_must_use_train_values(tmp_path):
    (tmp_path / "d.train.libfm").write_text("1 0:1 3:1\n-1 1:1 4:1\n")
    (tmp_path / "d.validation.libfm").write_text("1 0:1 3:1\n")
    (tmp_path / "d.test.libfm").write_text("0 1:1 4:1\n1 0:1 3:1\n")
    with pytest.raises(DataError, match=r"test labels include \[0.0\]"):
        load_libfm_dir(tmp_path)


def test_a_batch_larger_than_the_training_rows_is_capped():
    data = make_synthetic(seed=0, rows=100)
    trained = fit(data, "fm", {"epochs": 1, "batch_size": 100_000})
    assert trained.params["batch_size"] == len(data.splits["train"]) and trained.result.best_epoch == 1


def test_csv_columns_of_denormal_or_huge_numbers_load(tmp_path):
    rng = np.random.default_rng(0)
    order = rng.permutation(300)  # values in no row order: a column that only increases is a counter (row id)
    frame = pd.DataFrame({"tiny": [5e-324 * int(i) for i in order], "huge": [2**63 + 4096 * int(i) for i in order],
                          "b": rng.integers(0, 3, 300), "y": rng.integers(0, 2, 300)})
    frame.to_csv(tmp_path / "odd.csv", index=False)
    data = load_csv(tmp_path / "odd.csv", "y")
    assert data.num_fields == 3 and data.splits["train"].x.max() < data.num_features


# 7. Messages that say what happened
def test_a_loss_that_diverges_in_epoch_1_says_nothing_was_saved(tmp_path, capsys):
    code, err = cli(["train", "--model", "fm", "--out", tmp_path / "m", "--lr", "1e30", "--optimizer", "adagrad",
                     "--epochs", "3", "--quiet"], capsys)
    one_line_refusal(code, err, "epoch 1", "nothing was saved")
    assert not (tmp_path / "m").exists()


def test_a_two_field_afm_describes_its_one_pair_without_nan():
    data = make_synthetic(seed=0, rows=300, fields={"a": ["x", "y", "z"], "b": ["u", "v"]}, planted=[("a", "b")])
    trained = fit(data, "afm", {"epochs": 1})
    line = describe_spread(attention_spread(explain_split(trained.model, data, "validation")), trained.model.config)
    assert "nan" not in line and "one field pair" in line


# 8. The thread count is recorded beside the versions
def test_model_json_records_the_thread_count(tmp_path):
    data = make_synthetic(seed=0, rows=200)
    path = save_model(build_model(ModelConfig("fm", data.num_features, data.num_fields)), tmp_path / "m",
                      data=data.describe())
    assert load_model(path).meta["versions"]["torch_threads"] == torch.get_num_threads()


# A model.json mutated field by field: a one-line refusal or a clean load, never anything else
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                   st.text(max_size=8), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4),
                                                                                              st.integers(), max_size=2))


def _paths(meta, prefix=()):
    for key, value in meta.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


AFM_META = json.loads((BUILTIN_DIR / "synthetic-afm" / "model.json").read_text())
FIELD_PATHS = [p for p in _paths(AFM_META) if p[0] != "history"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(FIELD_PATHS), VALUES)
def test_a_mutated_model_json_loads_or_is_refused_in_one_line(tmp_path_factory, path, value):
    model_dir = tmp_path_factory.mktemp("m") / "synthetic-afm"
    shutil.copytree(BUILTIN_DIR / "synthetic-afm", model_dir)

    def mutate(meta):
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    edit_meta(model_dir, mutate)
    try:
        load_model(model_dir)
    except CheckpointError as exc:
        assert "\n" not in str(exc)
    scan_models(model_dir.parent, include_builtin=False)  # listing never raises


def test_weights_under_the_old_first_order_name_still_load(tmp_path):
    model_dir = copy_model(tmp_path)
    tensors = load_model(model_dir).model.state_dict()
    save_file({("weight.weight" if k == "linear.weight" else k): v.contiguous() for k, v in tensors.items()},
              str(model_dir / "model.safetensors"))
    assert torch.equal(load_model(model_dir).model.linear.weight, tensors["linear.weight"])

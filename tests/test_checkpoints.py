import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from afm.core.errors import CheckpointError
from afm.models.inference import predict
from afm.store.checkpoints import META, WEIGHTS, is_model_dir, load_model, save_model


@pytest.fixture()
def saved(tmp_path, trained_pair, synthetic):
    return save_model(trained_pair["afm"], tmp_path / "afm", data=synthetic.describe(), metrics={"test": {"rmse": 0.5}})


def test_round_trip_gives_identical_predictions(saved, trained_pair, synthetic):
    loaded = load_model(saved)
    x = synthetic.splits["test"].x
    assert np.array_equal(predict(loaded.model, x), predict(trained_pair["afm"], x))
    assert loaded.meta["data"]["fingerprint"] == synthetic.fingerprint
    assert loaded.meta["model"] == trained_pair["afm"].config.to_dict()
    assert sorted(p.name for p in saved.iterdir()) == [META, WEIGHTS]


def test_overwrite_replaces_whole_and_leaves_no_temporaries(saved, trained_pair, synthetic):
    save_model(trained_pair["fm"], saved, data=synthetic.describe(), overwrite=True)
    assert load_model(saved).model.config.kind == "fm"
    assert [p.name for p in saved.parent.iterdir()] == ["afm"]


def test_without_overwrite_an_existing_model_is_kept_and_the_new_one_saved_beside(saved, trained_pair, synthetic):
    with pytest.warns(UserWarning, match="saved as"):
        beside = save_model(trained_pair["fm"], saved, data=synthetic.describe())
    assert beside.name == "afm-2" and load_model(beside).model.config.kind == "fm"
    assert load_model(saved).model.config.kind == "afm"


def test_refuses_to_overwrite_a_directory_that_is_not_a_model(tmp_path, trained_pair, synthetic):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="not a model directory"):
        save_model(trained_pair["fm"], precious, data=synthetic.describe(), overwrite=True)
    assert (precious / "thesis.txt").read_text() == "keep me"


def test_pickle_in_place_of_weights_is_refused_without_running_it(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (saved / WEIGHTS).write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_model(saved)
    assert not marker.exists()


def test_torch_save_file_is_refused(saved):
    torch.save({"embedding.weight": torch.zeros(3)}, saved / WEIGHTS)
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_model(saved)


def test_truncated_weights_are_refused(saved):
    data = (saved / WEIGHTS).read_bytes()
    (saved / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_model(saved)


def edit_weights(saved, change):
    tensors = load_file(str(saved / WEIGHTS))
    change(tensors)
    save_file(tensors, str(saved / WEIGHTS))


def test_shape_mismatch_nan_and_missing_tensors_are_refused(saved):
    edit_weights(saved, lambda t: t.update({"embedding.weight": t["embedding.weight"][:, :3].contiguous()}))
    with pytest.raises(CheckpointError, match=r"embedding.weight has shape \(41, 3\), the config needs \(41, 16\)"):
        load_model(saved)
    edit_weights(saved, lambda t: t.update({"embedding.weight": torch.full((41, 16), float("nan"))}))
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_model(saved)
    edit_weights(saved, lambda t: t.pop("attention_W"))
    with pytest.raises(CheckpointError, match="missing \\['attention_W'\\]"):
        load_model(saved)


@pytest.mark.parametrize("meta, problem", [
    ("not json", "not valid JSON"),
    (json.dumps({"hello": 1}), "not an AFM Explorer model"),
    (json.dumps({"format": "afm-explorer-model", "format_version": 99}), "format version 99"),
    (json.dumps({"format": "afm-explorer-model", "format_version": 1, "model": {"kind": "afm", "evil": 1}}),
     "config .* is malformed"),
])
def test_foreign_or_tampered_json_is_refused(saved, meta, problem):
    (saved / META).write_text(meta)
    with pytest.raises(CheckpointError, match=problem):
        load_model(saved)


def test_missing_directory_or_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such model directory"):
        load_model(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / META).write_text("{}")
    assert not is_model_dir(tmp_path / "half")
    with pytest.raises(CheckpointError, match="not a model directory"):
        load_model(tmp_path / "half")

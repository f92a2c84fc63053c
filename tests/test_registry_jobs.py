import threading

import pytest

from afm.core.errors import AFMError
from afm.store.checkpoints import load_model
from afm.store.registry import delete_model, list_models, new_model_path, registry_table, rename_model
from afm.training.jobs import TrainingJob


def test_jobs_train_in_the_background_and_save(tmp_path, synthetic):
    job = TrainingJob(synthetic, "fm", new_model_path(tmp_path, "synthetic", "fm"), {"epochs": 3}).start()
    state = job.wait(120)
    assert state.status == "finished" and state.path.is_dir() and len(state.history) == 4
    assert "best epoch" in state.message
    entries = list_models(tmp_path, include_builtin=False)
    assert [e.name for e in entries] == [state.path.name] and entries[0].kind == "fm"


def test_stop_keeps_the_best_epoch(tmp_path, synthetic):
    job = TrainingJob(synthetic, "afm", tmp_path / "m", {"epochs": 200, "patience": 0})
    seen = threading.Event()
    original = job._progress

    def progress(epoch, *rest):
        original(epoch, *rest)
        if epoch >= 2:
            seen.set()

    job._progress = progress
    job.start()
    assert seen.wait(120)
    job.stop()
    state = job.wait(120)
    assert state.status == "finished" and state.message.startswith("stopped")
    meta = load_model(state.path).meta
    assert meta["stop_reason"] == "stopped" and meta["best_epoch"] >= 1


def test_two_jobs_at_once_give_two_intact_models(tmp_path, synthetic):
    jobs = [TrainingJob(synthetic, kind, new_model_path(tmp_path, "synthetic", kind), {"epochs": 2}).start()
            for kind in ("fm", "fm")]
    states = [job.wait(120) for job in jobs]
    assert {s.status for s in states} == {"finished"} and states[0].path != states[1].path
    assert len(list_models(tmp_path, include_builtin=False)) == 2
    for state in states:
        load_model(state.path)


def test_failures_are_reported_not_raised(tmp_path, synthetic):
    state = TrainingJob(synthetic, "fm", tmp_path / "m", {"epochs": 2, "lr": 1e12, "optimizer": "adagrad"}).start().wait(60)
    assert state.status == "failed" and "lower learning rate" in state.message
    state = TrainingJob(synthetic, "fm", tmp_path / "m2", {"optimizer": "sgd"}).start().wait(60)
    assert state.status == "failed" and "must be one of adagrad, adam" in state.message


def test_rename_delete_and_listing(tmp_path, synthetic):
    path = TrainingJob(synthetic, "fm", new_model_path(tmp_path, "synthetic", "fm"), {"epochs": 1}).start().wait(60).path
    (tmp_path / "junk").mkdir()  # not a model: not listed
    (tmp_path / ".half.tmp").mkdir()
    entry = list_models(tmp_path, include_builtin=False)[0]
    with pytest.raises(AFMError, match="not a valid model name"):
        rename_model(entry, "../escape")
    renamed = rename_model(entry, "my-fm")
    assert renamed.name == "my-fm" and not path.exists()
    entry = list_models(tmp_path, include_builtin=False)[0]
    assert registry_table([entry]).name.tolist() == ["my-fm"]
    delete_model(entry)
    assert list_models(tmp_path, include_builtin=False) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".half.tmp", "junk"]


def test_builtin_models_are_listed_and_protected(tmp_path):
    shipped = [e for e in list_models(tmp_path) if e.builtin]
    assert {e.kind for e in shipped} == {"fm", "afm"}
    with pytest.raises(AFMError, match="shipped with the app"):
        delete_model(shipped[0])
    with pytest.raises(AFMError, match="shipped with the app"):
        rename_model(shipped[0], "x")

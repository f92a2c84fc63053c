"""Saves killed with SIGKILL at random moments never leave a half model where a model was."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
from conftest import ROOT

from afm.store.checkpoints import load_model, save_model
from afm.store.registry import list_models

SAVER = """
import sys, torch
from afm.store.checkpoints import save_model
from afm.models import ModelConfig, build_model
target, tag = sys.argv[1], 0
model = build_model(ModelConfig("fm", num_features=400_000, num_fields=4, embed_dim=32))  # ~50 MB of weights
while True:
    tag += 1
    with torch.no_grad():
        model.bias.fill_(tag)
    save_model(model, target, data={"name": "crash-test", "fields": ["a", "b", "c", "d"], "num_features": 400_000,
                                    "fingerprint": "none"}, metrics={"train": {"tag": tag}}, overwrite=True)
    print(tag, flush=True)
"""


def test_sigkill_during_saves_leaves_a_complete_model(tmp_path):
    target = tmp_path / "registry" / "same-name"
    rng = np.random.default_rng(0)
    for attempt in range(6):
        process = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert process.stdout.readline()  # at least one complete save before the kill
        time.sleep(float(rng.uniform(0.0, 0.6)))
        process.send_signal(signal.SIGKILL)
        process.wait()
        entries = list_models(target.parent, include_builtin=False)
        assert [e.name for e in entries] == ["same-name"]
        loaded = load_model(target)  # whole and valid, one of the versions written
        assert loaded.model.bias.item() == loaded.meta["metrics"]["train"]["tag"]


def test_a_save_killed_between_its_two_renames_is_recovered(tmp_path, trained_pair, synthetic):
    """Where atomic exchange is unavailable the previous model is moved aside first; a crash right then
    must not lose it."""
    target = save_model(trained_pair["fm"], tmp_path / "m", data=synthetic.describe())
    aside = tmp_path / f".m.{os.getpid()}.old"
    os.rename(target, aside)  # the state a crash between the renames leaves
    assert list_models(tmp_path, include_builtin=False)[0].name == "m"  # listing recovers it
    assert load_model(target).model.config.kind == "fm" and not aside.exists()


def test_ctrl_c_in_the_cli_keeps_the_best_epoch(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "afm", "train", "--model", "afm", "--epochs", "500",
                                "--patience", "0", "--out", str(tmp_path / "m"), "--quiet"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(12)  # imports, data, a few epochs
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "(interrupted" in out
    meta = load_model(tmp_path / "m").meta
    assert meta["stop_reason"] == "interrupted" and meta["best_epoch"] >= 1


def test_two_cli_processes_saving_to_one_registry_and_bit_for_bit_reproducibility(tmp_path):
    """Three trainings at once into one registry; the two with the same seed write identical weights."""
    names = {"fm-a": 0, "fm-b": 0, "fm-c": 1}
    runs = [subprocess.Popen([sys.executable, "-m", "afm", "train", "--model", "fm", "--epochs", "3", "--seed",
                              str(seed), "--out", str(tmp_path / name), "--quiet"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name, seed in names.items()]
    assert [p.wait(300) for p in runs] == [0, 0, 0]
    assert sorted(e.name for e in list_models(tmp_path, include_builtin=False)) == sorted(names)
    weights = {name: (tmp_path / name / "model.safetensors").read_bytes() for name in names}
    assert weights["fm-a"] == weights["fm-b"] != weights["fm-c"]
    meta = load_model(tmp_path / "fm-a").meta
    assert meta["device"] == "cpu" and {"torch", "numpy", "safetensors", "afm", "python"} <= set(meta["versions"])


def test_listing_removes_temporaries_of_killed_saves_but_not_fresh_ones(tmp_path, trained_pair, synthetic):
    from afm.store.checkpoints import STALE_TEMPORARY_SECONDS

    save_model(trained_pair["fm"], tmp_path / "m", data=synthetic.describe())
    stale, fresh = tmp_path / ".m.killed.tmp", tmp_path / ".m.writing.tmp"
    for tmp in (stale, fresh):
        tmp.mkdir()
        (tmp / "model.safetensors").write_bytes(b"half")  # what a killed save leaves
    long_ago = time.time() - STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (long_ago, long_ago))
    assert [e.name for e in list_models(tmp_path, include_builtin=False)] == ["m"]
    assert not stale.exists() and fresh.exists()

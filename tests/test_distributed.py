"""Data-parallel training under torchrun: 2 CPU processes (gloo) on the synthetic default."""
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT


def train(out, *extra, processes=None):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] \
        if processes else [sys.executable]
    command = [*launcher, "-m", "afm", "train", "--model", "afm", "--out", str(out), "--quiet", "--dropout", "0", *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return done, json.loads((out / "model.json").read_text())


@pytest.mark.parametrize("epochs, tolerance", [(1, 1e-4), (6, 0.03)])
def test_two_processes_match_one(tmp_path, epochs, tolerance):
    # Without dropout, a step of 2 ranks sees the same batch and gradient as one process, up to the order of
    # float sums; over epochs those differences grow a little, as between two machines.
    ddp, ddp_meta = train(tmp_path / "ddp", "--epochs", str(epochs), processes=2)
    _, single_meta = train(tmp_path / "single", "--epochs", str(epochs))
    for split in ("train", "validation"):
        assert ddp_meta["metrics"][split]["rmse"] == pytest.approx(single_meta["metrics"][split]["rmse"], abs=tolerance)
    assert ddp_meta["metrics"]["validation"]["rmse"] < ddp_meta["history"][0]["validation_rmse"] - 0.05  # it learned
    # One checkpoint, written once, by rank 0: one report, and nothing else in the output folder.
    assert ddp.stdout.count("saved ") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]

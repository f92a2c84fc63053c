"""Threads chosen for the machine a run finds (issue #31, item 6): one for small work, else the cores other
processes leave idle when the run starts; `--threads` overrides; the choice and its reason are recorded."""
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from afm.fast.threads import DEFAULT, SMALL_WORK, busy_cores, choose_threads
from afm.store.checkpoints import load_model

SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


@pytest.fixture()
def busy_process():
    """One other process holding a core, as a browser or a second training run beside the app would."""
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=30)])
    time.sleep(0.5)
    yield
    spinner.kill()
    spinner.wait()


def test_a_requested_count_and_small_work_need_no_look_at_the_load():
    assert choose_threads(10 * SMALL_WORK, requested=1) == (1, "--threads 1")
    count, reason = choose_threads(10 * SMALL_WORK, requested=DEFAULT + 3)
    assert count == DEFAULT and reason.startswith(f"--threads {DEFAULT + 3}")
    assert choose_threads(SMALL_WORK - 1) == (1, "small work: one thread is fastest")


@pytest.mark.skipif(not os.path.exists("/proc/stat") or DEFAULT < 2, reason="needs /proc and two or more threads")
def test_large_work_beside_a_busy_process_leaves_its_core_alone(busy_process):
    assert busy_cores() >= 0.7  # the spinner, not this process
    count, reason = choose_threads(10 * SMALL_WORK)
    assert count == max(1, min(DEFAULT, os.cpu_count() - 1)) and "busy with other processes" in reason


def test_the_choice_and_its_reason_are_recorded_with_the_model(tmp_path):
    run = subprocess.run([sys.executable, "-m", "afm", "train", "--data", "synthetic", "--model", "fm", "--epochs", "1",
                          "--threads", "1", "--out", str(tmp_path / "m"), "--quiet"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    meta = load_model(tmp_path / "m").meta
    assert meta["threads"] == {"count": 1, "reason": "--threads 1"} and meta["training"]["threads"] == 1
    assert "threads 1 (--threads 1)" in run.stdout

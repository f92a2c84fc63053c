"""What produced a number: library versions, thread count and the git commit, recorded in every model
directory and results file."""
from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"  # afm.__version__
PACKAGE = __name__.split(".")[0]


def library_versions() -> dict:
    """Versions of the libraries that shape the numbers, and the thread count: on a CPU the same seed gives
    the same bits only with the same thread count (docs/reliability.md)."""
    import numpy
    import safetensors

    return {PACKAGE: VERSION, "torch": torch.__version__, "numpy": numpy.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version(),
            "torch_threads": torch.get_num_threads()}


def git_state(root: Path = ROOT) -> dict:
    """The commit the code came from and whether the checkout differs from it: changed tracked files and new
    files git does not ignore, results files, shipped models, the README and the generated docs/results aside
    (they are outputs, not code); {} outside a checkout. Read once per process:
    a process runs the code it loaded at start, so a commit made while a long run goes on must not be credited with
    that run's numbers (the CLI and the app read it as they start)."""
    return dict(_git_state_once(Path(root)))


@lru_cache(maxsize=None)
def _git_state_once(root: Path) -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal", "--", ".", ":!results",
                                ":!assets/models", ":!README.md", ":!docs/results"], cwd=root, capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": dirty}

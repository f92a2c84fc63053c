import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AFM_DATA_DIR") or ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's licensed data (Frappe, MovieLens tags): read in place, never copied into the project."""
    if not (SHARED_DATA / "frappe").is_dir():
        pytest.skip(f"licensed data not found at {SHARED_DATA} (set AFM_DATA_DIR)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synthetic():
    from afm.data import make_synthetic

    return make_synthetic(seed=0)


@pytest.fixture(scope="session")
def trained_pair(synthetic):
    """FM and AFM trained on the synthetic default with the default presets (seconds)."""
    from afm.training.workflows import fit

    fm, afm = fit(synthetic, "fm"), fit(synthetic, "afm")
    return {"fm": fm.model, "afm": afm.model, "fm_result": fm.result, "afm_result": afm.result}

"""What earlier code wrote loads and predicts unchanged: the shipped models, and a folder of models (FM,
uniform AFM, a pretrained AFM set, a logistic AFM with p fixed) written by the layout before afm/ was split
into layers, with the predictions that code recorded for them."""
import json

import numpy as np
from conftest import ROOT

from afm.data import load_dataset
from afm.models.inference import evaluate, predict
from afm.store.checkpoints import load_model
from afm.store.modelsets import expand, set_members
from afm.store.registry import BUILTIN_DIR, list_models

PREVIOUS = ROOT / "tests" / "data" / "previous-layout"


def test_models_written_by_the_previous_layout_predict_what_they_predicted_then():
    recorded = json.loads((PREVIOUS / "predictions.json").read_text())["predictions"]
    data = load_dataset("synthetic")
    for name, expected in recorded.items():
        model = load_model(PREVIOUS / name).model
        np.testing.assert_allclose(predict(model, data.splits["test"].x[:10]), expected, rtol=0, atol=2e-6,
                                   err_msg=name)
    assert [p.name for p in set_members(PREVIOUS / "afm-set")] == ["seed-0", "seed-1"]


def test_the_shipped_models_and_sets_load_and_keep_their_metrics():
    entries = list_models(BUILTIN_DIR)
    assert {"synthetic-fm", "synthetic-afm", "wide-fm-set/seed-0", "wide-afm-set/seed-2"} <= {e.name for e in entries}
    for path in expand([BUILTIN_DIR / "synthetic-afm", BUILTIN_DIR / "wide-afm-set"]):
        loaded = load_model(path)
        data = load_dataset(loaded.meta["data"]["source"])
        assert abs(evaluate(loaded.model, data, "test")["rmse"] - loaded.meta["metrics"]["test"]["rmse"]) < 1e-6, path

"""Models trained in pytorch-fm and DeepCTR-Torch, imported and explained as ours: the logits equal theirs
on the same rows. The two libraries are in requirements-bench.txt; without them these tests skip."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from afm.core.errors import CheckpointError
from afm.data import make_synthetic
from afm.explain.parts import decompose
from afm.models.inference import predict
from afm.store.checkpoints import load_model
from afm.store.importers import field_vocabularies, import_model, local_ids, read_state_dict

torchfm = pytest.importorskip("torchfm", reason="pytorch-fm is in requirements-bench.txt, not installed here")


@pytest.fixture(scope="module")
def data():
    return make_synthetic(seed=2, rows=3000)


def field_sizes(data):
    return [len(v) for v in field_vocabularies(data)]


def train_torchfm(model, data, steps=60):
    """A few real optimisation steps of their model on our data in their encoding."""
    x = torch.as_tensor(local_ids(data, "train"))
    y = torch.as_tensor((data.splits["train"].y > 0).astype(np.float32))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(steps):
        rows = slice(step * 256 % len(x), step * 256 % len(x) + 256)
        loss = torch.nn.functional.binary_cross_entropy(model(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def their_logits(model, data, split="test"):
    """Their forward up to the sigmoid, through their own layers (a logit read back from a float32
    probability would lose digits where the sigmoid saturates)."""
    x = torch.as_tensor(local_ids(data, split))
    pairs = model.afm if hasattr(model, "afm") else model.fm
    with torch.no_grad():
        return (model.linear(x) + pairs(model.embedding(x))).squeeze(1).numpy()


@pytest.mark.parametrize("kind", ["fm", "afm"])
def test_a_torchfm_model_imports_with_its_logits(kind, data, tmp_path):
    from torchfm.model.afm import AttentionalFactorizationMachineModel
    from torchfm.model.fm import FactorizationMachineModel

    torch.manual_seed(0)
    theirs = (FactorizationMachineModel(field_sizes(data), 8) if kind == "fm" else
              AttentionalFactorizationMachineModel(field_sizes(data), 8, 4, dropouts=(0.0, 0.0)))
    train_torchfm(theirs, data)
    torch.save(theirs.state_dict(), tmp_path / "theirs.pt")
    ours, notes = import_model("torchfm", tmp_path / "theirs.pt", data)
    assert ours.config.kind == kind and ours.config.loss == "logistic"
    np.testing.assert_allclose(predict(ours, data.splits["test"].x), their_logits(theirs, data), atol=1e-5)
    if kind == "afm":
        assert any("projection.bias" in n for n in notes)  # what was dropped is said


def test_a_deepctr_afm_imports_with_its_logits(data, tmp_path):
    deepctr = pytest.importorskip("deepctr_torch", reason="DeepCTR-Torch is in requirements-bench.txt")
    from deepctr_torch.inputs import SparseFeat
    from deepctr_torch.models import AFM

    columns = [SparseFeat(name, vocabulary_size=size, embedding_dim=8)
               for name, size in zip(data.field_names, field_sizes(data))]
    theirs = AFM(columns, columns, attention_factor=4, device="cpu", seed=0)
    theirs.compile("adam", "binary_crossentropy")
    as_input = lambda split: {name: local_ids(data, split)[:, f] for f, name in enumerate(data.field_names)}
    theirs.fit(as_input("train"), (data.splits["train"].y > 0).astype(np.float32), batch_size=256, epochs=1,
               verbose=0)
    torch.save(theirs.state_dict(), tmp_path / "deepctr.pt")
    ours, _ = import_model("deepctr", tmp_path / "deepctr.pt", data)
    with torch.no_grad():
        theirs.eval()
        x = torch.as_tensor(local_ids(data, "test"), dtype=torch.float32)  # DeepCTR takes one float matrix
        theirs.out.task = "regression"  # their PredictionLayer without its sigmoid: the logit itself
        logits = theirs(x).squeeze(1).numpy()
    assert ours.config.kind == "afm" and deepctr.__version__
    np.testing.assert_allclose(predict(ours, data.splits["test"].x), logits, atol=1e-5)


def test_anything_but_a_plain_state_dict_of_these_models_is_refused(data, tmp_path):
    from torchfm.model.fm import FactorizationMachineModel

    model = FactorizationMachineModel(field_sizes(data), 8)
    torch.save(model, tmp_path / "whole.pt")  # a pickled module needs code to load: refused
    with pytest.raises(CheckpointError, match="weights_only"):
        read_state_dict(tmp_path / "whole.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch state dict"):
        read_state_dict(tmp_path / "junk.pt")
    torch.save({"embedding.embedding.weight": torch.zeros(5, 8)}, tmp_path / "small.pt")
    with pytest.raises(CheckpointError, match="rows"):  # the vocabulary sizes do not match the data
        import_model("torchfm", tmp_path / "small.pt", data)
    torch.save(model.state_dict(), tmp_path / "fm.pt")
    with pytest.raises(CheckpointError, match="embedding for field"):
        import_model("deepctr", tmp_path / "fm.pt", data)


def test_the_cli_encodes_imports_and_the_explanation_opens_in_the_app(data, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    from torchfm.model.afm import AttentionalFactorizationMachineModel

    env = {**os.environ, "AFM_MODELS_DIR": str(tmp_path / "models")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "afm", *a], cwd=ROOT, capture_output=True, text=True,
                                    env=env, timeout=300)
    encoded = run("encode", "--data", "synthetic", "--out", str(tmp_path / "encoded"))
    assert encoded.returncode == 0, encoded.stderr
    dims = json.loads((tmp_path / "encoded" / "field_dims.json").read_text())
    default = make_synthetic()
    assert list(dims.values()) == field_sizes(default)
    torch.manual_seed(1)
    theirs = train_torchfm(AttentionalFactorizationMachineModel(list(dims.values()), 8, 4, (0.0, 0.0)), default)
    torch.save(theirs.state_dict(), tmp_path / "afm.pt")
    imported = run("import", str(tmp_path / "afm.pt"), "--from", "torchfm", "--data", "synthetic",
                   "--out", str(tmp_path / "models" / "imported-afm"))
    assert imported.returncode == 0, imported.stderr
    assert "note: dropped afm.projection.bias" in imported.stdout and "AUC" in imported.stdout
    loaded = load_model(tmp_path / "models" / "imported-afm")
    assert loaded.meta["imported"]["library"] == "torchfm"
    result = decompose(loaded.model, default, "test", 0)
    assert result["prediction"] == pytest.approx(their_logits(theirs, default)[0], abs=1e-5)

    monkeypatch.setenv("AFM_MODELS_DIR", str(tmp_path / "models"))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    app.sidebar.selectbox[1].set_value("imported-afm").run()  # the model the pages explain
    app.switch_page("app_pages/2_Instance_explorer.py").run()
    assert not app.exception, app.exception
    assert "AFM probability of +1" in [m.label for m in app.metric]
    assert any("log-odds" in c.value for c in app.caption)
    refused = run("import", str(tmp_path / "afm.pt"), "--from", "deepctr", "--data", "synthetic",
                  "--out", str(tmp_path / "models" / "x"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "embedding for field" in refused.stderr


def test_the_train_page_imports_an_uploaded_state_dict(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    from torchfm.model.fm import FactorizationMachineModel

    monkeypatch.setenv("AFM_MODELS_DIR", str(tmp_path / "models"))
    default = make_synthetic()
    torch.manual_seed(3)
    theirs = train_torchfm(FactorizationMachineModel(field_sizes(default), 8), default)
    torch.save(theirs.state_dict(), tmp_path / "fm.pt")
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    app.switch_page("app_pages/1_Train.py").run()
    app.radio(key="import_library").set_value("torchfm").run()
    app.get("file_uploader")[0].upload("fm.pt", (tmp_path / "fm.pt").read_bytes()).run()
    app.button(key="import_button").click().run()
    assert not app.exception, app.exception
    assert any("Imported an FM" in s.value for s in app.success)
    saved = [p for p in (tmp_path / "models").iterdir() if p.name.startswith("synthetic-torchfm-import")]
    assert len(saved) == 1
    np.testing.assert_allclose(predict(load_model(saved[0]).model, default.splits["test"].x),
                               their_logits(theirs, default), atol=1e-5)
    app.get("file_uploader")[0].upload("junk.pt", b"junk").run()
    app.button(key="import_button").click().run()
    assert not app.exception and any("not a PyTorch state dict" in e.value for e in app.error)


def males_like(path, n=800, seed=0):
    """A practitioner's CSV: integer columns of few levels (school 3..16), as in males.csv; LabelEncoder on
    pandas' dtypes gives ids in numeric order. A signal the model can learn."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    school, exper = rng.integers(3, 17, n), rng.integers(0, 12, n)
    married = rng.choice(["yes", "no"], n)
    union = ((school > 11) ^ (rng.random(n) < 0.2)).astype(int)
    pd.DataFrame({"school": school, "exper": exper, "married": married, "union": union}).to_csv(path, index=False)
    return pd.read_csv(path)


def test_the_males_case_an_import_must_prove_its_encoding(tmp_path):
    from sklearn.preprocessing import LabelEncoder
    from torchfm.model.fm import FactorizationMachineModel

    from afm.data.tabular import TableOptions, load_csv

    frame = males_like(tmp_path / "males.csv")
    fields = ["school", "exper", "married"]
    encoders = {f: LabelEncoder().fit(frame[f]) for f in fields}  # DeepCTR's README pipeline
    x = torch.as_tensor(np.stack([encoders[f].transform(frame[f]) for f in fields], axis=1))
    torch.manual_seed(0)
    theirs = FactorizationMachineModel([len(encoders[f].classes_) for f in fields], 8)
    y = torch.as_tensor(frame["union"].to_numpy(np.float32))
    optimizer = torch.optim.Adam(theirs.parameters(), lr=0.05)
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy(theirs(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    theirs.eval()
    torch.save(theirs.state_dict(), tmp_path / "fm.pt")
    data = load_csv(tmp_path / "males.csv", "union", options=TableOptions(categorical=tuple(fields)))
    with pytest.raises(CheckpointError, match="give --vocab FILE"):  # sizes agree; the order cannot be told
        import_model("torchfm", tmp_path / "fm.pt", data)
    (tmp_path / "vocab.json").write_text(json.dumps({f: encoders[f].classes_.tolist() for f in fields}))
    ours, _ = import_model("torchfm", tmp_path / "fm.pt", data, vocab=tmp_path / "vocab.json")
    names = data.feature_names
    rows = frame.iloc[:200]
    ids = np.stack([[names.index(f"{f}={v}") for v in rows[f]] for f in fields], axis=1)
    with torch.no_grad():
        their = (theirs.linear(x[:200]) + theirs.fm(theirs.embedding(x[:200]))).squeeze(1).numpy()
    np.testing.assert_allclose(predict(ours, ids), their, atol=1e-5)
    # a check file of their own logits on rows of the data proves it too, and catches a wrong value order

    check = rows[fields].assign(logit=their)  # the rows as the data has them, with their logits
    check.to_csv(tmp_path / "check.csv", index=False)
    _, notes = import_model("torchfm", tmp_path / "fm.pt", data, vocab=tmp_path / "vocab.json",
                            check=tmp_path / "check.csv")
    assert any("logits within" in n for n in notes)
    text_order = {f: sorted(map(str, encoders[f].classes_)) for f in fields}  # '10' before '3'
    (tmp_path / "wrong.json").write_text(json.dumps(text_order))
    with pytest.raises(CheckpointError, match="the ids do not line up"):
        import_model("torchfm", tmp_path / "fm.pt", data, vocab=tmp_path / "wrong.json", check=tmp_path / "check.csv")
    # without a vocabulary our order is taken, numbers as numbers as LabelEncoder orders them: the check proves it
    _, notes = import_model("torchfm", tmp_path / "fm.pt", data, check=tmp_path / "check.csv")
    assert any("logits within" in n for n in notes)


def test_an_import_on_our_own_split_says_its_metrics_may_include_training_rows(tmp_path):
    from torchfm.model.fm import FactorizationMachineModel

    frame = males_like(tmp_path / "males.csv")
    frame["split"] = np.where(np.arange(len(frame)) % 10 < 7, "train", np.where(np.arange(len(frame)) % 10 < 9,
                                                                                 "validation", "test"))
    frame.to_csv(tmp_path / "males.csv", index=False)
    from afm.data.tabular import TableOptions, load_csv
    from afm.store.importers import write_vocab

    fields = ["school", "exper", "married"]
    for split_column, expected in ((None, "may have been trained on"), ("split", None)):
        data = load_csv(tmp_path / "males.csv", "union", options=TableOptions(
            categorical=tuple(fields), drop=("split",) if split_column is None else (), split_column=split_column))
        out = tmp_path / f"encoded-{split_column}"
        out.mkdir()
        write_vocab(data, out)
        torch.save(FactorizationMachineModel([len(v) for v in field_vocabularies(data)], 4).state_dict(), out / "fm.pt")
        args = ["import", str(out / "fm.pt"), "--from", "torchfm", "--data", str(tmp_path / "males.csv"), "--target",
                "union", "--categorical", ",".join(fields), "--vocab", str(out), "--out", str(out / "model")]
        args += ["--split-column", "split"] if split_column else ["--drop", "split"]
        done = subprocess.run([sys.executable, "-m", "afm", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        meta = json.loads((out / "model" / "model.json").read_text())
        if expected:
            assert expected in done.stdout and "may include its training rows" in done.stdout
            assert meta["imported"]["held_out_known"] is False
        else:
            assert "may have been trained on" not in done.stdout and meta["imported"]["held_out_known"] is True
            assert meta["metrics"]["test"]["n"] == int((frame.split == "test").sum())

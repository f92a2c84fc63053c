"""DeepFM, NFM, DCN-v2 and AutoInt trained in pytorch-fm and DeepCTR-Torch with their own APIs (batch norm
included), imported, and giving the other library's logits to 1e-5; what no family here computes exactly is
refused in one line naming what is taken."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT

from afm.core.errors import CheckpointError
from afm.data import make_synthetic
from afm.data.tabular import load_csv
from afm.models.inference import predict
from afm.store.checkpoints import load_model
from afm.store.importers import import_model, local_ids
from test_import import field_sizes as sizes
from test_import import train_torchfm as fit_torchfm

torchfm = pytest.importorskip("torchfm", reason="pytorch-fm is in requirements-bench.txt, not installed here")


@pytest.fixture(scope="module")
def data():
    return make_synthetic(seed=3, rows=3000)


def torchfm_logits(model, data, split="test"):
    """Their forward without its final sigmoid, through their own modules."""
    x = torch.as_tensor(local_ids(data, split))
    with torch.no_grad():
        embedded = model.embedding(x)
        if hasattr(model, "embed_output_dim"):  # DeepFM
            out = model.linear(x) + model.fm(embedded) + model.mlp(embedded.view(-1, model.embed_output_dim))
        else:  # NFM
            out = model.linear(x) + model.mlp(model.fm(embedded))
    return out.squeeze(1).numpy()


def test_torchfm_deepfm_and_nfm_import_with_their_batch_norm_and_logits(data, tmp_path):
    from torchfm.model.dfm import DeepFactorizationMachineModel
    from torchfm.model.nfm import NeuralFactorizationMachineModel

    torch.manual_seed(0)
    for kind, theirs in (("deepfm", DeepFactorizationMachineModel(sizes(data), 8, (32, 16), 0.2)),
                         ("nfm", NeuralFactorizationMachineModel(sizes(data), 8, (16,), (0.2, 0.2)))):
        fit_torchfm(theirs, data)
        assert any(name.endswith("running_var") for name in theirs.state_dict())
        torch.save(theirs.state_dict(), tmp_path / f"{kind}.pt")
        ours, _ = import_model("torchfm", tmp_path / f"{kind}.pt", data, kind=kind)
        assert ours.config.kind == kind and ours.config.batch_norm
        np.testing.assert_allclose(predict(ours, data.splits["test"].x), torchfm_logits(theirs, data), atol=1e-5)
    with pytest.raises(CheckpointError, match="--model deepfm"):  # Wide&Deep has DeepFM's keys: not guessed
        import_model("torchfm", tmp_path / "deepfm.pt", data)
    with pytest.raises(CheckpointError, match="is a NFM, not --model deepfm"):
        import_model("torchfm", tmp_path / "nfm.pt", data, kind="deepfm")


def test_what_no_family_here_computes_is_refused_in_one_line_naming_what_is_taken(data, tmp_path):
    from torchfm.model.afi import AutomaticFeatureInteractionModel
    from torchfm.model.dcn import DeepCrossNetworkModel

    for name, theirs in (("dcn", DeepCrossNetworkModel(sizes(data), 8, 2, (16,), 0.0)),
                         ("autoint", AutomaticFeatureInteractionModel(sizes(data), 8, 8, 2, 2, (16,), (0.0, 0.0, 0.0)))):
        torch.save(theirs.state_dict(), tmp_path / f"{name}.pt")
        with pytest.raises(CheckpointError) as refused:
            import_model("torchfm", tmp_path / f"{name}.pt", data)
        message = str(refused.value)
        assert "\n" not in message and "this importer takes FM, AFM, DeepFM (--model deepfm) and NFM" in message


def deepctr_model(factory, data, **options):
    from deepctr_torch.inputs import SparseFeat

    columns = [SparseFeat(name, vocabulary_size=size, embedding_dim=8) for name, size in zip(data.field_names, sizes(data))]
    model = factory(columns, columns, device="cpu", seed=0, **options)
    model.compile("adam", "binary_crossentropy")
    inputs = {name: local_ids(data, "train")[:, f] for f, name in enumerate(data.field_names)}
    model.fit(inputs, (data.splits["train"].y > 0).astype(np.float32), batch_size=256, epochs=1, verbose=0)
    return model


def deepctr_logits(model, data, split="test"):
    with torch.no_grad():
        model.eval()
        x = torch.as_tensor(local_ids(data, split), dtype=torch.float32)
        model.out.task = "regression"  # their prediction layer without its sigmoid: the logit itself
        try:
            return model(x).squeeze(1).numpy()
        finally:
            model.out.task = "binary"


@pytest.mark.parametrize("family, options, asked", [
    ("deepfm", {"dnn_hidden_units": (32, 16), "dnn_use_bn": True, "dnn_dropout": 0.1}, {"kind": "deepfm"}),
    ("nfm", {"dnn_hidden_units": (16,), "bi_dropout": 0.2}, {}),
    ("nfm", {"dnn_hidden_units": (16, 8), "dnn_dropout": 0.1}, {}),
    ("dcn", {"cross_num": 2, "cross_parameterization": "matrix", "dnn_hidden_units": (16,), "dnn_use_bn": True}, {}),
    ("dcn", {"cross_num": 3, "cross_parameterization": "matrix", "dnn_hidden_units": (8,), "dnn_dropout": 0.1}, {}),
    ("autoint", {"att_layer_num": 2, "att_head_num": 2, "dnn_hidden_units": ()}, {"heads": 2}),
    ("autoint", {"att_layer_num": 1, "att_head_num": 4, "att_res": False, "dnn_hidden_units": (16,)}, {"heads": 4}),
])
def test_a_deepctr_model_imports_with_its_logits(family, options, asked, data, tmp_path):
    pytest.importorskip("deepctr_torch", reason="DeepCTR-Torch is in requirements-bench.txt")
    from deepctr_torch import models

    factory = {"deepfm": models.DeepFM, "nfm": models.NFM, "dcn": models.DCN, "autoint": models.AutoInt}[family]
    theirs = deepctr_model(factory, data, **options)
    torch.save(theirs.state_dict(), tmp_path / "theirs.pt")
    ours, _ = import_model("deepctr", tmp_path / "theirs.pt", data, **asked)
    assert ours.config.kind == family and ours.config.batch_norm == bool(options.get("dnn_use_bn"))
    np.testing.assert_allclose(predict(ours, data.splits["test"].x), deepctr_logits(theirs, data), atol=1e-5)


def test_deepctr_models_that_cannot_be_told_or_computed_are_refused(data, tmp_path):
    pytest.importorskip("deepctr_torch", reason="DeepCTR-Torch is in requirements-bench.txt")
    from deepctr_torch import models

    vector = deepctr_model(models.DCN, data, cross_num=2, cross_parameterization="vector", dnn_hidden_units=(8,))
    torch.save(vector.state_dict(), tmp_path / "dcn1.pt")
    with pytest.raises(CheckpointError, match="DCN v1.*this importer takes FM, AFM, DeepFM, NFM, DCN"):
        import_model("deepctr", tmp_path / "dcn1.pt", data)
    autoint = deepctr_model(models.AutoInt, data, att_layer_num=1, dnn_hidden_units=())
    torch.save(autoint.state_dict(), tmp_path / "autoint.pt")
    with pytest.raises(CheckpointError, match="--attention-heads"):
        import_model("deepctr", tmp_path / "autoint.pt", data)
    with pytest.raises(CheckpointError, match="do not divide"):
        import_model("deepctr", tmp_path / "autoint.pt", data, heads=3)


def test_a_torchfm_deepfm_on_a_csv_nobody_here_wrote_imports_from_the_cli(tmp_path):
    """A click table of its own (not generated by this project), encoded by `afm encode`, a DeepFM trained on
    the encoded files with pytorch-fm's API, imported with --from torchfm --model deepfm and checked."""
    from torchfm.model.dfm import DeepFactorizationMachineModel

    rng = np.random.default_rng(11)
    n = 1500
    frame = pd.DataFrame({"site": rng.choice(["news", "shop", "video", "mail"], n),
                          "hour": rng.integers(0, 24, n).astype(str), "os": rng.choice(["ios", "android", "web"], n),
                          "slot": rng.choice(["top", "side", "feed"], n)})
    frame["clicked"] = ((frame.site == "shop") & (frame.slot == "top") | (rng.random(n) < 0.2)).astype(int)
    frame.to_csv(tmp_path / "clicks.csv", index=False)
    env = {**os.environ, "AFM_MODELS_DIR": str(tmp_path / "models")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "afm", *a], cwd=ROOT, capture_output=True, text=True,
                                    env=env, timeout=300)
    encoded = run("encode", "--data", str(tmp_path / "clicks.csv"), "--target", "clicked", "--out",
                  str(tmp_path / "encoded"))
    assert encoded.returncode == 0, encoded.stderr
    train = pd.read_csv(tmp_path / "encoded" / "train.csv")
    fields = [c for c in train.columns if c != "label"]
    dims = [int(train[c].max()) + 1 for c in fields]
    torch.manual_seed(0)
    theirs = DeepFactorizationMachineModel(dims, 6, (16,), 0.1)
    x, y = torch.as_tensor(train[fields].to_numpy()), torch.as_tensor(train.label.to_numpy(np.float32))
    optimizer = torch.optim.Adam(theirs.parameters(), lr=0.01)
    for step in range(30):
        rows = slice(step * 64 % (len(x) - 64), step * 64 % (len(x) - 64) + 64)
        loss = torch.nn.functional.binary_cross_entropy(theirs(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    theirs.eval()
    torch.save(theirs.state_dict(), tmp_path / "deepfm.pt")
    test = pd.read_csv(tmp_path / "encoded" / "test.csv")
    with torch.no_grad():
        tx = torch.as_tensor(test[fields].to_numpy())
        embedded = theirs.embedding(tx)
        logits = (theirs.linear(tx) + theirs.fm(embedded) + theirs.mlp(embedded.view(-1, theirs.embed_output_dim)))
    imported = run("import", str(tmp_path / "deepfm.pt"), "--from", "torchfm", "--model", "deepfm", "--data",
                   str(tmp_path / "clicks.csv"), "--target", "clicked", "--vocab", str(tmp_path / "encoded"),
                   "--out", str(tmp_path / "models" / "deepfm"))
    assert imported.returncode == 0, imported.stderr
    assert "imported DeepFM (k=6, MLP 16 with batch norm, logistic loss) from torchfm" in imported.stdout
    loaded = load_model(tmp_path / "models" / "deepfm").model
    data = load_csv(tmp_path / "clicks.csv", target="clicked")
    np.testing.assert_allclose(predict(loaded, data.splits["test"].x), logits.squeeze(1).numpy(), atol=1e-5)
    guessed = run("import", str(tmp_path / "deepfm.pt"), "--from", "torchfm", "--data", str(tmp_path / "clicks.csv"),
                  "--target", "clicked", "--vocab", str(tmp_path / "encoded"), "--out", str(tmp_path / "x"))
    assert guessed.returncode == 2 and guessed.stderr.count("\n") == 1 and "--model deepfm" in guessed.stderr

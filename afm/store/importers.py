"""Models trained elsewhere, turned into ours so they can be explained: pytorch-fm's (`torchfm`) FM, AFM,
DeepFM and NFM, and DeepCTR-Torch's FM and AFM, DeepFM, NFM, DCN (matrix cross layers: DCN-v2) and AutoInt,
batch-norm statistics included. What no family here computes exactly (pytorch-fm's DCN v1 and AutoInt,
xDeepFM) is refused in one line that names what is taken.

Only a plain state dict is read, with `torch.load(weights_only=True)`: no code from the file runs.

Ids. Both libraries give each field its own ids 0..vocabulary-1. Ours are one id space over all fields;
within a field, a value's local id is the position of our feature id among the field's ids, sorted
(`field_vocabularies`). For a CSV that is what sklearn's LabelEncoder gives on each column read as text,
columns in file order; `local_ids` writes any of our datasets in that encoding, so a model trained on it
imports exactly. A field count or vocabulary size that differs from the data's is refused.

How their parameters map onto ours (logit = bias + sum w_i + p^T sum_ij a_ij v_i*v_j):
- pytorch-fm: `linear.fc` -> first-order weights, `linear.bias` -> bias, `embedding.embedding` -> v with
  the field offsets; FM's pair sum is ours with p = 1. AFM: `afm.attention` -> W, b; `afm.projection.weight`
  -> h; `afm.fc.weight` -> p, and `afm.fc.bias` joins the bias. `afm.projection.bias` adds the same number
  to every pair's score, which the softmax cancels: it is dropped, and the notes say so.
- DeepCTR-Torch: `embedding_dict.NAME` and `linear_model.embedding_dict.NAME` per field, matched to our
  fields by name; `out.bias` -> bias; `fm.attention_W` (k x t) -> W transposed, `fm.attention_b` -> b,
  `fm.projection_h` -> h, `fm.projection_p` -> p. Without attention their FM layer is the classic pair sum.
- The MLP families: pytorch-fm's MultiLayerPerceptron and DeepCTR-Torch's DNN are ours (afm.models.blocks.MLP)
  layer for layer; DeepCTR-Torch's bias-free `dnn_linear` over what a model stacks is split into our output
  units ([cross, deep] for DCN, [attention, deep] for AutoInt). A state dict does not say which of two
  architectures with the same keys it is (DeepFM and Wide&Deep), nor AutoInt's head count: --model and
  --attention-heads say it.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from afm.core.errors import CheckpointError
from afm.core.limits import available_memory
from afm.data.dataset import Dataset
from afm.data.sources import is_user_data
from afm.models import AFM_KIND, FAMILIES, FM_KIND, ModelConfig, build_model

LIBRARIES = ("torchfm", "deepctr")
LABEL = "label"  # the target's column in what `encode` writes
MAX_FILE_BYTES = 4 << 30


def field_vocabularies(dataset: Dataset) -> list[np.ndarray]:
    """Per field, our feature ids in local-id order (sorted): local id l of field f is our id vocab[f][l]."""
    return [dataset.field_values(name) for name in dataset.field_names]


def local_ids(dataset: Dataset, split: str) -> np.ndarray:
    """A split's rows in per-field ids (what pytorch-fm and DeepCTR-Torch take), (N, m)."""
    x = dataset.splits[split].x
    return np.stack([np.searchsorted(vocab, x[:, f]) for f, vocab in enumerate(field_vocabularies(dataset))], axis=1)


def write_encoded(dataset: Dataset, out: str | os.PathLike) -> list[Path]:
    """Every split as a CSV of per-field ids plus `label` (1/0 for binary data, else the target), and
    field_dims.json (each field's vocabulary size, in field order): what the other libraries train on."""
    if LABEL in dataset.field_names:  # the target would overwrite the field: a model trained on it sees the label
        raise CheckpointError(f"{dataset.name}: a field is named {LABEL!r}, the column encode writes the target to; "
                              f"rename that column (or --drop it)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in ("train", "validation", "test"):
        y = dataset.splits[split].y
        frame = pd.DataFrame(local_ids(dataset, split), columns=dataset.field_names)
        frame[LABEL] = (y > 0).astype(int) if dataset.task == "binary" else y
        frame.to_csv(out / f"{split}.csv", index=False)
        written.append(out / f"{split}.csv")
    dims = {name: len(v) for name, v in zip(dataset.field_names, field_vocabularies(dataset))}
    (out / "field_dims.json").write_text(json.dumps(dims, indent=1), encoding="utf-8")
    return written + [out / "field_dims.json"]


def _check_archive(path: Path, limit: int) -> None:
    """A torch.save file is a zip archive: refuse one whose records inflate past `limit` before reading any."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        return  # the legacy format: torch.load reads it as it is, no larger than the file
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if declared > limit:
        raise CheckpointError(f"{path}: its records inflate to {declared / 2**30:.1f} GiB, more than a state dict of "
                              f"these models may take here ({limit / 2**30:.1f} GiB)")


def _clean_message(exc: Exception) -> str:
    """The first sentence of a loader's message, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return re.split(r"(?<=[.:])\s", first, maxsplit=1)[0][:160]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A plain state dict (names to tensors) saved with torch.save; anything else is refused in one line,
    and nothing a file merely declares is allocated: the archive's records, each tensor's size, layout and
    rank are checked before any tensor is read into memory of its own."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file (a directory, a device or a pipe)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CheckpointError(f"{path}: {path.stat().st_size / 2**30:.1f} GiB is larger than a state dict of these "
                              f"models should be")
    available = available_memory()
    limit = min(MAX_FILE_BYTES, available // 2) if available else MAX_FILE_BYTES
    _check_archive(path, limit)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # noqa: BLE001 - a malformed file fails in many ways inside the (safe) unpickler
        raise CheckpointError(f"{path}: not a PyTorch state dict that loads with weights_only=True "
                              f"({_clean_message(exc)})") from None
    if isinstance(state, torch.nn.Module) or not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict; save model.state_dict()")
    if not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: not a plain state dict of tensors (save model.state_dict())")
    declared = 0
    state = {name: tensor for name, tensor in state.items()  # batch norm's step counter: never read in eval
             if not (name.endswith("num_batches_tracked") and isinstance(tensor, torch.Tensor) and tensor.dim() == 0
                     and not tensor.is_floating_point())}
    if not state:
        raise CheckpointError(f"{path}: not a plain state dict of tensors (save model.state_dict())")
    for name, tensor in state.items():
        if tensor.layout != torch.strided or tensor.is_meta:
            raise CheckpointError(f"{path}: {name} is a {tensor.layout} {'meta ' if tensor.is_meta else ''}tensor; "
                                  f"only dense tensors with values are read")
        if tensor.dim() not in (1, 2, 3) or tensor.numel() == 0:
            raise CheckpointError(f"{path}: {name} has shape {tuple(tensor.shape)}; these models' tensors are "
                                  f"vectors, matrices or stacks of matrices with at least one value")
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: {name} holds {tensor.dtype} values, not floating-point weights")
        declared += tensor.numel() * 4  # as float32, whatever its strides share
    if declared > limit:
        raise CheckpointError(f"{path}: its tensors declare {declared / 2**30:.1f} GiB, more than a state dict of "
                              f"these models may take here ({limit / 2**30:.1f} GiB)")
    out = {}
    for name, tensor in state.items():
        weights = tensor.float().contiguous()
        if not torch.isfinite(weights).all():
            raise CheckpointError(f"{path}: {name} is not finite in float32 (NaN, infinite, or beyond float32's range)")
        out[name] = weights
    return out


def _matrix_shape(state: dict, name: str, library: str) -> tuple[int, int]:
    """The (rows, columns) of a tensor that must be a matrix, before any shape is taken from it."""
    tensor = state[name]
    if tensor.dim() != 2:
        raise CheckpointError(f"{library}: {name} has shape {tuple(tensor.shape)}; it must be a matrix")
    return tuple(tensor.shape)


def _take(state: dict, name: str, shape: tuple, library: str) -> torch.Tensor:
    if name not in state:
        raise CheckpointError(f"not a {library} model this importer takes ({SUPPORTED[library]}): no {name!r} in the "
                              f"state dict")
    tensor = state.pop(name)
    if tuple(tensor.shape) != shape:
        raise CheckpointError(f"{library}: {name} has shape {tuple(tensor.shape)}, the data needs {shape}")
    return tensor


def _check_vocabularies(dataset: Dataset, sizes: list[int], library: str,
                        given: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Per field, our feature ids in the other model's local-id order: `given` (from the user's vocabulary),
    else ours (`field_vocabularies`); a field count or size that differs is refused."""
    vocabularies = field_vocabularies(dataset) if given is None else given
    if len(sizes) != len(vocabularies):
        raise CheckpointError(f"{library}: the model has {len(sizes)} fields, {dataset.name} has {len(vocabularies)}")
    for name, size, vocab in zip(dataset.field_names, sizes, vocabularies):
        if size != len(vocab):
            raise CheckpointError(f"{library}: field {name!r} has {size} values in the model and {len(vocab)} in "
                                  f"{dataset.name}; the data must be encoded as it was for training "
                                  f"(python -m afm encode)")
    return vocabularies


def _torchfm_field_sizes(state: dict, dataset: Dataset) -> list[int]:
    """pytorch-fm keeps one table with field offsets and no field sizes: the data gives them, and the table
    must have exactly their sum of rows."""
    sizes = [len(v) for v in field_vocabularies(dataset)]
    rows = _matrix_shape(state, "embedding.embedding.weight", "torchfm")[0] if "embedding.embedding.weight" in state else None
    if rows is None:
        raise CheckpointError("not a pytorch-fm FM or AFM state dict: no 'embedding.embedding.weight'")
    if rows != sum(sizes):
        raise CheckpointError(f"torchfm: the embedding table has {rows} rows, the fields of {dataset.name} have "
                              f"{sum(sizes)} values ({', '.join(map(str, sizes))}); encode the data as for "
                              f"training (python -m afm encode)")
    return sizes


SUPPORTED = {"torchfm": "FM, AFM, DeepFM (--model deepfm) and NFM",
             "deepctr": "FM, AFM, DeepFM, NFM, DCN with matrix cross layers (DCN-v2) and AutoInt"}
# Architectures a library ships that no family here computes exactly, by a key only they have.
REFUSED = {
    "torchfm": {"cn.w.0.weight": "pytorch-fm's DeepCrossNetworkModel is DCN v1 (a weight vector per cross layer, its "
                                 "bias outside the product), which DCN-v2's matrices cannot reproduce",
                "self_attns.0.in_proj_weight": "pytorch-fm's AutoInt uses nn.MultiheadAttention (projection biases, "
                                               "an output projection, scaled scores, one residual after every layer)",
                "cin.conv_layers.0.weight": "xDeepFM (CIN) is not a family here",
                "ffm.embeddings.0.weight": "a field-aware FM (FFM) is not a family here"},
    "deepctr": {"cin.conv1ds.0.weight": "xDeepFM (CIN) is not a family here",
                "fg.conv_pooling.0.weight": "FGCNN is not a family here"},
}


def _refuse_unsupported(state: dict, library: str) -> None:
    for key, why in REFUSED[library].items():
        if key in state:
            raise CheckpointError(f"{library}: {why}; this importer takes {SUPPORTED[library]}")


def _torchfm_mlp(state: dict, prefix: str, width: int) -> tuple[list[int], dict]:
    """pytorch-fm's MultiLayerPerceptron (Linear, BatchNorm1d, ReLU, Dropout per layer, then Linear(., 1)) as
    our MLP with batch norm: the same module indices."""
    sizes, tensors, index = [], {}, 0
    while f"{prefix}.{index + 1}.running_mean" in state:
        size = _matrix_shape(state, f"{prefix}.{index}.weight", "torchfm")[0]
        tensors[f"mlp.layers.{index}.weight"] = _take(state, f"{prefix}.{index}.weight", (size, width), "torchfm")
        tensors[f"mlp.layers.{index}.bias"] = _take(state, f"{prefix}.{index}.bias", (size,), "torchfm")
        for name in ("weight", "bias", "running_mean", "running_var"):
            tensors[f"mlp.layers.{index + 1}.{name}"] = _take(state, f"{prefix}.{index + 1}.{name}", (size,), "torchfm")
        sizes, width, index = sizes + [size], size, index + 4
    tensors["mlp.out.weight"] = _take(state, f"{prefix}.{index}.weight", (1, width), "torchfm")
    tensors["mlp.out.bias"] = _take(state, f"{prefix}.{index}.bias", (1,), "torchfm")
    return sizes, tensors


def _deepctr_dnn(state: dict, width: int) -> tuple[list[int], bool, dict]:
    """DeepCTR-Torch's DNN (Linear, BatchNorm1d where use_bn, activation, dropout per layer) as our MLP's hidden
    layers; its output unit is the model's `dnn_linear`, which has no bias."""
    batch_norm = "dnn.bn.0.running_mean" in state
    step, sizes, tensors, layer = (4 if batch_norm else 3), [], {}, 0
    while f"dnn.linears.{layer}.weight" in state:
        size = _matrix_shape(state, f"dnn.linears.{layer}.weight", "deepctr")[0]
        index = layer * step
        tensors[f"mlp.layers.{index}.weight"] = _take(state, f"dnn.linears.{layer}.weight", (size, width), "deepctr")
        tensors[f"mlp.layers.{index}.bias"] = _take(state, f"dnn.linears.{layer}.bias", (size,), "deepctr")
        if batch_norm:
            for name in ("weight", "bias", "running_mean", "running_var"):
                tensors[f"mlp.layers.{index + 1}.{name}"] = _take(state, f"dnn.bn.{layer}.{name}", (size,), "deepctr")
        sizes, width, layer = sizes + [size], size, layer + 1
    return sizes, batch_norm, tensors


def _detected(found: str, asked: str | None, library: str) -> str:
    if asked is not None and asked != found:
        raise CheckpointError(f"{library}: the state dict is a {FAMILIES[found].label}, not --model {asked}")
    return found


def import_torchfm(state: dict, dataset: Dataset, vocab=None, kind: str | None = None) -> tuple[torch.nn.Module, list[str]]:
    state = dict(state)
    _refuse_unsupported(state, "torchfm")
    sizes = _torchfm_field_sizes(state, dataset)
    vocabularies = _check_vocabularies(dataset, sizes, "torchfm", vocab)
    rows, k = _matrix_shape(state, "embedding.embedding.weight", "torchfm")
    m = len(sizes)
    embedding = _take(state, "embedding.embedding.weight", (rows, k), "torchfm")
    linear = _take(state, "linear.fc.weight", (rows, 1), "torchfm")
    bias = _take(state, "linear.bias", (1,), "torchfm")
    notes, settings_, tensors = [], {}, {}
    if "afm.attention.weight" in state:
        t = _matrix_shape(state, "afm.attention.weight", "torchfm")[0]
        tensors = {"attention_W": _take(state, "afm.attention.weight", (t, k), "torchfm"),
                   "attention_b": _take(state, "afm.attention.bias", (t,), "torchfm"),
                   "attention_h": _take(state, "afm.projection.weight", (1, t), "torchfm").reshape(t)}
        dropped = float(_take(state, "afm.projection.bias", (1,), "torchfm"))
        tensors["p"] = _take(state, "afm.fc.weight", (1, k), "torchfm").reshape(k)
        bias = bias + _take(state, "afm.fc.bias", (1,), "torchfm")
        notes.append(f"dropped afm.projection.bias ({dropped:+.4g}): it adds the same number to every pair's "
                     f"attention score, which the softmax cancels")
        notes.append("pytorch-fm's AFM applies dropout also in eval mode (F.dropout without training=); "
                     "with dropouts above 0 its own predictions are random, ours are its expectation")
        found, settings_ = _detected(AFM_KIND, kind, "torchfm"), {"attention_factor": t}
    elif "fm.1.running_mean" in state:  # NFM: Sequential(FM pooling, BatchNorm1d(k), Dropout), then the MLP
        tensors = {f"pooled_norm.{name}": _take(state, f"fm.1.{name}", (k,), "torchfm")
                   for name in ("weight", "bias", "running_mean", "running_var")}
        hidden, mlp = _torchfm_mlp(state, "mlp.mlp", k)
        tensors.update(mlp)
        found, settings_ = _detected("nfm", kind, "torchfm"), {"hidden_layers": _sizes(hidden), "batch_norm": True}
    elif "mlp.mlp.0.weight" in state:
        if kind is None:
            raise CheckpointError("torchfm: these keys fit pytorch-fm's DeepFM and its Wide&Deep alike (an FM part "
                                  "has no parameters); say which it is: --model deepfm")
        if kind != "deepfm":
            raise CheckpointError(f"torchfm: an MLP beside first-order weights is DeepFM or Wide&Deep, not --model "
                                  f"{kind}; this importer takes {SUPPORTED['torchfm']}")
        if _matrix_shape(state, "mlp.mlp.0.weight", "torchfm")[1] != m * k:  # PNN's MLP also reads pair products
            raise CheckpointError(f"torchfm: an MLP over {state['mlp.mlp.0.weight'].shape[1]} inputs is not DeepFM's "
                                  f"(its {m} fields of {k}); this importer takes {SUPPORTED['torchfm']}")
        hidden, tensors = _torchfm_mlp(state, "mlp.mlp", m * k)
        found, settings_ = "deepfm", {"hidden_layers": _sizes(hidden), "batch_norm": True}
    else:
        found = _detected(FM_KIND, kind, "torchfm")
    if state:
        raise CheckpointError(f"torchfm: unexpected {', '.join(sorted(state)[:3])}; this importer takes "
                              f"{SUPPORTED['torchfm']}")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    order = torch.as_tensor(np.concatenate([offsets[f] + np.arange(len(v)) for f, v in enumerate(vocabularies)]))
    ours = torch.as_tensor(np.concatenate(vocabularies))
    return _assemble(dataset, found, k, settings_, bias, linear[order], embedding[order], ours, tensors), notes


def _sizes(hidden: list[int]) -> str:
    return ",".join(map(str, hidden))


def import_deepctr(state: dict, dataset: Dataset, vocab=None, kind: str | None = None,
                   heads: int | None = None) -> tuple[torch.nn.Module, list[str]]:
    state = dict(state)
    _refuse_unsupported(state, "deepctr")
    names = dataset.field_names
    missing = [n for n in names if f"embedding_dict.{n}.weight" not in state]
    if missing:
        raise CheckpointError(f"deepctr: no embedding for field(s) {', '.join(map(repr, missing[:3]))}; their "
                              f"SparseFeat names must be the data's field names ({', '.join(names[:6])}...)")
    sizes = [_matrix_shape(state, f"embedding_dict.{n}.weight", "deepctr")[0] for n in names]
    vocabularies = _check_vocabularies(dataset, sizes, "deepctr", vocab)
    k = _matrix_shape(state, f"embedding_dict.{names[0]}.weight", "deepctr")[1]
    m = len(names)
    embeddings = [_take(state, f"embedding_dict.{n}.weight", (s, k), "deepctr") for n, s in zip(names, sizes)]
    linears = [_take(state, f"linear_model.embedding_dict.{n}.weight", (s, 1), "deepctr") for n, s in zip(names, sizes)]
    bias = _take(state, "out.bias", (1,), "deepctr")
    notes, settings_, tensors = [], {}, {}
    if "fm.attention_W" in state:
        t = _matrix_shape(state, "fm.attention_W", "deepctr")[1]
        tensors = {"attention_W": _take(state, "fm.attention_W", (k, t), "deepctr").T.contiguous(),
                   "attention_b": _take(state, "fm.attention_b", (t,), "deepctr"),
                   "attention_h": _take(state, "fm.projection_h", (t, 1), "deepctr").reshape(t),
                   "p": _take(state, "fm.projection_p", (k, 1), "deepctr").reshape(k)}
        found, settings_ = _detected(AFM_KIND, kind, "deepctr"), {"attention_factor": t}
    elif "dnn_linear.weight" in state:
        found, settings_, tensors, notes = _deepctr_deep(state, m, k, kind, heads)
    else:
        found = _detected(FM_KIND, kind, "deepctr")
        notes.append("no attention layer and no DNN: imported as a classic FM (DeepCTR-Torch's AFM with "
                     "use_attention=False, or its DeepFM without hidden layers)")
    if state:
        raise CheckpointError(f"deepctr: unexpected {', '.join(sorted(state)[:3])} (dense features and extra columns "
                              f"are not supported); this importer takes {SUPPORTED['deepctr']}")
    ours = torch.as_tensor(np.concatenate(vocabularies))
    return _assemble(dataset, found, k, settings_, bias, torch.cat(linears), torch.cat(embeddings), ours, tensors), notes


def _deepctr_deep(state: dict, m: int, k: int, kind: str | None, heads: int | None):
    """DeepCTR-Torch's DeepFM, NFM, DCN and AutoInt: each ends in `dnn_linear`, a bias-free unit over what the
    model stacks (DCN: [cross, deep]; AutoInt: [attention, deep])."""
    notes = []
    if "int_layers.0.W_Query" in state:  # AutoInt
        if heads is None:
            raise CheckpointError("deepctr: an AutoInt's head count is not in its state dict; give it with "
                                  "--attention-heads (DeepCTR-Torch's default is 2)")
        if heads < 1 or k % heads:
            raise CheckpointError(f"deepctr: {heads} heads do not divide the embedding size {k}")
        tensors, layer = {}, 0
        while f"int_layers.{layer}.W_Query" in state:
            for theirs, ours in (("W_Query", "query"), ("W_key", "key"), ("W_Value", "value")):
                tensors[f"interacting.{layer}.{ours}"] = _take(state, f"int_layers.{layer}.{theirs}", (k, k), "deepctr")
            residual = f"int_layers.{layer}.W_Res"
            tensors[f"interacting.{layer}.residual"] = (_take(state, residual, (k, k), "deepctr") if residual in state
                                                        else torch.zeros(k, k))
            layer += 1
        hidden, batch_norm, mlp = _deepctr_dnn(state, m * k)
        joined = m * k + (hidden[-1] if hidden else 0)
        out = _take(state, "dnn_linear.weight", (1, joined), "deepctr")
        tensors.update({"out.weight": out[:, :m * k], "out.bias": torch.zeros(1), **mlp})
        if hidden:
            tensors.update({"mlp.out.weight": out[:, m * k:], "mlp.out.bias": torch.zeros(1)})
        notes.append("DeepCTR-Torch's AutoInt default scaling=False is assumed (unscaled scores, as the paper); "
                     "--check proves it on rows of your own")
        return _detected("autoint", kind, "deepctr"), {
            "hidden_layers": _sizes(hidden), "batch_norm": batch_norm, "attention_layers": layer,
            "attention_heads": heads, "head_size": k // heads}, tensors, notes
    if "crossnet.kernels" in state:  # DCN
        kernels = state["crossnet.kernels"]
        if kernels.dim() != 3 or kernels.shape[1] != kernels.shape[2]:
            raise CheckpointError("deepctr: a DCN with parameterization='vector' is DCN v1, which DCN-v2's matrices "
                                  f"cannot reproduce; this importer takes {SUPPORTED['deepctr']}")
        layers, width = kernels.shape[0], m * k
        tensors = {"cross.kernels": _take(state, "crossnet.kernels", (layers, width, width), "deepctr"),
                   "cross.bias": _take(state, "crossnet.bias", (layers, width, 1), "deepctr").squeeze(-1)}
        hidden, batch_norm, mlp = _deepctr_dnn(state, width)
        joined = width + (hidden[-1] if hidden else 0)
        tensors.update({**mlp, "out.weight": _take(state, "dnn_linear.weight", (1, joined), "deepctr"),
                        "out.bias": torch.zeros(1)})
        return _detected("dcn", kind, "deepctr"), {
            "hidden_layers": _sizes(hidden), "batch_norm": batch_norm, "cross_layers": layers,
            "cross_structure": "parallel"}, tensors, notes
    first = _matrix_shape(state, "dnn.linears.0.weight", "deepctr")[1] if "dnn.linears.0.weight" in state else None
    if first == k and m > 1:  # the DNN reads the bi-interaction vector (k): NFM
        found = _detected("nfm", kind, "deepctr")
    elif first == m * k:  # the DNN reads every field's embedding: DeepFM (or Wide&Deep, which has the same keys)
        if kind is None:
            raise CheckpointError("deepctr: these keys fit DeepCTR-Torch's DeepFM and its WDL (Wide&Deep) alike; "
                                  "say which it is: --model deepfm")
        found = _detected("deepfm", kind, "deepctr")
    else:
        raise CheckpointError(f"deepctr: a DNN over {first} inputs is none of {SUPPORTED['deepctr']} over these "
                              f"{m} fields of {k}")
    hidden, batch_norm, mlp = _deepctr_dnn(state, first)
    tensors = {**mlp, "mlp.out.weight": _take(state, "dnn_linear.weight", (1, hidden[-1]), "deepctr"),
               "mlp.out.bias": torch.zeros(1)}
    return found, {"hidden_layers": _sizes(hidden), "batch_norm": batch_norm}, tensors, notes  # NFM: DNN without BN


def _assemble(dataset: Dataset, kind: str, k: int, settings_: dict, bias, linear, embedding, ours, tensors: dict):
    """Our model with their parameters: rows scattered to our feature ids (ids of no field stay zero), every
    other tensor by our state-dict name."""
    config = ModelConfig(kind=kind, num_features=dataset.num_features, num_fields=dataset.num_fields, embed_dim=k,
                         loss="logistic", **settings_)
    model = build_model(config)
    state = model.state_dict()
    for name, value in tensors.items():
        if name not in state or tuple(state[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{config.label}: {name} of shape {tuple(value.shape)} does not fit this "
                                  f"model ({config.describe()})")
        state[name] = value.float()
    with torch.no_grad():
        state["bias"] = bias.reshape(1).float()
        state["linear.weight"] = torch.zeros_like(state["linear.weight"]).index_copy_(0, ours, linear.float())
        state["embedding.weight"] = torch.zeros_like(state["embedding.weight"]).index_copy_(0, ours, embedding.float())
    model.load_state_dict(state)
    return model.eval()


IMPORTERS = {"torchfm": import_torchfm, "deepctr": import_deepctr}
VOCAB_FILE = "vocab.json"
CHECK_TOLERANCE = 1e-4  # logits of two float32 implementations of one model agree far closer than this


def write_vocab(dataset: Dataset, out: str | os.PathLike) -> Path:
    """vocab.json: per field, its values in local-id order (value l has per-field id l), as `afm encode`
    writes the ids; what `afm import --vocab` reads back."""
    path = Path(out) / VOCAB_FILE
    names = dataset.feature_names
    vocab = {field: [names[i].split("=", 1)[1] for i in ids]
             for field, ids in zip(dataset.field_names, field_vocabularies(dataset))}
    path.write_text(json.dumps(vocab, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def read_vocab(path: str | os.PathLike, dataset: Dataset) -> list[np.ndarray]:
    """A vocabulary the other model was trained with: JSON mapping each field to its values in local-id order
    (sklearn's LabelEncoder.classes_; a folder `afm encode` wrote holds one). Per field, our feature ids in
    that order; every value must be the data's, and every value of the data must be there."""
    path = Path(path)
    if path.is_dir():
        path = path / VOCAB_FILE
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path}: not a readable vocabulary JSON ({type(exc).__name__})") from None
    if not isinstance(vocab, dict) or not all(isinstance(v, list) for v in vocab.values()):
        raise CheckpointError(f"{path}: a vocabulary maps each field to the list of its values in id order")
    index = {name: i for i, name in enumerate(dataset.feature_names)}
    out = []
    for field, ours in zip(dataset.field_names, field_vocabularies(dataset)):
        if field not in vocab:
            raise CheckpointError(f"{path}: no values for field {field!r}")
        values = [str(v) for v in vocab[field]]
        ids = [index.get(f"{field}={v}") for v in values]
        unknown = [v for v, i in zip(values, ids) if i is None]
        if unknown or len(set(values)) != len(values) or set(ids) != set(ours.tolist()):
            missing = sorted(set(ours.tolist()) - set(i for i in ids if i is not None))
            detail = (f"values not in the data: {', '.join(map(repr, unknown[:3]))}" if unknown else
                      "a value twice" if len(set(values)) != len(values) else
                      f"values of the data it lacks: {', '.join(repr(dataset.feature_names[i].split('=', 1)[1]) for i in missing[:3])}")
            raise CheckpointError(f"{path}: field {field!r} does not match the data ({detail})")
        out.append(np.asarray(ids, dtype=np.int64))
    return out


def ids_are_proven(dataset: Dataset) -> bool:
    """Whether the data itself fixes each field's per-field ids: data of our own (its per-field ids are the
    ones `afm encode` writes), or a user's table whose every field is already the ids 0..n-1."""
    if not is_user_data(dataset.source.get("kind", "")):
        return True
    names = dataset.feature_names
    for field, ids in zip(dataset.field_names, field_vocabularies(dataset)):
        if [names[i].split("=", 1)[1] for i in ids] != [str(v) for v in range(len(ids))]:
            return False
    return True


def check_logits(model: torch.nn.Module, path: str | os.PathLike, dataset: Dataset,
                 tolerance: float = CHECK_TOLERANCE) -> dict:
    """Compare the imported model with the other library's own outputs on rows the user names: a CSV with
    one column per field holding the rows' values as the data has them (not ids: the ids are what is being
    proven) and the other model's `logit` (or `probability`) per row. Refused where any row differs by more
    than `tolerance` in the logit."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable CSV ({type(exc).__name__})") from None
    missing = [f for f in dataset.field_names if f not in frame.columns]
    if missing or not ({"logit", "probability"} & set(frame.columns)):
        raise CheckpointError(f"{path}: a check file has one column per field ({', '.join(dataset.field_names[:4])}...) "
                              f"with the rows' values, and 'logit' or 'probability'"
                              + (f"; missing {', '.join(missing[:3])}" if missing else ""))
    index = {name: i for i, name in enumerate(dataset.feature_names)}
    x = np.empty((len(frame), dataset.num_fields), dtype=np.int64)
    for f, field in enumerate(dataset.field_names):
        for row, value in enumerate(frame[field]):
            feature = index.get(f"{field}={value}")
            if feature is None:
                raise CheckpointError(f"{path}: row {row + 2}: {field}={value!r} is not a value of the data")
            x[row, f] = feature
    try:
        score = frame["logit" if "logit" in frame else "probability"].astype(float).to_numpy()
    except ValueError:
        raise CheckpointError(f"{path}: its logit/probability column is not numeric") from None
    theirs = score if "logit" in frame else np.log(np.clip(score, 1e-12, 1 - 1e-12) / (1 - np.clip(score, 1e-12, 1 - 1e-12)))
    with torch.no_grad():
        ours = model.predict(torch.as_tensor(x)).double().numpy()
    gap = np.abs(ours - theirs)
    worst = int(np.argmax(gap))
    if gap[worst] > tolerance:
        raise CheckpointError(f"{path}: row {worst + 2}: the imported model's logit {ours[worst]:+.5f} differs from "
                              f"the file's {theirs[worst]:+.5f}; the ids do not line up (give the vocabulary it was "
                              f"trained with: --vocab)")
    return {"rows": len(frame), "max_abs_difference": float(gap.max())}


def import_model(library: str, path: str | os.PathLike, dataset: Dataset, vocab: str | os.PathLike | None = None,
                 check: str | os.PathLike | None = None, kind: str | None = None,
                 heads: int | None = None) -> tuple[torch.nn.Module, list[str]]:
    """Our FM or AFM (logistic loss: both libraries train click models with a sigmoid) from another
    library's state dict, and notes on what was dropped or assumed. The ids must be proven: by the data
    (`ids_are_proven`), by the vocabulary the model was trained with (`vocab`), or by its own logits on
    rows the user names (`check`); otherwise the import is refused, since any value order of the same
    sizes would pass unseen."""
    if library not in IMPORTERS:
        raise CheckpointError(f"--from takes {' or '.join(LIBRARIES)}, not {library!r}")
    if vocab is None and check is None and not ids_are_proven(dataset):
        raise CheckpointError(f"{dataset.name}: the per-field ids the model was trained with cannot be told from this "
                              f"data (any value order of the same sizes would pass); give --vocab FILE (each field's "
                              f"values in id order, e.g. LabelEncoder.classes_) or --check FILE (rows and the model's "
                              f"logits)")
    given = read_vocab(vocab, dataset) if vocab is not None else None
    options = {"heads": heads} if library == "deepctr" else {}
    model, notes = IMPORTERS[library](read_state_dict(path), dataset, given, kind, **options)
    if check is not None:
        checked = check_logits(model, check, dataset)
        notes.append(f"checked against {Path(check).name}: {checked['rows']} rows, logits within "
                     f"{checked['max_abs_difference']:.1e}")
    return model, notes

"""Models trained elsewhere, turned into ours so they can be explained: pytorch-fm's (`torchfm`)
FactorizationMachineModel and AttentionalFactorizationMachineModel, and DeepCTR-Torch's AFM (with or
without attention).

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
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from afm.core.errors import CheckpointError
from afm.data.dataset import Dataset
from afm.models import AFM_KIND, FM_KIND, ModelConfig, build_model

LIBRARIES = ("torchfm", "deepctr")
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
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in ("train", "validation", "test"):
        y = dataset.splits[split].y
        frame = pd.DataFrame(local_ids(dataset, split), columns=dataset.field_names)
        frame["label"] = (y > 0).astype(int) if dataset.task == "binary" else y
        frame.to_csv(out / f"{split}.csv", index=False)
        written.append(out / f"{split}.csv")
    dims = {name: len(v) for name, v in zip(dataset.field_names, field_vocabularies(dataset))}
    (out / "field_dims.json").write_text(json.dumps(dims, indent=1), encoding="utf-8")
    return written + [out / "field_dims.json"]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A plain state dict (names to tensors) saved with torch.save; anything else is refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CheckpointError(f"{path}: {path.stat().st_size / 2**30:.1f} GiB is larger than a state dict of these "
                              f"models should be")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a malformed file fails in many ways inside the (safe) unpickler
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a PyTorch state dict that loads with weights_only=True ({first})") from None
    if isinstance(state, torch.nn.Module) or not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict; save model.state_dict()")
    if not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: not a plain state dict of tensors (save model.state_dict())")
    for name, tensor in state.items():
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: {name} is not a finite floating-point tensor")
    return {k: v.float() for k, v in state.items()}


def _take(state: dict, name: str, shape: tuple, library: str) -> torch.Tensor:
    if name not in state:
        raise CheckpointError(f"not a {library} model this importer knows: no {name!r} in the state dict")
    tensor = state.pop(name)
    if tuple(tensor.shape) != shape:
        raise CheckpointError(f"{library}: {name} has shape {tuple(tensor.shape)}, the data needs {shape}")
    return tensor


def _check_vocabularies(dataset: Dataset, sizes: list[int], library: str) -> list[np.ndarray]:
    vocabularies = field_vocabularies(dataset)
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
    rows = state["embedding.embedding.weight"].shape[0] if "embedding.embedding.weight" in state else None
    if rows is None:
        raise CheckpointError("not a pytorch-fm FM or AFM state dict: no 'embedding.embedding.weight'")
    if rows != sum(sizes):
        raise CheckpointError(f"torchfm: the embedding table has {rows} rows, the fields of {dataset.name} have "
                              f"{sum(sizes)} values ({', '.join(map(str, sizes))}); encode the data as for "
                              f"training (python -m afm encode)")
    return sizes


def import_torchfm(state: dict, dataset: Dataset) -> tuple[torch.nn.Module, list[str]]:
    state = dict(state)
    sizes = _torchfm_field_sizes(state, dataset)
    vocabularies = _check_vocabularies(dataset, sizes, "torchfm")
    rows, k = state["embedding.embedding.weight"].shape
    embedding = _take(state, "embedding.embedding.weight", (rows, k), "torchfm")
    linear = _take(state, "linear.fc.weight", (rows, 1), "torchfm")
    bias = _take(state, "linear.bias", (1,), "torchfm")
    notes = []
    if "afm.attention.weight" in state:
        t = state["afm.attention.weight"].shape[0]
        W = _take(state, "afm.attention.weight", (t, k), "torchfm")
        b = _take(state, "afm.attention.bias", (t,), "torchfm")
        h = _take(state, "afm.projection.weight", (1, t), "torchfm").reshape(t)
        dropped = float(_take(state, "afm.projection.bias", (1,), "torchfm"))
        p = _take(state, "afm.fc.weight", (1, k), "torchfm").reshape(k)
        bias = bias + _take(state, "afm.fc.bias", (1,), "torchfm")
        notes.append(f"dropped afm.projection.bias ({dropped:+.4g}): it adds the same number to every pair's "
                     f"attention score, which the softmax cancels")
        notes.append("pytorch-fm's AFM applies dropout also in eval mode (F.dropout without training=); "
                     "with dropouts above 0 its own predictions are random, ours are its expectation")
        extra = {"attention_W": W, "attention_b": b, "attention_h": h, "p": p}
        kind, t_config = AFM_KIND, t
    else:
        kind, extra, t_config = FM_KIND, {}, None
    if state:
        raise CheckpointError(f"not a pytorch-fm FM or AFM state dict: unexpected {sorted(state)[:3]}")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    order = torch.as_tensor(np.concatenate([offsets[f] + np.arange(len(v)) for f, v in enumerate(vocabularies)]))
    ours = torch.as_tensor(np.concatenate(vocabularies))
    return _assemble(dataset, kind, k, t_config, bias, linear[order], embedding[order], ours, extra), notes


def import_deepctr(state: dict, dataset: Dataset) -> tuple[torch.nn.Module, list[str]]:
    state = dict(state)
    names = dataset.field_names
    missing = [n for n in names if f"embedding_dict.{n}.weight" not in state]
    if missing:
        raise CheckpointError(f"deepctr: no embedding for field(s) {', '.join(map(repr, missing[:3]))}; their "
                              f"SparseFeat names must be the data's field names ({', '.join(names[:6])}...)")
    sizes = [state[f"embedding_dict.{n}.weight"].shape[0] for n in names]
    vocabularies = _check_vocabularies(dataset, sizes, "deepctr")
    k = state[f"embedding_dict.{names[0]}.weight"].shape[1]
    embeddings = [_take(state, f"embedding_dict.{n}.weight", (s, k), "deepctr") for n, s in zip(names, sizes)]
    linears = [_take(state, f"linear_model.embedding_dict.{n}.weight", (s, 1), "deepctr") for n, s in zip(names, sizes)]
    bias = _take(state, "out.bias", (1,), "deepctr")
    notes = []
    if "fm.attention_W" in state:
        t = state["fm.attention_W"].shape[1]
        extra = {"attention_W": _take(state, "fm.attention_W", (k, t), "deepctr").T.contiguous(),
                 "attention_b": _take(state, "fm.attention_b", (t,), "deepctr"),
                 "attention_h": _take(state, "fm.projection_h", (t, 1), "deepctr").reshape(t),
                 "p": _take(state, "fm.projection_p", (k, 1), "deepctr").reshape(k)}
        kind, t_config = AFM_KIND, t
    else:
        kind, extra, t_config = FM_KIND, {}, None
        notes.append("no attention layer (use_attention=False): imported as a classic FM")
    if state:
        raise CheckpointError(f"not a DeepCTR-Torch AFM over exactly the data's fields: unexpected "
                              f"{', '.join(sorted(state)[:3])} (dense features and extra columns are not supported)")
    ours = torch.as_tensor(np.concatenate(vocabularies))
    return _assemble(dataset, kind, k, t_config, bias, torch.cat(linears), torch.cat(embeddings), ours, extra), notes


def _assemble(dataset: Dataset, kind: str, k: int, t: int | None, bias, linear, embedding, ours, extra: dict):
    """Our model with their parameters: rows scattered to our feature ids (ids of no field stay zero)."""
    config = ModelConfig(kind=kind, num_features=dataset.num_features, num_fields=dataset.num_fields, embed_dim=k,
                         loss="logistic", **({"attention_factor": t} if t else {}))
    model = build_model(config)
    with torch.no_grad():
        model.bias.copy_(bias.reshape(1))
        model.linear.weight.zero_()
        model.embedding.weight.zero_()
        model.linear.weight[ours] = linear
        model.embedding.weight[ours] = embedding
        for name, value in extra.items():
            getattr(model, name).copy_(value)
    return model.eval()


IMPORTERS = {"torchfm": import_torchfm, "deepctr": import_deepctr}


def import_model(library: str, path: str | os.PathLike, dataset: Dataset) -> tuple[torch.nn.Module, list[str]]:
    """Our FM or AFM (logistic loss: both libraries train click models with a sigmoid) from another
    library's state dict, and notes on what was dropped or assumed."""
    if library not in IMPORTERS:
        raise CheckpointError(f"--from takes {' or '.join(LIBRARIES)}, not {library!r}")
    return IMPORTERS[library](read_state_dict(path), dataset)

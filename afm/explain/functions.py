"""Explain any model given only as a function: a predict function over per-field ids (what pytorch-fm,
DeepCTR-Torch or a model of one's own takes), or a TorchScript module file (loaded without running any
pickled code). The function-level interaction (afm.explain.interactions) needs nothing but predictions.

    import afm.explain.functions as fx
    table = fx.function_interactions(my_model_predict, x_ids, ["user", "item", "hour"])

`x_ids` is (N, m): row n's per-field id of each field, 0..size-1 per field.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from afm.core.errors import AFMError, CheckpointError
from afm.data.dataset import Dataset, Split
from afm.explain.interactions import DEFAULT_REFERENCES, interactions, pair_strength


class FunctionModel(torch.nn.Module):
    """A predict function over per-field ids, as a model over our global ids (per-field offsets), so every
    function-level measure can call it as it calls our models."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], sizes: list[int]):
        super().__init__()
        self._predict = predict
        self.register_buffer("offsets", torch.as_tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), dtype=torch.long))
        self.config = None  # no parameters to read: every measure goes through predict

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        local = (x - self.offsets).cpu().numpy()
        out = np.asarray(self._predict(local), dtype=np.float64).reshape(-1)
        if out.shape[0] != x.shape[0]:
            raise AFMError(f"the predict function returned {out.shape[0]} values for {x.shape[0]} rows")
        if not np.isfinite(out).all():
            raise AFMError("the predict function returned a value that is not finite")
        return torch.as_tensor(out, dtype=torch.float32)


def ids_dataset(x_ids: np.ndarray, field_names: list[str], name: str = "rows") -> Dataset:
    """Rows of per-field ids as a dataset (every split the same rows; only their x is read)."""
    x_ids = np.asarray(x_ids)
    if x_ids.ndim != 2 or x_ids.shape[1] != len(field_names):
        raise AFMError(f"the rows must be (N, {len(field_names)}) per-field ids, one column per field; got {x_ids.shape}")
    if not np.issubdtype(x_ids.dtype, np.integer) or (x_ids < 0).any():
        raise AFMError("per-field ids are whole numbers from 0")
    sizes = [int(x_ids[:, f].max()) + 1 for f in range(x_ids.shape[1])]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    x = (x_ids + offsets).astype(np.int64)
    names = [f"{field}={v}" for field, size in zip(field_names, sizes) for v in range(size)]
    split = Split(x, np.zeros(len(x), dtype=np.float32))
    return Dataset(name=name, field_names=list(field_names), feature_names=names,
                   splits={"train": split, "validation": split, "test": split}, source={"kind": "rows"})


def function_interactions(predict: Callable[[np.ndarray], np.ndarray], x_ids: np.ndarray, field_names: list[str],
                          sample: int | None = 2000, reference_count: int = DEFAULT_REFERENCES,
                          seed: int = 0) -> pd.DataFrame:
    """Per field pair of any model given as `predict` (per-field ids (N, m) -> scores (N,)): the mean
    |mixed difference| over a seeded sample of the rows and R references drawn from them, strongest first
    (`pair_strength`), with `changed_share`: the same measure averaged only over references that change both
    fields (a pair of many-valued fields does not look strong for that alone)."""
    data = ids_dataset(x_ids, field_names)
    sizes = [len(data.field_values(f)) for f in field_names]
    result = interactions(FunctionModel(predict, sizes), data, "test", sample, reference_count, seed)
    table = pair_strength(result)
    changed = np.nanmean(np.abs(result.both_changed()), axis=0)
    by_pair = {pair: value for pair, value in zip(result.pairs, changed)}
    table["mean_abs_interaction_changed"] = [by_pair[(a, b)] for a, b in zip(table.field_a, table.field_b)]
    return table


def load_torchscript(path: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
    """A TorchScript module file (torch.jit.save) as a predict function: TorchScript holds code as its own
    graph, so loading it runs no pickled Python. It must take a LongTensor (N, m) of per-field ids and give
    (N,) or (N, 1) scores."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001 - a file that is not TorchScript fails in many ways
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a TorchScript module (save it with torch.jit.save(torch.jit.script(m))): "
                              f"{first}") from None

    def predict(x_ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.as_tensor(x_ids, dtype=torch.long)).float().reshape(-1).numpy()

    return predict

"""Null data: a dataset with its train and validation labels permuted (test untouched). A model trained on
it can only fit noise, so what it "finds" is what any model of these fields would show: the baseline an
explanation must beat (`python -m afm train --permute-labels`). The source records the original's plus
`permute_labels`, so `afm.data.sources.load_dataset` rebuilds the null data exactly."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from afm.core.errors import DataError
from afm.data.dataset import Dataset, Split

NULL_SPLITS = ("train", "validation")  # validation too: early stopping fits the noise as well as it can
KEY = "permute_labels"


def permute_labels(dataset: Dataset, seed: int) -> Dataset:
    """The same rows, each of the train and validation splits' labels permuted with a seeded generator."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"the null data's permutation seed must be a whole number of at least 0, not {seed!r:.40}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    splits = {name: Split(part.x, rng.permutation(part.y) if name in NULL_SPLITS else part.y)
              for name, part in dataset.splits.items()}
    return replace(dataset, splits=splits, source={**dataset.source, KEY: int(seed)},
                   notes=f"null data: train and validation labels permuted (seed {seed}). {dataset.notes}".strip())


def is_null(source: dict) -> bool:
    """Whether a recorded source is null data."""
    return isinstance(source, dict) and KEY in source


def original_source(source: dict) -> dict:
    """The recorded source of the data a null dataset permutes (any other source unchanged)."""
    return {k: v for k, v in source.items() if k != KEY} if isinstance(source, dict) else source

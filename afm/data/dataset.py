"""The one in-memory form of every data source: integer feature ids, labels, names and splits."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from afm.core.errors import DataError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """N instances with m fields: `x[n, f]` is the id of the one active feature of field f."""

    x: np.ndarray  # (N, m) int64, or a prepared split's MappedIds (read a few rows at a time)
    y: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.y)

    @property
    def streamed(self) -> bool:
        """Whether the ids stay on disk (a prepared click log): read them in chunks, never whole."""
        return not isinstance(self.x, np.ndarray)


@dataclass(eq=False)
class Dataset:
    """Feature ids are global (one id space over all fields), as in libfm files.

    `source` is a JSON-able description from which `afm.data.load_dataset` rebuilds the same data;
    model checkpoints store it with `fingerprint` so explanations reuse the data a model saw.
    """

    name: str
    field_names: list[str]
    feature_names: list[str]
    splits: dict[str, Split]
    source: dict
    task: str = "binary"  # "binary" (labels -1/+1) or "regression"
    planted_pairs: list[tuple[str, str]] = field(default_factory=list)
    notes: str = ""
    planted_effects: dict = field(default_factory=dict, repr=False)  # (a, b) -> what the pair adds, by values
    latent: object = field(default=None, repr=False)  # generated data: its latent score (afm.data.synthetic)
    digest: str = ""  # a prepared dataset's fingerprint, from its record (its ids are not hashed again)
    field_sizes: list[int] = field(default_factory=list)  # a prepared dataset's vocabulary sizes, in field order
    sampled: dict = field(default_factory=dict)  # a seeded sample of a larger dataset: {"seed", "rows", "of"}

    def __post_init__(self):
        m, n_feat = len(self.field_names), len(self.feature_names)
        if m < 2:
            raise DataError(f"{self.name}: at least 2 fields are needed for pairwise interactions, found {m}")
        for split_name in SPLITS:
            if split_name not in self.splits:
                raise DataError(f"{self.name}: the {split_name} split is missing")
            part = self.splits[split_name]
            if len(part) == 0:
                raise DataError(f"{self.name}: the {split_name} split is empty")
            if part.x.ndim != 2 or part.x.shape[1] != m:
                raise DataError(f"{self.name}: the {split_name} split has {part.x.shape[-1]} fields, expected {m}")
            if part.streamed:
                continue  # ids written by prepare within each field's vocabulary; not read whole to check
            if part.x.min() < 0 or part.x.max() >= n_feat:
                raise DataError(f"{self.name}: the {split_name} split has feature ids outside 0..{n_feat - 1}")
            if not np.isfinite(part.y).all():
                raise DataError(f"{self.name}: the {split_name} split has labels that are NaN or infinite")
        if not self.streamed:
            self._check_fields_disjoint()
        elif sum(self.field_sizes) != n_feat:
            raise DataError(f"{self.name}: the field vocabularies hold {sum(self.field_sizes)} values, not {n_feat}")
        for a, b in self.planted_pairs:
            if a not in self.field_names or b not in self.field_names:
                raise DataError(f"{self.name}: planted pair ({a}, {b}) names an unknown field")

    def _check_fields_disjoint(self) -> None:
        """Each feature belongs to one field: a line whose features are not one per field, in field order,
        puts one feature id in two columns."""
        seen = np.full(self.num_features, -1, dtype=np.int64)
        for f in range(self.num_fields):
            ids = np.unique(np.concatenate([part.x[:, f] for part in self.splits.values()]))
            clash = ids[(seen[ids] >= 0) & (seen[ids] != f)]
            if len(clash):
                other = self.field_names[int(seen[clash[0]])]
                raise DataError(f"{self.name}: feature {self.feature_names[clash[0]]!r} occurs in fields {other!r} "
                                f"and {self.field_names[f]!r}; each line needs one feature per field, in field order")
            seen[ids] = f

    @property
    def streamed(self) -> bool:
        """Whether the splits stay on disk: training and evaluation read them in chunks (afm.data.mapped)."""
        return any(part.streamed for part in self.splits.values())

    @property
    def num_fields(self) -> int:
        return len(self.field_names)

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def num_pairs(self) -> int:
        return self.num_fields * (self.num_fields - 1) // 2

    @cached_property
    def label_range(self) -> tuple[float, float]:
        """Predictions are clipped to this range for RMSE, as the AFM authors do."""
        if self.task == "binary":
            return (-1.0, 1.0)
        y = self.splits["train"].y
        return (float(y.min()), float(y.max()))

    @cached_property
    def feature_field(self) -> np.ndarray:
        """Field index of every feature id (-1 where a feature never occurs; a prepared dataset's vocabularies
        give every id its field)."""
        if self.field_sizes:
            return np.repeat(np.arange(self.num_fields), self.field_sizes)
        owner = np.full(self.num_features, -1, dtype=np.int64)
        for part in self.splits.values():
            for f in range(self.num_fields):
                owner[part.x[:, f]] = f
        return owner

    def field_values(self, field_name: str) -> np.ndarray:
        """Feature ids that occur in one field, sorted."""
        return np.flatnonzero(self.feature_field == self.field_names.index(field_name))

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over names, ids and labels of every split: equal data, equal fingerprint. A prepared
        dataset's comes from its record (the sources' sha256 and the settings), which decide its ids."""
        if self.digest:
            return self.digest
        h = hashlib.sha256()
        for text in (self.field_names, self.feature_names):
            h.update("\x1f".join(text).encode("utf-8") + b"\x1e")
        for split_name in SPLITS:
            part = self.splits[split_name]
            h.update(np.ascontiguousarray(part.x, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(part.y, dtype=np.float32).tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        """A short JSON-able description for results files and checkpoints."""
        return {
            "name": self.name,
            "source": self.source,
            "task": self.task,
            "fields": self.field_names,
            "num_features": self.num_features,
            "rows": {s: len(self.splits[s]) for s in SPLITS},
            "planted_pairs": [list(p) for p in self.planted_pairs],
            "fingerprint": self.fingerprint,
            "notes": self.notes,
            **({"sampled": self.sampled} if self.sampled else {}),
        }

    def sample(self, rows: int, seed: int = 0) -> "Dataset":
        """A seeded sample of at most `rows` rows of every split, in memory, in the splits' order: what the
        pages explain a prepared click log on. Same fields, features and fingerprint (it views the same
        data); `sampled` says how many rows of how many."""
        from dataclasses import replace

        splits, counts = {}, {}
        for name, part in self.splits.items():
            n = len(part)
            chosen = np.sort(np.random.default_rng([seed, SPLITS.index(name)]).choice(n, rows, replace=False)) \
                if n > rows else np.arange(n)
            splits[name] = Split(np.asarray(part.x[chosen], dtype=np.int64), np.asarray(part.y[chosen]))
            counts[name] = len(chosen)
        return replace(self, splits=splits, digest=self.fingerprint,
                       sampled={"seed": seed, "rows": counts, "of": {n: len(p) for n, p in self.splits.items()}})


PAGE_SAMPLE_ROWS = 20_000  # rows per split the pages explain of a dataset that stays on disk


def for_pages(dataset: Dataset, rows: int | None = None, seed: int = 0) -> Dataset:
    """What the app explains: the dataset itself, or of one that stays on disk (a prepared click log) a
    seeded sample of at most `rows` (PAGE_SAMPLE_ROWS) rows per split (`Dataset.sample`), never the whole
    split."""
    return dataset.sample(rows or PAGE_SAMPLE_ROWS, seed) if dataset.streamed else dataset


def sample_note(dataset: Dataset) -> str | None:
    """One line on the sample a page explains, or None where it holds every row."""
    if not dataset.sampled or dataset.sampled["rows"] == dataset.sampled["of"]:
        return None
    shown = ", ".join(f"{split} {dataset.sampled['rows'][split]:,} of {dataset.sampled['of'][split]:,}"
                      for split in SPLITS)
    return (f"A seeded sample of the data (seed {dataset.sampled['seed']}): {shown} rows. The model was trained "
            f"and measured on every row; explanations and statistics here use this sample.")


def random_split(x: np.ndarray, y: np.ndarray, seed: int, fractions=(0.7, 0.2, 0.1)) -> dict[str, Split]:
    """Seeded shuffle, then train/validation/test by the paper's 7:2:1."""
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_valid = int(round(fractions[1] * n))
    cuts = {"train": order[:n_train], "validation": order[n_train:n_train + n_valid], "test": order[n_train + n_valid:]}
    return {name: Split(np.ascontiguousarray(x[idx], dtype=np.int64), np.ascontiguousarray(y[idx], dtype=np.float32))
            for name, idx in cuts.items()}


def labels_like_train(labels: dict[str, np.ndarray], where) -> tuple[dict[str, np.ndarray], str]:
    """Map every split's labels as train's are mapped: two train values become -1/+1 and then every other
    split must use those two values too; anything else stays a regression target."""
    values = np.unique(labels["train"])
    if len(values) == 2:
        for split, y in labels.items():
            stray = np.setdiff1d(np.unique(y), values)
            if len(stray):
                raise DataError(f"{where}: the {split} labels include {stray[:3].tolist()}, but train's are "
                                f"{values.tolist()}; use the same two label values in every split")
        return {split: np.where(y == values[1], 1.0, -1.0).astype(np.float32) for split, y in labels.items()}, "binary"
    if len(values) < 2:
        raise DataError(f"{where}: the train labels have a single value ({values[0]}); nothing to learn")
    return {split: y.astype(np.float32) for split, y in labels.items()}, "regression"


def binary_or_regression(y: np.ndarray) -> tuple[np.ndarray, str]:
    """Labels of two values become -1/+1 (the paper's targets); anything else stays a regression target."""
    values = np.unique(y)
    if len(values) == 2:
        return np.where(y == values[1], 1.0, -1.0).astype(np.float32), "binary"
    if len(values) == 1:
        raise DataError(f"the target has a single value ({values[0]}); nothing to learn")
    return y.astype(np.float32), "regression"


def draw_negatives(group: np.ndarray, num_values: int, forbidden, rng: np.random.Generator,
                   drawn: np.ndarray | None = None) -> np.ndarray:
    """For each slot, a value in 0..num_values-1 drawn uniformly, distinct among the slots of its `group`,
    and not `forbidden(drawn, group * num_values + drawn)` (a boolean array); clashing slots are redrawn
    until none is left. Frappe's and MovieLens' negative sampling both use it."""
    drawn = np.empty(len(group), dtype=np.int64) if drawn is None else drawn
    redraw = np.ones(len(group), dtype=bool)
    while redraw.any():
        drawn[redraw] = rng.integers(0, num_values, size=int(redraw.sum()))
        combo = group * num_values + drawn
        _, first = np.unique(combo, return_index=True)
        duplicate = np.ones(len(group), dtype=bool)
        duplicate[first] = False
        redraw = forbidden(drawn, combo) | duplicate
    return drawn

"""A Criteo-shaped click log, generated (the shape of Criteo's day files, no licence needed): no header,
tab-separated; the label, 13 integer counts (log-normal, 20% missing) and 26 hashed categories drawn from
Zipf laws over vocabularies capped at 1e6 (most values rare). Clicks depend on some frequent values and two
interactions, so a model can learn something, and the rare tail is mostly noise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))]
NUMERIC = tuple(f"I{i}" for i in range(1, 14))


def write_criteo_like(path: str | Path, rows: int, seed: int = 0, chunk: int = 200_000) -> Path:
    """Write `rows` rows to `path` in chunks (bounded memory whatever the size)."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    effects = {j: rng.normal(0, 0.8, 200) for j in range(0, 26, 3)}
    with open(path, "w", encoding="ascii") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ints = np.where(rng.random((n, 13)) < 0.2, -1, np.floor(rng.lognormal(1.5, 1.2, (n, 13)))).astype(np.int64)
            cats = np.stack([np.minimum(rng.zipf(1.2 + 0.02 * j, n), 10**6) for j in range(26)], axis=1)
            score = -1.2 + sum(np.where(cats[:, j] < 200, e[np.minimum(cats[:, j], 199)], 0) for j, e in effects.items())
            score += 0.6 * ((cats[:, 0] < 5) & (cats[:, 1] < 5)) - 0.5 * ((ints[:, 0] > 5) & (cats[:, 2] < 3))
            label = (rng.random(n) < 1 / (1 + np.exp(-score))).astype(int)
            frame = pd.DataFrame({"label": label})
            for i in range(13):
                frame[f"I{i + 1}"] = pd.Series(ints[:, i]).astype(str).where(ints[:, i] >= 0, "")
            for j in range(26):
                hashed = (j * 1_000_003 + cats[:, j].astype(np.uint64)) * np.uint64(2654435761) % np.uint64(2**32)
                frame[f"C{j + 1}"] = [f"{int(h):08x}" for h in hashed]
            frame.to_csv(fh, sep="\t", header=False, index=False)
    return path

"""The embedded default: a seeded synthetic dataset whose label is driven by a few *planted* field pairs.

Every field has readable values. The score of an instance is
    sum over planted pairs (f, g) of strength * T_fg[value_f, value_g]
  + first_order * sum over fields of w_f[value_f]  +  noise * N(0, 1),
with T and w drawn from the seed; the label is +1 where the score is above its median, else -1.
Only the planted pairs carry interaction signal, so a model that finds them is right, and a teacher can
show that attention concentrates on them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from afm.core.errors import DataError
from afm.data.dataset import Dataset, random_split
from afm.data.source import Source, always_available

FIELDS: dict[str, list[str]] = {
    "user_group": ["student", "commuter", "parent", "retiree", "gamer", "traveler"],
    "app_category": ["news", "games", "music", "fitness", "maps", "social", "shopping", "weather"],
    "daytime": ["morning", "noon", "afternoon", "evening", "night"],
    "weekday": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    "weather": ["sunny", "cloudy", "rainy", "snowy", "foggy"],
    "device": ["phone", "tablet", "watch"],
    "network": ["wifi", "4g", "offline"],
    "city_size": ["village", "town", "city", "metropolis"],
}
DEFAULT_PLANTED = (("app_category", "daytime"), ("user_group", "weather"))

# The wide default: click-log-shaped (Avazu's field names), 24 fields from 3 to 2,000 values drawn
# long-tailed, three planted pairs. For comparing datasets offline, and for models with many pairs.
WIDE_SIZES = {"hour": 24, "weekday": 7, "banner_pos": 7, "site_id": 800, "site_domain": 600, "site_category": 20,
              "app_id": 900, "app_domain": 150, "app_category": 25, "device_model": 2000, "device_type": 5,
              "device_conn_type": 4, "os": 6, "region": 40, "ad_size": 3, "C1": 7, "C14": 1500, "C15": 8,
              "C16": 9, "C17": 400, "C18": 4, "C19": 60, "C20": 160, "C21": 60}
WIDE_FIELDS = {name: [f"v{i}" for i in range(size)] for name, size in WIDE_SIZES.items()}
WIDE_PLANTED = (("site_category", "hour"), ("app_category", "device_type"), ("banner_pos", "ad_size"))
WIDE_LONG_TAIL = 1.1  # value i drawn with probability proportional to 1 / (i + 1)^1.1


MIN_ROWS, MAX_ROWS = 30, 10_000_000


@dataclass(frozen=True)
class LatentScore:
    """What the generator knows: the score s(x) without its noise, and how a label is drawn from it
    (+1 where s(x) + noise * N(0, 1) > threshold). afm.explain.truth turns it into the best predictor."""

    first_order: list  # per field, the weight of each value (already scaled)
    pairs: list  # (field a, field b, table by value of a x value of b), the planted pairs
    offsets: np.ndarray  # each field's first feature id
    noise: float
    threshold: float

    def score(self, x: np.ndarray) -> np.ndarray:
        """s(x) of feature-id rows (N, m)."""
        values = np.asarray(x) - self.offsets
        total = np.zeros(len(values))
        for f, w in enumerate(self.first_order):
            total += w[values[:, f]]
        for a, b, table in self.pairs:
            total += table[values[:, a], values[:, b]]
        return total


def make_wide(seed: int = 0, rows: int = 30000) -> Dataset:
    """The wide synthetic dataset (WIDE_SIZES), recorded by seed and rows alone."""
    return make_synthetic(seed=seed, rows=rows, planted=WIDE_PLANTED, fields=WIDE_FIELDS, long_tail=WIDE_LONG_TAIL,
                          name="wide")


def make_synthetic(seed: int = 0, rows: int = 20000, planted=DEFAULT_PLANTED, strength: float = 1.0,
                   first_order: float = 0.3, noise: float = 0.3, fields: dict[str, list[str]] | None = None,
                   long_tail: float = 0.0, name: str = "synthetic") -> Dataset:
    """Generate the synthetic dataset. `planted` is a list of field-name pairs; `strength` scales them all
    (or pass one strength per pair as a list). `long_tail` > 0 draws each field's values with probability
    proportional to 1 / (index + 1)^long_tail instead of uniformly."""
    fields = dict(FIELDS if fields is None else fields)
    names = list(fields)
    if not isinstance(planted, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in planted):
        raise DataError(f"planted pairs must be a list of two field names each, not {planted!r:.80}")
    planted = [tuple(p) for p in planted]
    try:
        strengths = np.broadcast_to(np.asarray(strength, dtype=float), (len(planted),))
    except (TypeError, ValueError):
        raise DataError(f"the synthetic data's strength must be a number or one per planted pair, not {strength!r}") from None
    if not np.isfinite(strengths).all():
        raise DataError("the synthetic data's strength must be finite")
    for a, b in planted:
        if a not in fields or b not in fields or a == b:
            raise DataError(f"planted pair ({a}, {b}) must name two different fields of: {', '.join(names)}")
    if isinstance(rows, bool) or not isinstance(rows, int) or not MIN_ROWS <= rows <= MAX_ROWS:
        raise DataError(f"synthetic data takes a whole number of rows from {MIN_ROWS} to {MAX_ROWS:,}, not {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"the synthetic data's seed must be a whole number of at least 0, not {seed!r}")
    for setting, value in (("noise", noise), ("first_order", first_order)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise DataError(f"the synthetic data's {setting} must be a finite number of at least 0, not {value!r}")

    rng = np.random.default_rng(seed)
    sizes = [len(v) for v in fields.values()]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if long_tail > 0:
        tails = [1.0 / np.arange(1, s + 1) ** long_tail for s in sizes]
        values = np.stack([rng.choice(s, size=rows, p=t / t.sum()) for s, t in zip(sizes, tails)], axis=1)
    else:
        values = np.stack([rng.integers(0, s, size=rows) for s in sizes], axis=1)  # (rows, m) value index per field

    score = noise * rng.standard_normal(rows)
    weights = [first_order * rng.standard_normal(s) for s in sizes]  # drawn in this order: the data stays the same
    for f, w in enumerate(weights):
        score += w[values[:, f]]
    effects, tables = {}, []
    for (a, b), weight in zip(planted, strengths):
        fa, fb = names.index(a), names.index(b)
        table = weight * rng.standard_normal((sizes[fa], sizes[fb]))
        score += table[values[:, fa], values[:, fb]]
        effects[(a, b)] = table  # what the pair adds to the score, by (value of a, value of b)
        tables.append((fa, fb, table))
    threshold = float(np.median(score))
    y = np.where(score > threshold, 1.0, -1.0).astype(np.float32)
    latent = LatentScore(weights, tables, offsets, float(noise), threshold)

    feature_names = [f"{name}={value}" for name, vals in fields.items() for value in vals]
    if name == "wide":
        source = {"kind": "wide", "seed": seed, "rows": rows}
    else:
        source = {"kind": "synthetic", "seed": seed, "rows": rows, "planted": [list(p) for p in planted],
                  "strength": strengths.tolist(), "first_order": first_order, "noise": noise}
        if fields != FIELDS:
            source["fields"] = fields
    return Dataset(name=name, field_names=names, feature_names=feature_names,
                   splits=random_split(values + offsets, y, seed), source=source, task="binary",
                   planted_pairs=planted, planted_effects=effects, latent=latent,
                   notes=f"Generated by afm.data.synthetic (seed {seed}{', long-tailed values' if long_tail else ''}); "
                         "planted pairs: " + ", ".join(f"{a} x {b}" for a, b in planted))


def _recorded_synthetic(spec: dict, directory) -> Dataset:
    keys = ("seed", "rows", "planted", "strength", "first_order", "noise", "fields")
    return make_synthetic(**{k: spec[k] for k in keys if k in spec})


SYNTHETIC = Source("synthetic", "generated: 8 readable fields, labels driven by planted field pairs",
                   load=lambda spec, directory, target=None, seed=0: make_synthetic(seed=seed),
                   recorded=_recorded_synthetic, status=always_available("generated by afm.data.synthetic"),
                   quick={"epochs": 10}, generated=True)
WIDE = Source("wide", "generated, click-log shaped: 24 fields of 3 to 2,000 long-tailed values, 3 planted pairs",
              load=lambda spec, directory, target=None, seed=0: make_wide(seed=seed),
              recorded=lambda spec, directory: make_wide(**{k: spec[k] for k in ("seed", "rows") if k in spec}),
              status=always_available("generated by afm.data.synthetic (24 fields, long-tailed)"), quick={"epochs": 10},
              generated=True)

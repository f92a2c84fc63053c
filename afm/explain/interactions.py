"""Function-level interaction strength: how much two fields act together on a prediction, measured on the
function a model computes, whatever its parameters say (the ArchDetect mixed difference of Tsang et al.,
NeurIPS 2020; Friedman's H-statistic is its older global relative).

For an instance x, fields A and B, and a reference row r,

    I_AB(x; r) = f(x) - f(x with A from r) - f(x with B from r) + f(x with A and B from r),

which is zero for every model without an A x B interaction; averaged over R references it says how much A
and B act together on this prediction.

`mixed_differences` evaluates f exactly. For any model it calls `model.predict` on the changed rows
(`by_prediction`). The additive pairwise families (FM, AFM and its ablations) have the form

    f(x) = b + sum_i w_{x_i} + K * sum_q e^{s_q} c_q / sum_q e^{s_q}

(c_q the pair interaction p^T(v_i*v_j), s_q its attention score, 0 for FM and uniform attention; K the
number of pairs for FM, 1 for AFM), and changing fields A and B changes only the terms of pairs that touch
them, so the sums of a changed row are updated from the unchanged row's, pair by pair (`_pairwise`): the
same numbers as `by_prediction` (tested), many times faster.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from afm.data.dataset import Dataset
from afm.explain.parts import field_pairs
from afm.models.inference import predict
from afm.models.layers import evaluating

DEFAULT_REFERENCES = 16


def sample_rows(n: int, count: int | None, seed: int) -> np.ndarray:
    """A seeded sample of row indices (all rows, in order, when count is None or not smaller)."""
    if count is None or count >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))


def references(x: np.ndarray, count: int = DEFAULT_REFERENCES, seed: int = 0) -> np.ndarray:
    """R reference rows drawn from a split (the same for every instance)."""
    return x[np.random.default_rng(seed + 1).choice(len(x), size=count, replace=count > len(x))]


def by_prediction(model, x: np.ndarray, refs: np.ndarray, chunk: int | None = None) -> np.ndarray:
    """(N, P) mixed differences averaged over the references, from `model.predict` on every changed row:
    works for any model that predicts from feature ids. `chunk` pairs are predicted at once (default: about
    65,536 rows a call, so one instance's pairs go in one call)."""
    n, m = x.shape
    rows, cols = np.triu_indices(m, k=1)
    chunk = chunk or max(1, 65536 // max(n, 1))
    base = predict(model, x).astype(np.float64)
    out = np.zeros((n, len(rows)))
    for ref in refs:
        single = np.stack([predict(model, _replace(x, ref, [f])) for f in range(m)], 1).astype(np.float64)
        for start in range(0, len(rows), chunk):
            q = np.arange(start, min(start + chunk, len(rows)))
            both = np.concatenate([_replace(x, ref, [rows[i], cols[i]]) for i in q])
            f_ab = predict(model, both).astype(np.float64).reshape(len(q), n).T
            out[:, q] += base[:, None] - single[:, rows[q]] - single[:, cols[q]] + f_ab
    return out / len(refs)


def _replace(x: np.ndarray, ref: np.ndarray, fields: list[int]) -> np.ndarray:
    changed = x.copy()
    changed[:, fields] = ref[fields]
    return changed


@torch.no_grad()
def _pair_terms(model, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Score s and interaction c of feature pairs (any shape), each distinct pair computed once."""
    keys = first * model.config.num_features + second
    unique, inverse = torch.unique(keys.flatten(), return_inverse=True)
    products = model.pair_products(unique // model.config.num_features, unique % model.config.num_features)
    interaction = (products @ model.projection()).double()
    score = model.pair_scores(products)
    score = torch.zeros_like(interaction) if score is None else score.double()
    return score[inverse].view(keys.shape), interaction[inverse].view(keys.shape)


@torch.no_grad()
def _pairwise(model, x: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """`by_prediction` for FM and AFM: the softmax sums of a changed row updated from its unchanged row's."""
    with evaluating(model):
        device = next(model.parameters()).device
        m, rows, cols = x.shape[1], model.pair_rows, model.pair_cols
        scale = 1.0 if model.config.normalised_weights else float(model.num_pairs)
        xt = torch.as_tensor(x, device=device)
        rt = torch.as_tensor(refs, device=device)
        xi, xj = xt[:, rows][:, None], xt[:, cols][:, None]  # (N, 1, P)
        ri, rj = rt[:, rows][None], rt[:, cols][None]  # (1, R, P)
        n, r, p = len(xt), len(rt), len(rows)
        # (score, interaction) of each pair with neither, the first, the second, or both sides from r; the
        # first depends on the row alone and the last on the reference alone, so they broadcast
        terms = [_pair_terms(model, xi, xj), _pair_terms(model, ri.expand(n, r, p), xj.expand(n, r, p)),
                 _pair_terms(model, xi.expand(n, r, p), rj.expand(n, r, p)), _pair_terms(model, ri, rj)]
        shift = terms[0][0].amax(-1, keepdim=True)  # a per-row shift keeps exp() in range
        for score, _ in terms[1:]:
            shift = torch.maximum(shift, score.amax(-1, keepdim=True))
        weights = [torch.exp(s - shift) for s, _ in terms]  # each broadcast to (N, R, P)
        num = [w * c for w, (_, c) in zip(weights, terms)]  # e^s c and e^s, per combo
        first_side = torch.zeros(m, p, dtype=torch.float64, device=device)  # field f is pair q's first side
        first_side[rows, torch.arange(p)] = 1.0
        second_side = torch.zeros_like(first_side)
        second_side[cols, torch.arange(p)] = 1.0
        touches = first_side + second_side
        num0, den0 = num[0].sum(-1), weights[0].sum(-1)  # (N, R)

        def replaced(values):  # (N, R, m): the sums with field f taken from r
            own = values[0] @ touches.T
            return own, values[1] @ first_side.T + values[2] @ second_side.T

        own_num, new_num = replaced(num)
        own_den, new_den = replaced(weights)
        num_f = num0[..., None] - own_num + new_num
        den_f = den0[..., None] - own_den + new_den
        # both A and B from r: A's change + B's change - the unchanged row, corrected on the pair (A, B)
        num_ab = num_f[..., rows] + num_f[..., cols] - num0[..., None] + num[0] - num[1] - num[2] + num[3]
        den_ab = den_f[..., rows] + den_f[..., cols] - den0[..., None] + weights[0] - weights[1] - weights[2] + weights[3]
        f0 = scale * num0 / den0
        f_a, f_b = scale * num_f[..., rows] / den_f[..., rows], scale * num_f[..., cols] / den_f[..., cols]
        mixed = f0[..., None] - f_a - f_b + scale * num_ab / den_ab  # first-order terms cancel exactly
        return mixed.mean(1).cpu().numpy()


def mixed_differences(model, x: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """(N, P) I_AB per instance and field pair (the models' pair order), averaged over the references."""
    config = getattr(model, "config", None)
    if not (getattr(config, "additive", False) and getattr(config, "pairwise", False)):
        return by_prediction(model, x, refs)  # any other model: its predictions alone
    chunk = max(1, 2**21 // (len(refs) * model.num_pairs))  # ~16 MB per (N, R, P) tensor
    parts = [_pairwise(model, x[start:start + chunk], refs) for start in range(0, len(x), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, model.num_pairs))


def instance_interactions(model, dataset: Dataset, ids, split: str = "train",
                          reference_count: int = 64, seed: int = 0) -> np.ndarray:
    """(P,) I_AB of one instance (its feature ids, one per field) over `reference_count` rows of a split:
    how much each pair of fields acts together on this one prediction, for any model."""
    x = np.asarray(ids, dtype=np.int64).reshape(1, -1)
    return mixed_differences(model, x, references(dataset.splits[split].x, reference_count, seed))[0]


def instance_frame(dataset: Dataset, ids, values: np.ndarray, decomposition: dict | None = None,
                   name: str = "function_level") -> pd.DataFrame:
    """One row per field pair of an instance, named by its two features: the function-level interactions
    `values` (the models' pair order) as `name`, and a decomposition's exact pair term where its model has
    them (`exact_pair_term`); the largest |values| first."""
    ids = np.asarray(ids).reshape(-1)
    rows, cols = np.triu_indices(len(ids), k=1)
    names = dataset.feature_names
    table = pd.DataFrame({"pair": [f"{names[ids[i]]} x {names[ids[j]]}" for i, j in zip(rows, cols)], name: values})
    if decomposition is not None and decomposition.get("pair_terms", True):
        by_pair = {(p["field_a"], p["field_b"]): p["contribution"] for p in decomposition["pairs"]}
        table["exact_pair_term"] = [by_pair[pair] for pair in field_pairs(dataset.field_names)]
    return table.sort_values(name, key=np.abs, ascending=False, kind="stable").reset_index(drop=True)


@dataclass
class Interactions:
    """Function-level interaction strengths of one model on (a sample of) one split."""

    dataset: Dataset
    split: str
    rows: np.ndarray  # the split's rows that were measured
    values: np.ndarray  # (rows, P) I_AB averaged over the references
    references: int
    changed: np.ndarray | None = None  # (rows, P) how many references change both fields of the pair

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return field_pairs(self.dataset.field_names)

    def both_changed(self) -> np.ndarray:
        """(rows, P) I_AB averaged only over the references that change both fields (NaN where none does).
        I_AB is zero whenever a reference keeps A or B, so the plain mean scales with how often a field
        differs between two rows: with many values, almost always; with two, half the time."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.changed > 0, self.values * self.references / self.changed, np.nan)


def changed_both(x: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """(N, P) the number of references whose values differ from each row's in both fields of each pair."""
    rows, cols = np.triu_indices(x.shape[1], k=1)
    differs = x[:, None, :] != refs[None, :, :]  # (N, R, m)
    return (differs[:, :, rows] & differs[:, :, cols]).sum(1)


def interactions(model, dataset: Dataset, split: str = "test", sample: int | None = 2000,
                 reference_count: int = DEFAULT_REFERENCES, seed: int = 0,
                 reference_seed: int | None = None) -> Interactions:
    """I_AB for every field pair on a seeded sample of a split (`sample=None`: every row). The references
    are drawn with `reference_seed` (default: `seed`), so the same rows can be measured over fresh draws."""
    x = dataset.splits[split].x
    rows = sample_rows(len(x), sample, seed)
    refs = references(x, reference_count, seed if reference_seed is None else reference_seed)
    return Interactions(dataset, split, rows, mixed_differences(model, x[rows], refs), reference_count,
                        changed_both(x[rows], refs))


def pair_strength(result: Interactions) -> pd.DataFrame:
    """Per field pair: mean |I|, RMS, and mean |I| as a share of all pairs', strongest first."""
    values = np.abs(result.values)
    mean_abs = values.mean(0)
    pairs = result.pairs
    table = pd.DataFrame({"field_a": [a for a, _ in pairs], "field_b": [b for _, b in pairs],
                          "mean_abs_interaction": mean_abs, "rms_interaction": np.sqrt((values ** 2).mean(0)),
                          "share": mean_abs / max(mean_abs.sum(), 1e-300)})
    return table.sort_values("mean_abs_interaction", ascending=False, kind="stable").reset_index(drop=True)


def value_pair_strength(result: Interactions, field_a: str, field_b: str, limit: int = 12) -> pd.DataFrame:
    """For one field pair: the mean I over the measured instances with each pair of values (a, b), for
    the `limit` most frequent values of each field; a (value_a x value_b) table, NaN where no instance has
    both."""
    names = result.dataset.field_names
    fa, fb = names.index(field_a), names.index(field_b)
    q = field_pairs(names).index((field_a, field_b) if fa < fb else (field_b, field_a))
    x = result.dataset.splits[result.split].x[result.rows]
    frame = pd.DataFrame({"a": x[:, fa], "b": x[:, fb], "value": result.values[:, q]})
    top_a = frame.a.value_counts().index[:limit]
    top_b = frame.b.value_counts().index[:limit]
    kept = frame[frame.a.isin(top_a) & frame.b.isin(top_b)]
    table = kept.pivot_table(index="a", columns="b", values="value", aggfunc="mean").reindex(index=top_a, columns=top_b)
    feature = result.dataset.feature_names
    table.index = [feature[i] for i in table.index]
    table.columns = [feature[i] for i in table.columns]
    return table


@torch.no_grad()
def pair_term_view(model, result: Interactions, field_a: str, field_b: str, limit: int = 12) -> dict[str, pd.DataFrame]:
    """For one field pair, value by value (the `limit` most frequent values of each field in the measured
    rows): AFM's context-free attention score h^T ReLU(W(v_a*v_b)+b) (absent for FM and uniform attention),
    the interaction p^T(v_a*v_b), the function-level mean I(a, b), and on planted data the planted effect.
    Each a (value of field_a x value of field_b) table with feature names."""
    dataset = result.dataset
    strength = value_pair_strength(result, field_a, field_b, limit)
    ids = {name: i for i, name in enumerate(dataset.feature_names)}
    a_ids = torch.tensor([ids[name] for name in strength.index])
    b_ids = torch.tensor([ids[name] for name in strength.columns])
    shape = (len(a_ids), len(b_ids))
    frame = lambda values: pd.DataFrame(values.reshape(shape), index=strength.index, columns=strength.columns)  # noqa: E731
    view = {"function-level": strength}
    if model.config.pairwise:  # a pair term to show: p^T(v_a*v_b), and the attention score where it learns one
        first, second = a_ids[:, None].expand(shape), b_ids[None].expand(shape)
        with evaluating(model):
            score, interaction = _pair_terms(model, first.reshape(-1), second.reshape(-1))
        view = {"interaction": frame(interaction.numpy()), **view}
        if model.config.has_attention:
            view["attention score"] = frame(score.numpy())
    effect = dataset.planted_effects.get((field_a, field_b))
    flipped = dataset.planted_effects.get((field_b, field_a))
    if effect is not None or flipped is not None:
        table = effect if effect is not None else flipped.T
        offset = {f: dataset.field_values(f).min() for f in (field_a, field_b)}
        view["planted"] = frame(table[np.ix_(a_ids.numpy() - offset[field_a], b_ids.numpy() - offset[field_b])])
    return view


def view_correlations(view: dict[str, pd.DataFrame], against: str = "planted") -> dict[str, float]:
    """Pearson correlation of each table of a pair-term view with one of them (cells present in both)."""
    if against not in view:
        return {}
    base = view[against].to_numpy(dtype=float).ravel()
    out = {}
    for name, table in view.items():
        if name == against:
            continue
        values = table.to_numpy(dtype=float).ravel()
        ok = np.isfinite(values) & np.isfinite(base)
        out[name] = float(np.corrcoef(values[ok], base[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    return out

"""The truth on generated data. The generators know their latent score: label +1 where
    s(x) + noise * N(0, 1) > threshold,
so the Bayes-optimal predictor is P(+1 | x) = Phi((s(x) - threshold) / noise). `BayesOptimal` computes it on
the scale each model fits (the logit for logistic loss, E[y | x] = 2P - 1 for squared loss on -1/+1), so
its interaction strengths are what a perfect model of that loss would show: the reference every measure
is scored against (`truth_agreement`)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from afm.core.errors import AFMError
from afm.data.dataset import Dataset
from afm.explain.interactions import DEFAULT_REFERENCES, interactions
from afm.explain.parts import field_pairs, row_spearman

LOGIT_CLIP = 1e-7  # P(+1 | x) kept inside (0, 1), so a near-certain row has a finite logit


class BayesOptimal(nn.Module):
    """The best predictor of a generated dataset's labels, on the scale of `loss` ("squared" or "logistic").
    It predicts from feature ids as our models do, so every function-level measure applies to it."""

    def __init__(self, dataset: Dataset, loss: str):
        super().__init__()
        if dataset.latent is None:
            raise AFMError(f"{dataset.name}: only generated data knows its latent score")
        if loss not in ("squared", "logistic"):
            raise AFMError(f"loss must be squared or logistic, not {loss!r}")
        self.latent, self.loss = dataset.latent, loss
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)  # a device for afm.models.inference.predict

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        score = torch.as_tensor(self.latent.score(x.cpu().numpy()), dtype=torch.float64)
        z = (score - self.latent.threshold) / max(self.latent.noise, 1e-9)  # no noise: the sign of s - threshold
        p = 0.5 * torch.erfc(-z / math.sqrt(2.0))
        if self.loss == "squared":
            return (2 * p - 1).float().to(self.anchor.device)
        p = p.clamp(LOGIT_CLIP, 1 - LOGIT_CLIP)
        return torch.log(p / (1 - p)).float().to(self.anchor.device)


def truth_agreement(measured: pd.DataFrame, truth: np.ndarray, dataset: Dataset, top_k: int = 3) -> pd.DataFrame:
    """Per model and measure of `measured` (long: model, field_a, field_b, measure, value), the Spearman of
    its ranking of all pairs with the true function-level ranking (`truth`, the pairs' order), and the
    share of the true top-k among its top k."""
    pairs = field_pairs(dataset.field_names)
    true_top = set(np.argsort(-truth, kind="stable")[:top_k])
    rows = []
    for (model, measure), part in measured.dropna(subset=["value"]).groupby(["model", "measure"], sort=False):
        order = {pair: i for i, pair in enumerate(pairs)}
        values = np.full(len(pairs), np.nan)
        values[[order[(a, b)] for a, b in zip(part.field_a, part.field_b)]] = part.value.to_numpy()
        if np.isnan(values).any():
            continue
        top = set(np.argsort(-values, kind="stable")[:top_k])
        rows.append({"model": model, "measure": measure,
                     "spearman_with_truth": float(row_spearman(values[None], truth[None])[0]),
                     f"top{top_k}_overlap": len(top & true_top) / top_k})
    return pd.DataFrame(rows)


def truth_strength(dataset: Dataset, loss: str, split: str = "test", sample: int | None = 2000,
                   reference_count: int = DEFAULT_REFERENCES, seed: int = 0,
                   reference_seed: int | None = None) -> np.ndarray:
    """(P,) mean |I_AB| of the Bayes-optimal predictor on the scale `loss` fits, on the same rows and
    references as the models' function-level measure."""
    result = interactions(BayesOptimal(dataset, loss), dataset, split, sample, reference_count, seed, reference_seed)
    return np.abs(result.values).mean(0)

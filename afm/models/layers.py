"""The layers the additive families share: bias and first-order weights with the exact decomposition
(`AdditiveModel`), and feature embeddings with pair products computed once per distinct feature pair
(`PairwiseModel`).

Every additive prediction splits exactly into bias + first-order terms + one term a_ij * p^T(v_i*v_j) per
pair: `parts()` returns that split. `forward()` is the fast path used for training. Embedding lookups and
pair products go through `afm.fast.ops`, whose hand-written gradients were faster on a CPU than
autograd's (docs/performance.md); the values are the same.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from afm.fast.ops import gather_rows, pair_products
from afm.models.config import ModelConfig, Parts

FLOAT_BYTES = 4


@contextlib.contextmanager
def evaluating(module: nn.Module):
    """The module in eval mode (no dropout, batch norm's running statistics) for the block, then as it was."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class AdditiveModel(nn.Module):
    """Bias w0 and first-order weights w_i, and the exact split of a prediction into parts."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        m = config.num_fields
        self.bias = nn.Parameter(torch.zeros(1))
        self.linear = nn.Embedding(config.num_features, 1)  # first-order w_i
        nn.init.zeros_(self.linear.weight)
        rows, cols = torch.triu_indices(m, m, offset=1)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)

    @classmethod
    def tensor_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        return {"bias": (1,), "linear.weight": (config.num_features, 1)}

    @classmethod
    def step_bytes_per_row(cls, config: ModelConfig) -> int:
        return config.num_fields * FLOAT_BYTES * 4  # ids, gathered weights, their gradient

    @classmethod
    def multiply_adds_per_row(cls, config: ModelConfig) -> int:
        return config.num_fields

    @property
    def num_pairs(self) -> int:
        return self.pair_rows.numel()

    def first_order(self, x: torch.Tensor) -> torch.Tensor:
        return gather_rows(self.linear, x).squeeze(-1)  # (B, m)

    def pair_terms(self, x: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each pair's weight and interaction, (B, P) each, without dropout. No pair terms here: every pair
        weighs one, as in FM, and interacts by zero."""
        return self.bias.new_ones(x.shape[0], self.num_pairs), self.bias.new_zeros(x.shape[0], self.num_pairs)

    def attention_penalty(self) -> torch.Tensor:
        """sum(W^2) of an attention network; zero where there is none."""
        return self.bias.new_zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias + self.first_order(x).sum(1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions without dropout, through `parts`, which computes each distinct feature pair once."""
        return self.parts(x).prediction

    @torch.no_grad()
    def parts(self, x: torch.Tensor, chunk: int = 8192) -> Parts:
        """The exact decomposition, computed without dropout; parts sum to `prediction`."""
        with evaluating(self):
            attention, interaction = self.pair_terms(x, chunk)
            contribution = attention * interaction
            first = self.first_order(x)
            bias = self.bias.expand(x.shape[0])
            prediction = bias + first.sum(1) + contribution.sum(1)
            return Parts(bias, first, attention, interaction, contribution, prediction, torch.zeros_like(prediction))


class PairwiseModel(AdditiveModel):
    """Adds feature embeddings v_i, a projection p and dropout on the pooled pair vector:
    y = w0 + sum_i w_i + p^T dropout(sum_{i<j} a_ij (v_i * v_j)), the pair weights a_ij given by the family.

    A pair's product and score depend only on its two features, and a batch repeats feature pairs often,
    so `pair_terms` computes each distinct feature pair once and gathers it back (`distinct_pairs`)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.embedding = nn.Embedding(config.num_features, config.embed_dim)  # v_i
        nn.init.normal_(self.embedding.weight, std=0.01)  # the authors' initialisation
        self.pooled_dropout = nn.Dropout(config.dropout)

    @classmethod
    def tensor_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        return {**super().tensor_shapes(config), "embedding.weight": (config.num_features, config.embed_dim)}

    @classmethod
    def step_bytes_per_row(cls, config: ModelConfig) -> int:
        return config.num_fields * config.embed_dim * FLOAT_BYTES * 4  # gathered embeddings, gradient, products

    @classmethod
    def multiply_adds_per_row(cls, config: ModelConfig) -> int:
        return config.num_pairs * config.embed_dim

    def output(self, x: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """The prediction from the pooled pair vector (B, k): w0 + sum_i w_i + p^T dropout(pooled)."""
        return self.bias + self.first_order(x).sum(1) + self.pooled_dropout(pooled) @ self.p

    def distinct_pairs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The distinct (feature i, feature j) pairs of a batch, as two (U,) id tensors, and the (B, P) index
        of each row's pair among them."""
        n = self.config.num_features
        keys = x.index_select(1, self.pair_rows) * n + x.index_select(1, self.pair_cols)  # (B, P)
        unique, inverse = torch.unique(keys, return_inverse=True)
        return unique // n, unique % n, inverse

    def pair_products(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """v_i * v_j for two (U,) feature id tensors: (U, k)."""
        return pair_products(self.embedding, first, second)

    def projection(self) -> torch.Tensor:
        """p: fixed to ones (a buffer) or learned (a parameter), as the family says."""
        return self.p

    def pair_scores(self, products: torch.Tensor) -> torch.Tensor | None:
        """Unnormalised attention score of each pair product, (..., k) -> (...); None for fixed weights."""
        return None

    def pair_weights(self, scores: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
        """(B, P) pair weights from (B, P) scores."""
        raise NotImplementedError

    def pair_terms(self, x: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each distinct feature pair of the batch computed once (in chunks) and gathered back."""
        first_ids, second_ids, inverse = self.distinct_pairs(x)
        interactions, scores = [], []
        for first, second in zip(first_ids.split(chunk), second_ids.split(chunk)):
            products = self.pair_products(first, second)  # (U, k)
            interactions.append(products @ self.projection())
            scores.append(self.pair_scores(products))
        interaction = torch.cat(interactions)[inverse]
        score = None if scores[0] is None else torch.cat(scores)[inverse]
        return self.pair_weights(score, inverse.shape), interaction

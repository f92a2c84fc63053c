"""FM, the factorization machine: y = w0 + sum_i w_i + p^T sum_{i<j} v_i*v_j, with p fixed to ones."""
from __future__ import annotations

import torch

from afm.fast.ops import gather_rows, pairwise_sum
from afm.models.config import ModelConfig
from afm.models.families import Family
from afm.models.layers import PairwiseModel, evaluating


class FM(PairwiseModel):
    """Factorization machine; pair weights all one and p fixed to ones."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.register_buffer("p", torch.ones(config.embed_dim), persistent=False)

    def pair_weights(self, scores, shape):
        return self.bias.new_ones(shape)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with evaluating(self):
            return self(x)  # the O(m k) forward beats pair-by-pair evaluation for FM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(x, pairwise_sum(gather_rows(self.embedding, x)))  # the pair sum in O(m k)


# The paper's FM on Frappe and MovieLens: learning rate 0.01, dropout 0.3 (with the data's k, batch, Adagrad).
FAMILY = Family("fm", "FM", "factorization machine: every pair weighs one", FM,
                settings=("embed_dim", "dropout"),
                presets={"default": {"dropout": 0.3}, "frappe": {"dropout": 0.3, "lr": 0.01},
                         "movielens": {"dropout": 0.3, "lr": 0.01}})

"""NFM (He and Chua, SIGIR 2017), the AFM authors' sibling: the pair products pooled into one vector (the
bi-interaction), then an MLP:

    y = w0 + sum_i w_i + MLP(dropout(BN(sum_{i<j} v_i * v_j)))

The MLP mixes every pair before the output, so nothing splits per pair: all of it is the rest."""
from __future__ import annotations

import torch
from torch import nn

from afm.fast.ops import pairwise_sum
from afm.models.blocks import MLP, BatchNorm, EmbeddingModel, batch_norm_shapes
from afm.models.config import ModelConfig
from afm.models.families import Family


class NFM(EmbeddingModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        k = config.embed_dim
        self.pooled_norm = BatchNorm(k) if config.batch_norm else nn.Identity()
        self.pooled_dropout = nn.Dropout(config.dropout)
        self.mlp = MLP(k, config.hidden_sizes, config.dropout, config.batch_norm)

    @classmethod
    def tensor_shapes(cls, config: ModelConfig) -> dict:
        k = config.embed_dim
        return {**super().tensor_shapes(config), **(batch_norm_shapes("pooled_norm.", k) if config.batch_norm else {}),
                **MLP.shapes("mlp.", k, config.hidden_sizes, config.batch_norm)}

    @classmethod
    def multiply_adds_per_row(cls, config: ModelConfig) -> int:
        return config.num_fields * config.embed_dim + MLP.multiply_adds(config.embed_dim, config.hidden_sizes)

    def rest(self, v: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pooled_dropout(self.pooled_norm(pairwise_sum(v))))


# NFM's paper: one hidden layer (64 on Frappe), batch norm, dropout 0.5 on the bi-interaction.
FAMILY = Family("nfm", "NFM", "the pair products pooled into one vector, then an MLP", NFM,
                settings=("embed_dim", "dropout", "hidden_layers", "batch_norm"),
                presets={"default": {"hidden_layers": "64", "dropout": 0.2, "lr": 0.003},
                         "frappe": {"embed_dim": 10, "hidden_layers": "64", "dropout": 0.3, "batch_norm": True, "lr": 0.001,
                                    "optimizer": "adam"},
                         "movielens": {"embed_dim": 10, "hidden_layers": "64", "dropout": 0.3, "batch_norm": True, "lr": 0.001,
                                       "optimizer": "adam"}},
                additive=False, pairwise=False, pair_terms=False)

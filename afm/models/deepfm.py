"""DeepFM (Guo et al., IJCAI 2017): an FM and an MLP over the same embeddings, their outputs summed:

    y = w0 + sum_i w_i + sum_{i<j} <v_i, v_j> + MLP(v_1, ..., v_m)

The FM part splits exactly into one term per pair; the MLP's output is the rest (`parts().rest`)."""
from __future__ import annotations

import torch

from afm.fast.ops import field_pairs, pairwise_sum
from afm.models.blocks import MLP, EmbeddingModel
from afm.models.config import ModelConfig
from afm.models.families import Family


class DeepFM(EmbeddingModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.mlp = MLP(config.num_fields * config.embed_dim, config.hidden_sizes, config.dropout, config.batch_norm)

    @classmethod
    def tensor_shapes(cls, config: ModelConfig) -> dict:
        return {**super().tensor_shapes(config),
                **MLP.shapes("mlp.", config.num_fields * config.embed_dim, config.hidden_sizes, config.batch_norm)}

    @classmethod
    def multiply_adds_per_row(cls, config: ModelConfig) -> int:
        width = config.num_fields * config.embed_dim
        return config.num_fields * config.embed_dim + MLP.multiply_adds(width, config.hidden_sizes)

    def pair_sum(self, v: torch.Tensor) -> torch.Tensor:
        return pairwise_sum(v).sum(-1)  # the FM part in O(m k)

    def pair_terms(self, x: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The FM part's pair terms <v_i, v_j>, each weighing one."""
        terms = field_pairs(self.embed(x), self.pair_rows, self.pair_cols).sum(-1)
        return torch.ones_like(terms), terms

    def rest(self, v: torch.Tensor) -> torch.Tensor:
        return self.mlp(v.flatten(1))


# Presets: DeepFM's paper (three hidden layers of 400, dropout 0.5 on Criteo) at BARS' k = 10 on the paper's
# datasets (an MLP over 10 fields of 256 would be 25x the work of BARS' setting); on the small data an MLP of
# that width overfits in an epoch, so the planted presets are smaller.
FAMILY = Family("deepfm", "DeepFM", "an FM and an MLP over the same embeddings, summed", DeepFM,
                settings=("embed_dim", "dropout", "hidden_layers", "batch_norm"),
                presets={"default": {"hidden_layers": "64,64", "dropout": 0.2, "lr": 0.003},
                         "frappe": {"embed_dim": 10, "hidden_layers": "400,400,400", "dropout": 0.2, "lr": 0.001,
                                    "optimizer": "adam"},
                         "movielens": {"embed_dim": 10, "hidden_layers": "400,400,400", "dropout": 0.2, "lr": 0.001,
                                       "optimizer": "adam"}},
                additive=False, pairwise=False)

"""DCN-v2 (Wang et al., WWW 2021): a cross network of full matrices over the concatenated embeddings,
beside an MLP (parallel: both outputs joined by one linear unit) or feeding it (stacked):

    x_{l+1} = x_0 * (W_l x_l + b_l) + x_l,    y = w0 + sum_i w_i + out(cross, MLP)

Each cross layer raises the polynomial degree by one, so nothing splits per pair: the rest."""
from __future__ import annotations

import torch
from torch import nn

from afm.models.blocks import MLP, CrossNetwork, EmbeddingModel
from afm.models.config import ModelConfig
from afm.models.families import Family


class DCN(EmbeddingModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        width = config.num_fields * config.embed_dim
        self.cross = CrossNetwork(width, config.cross_layers)
        stacked = config.cross_structure == "stacked"
        self.mlp = MLP(width, config.hidden_sizes, config.dropout, config.batch_norm, output=stacked)
        self.out = None if stacked else nn.Linear(width + self.mlp.width if config.hidden_sizes else width, 1)

    @classmethod
    def tensor_shapes(cls, config: ModelConfig) -> dict:
        width, sizes = config.num_fields * config.embed_dim, config.hidden_sizes
        shapes = {**super().tensor_shapes(config), **CrossNetwork.shapes("cross.", width, config.cross_layers)}
        if config.cross_structure == "stacked":
            return {**shapes, **MLP.shapes("mlp.", width, sizes, config.batch_norm)}
        joined = width + (sizes[-1] if sizes else 0)
        return {**shapes, **MLP.shapes("mlp.", width, sizes, config.batch_norm, output=False),
                "out.weight": (1, joined), "out.bias": (1,)}

    @classmethod
    def multiply_adds_per_row(cls, config: ModelConfig) -> int:
        width = config.num_fields * config.embed_dim
        return config.cross_layers * width * width + MLP.multiply_adds(width, config.hidden_sizes) + width

    def rest(self, v: torch.Tensor) -> torch.Tensor:
        x0 = v.flatten(1)
        crossed = self.cross(x0)
        if self.out is None:  # stacked: the MLP reads the cross network's output
            return self.mlp(crossed)
        joined = torch.cat([crossed, self.mlp.hidden(x0)], 1) if self.config.hidden_sizes else crossed
        return self.out(joined).squeeze(-1)


FAMILY = Family("dcn", "DCN-v2", "a cross network of full matrices beside (or before) an MLP", DCN,
                settings=("embed_dim", "dropout", "hidden_layers", "batch_norm", "cross_layers", "cross_structure"),
                presets={"default": {"hidden_layers": "64,64", "cross_layers": 2, "dropout": 0.2, "lr": 0.003},
                         "frappe": {"embed_dim": 10, "hidden_layers": "400,400,400", "cross_layers": 3, "dropout": 0.2, "lr": 0.001,
                                    "optimizer": "adam"},
                         "movielens": {"embed_dim": 10, "hidden_layers": "400,400,400", "cross_layers": 3, "dropout": 0.2, "lr": 0.001,
                                       "optimizer": "adam"}},
                additive=False, pairwise=False, pair_terms=False)

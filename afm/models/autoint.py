"""AutoInt (Song et al., CIKM 2019): multi-head self-attention over the fields' embeddings, layer on layer
with residual connections, then one linear unit over every field's output; an MLP beside it where
`hidden_layers` names one (AutoInt+):

    h^0 = v,  h^{l+1} = ReLU(MultiHead(h^l) + h^l W_res),  y = w0 + sum_i w_i + out(h^L) [+ MLP(v)]

Its attention says which fields each field reads, per layer and head (`field_attention`); that is not
interaction, and the pages show the function-level interactions beside it."""
from __future__ import annotations

import torch
from torch import nn

from afm.models.blocks import MLP, EmbeddingModel, InteractingLayer
from afm.models.config import ModelConfig
from afm.models.families import Family
from afm.models.layers import evaluating


class AutoInt(EmbeddingModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        size = config.attention_heads * config.head_size
        widths = [config.embed_dim] + [size] * (config.attention_layers - 1)
        self.interacting = nn.ModuleList(InteractingLayer(w, config.attention_heads, config.head_size) for w in widths)
        self.out = nn.Linear(config.num_fields * size, 1)
        self.mlp = (MLP(config.num_fields * config.embed_dim, config.hidden_sizes, config.dropout, config.batch_norm)
                    if config.hidden_sizes else None)

    @classmethod
    def tensor_shapes(cls, config: ModelConfig) -> dict:
        size = config.attention_heads * config.head_size
        shapes = dict(super().tensor_shapes(config))
        for layer in range(config.attention_layers):
            width = config.embed_dim if layer == 0 else size
            shapes.update(InteractingLayer.shapes(f"interacting.{layer}.", width, config.attention_heads, config.head_size))
        shapes.update({"out.weight": (1, config.num_fields * size), "out.bias": (1,)})
        if config.hidden_sizes:
            shapes.update(MLP.shapes("mlp.", config.num_fields * config.embed_dim, config.hidden_sizes, config.batch_norm))
        return shapes

    @classmethod
    def multiply_adds_per_row(cls, config: ModelConfig) -> int:
        m, size = config.num_fields, config.attention_heads * config.head_size
        per_layer = 4 * m * config.embed_dim * size + 2 * m * m * size
        return config.attention_layers * per_layer + MLP.multiply_adds(m * config.embed_dim, config.hidden_sizes)

    def rest(self, v: torch.Tensor) -> torch.Tensor:
        h = v
        for layer in self.interacting:
            h = layer(h)
        out = self.out(h.flatten(1)).squeeze(-1)
        return out if self.mlp is None else out + self.mlp(v.flatten(1))

    def pair_terms(self, x: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """No exact pair terms (zeros); as the pair weights, the attention between the two fields of each
        pair, both ways, averaged over layers and heads and normalised over the pairs: a distribution over
        pairs per instance, read as AFM's is (entropy, top pairs), though it weighs no term."""
        maps = self.field_attention(x).mean((1, 2))  # (B, m, m)
        between = (maps[:, self.pair_rows, self.pair_cols] + maps[:, self.pair_cols, self.pair_rows]) / 2
        return between / between.sum(1, keepdim=True), torch.zeros_like(between)

    @torch.no_grad()
    def field_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, layers, heads, m, m): row i of a map is how field i's output reads the fields, summing to 1."""
        with evaluating(self):
            self.rest(self.embed(x))
            return torch.stack([layer.attention for layer in self.interacting], 1)


# AutoInt's paper: 3 layers, 2 heads of 32 (here 16 on the small data), residual connections, no MLP.
FAMILY = Family("autoint", "AutoInt", "multi-head self-attention over the fields, layer on layer", AutoInt,
                settings=("embed_dim", "dropout", "hidden_layers", "batch_norm", "attention_layers",
                          "attention_heads", "head_size"),
                presets={"default": {"hidden_layers": "", "attention_layers": 2, "lr": 0.003},
                         "frappe": {"embed_dim": 10, "hidden_layers": "", "attention_layers": 3, "head_size": 32, "lr": 0.001,
                                    "optimizer": "adam"},
                         "movielens": {"embed_dim": 10, "hidden_layers": "", "attention_layers": 3, "head_size": 32, "lr": 0.001,
                                       "optimizer": "adam"}},
                additive=False, pairwise=False, pair_terms=False, normalised=True, attention=True,
                field_attention=True)

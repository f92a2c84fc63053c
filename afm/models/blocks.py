"""The layers the MLP families (DeepFM, DCN-v2, AutoInt, NFM) share: an MLP, a DCN-v2 cross network, an
AutoInt interacting layer, batch normalisation that saves only float tensors, and `EmbeddingModel`, the
base whose prediction is bias + first order + exact pair terms (where the family has them) + a rest that
splits into no per-pair terms (`parts().rest`).

Each block also says, without being built, which tensors it saves (`shapes`), so a model's config gives
its file's names and shapes before anything is allocated (afm.store.checkpoints).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from afm.fast.ops import gather_rows, softmax_last
from afm.models.config import ModelConfig, Parts
from afm.models.layers import FLOAT_BYTES, AdditiveModel, evaluating


class BatchNorm(nn.BatchNorm1d):
    """nn.BatchNorm1d without its integer step counter in the saved state: with a momentum set the counter
    is never read, and every tensor of a model file is float32 (loading puts it back at zero)."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination.pop(prefix + "num_batches_tracked", None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.setdefault(prefix + "num_batches_tracked", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def batch_norm_shapes(prefix: str, width: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}{name}": (width,) for name in ("weight", "bias", "running_mean", "running_var")}


class MLP(nn.Module):
    """Linear, batch norm (optional), ReLU and dropout per hidden layer, as pytorch-fm and DeepCTR-Torch
    build theirs; then one output unit unless `output` is False (a family that joins it with another part)."""

    def __init__(self, width: int, sizes: tuple[int, ...], dropout: float, batch_norm: bool, output: bool = True):
        super().__init__()
        layers = []
        for size in sizes:
            layers += [nn.Linear(width, size), *([BatchNorm(size)] if batch_norm else []), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.layers = nn.Sequential(*layers)
        self.out = nn.Linear(width, 1) if output else None
        self.width = width  # of what it hands on: its last hidden layer (or its input, with no hidden layer)

    @staticmethod
    def shapes(prefix: str, width: int, sizes: tuple[int, ...], batch_norm: bool, output: bool = True) -> dict:
        shapes, index = {}, 0
        for size in sizes:
            shapes.update({f"{prefix}layers.{index}.weight": (size, width), f"{prefix}layers.{index}.bias": (size,)})
            if batch_norm:
                shapes.update(batch_norm_shapes(f"{prefix}layers.{index + 1}.", size))
            index += 4 if batch_norm else 3
            width = size
        if output:
            shapes.update({f"{prefix}out.weight": (1, width), f"{prefix}out.bias": (1,)})
        return shapes

    @staticmethod
    def multiply_adds(width: int, sizes: tuple[int, ...]) -> int:
        total = 0
        for size in sizes:
            total, width = total + width * size, size
        return total + width

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layers(x)).squeeze(-1)


class CrossNetwork(nn.Module):
    """DCN-v2's cross network, the matrix form: x_{l+1} = x_0 * (W_l x_l + b_l) + x_l."""

    def __init__(self, width: int, layers: int):
        super().__init__()
        self.kernels = nn.Parameter(torch.empty(layers, width, width))
        self.bias = nn.Parameter(torch.zeros(layers, width))
        for kernel in self.kernels:
            nn.init.xavier_normal_(kernel)

    @staticmethod
    def shapes(prefix: str, width: int, layers: int) -> dict:
        return {f"{prefix}kernels": (layers, width, width), f"{prefix}bias": (layers, width)}

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for kernel, bias in zip(self.kernels, self.bias):
            x = x0 * F.linear(x, kernel, bias) + x
        return x


class InteractingLayer(nn.Module):
    """AutoInt's multi-head self-attention over fields, with a residual projection and a ReLU, as the paper
    and DeepCTR-Torch have it (unscaled dot products): (B, m, width) -> (B, m, heads * head_size). The last
    forward's attention, (B, heads, m, m), is kept for reading (`attention`)."""

    def __init__(self, width: int, heads: int, head_size: int):
        super().__init__()
        size = heads * head_size
        self.heads, self.head_size = heads, head_size
        for name in ("query", "key", "value", "residual"):
            setattr(self, name, nn.Parameter(torch.randn(width, size) * 0.05))
        self.attention: torch.Tensor | None = None

    @staticmethod
    def shapes(prefix: str, width: int, heads: int, head_size: int) -> dict:
        return {f"{prefix}{name}": (width, heads * head_size) for name in ("query", "key", "value", "residual")}

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        b, m, _ = v.shape
        split = lambda w: (v @ w).view(b, m, self.heads, self.head_size).transpose(1, 2)  # noqa: E731 (B, H, m, d)
        query, key, value = split(self.query), split(self.key), split(self.value)
        attention = softmax_last(query @ key.transpose(-1, -2))  # (B, H, m, m); fast on short rows
        self.attention = attention.detach()
        out = (attention @ value).transpose(1, 2).reshape(b, m, -1)
        return F.relu(out + v @ self.residual)


class EmbeddingModel(AdditiveModel):
    """Bias, first-order weights and feature embeddings v, plus what the family adds:
    y = w0 + sum_i w_i + sum_{i<j} (exact pair term, where the family has one) + rest(v).
    `parts` splits a prediction exactly: `rest` is the part of no per-pair split (an MLP's, say), so the
    bars of a waterfall still sum to the prediction."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.embedding = nn.Embedding(config.num_features, config.embed_dim)
        nn.init.normal_(self.embedding.weight, std=0.01)

    @classmethod
    def tensor_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        return {**super().tensor_shapes(config), "embedding.weight": (config.num_features, config.embed_dim)}

    @classmethod
    def step_bytes_per_row(cls, config: ModelConfig) -> int:
        widest = max((config.num_fields * config.embed_dim, *config.hidden_sizes))
        return (config.num_fields * config.embed_dim + widest * (len(config.hidden_sizes) + 2)) * FLOAT_BYTES * 4

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return gather_rows(self.embedding, x)  # (B, m, k)

    def pair_sum(self, v: torch.Tensor) -> torch.Tensor:
        """The sum of the exact pair terms, (B,): none here."""
        return v.new_zeros(v.shape[0])

    def rest(self, v: torch.Tensor) -> torch.Tensor:
        """The part of no per-pair split, (B,), from the field embeddings."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.embed(x)
        return self.bias + self.first_order(x).sum(1) + self.pair_sum(v) + self.rest(v)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with evaluating(self):
            return self(x)

    @torch.no_grad()
    def parts(self, x: torch.Tensor, chunk: int = 8192) -> Parts:
        with evaluating(self):
            attention, interaction = self.pair_terms(x, chunk)
            first = self.first_order(x)
            rest = self.rest(self.embed(x))
            bias = self.bias.expand(x.shape[0])
            prediction = bias + first.sum(1) + interaction.sum(1) + rest
            return Parts(bias, first, attention, interaction, interaction, prediction, rest)

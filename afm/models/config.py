"""What a model is (`ModelConfig`, recorded in model.json) and the exact split of its predictions (`Parts`)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from afm.core import settings
from afm.core.errors import AFMError
from afm.models.families import Family, family


@dataclass(frozen=True)
class ModelConfig:
    """What a model is; each setting's meaning, bounds and default are in `afm.core.settings`. `kind` names
    its family (afm.models.families); settings the family does not take keep their defaults."""

    kind: str
    num_features: int
    num_fields: int
    embed_dim: int = settings.default("embed_dim")
    attention_factor: int = settings.default("attention_factor")
    dropout: float = 0.0
    attention_dropout: float = 0.0
    attention: bool = True  # False: uniform pair weights, for a family with attention
    learn_p: bool = True
    hidden_layers: str = settings.default("hidden_layers")
    batch_norm: bool = settings.default("batch_norm")
    cross_layers: int = settings.default("cross_layers")
    cross_structure: str = settings.default("cross_structure")
    attention_layers: int = settings.default("attention_layers")
    attention_heads: int = settings.default("attention_heads")
    head_size: int = settings.default("head_size")
    loss: str = "squared"  # "logistic": the output is a logit (afm.core.metrics)

    def __post_init__(self):
        """Refuse impossible sizes before anything is allocated (a config can come from a file)."""
        if not isinstance(self.kind, str):
            raise AFMError(f"unknown model family {self.kind!r}")
        family(self.kind)
        for name in ("num_features", "num_fields"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "num_fields" else 1):
                raise AFMError(f"{name} must be a whole number of at least {2 if name == 'num_fields' else 1}, "
                               f"not {value!r}")
        for name in ("embed_dim", "attention_factor", "dropout", "attention_dropout", "attention", "learn_p", "loss",
                     "hidden_layers", "batch_norm", "cross_layers", "cross_structure", "attention_layers",
                     "attention_heads", "head_size"):
            settings.BY_NAME[name].check(getattr(self, name))

    @property
    def family(self) -> Family:
        return family(self.kind)

    @property
    def label(self) -> str:
        return self.family.label

    @property
    def additive(self) -> bool:
        """The prediction splits exactly into bias + first order + one term per pair (`parts`)."""
        return self.family.additive

    @property
    def pairwise(self) -> bool:
        """The model has feature embeddings and pair products."""
        return self.family.pairwise

    @property
    def normalised_weights(self) -> bool:
        """Its pair weights sum to one per instance, as attention does (uniform 1/P without attention)."""
        return self.family.normalised

    @property
    def has_attention(self) -> bool:
        """It learned per-instance pair weights that are worth reading."""
        return self.family.attention and self.attention

    @property
    def has_field_attention(self) -> bool:
        """It attends over fields (self-attention per layer and head), as AutoInt does: maps worth reading,
        though attention is not interaction."""
        return self.family.field_attention

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(int(h) for h in self.hidden_layers.split(",") if h)

    @property
    def num_pairs(self) -> int:
        return self.num_fields * (self.num_fields - 1) // 2

    def to_dict(self) -> dict:
        return asdict(self)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name and shape of every saved tensor, computed without building the model."""
        return self.family.model.tensor_shapes(self)

    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in self.tensor_shapes().values())

    def step_bytes(self, batch_size: int) -> int:
        """A generous estimate of what one training step allocates for its batch."""
        return batch_size * self.family.model.step_bytes_per_row(self)

    def step_multiply_adds(self, batch_size: int) -> int:
        """Multiply-adds of one training step, roughly."""
        return batch_size * self.family.model.multiply_adds_per_row(self)

    def describe(self) -> str:
        """Its sizes in a few words: 'k=16, t=16', 'k=10, MLP 400-400-400'."""
        takes = self.family.takes
        sizes = [f"k={self.embed_dim}"] if takes("embed_dim") else []
        if takes("attention_factor"):
            sizes.append(f"t={self.attention_factor}")
        if takes("cross_layers"):
            sizes.append(f"{self.cross_layers} cross layers ({self.cross_structure})")
        if takes("attention_layers"):
            sizes.append(f"{self.attention_layers} layers x {self.attention_heads} heads of {self.head_size}")
        if takes("hidden_layers") and self.hidden_sizes:
            sizes.append("MLP " + "-".join(map(str, self.hidden_sizes)) + (" with batch norm" if self.batch_norm else ""))
        return ", ".join(sizes) or "first order only"


@dataclass
class Parts:
    """The exact split of a batch of predictions. Shapes: B, (B, m), (B, P)."""

    bias: torch.Tensor
    first_order: torch.Tensor
    attention: torch.Tensor  # the weight of each pair's term
    interaction: torch.Tensor  # p^T (v_i * v_j)
    contribution: torch.Tensor  # attention * interaction
    prediction: torch.Tensor  # bias + first_order.sum(1) + contribution.sum(1) + rest
    rest: torch.Tensor  # B: the part of no exact per-pair split (an MLP's, a cross network's); zero when additive

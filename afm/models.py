"""FM and AFM (Xiao et al., IJCAI 2017) over m fields with one active feature each.

    FM:  y = w0 + sum_i w_i + p^T sum_{i<j} v_i*v_j                     (p fixed to ones)
    AFM: y = w0 + sum_i w_i + p^T sum_{i<j} a_ij (v_i*v_j)
         a_ij = softmax over the m(m-1)/2 pairs of h^T ReLU(W (v_i*v_j) + b)

Both models are additive, so every prediction splits exactly into bias + first-order terms + one
contribution a_ij * p^T(v_i*v_j) per pair: `parts()` returns that split. `forward()` is the fast path
used for training, with dropout where the authors put it (attention output, pooled interaction vector).

A pair's product and attention score depend only on its two features, and a batch repeats feature pairs
often, so AFM computes each distinct feature pair once and gathers it back (`distinct_pairs`).

Embedding lookups, pair products and FM's pair sum go through `afm.ops`, whose hand-written gradients
were faster on a CPU than autograd's (README, Performance); the values are the same.

AFM's three differences from FM are switches: `attention` (False: a_ij = 1/P, uniform),
`learn_p` (False: p fixed to ones) and initialising from a trained FM (`load_fm_embeddings`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from afm import settings
from afm.errors import AFMError
from afm.kernels import attention_scores, fully_fused, pair_pool, pair_scores, shared_pool
from afm.ops import field_pairs, gather_rows, pair_products, pairwise_sum


@dataclass(frozen=True)
class ModelConfig:
    """What a model is; each setting's meaning, bounds and default are in `afm.settings`."""

    kind: str  # "fm" or "afm"
    num_features: int
    num_fields: int
    embed_dim: int = settings.default("embed_dim")
    attention_factor: int = settings.default("attention_factor")  # AFM only
    dropout: float = 0.0
    attention_dropout: float = 0.0  # AFM only
    attention: bool = True  # AFM only
    learn_p: bool = True  # AFM only
    loss: str = "squared"  # "logistic": the output is a logit (afm.metrics)

    def __post_init__(self):
        """Refuse impossible sizes before anything is allocated (a config can come from a file)."""
        settings.check_kind(self.kind)
        for name in ("num_features", "num_fields"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "num_fields" else 1):
                raise AFMError(f"{name} must be a whole number of at least {2 if name == 'num_fields' else 1}, "
                               f"not {value!r}")
        for name in ("embed_dim", "attention_factor", "dropout", "attention_dropout", "attention", "learn_p", "loss"):
            settings.BY_NAME[name].check(getattr(self, name))

    @property
    def num_pairs(self) -> int:
        return self.num_fields * (self.num_fields - 1) // 2

    def to_dict(self) -> dict:
        return asdict(self)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name and shape of every saved tensor, computed without building the model."""
        n, k, t = self.num_features, self.embed_dim, self.attention_factor
        shapes = {"bias": (1,), "linear.weight": (n, 1), "embedding.weight": (n, k)}
        if self.kind == "afm":
            shapes["p"] = (k,)
            if self.attention:
                shapes.update({"attention_W": (t, k), "attention_b": (t,), "attention_h": (t,)})
        return shapes

    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in self.tensor_shapes().values())


@dataclass
class Parts:
    """The exact split of a batch of predictions. Shapes: B, (B, m), (B, P)."""

    bias: torch.Tensor
    first_order: torch.Tensor
    attention: torch.Tensor
    interaction: torch.Tensor  # p^T (v_i * v_j)
    contribution: torch.Tensor  # attention * interaction
    prediction: torch.Tensor


class _PairwiseModel(nn.Module):
    """Bias, first-order weights and embeddings shared by FM and AFM."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        m, k = config.num_fields, config.embed_dim
        self.bias = nn.Parameter(torch.zeros(1))
        self.linear = nn.Embedding(config.num_features, 1)  # first-order w_i
        self.embedding = nn.Embedding(config.num_features, k)  # v_i
        nn.init.zeros_(self.linear.weight)
        nn.init.normal_(self.embedding.weight, std=0.01)  # the authors' initialisation
        rows, cols = torch.triu_indices(m, m, offset=1)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)
        self.pooled_dropout = nn.Dropout(config.dropout)

    @property
    def num_pairs(self) -> int:
        return self.pair_rows.numel()

    def first_order(self, x: torch.Tensor) -> torch.Tensor:
        return gather_rows(self.linear, x).squeeze(-1)  # (B, m)

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
        """p: fixed to ones in FM (a buffer), learned in AFM (a parameter)."""
        return self.p

    def pair_scores(self, products: torch.Tensor) -> torch.Tensor | None:
        """Unnormalised attention score of each pair product, (..., k) -> (...); None for fixed weights."""
        return None

    def pair_weights(self, scores: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
        """(B, P) pair weights from (B, P) scores."""
        raise NotImplementedError

    def attention_penalty(self) -> torch.Tensor:
        """sum(W^2) of the attention network; zero where there is none."""
        return self.bias.new_zeros(())

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions without dropout, through `parts`, which computes each distinct feature pair once."""
        return self.parts(x).prediction

    @torch.no_grad()
    def parts(self, x: torch.Tensor, chunk: int = 8192) -> Parts:
        """The exact decomposition, computed without dropout; parts sum to `prediction`.

        A pair's product, score and interaction depend only on its two features, so each distinct feature
        pair in the batch is computed once (in chunks) and gathered back.
        """
        was_training = self.training
        self.eval()
        try:
            first_ids, second_ids, inverse = self.distinct_pairs(x)
            interactions, scores = [], []
            for first, second in zip(first_ids.split(chunk), second_ids.split(chunk)):
                products = self.pair_products(first, second)  # (U, k)
                interactions.append(products @ self.projection())
                scores.append(self.pair_scores(products))
            interaction = torch.cat(interactions)[inverse]
            score = None if scores[0] is None else torch.cat(scores)[inverse]
            attention = self.pair_weights(score, inverse.shape)
            contribution = attention * interaction
            first = self.first_order(x)
            bias = self.bias.expand(x.shape[0])
            prediction = bias + first.sum(1) + contribution.sum(1)
            return Parts(bias, first, attention, interaction, contribution, prediction)
        finally:
            self.train(was_training)


class FM(_PairwiseModel):
    """Factorization machine; pair weights all one and p fixed to ones."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.register_buffer("p", torch.ones(config.embed_dim), persistent=False)

    def pair_weights(self, scores, shape):
        return self.bias.new_ones(shape)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            return self(x)  # the O(m k) forward beats pair-by-pair evaluation for FM
        finally:
            self.train(was_training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(x, pairwise_sum(gather_rows(self.embedding, x)))  # the pair sum in O(m k)


class AFM(_PairwiseModel):
    """Attentional factorization machine."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        k, t = config.embed_dim, config.attention_factor
        self.p = nn.Parameter(torch.ones(k), requires_grad=config.learn_p)  # the authors start p at ones
        self.attention_dropout = nn.Dropout(config.attention_dropout)
        if config.attention:
            glorot = (2.0 / (k + t)) ** 0.5  # the authors' initialisation
            self.attention_W = nn.Parameter(torch.randn(t, k) * glorot)
            self.attention_b = nn.Parameter(torch.randn(t) * glorot)
            self.attention_h = nn.Parameter(torch.randn(t))

    # Training computes each distinct feature pair of a batch once where that pays: sorting the batch's
    # pair keys costs about as much per cell as SHARE_COST multiply-adds, and sharing saves k * (t + 1) of them
    # for every repeated cell. Where a cell runs wholly in afm.kernels (on the CPU, a small t), it costs
    # far less and sharing pays only past SHARE_COST_FUSED (measured: Criteo-shaped rows at 0.4-0.5 of that
    # cost ran 1.9x faster in the kernels, Frappe's at 1.5-2.2 level either way, from 3.0 faster shared).
    # `choose_pair_sharing` decides once per run, from the first batch, so a run's arithmetic (and its bits)
    # never depend on timing. Every path gives the same values.
    SHARE_COST = 400
    SHARE_COST_FUSED = 1500
    share_pairs = True
    fused_kernels = True  # the every-cell path on the CPU in afm.kernels (tests compare it with PyTorch's)

    def fused_cells(self, x: torch.Tensor) -> bool:
        """Whether this model's work on x (ids or pair products, on its device) runs in afm.kernels: CPU,
        float32."""
        return self.fused_kernels and x.device.type == "cpu" and self.embedding.weight.dtype == torch.float32

    @torch.no_grad()
    def choose_pair_sharing(self, x: torch.Tensor) -> bool:
        """Share pairs when the repeated cells of this batch save more work than finding them costs."""
        config = self.config
        first, _, inverse = self.distinct_pairs(x)
        repeated = 1.0 - first.numel() / max(inverse.numel(), 1)
        per_cell = config.embed_dim * ((config.attention_factor if config.attention else 0) + 1)
        cheap_cells = self.fused_cells(x) and (not config.attention or fully_fused(config.embed_dim, config.attention_factor))
        cost = self.SHARE_COST_FUSED if cheap_cells else self.SHARE_COST
        self.share_pairs = repeated * per_cell > cost
        return self.share_pairs

    def pair_scores(self, products: torch.Tensor) -> torch.Tensor | None:
        """h^T ReLU(W (v_i*v_j) + b) for each pair product: (..., k) -> (...)."""
        if not self.config.attention:
            return None
        if self.fused_cells(products):
            flat = products.reshape(-1, products.shape[-1])
            return attention_scores(flat, self.attention_W, self.attention_b, self.attention_h).view(products.shape[:-1])
        # Not relu_: in place on addmm's output view would make autograd copy it back (CopySlices).
        hidden = F.linear(products, self.attention_W, self.attention_b).relu()  # (..., t), bias fused
        return hidden @ self.attention_h

    def pair_weights(self, scores: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
        """Softmax over the pairs of each instance (not over a size-1 axis); 1/P without attention."""
        if scores is None:
            return self.bias.new_full(shape, 1.0 / shape[1])
        return torch.softmax(scores, dim=1)

    def attention_penalty(self) -> torch.Tensor:
        if not self.config.attention:
            return super().attention_penalty()
        return self.attention_W.square().sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.share_pairs:
            first, second, inverse = self.distinct_pairs(x)
            products = self.pair_products(first, second)  # (U, k), each distinct pair once
            scores = self.pair_scores(products)
            attention = self.pair_weights(None if scores is None else scores[inverse], inverse.shape)  # (B, P)
            if self.fused_cells(x):
                return self.output(x, shared_pool(products, inverse, self.attention_dropout(attention)))
            per_row = products.index_select(0, inverse.flatten()).view(*inverse.shape, -1)  # (B, P, k)
        else:  # every (row, pair) cell, from each row's m embeddings (see share_pairs)
            v = gather_rows(self.embedding, x)  # (B, m, k): the table's gradient gathers B * m rows, not B * P
            if self.fused_cells(x):
                return self.output(x, self._fused_cell_pool(v))
            per_row = field_pairs(v, self.pair_rows, self.pair_cols)  # (B, P, k)
            scores = self.pair_scores(per_row)
            attention = self.pair_weights(scores, per_row.shape[:2])
        attention = self.attention_dropout(attention)
        return self.output(x, torch.bmm(attention.unsqueeze(1), per_row).squeeze(1))  # pooled: (B, k)

    def _fused_cell_pool(self, v: torch.Tensor) -> torch.Tensor:
        """The every-cell path's pooled vector in afm.kernels: the same values, no (B, P, k) tensor."""
        scores = None
        if self.config.attention:
            scores = pair_scores(v, self.pair_rows, self.pair_cols, self.attention_W, self.attention_b,
                                 self.attention_h)
        attention = self.attention_dropout(self.pair_weights(scores, (v.shape[0], self.num_pairs)))
        return pair_pool(v, self.pair_rows, self.pair_cols, attention)

    @torch.no_grad()
    def load_fm_embeddings(self, fm: FM, p_start: str = "ones") -> None:
        """Start from a trained FM, as the paper does: copy bias, first-order weights and embeddings.

        p_start "ones" is the authors' choice. Attention sums to 1 over the P pairs where FM's weights sum
        to P, so that shrinks the pair term P-fold and AFM relearns the scale; "pairs" starts p at P, so AFM
        with uniform attention is exactly the FM it starts from; "fm" also zeroes h, so the attention starts
        uniform and the AFM computes exactly the FM's function at epoch 0 (FM+A done properly)."""
        if fm.config.num_features != self.config.num_features or fm.config.embed_dim != self.config.embed_dim:
            raise AFMError(
                f"the FM has {fm.config.num_features} features x {fm.config.embed_dim} dims, "
                f"this AFM {self.config.num_features} x {self.config.embed_dim}")
        if fm.config.loss != self.config.loss:
            raise AFMError(f"the FM was trained with {fm.config.loss} loss and this AFM uses {self.config.loss}; "
                           f"start from an FM of the same loss")
        self.bias.copy_(fm.bias)
        self.linear.weight.copy_(fm.linear.weight)
        self.embedding.weight.copy_(fm.embedding.weight)
        if p_start not in ("ones", "pairs", "fm"):
            raise AFMError(f"p_start must be 'ones', 'pairs' or 'fm', not {p_start!r}")
        if p_start in ("pairs", "fm") and self.config.learn_p:
            self.p.fill_(float(self.num_pairs))
        if p_start == "fm" and self.config.attention:
            self.attention_h.zero_()  # every score 0: uniform 1/P, and with p = P exactly the FM's pair sum


def build_model(config: ModelConfig) -> _PairwiseModel:
    if config.kind == "fm":
        return FM(config)
    if config.kind == "afm":
        return AFM(config)
    raise AFMError(f"unknown model kind {config.kind!r}; expected 'fm' or 'afm'")

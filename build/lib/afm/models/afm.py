"""AFM, the attentional factorization machine (Xiao et al., IJCAI 2017):

    y = w0 + sum_i w_i + p^T sum_{i<j} a_ij (v_i*v_j)
    a_ij = softmax over the m(m-1)/2 pairs of h^T ReLU(W (v_i*v_j) + b)

Dropout where the authors put it (attention output, pooled interaction vector). AFM's three differences
from FM are switches: `attention` (False: a_ij = 1/P, uniform), `learn_p` (False: p fixed to ones) and
initialising from a trained FM (`load_fm_embeddings`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from afm.core.errors import AFMError
from afm.fast.kernels import attention_scores, fully_fused, pair_pool, pair_scores, shared_pool
from afm.fast.ops import field_pairs, gather_rows
from afm.models.config import ModelConfig
from afm.models.families import Family
from afm.models.fm import FM
from afm.models.layers import FLOAT_BYTES, PairwiseModel


class AFM(PairwiseModel):
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

    @classmethod
    def tensor_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        k, t = config.embed_dim, config.attention_factor
        shapes = {**super().tensor_shapes(config), "p": (k,)}
        if config.attention:
            shapes.update({"attention_W": (t, k), "attention_b": (t,), "attention_h": (t,)})
        return shapes

    @classmethod
    def step_bytes_per_row(cls, config: ModelConfig) -> int:
        """Per (row, pair) cell at most: the pair product (k), the attention hidden layer (t), the gathered
        products for pooling (k) and their gradients."""
        per_cell = 2 * config.embed_dim + (config.attention_factor if config.attention else 0) + 2 + 3
        return config.num_pairs * per_cell * FLOAT_BYTES * 2

    @classmethod
    def multiply_adds_per_row(cls, config: ModelConfig) -> int:
        """Pair products and the attention network over every pair (t x k each)."""
        return config.num_pairs * config.embed_dim * (1 + (config.attention_factor if config.attention else 0))

    # Training computes each distinct feature pair of a batch once where that pays: sorting the batch's
    # pair keys costs about as much per cell as SHARE_COST multiply-adds, and sharing saves k * (t + 1) of them
    # for every repeated cell. Where a cell runs wholly in afm.fast.kernels (on the CPU, a small t), it costs
    # far less and sharing pays only past SHARE_COST_FUSED (measured: Criteo-shaped rows at 0.4-0.5 of that
    # cost ran 1.9x faster in the kernels, Frappe's at 1.5-2.2 level either way, from 3.0 faster shared).
    # `choose_pair_sharing` decides once per run, from the first batch, so a run's arithmetic (and its bits)
    # never depend on timing. Every path gives the same values.
    SHARE_COST = 400
    SHARE_COST_FUSED = 1500
    share_pairs = True
    fused_kernels = True  # the every-cell path on the CPU in afm.fast.kernels (tests compare it with PyTorch's)

    def fused_cells(self, x: torch.Tensor) -> bool:
        """Whether this model's work on x (ids or pair products, on its device) runs in afm.fast.kernels: CPU,
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
        """The every-cell path's pooled vector in afm.fast.kernels: the same values, no (B, P, k) tensor."""
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


# The paper's AFM: Frappe t = 256, dropout 0.2, lambda 16, lr 0.015; MovieLens t = 8, dropout 0.5, lambda 2,
# lr 0.1 (with the data's k, batch and Adagrad).
FAMILY = Family("afm", "AFM", "attentional factorization machine: pairs weighed by attention", AFM,
                settings=("embed_dim", "attention_factor", "dropout", "attention_dropout", "attention", "learn_p",
                          "l2_attention", "p_start", "freeze_fm"),
                presets={"default": {"dropout": 0.2},
                         "frappe": {"dropout": 0.2, "lr": 0.015, "attention_factor": 256, "l2_attention": 16.0},
                         "movielens": {"dropout": 0.5, "lr": 0.1, "attention_factor": 8, "l2_attention": 2.0}},
                normalised=True, attention=True, starts_from="fm")

"""Five operations with hand-written gradients, each measured faster on a CPU than autograd's own
(`python -m afm bench`; docs/performance.md has the figures). All give the same values and gradients as the plain
expressions they replace, which `tests/test_ops.py` checks.

- `gather_rows(table, ids)` is `table[ids]`, whose backward is one `index_add_` of the same rows where
  nn.Embedding's dense backward does more.
- `pair_products(table, first, second)` is `table[first] * table[second]`. Its backward adds each side's
  gradient straight into the table's: no (2, U, k) stack of the two, no separate multiply nodes.
- `field_pairs(v, rows, cols)` is `v[:, rows] * v[:, cols]`, every (row, pair) cell from each row's field
  embeddings. Its backward reuses the two gathered sides and adds both into one zero-filled gradient, where
  autograd fills a zero gradient for each side and gathers the sides again.
- `pairwise_sum(v)` is `sum_{i<j} v_i * v_j` over the fields of `v`. Its gradient for v_i is
  `g * (sum(v) - v_i)`: one pass, where autograd through `((sum v)^2 - sum v^2) / 2` takes several.
- `softmax_last(scores)` is `softmax(scores, -1)`, written out (backward `y * (g - sum(g * y))`) on rows as
  short as a field count, where PyTorch's kernel is slow; PyTorch's on longer rows.
"""
from __future__ import annotations

import torch


def _table_gradient(shape: torch.Size, sparse: bool, *ids_and_rows: tuple[torch.Tensor, torch.Tensor]):
    """A table's gradient from (ids, rows) parts: rows added at their ids. Sparse: one row per distinct id
    (coalesced; valid ids: the forward indexed them), each part added into it, so the parts' rows, which can
    be many (two per distinct feature pair), are never concatenated and the optimizer sums nothing again.
    Dense: one `index_add_` per part into zeros."""
    if sparse:
        touched, position = torch.unique(torch.cat([ids for ids, _ in ids_and_rows]), return_inverse=True)
        summed = ids_and_rows[0][1].new_zeros(len(touched), shape[1])
        for part in zip(position.split([len(ids) for ids, _ in ids_and_rows]), (rows for _, rows in ids_and_rows)):
            summed.index_add_(0, *part)
        return torch.sparse_coo_tensor(touched.unsqueeze(0), summed, shape, is_coalesced=True,
                                       check_invariants=False)
    grad = ids_and_rows[0][1].new_zeros(shape)
    for ids, rows in ids_and_rows:
        grad.index_add_(0, ids, rows)
    return grad


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: torch.Tensor, ids: torch.Tensor, sparse: bool) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.table_shape, ctx.sparse = table.shape, sparse
        return table.index_select(0, ids.reshape(-1)).view(*ids.shape, table.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (ids,) = ctx.saved_tensors
        rows = grad.reshape(-1, ctx.table_shape[1])
        return _table_gradient(ctx.table_shape, ctx.sparse, (ids.reshape(-1), rows)), None, None


def gather_rows(embedding: torch.nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """embedding(ids), (...) -> (..., dim), with a sparse gradient where `embedding.sparse` is set."""
    return _GatherRows.apply(embedding.weight, ids, embedding.sparse)


class _PairProducts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: torch.Tensor, first: torch.Tensor, second: torch.Tensor, sparse: bool):
        v_first, v_second = table.index_select(0, first), table.index_select(0, second)
        ctx.save_for_backward(first, second, v_first, v_second)
        ctx.table_shape, ctx.sparse = table.shape, sparse
        return v_first * v_second

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        first, second, v_first, v_second = ctx.saved_tensors
        parts = (first, grad * v_second), (second, grad * v_first)  # d(v_i * v_j)/dv_i = v_j, and back
        return _table_gradient(ctx.table_shape, ctx.sparse, *parts), None, None, None


def pair_products(embedding: torch.nn.Embedding, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """embedding(first) * embedding(second) for (U,) id tensors: (U, k), one gradient for the table."""
    return _PairProducts.apply(embedding.weight, first, second, embedding.sparse)


class _FieldPairs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        v_rows, v_cols = v.index_select(1, rows), v.index_select(1, cols)
        ctx.save_for_backward(rows, cols, v_rows, v_cols)
        ctx.num_fields = v.shape[1]
        return v_rows * v_cols

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, cols, v_rows, v_cols = ctx.saved_tensors
        grad_v = grad.new_zeros(grad.shape[0], ctx.num_fields, grad.shape[2]).index_add_(1, rows, grad * v_cols)
        return grad_v.index_add_(1, cols, grad * v_rows), None, None


def field_pairs(v: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """v[:, rows] * v[:, cols] for field embeddings (B, m, k) and pair index tensors (P,): (B, P, k)."""
    return _FieldPairs.apply(v, rows, cols)


class _PairwiseSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor) -> torch.Tensor:
        total = v.sum(1)
        ctx.save_for_backward(v, total)
        # sum_{i<j} v_i*v_j = ((sum v)^2 - sum v^2) / 2: O(m k) instead of O(m^2 k)
        return 0.5 * (total.square() - v.square().sum(1))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        v, total = ctx.saved_tensors
        # g * (total - v_i) as g*total - g*v_i: one pass over the (B, m, k) tensor instead of two
        return torch.addcmul((grad * total).unsqueeze(1), grad.unsqueeze(1), v, value=-1)


def pairwise_sum(v: torch.Tensor) -> torch.Tensor:
    """sum over i<j of v[:, i] * v[:, j]: (B, m, k) -> (B, k)."""
    return _PairwiseSum.apply(v)


class _ShortRowSoftmax(torch.autograd.Function):
    """Softmax over the last axis written out, with the closed-form backward y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx, scores):
        e = (scores - scores.amax(-1, keepdim=True)).exp_()
        y = e.div_(e.sum(-1, keepdim=True))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return y * (grad - (grad * y).sum(-1, keepdim=True))


SHORT_ROW = 16  # up to this row length the written-out softmax is faster (below); longer, PyTorch's


def softmax_last(scores: torch.Tensor) -> torch.Tensor:
    """softmax(scores, dim=-1). PyTorch's CPU kernel is slow on rows as short as a field count: forward and
    backward over (4096, 2, 8, 8), one thread, 24.8 ms against 6.0 ms written out (10 x 10: 29.8 against
    6.6 ms); at 39 x 39 PyTorch's is faster (237 against 306 ms). The same values to 2e-7."""
    return _ShortRowSoftmax.apply(scores) if scores.shape[-1] <= SHORT_ROW else torch.softmax(scores, -1)

"""Fused CPU kernels, compiled by numba: AFM's every-cell path without a (B, P, k) tensor, and Adagrad on a
table's touched rows in one pass.

Where feature pairs do not repeat within a batch (wide click logs, ml-tag), AFM computes every (row, pair)
cell. In PyTorch's eager operations each step of that (the pair products, the attention network, its
ReLU, the pooling, and each of their gradients) is a pass over a (B, P, k) or (B, P, t) tensor in memory.
Here a cell's product, hidden layer and gradients stay in cache and registers. Autograd Functions:

- `pair_scores(v, rows, cols, W, b, h)`: h^T ReLU(W (v_i * v_j) + b) for every cell, (B, m, k) -> (B, P);
- `pair_pool(v, rows, cols, a)`: sum over cells of a_c (v_i * v_j), (B, m, k), (B, P) -> (B, k);
- `attention_scores(products, W, b, h)`: the scores of given pair products (N, k) -> (N,), its matmuls in
  `afm.fast.matmul` (the shared path's distinct pairs, and `pair_scores` for a large attention network);
- `shared_pool(products, inverse, a)`: the pooling from a batch's distinct pair products, (U, k) -> (B, k).

`pair_scores` has three layouts. Many pairs (wide data): a group of 32 rows is transposed so the rows are
the vector axis, and blocks of those rows x a few pairs (about BLOCK_CELLS cells) go through every step in
cache; the backward pass recomputes a block's hidden layer. Few pairs (ml-tag's 3): one cell at a time,
vectorised along k, its hidden layer kept for the backward pass. A large attention network (t > 64, or
k and t both 64 or more where oneDNN is here): the cells' products in one kernel pass, then
`attention_scores`, whose three matmuls run at the core's speed (`afm.fast.matmul`).

They give the values and gradients of the plain expressions up to float summation order
(`tests/test_kernels.py`, against autograd). A batch is split across PyTorch's intra-op thread count (the
kernels release the GIL); each part sums its own W, b and h gradients and the parts are added in a fixed
order, so a run is reproducible for a given thread count, as the rest of training is. numba caches the
compiled kernels beside this file (about 5 s to compile them all on first use, 0.3 s to load after).
"""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from afm.fast.matmul import mm, onednn_sizes, relu_linear

def _probe():
    return 0


def _can_cache() -> bool:
    """Whether numba has a folder to cache compiled kernels in (beside this file, or the user's cache). A
    read-only install run by a service user has none; numba then refuses every cache=True function at
    import, so every command died before --help. There, compile on each run instead, and say so once."""
    try:
        numba.njit(cache=True)(_probe)
        return True
    except RuntimeError as exc:
        if "cannot cache" not in str(exc):
            raise
        warnings.warn("numba has no writable cache folder here (set NUMBA_CACHE_DIR to one): the fused kernels "
                      "compile on every run, about 5 s", RuntimeWarning, stacklevel=2)
        return False


CACHE = _can_cache()
# reassoc lets the dot products vectorise; no nnan/ninf, so a diverging model still shows its NaNs.
_jit = numba.njit(cache=CACHE, nogil=True, fastmath={"reassoc", "contract"}, boundscheck=False, error_model="numpy")
BLOCK_CELLS = 512  # cells a block holds: its (k, cells) products and (t, cells) hidden layer stay in cache
GROUPED_MIN_PAIRS = 16  # fewer pairs: one cell at a time along k (the row kernels)


def _group_shape(num_pairs: int) -> tuple[int, int] | None:
    """(rows per group, pairs per block): a row group is the vector axis (32 floats), and a block is that
    many rows x a few pairs, about BLOCK_CELLS cells. None: few pairs, the row kernels."""
    if num_pairs < GROUPED_MIN_PAIRS:
        return None
    return 32, max(1, BLOCK_CELLS // 32)


@_jit
def _transpose_in(v, r0, nr, vt):
    """vt[f, kk, r] = v[r0 + r, f, kk] for the group's nr rows."""
    for r in range(nr):
        for f in range(v.shape[1]):
            for kk in range(v.shape[2]):
                vt[f, kk, r] = v[r0 + r, f, kk]


@_jit
def _transpose_out(gt, r0, nr, grad_v):
    for r in range(nr):
        for f in range(grad_v.shape[1]):
            for kk in range(grad_v.shape[2]):
                grad_v[r0 + r, f, kk] = gt[f, kk, r]


@_jit
def _products(vt, rows, cols, c0, pc, nr, pp):
    """pp[kk, ci * nr + r] = v_i * v_j of pair c0 + ci in row r."""
    for ci in range(pc):
        i, j, base = rows[c0 + ci], cols[c0 + ci], ci * nr
        for kk in range(vt.shape[1]):
            a, b, dst = vt[i, kk], vt[j, kk], pp[kk]
            for r in range(nr):
                dst[base + r] = a[r] * b[r]


@_jit
def _add_weighted_rows(dst, weights, src, n):
    """dst[:n] += sum over l of weights[l] * src[l, :n]: axpys along the cells, four source rows a pass."""
    count = weights.shape[0]
    c4 = count - count % 4
    for l in range(0, c4, 4):
        w0, w1, w2, w3 = weights[l], weights[l + 1], weights[l + 2], weights[l + 3]
        s0, s1, s2, s3 = src[l], src[l + 1], src[l + 2], src[l + 3]
        for q in range(n):
            dst[q] += w0 * s0[q] + w1 * s1[q] + w2 * s2[q] + w3 * s3[q]
    for l in range(c4, count):
        wl, sl = weights[l], src[l]
        for q in range(n):
            dst[q] += wl * sl[q]


@_jit
def _hidden(w, b, pp, n, hid):
    """hid[:, :n] = W pp + b."""
    for tt in range(w.shape[0]):
        hid[tt, :n] = b[tt]
        _add_weighted_rows(hid[tt], w[tt], pp, n)


@_jit
def _scores(v, rows, cols, w, b, h, out, nr, pc):
    m, k = v.shape[1], v.shape[2]
    num_pairs, t = rows.shape[0], w.shape[0]
    vt = np.empty((m, k, nr), np.float32)
    pp = np.empty((k, pc * nr), np.float32)
    hid = np.empty((t, pc * nr), np.float32)
    score = np.empty(pc * nr, np.float32)
    for r0 in range(0, v.shape[0], nr):
        size = min(nr, v.shape[0] - r0)  # rows in this group
        _transpose_in(v, r0, size, vt)
        for c0 in range(0, num_pairs, pc):
            p = min(pc, num_pairs - c0)
            n = p * nr
            _products(vt, rows, cols, c0, p, nr, pp)
            _hidden(w, b, pp, n, hid)
            score[:n] = 0
            for tt in range(t):
                ht, row = h[tt], hid[tt]
                for q in range(n):
                    score[q] += ht * max(row[q], np.float32(0))
            for ci in range(p):
                for r in range(size):
                    out[r0 + r, c0 + ci] = score[ci * nr + r]


@_jit
def _scores_backward(v, rows, cols, w, b, h, grad, grad_v, grad_w, grad_b, grad_h, nr, pc):
    m, k = v.shape[1], v.shape[2]
    w_t = np.ascontiguousarray(w.T)
    num_pairs, t = rows.shape[0], w.shape[0]
    vt = np.empty((m, k, nr), np.float32)
    gt = np.empty((m, k, nr), np.float32)
    pp = np.empty((k, pc * nr), np.float32)
    dpp = np.empty((k, pc * nr), np.float32)
    hid = np.empty((t, pc * nr), np.float32)
    gs = np.empty(pc * nr, np.float32)
    for r0 in range(0, v.shape[0], nr):
        size = min(nr, v.shape[0] - r0)  # rows in this group
        vt[:, :, size:] = 0  # a short last group: its padding rows have no gradient
        _transpose_in(v, r0, size, vt)
        gt[:] = 0
        for c0 in range(0, num_pairs, pc):
            p = min(pc, num_pairs - c0)
            n = p * nr
            gs[:n] = 0
            for ci in range(p):
                for r in range(size):
                    gs[ci * nr + r] = grad[r0 + r, c0 + ci]
            _products(vt, rows, cols, c0, p, nr, pp)
            _hidden(w, b, pp, n, hid)
            for tt in range(t):  # hid becomes dL/dhidden: dL/dscore * h where ReLU is active
                ht, row = h[tt], hid[tt]
                sum_h, sum_b = np.float32(0), np.float32(0)
                for q in range(n):
                    x = row[q]
                    d = gs[q] * ht if x > 0 else np.float32(0)
                    sum_h += gs[q] * max(x, np.float32(0))
                    sum_b += d
                    row[q] = d
                grad_h[tt] += sum_h
                grad_b[tt] += sum_b
            for kk in range(k):  # dL/dW = dhidden pp^T
                src = pp[kk]
                for tt in range(t):
                    row, acc = hid[tt], np.float32(0)
                    for q in range(n):
                        acc += row[q] * src[q]
                    grad_w[tt, kk] += acc
            for kk in range(k):  # dL/dpp = W^T dhidden
                dpp[kk, :n] = 0
                _add_weighted_rows(dpp[kk], w_t[kk], hid, n)
            for ci in range(p):
                i, j, base = rows[c0 + ci], cols[c0 + ci], ci * nr
                for kk in range(k):
                    d, a, bb, gi, gj = dpp[kk], vt[i, kk], vt[j, kk], gt[i, kk], gt[j, kk]
                    for r in range(nr):
                        gi[r] += d[base + r] * bb[r]
                        gj[r] += d[base + r] * a[r]
        _transpose_out(gt, r0, size, grad_v)


@_jit
def _pool(v, rows, cols, a, out, nr, pc):
    m, k = v.shape[1], v.shape[2]
    vt = np.empty((m, k, nr), np.float32)
    pooled = np.empty((k, nr), np.float32)
    weight = np.empty(nr, np.float32)
    for r0 in range(0, v.shape[0], nr):
        size = min(nr, v.shape[0] - r0)  # rows in this group
        _transpose_in(v, r0, size, vt)
        pooled[:] = 0
        weight[:] = 0
        for c in range(rows.shape[0]):
            for r in range(size):
                weight[r] = a[r0 + r, c]
            i, j = rows[c], cols[c]
            for kk in range(k):
                x, y, dst = vt[i, kk], vt[j, kk], pooled[kk]
                for r in range(nr):
                    dst[r] += weight[r] * x[r] * y[r]
        for r in range(size):
            for kk in range(k):
                out[r0 + r, kk] = pooled[kk, r]


@_jit
def _pool_backward(v, rows, cols, a, grad, grad_v, grad_a, nr, pc):
    m, k = v.shape[1], v.shape[2]
    vt = np.empty((m, k, nr), np.float32)
    gt = np.empty((m, k, nr), np.float32)
    go = np.empty((k, nr), np.float32)
    weight = np.empty(nr, np.float32)
    total = np.empty(nr, np.float32)
    for r0 in range(0, v.shape[0], nr):
        size = min(nr, v.shape[0] - r0)  # rows in this group
        _transpose_in(v, r0, size, vt)
        gt[:] = 0
        go[:] = 0
        weight[:] = 0
        for r in range(size):
            for kk in range(k):
                go[kk, r] = grad[r0 + r, kk]
        for c in range(rows.shape[0]):
            for r in range(size):
                weight[r] = a[r0 + r, c]
            i, j = rows[c], cols[c]
            total[:] = 0
            for kk in range(k):
                x, y, gk, gi, gj = vt[i, kk], vt[j, kk], go[kk], gt[i, kk], gt[j, kk]
                for r in range(nr):
                    total[r] += gk[r] * x[r] * y[r]
                    gi[r] += weight[r] * gk[r] * y[r]
                    gj[r] += weight[r] * gk[r] * x[r]
            for r in range(size):
                grad_a[r0 + r, c] = total[r]
        _transpose_out(gt, r0, size, grad_v)


# Few pairs: one cell at a time, vectorised along k.

@_jit
def _row_scores(v, rows, cols, w, b, h, out, hidden):
    """Scores, and each cell's hidden layer before the ReLU kept for the backward pass (few pairs: small)."""
    t, k = w.shape
    t4 = t - t % 4
    product = np.empty(k, np.float32)
    for r in range(v.shape[0]):
        for c in range(rows.shape[0]):
            vi, vj, cell = v[r, rows[c]], v[r, cols[c]], hidden[r, c]
            for kk in range(k):
                product[kk] = vi[kk] * vj[kk]
            for tt in range(0, t4, 4):  # four dot products a pass: independent sums keep the FMA units busy
                w0, w1, w2, w3 = w[tt], w[tt + 1], w[tt + 2], w[tt + 3]
                a0, a1, a2, a3 = np.float32(0), np.float32(0), np.float32(0), np.float32(0)
                for kk in range(k):
                    x = product[kk]
                    a0 += w0[kk] * x
                    a1 += w1[kk] * x
                    a2 += w2[kk] * x
                    a3 += w3[kk] * x
                cell[tt], cell[tt + 1], cell[tt + 2], cell[tt + 3] = a0, a1, a2, a3
            for tt in range(t4, t):
                wt, a0 = w[tt], np.float32(0)
                for kk in range(k):
                    a0 += wt[kk] * product[kk]
                cell[tt] = a0
            score = np.float32(0)
            for tt in range(t):
                cell[tt] += b[tt]
                score += h[tt] * max(cell[tt], np.float32(0))
            out[r, c] = score


@_jit
def _row_scores_backward(v, rows, cols, w, b, h, grad, grad_v, grad_w, grad_b, grad_h, hidden):
    """The grouped backward's arguments, then the hidden layers the forward kept (b is in them already)."""
    t, k = w.shape
    product = np.empty(k, np.float32)
    grad_product = np.empty(k, np.float32)
    for r in range(v.shape[0]):
        gv = grad_v[r]
        gv[:] = 0
        for c in range(rows.shape[0]):
            g, cell = grad[r, c], hidden[r, c]
            vi, vj = v[r, rows[c]], v[r, cols[c]]
            for kk in range(k):
                product[kk] = vi[kk] * vj[kk]
                grad_product[kk] = 0
            for tt in range(t):
                if cell[tt] > 0:  # ReLU's gradient: only active units pass one back
                    grad_h[tt] += g * cell[tt]
                    d = g * h[tt]
                    grad_b[tt] += d
                    gw, wt = grad_w[tt], w[tt]
                    for kk in range(k):
                        gw[kk] += d * product[kk]
                    for kk in range(k):
                        grad_product[kk] += d * wt[kk]
            gi, gj = gv[rows[c]], gv[cols[c]]
            for kk in range(k):
                gi[kk] += grad_product[kk] * vj[kk]
            for kk in range(k):
                gj[kk] += grad_product[kk] * vi[kk]


@_jit
def _row_pool(v, rows, cols, a, out):
    k = v.shape[2]
    for r in range(v.shape[0]):
        pooled = out[r]
        pooled[:] = 0
        for c in range(rows.shape[0]):
            vi, vj, weight = v[r, rows[c]], v[r, cols[c]], a[r, c]
            for kk in range(k):
                pooled[kk] += weight * vi[kk] * vj[kk]


@_jit
def _row_pool_backward(v, rows, cols, a, grad, grad_v, grad_a):
    k = v.shape[2]
    for r in range(v.shape[0]):
        g, gv = grad[r], grad_v[r]
        gv[:] = 0
        for c in range(rows.shape[0]):
            vi, vj, weight = v[r, rows[c]], v[r, cols[c]], a[r, c]
            gi, gj = gv[rows[c]], gv[cols[c]]
            total = np.float32(0)
            for kk in range(k):  # one output a loop: each vectorises
                total += g[kk] * vi[kk] * vj[kk]
            grad_a[r, c] = total
            for kk in range(k):
                gi[kk] += weight * g[kk] * vj[kk]
            for kk in range(k):
                gj[kk] += weight * g[kk] * vi[kk]


# A large attention network (see fully_fused): the cells' products here, then attention_scores, whose three
# matmuls go to afm.fast.matmul and whose ReLU, h and b gradients take one pass here.

@_jit
def _cell_products(v, rows, cols, out):
    for r in range(v.shape[0]):
        for c in range(rows.shape[0]):
            vi, vj, dst = v[r, rows[c]], v[r, cols[c]], out[r, c]
            for kk in range(v.shape[2]):
                dst[kk] = vi[kk] * vj[kk]


@_jit
def _cell_products_backward(v, rows, cols, grad, grad_v):
    for r in range(v.shape[0]):
        gv = grad_v[r]
        gv[:] = 0
        for c in range(rows.shape[0]):
            vi, vj, g = v[r, rows[c]], v[r, cols[c]], grad[r, c]
            gi, gj = gv[rows[c]], gv[cols[c]]
            for kk in range(v.shape[2]):
                gi[kk] += g[kk] * vj[kk]
            for kk in range(v.shape[2]):
                gj[kk] += g[kk] * vi[kk]


@_jit
def _relu_scores_backward(hidden, h, grad, grad_b, grad_h):
    """hidden becomes dL/dhidden (g * h where ReLU is active), in place; b's and h's gradients summed."""
    for q in range(hidden.shape[0]):
        row, g = hidden[q], grad[q]
        for tt in range(h.shape[0]):
            x = row[tt]
            active = x > 0
            grad_h[tt] += g * x if active else np.float32(0)
            d = g * h[tt] if active else np.float32(0)
            grad_b[tt] += d
            row[tt] = d


_THREADS = ThreadPoolExecutor(thread_name_prefix="afm-kernels")  # its threads start on first use


def _parts(batch: int, group: int) -> list[slice]:
    """`batch` rows split across PyTorch's intra-op thread count, in whole groups of `group` rows."""
    groups = -(-batch // group)
    count = max(1, min(torch.get_num_threads(), groups))
    bounds = np.minimum(np.linspace(0, groups, count + 1).astype(int) * group, batch)
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _launch(kernels: tuple, num_pairs: int, batch: int, per_part) -> None:
    """The grouped or the row kernel of `kernels`, whichever suits num_pairs, over the batch's parts, on
    threads when there are several; per_part(the part's rows) gives its arguments before the layout's."""
    shape = _group_shape(num_pairs)
    kernel = kernels[1] if shape is None else kernels[0]
    parts = _parts(batch, 16 if shape is None else shape[0])
    _on_threads(kernel, [(*per_part(part), *(shape or ())) for part in parts])


def _on_threads(kernel, calls: list[tuple]) -> None:
    """kernel(*args) for each call, on threads when there are several (the kernels release the GIL)."""
    if len(calls) == 1:
        kernel(*calls[0])
        return
    for future in [_THREADS.submit(kernel, *args) for args in calls]:
        future.result()


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().contiguous().numpy()


class _PairScores(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, rows, cols, w, b, h):
        out = v.new_empty(v.shape[0], rows.shape[0])
        # few pairs (the row kernels): the hidden layers are small, kept for the backward pass, which the
        # grouped kernels recompute instead
        hidden = v.new_empty(v.shape[0], rows.shape[0], w.shape[0]) if _group_shape(len(rows)) is None else None
        v_, shared, out_, kept = _np(v), [_np(x) for x in (rows, cols, w, b, h)], out.numpy(), _kept(hidden)
        _launch((_scores, _row_scores), len(rows), len(v), lambda s: (v_[s], *shared, out_[s], *kept(s)))
        ctx.save_for_backward(v, rows, cols, w, b, h, hidden)
        return out

    @staticmethod
    def backward(ctx, grad):
        v, rows, cols, w, b, h, hidden = ctx.saved_tensors
        grad_v, sums = torch.empty_like(v), []  # each part sums its own W, b and h gradients
        v_, shared, kept = _np(v), [_np(x) for x in (rows, cols, w, b, h)], _kept(hidden)
        grad_, grad_v_ = _np(grad), grad_v.numpy()

        def part_args(s):
            sums.append((torch.zeros_like(w), torch.zeros_like(b), torch.zeros_like(h)))
            return v_[s], *shared, grad_[s], grad_v_[s], *(x.numpy() for x in sums[-1]), *kept(s)

        _launch((_scores_backward, _row_scores_backward), len(rows), len(v), part_args)
        grad_w, grad_b, grad_h = (sum(xs[1:], xs[0]) for xs in zip(*sums))  # in part order: reproducible
        return grad_v, None, None, grad_w, grad_b, grad_h


def _kept(hidden: torch.Tensor | None):
    """A part's slice of the kept hidden layers, as trailing kernel arguments (none where none are kept)."""
    hidden_ = None if hidden is None else hidden.numpy()
    return lambda s: () if hidden_ is None else (hidden_[s],)


class _PairPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, rows, cols, a):
        ctx.save_for_backward(v, rows, cols, a)
        out = v.new_empty(v.shape[0], v.shape[2])
        v_, rows_, cols_, a_, out_ = _np(v), _np(rows), _np(cols), _np(a), out.numpy()
        _launch((_pool, _row_pool), len(rows), len(v), lambda s: (v_[s], rows_, cols_, a_[s], out_[s]))
        return out

    @staticmethod
    def backward(ctx, grad):
        v, rows, cols, a = ctx.saved_tensors
        grad_v, grad_a = torch.empty_like(v), torch.empty_like(a)
        v_, rows_, cols_, a_, grad_ = _np(v), _np(rows), _np(cols), _np(a), _np(grad)
        grad_v_, grad_a_ = grad_v.numpy(), grad_a.numpy()
        _launch((_pool_backward, _row_pool_backward), len(rows), len(v),
                lambda s: (v_[s], rows_, cols_, a_[s], grad_[s], grad_v_[s], grad_a_[s]))
        return grad_v, None, None, grad_a


class _CellProducts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, rows, cols):
        ctx.save_for_backward(v, rows, cols)
        products = v.new_empty(v.shape[0], rows.shape[0], v.shape[2])
        v_, rows_, cols_, products_ = _np(v), _np(rows), _np(cols), products.numpy()
        _on_threads(_cell_products, [(v_[s], rows_, cols_, products_[s]) for s in _parts(len(v), 16)])
        return products

    @staticmethod
    def backward(ctx, grad):
        v, rows, cols = ctx.saved_tensors
        grad_v = torch.empty_like(v)
        v_, rows_, cols_, grad_, grad_v_ = _np(v), _np(rows), _np(cols), _np(grad), grad_v.numpy()
        _on_threads(_cell_products_backward, [(v_[s], rows_, cols_, grad_[s], grad_v_[s]) for s in _parts(len(v), 16)])
        return grad_v, None, None


class _AttentionScores(torch.autograd.Function):
    @staticmethod
    def forward(ctx, products, w, b, h):
        hidden = relu_linear(products, w, b)  # (N, t)
        ctx.save_for_backward(products, w, h, hidden)
        return hidden @ h

    @staticmethod
    def backward(ctx, grad):
        if getattr(ctx, "hidden_spent", False):  # retain_graph and a second backward: say so, not a wrong answer
            raise RuntimeError("attention_scores takes one backward pass per forward (its hidden layer becomes "
                               "the gradient in place)")
        ctx.hidden_spent = True
        products, w, h, hidden = ctx.saved_tensors
        hidden_, h_, grad_ = hidden.numpy(), _np(h), _np(grad)
        parts = _parts(len(hidden), 256)
        sums = [(torch.zeros_like(h), torch.zeros_like(h)) for _ in parts]
        _on_threads(_relu_scores_backward, [(hidden_[s], h_, grad_[s], *(x.numpy() for x in sum_))
                                            for s, sum_ in zip(parts, sums)])
        grad_b, grad_h = (sum(xs[1:], xs[0]) for xs in zip(*sums))  # in part order: reproducible
        return mm(hidden, w), mm(hidden.t(), products), grad_b, grad_h


def attention_scores(products, w, b, h) -> torch.Tensor:
    """h^T ReLU(W x + b) for each row x of products (N, k): (N,), on the CPU in float32. The matmuls go to
    afm.fast.matmul, the ReLU's and scores' gradients in one pass here."""
    return _AttentionScores.apply(products, w, b, h)


# Pooling from a batch's distinct pair products (the shared path): row r's pooled vector is the sum over its
# pairs c of a[r, c] * products[inverse[r, c]], read straight from the (U, k) table, where PyTorch's eager
# path gathers a (B, P, k) tensor, pools it with a batched matmul, and in the backward pass writes a
# (B, P, k) outer product and scatters it back.

@_jit
def _shared_pool(products, inverse, a, out):
    for r in range(inverse.shape[0]):
        dst = out[r]
        dst[:] = 0
        for c in range(inverse.shape[1]):
            weight, src = a[r, c], products[inverse[r, c]]
            for kk in range(dst.shape[0]):
                dst[kk] += weight * src[kk]


@_jit
def _shared_pool_grad_a(products, inverse, grad, grad_a):
    for r in range(inverse.shape[0]):
        g = grad[r]
        for c in range(inverse.shape[1]):
            src, total = products[inverse[r, c]], np.float32(0)
            for kk in range(g.shape[0]):
                total += src[kk] * g[kk]
            grad_a[r, c] = total


@_jit
def _cells_by_pair(inverse, count, starts, order):
    """Counting sort of the cells (flat indices into inverse) by distinct pair, cells in order within one:
    pair u's cells are order[starts[u]:starts[u + 1]]."""
    starts[:] = 0
    for cell in range(inverse.shape[0]):
        starts[inverse[cell] + 1] += 1
    for u in range(count):
        starts[u + 1] += starts[u]
    filled = starts[:-1].copy()
    for cell in range(inverse.shape[0]):
        u = inverse[cell]
        order[filled[u]] = cell
        filled[u] += 1


@_jit
def _shared_pool_grad_products(order, starts, a, grad, num_pairs, first, grad_products):
    """grad_products[u] = sum over u's cells of a[cell] * grad[cell's row], for pairs first, first + 1, ...:
    each pair's sum gathered in cell order, so no two parts write one row and the bits never depend on the
    thread count."""
    for n in range(grad_products.shape[0]):
        u, dst = first + n, grad_products[n]
        dst[:] = 0
        for q in range(starts[u], starts[u + 1]):
            cell = order[q]
            weight, g = a[cell], grad[cell // num_pairs]
            for kk in range(dst.shape[0]):
                dst[kk] += weight * g[kk]


class _SharedPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, products, inverse, a):
        ctx.save_for_backward(products, inverse, a)
        out = products.new_empty(inverse.shape[0], products.shape[1])
        products_, inverse_, a_, out_ = _np(products), _np(inverse), _np(a), out.numpy()
        _on_threads(_shared_pool, [(products_, inverse_[s], a_[s], out_[s]) for s in _parts(len(inverse_), 16)])
        return out

    @staticmethod
    def backward(ctx, grad):
        products, inverse, a = ctx.saved_tensors
        products_, inverse_, a_, grad_ = _np(products), _np(inverse), _np(a), _np(grad)
        grad_a = torch.empty_like(a)
        grad_a_ = grad_a.numpy()
        _on_threads(_shared_pool_grad_a, [(products_, inverse_[s], grad_[s], grad_a_[s])
                                          for s in _parts(len(inverse_), 16)])
        starts, order = np.empty(len(products_) + 1, np.int64), np.empty(inverse_.size, np.int64)
        _cells_by_pair(inverse_.reshape(-1), len(products_), starts, order)
        grad_products = torch.empty_like(products)
        grad_products_, a_flat = grad_products.numpy(), a_.reshape(-1)
        _on_threads(_shared_pool_grad_products,
                    [(order, starts, a_flat, grad_, inverse_.shape[1], s.start, grad_products_[s])
                     for s in _parts(len(products_), 16)])
        return grad_products, None, grad_a


def shared_pool(products, inverse, a) -> torch.Tensor:
    """sum over pairs of a[:, c] * products[inverse[:, c]]: (U, k), (B, P), (B, P) -> (B, k)."""
    return _SharedPool.apply(products, inverse, a)


FUSED_MAX_ATTENTION_FACTOR = 64  # above, the matmuls in afm.fast.matmul win even on MKL (t = 128 level in an
# earlier round, t = 256 1.3x); at or below it too where they go to oneDNN: 1.3-2.0x at t = 64, k = 64-256


def fully_fused(embed_dim: int, attention_factor: int) -> bool:
    """Whether every step of a cell runs in these kernels: a small attention network whose matmuls would
    not go to oneDNN (at k = 16, t = 64 the kernels were 1.14x the matmuls on MKL)."""
    return attention_factor <= FUSED_MAX_ATTENTION_FACTOR and not onednn_sizes(embed_dim, attention_factor)


def pair_scores(v, rows, cols, w, b, h) -> torch.Tensor:
    """h^T ReLU(W (v[:, rows] * v[:, cols]) + b): (B, m, k) -> (B, P), on the CPU in float32."""
    if fully_fused(w.shape[1], w.shape[0]):
        return _PairScores.apply(v, rows, cols, w, b, h)
    products = _CellProducts.apply(v, rows, cols)  # (B, P, k)
    return attention_scores(products.view(-1, v.shape[2]), w, b, h).view(v.shape[0], rows.shape[0])


def pair_pool(v, rows, cols, a) -> torch.Tensor:
    """sum over pairs of a[:, c] * v[:, rows[c]] * v[:, cols[c]]: (B, m, k), (B, P) -> (B, k)."""
    return _PairPool.apply(v, rows, cols, a)


# PyTorch's Adagrad arithmetic, operation by operation: sum += g * g (fused multiply-add, as its compiled
# kernel does); p += (-lr * g) / (sqrt(sum) + eps). Division by zero gives inf, without Python's branch.
@numba.njit(cache=CACHE, nogil=True, boundscheck=False, error_model="numpy", fastmath={"contract"})
def _adagrad_rows(param, state_sum, touched, grad, lr, eps):
    for n in range(touched.shape[0]):
        p, s, g = param[touched[n]], state_sum[touched[n]], grad[n]
        for kk in range(p.shape[0]):
            total = s[kk] + g[kk] * g[kk]
            s[kk] = total
            p[kk] += (-lr * g[kk]) / (np.sqrt(total) + eps)  # addcdiv's order: (value * g) / std


def adagrad_rows(param: torch.Tensor, state_sum: torch.Tensor, touched: torch.Tensor, grad: torch.Tensor,
                 lr: float, eps: float) -> None:
    """Adagrad on the rows `touched` (distinct ids) of a CPU float32 table, in place: one pass over those
    rows, where gathering them, updating and writing them back takes eight."""
    param_, sum_, touched_, grad_ = param.detach().numpy(), state_sum.numpy(), _np(touched), _np(grad)
    lr_, eps_ = np.float32(lr), np.float32(eps)
    _on_threads(_adagrad_rows, [(param_, sum_, touched_[s], grad_[s], lr_, eps_) for s in _parts(len(touched_), 256)])


def _repair_cache() -> None:
    """A damaged cache file (a truncated index or data record, an interrupted write) made every AFM run fail
    with UnpicklingError until the cache folder was deleted by hand. Each kernel's cache is read once here;
    one that does not read is emptied, so the kernel compiles again, and that is said once."""
    if not CACHE:
        return
    damaged = []
    for name, value in list(globals().items()):
        cache = getattr(value, "_cache", None)
        files = getattr(cache, "_cache_file", None)
        if files is None:
            continue
        try:
            for data_name in files._load_index().values():
                files._load_data(data_name)
        except OSError:
            continue  # a record removed meanwhile: numba recompiles that one itself
        except Exception:  # noqa: BLE001 - a damaged pickle fails in many ways
            cache.flush()
            damaged.append(name)
    if damaged:
        warnings.warn(f"the compiled-kernel cache was damaged ({', '.join(damaged)}); emptied, so they compile "
                      "again (about 5 s)", RuntimeWarning, stacklevel=2)


_repair_cache()

"""afm.fast.kernels against autograd through the plain expressions (the AFM with and without them: test_models)."""
import pytest
import torch
import torch.nn.functional as F

from afm.fast.kernels import adagrad_rows, attention_scores, fully_fused, pair_pool, pair_scores, shared_pool
from afm.fast.matmul import ONEDNN
from afm.models import AFM, ModelConfig


def plain_scores(v, rows, cols, w, b, h):
    return F.linear(v[:, rows] * v[:, cols], w, b).relu() @ h


def plain_pool(v, rows, cols, a):
    return torch.einsum("bp,bpk->bk", a, v[:, rows] * v[:, cols])


def inputs(batch, fields, k, t, seed=0):
    generator = torch.Generator().manual_seed(seed)
    draw = lambda *shape: torch.randn(*shape, generator=generator).requires_grad_()
    rows, cols = torch.triu_indices(fields, fields, offset=1)
    return draw(batch, fields, k) * 1, rows, cols, draw(t, k), draw(t), draw(t)


@pytest.fixture(params=[1, 2])
def threads(request):
    """One and two intra-op threads: with two, a batch is split in parts run on threads of their own."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def assert_close(ours, plain):
    # float32 sums in another order: errors relative to the tensor's scale, not to each (possibly cancelled) entry
    torch.testing.assert_close(ours, plain, rtol=1e-4, atol=1e-5 * max(1.0, plain.abs().max().item()))


def values_and_gradients(fn, tensors, upstream):
    for x in tensors:
        x.grad = None
    out = fn()
    out.backward(upstream)
    return [out.detach()] + [x.grad.clone() for x in tensors]


# Shapes: few pairs (row groups of many rows) and many (groups of 32 rows); batches that end in a short
# group; k and t not multiples of the kernels' four-way steps; one and two threads (the batch split in parts).
@pytest.mark.parametrize("batch,fields,k,t", [(70, 5, 8, 4), (45, 12, 6, 5), (33, 3, 16, 7), (100, 9, 5, 3),
                                              (40, 4, 8, 66), (50, 17, 4, 70), (40, 4, 64, 72), (30, 5, 64, 64)])
# t > 64 (and k = t = 64 with oneDNN): the matmuls in afm.fast.matmul, all three in oneDNN where k and t are 64+
def test_scores_and_pooling_match_autograd_in_value_and_gradient(batch, fields, k, t, threads):
    torch.manual_seed(1)
    v, rows, cols, w, b, h = inputs(batch, fields, k, t)
    v = v.detach().requires_grad_()
    upstream = torch.randn(batch, len(rows))
    ours = values_and_gradients(lambda: pair_scores(v, rows, cols, w, b, h), [v, w, b, h], upstream)
    plain = values_and_gradients(lambda: plain_scores(v, rows, cols, w, b, h), [v, w, b, h], upstream)
    for a, c in zip(ours, plain):
        assert_close(a, c)

    a = torch.softmax(torch.randn(batch, len(rows)), 1).requires_grad_()
    upstream = torch.randn(batch, k)
    ours = values_and_gradients(lambda: pair_pool(v, rows, cols, a), [v, a], upstream)
    plain = values_and_gradients(lambda: plain_pool(v, rows, cols, a), [v, a], upstream)
    for x, y in zip(ours, plain):
        assert_close(x, y)
    again = values_and_gradients(lambda: pair_pool(v, rows, cols, a), [v, a], upstream)
    assert all(torch.equal(x, y) for x, y in zip(ours, again))  # the same bits each time


@pytest.mark.parametrize("k,t", [(6, 5), (64, 72)])  # PyTorch's matmuls; oneDNN's
def test_attention_scores_match_autograd_in_value_and_gradient(k, t, threads):
    _, _, _, w, b, h = inputs(1, 2, k, t)
    products = torch.randn(300, k, generator=torch.Generator().manual_seed(3)).requires_grad_()
    upstream = torch.randn(300)
    ours = values_and_gradients(lambda: attention_scores(products, w, b, h), [products, w, b, h], upstream)
    plain = values_and_gradients(lambda: F.linear(products, w, b).relu() @ h, [products, w, b, h], upstream)
    for x, y in zip(ours, plain):
        assert_close(x, y)


def test_a_second_backward_through_the_attention_scores_is_refused_not_wrong():
    _, _, _, w, b, h = inputs(1, 2, 6, 5)
    scores = attention_scores(torch.randn(20, 6, requires_grad=True), w, b, h)
    scores.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="one backward pass"):
        scores.sum().backward()


def test_pooling_from_distinct_pairs_matches_autograd_and_is_the_same_on_any_thread_count(threads):
    generator = torch.Generator().manual_seed(0)
    products = torch.randn(57, 12, generator=generator).requires_grad_()
    inverse = torch.randint(0, 50, (90, 7), generator=generator)  # pairs 50-56 unused: zero gradient rows
    a = torch.softmax(torch.randn(90, 7, generator=generator), 1).requires_grad_()
    upstream = torch.randn(90, 12, generator=generator)
    ours = values_and_gradients(lambda: shared_pool(products, inverse, a), [products, a], upstream)
    plain = values_and_gradients(lambda: torch.bmm(a.unsqueeze(1), products[inverse]).squeeze(1), [products, a],
                                 upstream)
    for x, y in zip(ours, plain):
        assert_close(x, y)
    assert (ours[1][50:] == 0).all() and (ours[1][:50] != 0).any(1).all()
    torch.set_num_threads(3 - threads)  # the other thread count: each row and each pair is summed in one order
    other = values_and_gradients(lambda: shared_pool(products, inverse, a), [products, a], upstream)
    assert all(torch.equal(x, y) for x, y in zip(ours, other))


def test_small_attention_networks_run_wholly_in_the_kernels_unless_onednn_takes_their_matmuls():
    assert fully_fused(256, 16) and fully_fused(16, 64) and not fully_fused(16, 65)
    assert fully_fused(64, 64) != ONEDNN and fully_fused(256, 63)


def test_a_nan_embedding_shows_in_the_scores_and_the_pooling():
    v, rows, cols, w, b, h = inputs(40, 6, 8, 4)
    v = v.detach().clone()
    v[3, 2, 5] = float("nan")
    scores = pair_scores(v, rows, cols, w.detach(), b.detach(), h.detach())
    pooled = pair_pool(v, rows, cols, torch.full((40, len(rows)), 1 / len(rows)))
    assert torch.isnan(pooled[3]).any() and not torch.isnan(pooled[torch.arange(40) != 3]).any()
    touches = (rows == 2) | (cols == 2)
    assert torch.isnan(scores[3, touches]).all() and not torch.isnan(scores[3, ~touches]).any()


def test_the_kernels_run_on_the_cpu_and_sharing_pays_later_where_a_cell_is_wholly_theirs():
    x = torch.zeros(4, 12, dtype=torch.long)
    assert AFM(ModelConfig("afm", 300, 12, embed_dim=16, attention_factor=8)).fused_cells(x)
    assert not AFM(ModelConfig("afm", 300, 12, embed_dim=16, attention_factor=8)).fused_cells(x.to("meta"))
    half_repeated = torch.arange(512 * 6).reshape(512, 6) % (256 * 6) + torch.arange(6) * 10_000  # half the cells
    small_t, large_t = (AFM(ModelConfig("afm", 60_000, 6, embed_dim=16, attention_factor=t)) for t in (64, 128))
    assert 400 < 0.5 * 16 * 65 < small_t.SHARE_COST_FUSED  # sharing would pay for PyTorch's cells, not the kernels'
    assert not small_t.choose_pair_sharing(half_repeated)
    assert large_t.choose_pair_sharing(half_repeated)  # t = 128: BLAS does the matmuls, the old cost holds


def test_adagrad_rows_is_pytorch_adagrad_on_the_touched_rows(threads):
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(3000, 24, generator=generator)
    touched = torch.randperm(3000, generator=generator)[:1200].sort().values  # several parts on 2 threads
    ours, ours_sum = table.clone(), torch.zeros_like(table)
    reference = torch.nn.Parameter(table.clone())
    optimizer = torch.optim.Adagrad([reference], lr=0.05)
    for _ in range(3):
        rows = torch.randn(len(touched), 24, generator=generator)
        adagrad_rows(ours, ours_sum, touched, rows, 0.05, 1e-10)
        reference.grad = torch.zeros_like(table).index_copy_(0, touched, rows)
        optimizer.step()
    assert torch.equal(ours_sum, optimizer.state[reference]["sum"])  # the same fused multiply-add
    # the same update up to PyTorch's vectorised square root (within an ulp of the rounded one numba takes)
    torch.testing.assert_close(ours, reference.detach(), rtol=1e-6, atol=1e-6)
    assert (ours - table).abs().max() > 0.01  # far larger moves than that tolerance
    untouched = torch.ones(3000, dtype=torch.bool).index_fill_(0, touched, False)
    assert torch.equal(ours[untouched], table[untouched])

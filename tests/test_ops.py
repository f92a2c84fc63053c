"""The hand-written gradients in afm.fast.ops against autograd through the plain expressions they replace."""
from types import SimpleNamespace

import pytest
import torch

from afm.fast.ops import field_pairs, gather_rows, pair_products, pairwise_sum


def explicit_pairwise_sum(v):
    m = v.shape[1]
    return sum(v[:, i] * v[:, j] for i in range(m) for j in range(i + 1, m))


def test_pairwise_sum_equals_the_explicit_pair_loop_in_value_and_gradient():
    torch.manual_seed(0)
    v = torch.randn(7, 5, 4, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(pairwise_sum(v), explicit_pairwise_sum(v))
    assert torch.autograd.gradcheck(pairwise_sum, (v,))
    weights = torch.randn(7, 4, dtype=torch.float64)
    ours = torch.autograd.grad((pairwise_sum(v) * weights).sum(), v)[0]
    plain = torch.autograd.grad((explicit_pairwise_sum(v) * weights).sum(), v)[0]
    torch.testing.assert_close(ours, plain)


@pytest.mark.parametrize("sparse", [False, True])
def test_gather_rows_matches_nn_embedding_in_value_and_gradient(sparse):
    torch.manual_seed(0)
    ours, plain = torch.nn.Embedding(30, 6, sparse=sparse), torch.nn.Embedding(30, 6, sparse=sparse)
    plain.load_state_dict(ours.state_dict())
    ids = torch.randint(0, 30, (16, 4))
    ids[0] = ids[1]  # repeated rows must add up
    weights = torch.randn(16, 4, 6)
    out = gather_rows(ours, ids)
    torch.testing.assert_close(out, plain(ids))
    (out * weights).sum().backward()
    (plain(ids) * weights).sum().backward()
    assert ours.weight.grad.is_sparse == sparse
    dense = ours.weight.grad.to_dense() if sparse else ours.weight.grad
    torch.testing.assert_close(dense, plain.weight.grad.to_dense() if sparse else plain.weight.grad)
    untouched = torch.ones(30, dtype=torch.bool)
    untouched[ids.flatten()] = False
    assert (dense[untouched] == 0).all() and (dense[~untouched] != 0).any()


@pytest.mark.parametrize("sparse", [False, True])
def test_pair_products_match_the_plain_product_in_value_and_gradient(sparse):
    torch.manual_seed(0)
    ours, plain = torch.nn.Embedding(30, 6, sparse=sparse), torch.nn.Embedding(30, 6, sparse=sparse)
    plain.load_state_dict(ours.state_dict())
    first, second = torch.randint(0, 30, (40,)), torch.randint(0, 30, (40,))
    second[:3] = first[:3]  # a feature paired with itself: both sides' gradients land on one row
    weights = torch.randn(40, 6)
    out = pair_products(ours, first, second)
    torch.testing.assert_close(out, plain(first) * plain(second))
    (out * weights).sum().backward()
    (plain(first) * plain(second) * weights).sum().backward()
    assert ours.weight.grad.is_sparse == sparse
    to_dense = (lambda g: g.to_dense()) if sparse else (lambda g: g)
    torch.testing.assert_close(to_dense(ours.weight.grad), to_dense(plain.weight.grad))


def test_pair_products_pass_gradcheck():
    table = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    first, second = torch.tensor([0, 2, 2, 5, 8]), torch.tensor([1, 2, 7, 5, 0])
    as_embedding = lambda weight: SimpleNamespace(weight=weight, sparse=False)  # what pair_products reads
    assert torch.autograd.gradcheck(lambda weight: pair_products(as_embedding(weight), first, second), (table,))


def test_field_pairs_match_the_plain_cells_in_value_and_gradient():
    torch.manual_seed(0)
    rows, cols = torch.triu_indices(5, 5, offset=1)
    v = torch.randn(7, 5, 4, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(field_pairs(v, rows, cols), v[:, rows] * v[:, cols])
    assert torch.autograd.gradcheck(lambda x: field_pairs(x, rows, cols), (v,))
    weights = torch.randn(7, len(rows), 4, dtype=torch.float64)
    ours = torch.autograd.grad((field_pairs(v, rows, cols) * weights).sum(), v)[0]
    plain = torch.autograd.grad((v[:, rows] * v[:, cols] * weights).sum(), v)[0]
    torch.testing.assert_close(ours, plain)


@pytest.mark.parametrize("length", [8, 16, 39])
def test_softmax_last_is_softmax_with_its_gradient(length):
    from afm.fast.ops import softmax_last

    scores = (torch.randn(64, 2, length, length, dtype=torch.float64) * 5).requires_grad_()
    grad = torch.randn(64, 2, length, length, dtype=torch.float64)
    ours, theirs = softmax_last(scores), torch.softmax(scores, -1)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(torch.autograd.grad(ours, scores, grad)[0], torch.autograd.grad(theirs, scores, grad)[0])
    assert torch.autograd.gradcheck(softmax_last, (scores[:2, :1, :4, :4].detach().clone().requires_grad_(),))

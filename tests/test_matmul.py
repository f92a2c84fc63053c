"""afm.fast.matmul against float64 matmuls: oneDNN's path (both output dims 64 or more), its sliced weight
gradient, and PyTorch's for small outputs."""
import pytest
import torch
import torch.nn.functional as F

from afm.fast.matmul import ONEDNN_MIN_DIM, SLICE_ROWS, mm, onednn, relu_linear


def draw(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def assert_close(ours, exact):
    # float32 against float64: errors relative to the result's scale
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), exact, rtol=1e-5, atol=1e-5 * exact.abs().max().item())


@pytest.mark.parametrize("rows,inner,cols", [(300, 96, 80), (200, 16, 70), (20, 64, 64), (500, 80, 16)])
def test_mm_is_the_matmul_for_plain_and_transposed_operands(rows, inner, cols):
    a, b = draw(rows, inner), draw(inner, cols, seed=1)
    assert_close(mm(a, b), a.double() @ b.double())
    at, bt = draw(inner, rows, seed=2).t(), draw(cols, inner, seed=3).t()  # transposed views
    assert_close(mm(at, bt), at.double() @ bt.double())


def test_a_weight_gradient_over_many_rows_is_summed_in_slices_to_the_same_product():
    rows = 5 * SLICE_ROWS + 37  # several whole slices and a short one
    grad, products = draw(rows, 72), draw(rows, 96, seed=1)
    ours = mm(grad.t(), products)  # (72, 96): the reduction runs over the rows
    assert_close(ours, grad.double().t() @ products.double())
    assert torch.equal(ours, mm(grad.t(), products))  # the slices are added in one order


def test_onednn_takes_large_float32_outputs_on_the_cpu_only():
    x = torch.zeros(4, 4)
    big, small = ONEDNN_MIN_DIM, ONEDNN_MIN_DIM - 1
    if torch.backends.mkldnn.is_available():
        assert onednn(x, 10_000, big)
    assert not onednn(x, 10_000, small) and not onednn(x.double(), 10_000, big)
    assert not onednn(x.to("meta"), 10_000, big)


@pytest.mark.parametrize("t", [8, 80])  # PyTorch's addmm; oneDNN with the bias and ReLU fused
def test_relu_linear_is_relu_of_the_affine_map(t):
    x, weight, bias = draw(130, 72), draw(t, 72, seed=1), draw(t, seed=2)
    ours = relu_linear(x, weight, bias)
    exact = F.linear(x.double(), weight.double(), bias.double()).relu()
    assert_close(ours, exact)
    assert (ours == 0).float().mean() > 0.3  # the ReLU cut about half

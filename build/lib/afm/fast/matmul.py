"""Float32 matmuls on the CPU at the core's speed: oneDNN's, which PyTorch ships and calls for its own fused
CPU kernels, where its `matmul` calls MKL.

On this project's AMD machine (Zen 5, AVX-512) MKL runs float32 matmuls at about 110 GFLOP/s, its AVX2 path
(MKL chooses by CPU vendor, and no setting of its own changes that here), and oneDNN at 190-260 GFLOP/s on
AFM's attention network's shapes (`python -m afm bench` and docs/performance.md). The arithmetic is the same in
another order: results agree to float32 rounding (`tests/test_matmul.py`). Neither function records a
gradient; the autograd Functions in `afm.fast.kernels` call them in their forward and backward passes.
"""
from __future__ import annotations

import torch

ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
ONEDNN_MIN_DIM = 64  # oneDNN where both output dims are at least this: measured 1.3-2.4x MKL at 64 to 256;
# a (16, 16) weight gradient over 30,000 rows ran at 0.54x
SLICE_ROWS = 512  # a weight gradient's long reduction, in slices that stay in cache


def onednn_sizes(out_rows: int, out_cols: int) -> bool:
    """Whether a CPU float32 matmul with this output size goes to oneDNN."""
    return ONEDNN and min(out_rows, out_cols) >= ONEDNN_MIN_DIM


def onednn(x: torch.Tensor, out_rows: int, out_cols: int) -> bool:
    """Whether a matmul with this input and output size goes to oneDNN."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and onednn_sizes(out_rows, out_cols)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, relu: bool) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu" if relu else "none", [None] if relu else [],
                                              "")


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for 2-D tensors; either may be a transposed view."""
    if not onednn(a, a.shape[0], b.shape[1]):
        return a @ b
    if a.stride(0) == 1 and a.shape[1] > 2 * SLICE_ROWS:
        # a^T's rows are a weight gradient's reduction: oneDNN would copy the transposed operand whole; in
        # slices it stays in cache (1.25x at 14,650 rows), the slices' products added in order
        out = None
        for a_slice, b_slice in zip(a.split(SLICE_ROWS, dim=1), b.split(SLICE_ROWS)):
            part = _linear(a_slice, b_slice.t(), None, relu=False)
            out = part if out is None else out.add_(part)
        return out
    return _linear(a, b.t(), None, relu=False)


def relu_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """ReLU(x @ weight.T + bias) for x (N, k), weight (t, k), bias (t,): (N, t), bias and ReLU fused."""
    if onednn(x, x.shape[0], weight.shape[0]):
        return _linear(x, weight, bias, relu=True)
    return torch.addmm(bias, x, weight.t()).relu_()

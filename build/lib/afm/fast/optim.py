"""Adagrad that updates only the embedding rows a batch touched.

PyTorch's Adagrad takes an embedding table's gradient either dense (a zero-filled table-sized tensor, then
a pass over every row, though Adagrad leaves rows with a zero gradient unchanged) or as a sparse tensor,
which it coalesces, squares and masks through several sparse-tensor steps. At ml-tag's shape (90,445 rows
of 256, batch 4096, 3 fields) those table-sized passes were about 40% of a training step for every library.
`RowAdagrad` reads a sparse gradient's rows directly (one per id, as `afm.fast.ops` builds them; others are
coalesced first) and updates the touched rows of the accumulator and the table, and nothing else. Dense gradients (the attention network,
p, the bias) go through PyTorch's own Adagrad step, fused where the device has it.

The arithmetic is torch.optim.Adagrad's (lr_decay and weight_decay 0, accumulator from 0):
    sum += g^2;  param -= lr * g / (sqrt(sum) + eps)
and `tests/test_training.py` checks it against PyTorch's dense Adagrad on the same batches.
"""
from __future__ import annotations

import torch

from afm.fast.kernels import adagrad_rows


class RowAdagrad(torch.optim.Adagrad):
    """torch.optim.Adagrad, except that a parameter with a sparse gradient updates only its touched rows."""

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-10, fused: bool | None = None):
        super().__init__(params, lr=lr, eps=eps, fused=fused)

    @torch.no_grad()
    def step(self, closure=None):
        done = []
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None and param.grad.is_sparse:
                    self._update_rows(param, param.grad, group["lr"], group["eps"])
                    done.append((param, param.grad))
                    param.grad = None  # hidden from PyTorch's step below, which takes the dense ones
        loss = super().step(closure)
        for param, grad in done:
            param.grad = grad
        return loss

    def _update_rows(self, param: torch.Tensor, grad: torch.Tensor, lr: float, eps: float) -> None:
        state = self.state[param]
        state["step"] += 1
        grad = grad if grad.is_coalesced() else grad.coalesce()  # afm.fast.ops gives one row per id already
        touched, summed = grad._indices()[0], grad._values()
        if param.device.type == "cpu" and param.dtype == torch.float32 and param.is_contiguous():
            adagrad_rows(param, state["sum"], touched, summed, lr, eps)  # one pass, in place (afm.fast.kernels)
            return
        accumulated = state["sum"].index_select(0, touched).addcmul_(summed, summed)
        state["sum"].index_copy_(0, touched, accumulated)
        updated = param.index_select(0, touched).addcdiv_(summed, accumulated.sqrt_().add_(eps), value=-lr)
        param.index_copy_(0, touched, updated)

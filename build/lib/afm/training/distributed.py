"""Data-parallel training under torchrun, with PyTorch's own engine (DistributedDataParallel).

`torchrun --nproc_per_node=N -m afm train ...` starts N copies; each takes every N-th row of each global
batch, DDP averages the gradients, so a step sees the same batch as one process would. Every rank
evaluates the full validation split on identical weights, so all make the same early-stopping decision;
only rank 0 writes files. Without torchrun's environment this is a no-op world of one.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    return world()[0] == 0


def start(device: torch.device) -> torch.device:
    """Join the process group (gloo on CPU, nccl on GPUs); returns this rank's device."""
    rank, size = world()
    if size == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=size)
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module to call in training: DDP around the model in a world of several, else the model."""
    if world()[1] == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean over ranks of a tensor (a loss, so every rank sees the same number and stops together)."""
    if world()[1] == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / world()[1]


def finish() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

"""The process group of a trainer run under ``torchrun`` (PyTorch DDP): one place that joins it.

``torchrun --nproc-per-node N`` starts N processes with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and the
rendezvous address) in their environment. :func:`join_process_group` initialises the default group from them once
(gloo on CPU, NCCL on CUDA) and returns this process's rank, the world size and its device; a group the caller has
already initialised (tests spawning their own processes) is used as it is. Without ``torchrun`` it returns rank 0 of
a world of 1 and touches nothing.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["join_process_group"]


def join_process_group(device: str) -> tuple[int, int, torch.device]:
    """Join (initialising if needed) the default process group.

    Args:
        device: the run's torch device string; under ``torchrun`` a CUDA device becomes ``cuda:LOCAL_RANK``.

    Returns:
        (rank, world size, this process's device).
    """
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = os.environ.get("LOCAL_RANK")
        if device.startswith("cuda") and local is not None:
            return rank, world, torch.device(f"cuda:{local}")
        return rank, world, torch.device(device)
    return 0, 1, torch.device(device)

"""Run bookkeeping shared by the image and keypoint trainers (lifter, keypoint network, ObMan network, HoNet,
image PiCR): the DDP rank, resuming from ``RUN/last.pt``, the seeded order of an epoch's batches, and the per-epoch
log line and checkpoints.

Every epoch writes ``RUN/last.pt`` atomically (with the optimiser state) and one JSON line to ``RUN/log.jsonl``;
the best validation error goes to ``RUN/best.pt``. A rerun resumes at the epoch after the last checkpoint, with
the log cut back to the epochs that checkpoint confirms, so the log never loses or repeats an epoch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from contactkit.errors import ContactkitError
from contactkit.io.atomic import atomic_write_bytes
from contactkit.io.runlog import truncate_log
from contactkit.learn.checkpoint import Checkpoint, NetworkKind, load_checkpoint, save_checkpoint

__all__ = ["epoch_batches", "rank_world", "save_epoch", "start_run"]


def rank_world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised ``torch.distributed`` group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def start_run(run_dir: Path, kind: NetworkKind, net: torch.nn.Module, optimiser: torch.optim.Optimizer,
              net_config: dict[str, Any], train_config: dict[str, Any], *, rank: int
              ) -> tuple[int, float, dict[str, Any]]:
    """Resume a keypoint-model run from ``RUN/last.pt`` when it exists (same settings only), and on rank 0 create
    the run folder, cut the log back to the resumed epoch and write ``config.json``.

    Returns:
        (first epoch to run, best validation error so far in mm, the last epoch's record).
    """
    start_epoch, best = 0, float("inf")
    record: dict[str, Any] = {}
    last_path = run_dir / "last.pt"
    if last_path.exists():
        ckpt = load_checkpoint(last_path, expected_kind=kind)
        if ckpt.training.get("config") != train_config or ckpt.config != net_config:
            raise ContactkitError(f"{run_dir} holds a run with different settings; use a new --out directory or "
                                  "the same settings to resume")
        net.load_state_dict(ckpt.state_dict)
        if ckpt.optimizer is not None:
            optimiser.load_state_dict(ckpt.optimizer)
        start_epoch = int(ckpt.training["epoch"]) + 1
        best = float(ckpt.training.get("best_error_mm", best))
        record = dict(ckpt.training.get("last", {}))
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        truncate_log(run_dir / "log.jsonl", "epoch", start_epoch)
        atomic_write_bytes(run_dir / "config.json", json.dumps(
            {"kind": kind, "network": net_config, "train": train_config}, indent=2).encode())
    return start_epoch, best, record


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int, *, desc: str,
                  progress: bool, min_batch: int = 2) -> tuple[torch.Generator, Iterator[list[int]]]:
    """The epoch's generator (seeded by ``(seed, epoch)`` only; it drew the order and may draw more, e.g. noise)
    and its batches of sample indices: a permutation of ``range(n)``, this rank's share, in ``batch_size``
    chunks; chunks smaller than ``min_batch`` are skipped (batch norm needs two samples)."""
    gen = torch.Generator().manual_seed(seed * 100_003 + 7919 * epoch)
    order = torch.randperm(n, generator=gen)[rank::world]

    def batches() -> Iterator[list[int]]:
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress or rank != 0,
                          leave=False):
            idx = order[start:start + batch_size].tolist()
            if len(idx) >= min_batch:
                yield idx

    return gen, batches()


def save_epoch(run_dir: Path, kind: NetworkKind, net_config: dict[str, Any], net: torch.nn.Module,
               optimiser: torch.optim.Optimizer, record: dict[str, Any], training: dict[str, Any],
               improved: bool) -> None:
    """Append ``record`` to ``log.jsonl``, write ``last.pt`` (with the optimiser state) and, when ``improved``,
    ``best.pt`` (weights only)."""
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    state = net.state_dict()
    save_checkpoint(run_dir / "last.pt", Checkpoint(kind=kind, config=net_config, state_dict=state,
                                                    training=training, optimizer=optimiser.state_dict()))
    if improved:
        save_checkpoint(run_dir / "best.pt", Checkpoint(kind=kind, config=net_config, state_dict=state,
                                                         training=training))

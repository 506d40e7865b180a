"""Run bookkeeping shared by the image and keypoint trainers (lifter, keypoint network, ObMan network, HoNet,
image PiCR): opening a run (seeded network, optimiser, resuming from ``RUN/last.pt``, the DDP wrapper under
``torchrun``), the seeded order of an epoch's batches, the epoch's mean losses, and the per-epoch log line and
checkpoints.

Every epoch writes ``RUN/last.pt`` atomically (with the optimiser state) and one JSON line to ``RUN/log.jsonl``;
the best validation error goes to ``RUN/best.pt``. A rerun resumes at the epoch after the last checkpoint, with
the log cut back to the epochs that checkpoint confirms, so the log never loses or repeats an epoch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor, nn
from tqdm import tqdm

from contactkit.errors import ContactkitError
from contactkit.io.atomic import atomic_write_bytes
from contactkit.io.runlog import truncate_log
from contactkit.learn.checkpoint import Checkpoint, NetworkKind, load_checkpoint, save_checkpoint
from contactkit.learn.distributed import join_process_group

__all__ = ["EpochMeans", "OpenRun", "epoch_batches", "open_run", "save_epoch"]

NetT = TypeVar("NetT", bound=nn.Module)


@dataclass
class OpenRun(Generic[NetT]):
    """A trainer's state before its first (or resumed) epoch.

    Attributes:
        net: the network (checkpoints and validation use it).
        model: what the training step calls: ``net`` (or the module built from it by ``open_run``'s ``wrap``),
            inside ``DistributedDataParallel`` when the world has more than one process.
        optimiser: Adam over ``net``'s parameters (state restored when resuming).
        rank, world, device: this process's rank, the world size, its device.
        start_epoch: the first epoch to run; best: best validation figure so far (``inf`` on a new run);
        record: the last finished epoch's log record (empty on a new run).
    """

    net: NetT
    model: nn.Module
    optimiser: torch.optim.Optimizer
    rank: int
    world: int
    device: torch.device
    start_epoch: int
    best: float
    record: dict[str, Any]


def open_run(run_dir: Path, kind: NetworkKind, build: Callable[[], NetT], net_config: dict[str, Any],
             train_config: dict[str, Any], *, seed: int, lr: float, device: str,
             init_state: dict[str, Tensor] | None = None,
             wrap: Callable[[NetT], nn.Module] | None = None) -> OpenRun[NetT]:
    """Join the ``torchrun`` process group if there is one, build the network under ``seed`` (initial weights
    depend on it only), load ``init_state`` (starting weights, e.g. to fine-tune; overridden when resuming), make
    Adam at ``lr``, resume from ``RUN/last.pt`` when it exists (same settings only; see :func:`_start_run`) and
    wrap the training module for DDP.

    Args:
        build: makes the network (called after seeding).
        net_config, train_config: the settings saved with every checkpoint (``asdict`` of the configs).
        wrap: the module the training step calls, made from the network (default: the network itself), for a
            trainer whose loss calls parts of the network rather than its ``forward``; DDP wraps this module.
    """
    rank, world, dev = join_process_group(device)
    torch.manual_seed(seed)
    net = build()
    if init_state is not None:
        net.load_state_dict(init_state)
    net = net.to(dev)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    start_epoch, best, record = _start_run(run_dir, kind, net, optimiser, net_config, train_config, rank=rank)
    model = net if wrap is None else wrap(net)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return OpenRun(net, model, optimiser, rank, world, dev, start_epoch, best, record)


class EpochMeans:
    """Sample-weighted means of an epoch's loss terms over the batches this process ran."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self.count = 0

    def add(self, terms: dict[str, Tensor], n: int) -> None:
        """Add one batch's scalar ``terms`` (means over its ``n`` samples)."""
        for name, value in terms.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value.detach()) * n
        self.count += n

    def means(self) -> dict[str, float]:
        """Each term's mean per sample (0 for an epoch that ran no batch)."""
        return {name: total / max(self.count, 1) for name, total in self._sums.items()}


def _start_run(run_dir: Path, kind: NetworkKind, net: torch.nn.Module, optimiser: torch.optim.Optimizer,
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

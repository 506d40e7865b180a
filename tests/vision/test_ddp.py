"""The lifter trainer under DistributedDataParallel (2 CPU processes, gloo), started as ``torchrun`` starts it
(rank and rendezvous in the environment; the trainer joins the group itself): it trains, and only rank 0 writes."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from contactkit.learn.checkpoint import load_checkpoint
from contactkit.vision.data import views_from_samples
from contactkit.vision.lifter import LifterConfig
from contactkit.vision.train import LifterTrainConfig, train_lifter


def torchrun_environment(rank: int, world: int, port: int) -> None:
    """Set what ``torchrun`` sets for one of its processes."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, run_dir: str, samples: list) -> None:
    torch.set_num_threads(1)
    torchrun_environment(rank, world, port)
    try:
        views = views_from_samples(samples)
        train, val = views.subset(list(range(8))), views.subset(list(range(8, 10)))
        train_lifter(train, val, run_dir, LifterConfig(hidden=8, merged_layers=3),
                     LifterTrainConfig(epochs=2, finetune_epochs=0, batch_size=4), progress=False)
        dist.barrier()
        assert dist.get_world_size() == world and dist.get_rank() == rank  # joined by the trainer
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_ranks(tmp_path, hand):
    from tests.vision.conftest import rendered_samples

    samples = rendered_samples(hand, 10, seed=7, size=32)
    for s in samples:
        s.pop("rgb"), s.pop("depth"), s.pop("hand_mask"), s.pop("object_mask")
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path / "run"), samples), nprocs=2, join=True)
    assert (tmp_path / "run" / "best.pt").is_file()
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2  # one writer, one line per epoch
    assert load_checkpoint(tmp_path / "run" / "last.pt").training["epoch"] == 1

"""The lifter trainer under DistributedDataParallel (2 CPU processes, gloo): it trains, and only rank 0 writes."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from contactkit.learn.checkpoint import load_checkpoint
from contactkit.vision.data import views_from_samples
from contactkit.vision.lifter import LifterConfig
from contactkit.vision.train import LifterTrainConfig, train_lifter


def _worker(rank: int, world: int, init_file: str, run_dir: str, samples: list) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        views = views_from_samples(samples)
        train, val = views.subset(list(range(8))), views.subset(list(range(8, 10)))
        train_lifter(train, val, run_dir, LifterConfig(hidden=8, merged_layers=3),
                     LifterTrainConfig(epochs=2, finetune_epochs=0, batch_size=4), progress=False)
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_ranks(tmp_path, hand):
    from tests.vision.conftest import rendered_samples

    samples = rendered_samples(hand, 10, seed=7, size=32)
    for s in samples:
        s.pop("rgb"), s.pop("depth"), s.pop("hand_mask"), s.pop("object_mask")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "run"), samples), nprocs=2, join=True)
    assert (tmp_path / "run" / "best.pt").is_file()
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2  # one writer, one line per epoch
    assert load_checkpoint(tmp_path / "run" / "last.pt").training["epoch"] == 1

"""Training: the lifter's resume reproduces an uninterrupted run; the keypoint network trains on rendered samples."""

from __future__ import annotations

import json

import pytest
import torch
from tests.vision.conftest import rendered_samples

from contactkit.errors import ContactkitError
from contactkit.learn.checkpoint import load_checkpoint
from contactkit.vision.data import views_from_samples
from contactkit.vision.heads import KeypointNetConfig
from contactkit.vision.lifter import LifterConfig
from contactkit.vision.train import LifterTrainConfig, evaluate_lifter, lifter_from_checkpoint, train_lifter
from contactkit.vision.train_keypoints import KeypointTrainConfig, train_keypoints


class _Kill(Exception):
    pass


def test_lifter_resume_reproduces_an_uninterrupted_run(tmp_path, hand):
    views = views_from_samples(rendered_samples(hand, 12, seed=5))
    train, val = views.subset(list(range(8))), views.subset(list(range(8, 12)))
    net_config = LifterConfig(hidden=16, merged_layers=3)
    config = LifterTrainConfig(epochs=2, finetune_epochs=1, batch_size=4, affinity_weight=10.0, noise_px=1.0)
    train_lifter(train, val, tmp_path / "a", net_config, config, progress=False)

    def kill(epoch: int) -> None:
        if epoch == 1:
            raise _Kill

    with pytest.raises(_Kill):
        train_lifter(train, val, tmp_path / "b", net_config, config, progress=False, on_epoch_end=kill)
    train_lifter(train, val, tmp_path / "b", net_config, config, progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for key in a.state_dict:
        torch.testing.assert_close(a.state_dict[key], b.state_dict[key], rtol=0, atol=0)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2] and log[2]["stage"] == "finetune" and "affinity" in log[2]["train"]
    net, training = lifter_from_checkpoint(tmp_path / "a" / "best.pt")
    assert training["kind"] == "lifter" and set(evaluate_lifter(net, val)) >= {"hand_mm", "object_mm"}
    with pytest.raises(ContactkitError, match="different settings"):
        train_lifter(train, val, tmp_path / "b", net_config, LifterTrainConfig(epochs=3), progress=False)
    with pytest.raises(ContactkitError, match="full"):
        train_lifter(train, val, tmp_path / "c", LifterConfig(mode="hand", hidden=8), config, progress=False)


def test_keypoint_network_trains_on_rendered_samples(tmp_path, hand):
    samples = rendered_samples(hand, 6, seed=6, size=48)
    net_config = KeypointNetConfig(backbone={"name": "resnet", "width": 8, "blocks": [1, 1]}, image_size=32,
                                   context_dim=8, lifter={"hidden": 16, "merged_layers": 3})
    config = KeypointTrainConfig(epochs=2, finetune_epochs=1, batch_size=3)
    record = train_keypoints(samples[:4], samples[4:], tmp_path / "k", net_config, config, progress=False)
    assert record["epoch"] == 2 and set(record["val"]) >= {"keypoints_2d_px", "hand_mm", "object_mm"}
    assert load_checkpoint(tmp_path / "k" / "best.pt", expected_kind="keypoints").config["image_size"] == 32
    # rerunning the finished run resumes and has nothing left to do
    again = train_keypoints(samples[:4], samples[4:], tmp_path / "k", net_config, config, progress=False)
    assert again["epoch"] == 2

"""``contactkit estimate``: image files, a ground-truth grasp file (oracle 2D, opt-in), a rendered dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.fit.fake_dataset import install_fake_dataset

from contactkit.cli.main import main
from contactkit.hands import load_hand
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps
from contactkit.learn.checkpoint import Checkpoint, save_checkpoint
from contactkit.metrics import evaluate
from contactkit.objects import load_object
from contactkit.vision.data import synthetic_views
from contactkit.vision.lifter import ContextAwareLifter, LifterConfig


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> tuple[GraspSet, str]:
    """Three hand + box grasps (random hands near a box; shapes and links matter here, not realism)."""
    hand = load_hand("openhand")
    mesh = load_object("box:extents=0.04/0.06/0.1")
    gen = torch.Generator().manual_seed(0)
    n = 3
    grasps = GraspSet(hand_model=hand.name, side=hand.side, global_orient=torch.randn(n, 3, generator=gen).numpy(),
                      hand_pose=(0.2 * torch.randn(n, 45, generator=gen)).numpy(), betas=np.zeros((n, 0)),
                      transl=(0.05 * torch.randn(n, 3, generator=gen)).numpy(), object_ids=[mesh.content_hash] * n,
                      objects={mesh.content_hash: mesh}, object_rotation=np.eye(3)[None].repeat(n, 0),
                      object_translation=np.zeros((n, 3)))
    path = tmp_path_factory.mktemp("gt") / "gt.npz"
    save_grasps(path, grasps)
    return grasps, str(path)


def _lifter_ckpt(tmp_path) -> str:
    torch.manual_seed(0)
    config = LifterConfig(hidden=16, merged_layers=3)
    path = tmp_path / "lifter.pt"
    save_checkpoint(path, Checkpoint(kind="lifter", config=dataclasses.asdict(config),
                                     state_dict=ContextAwareLifter(config).state_dict(), training={}))
    return str(path)


def test_estimate_from_image_files(tmp_path):
    """The shipped image network (the default) on a rendered view of a test-split object, then a copy of it."""
    fixture = Path(__file__).parent / "data" / "v3_test_view.png"  # /work/data/v3 test split, 128 px, f 154.5 px
    images = [str(fixture), str(tmp_path / "copy.png")]
    Image.open(fixture).save(images[1])
    out = tmp_path / "est.npz"
    rc = main(["estimate", *images, "--model", "keypoints", "--object", "box:extents=0.04/0.06/0.1", "--focal",
               "154.50967", "--out", str(out), "--ik-iterations", "2"])
    assert rc == 0
    est = load_grasps(out)
    assert len(est) == 2 and est.attrs["frame"] == "camera" and est.metadata[1]["image"] == images[1]
    assert len(est.metadata[0]["estimated_keypoints"]) == 63
    np.testing.assert_allclose(est.transl[0], est.transl[1])  # the same image gives the same grasp
    # images need an object
    assert main(["estimate", *images, "--model", "keypoints", "--out", str(out)]) == 2


def test_estimate_from_ground_truth_2d_is_opt_in_and_linked(tmp_path, gt):
    grasps, path = gt
    out = tmp_path / "est.npz"
    assert main(["estimate", path, "--model", "lifter", "--weights", _lifter_ckpt(tmp_path), "--out",
                 str(out)]) == 2  # no silent oracle input
    assert main(["estimate", path, "--model", "lifter", "--weights", _lifter_ckpt(tmp_path), "--out", str(out),
                 "--from-ground-truth-2d", "--views-per-grasp", "2", "--ik-iterations", "2"]) == 0
    est = load_grasps(out)
    assert len(est) == 6 and est.reference_index.tolist() == [0, 0, 1, 1, 2, 2]
    assert est.attrs["keypoints_2d"] == "ground truth (oracle input)"
    ev = evaluate(est, metrics=["mpjpe_mm"])
    assert np.isfinite(ev["mpjpe_mm"].mean)


def test_estimate_from_a_rendered_dataset(tmp_path, gt, monkeypatch):
    grasps, _ = gt
    hand = load_hand("openhand")
    views = synthetic_views(grasps, hand, 1, seed=0, image_size=64)
    samples = []
    rng = np.random.default_rng(1)
    for i in range(len(views)):
        samples.append({"rgb": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "K": views.k[i].numpy(),
                        "cam_from_world": views.cam_from_world[i].numpy(),
                        "hand_keypoints_3d": views.keypoints_3d[i, :21].numpy(),
                        "hand_keypoints_2d": views.keypoints_2d[i, :21].numpy(),
                        "object_corners_3d": views.keypoints_3d[i, 21:].numpy(),
                        "object_corners_2d": views.keypoints_2d[i, 21:].numpy(),
                        "grasp_index": int(views.grasp_index[i]), "object_id": views.object_ids[i],
                        "view_index": 0})

    root = install_fake_dataset(monkeypatch, tmp_path, samples, grasps)
    out = tmp_path / "est.npz"
    lifter = _lifter_ckpt(tmp_path)
    assert main(["estimate", str(root), "--model", "lifter", "--weights", lifter, "--out", str(out)]) == 2
    assert main(["estimate", str(root), "--model", "lifter", "--weights", lifter, "--out", str(out),
                 "--from-ground-truth-2d", "--ik-iterations", "2"]) == 0
    est = load_grasps(out)
    assert len(est) == 3 and est.reference_index.tolist() == [0, 1, 2]
    assert est.attrs["split"] == "test" and est.attrs["keypoints_2d"] == "ground truth (oracle input)"
    assert load_grasps(est.attrs["reference"]).object_ids == grasps.object_ids


#: the test split of the rendered dataset the shipped models were trained on (/work/data/v3, split by object)
V3_TEST_OBJECTS = {f"random_urdf_{i:03d}" for i in (49, 54, 69, 72, 73, 75, 76, 81, 122, 132, 134, 143, 145, 155, 156,
                                                      159)}


def test_shipped_image_network_loads_safely_and_was_trained_on_train_objects_only():
    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.vision.weights import default_keypoints_path

    path = default_keypoints_path("openhand")
    assert path.stat().st_size < 5_000_000
    training = load_checkpoint(path, expected_kind="keypoints").training  # weights_only=True inside
    assert training["train_objects"] and not set(training["train_objects"]) & V3_TEST_OBJECTS  # held out
    assert not set(training["val_objects"]) & V3_TEST_OBJECTS


def test_shipped_lifter_is_the_default_and_loads_safely(tmp_path, gt):
    from contactkit.vision.train import lifter_from_checkpoint
    from contactkit.vision.weights import default_lifter_path

    net, training = lifter_from_checkpoint(default_lifter_path("openhand"))  # weights_only=True inside
    assert net.config.mode == "full" and training["hand_model"] == "openhand"
    assert training["train_objects"] and not set(training["train_objects"]) & V3_TEST_OBJECTS  # held out
    _, path = gt
    out = tmp_path / "est.npz"
    assert main(["estimate", path, "--model", "lifter", "--from-ground-truth-2d", "--out", str(out),
                 "--ik-iterations", "2"]) == 0
    assert len(load_grasps(out)) == 3

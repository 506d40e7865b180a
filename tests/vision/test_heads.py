"""Backbones, soft-argmax heads and the image -> 3D keypoint network on in-memory rendered samples."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tests.vision.conftest import rendered_samples

from contactkit.errors import ContactkitError, ShapeError
from contactkit.learn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from contactkit.vision.backbone import CompactResNet, build_backbone, normalize_images
from contactkit.vision.camera import project
from contactkit.vision.heads import KeypointNet, KeypointNetConfig, resize_to_square, soft_argmax_2d

TINY = KeypointNetConfig(backbone={"name": "resnet", "width": 8, "blocks": [1, 1]}, image_size=32, context_dim=8,
                         lifter={"hidden": 16, "merged_layers": 3})


def test_soft_argmax_finds_sharp_peaks_and_the_centre_of_flat_maps():
    heat = torch.full((1, 2, 9, 12), -1e4)
    heat[0, 0, 3, 7] = 0.0  # row 3, column 7
    heat[0, 1] = 0.0  # flat: the centre
    xy = soft_argmax_2d(heat)
    torch.testing.assert_close(xy, torch.tensor([[[7.0, 3.0], [5.5, 4.0]]]))
    # two equal peaks: their midpoint (the integral, not the arg-max)
    heat2 = torch.full((1, 1, 5, 5), -1e4)
    heat2[0, 0, 1, 1] = heat2[0, 0, 3, 3] = 0.0
    torch.testing.assert_close(soft_argmax_2d(heat2), torch.tensor([[[2.0, 2.0]]]))
    with pytest.raises(ShapeError):
        soft_argmax_2d(torch.zeros(2, 3, 4))


@pytest.mark.parametrize("width,blocks,stride", [(8, [1, 1], 8), (4, [1, 1, 1, 1], 32), (6, [2, 1, 1], 16)])
def test_compact_resnet_shapes(width, blocks, stride):
    net = CompactResNet(width, blocks)
    out = net(torch.zeros(2, 3, 64, 64))
    assert net.stride == stride and net.out_channels == width * 2 ** (len(blocks) - 1)
    assert out.shape == (2, net.out_channels, 64 // stride, 64 // stride)


def test_backbone_config_errors():
    with pytest.raises(ContactkitError, match="unknown resnet"):
        build_backbone({"name": "resnet", "depth": 50})
    with pytest.raises(ContactkitError, match="backbone name"):
        build_backbone({"name": "vgg"})
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ContactkitError, match="torchvision"):
            build_backbone({"name": "torchvision", "arch": "resnet18"})


def test_resize_keeps_projections_consistent():
    k = torch.tensor([[[100.0, 0, 40], [0, 110.0, 30], [0, 0, 1]]])
    pts = torch.tensor([[[0.05, -0.02, 0.5], [-0.03, 0.04, 0.6]]])
    uv = project(pts, k)
    rgb = torch.zeros(1, 60, 80, 3)
    small, k2 = resize_to_square(rgb, k, 32)
    assert small.shape == (1, 32, 32, 3)
    # pixel centres map as u' = (u + 0.5) * s - 0.5
    expected = torch.stack([(uv[..., 0] + 0.5) * 32 / 80 - 0.5, (uv[..., 1] + 0.5) * 32 / 60 - 0.5], -1)
    torch.testing.assert_close(project(pts, k2), expected)


def _batch(samples, size):
    rgb = torch.as_tensor(np.stack([s["rgb"] for s in samples]))
    k = torch.as_tensor(np.stack([s["K"] for s in samples]))
    rgb, k = resize_to_square(rgb, k, size)
    kp2 = torch.as_tensor(np.stack([np.concatenate([s["hand_keypoints_2d"], s["object_corners_2d"]])
                                    for s in samples]))
    scale = size / samples[0]["rgb"].shape[1]
    return normalize_images(rgb), k, (kp2 + 0.5) * scale - 0.5


def test_keypoint_net_shapes_and_overfit(hand):
    samples = rendered_samples(hand, 4, seed=3)
    images, k, kp2 = _batch(samples, TINY.image_size)
    torch.manual_seed(0)
    net = KeypointNet(TINY)
    out = net(images, k)
    assert out.keypoints_2d.shape == (4, 29, 2) and out.hand_camera.shape == (4, 21, 3)
    assert out.object_camera.shape == (4, 8, 3)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        err = (net(images, k).keypoints_2d - kp2).pow(2).sum(-1).mean()
        first = err.item() if first is None else first
        opt.zero_grad()
        err.backward()
        opt.step()
    assert err.item() < 0.25 * first  # the 2D head fits a handful of random images


def test_keypoint_net_save_load_round_trip(tmp_path, hand):
    images, k, _ = _batch(rendered_samples(hand, 2, seed=4), TINY.image_size)
    torch.manual_seed(0)
    net = KeypointNet(TINY).eval()
    save_checkpoint(tmp_path / "k.pt", Checkpoint(kind="keypoints", config=dataclasses.asdict(TINY),
                                                  state_dict=net.state_dict(), training={}))
    ckpt = load_checkpoint(tmp_path / "k.pt", expected_kind="keypoints")
    again = KeypointNet(KeypointNetConfig.from_dict(ckpt.config)).eval()
    again.load_state_dict(ckpt.state_dict)
    torch.testing.assert_close(again(images, k).keypoints_2d, net(images, k).keypoints_2d, rtol=0, atol=0)


@pytest.mark.parametrize("config_path", ["contactkit.vision.heads:KeypointNetConfig",
                                         "contactkit.vision.lifter:LifterConfig",
                                         "contactkit.vision.obman_net:ObManNetConfig",
                                         "contactkit.vision.honet:HoNetConfig",
                                         "contactkit.vision.picr_image:ImagePiCRConfig"])
def test_saved_configs_round_trip_and_refuse_unknown_keys(config_path):
    """Every image-model config is rebuilt through ``contactkit.settings.from_fields``: its own ``asdict`` reads
    back equal, and a misspelt key is an error naming it and the valid keys."""
    import dataclasses
    import importlib

    module, name = config_path.split(":")
    cls = getattr(importlib.import_module(module), name)
    cfg = cls()
    assert cls.from_dict(dataclasses.asdict(cfg)) == cfg
    with pytest.raises(ContactkitError, match=r"unknown .* settings \['imgae_size'\]; known: \[.*"):
        cls.from_dict({**dataclasses.asdict(cfg), "imgae_size": 64})


def test_shipped_image_weights_are_found_or_named_with_how_to_train():
    from contactkit.vision import weights

    for finder, kind in ((weights.default_lifter_path, "lifter"), (weights.default_keypoints_path, "keypoints"),
                         (weights.default_obman_net_path, "obman-net"), (weights.default_honet_path, "honet"),
                         (weights.default_picr_image_path, "picr-image")):
        assert finder("openhand").is_file()
        with pytest.raises(ContactkitError, match=f"no shipped .* for hand 'mano'; train one with `contactkit train "
                                                  f"{kind}` and pass --weights"):
            finder("mano")

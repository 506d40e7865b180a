"""Training-image augmentation: the moved 2D targets follow the image content and the new intrinsics."""

from __future__ import annotations

import torch

from contactkit.vision.camera import project
from contactkit.vision.train_keypoints import augment_batch


def _batch(b: int = 4, size: int = 48) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    k = torch.tensor([[60.0, 0.0, 23.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]]).expand(b, 3, 3).clone()
    kp3 = torch.randn(b, 29, 3, generator=gen) * 0.03 + torch.tensor([0.0, 0.0, 0.5])
    kp2 = project(kp3, k)
    images = torch.zeros(b, 3, size, size)
    return {"images": images, "k": k, "keypoints_2d": kp2, "keypoints_3d": kp3}


def test_augmented_targets_are_the_projections_under_the_new_intrinsics():
    batch = _batch()
    out = augment_batch(batch, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out["keypoints_2d"], project(out["keypoints_3d"], out["k"]), atol=1e-3, rtol=0)
    assert torch.equal(out["keypoints_3d"], batch["keypoints_3d"])
    assert not torch.allclose(out["keypoints_2d"], batch["keypoints_2d"])


def test_a_bright_pixel_moves_with_its_keypoint():
    batch = _batch(b=3)
    batch["keypoints_2d"] = torch.tensor([[20.0, 17.0], [30.0, 25.0], [14.0, 33.0]])[:, None].repeat(1, 29, 1)
    for i in range(3):
        x, y = batch["keypoints_2d"][i, 0].long().tolist()
        batch["images"][i, :, y, x] = 1.0
    out = augment_batch(batch, torch.Generator().manual_seed(2), colour=0.0)
    ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    for i in range(3):
        w = out["images"][i, 0].clamp_min(0)
        centroid = torch.stack([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])
        torch.testing.assert_close(centroid, out["keypoints_2d"][i, 0], atol=0.35, rtol=0)

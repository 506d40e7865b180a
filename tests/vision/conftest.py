"""Fixtures of the vision tests: posed hands holding boxes, and rendered-dataset samples (contract A) built in
memory from them (random images; the real renderer is another package's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contactkit.hands import load_hand
from contactkit.vision.camera import project, random_cameras
from contactkit.vision.keypoints import box_corner_signs


@pytest.fixture(scope="session")
def hand():
    return load_hand("openhand")


def hand_box_scenes(hand, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """World hand keypoints (n, 21, 3) and box corners (n, 8, 3): mildly bent hands with a box near the palm."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out = hand(0.5 * torch.randn(n, 3, generator=gen), 0.2 * torch.randn(n, 45, generator=gen))
    kp = out.keypoints.double()
    half = torch.tensor([0.02, 0.03, 0.06], dtype=torch.float64)
    local = torch.as_tensor(box_corner_signs()) * half  # the box of a box centred on its frame's origin
    centre = kp[:, [0, 5, 9, 13, 17]].mean(1) + 0.02 * torch.randn(n, 3, generator=gen, dtype=torch.float64)
    rot = torch.linalg.qr(torch.randn(n, 3, 3, generator=gen, dtype=torch.float64)).Q
    corners = local @ rot.transpose(1, 2) + centre[:, None]
    return kp, corners


def rendered_samples(hand, n: int, seed: int, size: int = 64) -> list[dict]:
    """In-memory samples with the fields and dtypes of ``contactkit.dataset.RenderedDataset`` (contract A)."""
    kp, corners = hand_box_scenes(hand, n, seed)
    world = torch.cat([kp, corners], 1)
    gen = torch.Generator().manual_seed(seed + 1)
    k, ext = random_cameras(world.mean(1), gen, distance=(0.5, 0.7), focal=(90.0, 110.0), image_size=size)
    cam = world @ ext[:, :3, :3].transpose(1, 2) + ext[:, None, :3, 3]
    uv = project(cam, k)
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        samples.append({
            "rgb": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
            "depth": np.zeros((size, size), np.float32),
            "hand_mask": np.zeros((size, size), bool), "object_mask": np.zeros((size, size), bool),
            "K": k[i].numpy().astype(np.float32), "cam_from_world": ext[i].numpy().astype(np.float32),
            "hand_keypoints_3d": cam[i, :21].numpy().astype(np.float32),
            "hand_keypoints_2d": uv[i, :21].numpy().astype(np.float32),
            "object_corners_3d": cam[i, 21:].numpy().astype(np.float32),
            "object_corners_2d": uv[i, 21:].numpy().astype(np.float32),
            "grasp_index": i, "object_id": "box0", "view_index": 0,
        })
    return samples

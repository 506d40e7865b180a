"""Shared fixtures: OpenHand, perturbation and keypoints of the ground-truth sphere grasps
(:func:`tests.grasp_fixtures.posed_sphere_grasps`), and a toy hand."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from contactkit.geometry.rotations import axis_angle_to_rotmat


@pytest.fixture(scope="session")
def openhand():
    from contactkit.hands import load_hand

    return load_hand("openhand")


def perturb(grasps, seed: int = 0, transl: float = 0.01, rot_deg: float = 5.0, pose: float = 0.1):
    rng = np.random.default_rng(seed)
    n = len(grasps)
    return grasps.replace(
        transl=grasps.transl + rng.normal(0, transl, (n, 3)),
        global_orient=grasps.global_orient + rng.normal(0, math.radians(rot_deg), (n, 3)),
        hand_pose=grasps.hand_pose + rng.normal(0, pose, (n, 45)),
    )


def keypoints(hand, grasps):
    t = grasps.hand_tensors()
    with torch.no_grad():
        return hand(t["global_orient"], t["hand_pose"], t["betas"], t["transl"]).keypoints


def mpjpe_mm(hand, a, b, root_aligned: bool = False):
    ka, kb = keypoints(hand, a), keypoints(hand, b)
    if root_aligned:  # wrist (keypoint 0) moved onto the reference's
        ka, kb = ka - ka[:, :1], kb - kb[:, :1]
    return (ka - kb).norm(dim=-1).mean(-1) * 1000.0


@dataclass
class _Out:
    vertices: torch.Tensor
    keypoints: torch.Tensor


class ToyHand:
    """A rigid 'hand': a fixed point cloud rotated by global_orient and shifted by transl (hand_pose unused
    except through a small additive offset so the pose gradient is not zero)."""

    num_betas = 0

    def __init__(self, dtype=torch.float64):
        g = torch.Generator().manual_seed(0)
        self.template = torch.randn(40, 3, generator=g, dtype=dtype) * 0.02
        self.faces = torch.zeros(1, 3, dtype=torch.long)

    def __call__(self, global_orient, hand_pose, betas=None, transl=None, *, pose_space="axis_angle"):
        rot = axis_angle_to_rotmat(global_orient)
        v = self.template.to(global_orient) @ rot.transpose(1, 2)
        v = v + 1e-3 * hand_pose[:, :3].unsqueeze(1)
        if transl is not None:
            v = v + transl.unsqueeze(1)
        return _Out(v, v[:, :21])

    def anchors(self, vertices):
        return vertices[:, :32]

    def pca_to_axis_angle(self, coeffs):
        return torch.nn.functional.pad(coeffs, (0, 45 - coeffs.shape[1]))


@pytest.fixture()
def toy_hand():
    return ToyHand()

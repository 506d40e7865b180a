"""Shared fixtures of the learned-contact tests: a posed OpenHand and toy hand–object datasets."""

from __future__ import annotations

import pytest
import torch

from contactkit.hands import load_hand
from contactkit.learn.data import ContactTensors
from contactkit.learn.estimators import inputs_for


@pytest.fixture(scope="session")
def hand():
    return load_hand("openhand")


def sphere_cloud(centre: torch.Tensor, radius: float, n: int, generator: torch.Generator):
    """(B, n, 3) points and outward normals on spheres of ``radius`` around ``centre`` (B, 3)."""
    normals = torch.nn.functional.normalize(torch.randn(centre.shape[0], n, 3, generator=generator), dim=-1)
    return centre[:, None] + radius * normals, normals


def posed_scene(hand, batch: int, seed: int, n_points: int = 256):
    """Random mildly bent hands holding a sphere near the palm: (hand_verts, obj_points, obj_normals)."""
    gen = torch.Generator().manual_seed(seed)
    orient = 0.5 * torch.randn(batch, 3, generator=gen)
    pose = 0.2 * torch.randn(batch, 45, generator=gen)
    out = hand(orient, pose, None, 0.05 * torch.randn(batch, 3, generator=gen))
    verts = out.vertices
    centre = verts.mean(dim=1) + 0.01 * torch.randn(batch, 3, generator=gen)
    pts, nrm = sphere_cloud(centre, 0.035, n_points, gen)
    return verts, pts, nrm


def toy_tensors(hand, n: int, seed: int, n_points: int = 256) -> ContactTensors:
    """Inputs from :func:`posed_scene`; targets = proximity (learnable from the distance features)."""
    verts, pts, nrm = posed_scene(hand, n, seed, n_points)
    inputs = inputs_for(hand, verts, pts, nrm)
    dist = inputs.features[..., 1] * 0.1  # metres
    contact = torch.exp(-dist / 0.01)
    obj_dist = dist[:, inputs.n_hand :]
    vc = (obj_dist < 0.01).float()
    region = torch.where(vc > 0, (pts[..., 0] > pts[..., 0].mean(1, keepdim=True)).long() * 3, 0)
    return ContactTensors(
        xyz=inputs.xyz, features=inputs.features, contact=contact, object_vc=vc, object_region=region,
        object_elasticity=vc * 0.5, n_hand=inputs.n_hand,
    )

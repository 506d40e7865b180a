"""Rigid transforms and random rotations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from geometry_meshes import random_rigid

from contactkit.errors import ShapeError
from contactkit.geometry import (
    apply_rigid,
    compose_rigid,
    from_homogeneous,
    invert_rigid,
    random_rotations,
    to_homogeneous,
)

D = torch.float64


def _poses(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rs, ts = zip(*(random_rigid(seed + i) for i in range(n)), strict=True)
    return torch.stack(rs), torch.stack(ts)


def test_apply_rigid_matches_homogeneous_product() -> None:
    rot, t = _poses(3, 0)
    pts = torch.randn(3, 10, 3, generator=torch.Generator().manual_seed(1), dtype=D)
    out = apply_rigid(pts, rot, t)
    hom = torch.cat([pts, torch.ones(3, 10, 1, dtype=D)], dim=-1)
    ref = (hom @ to_homogeneous(rot, t).transpose(1, 2))[..., :3]
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-14)
    r2, t2 = from_homogeneous(to_homogeneous(rot, t))
    assert torch.equal(r2, rot) and torch.equal(t2, t)


def test_invert_and_compose() -> None:
    rot_a, t_a = _poses(4, 10)
    rot_b, t_b = _poses(4, 20)
    pts = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(2), dtype=D)
    rc, tc = compose_rigid(rot_a, t_a, rot_b, t_b)
    np.testing.assert_allclose(
        apply_rigid(pts, rc, tc).numpy(),
        apply_rigid(apply_rigid(pts, rot_b, t_b), rot_a, t_a).numpy(),
        atol=1e-14,
    )
    ri, ti = invert_rigid(rot_a, t_a)
    np.testing.assert_allclose(
        apply_rigid(apply_rigid(pts, rot_a, t_a), ri, ti).numpy(), pts.numpy(), atol=1e-14
    )
    r_id, t_id = compose_rigid(rot_a, t_a, ri, ti)
    np.testing.assert_allclose(r_id.numpy(), np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-14)
    np.testing.assert_allclose(t_id.numpy(), 0.0, atol=1e-15)


def test_apply_rigid_gradcheck() -> None:
    rot, t = _poses(2, 30)
    pts = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(3), dtype=D)
    args = (pts.requires_grad_(), rot.requires_grad_(), t.requires_grad_())
    assert torch.autograd.gradcheck(apply_rigid, args)


def test_random_rotations_angle_distribution_and_seed() -> None:
    sigma = math.radians(15)
    g = torch.Generator().manual_seed(0)
    rot = random_rotations(20000, sigma, g, dtype=D)
    assert rot.shape == (20000, 3, 3) and rot.dtype == D
    np.testing.assert_allclose(
        (rot @ rot.transpose(1, 2)).numpy(), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12
    )
    np.testing.assert_allclose(torch.linalg.det(rot).numpy(), 1.0, atol=1e-12)
    cos = ((rot.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
    angle = torch.arccos(cos)  # |N(0, sigma)|: E[angle^2] = sigma^2, E[angle] = sigma sqrt(2 / pi)
    assert abs(float(angle.pow(2).mean().sqrt()) / sigma - 1) < 0.02
    assert abs(float(angle.mean()) / (sigma * math.sqrt(2 / math.pi)) - 1) < 0.02
    # axes are uniform: the mean rotation axis is ~0
    axis = torch.stack(
        [rot[:, 2, 1] - rot[:, 1, 2], rot[:, 0, 2] - rot[:, 2, 0], rot[:, 1, 0] - rot[:, 0, 1]], -1
    )
    axis = axis / axis.norm(dim=-1, keepdim=True)
    assert float(axis.mean(0).norm()) < 0.03
    again = random_rotations(20000, sigma, torch.Generator().manual_seed(0), dtype=D)
    assert torch.equal(rot, again)


def test_random_rotations_uniform_and_identity() -> None:
    rot = random_rotations(20000, float("inf"), torch.Generator().manual_seed(1), dtype=D)
    # Haar measure on SO(3): E[trace] = 0, E[R] = 0
    assert abs(float(rot.diagonal(dim1=1, dim2=2).sum(-1).mean())) < 0.03
    ident = random_rotations(5, 0.0, torch.Generator().manual_seed(2))
    assert ident.dtype == torch.float32
    np.testing.assert_allclose(ident.numpy(), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-7)
    assert random_rotations(0, 0.1).shape == (0, 3, 3)


def test_bad_inputs_raise_clear_errors() -> None:
    rot, t = _poses(2, 40)
    with pytest.raises(ShapeError, match=r"rot must have shape \(B, 3, 3\)"):
        apply_rigid(torch.zeros(2, 4, 3, dtype=D), rot[0], t)
    with pytest.raises(ShapeError, match=r"transl must have shape \(B, 3\)"):
        invert_rigid(rot, t[0])
    with pytest.raises(ShapeError, match="batch sizes differ"):
        apply_rigid(torch.zeros(3, 4, 3, dtype=D), rot, t)
    with pytest.raises(ShapeError, match="sigma_rad"):
        random_rotations(3, -1.0)
    with pytest.raises(ShapeError, match=r"mat must have shape \(B, 4, 4\)"):
        from_homogeneous(torch.zeros(2, 3, 4))

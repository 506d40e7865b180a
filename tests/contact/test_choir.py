"""CHOIR field (paper 002): BPS grid, anchor distances, contact Gaussians, closed-form anchor decode."""

import math

import pytest
import torch

from contactkit.contact.choir import (
    anchor_assignment,
    anchor_distance_loss,
    anchors_from_distances,
    bps_grid,
    cone_contact_weights,
    contact_density,
    encode,
    fit_contact_gaussians,
)
from contactkit.errors import ShapeError


def _sphere_points(n: int = 400, radius: float = 0.04, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.functional.normalize(torch.randn(1, n, 3, generator=g, dtype=torch.float64), dim=-1)
    return p * radius


def test_grid_shape_and_assignment():
    pts = _sphere_points()
    grid = bps_grid(pts, resolution=8)
    assert grid.shape == (1, 512, 3)
    centre = pts.mean(1)
    assert torch.allclose(grid.mean(1), centre, atol=1e-12)
    assert anchor_assignment(70, 32).tolist()[:34] == list(range(32)) + [0, 1]
    with pytest.raises(ShapeError, match="resolution must be >= 2"):
        bps_grid(pts, resolution=1)


def test_anchor_decode_is_exact():
    pts = _sphere_points()
    g = torch.Generator().manual_seed(1)
    anchors = torch.randn(1, 32, 3, generator=g, dtype=torch.float64) * 0.05
    verts = torch.randn(1, 50, 3, generator=g, dtype=torch.float64) * 0.05
    normals = torch.nn.functional.normalize(torch.randn(1, 50, 3, generator=g, dtype=torch.float64), dim=-1)
    field = encode(pts, verts, normals, anchors, resolution=8)
    # the ordered assignment puts each anchor's basis points in one plane: mirror ambiguity resolved by a hint
    hint = anchors + 0.003 * torch.randn(1, 32, 3, generator=g, dtype=torch.float64)
    decoded = anchors_from_distances(field.grid, field.anchor_sq_dist, field.assignment, hint=hint)
    torch.testing.assert_close(decoded, anchors, atol=1e-9, rtol=0)
    # a non-planar (shuffled) assignment needs no hint
    shuffled = torch.randperm(512, generator=g) % 32
    dist = ((field.grid - anchors[:, shuffled]) ** 2).sum(-1)
    torch.testing.assert_close(anchors_from_distances(field.grid, dist, shuffled), anchors, atol=1e-9, rtol=0)
    assert anchor_distance_loss(anchors, field.grid, field.anchor_sq_dist, field.assignment).abs().max() < 1e-18
    # object distances are the squared distances to the nearest object point
    naive = torch.cdist(field.grid, pts).min(-1).values ** 2
    torch.testing.assert_close(field.object_sq_dist, naive)
    assert field.contact_vector().shape == (1, 32, 9)


def test_cone_of_tolerance_counts():
    verts = torch.zeros(1, 1, 3, dtype=torch.float64)
    normal = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64)
    pts = torch.tensor([[[0.0, 0.0, 0.003],     # on the axis, 3 mm: in
                         [0.001, 0.0, 0.003],   # 18 deg off: in
                         [0.003, 0.0, 0.001],   # 72 deg off: out
                         [0.0, 0.0, -0.002],    # behind the vertex: out
                         [0.0, 0.0, 0.006]]],   # too far: out
                       dtype=torch.float64)
    assert cone_contact_weights(verts, normal, pts).item() == 2.0
    assert cone_contact_weights(verts, normal, pts, angle=math.pi).item() == 4.0


def test_gaussian_fit_is_weighted_ml():
    g = torch.Generator().manual_seed(2)
    verts = torch.randn(1, 200, 3, generator=g, dtype=torch.float64) * 0.01
    weights = torch.randint(0, 4, (1, 200), generator=g).to(torch.float64)
    anchors = torch.zeros(1, 1, 3, dtype=torch.float64)  # every vertex belongs to the only anchor
    mean, chol, active = fit_contact_gaussians(verts, weights, anchors, cov_floor=0.0)
    w = weights[0] / weights[0].sum()
    mu = (w[:, None] * verts[0]).sum(0)
    cov = ((verts[0] - mu).T * w) @ (verts[0] - mu)
    torch.testing.assert_close(mean[0, 0], mu)
    torch.testing.assert_close(chol[0, 0] @ chol[0, 0].T, cov)
    assert bool(active.all())
    dens = contact_density(mean[:, :1], mean, chol, active)
    assert dens.item() == pytest.approx(1.0)


def test_inactive_anchor_has_zero_density_and_translation_invariance():
    pts = _sphere_points(8000)  # object: a sphere of radius 4 cm, densely sampled
    g = torch.Generator().manual_seed(3)
    dirs = torch.nn.functional.normalize(torch.randn(1, 30, 3, generator=g, dtype=torch.float64), dim=-1)
    near = dirs * 0.043  # 3 mm outside the surface, normals facing the object: in contact
    far = dirs * 0.2  # 16 cm away: no object point in any cone
    verts = torch.cat([near, far], 1)
    normals = torch.cat([-dirs, -dirs], 1)
    anchors = torch.cat([near[:, :16], far[:, :16]], 1)
    f1 = encode(pts, verts, normals, anchors, resolution=6)
    # the fixture has both kinds: the near anchors are active, the far ones are not
    assert bool(f1.gauss_active[0, :16].all()) and not bool(f1.gauss_active[0, 16:].any())
    t = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64)
    f2 = encode(pts + t, verts + t, normals, anchors + t, resolution=6)
    torch.testing.assert_close(f1.anchor_sq_dist, f2.anchor_sq_dist)
    torch.testing.assert_close(f1.object_sq_dist, f2.object_sq_dist)
    torch.testing.assert_close(f1.gauss_mean + t, f2.gauss_mean)
    dens = contact_density(f1.gauss_mean, f1.gauss_mean, f1.gauss_chol, f1.gauss_active)
    torch.testing.assert_close(dens[0, :16], torch.ones(16, dtype=torch.float64))  # peak 1 at an active mean
    assert bool((dens[0, 16:] == 0).all())  # inactive: zero even at its own mean


def test_gradcheck_anchor_loss():
    pts = _sphere_points(50)
    grid = bps_grid(pts, resolution=3)
    assign = anchor_assignment(27, 4)
    g = torch.Generator().manual_seed(4)
    target = torch.rand(1, 27, generator=g, dtype=torch.float64) * 1e-3
    anchors = (torch.randn(1, 4, 3, generator=g, dtype=torch.float64) * 0.02).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: anchor_distance_loss(a, grid, target, assign), (anchors,))

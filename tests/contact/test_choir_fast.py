"""The k-d tree CHOIR encoding against its dense naive twin (values and gradients, float32 and float64).

The naive functions below are the dense definitions the fast path replaces: a (B, V, P) cone test, a
(B, M, P) ``cdist`` for the basis-point distances and a dense one-hot Gaussian fit.
"""

import math

import pytest
import torch

from contactkit.contact.choir import (
    CONE_ANGLE,
    CONE_RADIUS,
    anchor_assignment,
    anchor_sq_distances,
    bps_grid,
    cone_contact_weights,
    encode,
    fit_contact_gaussians,
)
from contactkit.errors import ShapeError


def cone_contact_weights_naive(verts, normals, pts, radius=CONE_RADIUS, angle=CONE_ANGLE):
    rel = pts.unsqueeze(1) - verts.unsqueeze(2)  # (B, V, P, 3)
    dist = rel.norm(dim=-1)
    cos = (rel * normals.unsqueeze(2)).sum(-1) / dist.clamp(min=1e-12)
    return ((dist <= radius) & (cos >= math.cos(angle))).sum(-1).to(verts.dtype)


def fit_contact_gaussians_naive(verts, weights, anchors, cov_floor=(0.5e-3) ** 2):
    bsz, num_a = verts.shape[0], anchors.shape[1]
    owner = torch.cdist(verts, anchors).argmin(-1)
    onehot = torch.nn.functional.one_hot(owner, num_a).to(verts.dtype) * weights.unsqueeze(-1)
    total = onehot.sum(1)
    active = total > 0
    safe = total.clamp(min=1e-12)
    mean = torch.einsum("bva,bvi->bai", onehot, verts) / safe.unsqueeze(-1)
    mean = torch.where(active.unsqueeze(-1), mean, anchors)
    centred = verts.unsqueeze(1) - mean.unsqueeze(2)
    cov = torch.einsum("bva,bavi,bavj->baij", onehot, centred, centred) / safe.view(bsz, num_a, 1, 1)
    eye = torch.eye(3, dtype=verts.dtype)
    cov = torch.where(active.view(bsz, num_a, 1, 1), cov + cov_floor * eye, cov_floor * eye.expand_as(cov))
    return mean, torch.linalg.cholesky(cov), active


def encode_naive(pts, verts, normals, anchors, resolution):
    grid = bps_grid(pts, resolution=resolution)
    assignment = anchor_assignment(grid.shape[1], anchors.shape[1])
    obj_sq = torch.cdist(grid, pts, compute_mode="donot_use_mm_for_euclid_dist").amin(-1) ** 2
    weights = cone_contact_weights_naive(verts, normals, pts)
    mean, chol, active = fit_contact_gaussians_naive(verts.detach(), weights, anchors.detach())
    return grid, obj_sq, anchor_sq_distances(grid, anchors, assignment), weights, mean, chol, active


def _scene(batch, num_verts, num_pts, dtype, seed, shared=False):
    """Hand-like vertices scattered within a few mm of a sphere's surface, normals pointing roughly inward."""
    g = torch.Generator().manual_seed(seed)
    r = 0.03 * math.sqrt(num_pts / 2048)  # keep the point density of 2048 points on a 3 cm sphere
    n_obj = 1 if shared else batch
    dirs = torch.nn.functional.normalize(torch.randn(n_obj, num_pts, 3, generator=g, dtype=dtype), dim=-1)
    pts = (r * dirs).expand(batch, -1, -1).clone() if shared else r * dirs
    vdir = torch.nn.functional.normalize(torch.randn(batch, num_verts, 3, generator=g, dtype=dtype), dim=-1)
    verts = vdir * (r + 0.003 * torch.rand(batch, num_verts, 1, generator=g, dtype=dtype))
    normals = torch.nn.functional.normalize(-vdir + 0.7 * torch.randn(batch, num_verts, 3, generator=g,
                                                                        dtype=dtype), dim=-1)
    anchors = verts[:, :32].clone()
    return pts, verts, normals, anchors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("batch", "num_verts", "num_pts", "shared"),
                         [(1, 40, 50, False), (3, 300, 700, False), (4, 200, 2048, True)])
def test_encode_matches_dense(dtype, batch, num_verts, num_pts, shared):
    pts, verts, normals, anchors = _scene(batch, num_verts, num_pts, dtype, seed=num_pts, shared=shared)
    pts = pts.clone().requires_grad_(True)
    anchors = anchors.clone().requires_grad_(True)
    field = encode(pts, verts, normals, anchors, resolution=8)
    grid, obj_sq, anchor_sq, weights, mean, chol, active = encode_naive(pts, verts, normals, anchors, 8)
    assert weights.sum() > num_verts  # the scene has contacts to count
    torch.testing.assert_close(field.grid, grid, atol=0, rtol=0)
    torch.testing.assert_close(field.object_sq_dist, obj_sq, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(field.anchor_sq_dist, anchor_sq, atol=0, rtol=0)
    torch.testing.assert_close(cone_contact_weights(verts, normals, pts), weights, atol=0, rtol=0)
    assert torch.equal(field.gauss_active, active)
    torch.testing.assert_close(field.gauss_mean, mean, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(field.gauss_chol, chol, atol=1e-6, rtol=1e-4)
    # gradients of the differentiable parts (X_BPS w.r.t. the object points, d_H w.r.t. the anchors)
    g = torch.Generator().manual_seed(9)
    w1 = torch.rand(obj_sq.shape, generator=g, dtype=dtype)
    w2 = torch.rand(obj_sq.shape, generator=g, dtype=dtype)
    fast = torch.autograd.grad((field.object_sq_dist * w1).sum() + (field.anchor_sq_dist * w2).sum(),
                               (pts, anchors))
    slow = torch.autograd.grad((obj_sq * w1).sum() + (anchor_sq * w2).sum(), (pts, anchors))
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_cone_counts_on_the_boundary_and_many_neighbours():
    # 200 points on the cone's rim (exactly at the radius) and on the half-angle: the k-d tree's rounded
    # distance must not drop any of them, and a vertex with more neighbours than the first k is fully counted.
    dtype = torch.float64
    verts = torch.zeros(1, 1, 3, dtype=dtype)
    normal = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=dtype)
    t = torch.linspace(0, 2 * math.pi, 101, dtype=dtype)[:-1]
    a = CONE_ANGLE - 1e-9
    rim = CONE_RADIUS * torch.stack([math.sin(a) * t.cos(), math.sin(a) * t.sin(), math.cos(a) + 0 * t], -1)
    axis = torch.linspace(1e-4, CONE_RADIUS, 100, dtype=dtype)[:, None] * torch.tensor([0.0, 0.0, 1.0], dtype=dtype)
    pts = torch.cat([rim, axis, -axis]).unsqueeze(0)
    expected = cone_contact_weights_naive(verts, normal, pts)
    assert expected.item() == 200.0
    assert cone_contact_weights(verts, normal, pts).item() == 200.0
    assert cone_contact_weights(verts.float(), normal.float(), pts.float()).item() == \
        cone_contact_weights_naive(verts.float(), normal.float(), pts.float()).item()


def test_gaussian_fit_matches_dense():
    g = torch.Generator().manual_seed(5)
    verts = torch.randn(5, 300, 3, generator=g, dtype=torch.float64) * 0.03
    weights = torch.randint(0, 3, (5, 300), generator=g).to(torch.float64)
    weights[1] = 0  # an element without contact: every anchor inactive
    anchors = torch.randn(5, 32, 3, generator=g, dtype=torch.float64) * 0.03
    fast = fit_contact_gaussians(verts, weights, anchors)
    for a, b in zip(fast, fit_contact_gaussians_naive(verts, weights, anchors), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-9)


def test_bad_radius_is_rejected():
    pts, verts, normals, anchors = _scene(1, 40, 50, torch.float64, seed=0)
    with pytest.raises(ShapeError, match="radius"):
        cone_contact_weights(verts, normals, pts, radius=0.0)
    with pytest.raises(ShapeError, match="cone_radius"):
        encode(pts, verts, normals, anchors, resolution=4, cone_radius=-1.0)

"""CHOIR field (paper 002): BPS grid, anchor distances, contact Gaussians, closed-form anchor decode."""

import math

import pytest
import torch

from contactkit.contact.choir import (
    anchor_assignment,
    anchor_distance_loss,
    anchor_sq_distances,
    anchors_from_distances,
    bps_grid,
    cone_contact_weights,
    contact_density,
    encode,
    fit_contact_gaussians,
)
from contactkit.errors import ContactkitError, ShapeError


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


def test_shuffled_assignment_is_a_fixed_permutation_of_the_ordered_one():
    """Paper 002's second scheme: the ordered pattern permuted (every anchor keeps 128 of the 4096 basis points) by
    ``RandomState(0).permutation``. Pinned values: models trained with it depend on this exact permutation."""
    ordered, shuffled = anchor_assignment(4096), anchor_assignment(4096, scheme="shuffled")
    assert torch.equal(ordered, torch.arange(4096) % 32)
    assert shuffled.dtype == torch.int64 and torch.equal(torch.bincount(shuffled, minlength=32), torch.full((32,), 128))
    assert torch.equal(shuffled.sort().values, ordered.sort().values) and not torch.equal(shuffled, ordered)
    assert shuffled[[0, 1, 2, 3, 100, 1000, 4095]].tolist() == [6, 9, 5, 25, 11, 12, 12]
    assert torch.equal(anchor_assignment(4096, scheme="shuffled"), shuffled)  # no hidden global random state
    # the points of each anchor span the volume (ordered: one grid plane x = const each)
    grid = bps_grid(_sphere_points())[0]
    for delta, planar in ((ordered, True), (shuffled, False)):
        thin = [float(torch.linalg.svdvals(grid[delta == j] - grid[delta == j].mean(0))[-1]) for j in range(32)]
        assert (max(thin) < 1e-12) if planar else (min(thin) > 0.1), thin
    with pytest.raises(ContactkitError, match=r"scheme must be one of \('ordered', 'shuffled'\), got 'random'"):
        anchor_assignment(4096, scheme="random")


def test_encode_defaults_to_the_ordered_assignment():
    """``encode``'s default is bitwise the ordered assignment's field (existing results unchanged); the shuffled
    one changes ``d_H`` only."""
    pts = _sphere_points()
    g = torch.Generator().manual_seed(2)
    anchors = torch.randn(1, 32, 3, generator=g, dtype=torch.float64) * 0.05
    verts = torch.randn(1, 50, 3, generator=g, dtype=torch.float64) * 0.05
    normals = torch.nn.functional.normalize(torch.randn(1, 50, 3, generator=g, dtype=torch.float64), dim=-1)
    default = encode(pts, verts, normals, anchors)
    ordered = encode(pts, verts, normals, anchors, assignment="ordered")
    shuffled = encode(pts, verts, normals, anchors, assignment="shuffled")
    assert torch.equal(default.assignment, torch.arange(4096) % 32)
    assert torch.equal(default.anchor_sq_dist, anchor_sq_distances(default.grid, anchors, torch.arange(4096) % 32))
    for name in ("grid", "object_sq_dist", "anchor_sq_dist", "assignment", "gauss_mean", "gauss_chol",
                 "gauss_active"):
        assert torch.equal(getattr(default, name), getattr(ordered, name)), name
        if name not in ("anchor_sq_dist", "assignment"):
            assert torch.equal(getattr(default, name), getattr(shuffled, name)), name
    assert torch.equal(shuffled.assignment, anchor_assignment(4096, scheme="shuffled"))
    assert torch.equal(shuffled.anchor_sq_dist, anchor_sq_distances(shuffled.grid, anchors, shuffled.assignment))
    assert not torch.equal(shuffled.anchor_sq_dist, default.anchor_sq_dist)
    with pytest.raises(ContactkitError, match="scheme must be one of"):
        encode(pts, verts, normals, anchors, assignment="random")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shuffled_assignment_decodes_without_a_hint_where_the_ordered_one_picks_mirrors(dtype):
    """No hint: from a shuffled ``d_H`` every anchor comes back exactly (float32 too); from the ordered one each
    anchor is fixed only up to its reflection across its grid plane ``x = c_j``, and the rule without a hint
    returns the reflection for most anchors (28 of 32 here)."""
    g = torch.Generator().manual_seed(1)
    pts = (torch.nn.functional.normalize(torch.randn(1, 400, 3, generator=g, dtype=torch.float64), dim=-1) * 0.04)
    anchors = torch.randn(1, 32, 3, generator=g, dtype=torch.float64) * 0.04
    verts = torch.randn(1, 50, 3, generator=g, dtype=torch.float64) * 0.05
    normals = torch.nn.functional.normalize(torch.randn(1, 50, 3, generator=g, dtype=torch.float64), dim=-1)
    pts, anchors, verts, normals = (x.to(dtype) for x in (pts, anchors, verts, normals))
    tol = 1e-6 if dtype == torch.float32 else 1e-12  # metres
    shuffled = encode(pts, verts, normals, anchors, assignment="shuffled")
    decoded = anchors_from_distances(shuffled.grid, shuffled.anchor_sq_dist, shuffled.assignment)
    assert (decoded - anchors).norm(dim=-1).max() < tol
    ordered = encode(pts, verts, normals, anchors)
    decoded = anchors_from_distances(ordered.grid, ordered.anchor_sq_dist, ordered.assignment)
    plane_x = torch.stack([ordered.grid[0, ordered.assignment == j, 0].mean() for j in range(32)])
    mirror = anchors.clone()
    mirror[..., 0] = 2 * plane_x - anchors[..., 0]
    to_truth, to_mirror = (decoded - anchors).norm(dim=-1)[0], (decoded - mirror).norm(dim=-1)[0]
    assert (torch.minimum(to_truth, to_mirror) < tol).all()  # each anchor: the truth or its reflection
    wrong = to_truth > 1e-3
    assert wrong.sum() == 28 and to_truth.max() > 0.2, to_truth  # up to 27 cm off
    # the hint resolves it (what rigid_init_from_field and the benchmark's decode rely on)
    hinted = anchors_from_distances(ordered.grid, ordered.anchor_sq_dist, ordered.assignment, hint=anchors)
    assert (hinted - anchors).norm(dim=-1).max() < tol


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

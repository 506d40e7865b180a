"""Exact closest points on triangles and meshes: analytic answers, naive references, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from geometry_meshes import SPHERE_RADIUS, box, box_sdf, icosphere, random_rigid, sphere_sag

from contactkit.errors import MeshError, ShapeError
from contactkit.geometry import closest_points_on_mesh, mesh_index, point_triangle_closest
from contactkit.geometry.mesh_distance import MeshIndex

D = torch.float64


def reference_closest(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Independent reference: in-plane projection if inside the triangle, else the best clamped edge point."""
    n = np.cross(b - a, c - a)
    n = n / np.linalg.norm(n)
    q = p - np.dot(p - a, n) * n
    # barycentrics of the projection by solving the 2x2 normal equations
    m = np.array([[np.dot(b - a, b - a), np.dot(b - a, c - a)], [np.dot(b - a, c - a), np.dot(c - a, c - a)]])
    rhs = np.array([np.dot(q - a, b - a), np.dot(q - a, c - a)])
    v, w = np.linalg.solve(m, rhs)
    if v >= 0 and w >= 0 and v + w <= 1:
        return q
    best, best_d = None, np.inf
    for s, e in ((a, b), (b, c), (c, a)):
        t = np.clip(np.dot(p - s, e - s) / np.dot(e - s, e - s), 0.0, 1.0)
        x = s + t * (e - s)
        d = np.linalg.norm(p - x)
        if d < best_d:
            best, best_d = x, d
    assert best is not None
    return best


TRI = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.3, 0.8, 0.0]])
# One query per Voronoi region of TRI, with the expected zero pattern of the barycentrics.
REGION_POINTS = {
    "vertex_a": ([-0.3, -0.2, 0.4], (False, True, True)),
    "vertex_b": ([1.4, -0.2, -0.3], (True, False, True)),
    "vertex_c": ([0.2, 1.3, 0.2], (True, True, False)),
    "edge_ab": ([0.5, -0.4, 0.3], (False, False, True)),
    "edge_bc": ([0.9, 0.6, -0.2], (True, False, False)),
    "edge_ca": ([-0.2, 0.5, 0.1], (False, True, False)),
    "interior": ([0.4, 0.3, 0.5], (False, False, False)),
}


@pytest.mark.parametrize("region", sorted(REGION_POINTS))
def test_point_triangle_closest_regions(region: str) -> None:
    p, zero_pattern = REGION_POINTS[region]
    a, b, c = (torch.tensor(x, dtype=D) for x in TRI)
    closest, bary = point_triangle_closest(torch.tensor(p, dtype=D), a, b, c)
    ref = reference_closest(np.array(p), *TRI)
    np.testing.assert_allclose(closest.numpy(), ref, atol=1e-12)
    assert tuple((bary == 0).tolist()) == zero_pattern
    assert abs(float(bary.sum()) - 1) < 1e-12
    np.testing.assert_allclose(
        (bary[:, None] * torch.tensor(TRI, dtype=D)).sum(0).numpy(), closest.numpy(), atol=1e-12
    )


def test_point_triangle_closest_random_against_reference() -> None:
    rng = np.random.default_rng(0)
    n = 400
    tri = rng.normal(size=(n, 3, 3))
    p = rng.normal(size=(n, 3)) * 1.5
    closest, bary = point_triangle_closest(
        torch.tensor(p), torch.tensor(tri[:, 0]), torch.tensor(tri[:, 1]), torch.tensor(tri[:, 2])
    )
    ref = np.stack([reference_closest(p[i], *tri[i]) for i in range(n)])
    np.testing.assert_allclose(closest.numpy(), ref, atol=1e-10)
    assert bool((bary >= 0).all()) and bool((bary <= 1).all())


def test_point_triangle_closest_degenerate_triangle_is_finite() -> None:
    a = torch.tensor([0.0, 0.0, 0.0], dtype=D, requires_grad=True)
    b = torch.tensor([1.0, 0.0, 0.0], dtype=D)
    c = torch.tensor([2.0, 0.0, 0.0], dtype=D)  # collinear: zero area
    p = torch.tensor([0.5, 0.3, 0.0], dtype=D, requires_grad=True)
    closest, _ = point_triangle_closest(p, a, b, c)
    np.testing.assert_allclose(closest.detach().numpy(), [0.5, 0.0, 0.0], atol=1e-12)
    closest.sum().backward()
    assert p.grad is not None and bool(torch.isfinite(p.grad).all())
    assert a.grad is not None and bool(torch.isfinite(a.grad).all())


@pytest.mark.parametrize("region", sorted(REGION_POINTS))
def test_point_triangle_closest_gradcheck(region: str) -> None:
    p = torch.tensor(REGION_POINTS[region][0], dtype=D, requires_grad=True)
    a, b, c = (torch.tensor(x, dtype=D, requires_grad=True) for x in TRI)
    assert torch.autograd.gradcheck(lambda *x: point_triangle_closest(*x)[0], (p, a, b, c))


def test_box_distances_match_analytic() -> None:
    half = torch.tensor([0.03, 0.02, 0.01], dtype=D)
    v, f = box(tuple(half.tolist()))
    g = torch.Generator().manual_seed(1)
    pts = (torch.rand(1, 500, 3, generator=g, dtype=D) * 2 - 1) * 0.06
    expected = box_sdf(pts, half).abs()
    for backend in ("igl", "torch"):
        res = closest_points_on_mesh(pts, v, f, backend=backend)
        np.testing.assert_allclose(res.dist.numpy(), expected.numpy(), atol=1e-12)
        np.testing.assert_allclose((pts - res.closest).norm(dim=-1).numpy(), res.dist.numpy(), atol=1e-12)


def test_sphere_distances_within_tessellation_error() -> None:
    v, f = icosphere(4)
    sag = sphere_sag(v, f, SPHERE_RADIUS)
    assert 0 < sag < 1e-4  # subdivision 4 of a 5 cm sphere: < 0.1 mm
    g = torch.Generator().manual_seed(2)
    d = torch.randn(1, 600, 3, generator=g, dtype=D)
    d = d / d.norm(dim=-1, keepdim=True)
    radii = (
        torch.cat([torch.linspace(0.1, 0.9, 300, dtype=D), torch.linspace(1.1, 3.0, 300, dtype=D)])
        * SPHERE_RADIUS
    )
    pts = d * radii[None, :, None]
    res = closest_points_on_mesh(pts, v, f)
    gap = (radii - SPHERE_RADIUS).abs()[None]
    outside = radii[None] > SPHERE_RADIUS
    # the inscribed polyhedron is between the spheres of radius r - sag and r
    lo = torch.where(outside, gap, gap - sag)
    hi = torch.where(outside, gap + sag, gap)
    assert bool((res.dist >= lo - 1e-12).all()) and bool((res.dist <= hi + 1e-12).all())


def test_igl_matches_brute_force_reference() -> None:
    v, f = icosphere(2)
    v = v * torch.tensor([1.0, 0.7, 1.3], dtype=D)  # an ellipsoid, so ties are rare
    g = torch.Generator().manual_seed(3)
    pts = torch.randn(2, 300, 3, generator=g, dtype=D) * 0.06
    a = closest_points_on_mesh(pts, v, f, backend="igl")
    b = closest_points_on_mesh(pts, v, f, backend="torch")
    np.testing.assert_allclose(a.dist.numpy(), b.dist.numpy(), atol=1e-12)
    np.testing.assert_allclose(a.closest.numpy(), b.closest.numpy(), atol=1e-9)
    # naive per-face reference on a subset: min over every face of the exact triangle distance
    tri = v[f]
    p = pts[0, :40, None, :]
    cp, _ = point_triangle_closest(p, tri[None, :, 0], tri[None, :, 1], tri[None, :, 2])
    naive = (p - cp).norm(dim=-1).min(dim=-1).values
    np.testing.assert_allclose(a.dist[0, :40].numpy(), naive.numpy(), atol=1e-12)


def test_batched_verts_match_per_element() -> None:
    v, f = icosphere(1)
    g = torch.Generator().manual_seed(4)
    verts = torch.stack([v * 1.0, v * 1.5 + 0.01])
    pts = torch.randn(2, 50, 3, generator=g, dtype=D) * 0.08
    res = closest_points_on_mesh(pts, verts, f)
    for i in range(2):
        single = closest_points_on_mesh(pts[i : i + 1], verts[i], f)
        np.testing.assert_allclose(res.dist[i].numpy(), single.dist[0].numpy(), atol=1e-12)
        assert torch.equal(res.face_idx[i], single.face_idx[0])


def test_gradcheck_mesh_distance() -> None:
    v, f = icosphere(0, radius=0.05)
    g = torch.Generator().manual_seed(5)
    pts = (torch.randn(1, 12, 3, generator=g, dtype=D) * 0.05).requires_grad_()
    verts = v.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p, vv: closest_points_on_mesh(p, vv, f).dist, (pts, verts))


def test_gradient_finite_on_surface() -> None:
    v, f = icosphere(1)
    pts = v[None, :5].clone().requires_grad_()  # exactly on the mesh: zero distance
    res = closest_points_on_mesh(pts, v, f)
    res.dist.sum().backward()
    assert pts.grad is not None and bool(torch.isfinite(pts.grad).all())
    assert float(res.dist.detach().abs().max()) < 1e-15


def test_invariant_under_rigid_motion() -> None:
    v, f = icosphere(2)
    g = torch.Generator().manual_seed(6)
    pts = torch.randn(1, 200, 3, generator=g, dtype=D) * 0.06
    rot, t = random_rigid(7)
    before = closest_points_on_mesh(pts, v, f)
    after = closest_points_on_mesh(pts @ rot.T + t, v @ rot.T + t, f)
    np.testing.assert_allclose(before.dist.numpy(), after.dist.numpy(), atol=1e-12)
    np.testing.assert_allclose((before.closest @ rot.T + t).numpy(), after.closest.numpy(), atol=1e-12)


def test_float32_kept_and_close_to_float64() -> None:
    v, f = icosphere(2)
    pts = torch.randn(1, 100, 3, generator=torch.Generator().manual_seed(8), dtype=D) * 0.06
    r64 = closest_points_on_mesh(pts, v, f)
    r32 = closest_points_on_mesh(pts.float(), v.float(), f)
    assert r32.dist.dtype == torch.float32 and r32.closest.dtype == torch.float32
    np.testing.assert_allclose(r32.dist.double().numpy(), r64.dist.numpy(), atol=1e-7)


def test_index_reuse_and_cache() -> None:
    v, f = icosphere(2)
    idx = MeshIndex(v, f)
    pts = torch.randn(1, 20, 3, generator=torch.Generator().manual_seed(9), dtype=D) * 0.06
    a = closest_points_on_mesh(pts, v, f, index=idx)
    b = closest_points_on_mesh(pts, v, f)
    assert torch.equal(a.dist, b.dist)
    assert mesh_index(v, f) is mesh_index(v.clone(), f.clone())  # content-keyed cache


def test_bad_inputs_raise_clear_errors() -> None:
    v, f = icosphere(1)
    pts = torch.zeros(1, 4, 3, dtype=D)
    with pytest.raises(ShapeError, match=r"points must have shape \(B, N, 3\)"):
        closest_points_on_mesh(torch.zeros(4, 3, dtype=D), v, f)
    with pytest.raises(MeshError, match="index out of range"):
        closest_points_on_mesh(pts, v, f + len(v))
    with pytest.raises(MeshError, match="faces is empty"):
        closest_points_on_mesh(pts, v, f[:0])
    with pytest.raises(MeshError, match="verts is empty"):
        closest_points_on_mesh(pts, v[:0], f)
    bad = v.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(MeshError, match="NaN"):
        closest_points_on_mesh(pts, bad, f)
    with pytest.raises(ShapeError, match="NaN"):
        closest_points_on_mesh(torch.full((1, 2, 3), float("nan"), dtype=D), v, f)
    with pytest.raises(MeshError, match=r"faces must have shape \(F, 3\)"):
        closest_points_on_mesh(pts, v, f[:, :2])
    with pytest.raises(ShapeError, match="dtype and device"):
        closest_points_on_mesh(pts.float(), v, f)
    with pytest.raises(ShapeError, match="backend"):
        closest_points_on_mesh(pts, v, f, backend="gpu")  # type: ignore[arg-type]

"""Face/vertex normals and seeded area-weighted surface sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from geometry_meshes import SPHERE_RADIUS, box, icosphere, random_rigid

from contactkit.errors import MeshError, ShapeError
from contactkit.geometry import (
    closest_points_on_mesh,
    face_areas,
    face_normals,
    sample_surface,
    vertex_normals,
)
from contactkit.geometry.normals import angle_weighted_vertex_normals

D = torch.float64


def test_sphere_normals_point_outwards() -> None:
    v, f = icosphere(3)
    fn = face_normals(v, f)
    centroids = v[f].mean(dim=1)
    np.testing.assert_allclose(fn.norm(dim=-1).numpy(), 1.0, atol=1e-12)
    cos = (fn * centroids / centroids.norm(dim=-1, keepdim=True)).sum(-1)
    assert float(cos.min()) > 0.99
    radial = v / SPHERE_RADIUS
    for normals in (vertex_normals(v, f), angle_weighted_vertex_normals(v, f)):
        np.testing.assert_allclose(normals.norm(dim=-1).numpy(), 1.0, atol=1e-12)
        assert float((normals * radial).sum(-1).min()) > 0.9995  # irregular icosphere faces: within ~1.8 deg


def test_box_normals_are_axis_aligned_and_areas_exact() -> None:
    half = (0.03, 0.02, 0.01)
    v, f = box(half)
    fn = face_normals(v, f)
    assert torch.equal(fn.abs().max(dim=-1).values, torch.ones(len(f), dtype=D))
    total = float(face_areas(v, f).sum())
    expected = 8 * (half[0] * half[1] + half[1] * half[2] + half[0] * half[2])
    assert abs(total - expected) < 1e-15
    # a corner's area-weighted normal points along the diagonal weighted by the face areas at that corner
    vn = vertex_normals(v, f)
    assert bool((torch.sign(vn) == torch.sign(v)).all())


def test_batched_equals_unbatched_and_rotation_equivariant() -> None:
    v, f = icosphere(1)
    v = v * torch.tensor([1.0, 0.6, 1.4], dtype=D)
    rot, t = random_rigid(1)
    batch = torch.stack([v, v @ rot.T + t])
    fn = face_normals(batch, f)
    vn = vertex_normals(batch, f)
    assert fn.shape == (2, len(f), 3) and vn.shape == (2, len(v), 3)
    np.testing.assert_allclose(fn[0].numpy(), face_normals(v, f).numpy(), atol=1e-15)
    np.testing.assert_allclose(fn[1].numpy(), (fn[0] @ rot.T).numpy(), atol=1e-12)
    np.testing.assert_allclose(vn[1].numpy(), (vn[0] @ rot.T).numpy(), atol=1e-12)


def test_degenerate_face_gives_zero_normal_and_finite_gradient() -> None:
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0]], dtype=D, requires_grad=True)
    f = torch.tensor([[0, 1, 2], [0, 1, 3]])
    fn = face_normals(v, f)
    np.testing.assert_allclose(fn.detach().numpy(), [[0, 0, 0], [0, 0, 1]], atol=1e-15)
    (fn.sum() + vertex_normals(v, f).sum()).backward()
    assert v.grad is not None and bool(torch.isfinite(v.grad).all())


def test_normals_gradcheck() -> None:
    v, f = icosphere(0)
    v = v.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: vertex_normals(x, f), (v,))


def test_sampling_is_seeded_on_surface_and_area_weighted() -> None:
    v, f = icosphere(2)
    p1, n1, i1 = sample_surface(v, f, 500, seed=3)
    p2, n2, i2 = sample_surface(v.numpy(), f.numpy(), 500, seed=3)
    p3, _, _ = sample_surface(v, f, 500, seed=4)
    assert torch.equal(p1, p2) and torch.equal(n1, n2) and torch.equal(i1, i2)
    assert not torch.equal(p1, p3)
    assert p1.shape == (500, 3) and n1.shape == (500, 3) and i1.dtype == torch.long
    dist = closest_points_on_mesh(p1[None], v, f).dist
    assert float(dist.max()) < 1e-15
    np.testing.assert_allclose(n1.numpy(), face_normals(v, f)[i1].numpy(), atol=0)
    # two triangles with areas 0.5 and 3 receive samples in that proportion (1/7 on the first)
    tv = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [3, 0, 1], [0, 2, 1]], dtype=D)
    tf = torch.tensor([[0, 1, 2], [3, 4, 5]])
    _, _, fid = sample_surface(tv, tf, 20000, seed=0)
    frac = float((fid == 0).double().mean())
    assert abs(frac - 1 / 7) < 0.01


def test_sampling_uniform_within_a_triangle() -> None:
    tv = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=D)
    pts, _, _ = sample_surface(tv, torch.tensor([[0, 1, 2]]), 40000, seed=1)
    # uniform on the triangle: mean at the centroid, fraction below x + y < 1/2 equal to 1/4
    np.testing.assert_allclose(pts.mean(0).numpy(), [1 / 3, 1 / 3, 0], atol=5e-3)
    assert abs(float((pts[:, 0] + pts[:, 1] < 0.5).double().mean()) - 0.25) < 0.01


def test_sampling_differentiable_wrt_vertices_and_dtype() -> None:
    v, f = icosphere(1)
    vv = v.float().requires_grad_()
    pts, normals, _ = sample_surface(vv, f, 100, seed=0)
    assert pts.dtype == torch.float32 and normals.dtype == torch.float32
    pts.sum().backward()
    assert vv.grad is not None and float(vv.grad.sum()) == pytest.approx(300.0)


def test_bad_inputs_raise_clear_errors() -> None:
    v, f = icosphere(1)
    with pytest.raises(ShapeError, match="non-negative integer"):
        sample_surface(v, f, -1)
    with pytest.raises(MeshError, match="zero surface area"):
        sample_surface(torch.zeros(3, 3, dtype=D), torch.tensor([[0, 1, 2]]), 10)
    with pytest.raises(MeshError, match=r"verts must have shape \(V, 3\)"):
        sample_surface(v[None], f, 10)
    with pytest.raises(MeshError, match=r"verts must have shape \(V, 3\) or \(B, V, 3\)"):
        face_normals(v[..., :2], f)
    with pytest.raises(MeshError, match="integer"):
        vertex_normals(v, f.double())

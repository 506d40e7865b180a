"""Inside/outside and signed distances: closed and open (holey) meshes, both sign methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from geometry_meshes import SPHERE_RADIUS, box, box_sdf, holey_sphere, icosphere, random_rigid, sphere_sag

from contactkit.errors import MeshError, ShapeError
from contactkit.geometry import contains, is_closed, signed_distance, winding_number
from contactkit.geometry.inside import face_adjacency

D = torch.float64
R = SPHERE_RADIUS


def _directions(n: int, seed: int) -> torch.Tensor:
    d = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=D)
    return d / d.norm(dim=-1, keepdim=True)


def test_topology_detection() -> None:
    v, f = icosphere(2)
    assert is_closed(f, len(v))
    hv, hf = holey_sphere()
    assert not is_closed(hf, len(hv))
    assert not is_closed(f[:10], len(v))
    assert is_closed(f[:, [0, 2, 1]], len(v))  # consistently inward is still closed
    flipped = f.clone()
    flipped[0] = flipped[0, [0, 2, 1]]  # one face with inconsistent orientation
    assert not is_closed(flipped, len(v))
    adj = face_adjacency(f.numpy(), len(v))
    assert (adj >= 0).all()
    # the neighbour across the edge opposite corner k shares that edge's two vertices
    for face in range(0, len(f), 97):
        for k in range(3):
            edge = {int(f[face, (k + 1) % 3]), int(f[face, (k + 2) % 3])}
            assert edge <= set(f[adj[face, k]].tolist())


def test_winding_number_sphere() -> None:
    v, f = icosphere(3)
    d = _directions(200, 0)
    inside = d * R * 0.5
    outside = d * R * 2.0
    np.testing.assert_allclose(
        winding_number(inside, v, f).numpy(), 1.0, atol=5e-3
    )  # fast winding number: Barnes-Hut approximation
    np.testing.assert_allclose(winding_number(outside, v, f).numpy(), 0.0, atol=5e-3)
    assert winding_number(inside[None].float(), v, f).shape == (1, 200)


@pytest.mark.parametrize("closed", [None, False])
def test_contains_sphere_with_hole(closed: bool | None) -> None:
    v, f = holey_sphere(z_cut=0.8)
    d = _directions(400, 1)
    g = torch.Generator().manual_seed(2)
    far_from_hole = d[:, 2] < 0.3
    d = d[far_from_hole]
    r_in = torch.rand(len(d), generator=g, dtype=D) * 0.8 * R
    r_out = (1.2 + torch.rand(len(d), generator=g, dtype=D) * 2.0) * R
    pts_in, pts_out = d * r_in[:, None], d * r_out[:, None]
    assert bool(contains(pts_in, v, f, closed=closed).all())
    assert not bool(contains(pts_out, v, f, closed=closed).any())
    # the winding number itself sees the hole: ~0.9 near the centre (cap of 1 - 0.8 = 10% of the sphere)
    w = winding_number(torch.zeros(1, 3, dtype=D), v, f)
    assert 0.85 < float(w) < 0.95


def test_closed_fast_path_matches_winding_number_on_nonconvex_mesh() -> None:
    m = trimesh.creation.torus(major_radius=0.04, minor_radius=0.015, major_sections=48, minor_sections=24)
    v = torch.tensor(np.asarray(m.vertices))
    f = torch.tensor(np.asarray(m.faces))
    assert is_closed(f, len(v))
    pts = (torch.rand(1, 3000, 3, generator=torch.Generator().manual_seed(3), dtype=D) * 2 - 1) * 0.06
    fast = contains(pts, v, f, closed=True)
    slow = contains(pts, v, f, closed=False)
    assert torch.equal(fast, slow)
    # analytic torus: inside when (sqrt(x^2 + y^2) - R)^2 + z^2 < r^2, away from the tessellation error
    rho = (pts[..., 0] ** 2 + pts[..., 1] ** 2).sqrt()
    level = ((rho - 0.04) ** 2 + pts[..., 2] ** 2).sqrt() - 0.015
    clear = level.abs() > 1e-3
    assert torch.equal(fast[clear], (level < 0)[clear])


def test_box_signed_distance_corners_and_edges() -> None:
    half = torch.tensor([0.03, 0.02, 0.01], dtype=D)
    v, f = box(tuple(half.tolist()))
    pts = (torch.rand(1, 2000, 3, generator=torch.Generator().manual_seed(4), dtype=D) * 2 - 1) * 0.05
    expected = box_sdf(pts, half)
    for closed in (True, False, None):
        sd = signed_distance(pts, v, f, closed=closed)
        np.testing.assert_allclose(sd.numpy(), expected.numpy(), atol=1e-12)
    assert torch.equal(contains(pts, v, f), expected < 0)


def test_sphere_signed_distance_and_gradient() -> None:
    v, f = icosphere(4)
    sag = sphere_sag(v, f, R)
    d = _directions(300, 5)
    radii = torch.linspace(0.2, 2.0, 300, dtype=D) * R
    pts = (d * radii[:, None])[None].clone().requires_grad_()
    sd = signed_distance(pts, v, f)
    np.testing.assert_allclose(sd.detach().numpy(), (radii - R)[None].numpy(), atol=sag + 1e-12)
    sd.sum().backward()
    assert pts.grad is not None
    # the gradient of the signed distance is the outward unit normal, ~ p / |p| on a fine sphere
    cos = (pts.grad[0] * d).sum(-1)
    assert float(cos.min()) > 0.99


def test_signed_distance_batched_verts_and_rigid_invariance() -> None:
    v, f = icosphere(2)
    rot, t = random_rigid(8)
    verts = torch.stack([v, v @ rot.T + t])
    pts0 = torch.randn(60, 3, generator=torch.Generator().manual_seed(9), dtype=D) * 0.06
    pts = torch.stack([pts0, pts0 @ rot.T + t])
    for closed in (True, False):
        sd = signed_distance(pts, verts, f, closed=closed)
        np.testing.assert_allclose(sd[0].numpy(), sd[1].numpy(), atol=1e-12)
    inside = contains(pts, verts, f)
    assert torch.equal(inside[0], inside[1])


def test_float32_kept() -> None:
    v, f = icosphere(2)
    pts = torch.randn(1, 50, 3, generator=torch.Generator().manual_seed(10)) * 0.06
    sd = signed_distance(pts, v.float(), f)
    assert sd.dtype == torch.float32
    assert contains(pts[0], v.numpy(), f.numpy()).dtype == torch.bool


def test_bad_inputs_raise_clear_errors() -> None:
    v, f = icosphere(1)
    with pytest.raises(ShapeError, match=r"points must have shape \(N, 3\) or \(B, N, 3\)"):
        contains(torch.zeros(3, dtype=D), v, f)
    with pytest.raises(MeshError, match="faces is empty"):
        contains(torch.zeros(2, 3, dtype=D), v, f[:0])
    with pytest.raises(MeshError, match="index out of range"):
        winding_number(torch.zeros(2, 3, dtype=D), v, f - 1)
    with pytest.raises(ShapeError, match="NaN"):
        winding_number(torch.full((2, 3), float("nan"), dtype=D), v, f)
    with pytest.raises(ShapeError, match="same B"):
        contains(torch.zeros(5, 3, dtype=D), torch.stack([v, v]), f)


def test_empty_queries() -> None:
    v, f = icosphere(1)
    hv, hf = holey_sphere()
    empty = torch.zeros(0, 3, dtype=D)
    assert contains(empty, v, f).shape == (0,)
    assert contains(empty, hv, hf).shape == (0,)
    assert signed_distance(empty[None], v, f).shape == (1, 0)
    assert winding_number(empty, hv, hf).shape == (0,)

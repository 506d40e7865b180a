"""Object points inside the hand (nearest-vertex normal test): analytic sphere cases, a naive reference, gradients,
and the case the hand-vertex SDF penetration cannot see (a thin object wholly inside the hand)."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from contactkit.contact.hand_interior import ObjectInHandTerm, object_in_hand_depth
from contactkit.contact.terms import HandObjectState
from contactkit.geometry.normals import vertex_normals

R = 0.015  # the "hand": a closed sphere of radius 1.5 cm (outward normals)


def _sphere() -> tuple[torch.Tensor, torch.Tensor]:
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=R)
    return torch.as_tensor(mesh.vertices, dtype=torch.float64)[None], torch.as_tensor(mesh.faces, dtype=torch.long)


def _nearest(points: torch.Tensor, verts: torch.Tensor) -> torch.Tensor:
    return torch.cdist(points, verts).argmin(-1)


def test_depth_on_a_sphere_is_radius_minus_distance_inside_and_zero_outside() -> None:
    verts, faces = _sphere()
    normals = vertex_normals(verts, faces)
    dirs = torch.nn.functional.normalize(torch.randn(1, 40, 3, dtype=torch.float64, generator=torch.Generator()
                                                     .manual_seed(0)), dim=-1)
    radii = torch.linspace(0.2 * R, 1.6 * R, 40, dtype=torch.float64)[None, :, None]
    pts = dirs * radii
    d = object_in_hand_depth(verts, normals, pts, _nearest(pts, verts))
    expected = torch.relu(R - radii[..., 0])
    # a tessellated sphere: the nearest vertex's tangent plane is within ~1 % of R of the true surface
    assert torch.allclose(d, expected, atol=0.02 * R)
    assert (d[radii[..., 0] > 1.05 * R] == 0).all()


def test_depth_matches_a_naive_per_point_loop() -> None:
    verts, faces = _sphere()
    normals = vertex_normals(verts, faces)
    pts = torch.randn(1, 25, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * R
    fast = object_in_hand_depth(verts, normals, pts, _nearest(pts, verts))
    v, n = verts[0].numpy(), normals[0].numpy()
    for j, p in enumerate(pts[0].numpy()):
        k = int(np.argmin(np.linalg.norm(v - p, axis=1)))
        s = float(np.dot(p - v[k], n[k]))
        naive = max(0.0, -s) if np.linalg.norm(p - v[k]) < 0.02 else 0.0
        assert abs(float(fast[0, j]) - naive) < 1e-12


def test_points_out_of_reach_never_count() -> None:
    verts, faces = _sphere()
    normals = vertex_normals(verts, faces)
    pts = torch.tensor([[[0.0, 0.0, 0.2 * R]]], dtype=torch.float64)  # 1.2 cm inside, nearest vertex 1.2 cm away
    idx = _nearest(pts, verts)
    assert float(object_in_hand_depth(verts, normals, pts, idx)) > 0.01
    assert float(object_in_hand_depth(verts, normals, pts, idx, reach=0.005)) == 0.0


def test_gradient_matches_finite_differences() -> None:
    verts, faces = _sphere()
    normals = vertex_normals(verts, faces).detach()
    pts = (torch.randn(1, 10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.5 * R)
    idx = _nearest(pts, verts)
    v = verts.clone().requires_grad_(True)
    p = pts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: object_in_hand_depth(a, normals, b, idx), (v, p), eps=1e-8,
                                    atol=1e-6)


def test_term_sees_a_thin_object_inside_the_hand_and_nothing_once_it_is_out() -> None:
    verts, faces = _sphere()
    ring = trimesh.creation.torus(major_radius=0.006, minor_radius=0.002)  # wholly inside the sphere
    pts = torch.as_tensor(np.array(ring.vertices), dtype=torch.float64)[None]
    nrm = torch.as_tensor(np.array(ring.vertex_normals), dtype=torch.float64)[None]
    kp = torch.zeros(1, 21, 3, dtype=torch.float64)
    term = ObjectInHandTerm(faces)
    inside = term(HandObjectState(hand_verts=verts, keypoints=kp, obj_points=pts, obj_normals=nrm))
    moved = pts + torch.tensor([0.05, 0.0, 0.0], dtype=torch.float64)
    outside = term(HandObjectState(hand_verts=verts, keypoints=kp, obj_points=moved, obj_normals=nrm))
    assert inside.shape == (1,) and float(inside) > 0.0
    assert float(outside) == 0.0
    # no hand vertex is within 2 mm of the ring: a hand-vertex penetration measure sees nothing here
    assert (torch.cdist(verts, pts).min() > 0.002).item()

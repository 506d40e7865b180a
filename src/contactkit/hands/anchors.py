"""CPF's 32 hand anchors (paper 004, appendix A.3): ray casts from control points to the palmar surface.

Each anchor is stored as a face of the rest mesh plus barycentric weights, so that posed anchors follow the
mesh: ``anchor = Σ_k bary_k · V[face_k]`` (:func:`anchors_from_vertices`, linear hence differentiable).

Derivation (rest pose): a non-tip control point casts one ray along its palmar direction and takes the first
hit. A fingertip control point casts that ray, builds a cone with the control point as apex, the hit as base
centre and as base radius the largest distance from the control point to a vertex of its region (scaled by
``cone_radius_scale``, 0.5 by default; CPF uses 1.0, see :func:`derive_anchors`), and casts three rays
along generatrices 120° apart (toward the tip, then proximal-ulnar, then proximal-radial): three anchors.

Anchor order: by region id (thumb, index, middle, ring, little × proximal, intermediate, distal; then
palm_metacarpal: index, middle, ring, little; then palm_carpal: middle, little, thumb base): 32 in total.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from contactkit.errors import ShapeError
from contactkit.hands.regions import ControlPoints

NUM_ANCHORS = 32


@dataclass(frozen=True)
class RayHits:
    """First hits of rays on a mesh: ``t (R,)`` (inf: missed), ``face (R,) int64`` (-1: missed),
    ``bary (R, 3)`` weights of the face's three vertices."""

    t: np.ndarray
    face: np.ndarray
    bary: np.ndarray


def ray_mesh_first_hit(
    origins: np.ndarray,
    directions: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    eps: float = 1e-12,
) -> RayHits:
    """First intersection (smallest t > 0) of each ray with a triangle mesh (Möller–Trumbore, both sides).

    Args:
        origins: (R, 3) float64, metres.
        directions: (R, 3) float64 unit directions.
        vertices: (V, 3) float64.
        faces: (F, 3) int64.
    """
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    e1, e2 = b - a, c - a  # (F, 3)
    t_out = np.full(len(origins), np.inf)
    f_out = np.full(len(origins), -1, dtype=np.int64)
    bary_out = np.zeros((len(origins), 3))
    for r, (o, d) in enumerate(zip(origins, directions, strict=True)):
        p = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, p)
        ok = np.abs(det) > eps
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - a
        u = np.einsum("ij,ij->i", s, p) * inv
        q = np.cross(s, e1)
        v = (q @ d) * inv
        t = np.einsum("ij,ij->i", e2, q) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
        if hit.any():
            i = np.flatnonzero(hit)[np.argmin(t[hit])]
            t_out[r], f_out[r] = t[i], i
            bary_out[r] = (1.0 - u[i] - v[i], u[i], v[i])
    return RayHits(t_out, f_out, bary_out)


def _closest_on_mesh(point: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> tuple[int, np.ndarray]:
    """Face and barycentric weights of the mesh point nearest to ``point`` (fallback for a missed ray)."""
    import trimesh

    tri = vertices[faces]
    closest = trimesh.triangles.closest_point(tri, np.repeat(point[None], len(faces), axis=0))
    f = int(np.argmin(np.linalg.norm(closest - point, axis=1)))
    bary = trimesh.triangles.points_to_barycentric(tri[f : f + 1], closest[f : f + 1])[0]
    return f, np.clip(bary, 0.0, 1.0) / np.clip(bary, 0.0, 1.0).sum()


def derive_anchors(
    vertices: np.ndarray,
    faces: np.ndarray,
    region: np.ndarray,
    cps: ControlPoints,
    side: str = "right",
    *,
    cone_radius_scale: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 32 anchors of CPF A.3 on a rest mesh.

    Args:
        vertices: (V, 3) float64, metres, rest pose.
        faces: (F, 3) int64, outward-wound.
        region: (V,) int64 region of each vertex.
        cps: control points (with their palmar ray directions and anchor counts).
        side: "right" or "left"; orders the three fingertip anchors the same way on both hands (toward the
            tip, then proximal-ulnar, then proximal-radial), so a mirrored hand gets mirrored anchors.
        cone_radius_scale: the fingertip cone's base radius as a fraction of CPF's (the largest distance from
            the control point to a vertex of its region). CPF's full radius (1.0) opens the cone to ~60° and
            puts the two proximal anchors near the DIP crease, closer to a neighbouring fingertip than to
            their own in ordinary poses; 0.5 (~40°) keeps all three on the distal pad.

    Returns:
        ``anchor_faces (32,) int64``, ``anchor_bary (32, 3) float64`` (rows sum to 1) and
        ``anchor_region (32,) int64``.
    """
    origins, dirs, regs = [], [], []
    order = np.lexsort((np.arange(len(cps.region)), cps.region))
    for i in order:
        n = int(cps.n_anchors[i])
        if n == 0:
            continue
        o, p = cps.positions[i], cps.palmar[i]
        if n == 1:
            origins.append(o)
            dirs.append(p)
            regs.append(cps.region[i])
            continue
        first = ray_mesh_first_hit(o[None], p[None], vertices, faces)
        height = (
            first.t[0]
            if np.isfinite(first.t[0])
            else np.linalg.norm(vertices[region == cps.region[i]] - o, axis=1).min()
        )
        radius = cone_radius_scale * np.linalg.norm(vertices[region == cps.region[i]] - o, axis=1).max()
        u = cps.spread[i] - (cps.spread[i] @ p) * p
        u /= np.linalg.norm(u)
        w = np.cross(p, u) if side == "right" else np.cross(u, p)  # ulnar on both sides
        for k in range(n):
            phi = 2.0 * np.pi * k / n
            g = height * p + radius * (np.cos(phi) * u + np.sin(phi) * w)
            origins.append(o)
            dirs.append(g / np.linalg.norm(g))
            regs.append(cps.region[i])
    origins_a, dirs_a = np.asarray(origins), np.asarray(dirs)
    hits = ray_mesh_first_hit(origins_a, dirs_a, vertices, faces)
    anchor_faces = hits.face.copy()
    anchor_bary = hits.bary.copy()
    for r in np.flatnonzero(anchor_faces < 0):
        warnings.warn(f"anchor ray {r} missed the hand mesh; using the closest surface point", stacklevel=3)
        anchor_faces[r], anchor_bary[r] = _closest_on_mesh(origins_a[r], vertices, faces)
    return anchor_faces, anchor_bary, np.asarray(regs, dtype=np.int64)


def _as_tensor(x: object, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return torch.as_tensor(np.array(x), device=device)  # copy: numpy inputs may be read-only


def anchors_from_vertices(
    vertices: torch.Tensor,
    faces: torch.Tensor | np.ndarray,
    anchor_faces: torch.Tensor | np.ndarray,
    anchor_bary: torch.Tensor | np.ndarray,
) -> torch.Tensor:
    """Posed anchors from posed hand vertices (differentiable, linear in ``vertices``).

    Args:
        vertices: (B, V, 3) float, metres.
        faces: (F, 3) long.
        anchor_faces: (A,) long face index of each anchor (A = 32 for CPF's anchors); numpy accepted.
        anchor_bary: (A, 3) float barycentric weights; numpy accepted.

    Returns:
        (B, A, 3), dtype/device of ``vertices``.
    """
    if not isinstance(vertices, torch.Tensor) or vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ShapeError(
            f"vertices must be a (B, V, 3) tensor, got {getattr(vertices, 'shape', type(vertices))}"
        )
    faces_t = _as_tensor(faces, vertices.device)
    if faces_t.ndim != 2 or faces_t.shape[1] != 3:
        raise ShapeError(f"faces must be (F, 3), got {tuple(faces_t.shape)}")
    af = _as_tensor(anchor_faces, vertices.device).long()
    ab = _as_tensor(anchor_bary, vertices.device).to(vertices.dtype)
    if af.ndim != 1 or ab.shape != (af.shape[0], 3):
        raise ShapeError(
            f"anchor_faces must be (A,) and anchor_bary (A, 3), got {tuple(af.shape)}, {tuple(ab.shape)}"
        )
    corner = faces_t.long()[af].reshape(-1)  # (3A,)
    tri = vertices.index_select(1, corner).reshape(vertices.shape[0], -1, 3, 3)  # (B, A, 3 corners, 3)
    return (tri * ab[None, :, :, None]).sum(dim=2)

"""Face and vertex normals of triangle meshes (batch-first torch, differentiable).

Vertices may be batched ``(B, V, 3)`` or a single mesh ``(V, 3)``; faces are shared ``(F, 3)`` int64 and the
result has the same leading shape as ``verts``. Triangles are counter-clockwise seen from outside, so normals
point outwards. Degenerate (zero-area) faces get a zero normal, never NaN.
"""

from __future__ import annotations

import torch

from contactkit.geometry._checks import check_faces, check_verts, faces_tensor, safe_norm

__all__ = ["face_normals", "face_areas", "vertex_normals", "angle_weighted_vertex_normals"]


def _corners(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Corner positions (..., F, 3) of every face."""
    return verts[..., faces[:, 0], :], verts[..., faces[:, 1], :], verts[..., faces[:, 2], :]


def _normalize(v: torch.Tensor) -> torch.Tensor:
    n = safe_norm(v)[..., None]
    return torch.where(n > 0, v / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(v))


def _prepare(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    verts = check_verts(verts)
    faces_np = check_faces(faces, verts.shape[-2])
    return verts, faces_tensor(faces_np, verts.device)


def _face_cross(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    a, b, c = _corners(verts, faces)
    return torch.cross(b - a, c - a, dim=-1)


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit outward face normals.

    Args:
        verts: (B, V, 3) or (V, 3) float, metres.
        faces: (F, 3) int64 vertex indices, counter-clockwise from outside.

    Returns:
        (B, F, 3) or (F, 3) float unit normals (zero for degenerate faces), same dtype/device as ``verts``.
    """
    verts, faces = _prepare(verts, faces)
    return _normalize(_face_cross(verts, faces))


def face_areas(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Triangle areas, (B, F) or (F,) float, square metres."""
    verts, faces = _prepare(verts, faces)
    return 0.5 * safe_norm(_face_cross(verts, faces))


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals: the normalised sum of the adjacent faces' area vectors.

    Args:
        verts: (B, V, 3) or (V, 3) float, metres.
        faces: (F, 3) int64.

    Returns:
        (B, V, 3) or (V, 3) float unit normals (zero for vertices without a non-degenerate face).
    """
    verts, faces = _prepare(verts, faces)
    cross = _face_cross(verts, faces)  # (..., F, 3), length = 2 * area
    acc = torch.zeros_like(verts)
    for k in range(3):
        acc = acc.index_add(-2, faces[:, k], cross)
    return _normalize(acc)


def angle_weighted_vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Angle-weighted vertex pseudonormals (Bærentzen & Aanæs 2005), used for inside/outside signs.

    Each adjacent face contributes its unit normal times its interior angle at the vertex.

    Args:
        verts: (B, V, 3) or (V, 3) float; faces: (F, 3) int64.

    Returns:
        (B, V, 3) or (V, 3) float unit normals.
    """
    verts, faces = _prepare(verts, faces)
    corners = _corners(verts, faces)
    n = _normalize(torch.cross(corners[1] - corners[0], corners[2] - corners[0], dim=-1))
    acc = torch.zeros_like(verts)
    for k in range(3):
        e1 = corners[(k + 1) % 3] - corners[k]
        e2 = corners[(k + 2) % 3] - corners[k]
        cos = (e1 * e2).sum(-1)
        sin = safe_norm(torch.cross(e1, e2, dim=-1))
        angle = torch.atan2(sin, cos)
        acc = acc.index_add(-2, faces[:, k], n * angle[..., None])
    return _normalize(acc)

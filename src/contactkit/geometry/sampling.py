"""Area-weighted, seeded random sampling of points on a triangle mesh surface."""

from __future__ import annotations

import numpy as np
import torch

from contactkit.errors import MeshError, ShapeError
from contactkit.geometry._checks import check_faces, check_verts, faces_tensor, verts_numpy
from contactkit.geometry.normals import face_normals

__all__ = ["sample_surface"]


def sample_surface(
    verts: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray, n: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample ``n`` points uniformly by area on the surface of a triangle mesh.

    Faces are drawn with probability proportional to their area and points uniformly inside each face
    (``bary = (1 - sqrt(r1), sqrt(r1) (1 - r2), sqrt(r1) r2)``), all from ``numpy.random.default_rng(seed)``,
    so the same seed gives the same samples on every machine and device. The points are computed from
    ``verts`` with torch ops, so they are differentiable w.r.t. the vertices (fixed faces and barycentrics).

    Args:
        verts: (V, 3) float tensor (or numpy array, then float64), metres.
        faces: (F, 3) int64.
        n: number of samples, >= 0.
        seed: random seed.

    Returns:
        ``(points (n, 3), normals (n, 3), face_idx (n,) int64)``: points and unit face normals in ``verts``'
        dtype and device (float64 on the CPU for numpy input).
    """
    v = check_verts(verts, allow_batch=False)
    f = check_faces(faces, v.shape[0])
    if int(n) != n or n < 0:
        raise ShapeError(f"n must be a non-negative integer, got {n}")
    n = int(n)
    v64 = verts_numpy(v)
    tri = v64[f]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = float(areas.sum())
    if not total > 0:
        raise MeshError("the mesh has zero surface area: cannot sample its surface")
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(areas)
    face_idx = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, len(areas) - 1)
    r1 = np.sqrt(rng.random(n))
    r2 = rng.random(n)
    bary = np.stack([1.0 - r1, r1 * (1.0 - r2), r1 * r2], axis=1)

    fid = torch.from_numpy(face_idx.astype(np.int64)).to(v.device)
    faces_t = faces_tensor(f, v.device)
    corners = v[faces_t[fid]]  # (n, 3, 3)
    w = torch.from_numpy(bary).to(v.device, v.dtype)
    points = (w[:, :, None] * corners).sum(1)
    normals = face_normals(v, faces_t)[fid]
    return points, normals, fid

"""Per-sample exact mesh queries used by the metrics (CPU, float64 numpy).

Thin adapters over :mod:`contactkit.geometry` (libigl back-end): the metrics need no gradients and run one
sample at a time, so they call its numpy-level pieces directly: the content-cached AABB tree
(:func:`contactkit.geometry.mesh_distance.mesh_index`, reused across the grasps of one object) and the fast
generalised winding number (:func:`contactkit.geometry.inside.winding_number`).
"""

from __future__ import annotations

import numpy as np
import torch

from contactkit.geometry.inside import signed_distance as _signed_distance
from contactkit.geometry.inside import winding_number as _winding_number
from contactkit.geometry.mesh_distance import mesh_index


def _writable(a: np.ndarray) -> np.ndarray:
    """C-contiguous writable float64 (torch.from_numpy warns on read-only broadcast views)."""
    return np.require(a, dtype=np.float64, requirements=["C", "W"])


def unsigned_distance(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact unsigned distance ``(N,)`` in metres of ``points (N, 3)`` to a triangle mesh."""
    if points.shape[0] == 0:
        return np.zeros(0)
    sq, _, _ = mesh_index(_writable(verts), faces).query(points)
    return np.sqrt(np.maximum(sq, 0.0))


def winding_number(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Generalised winding number ``(N,)`` of ``points (N, 3)`` w.r.t. a mesh (1 inside, 0 outside)."""
    if points.shape[0] == 0:
        return np.zeros(0)
    w = _winding_number(torch.from_numpy(_writable(points)), _writable(verts), faces)
    return w.numpy()


def inside(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Boolean ``(N,)``: winding number above 0.5."""
    return winding_number(points, verts, faces) > 0.5


def signed_distance(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact signed distance ``(N,)`` in metres of ``points (N, 3)`` to a mesh; negative inside.

    :func:`contactkit.geometry.inside.signed_distance` with the mesh's cached index: exact point-triangle
    distance; sign from the angle-weighted pseudonormals when the mesh is closed (fast, exact), else from the
    generalised winding number.
    """
    if points.shape[0] == 0:
        return np.zeros(0)
    v = _writable(verts)
    index = mesh_index(v, faces)
    with torch.no_grad():
        sd = _signed_distance(torch.from_numpy(_writable(points))[None], torch.from_numpy(v), faces, index=index)
    return sd[0].numpy()

"""Grasp quality for synthesis ranking: the Ferrari–Canny epsilon (largest-minimum-resisted-wrench) measure.

Model (Ferrari & Canny 1992, the L1 variant GraspIt ranks grasps with):

- each contact ``i`` at ``p_i`` pushes on the object along the inward surface normal ``n_i`` (``-`` outward
  normal) with Coulomb friction ``mu``; its friction cone is approximated by ``m`` edges ``f_ij = n_i + mu
  (cos a_j u_i + sin a_j v_i)`` (unit normal component);
- each edge gives a wrench ``w_ij = [f_ij, (p_i - c) x f_ij / rho]`` about the reference point ``c`` (object
  centroid), torques scaled by ``rho`` (metres; default: the largest distance from ``c`` to a contact, which
  makes the measure invariant to a common scaling of the scene);
- the grasp wrench space is the convex hull of all ``w_ij``; ``epsilon`` is the distance from the origin to
  its boundary when the origin is strictly inside (force closure), else ``0``.

``epsilon`` is dimensionless (force units of one unit normal force), is invariant under a common rigid motion
of contacts, normals and centre, and grows as contacts oppose each other more evenly. Two antipodal contacts
cannot resist torque about their common axis in this point-contact model, so their epsilon is 0; three or more
non-collinear contacts (or soft finger patches represented by several points) can reach force closure.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from contactkit.errors import ShapeError

__all__ = ["contact_wrenches", "ferrari_canny_epsilon", "select_contacts"]


def _tangent_basis(n: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit tangents ``u, v`` (each (C, 3)) orthogonal to unit normals ``n (C, 3)``.

    ``u`` is the part of the lever arm ``r`` orthogonal to ``n`` (so the cone edges turn with the scene and
    the measure is invariant under rigid motions); a fixed helper axis is used where that part vanishes.
    """
    u = r - (r * n).sum(1, keepdims=True) * n
    un = np.linalg.norm(u, axis=1, keepdims=True)
    helper = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    fallback = np.cross(n, helper)
    scale = np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    u = np.where(un > 1e-6 * scale, u, fallback)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(n, u)
    return u, v


def contact_wrenches(
    points: np.ndarray,
    normals: np.ndarray,
    center: np.ndarray,
    *,
    friction: float = 0.5,
    n_edges: int = 8,
    torque_scale: float | None = None,
) -> np.ndarray:
    """Primitive contact wrenches of point contacts with friction cones.

    Args:
        points: (C, 3) float contact points, metres.
        normals: (C, 3) float **inward** contact normals (direction the hand pushes), any length > 0.
        center: (3,) float torque reference point, metres.
        friction: Coulomb friction coefficient ``mu >= 0``.
        n_edges: friction cone edges per contact (>= 3).
        torque_scale: ``rho`` in metres; default the largest contact distance to ``center``.

    Returns: (C * n_edges, 6) float64 wrenches ``[force, torque / rho]``.
    """
    p = np.asarray(points, dtype=np.float64)
    n = np.asarray(normals, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64).reshape(3)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ShapeError(f"points must have shape (C, 3), got {p.shape}")
    if n.shape != p.shape:
        raise ShapeError(f"normals must have shape {p.shape}, got {n.shape}")
    if n_edges < 3:
        raise ShapeError(f"n_edges must be >= 3, got {n_edges}")
    if friction < 0:
        raise ShapeError(f"friction must be >= 0, got {friction}")
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    if p.shape[0] and (norm <= 0).any():
        raise ShapeError("normals must be non-zero")
    n = n / np.maximum(norm, 1e-300)
    r = p - c
    rho = torque_scale if torque_scale is not None else float(np.linalg.norm(r, axis=1).max(initial=0.0))
    rho = max(rho, 1e-12)
    u, v = _tangent_basis(n, r)
    angles = 2.0 * math.pi * np.arange(n_edges) / n_edges
    f = (n[:, None, :] + friction * (np.cos(angles)[None, :, None] * u[:, None, :]
                                     + np.sin(angles)[None, :, None] * v[:, None, :]))  # (C, m, 3)
    tau = np.cross(r[:, None, :], f) / rho
    return np.concatenate([f, tau], axis=-1).reshape(-1, 6)


def ferrari_canny_epsilon(
    points: np.ndarray,
    normals: np.ndarray,
    center: np.ndarray,
    *,
    friction: float = 0.5,
    n_edges: int = 8,
    torque_scale: float | None = None,
) -> float:
    """Ferrari–Canny L1 epsilon of a set of point contacts (see the module docstring); 0 without force
    closure.

    Args: as :func:`contact_wrenches`.

    Returns: epsilon >= 0 (dimensionless).
    """
    w = contact_wrenches(
        points, normals, center, friction=friction, n_edges=n_edges, torque_scale=torque_scale
    )
    if w.shape[0] < 7:
        return 0.0
    try:
        hull = ConvexHull(w)
    except (QhullError, ValueError):
        return 0.0  # wrenches span less than 6 dimensions: no force closure
    offsets = hull.equations[:, -1]  # facet: normal . x + offset <= 0 inside, unit normals
    if (offsets >= -1e-12).any():
        return 0.0
    return float(-offsets.max())


def select_contacts(
    points: np.ndarray, normals: np.ndarray, max_contacts: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce many contact points to at most ``max_contacts`` spread ones (farthest-point sampling).

    Args:
        points: (C, 3) float, metres.
        normals: (C, 3) float.

    Returns: ``(points (k, 3), normals (k, 3))`` with ``k = min(C, max_contacts)``; deterministic (starts from
    the point closest to the centroid).
    """
    p = np.asarray(points, dtype=np.float64)
    nrm = np.asarray(normals, dtype=np.float64)
    if p.shape[0] <= max_contacts:
        return p, nrm
    first = int(np.argmin(np.linalg.norm(p - p.mean(0), axis=1)))
    chosen = [first]
    d = np.linalg.norm(p - p[first], axis=1)
    for _ in range(max_contacts - 1):
        nxt = int(np.argmax(d))
        chosen.append(nxt)
        d = np.minimum(d, np.linalg.norm(p - p[nxt], axis=1))
    idx = np.asarray(chosen)
    return p[idx], nrm[idx]

"""Per-sample exact mesh queries used by the metrics (CPU, float64 numpy).

Thin adapters over :mod:`contactkit.geometry` (libigl back-end): the metrics need no gradients and run one
sample at a time, so they call its numpy-level pieces directly: the content-cached AABB tree
(:func:`contactkit.geometry.mesh_distance.mesh_index`, reused across the grasps of one object) and the fast
generalised winding number (:func:`contactkit.geometry.inside.winding_number`).
"""

from __future__ import annotations

from typing import TypeVar

import igl
import numpy as np
import torch

from contactkit.geometry._checks import faces_tensor, safe_norm
from contactkit.geometry.inside import _signs, _topology
from contactkit.geometry.inside import winding_number as _winding_number
from contactkit.geometry.mesh_distance import (
    MeshClosest,
    MeshIndex,
    closest_points_on_mesh,
    mesh_index,
    point_triangle_closest,
)
from contactkit.metrics._arrays import bbox, norm3

T = TypeVar("T")


def _writable(a: np.ndarray) -> np.ndarray:
    """C-contiguous writable float64 (torch.from_numpy warns on read-only broadcast views)."""
    return np.require(a, dtype=np.float64, requirements=["C", "W"])


def unsigned_distance(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact unsigned distance ``(N,)`` in metres of ``points (N, 3)`` to a triangle mesh.

    The AABB tree is built afresh (no content-hash cache): callers pass meshes that change per call (posed hands).
    libigl's tree directly, without :class:`~contactkit.geometry.mesh_distance.MeshIndex`'s checks and copies
    (the callers pass validated arrays): the same tree over the same arrays, so the same distances.
    """
    if points.shape[0] == 0:
        return np.zeros(0)
    v, f = _writable(verts), np.require(faces, dtype=np.int64, requirements=["C"])
    tree = igl.AABB()
    tree.init(v, f)
    sq, _, _ = tree.squared_distance(v, f, _writable(points))
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


class FastWinding:
    """:func:`winding_number` of one fixed mesh with libigl's tree built once (``igl.FastWindingNumberBVH``).

    :func:`winding_number` builds the tree on every call (about 15 ms for a 16k-face mesh); this one builds it
    once per mesh. The same tree and the same per-point evaluation, so the values are bitwise those of
    :func:`winding_number` (each query is independent of the others).

    Args:
        verts: (V, 3) float64, metres; faces: (F, 3) int64.
    """

    def __init__(self, verts: np.ndarray, faces: np.ndarray) -> None:
        self.tree = igl.FastWindingNumberBVH()
        self.tree.init(_writable(verts), np.require(faces, dtype=np.int64, requirements=["C"]))

    def winding_number(self, points: np.ndarray) -> np.ndarray:
        """``(N,)`` generalised winding numbers of ``points (N, 3)``."""
        if points.shape[0] == 0:
            return np.zeros(0)
        return np.asarray(self.tree.winding_number(_writable(points)), dtype=np.float64)

    def inside(self, points: np.ndarray) -> np.ndarray:
        """Boolean ``(N,)``: winding number above 0.5 (:func:`inside`)."""
        return self.winding_number(points) > 0.5


def fast_winding(index: MeshIndex) -> FastWinding:
    """The :class:`FastWinding` of an indexed mesh, built on first use and kept in ``index.extras``."""
    tree = index.extras.get("fast_winding")
    if tree is None:
        tree = index.extras["fast_winding"] = FastWinding(index.verts, index.faces)
    return tree


def signed_distance(
    points: np.ndarray, verts: np.ndarray, faces: np.ndarray, index: MeshIndex | None = None
) -> np.ndarray:
    """Exact signed distance ``(N,)`` in metres of ``points (N, 3)`` to a mesh; negative inside.

    :func:`contactkit.geometry.inside.signed_distance` with the mesh's cached index (or ``index``, a
    :class:`~contactkit.geometry.mesh_distance.MeshIndex` of this very mesh, which skips the cache's content
    hash): exact point-triangle distance; sign from the angle-weighted pseudonormals when the mesh is closed
    (fast, exact), else from the generalised winding number (the index's :func:`fast_winding`, whose tree is
    built once per mesh: the same values as the winding number of the geometry module, which builds it per call).
    """
    if points.shape[0] == 0:
        return np.zeros(0)
    v = _writable(verts)
    if index is None:
        index = mesh_index(v, faces)
    pts = torch.from_numpy(_writable(points))[None]
    with torch.no_grad():
        if _topology(index, index.faces, v.shape[0])[0]:
            sd = _closed_signed_distance(pts, index)
        else:
            dist = closest_points_on_mesh(pts, torch.from_numpy(v), faces, index=index).dist
            inside = torch.from_numpy(fast_winding(index).inside(points))[None]
            sd = torch.where(inside, -dist, dist)
    return sd[0].numpy()


def _closed_signed_distance(pts: torch.Tensor, index: MeshIndex) -> torch.Tensor:
    """:func:`contactkit.geometry.inside.signed_distance` ``(1, N)`` of ``pts (1, N, 3)`` float64 to the closed
    mesh of ``index``, without its per-call checks and copies (the mesh's vertex and face tensors are kept in
    ``index.extras``): the same closest faces (the index's tree), the same closest points, distances and
    pseudonormal signs (the same functions on the same values), so the same bits (twin in the tests)."""
    cached = index.extras.get("metrics_tensors")
    if cached is None:
        cached = (torch.from_numpy(index.verts), faces_tensor(index.faces, pts.device))
        index.extras["metrics_tensors"] = cached
    verts, faces = cached
    n = pts.shape[1]
    face_idx = torch.from_numpy(index.query(pts[0].numpy())[1].reshape(1, n))
    tri = verts.index_select(0, faces[face_idx].reshape(-1)).reshape(1, n, 3, 3)
    closest, bary = point_triangle_closest(pts, tri[..., 0, :], tri[..., 1, :], tri[..., 2, :])
    res = MeshClosest(dist=safe_norm(pts - closest), closest=closest, face_idx=face_idx, bary=bary)
    return _signs(pts, verts, index.faces, True, index, res) * res.dist


class ObjectBounds:
    """Cheap distance bounds of points to one object mesh (object frame), built once per object.

    * :meth:`outside_bound`: a positive lower bound of the distance for points certainly outside the object,
      ``-inf`` for the others. Outside the mesh's box the box distance is one (the metrics' convention for every
      mesh). For a closed mesh, exact signed distances ``s(c)`` at the centres ``c`` of a regular grid (pitch
      >= 2 mm, at most ``max_centres`` centres) over the box grown by ``margin`` add another: the signed distance
      is 1-Lipschitz and cannot change sign in a ball free of the surface, so ``s(c) - |p - c| > 0`` for the
      nearest centre means ``p`` is outside and at least that far away.
    * :meth:`nearest_vertex`: the distance to a mesh vertex, an upper bound of the distance to the surface;
      :meth:`surface_lower_bound` turns that of the nearest vertex into a lower bound of the unsigned distance.

    Args:
        verts: (V, 3) float64 vertices, metres; faces: (F, 3) int64.
        index: the mesh's :class:`~contactkit.geometry.mesh_distance.MeshIndex`.
        closed: whether the mesh is closed and consistently oriented (the grid is built only then).
        margin: how far (m) the grid reaches beyond the mesh's box.
    """

    def __init__(
        self,
        verts: np.ndarray,
        faces: np.ndarray,
        index: MeshIndex,
        *,
        closed: bool,
        margin: float,
        max_centres: int = 16_000,
    ) -> None:
        from pykdtree.kdtree import KDTree

        self.lo, self.hi = bbox(verts)
        self.tree = KDTree(np.ascontiguousarray(verts, dtype=np.float64))  # 2-3x scipy's cKDTree for these queries
        tri = verts[faces]
        self.max_edge = float(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=-1).max()) if len(faces) else 0.0
        self.sd: np.ndarray | None = None
        if closed:
            self.grid_lo = self.lo - margin
            extent = self.hi + margin - self.grid_lo
            self.pitch = max(0.002, float(np.prod(extent) / max_centres) ** (1.0 / 3.0))
            self.shape = np.ceil(extent / self.pitch).astype(np.int64) + 1
            axes = [self.grid_lo[a] + self.pitch * np.arange(self.shape[a]) for a in range(3)]
            centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
            self.sd = signed_distance(centres, verts, faces, index=index).reshape(tuple(self.shape))

    def box_distance(self, points: np.ndarray) -> np.ndarray:
        """``(N,)`` distance of ``points (N, 3)`` to the mesh's axis-aligned box (0 inside it)."""
        return self._box_distance(np.ascontiguousarray(points.T))

    def _box_distance(self, pts_t: np.ndarray) -> np.ndarray:
        """:meth:`box_distance` of coordinate-major points ``pts_t (3, N)``."""
        x, y, z = (np.maximum(np.maximum(self.lo[a] - pts_t[a], pts_t[a] - self.hi[a]), 0.0) for a in range(3))
        return norm3(x, y, z)

    def outside_bound(self, points: np.ndarray) -> np.ndarray:
        """``(N,)`` for ``points (N, 3)``: a positive lower bound of the distance of a point certainly outside
        the mesh, else ``-inf``. Computed on coordinate rows (:func:`norm3`; the naive twin, on ``(N, 3)`` rows
        with ``np.linalg.norm``, is in the tests: the same values bit for bit)."""
        pts_t = np.ascontiguousarray(points.T)
        box = self._box_distance(pts_t)
        out = np.where(box > 0.0, box, -np.inf)
        if self.sd is not None:
            k = np.rint((pts_t - self.grid_lo[:, None]) / self.pitch).astype(np.int64)  # (3, N)
            on = np.nonzero(
                (k[0] >= 0) & (k[0] < self.shape[0]) & (k[1] >= 0) & (k[1] < self.shape[1])
                & (k[2] >= 0) & (k[2] < self.shape[2])
            )[0]  # fmt: skip
            kk = k[:, on]
            d = [pts_t[a, on] - (self.grid_lo[a] + kk[a] * self.pitch) for a in range(3)]
            bound = self.sd[kk[0], kk[1], kk[2]] - norm3(*d)
            out[on] = np.maximum(out[on], np.where(bound > 0.0, bound, -np.inf))
        return out

    def nearest_vertex(self, points: np.ndarray, eps: float = 0.0) -> np.ndarray:
        """``(N,)`` distance ``d`` of ``points (N, 3)`` to a mesh vertex at most ``1 + eps`` times as far as the
        nearest one (``eps > 0`` is much faster for far points): ``d`` >= the distance to the surface >=
        :meth:`surface_lower_bound` ``(d, eps)``."""
        if points.shape[0] == 0:
            return np.zeros(0)
        d, _ = self.tree.query(np.ascontiguousarray(points, dtype=np.float64), eps=eps)
        return np.asarray(d, dtype=np.float64)

    def surface_lower_bound(self, d: np.ndarray, eps: float) -> np.ndarray:
        """A lower bound ``(N,)`` of the distance to the surface from :meth:`nearest_vertex`'s ``d (N,)`` (m).

        With ``x`` the nearest surface point and ``c`` the nearest corner of its triangle (of its edge when ``x``
        lies on one), ``p - x`` is orthogonal to ``x - c`` and ``|x - c| <= L`` (:attr:`max_edge`), so the
        nearest vertex is at most ``sqrt(|p - x|^2 + L^2)`` away: ``|p - x| >= sqrt(v^2 - L^2)`` with
        ``v = d / (1 + eps)``, much tighter than ``v - L`` for far points; less ``1e-12`` m for rounding."""
        v = d / (1.0 + eps)
        return np.sqrt(np.maximum(v * v - self.max_edge * self.max_edge, 0.0)) - 1e-12

"""Per-sample exact mesh queries used by the metrics (CPU, float64 numpy).

Thin adapters over :mod:`contactkit.geometry` (libigl back-end): the metrics need no gradients and run one
sample at a time, so they call its numpy-level pieces directly: the content-cached AABB tree
(:func:`contactkit.geometry.mesh_distance.mesh_index`, reused across the grasps of one object) and the fast
generalised winding number (:func:`contactkit.geometry.inside.winding_number`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
import torch

from contactkit.geometry.inside import signed_distance as _signed_distance
from contactkit.geometry.inside import winding_number as _winding_number
from contactkit.geometry.mesh_distance import MeshIndex, mesh_index

T = TypeVar("T")


def mesh_digest(verts: np.ndarray, faces: np.ndarray, *extra: int) -> bytes:
    """A content digest of a mesh (and a few integers, e.g. a sample count), for per-object caches."""
    v = np.ascontiguousarray(verts, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    h = hashlib.blake2b(digest_size=16)
    for a in (np.asarray((*v.shape, *f.shape, *extra), dtype=np.int64), v, f):
        h.update(a.tobytes())
    return h.digest()


class ObjectCache(Generic[T]):
    """A small LRU cache of per-object values keyed by :func:`mesh_digest` (objects recur across evaluations)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._items: OrderedDict[bytes, T] = OrderedDict()

    def get(self, key: bytes, make: Callable[[], T]) -> T:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


def _writable(a: np.ndarray) -> np.ndarray:
    """C-contiguous writable float64 (torch.from_numpy warns on read-only broadcast views)."""
    return np.require(a, dtype=np.float64, requirements=["C", "W"])


def unsigned_distance(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact unsigned distance ``(N,)`` in metres of ``points (N, 3)`` to a triangle mesh.

    The AABB tree is built afresh (no content-hash cache): callers pass meshes that change per call (posed hands).
    """
    if points.shape[0] == 0:
        return np.zeros(0)
    sq, _, _ = MeshIndex(_writable(verts), faces).query(points)
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


def signed_distance(
    points: np.ndarray, verts: np.ndarray, faces: np.ndarray, index: MeshIndex | None = None
) -> np.ndarray:
    """Exact signed distance ``(N,)`` in metres of ``points (N, 3)`` to a mesh; negative inside.

    :func:`contactkit.geometry.inside.signed_distance` with the mesh's cached index (or ``index``, a
    :class:`~contactkit.geometry.mesh_distance.MeshIndex` of this very mesh, which skips the cache's content
    hash): exact point-triangle distance; sign from the angle-weighted pseudonormals when the mesh is closed
    (fast, exact), else from the generalised winding number.
    """
    if points.shape[0] == 0:
        return np.zeros(0)
    v = _writable(verts)
    if index is None:
        index = mesh_index(v, faces)
    with torch.no_grad():
        sd = _signed_distance(torch.from_numpy(_writable(points))[None], torch.from_numpy(v), faces, index=index)
    return sd[0].numpy()

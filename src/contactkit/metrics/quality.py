"""Grasp quality: the physical-affinity diversity score of paper 003 (Zhuang & Mu, ICMR 2021).

Definition (contactkit's precise reading of paper 003, Sec. 3.3):

1. Object box and central axis. contactkit's one object box,
   :func:`contactkit.objects.library.object_box_corners`: the axis-aligned box of the object's vertices in its
   own frame (the keypoints are given in that frame too) — the box of the physical affinity loss
   (:mod:`contactkit.contact.affinity`) and of the keypoint networks. The central axis ``l`` is the line joining
   the centres of the box's "upper" and "lower" faces (``z = max`` and ``z = min``), i.e. the box's z axis
   through its centre. The object radius ``L`` is the mean side length of those two faces (the mean of the x and
   y extents). Being frame-bound, the score depends on how the mesh is posed in its own frame, as the loss does.
2. Each of the 6 box faces is sampled on an ``N x N`` bilinear grid (``N = 10``).
3. For every hand keypoint ``H_i`` and face ``j``: ``d_ij = min_P |H_i - P|`` and the support point
   ``supp_ij`` (the arg-min).
4. Candidates: the ``N_c = 10`` pairs of smallest ``d_ij``; valid contacts: those with ``d_ij <= eta * L``
   (``eta = 0.2``).
5. ``v_k`` = valid support point minus its projection on ``l``. The paper's loss is the mean pairwise cosine
   ``c = (1/Z) sum_{k<m} cos(v_k, v_m)``, ``Z = N'_c (N'_c - 1) / 2``.

The reported score is ``affinity_diversity = 1 - c`` in ``[0, 2]`` (higher = contacts spread more evenly around
the axis); with fewer than two valid contacts the score is 0 (no diversity).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from contactkit.cache import LRUCache, mesh_key
from contactkit.errors import ShapeError
from contactkit.metrics._arrays import mesh_batch, norm3, points_batch
from contactkit.objects.library import object_box_corners
from contactkit.objects.mesh import ObjectMesh

N_CANDIDATES = 10
ETA = 0.2
FACE_SAMPLES = 10


@dataclass(frozen=True)
class ObjectBox:
    """Oriented box of an object: ``centre (3,)``, ``axes (3, 3)`` (rows, first = central axis), ``extents (3,)``."""

    centre: np.ndarray
    axes: np.ndarray
    extents: np.ndarray

    def corners(self) -> np.ndarray:
        """(8, 3) corners, index bits (x, y, z) along the rows of ``axes``."""
        signs = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=np.float64) - 0.5
        return self.centre + (signs * self.extents) @ self.axes


_BOXES: LRUCache[ObjectBox] = LRUCache()


def object_box(verts: np.ndarray, faces: np.ndarray) -> ObjectBox:
    """The one object box (:func:`~contactkit.objects.library.object_box_corners`) of a mesh ``verts (V, 3)``,
    ``faces (F, 3)`` (metres, object frame) as an :class:`ObjectBox` whose first axis (the central axis) is z."""
    corners, extents = object_box_corners(ObjectMesh("box", verts, faces, is_watertight=False))
    axes = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # rows: z (central), x, y
    return ObjectBox(centre=corners.mean(0), axes=axes, extents=extents[[2, 0, 1]])


_FACE_POINTS: LRUCache[np.ndarray] = LRUCache()


def _cached_face_points(key: bytes, box: ObjectBox, n: int) -> np.ndarray:
    """:func:`_face_points` of the object box cached under the object mesh's ``key`` (read-only)."""

    def make() -> np.ndarray:
        fp = _face_points(box, n)
        fp.setflags(write=False)
        return fp

    return _FACE_POINTS.get_or_make((key, n), make)


def _face_points(box: ObjectBox, n: int) -> np.ndarray:
    """(6, n*n, 3) bilinear samples of the 6 box faces."""
    c = box.corners()
    quads = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]
    s = np.linspace(0.0, 1.0, n)
    u, v = np.meshgrid(s, s, indexing="ij")
    u, v = u.reshape(-1, 1), v.reshape(-1, 1)
    out = []
    for a, b, cc, d in quads:
        out.append((1 - u) * (1 - v) * c[a] + u * (1 - v) * c[b] + u * v * c[cc] + (1 - u) * v * c[d])
    return np.stack(out)


def _supports(keypoints: np.ndarray, fp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``keypoints (B, K, 3)`` and box-face samples ``fp (6, n2, 3)``: the distance ``(B, K*6)`` of each
    keypoint to its nearest sample on each face and that sample ``(B, K*6, 3)`` (keypoint-major).

    The distances are ``np.linalg.norm(keypoints[:, :, None, None] - fp, axis=-1)``'s, one coordinate plane at a
    time (:func:`~contactkit.metrics._arrays.norm3`; the naive twin is in the tests): no ``(B, K, 6, n2, 3)``
    difference array."""
    kp, f = keypoints.reshape(-1, 3), fp.reshape(-1, 3)
    dist = norm3(*(kp[:, c, None] - f[:, c] for c in range(3))).reshape(keypoints.shape[:2] + fp.shape[:2])
    arg = dist.argmin(axis=3)
    d = np.take_along_axis(dist, arg[..., None], axis=3)[..., 0].reshape(keypoints.shape[0], -1)
    supp = fp[np.tile(np.arange(6), keypoints.shape[1]), arg.reshape(keypoints.shape[0], -1)]
    return d, supp


def _score(d: np.ndarray, supp: np.ndarray, box: ObjectBox, n_candidates: int, eta: float) -> tuple[float, int]:
    """Score and number of valid contacts of one grasp from its ``(K*6,)`` support distances and points."""
    k = min(n_candidates, d.size)
    top = np.argsort(d, kind="stable")[:k]
    radius = float(np.mean(box.extents[1:]))
    valid = top[d[top] <= eta * radius]
    if valid.size < 2:
        return 0.0, int(valid.size)
    p = supp[valid] - box.centre
    axis = box.axes[0]
    v = p - (p @ axis)[:, None] * axis
    norm = np.linalg.norm(v, axis=1)
    v = v / np.maximum(norm, 1e-12)[:, None]
    cos = v @ v.T
    iu = np.triu_indices(valid.size, k=1)
    return float(1.0 - cos[iu].mean()), int(valid.size)


def affinity_diversity_single(
    keypoints: np.ndarray,
    box: ObjectBox,
    *,
    n_candidates: int = N_CANDIDATES,
    eta: float = ETA,
    face_samples: int = FACE_SAMPLES,
) -> tuple[float, int]:
    """Score and number of valid contacts for one grasp: ``keypoints (K, 3)`` metres and an :class:`ObjectBox`."""
    d, supp = _supports(keypoints[None], _face_points(box, face_samples))
    return _score(d[0], supp[0], box, n_candidates, eta)


def affinity_diversity(
    keypoints: Any,
    obj_verts: Any,
    obj_faces: Any,
    *,
    n_candidates: int = N_CANDIDATES,
    eta: float = ETA,
    face_samples: int = FACE_SAMPLES,
    object_key: bytes | None = None,
) -> np.ndarray:
    """Physical-affinity diversity score ``(B,)`` (unitless, in [0, 2]; see the module docstring).

    Args:
        keypoints: (B, K, 3) float, metres (the 21 hand keypoints).
        obj_verts: (V_o, 3) or (B, V_o, 3) float, metres, same frame as the keypoints.
        obj_faces: (F_o, 3) int.
        n_candidates: ``N_c`` (10).
        eta: contact filter ratio (0.2).
        face_samples: samples per box-face side (10).
        object_key: the shared object mesh's :func:`~contactkit.cache.mesh_key` when the caller has it (skips
            hashing the mesh again).
    """
    if n_candidates < 2 or face_samples < 2 or not eta > 0:
        raise ShapeError(
            f"need n_candidates >= 2, face_samples >= 2 and eta > 0; got {n_candidates}, {face_samples}, {eta}"
        )
    kp = points_batch(keypoints, "keypoints")
    ov, of = mesh_batch(obj_verts, obj_faces, kp.shape[0], "obj_verts", "obj_faces")
    out = np.zeros(kp.shape[0])
    if ov.strides[0] == 0:  # one object for the batch: its box and face samples once, all supports at once
        key = mesh_key(ov[0], of) if object_key is None else object_key
        box = _BOXES.get_or_make(key, partial(object_box, ov[0], of))
        d, supp = _supports(kp, _cached_face_points(key, box, face_samples))
        for b in range(kp.shape[0]):
            out[b] = _score(d[b], supp[b], box, n_candidates, eta)[0]
        return out
    for b in range(kp.shape[0]):
        box = _BOXES.get_or_make(mesh_key(ov[b], of), partial(object_box, ov[b], of))
        out[b] = affinity_diversity_single(kp[b], box, n_candidates=n_candidates, eta=eta, face_samples=face_samples)[0]
    return out

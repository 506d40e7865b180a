"""Contact metrics: contact masks at +-2 mm, coverage, and precision / recall / F1 against a reference.

A hand vertex is *in contact* when its signed distance to the object surface lies in ``[-t, +t]`` (ContactOpt's
+-2 mm, ``t = 0.002`` m); an object point is in contact when its signed distance to the closed hand surface lies
in ``[-t, +t]``. Masks are numpy bool arrays; percentages are returned as fractions in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from contactkit.errors import ShapeError
from contactkit.metrics import _geom
from contactkit.metrics._arrays import bbox, mesh_batch, points_batch, to_numpy
from contactkit.metrics.penetration import hand_signed_distances

#: Contact threshold (metres): ContactOpt's +-2 mm.
CONTACT_THRESHOLD_M = 0.002
#: Threshold applied to a continuous reference contact map (ContactOpt's thermal maps, following ContactPose).
CONTACT_MAP_THRESHOLD = 0.4


def contact_mask_from_sd(sd: np.ndarray, threshold: float = CONTACT_THRESHOLD_M) -> np.ndarray:
    """Boolean contact mask from signed distances: ``|sd| <= threshold``."""
    if threshold < 0:
        raise ShapeError(f"threshold must be >= 0, got {threshold}")
    return np.abs(sd) <= threshold


def hand_contact_mask(
    hand_verts: Any, obj_verts: Any, obj_faces: Any, threshold: float = CONTACT_THRESHOLD_M
) -> np.ndarray:
    """Hand-side contact mask ``(B, V)`` bool: hand vertices within ``threshold`` metres of the object surface.

    Args:
        hand_verts: (B, V, 3) float, metres.
        obj_verts: (V_o, 3) or (B, V_o, 3) float, metres.
        obj_faces: (F_o, 3) int.
        threshold: metres (default 2 mm), inside or outside.
    """
    return contact_mask_from_sd(hand_signed_distances(hand_verts, obj_verts, obj_faces), threshold)


def object_contact_mask(
    obj_points: Any, hand_verts: Any, hand_faces: Any, threshold: float = CONTACT_THRESHOLD_M
) -> np.ndarray:
    """Object-side contact mask ``(B, P)`` bool: object points within ``threshold`` of the closed hand surface.

    Args:
        obj_points: (B, P, 3) float, metres, world frame (e.g. surface samples of the object).
        hand_verts: (B, V, 3) float, metres.
        hand_faces: (F, 3) int, a closed (watertight) face set of the hand.
        threshold: metres (default 2 mm), inside or outside the hand.
    """
    op = points_batch(obj_points, "obj_points")
    hv, hf = mesh_batch(hand_verts, hand_faces, op.shape[0], "hand_verts", "hand_faces")
    if threshold < 0:
        raise ShapeError(f"threshold must be >= 0, got {threshold}")
    mask = np.zeros(op.shape[:2], dtype=bool)
    for b in range(op.shape[0]):
        mask[b] = object_contact_mask_one(op[b], hv[b], hf, threshold)
    return mask


def object_contact_mask_one(
    points: np.ndarray, verts: np.ndarray, faces: np.ndarray, threshold: float = CONTACT_THRESHOLD_M
) -> np.ndarray:
    """:func:`object_contact_mask` of one sample on validated arrays (no checks): ``points (P, 3)``, ``verts
    (V, 3)`` float64, ``faces (F, 3)`` int64, ``threshold >= 0``; ``(P,)`` bool."""
    # |signed distance| <= t is |unsigned distance| <= t: no inside test; and only points within t of the
    # hand's bounding box can be that close, so only those are queried
    mask = np.zeros(points.shape[0], dtype=bool)
    pts_t = np.ascontiguousarray(points.T)  # (3, P): the box tests run on contiguous coordinate rows
    lo, hi = bbox(verts)
    near = np.nonzero(_in_box(pts_t, lo - threshold, hi + threshold))[0]
    if near.size:
        mask[near] = _near_surface(points[near], pts_t[:, near], verts, faces, threshold)
    return mask


def _in_box(pts_t: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(..., P)`` bool: points ``pts_t (3, P)`` inside the closed boxes ``lo``, ``hi`` (``(3,)`` or
    ``(3, G, 1)`` for G boxes at once), one coordinate row at a time (the comparisons of
    ``np.all((points >= lo) & (points <= hi), axis=1)``, without its slow reduction over a short axis)."""
    x, y, z = pts_t
    return (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & (z >= lo[2]) & (z <= hi[2])


def _face_boxes(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(3, F)`` lower and upper corners of each face's axis-aligned box, coordinate-major (the min / max of its
    three corners: ``verts[faces].min(1).T`` / ``.max(1).T``, without the ``(F, 3, 3)`` gather and its slow
    short reduction)."""
    vt = np.ascontiguousarray(verts.T)
    a, b, c = vt[:, faces[:, 0]], vt[:, faces[:, 1]], vt[:, faces[:, 2]]
    return np.minimum(np.minimum(a, b), c), np.maximum(np.maximum(a, b), c)


#: Number of face groups whose boxes :func:`_near_face_groups` tests each point against.
_FACE_GROUPS = 16


def _near_face_groups(pts_t: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray, threshold: float) -> np.ndarray:
    """``(P,)`` bool, False only for points ``pts_t (3, P)`` certainly farther than ``threshold`` from every face
    of the boxes ``f_lo``, ``f_hi`` ``(3, F)``: the faces, sorted along the points' longest axis, in
    :data:`_FACE_GROUPS` groups; a point is kept when it lies in some group's box grown by a bit more than
    ``threshold`` (a face within ``t`` of a point has its box within ``t`` of it on every axis; the extra
    ``1e-6 t`` is far above the rounding of the box corners, so no point the exact query could find within
    ``t`` is dropped)."""
    grow = threshold * (1.0 + 1e-6) + 1e-12
    axis = int(np.argmax(pts_t.max(1) - pts_t.min(1)))
    order = np.argsort(f_lo[axis] + f_hi[axis], kind="stable")
    starts = np.linspace(0, len(order), min(_FACE_GROUPS, len(order)) + 1).astype(np.int64)[:-1]
    lo = np.minimum.reduceat(f_lo[:, order], starts, axis=1)[..., None] - grow  # (3, G, 1)
    hi = np.maximum.reduceat(f_hi[:, order], starts, axis=1)[..., None] + grow
    return np.asarray(_in_box(pts_t, lo, hi).any(axis=0))


def _near_surface(
    points: np.ndarray, pts_t: np.ndarray, verts: np.ndarray, faces: np.ndarray, threshold: float
) -> np.ndarray:
    """``(P,)`` bool: unsigned distance of ``points (P, 3)`` (and the same, coordinate-major, ``pts_t (3, P)``)
    to the mesh ``verts (V, 3)``, ``faces (F, 3)`` is at most ``threshold``; exact, with the AABB tree built
    over the faces that can be that close only.

    A face within ``t`` of a point meets the point's ``t``-ball, so its box overlaps the points' box grown by
    ``t``; the other faces cannot change the answer (the distance to the kept faces is never below the distance
    to the whole mesh, and equals it wherever it is at most ``t``). Then only points within ``t`` of the kept
    faces' box, and of the box of one of their groups (:func:`_near_face_groups`), are queried. The naive twin
    (every point against the whole mesh) is in the tests.
    """
    f_lo, f_hi = _face_boxes(verts, faces)
    lo, hi = pts_t.min(1) - threshold, pts_t.max(1) + threshold
    keep = _in_box(f_hi, lo, np.full(3, np.inf)) & _in_box(f_lo, np.full(3, -np.inf), hi)
    out = np.zeros(points.shape[0], dtype=bool)
    if not keep.any():
        return out
    f_lo, f_hi = f_lo[:, keep], f_hi[:, keep]
    near = _in_box(pts_t, f_lo.min(1) - threshold, f_hi.max(1) + threshold)
    if near.any():
        near[near] = _near_face_groups(pts_t[:, near], f_lo, f_hi, threshold)
    if near.any():
        out[near] = _geom.unsigned_distance(points[near], verts, faces[keep]) <= threshold
    return out


def contact_coverage(mask: Any) -> np.ndarray:
    """Fraction ``(B,)`` of in-contact entries of a ``(B, N)`` mask (ContactOpt's contact coverage / 100)."""
    m = np.asarray(to_numpy(mask), dtype=bool)
    if m.ndim != 2 or m.shape[1] == 0:
        raise ShapeError(f"Expected mask to be of shape (B, N) with N > 0, got {tuple(m.shape)}")
    return m.mean(axis=1)


def binarize_contact_map(contact: Any, threshold: float = CONTACT_MAP_THRESHOLD) -> np.ndarray:
    """Binary mask from a contact map in [0, 1] (bool maps pass through): ``contact >= threshold``."""
    c = to_numpy(contact)
    if c.dtype == bool:
        return c
    return np.asarray(c, dtype=np.float64) >= threshold


@dataclass(frozen=True)
class PrecisionRecall:
    """Per-sample binary classification scores, fractions in [0, 1], each ``(B,)`` float64."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray


def precision_recall_f1(pred_mask: Any, ref_mask: Any) -> PrecisionRecall:
    """Precision, recall and F1 of a predicted contact mask against a reference mask, per sample.

    ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``, ``F1 = 2PR / (P + R)``; the empty cases are defined as
    ``P = 1`` when nothing is predicted, ``R = 1`` when the reference is empty, ``F1 = 0`` when ``P + R = 0``
    (so two empty masks score 1, 1, 1).

    Args:
        pred_mask: (B, N) bool (or a contact map, binarised at 0.4).
        ref_mask: (B, N) bool (or a contact map, binarised at 0.4).
    """
    p = binarize_contact_map(pred_mask)
    r = binarize_contact_map(ref_mask)
    if p.ndim != 2:
        raise ShapeError(f"Expected pred_mask to be of shape (B, N), got {tuple(p.shape)}")
    if p.shape != r.shape:
        raise ShapeError(f"pred_mask has shape {tuple(p.shape)} but ref_mask has shape {tuple(r.shape)}")
    tp = (p & r).sum(axis=1).astype(np.float64)
    n_pred = p.sum(axis=1).astype(np.float64)
    n_ref = r.sum(axis=1).astype(np.float64)
    precision = np.where(n_pred > 0, tp / np.maximum(n_pred, 1.0), 1.0)
    recall = np.where(n_ref > 0, tp / np.maximum(n_ref, 1.0), 1.0)
    denom = precision + recall
    f1 = np.where(denom > 0, 2.0 * precision * recall / np.where(denom > 0, denom, 1.0), 0.0)
    return PrecisionRecall(precision=precision, recall=recall, f1=f1)

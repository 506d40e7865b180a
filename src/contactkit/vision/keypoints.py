"""The 29 keypoints of paper 003: 21 hand keypoints and the 8 corners of the object's box, with their graphs.

Hand keypoints follow contactkit's order (wrist; thumb 1-4; index 1-4; middle 1-4; ring 1-4; little 1-4); their
edges are the 20 bones of the kinematic tree. The object box is a rectangular cuboid in the object's own frame
whose corner ``k`` has the sign bits ``(x = k & 1, y = k >> 1 & 1, z = k >> 2 & 1)`` along the box axes — the
order :func:`contactkit.contact.affinity.box_corners` uses, so the physical affinity loss reads the box's ``z``
axis as the object's central axis. Its 12 edges join corners that differ in one bit.

Box axes (:func:`object_box`): the principal axes of the object's vertices, ordered so that ``z`` is the box's
longest side and ``x`` its shortest; when the object-frame axis-aligned box is smaller (a cube, whose principal
axes are arbitrary), the object's own axes are used instead, ordered the same way. Signs are fixed so that each
axis's largest-magnitude component is positive and the frame is right-handed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contactkit.errors import ShapeError

__all__ = [
    "BOX_EDGES",
    "HAND_EDGES",
    "HAND_PARENTS",
    "NUM_HAND_KEYPOINTS",
    "NUM_KEYPOINTS",
    "NUM_OBJECT_KEYPOINTS",
    "ObjectBox",
    "box_corner_signs",
    "object_box",
]

NUM_HAND_KEYPOINTS = 21
NUM_OBJECT_KEYPOINTS = 8
NUM_KEYPOINTS = NUM_HAND_KEYPOINTS + NUM_OBJECT_KEYPOINTS

#: Parent of each of the 21 hand keypoints (-1 for the wrist): every finger is a chain wrist -> 1 -> 2 -> 3 -> 4.
HAND_PARENTS: tuple[int, ...] = (-1,) + tuple(0 if i % 4 == 1 else i - 1 for i in range(1, 21))
#: The 20 bones as (parent, child) keypoint pairs.
HAND_EDGES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(HAND_PARENTS) if p >= 0)
#: The 12 box edges as corner pairs differing in exactly one sign bit.
BOX_EDGES: tuple[tuple[int, int], ...] = tuple(
    (a, a | bit) for bit in (1, 2, 4) for a in range(8) if not a & bit
)


def box_corner_signs() -> np.ndarray:
    """(8, 3) float64 in {-1, +1}: the sign of each corner along the box's x, y, z axes."""
    k = np.arange(8)
    bits = np.stack([k & 1, (k >> 1) & 1, (k >> 2) & 1], axis=1)
    return (2.0 * bits - 1.0).astype(np.float64)


@dataclass(frozen=True)
class ObjectBox:
    """A rectangular box around an object, in the object's frame (metres).

    Attributes:
        rotation: (3, 3) float64, columns are the box's x, y, z axes (right-handed; z the longest side).
        centre: (3,) float64 box centre.
        half_extents: (3,) float64 half side lengths along x, y, z (ascending).
        corners: (8, 3) float64 corners in the bit order of the module docstring.
    """

    rotation: np.ndarray
    centre: np.ndarray
    half_extents: np.ndarray
    corners: np.ndarray


def _box_in_axes(verts: np.ndarray, axes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tight box along the columns of ``axes``, columns reordered by ascending extent and signs normalised."""
    local = verts @ axes
    lo, hi = local.min(0), local.max(0)
    order = np.argsort(hi - lo, kind="stable")
    axes, lo, hi = axes[:, order], lo[order], hi[order]
    for i in range(3):
        if axes[np.argmax(np.abs(axes[:, i])), i] < 0:
            axes[:, i] = -axes[:, i]
            lo[i], hi[i] = -hi[i], -lo[i]
    if np.linalg.det(axes) < 0:
        axes[:, 0] = -axes[:, 0]
        lo[0], hi[0] = -hi[0], -lo[0]
    return axes, lo, hi


def object_box(vertices: np.ndarray) -> ObjectBox:
    """The object's box (module docstring) from its vertices.

    Args:
        vertices: (V, 3) float, object frame, metres, V >= 4.
    """
    verts = np.asarray(vertices, dtype=np.float64)
    if verts.ndim != 2 or verts.shape[1] != 3 or verts.shape[0] < 4 or not np.isfinite(verts).all():
        raise ShapeError(f"vertices must be a finite (V, 3) array with V >= 4, got shape {verts.shape}")
    centred = verts - verts.mean(0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    candidates = [_box_in_axes(verts, vecs.copy()), _box_in_axes(verts, np.eye(3))]
    volumes = [float(np.prod(hi - lo)) for _, lo, hi in candidates]
    axes, lo, hi = candidates[0] if volumes[0] < 0.99 * volumes[1] else candidates[1]
    half = 0.5 * (hi - lo)
    centre = axes @ (0.5 * (hi + lo))
    corners = centre + (box_corner_signs() * half) @ axes.T
    return ObjectBox(rotation=axes, centre=centre, half_extents=half, corners=corners)

"""The 29 keypoints of paper 003: 21 hand keypoints and the 8 corners of the object's box, with their graphs.

Hand keypoints follow contactkit's order (wrist; thumb 1-4; index 1-4; middle 1-4; ring 1-4; little 1-4); their
edges are the 20 bones of the kinematic tree. The object keypoints are the corners of contactkit's one object box,
:func:`contactkit.objects.library.object_box_corners` (the axis-aligned box of the object's vertices in its own
frame, as in papers 003 and 004), posed with the object: corner ``k`` has the sign bits
``(x = k & 1, y = k >> 1 & 1, z = k >> 2 & 1)`` — the order :func:`contactkit.contact.affinity.box_corners` uses,
so the physical affinity loss reads the object's ``z`` axis as its central axis. The box's 12 edges join corners
that differ in one bit.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BOX_EDGES",
    "HAND_EDGES",
    "HAND_PARENTS",
    "NUM_HAND_KEYPOINTS",
    "NUM_KEYPOINTS",
    "NUM_OBJECT_KEYPOINTS",
    "box_corner_signs",
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

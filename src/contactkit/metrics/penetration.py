"""Penetration depth and CPF's disjointedness distance.

Functions over batches: hand vertices ``(B, V, 3)`` and an object mesh in the world frame (vertices ``(V_o, 3)``
shared or ``(B, V_o, 3)`` per sample, faces ``(F_o, 3)``), metres in, metres out, numpy float64 ``(B,)``.
Signed distance convention: negative inside the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from contactkit.metrics import _geom
from contactkit.metrics._arrays import index_groups, mesh_batch, points_batch


def hand_signed_distances(hand_verts: Any, obj_verts: Any, obj_faces: Any) -> np.ndarray:
    """Signed distance ``(B, V)`` in metres of every hand vertex to the object surface (negative inside).

    Args:
        hand_verts: (B, V, 3) float, metres.
        obj_verts: (V_o, 3) or (B, V_o, 3) float, metres, world frame.
        obj_faces: (F_o, 3) int.
    """
    hv = points_batch(hand_verts, "hand_verts")
    ov, of = mesh_batch(obj_verts, obj_faces, hv.shape[0], "obj_verts", "obj_faces")
    return np.stack([_geom.signed_distance(hv[b], ov[b], of) for b in range(hv.shape[0])])


def penetration_depth_from_sd(sd: np.ndarray) -> np.ndarray:
    """Penetration depth ``(B,)`` from hand-vertex signed distances ``(B, V)``: ``max(0, max_v -sd_v)``."""
    return np.maximum(-sd, 0.0).max(axis=1)


def penetration_depth(hand_verts: Any, obj_verts: Any, obj_faces: Any) -> np.ndarray:
    """Penetration depth ``(B,)`` in metres.

    The maximum, over hand vertices inside the object, of their distance to the object surface; 0 when no hand
    vertex is inside (ObMan / CPF "PD"). The inside test is the winding number of the object mesh.

    Args:
        hand_verts: (B, V, 3) float, metres.
        obj_verts: (V_o, 3) or (B, V_o, 3) float, metres.
        obj_faces: (F_o, 3) int.
    """
    return penetration_depth_from_sd(hand_signed_distances(hand_verts, obj_verts, obj_faces))


def disjointedness_from_sd(sd: np.ndarray, fingertip_regions: Sequence[Any]) -> np.ndarray:
    """Disjointedness ``(B,)`` from signed distances ``(B, V)`` (see :func:`disjointedness`)."""
    groups = index_groups(fingertip_regions, sd.shape[1], "fingertip_regions")
    gap = np.maximum(sd, 0.0)
    return np.stack([gap[:, g].min(axis=1) for g in groups], axis=1).mean(axis=1)


def disjointedness(hand_verts: Any, obj_verts: Any, obj_faces: Any, fingertip_regions: Sequence[Any]) -> np.ndarray:
    """CPF's disjointedness distance ``(B,)`` in metres.

    For each fingertip region (five index arrays, thumb..little), the smallest distance of its vertices to the
    object surface; the mean over regions. A vertex inside the object counts as distance 0 (it touches).

    Args:
        hand_verts: (B, V, 3) float, metres.
        obj_verts: (V_o, 3) or (B, V_o, 3) float, metres.
        obj_faces: (F_o, 3) int.
        fingertip_regions: sequence of int index arrays into the V hand vertices (usually five).
    """
    hv = points_batch(hand_verts, "hand_verts")
    index_groups(fingertip_regions, hv.shape[1], "fingertip_regions")
    return disjointedness_from_sd(hand_signed_distances(hv, obj_verts, obj_faces), fingertip_regions)

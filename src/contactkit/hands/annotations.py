"""Hand annotations derived by code for any hand: CPF regions and anchors, contact zones, palmar mask.

:func:`derive_annotations` needs only the rest mesh, the 16 rest joints (MANO order), the skinning weights and
the five fingertip vertices; nothing is a hand-typed vertex list. See ``docs/hand_annotations.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from contactkit.errors import ContactkitError, MeshError, ShapeError
from contactkit.hands.anatomy import FINGER_JOINTS, FINGER_NAMES, joint_frames, palm_normal
from contactkit.hands.anchors import NUM_ANCHORS, anchors_from_vertices, derive_anchors
from contactkit.hands.regions import (
    FINGERTIP_REGIONS,
    PALM_CARPAL,
    PALM_METACARPAL,
    REGION_NAMES,
    assign_regions,
    control_points,
    ensure_non_empty,
    make_regions_connected,
    palmar_mask,
    vertex_adjacency,
)

__all__ = ["HandAnnotations", "anchors_from_vertices", "contact_zones", "derive_annotations"]

ZONE_NAMES: tuple[str, ...] = ("palm",) + FINGER_NAMES


@dataclass(frozen=True)
class HandAnnotations:
    """Annotations of one hand mesh (numpy, rest pose; indices refer to the hand's vertices and faces).

    Attributes:
        region_of_vertex: (V,) int64 in [0, 17), CPF subregion of each vertex.
        region_names: the 17 region names (see ``contactkit.hands.regions.REGION_NAMES``).
        anchor_faces: (32,) int64 face of each anchor.
        anchor_bary: (32, 3) float64 barycentric weights of the face's vertices.
        anchor_region: (32,) int64 region of each anchor.
        contact_zones: ``palm, thumb, index, middle, ring, little`` → int64 vertex indices (sorted).
        palmar_mask: (V,) bool, vertices on the palm side of their region.
        fingertip_vertices: (5,) int64, thumb..little.
        fingertip_regions: (5,) int64 distal region ids, thumb..little.
        palm_normal: (3,) float64 unit palmar direction at rest.
    """

    region_of_vertex: np.ndarray
    region_names: tuple[str, ...]
    anchor_faces: np.ndarray
    anchor_bary: np.ndarray
    anchor_region: np.ndarray
    contact_zones: dict[str, np.ndarray]
    palmar_mask: np.ndarray
    fingertip_vertices: np.ndarray
    fingertip_regions: np.ndarray
    palm_normal: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def anchors(self, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """Posed anchors (B, 32, 3) from posed vertices (B, V, 3); see :func:`anchors_from_vertices`."""
        return anchors_from_vertices(vertices, faces, self.anchor_faces, self.anchor_bary)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays for ``np.savez`` (zones as ``zone_<name>``, names as a string array)."""
        out = {
            "region_of_vertex": self.region_of_vertex,
            "region_names": np.asarray(self.region_names),
            "anchor_faces": self.anchor_faces,
            "anchor_bary": self.anchor_bary,
            "anchor_region": self.anchor_region,
            "palmar_mask": self.palmar_mask,
            "fingertip_vertices": self.fingertip_vertices,
            "fingertip_regions": self.fingertip_regions,
            "palm_normal": self.palm_normal,
        }
        out.update({f"zone_{k}": v for k, v in self.contact_zones.items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> HandAnnotations:
        """Inverse of :meth:`to_arrays`."""
        try:
            return cls(
                region_of_vertex=np.asarray(arrays["region_of_vertex"], dtype=np.int64),
                region_names=tuple(str(s) for s in arrays["region_names"]),
                anchor_faces=np.asarray(arrays["anchor_faces"], dtype=np.int64),
                anchor_bary=np.asarray(arrays["anchor_bary"], dtype=np.float64),
                anchor_region=np.asarray(arrays["anchor_region"], dtype=np.int64),
                contact_zones={k: np.asarray(arrays[f"zone_{k}"], dtype=np.int64) for k in ZONE_NAMES},
                palmar_mask=np.asarray(arrays["palmar_mask"], dtype=bool),
                fingertip_vertices=np.asarray(arrays["fingertip_vertices"], dtype=np.int64),
                fingertip_regions=np.asarray(arrays["fingertip_regions"], dtype=np.int64),
                palm_normal=np.asarray(arrays["palm_normal"], dtype=np.float64),
            )
        except KeyError as exc:
            raise ContactkitError(f"hand annotation arrays lack {exc.args[0]!r}") from None


def _validate(
    rest_vertices: np.ndarray,
    faces: np.ndarray,
    rest_joints: np.ndarray,
    skinning_weights: np.ndarray,
    fingertip_vertices: np.ndarray,
    side: str,
) -> None:
    if rest_vertices.ndim != 2 or rest_vertices.shape[1] != 3 or len(rest_vertices) < 4:
        raise ShapeError(f"rest_vertices must be (V, 3) with V >= 4, got {rest_vertices.shape}")
    if not np.isfinite(rest_vertices).all():
        raise MeshError("rest_vertices contains non-finite values")
    num_verts = len(rest_vertices)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ShapeError(f"faces must be (F, 3), got {faces.shape}")
    if faces.min() < 0 or faces.max() >= num_verts:
        raise MeshError(f"faces index vertices outside [0, {num_verts})")
    if rest_joints.shape != (16, 3):
        raise ShapeError(f"rest_joints must be (16, 3) in MANO joint order, got {rest_joints.shape}")
    if skinning_weights.shape != (num_verts, 16):
        raise ShapeError(
            f"skinning_weights must be (V, 16) = ({num_verts}, 16), got {skinning_weights.shape}"
        )
    if fingertip_vertices.shape != (5,):
        raise ShapeError(f"fingertip_vertices must be (5,) (thumb..little), got {fingertip_vertices.shape}")
    if fingertip_vertices.min() < 0 or fingertip_vertices.max() >= num_verts:
        raise ShapeError(f"fingertip_vertices must index [0, {num_verts})")
    if side not in ("right", "left"):
        raise ContactkitError(f"side must be 'right' or 'left', got {side!r}")


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    normals = np.asarray(mesh.vertex_normals, dtype=np.float64)
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    signed_volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0
    return -normals if signed_volume < 0 else normals  # inward-wound mesh: flip


def contact_zones(
    vertices: np.ndarray,
    region: np.ndarray,
    palmar: np.ndarray,
    rest_joints: np.ndarray,
    tip_positions: np.ndarray,
    normal: np.ndarray,
    *,
    pad_fraction: float = 0.75,
    palm_fraction: float = 0.45,
    min_size: int = 3,
) -> dict[str, np.ndarray]:
    """Six contact zones defined geometrically on the rest mesh (ObMan's zones, before grasp statistics).

    - ``thumb``..``little`` (fingertip pads): palmar vertices of the finger's distal region within
      ``pad_fraction`` × (distal link length, last joint → fingertip) of the fingertip.
    - ``palm``: palmar vertices of the two palm regions whose distance to the palm centre (the mean of the
      wrist and the four finger MCPs), measured in the palm plane, is within ``palm_fraction`` × the palm
      width (index MCP ↔ little MCP).

    A zone with fewer than ``min_size`` vertices is completed with the region's palmar vertices nearest to its
    centre. Returns sorted int64 vertex indices per zone.
    """
    zones: dict[str, np.ndarray] = {}
    for f, name in enumerate(FINGER_NAMES):
        tip = tip_positions[f]
        length = np.linalg.norm(tip - rest_joints[FINGER_JOINTS[f][2]])
        cand = np.flatnonzero((region == FINGERTIP_REGIONS[f]) & palmar)
        if len(cand) == 0:
            cand = np.flatnonzero(region == FINGERTIP_REGIONS[f])
        dist = np.linalg.norm(vertices[cand] - tip, axis=1)
        zones[name] = _at_least(cand, dist, dist <= pad_fraction * length, min_size)
    centre = rest_joints[[0, 1, 4, 7, 10]].mean(axis=0)
    width = np.linalg.norm(rest_joints[1] - rest_joints[7])
    cand = np.flatnonzero(((region == PALM_METACARPAL) | (region == PALM_CARPAL)) & palmar)
    off = vertices[cand] - centre
    off = off - np.outer(off @ normal, normal)
    dist = np.linalg.norm(off, axis=1)
    zones["palm"] = _at_least(cand, dist, dist <= palm_fraction * width, min_size)
    return {k: zones[k] for k in ZONE_NAMES}


def _at_least(cand: np.ndarray, dist: np.ndarray, keep: np.ndarray, min_size: int) -> np.ndarray:
    if keep.sum() < min(min_size, len(cand)):
        keep = np.zeros(len(cand), dtype=bool)
        keep[np.argsort(dist)[:min_size]] = True
    return np.sort(cand[keep]).astype(np.int64)


def derive_annotations(
    rest_vertices: np.ndarray,
    faces: np.ndarray,
    rest_joints: np.ndarray,
    skinning_weights: np.ndarray,
    fingertip_vertices: np.ndarray,
    side: Literal["right", "left"] | str,
) -> HandAnnotations:
    """Derive CPF regions and anchors, contact zones and the palmar mask of a hand mesh.

    Args:
        rest_vertices: (V, 3) float, metres, rest pose (any topology; a closed outward-wound surface is best).
        faces: (F, 3) int.
        rest_joints: (16, 3) float, metres, MANO joint order.
        skinning_weights: (V, 16) float, rows summing to 1, MANO joint order.
        fingertip_vertices: (5,) int, thumb, index, middle, ring, little.
        side: "right" or "left".

    Returns:
        :class:`HandAnnotations`. Deterministic for the same input.
    """
    verts = np.asarray(rest_vertices, dtype=np.float64)
    faces_np = np.asarray(faces, dtype=np.int64)
    joints = np.asarray(rest_joints, dtype=np.float64)
    weights = np.asarray(skinning_weights, dtype=np.float64)
    tips_idx = np.asarray(fingertip_vertices, dtype=np.int64)
    _validate(verts, faces_np, joints, weights, tips_idx, side)
    tips = verts[tips_idx]
    joints_t = torch.from_numpy(joints)
    normal = palm_normal(joints_t, side).numpy()
    frames = joint_frames(joints_t, side, rest_tips=torch.from_numpy(tips)).numpy()
    thumb_offset = (joints[list(FINGER_JOINTS[0][1:])] - joints[0]) @ normal
    if thumb_offset.mean() < 0:
        import warnings

        warnings.warn(
            f"the thumb lies on the back of the hand for side={side!r}: "
            "is the side (or the joint order) wrong?",
            stacklevel=2,
        )
    cps = control_points(joints, tips, frames, normal)
    adjacency = vertex_adjacency(faces_np, len(verts))
    region = assign_regions(verts, weights, cps)
    region = make_regions_connected(region, adjacency)
    region = ensure_non_empty(region, verts, cps)
    vnormals = _vertex_normals(verts, faces_np)
    mask = palmar_mask(vnormals, region, cps)
    anchor_faces, anchor_bary, anchor_region = derive_anchors(verts, faces_np, region, cps, side)
    if len(anchor_faces) != NUM_ANCHORS:  # guarded by construction of the control points
        raise ContactkitError(f"derived {len(anchor_faces)} anchors instead of {NUM_ANCHORS}")
    zones = contact_zones(verts, region, mask, joints, tips, normal)
    return HandAnnotations(
        region_of_vertex=region.astype(np.int64),
        region_names=REGION_NAMES,
        anchor_faces=anchor_faces.astype(np.int64),
        anchor_bary=anchor_bary,
        anchor_region=anchor_region,
        contact_zones=zones,
        palmar_mask=mask,
        fingertip_vertices=tips_idx.copy(),
        fingertip_regions=np.asarray(FINGERTIP_REGIONS, dtype=np.int64),
        palm_normal=normal,
    )

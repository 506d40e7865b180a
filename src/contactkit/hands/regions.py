"""CPF's 17 hand subregions (paper 004, appendix A.2), derived from joints, skinning weights and geometry.

Control points sit on the links of the 21-keypoint skeleton (the 16 MANO joints plus the five fingertips):

- each phalanx link (thumb1→thumb2→thumb3→tip, and finger MCP→PIP→DIP→tip) carries one control point at its
  midpoint: 15 control points, one per phalanx region;
- each of the four finger metacarpal links (wrist→MCP) carries two, at its lower (wrist) and upper (MCP)
  third; the thumb's wrist→thumb1 link carries one at its midpoint.

Regions 0..14 are ``{finger}_{proximal,intermediate,distal}`` for thumb, index, middle, ring, little (for the
thumb: the thumb1→thumb2, thumb2→thumb3 and thumb3→tip links). Region 15 ``palm_metacarpal`` merges the four
upper-third control points; region 16 ``palm_carpal`` merges the four lower-third ones and the thumb's base
link (CPF A.3's "Carpal" with five control points, three of which give anchors). Every vertex takes the
region of its nearest control point among those whose link is driven by a joint that skins it (weight ≥
``gate`` × its largest weight), so a vertex never lands on a neighbouring finger; small disconnected islands
of a region are then relabelled by the majority of their neighbours, leaving each region one connected patch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from contactkit.hands.anatomy import FINGER_JOINTS, FINGER_NAMES

PHALANX_NAMES: tuple[str, str, str] = ("proximal", "intermediate", "distal")
#: The 17 region names, in region-id order.
REGION_NAMES: tuple[str, ...] = tuple(f"{f}_{p}" for f in FINGER_NAMES for p in PHALANX_NAMES) + (
    "palm_metacarpal",
    "palm_carpal",
)
PALM_METACARPAL = 15
PALM_CARPAL = 16
#: Region ids of the five distal (fingertip) regions, thumb..little.
FINGERTIP_REGIONS: tuple[int, ...] = tuple(3 * f + 2 for f in range(5))


@dataclass(frozen=True)
class ControlPoints:
    """The 24 control points of CPF A.2 (rest pose).

    Attributes:
        positions: (24, 3) float64, metres.
        region: (24,) int64 region id of each control point.
        driver: (24,) int64 MANO joint whose rotation moves the link (the link's proximal joint).
        palmar: (24, 3) float64 unit direction toward the palmar surface (the splay axis of the driver joint's
            twist–splay–bend frame on phalanges; the palm normal on the palm).
        spread: (24, 3) float64 unit direction along the link (distal), used to orient fingertip anchor cones.
        n_anchors: (24,) int64 anchors this control point gives (3 on fingertips, 0 for the two carpal control
            points CPF leaves out, 1 otherwise).
    """

    positions: np.ndarray
    region: np.ndarray
    driver: np.ndarray
    palmar: np.ndarray
    spread: np.ndarray
    n_anchors: np.ndarray


def control_points(
    rest_joints: np.ndarray, tip_positions: np.ndarray, frames: np.ndarray, palm_normal: np.ndarray
) -> ControlPoints:
    """Control points on the links (CPF A.2), in region order then index, middle, ring, little (, thumb).

    Args:
        rest_joints: (16, 3) float64, metres, MANO order.
        tip_positions: (5, 3) float64, metres, fingertips thumb..little.
        frames: (16, 3, 3) twist–splay–bend frames (columns) from
        :func:`contactkit.hands.anatomy.joint_frames`.
        palm_normal: (3,) unit palmar direction.
    """
    pos, region, driver, palmar, along, n_anchor = [], [], [], [], [], []
    for f, (j1, j2, j3) in enumerate(FINGER_JOINTS):
        chain = [rest_joints[j1], rest_joints[j2], rest_joints[j3], tip_positions[f]]
        for k, j in enumerate((j1, j2, j3)):
            pos.append(0.5 * (chain[k] + chain[k + 1]))
            region.append(3 * f + k)
            driver.append(j)
            palmar.append(frames[j][:, 1])
            along.append(frames[j][:, 0])
            n_anchor.append(3 if k == 2 else 1)
    wrist = rest_joints[0]
    finger_order = (1, 2, 3, 4)  # index, middle, ring, little in FINGER_JOINTS
    carpal_with_anchor = {2, 4}  # middle and little (CPF keeps 3 of the 5 carpal control points)
    for reg, frac in ((PALM_METACARPAL, 2.0 / 3.0), (PALM_CARPAL, 1.0 / 3.0)):
        for f in finger_order:
            mcp = rest_joints[FINGER_JOINTS[f][0]]
            pos.append(wrist + frac * (mcp - wrist))
            region.append(reg)
            driver.append(0)
            palmar.append(palm_normal)
            along.append((mcp - wrist) / np.linalg.norm(mcp - wrist))
            n_anchor.append(1 if reg == PALM_METACARPAL or f in carpal_with_anchor else 0)
    thumb1 = rest_joints[FINGER_JOINTS[0][0]]
    pos.append(0.5 * (wrist + thumb1))
    region.append(PALM_CARPAL)
    driver.append(0)
    palmar.append(palm_normal)
    along.append((thumb1 - wrist) / np.linalg.norm(thumb1 - wrist))
    n_anchor.append(1)
    return ControlPoints(
        np.asarray(pos, dtype=np.float64),
        np.asarray(region, dtype=np.int64),
        np.asarray(driver, dtype=np.int64),
        np.asarray(palmar, dtype=np.float64),
        np.asarray(along, dtype=np.float64),
        np.asarray(n_anchor, dtype=np.int64),
    )


def vertex_adjacency(faces: np.ndarray, num_verts: int) -> sp.csr_matrix:
    """Symmetric (V, V) boolean vertex adjacency of a triangle mesh."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    adj = sp.coo_matrix((np.ones(len(e), dtype=bool), (e[:, 0], e[:, 1])), shape=(num_verts, num_verts))
    return adj.tocsr()


def assign_regions(
    vertices: np.ndarray, skinning_weights: np.ndarray, cps: ControlPoints, *, gate: float = 0.25
) -> np.ndarray:
    """Nearest-control-point region of each vertex, among control points whose driver joint skins it.

    Args:
        vertices: (V, 3) float64, metres, rest pose.
        skinning_weights: (V, 16) float64.
        cps: control points from :func:`control_points`.
        gate: a control point is a candidate for a vertex when the vertex's weight on the control point's
            driver joint is at least ``gate`` times its largest weight.

    Returns:
        (V,) int64 region ids in [0, 17).
    """
    d = np.linalg.norm(vertices[:, None, :] - cps.positions[None, :, :], axis=-1)  # (V, 24)
    w = skinning_weights[:, cps.driver]  # (V, 24)
    allowed = w >= gate * skinning_weights.max(axis=1, keepdims=True)
    allowed &= w > 0
    d = np.where(allowed, d, np.inf)
    none = ~allowed.any(axis=1)
    if none.any():  # cannot happen with normalised weights; keep the plain CPF rule as a safety net
        d[none] = np.linalg.norm(vertices[none, None, :] - cps.positions[None, :, :], axis=-1)
    return cps.region[np.argmin(d, axis=1)]


def make_regions_connected(region: np.ndarray, adjacency: sp.csr_matrix, num_regions: int = 17) -> np.ndarray:
    """Keep each region's largest connected patch; give the other vertices their neighbours' majority region.

    Args:
        region: (V,) int64 region ids.
        adjacency: (V, V) vertex adjacency (see :func:`vertex_adjacency`).

    Returns:
        (V,) int64, each non-empty region a single connected patch (on a connected mesh).
    """
    region = region.copy()
    for _ in range(10):
        changed = False
        for r in range(num_regions):
            idx = np.flatnonzero(region == r)
            if len(idx) == 0:
                continue
            n_comp, lab = connected_components(adjacency[idx][:, idx], directed=False)
            if n_comp > 1:
                keep = np.bincount(lab).argmax()
                region[idx[lab != keep]] = -1
                changed = True
        if not changed:
            break
        _fill_unlabelled(region, adjacency, num_regions)
    return region


def _fill_unlabelled(region: np.ndarray, adjacency: sp.csr_matrix, num_regions: int) -> None:
    """Give every vertex labelled -1 the majority label among its labelled neighbours, growing inward."""
    indptr, indices = adjacency.indptr, adjacency.indices
    while (region < 0).any():
        todo = np.flatnonzero(region < 0)
        new = {}
        for v in todo:
            labels = region[indices[indptr[v] : indptr[v + 1]]]
            labels = labels[labels >= 0]
            if len(labels):
                new[v] = np.bincount(labels, minlength=num_regions).argmax()
        if not new:  # isolated vertices with no labelled neighbour: leave them to the nearest label (rare)
            region[todo] = np.bincount(region[region >= 0], minlength=num_regions).argmax()
            break
        for v, lab in new.items():
            region[v] = lab


def ensure_non_empty(region: np.ndarray, vertices: np.ndarray, cps: ControlPoints) -> np.ndarray:
    """Give an empty region the vertex nearest to its control point (with a warning)."""
    region = region.copy()
    for r in range(len(REGION_NAMES)):
        if (region == r).any():
            continue
        c = cps.positions[cps.region == r].mean(axis=0)
        order = np.argsort(np.linalg.norm(vertices - c, axis=1))
        counts = np.bincount(region, minlength=len(REGION_NAMES))
        v = next(int(i) for i in order if counts[region[i]] > 1)
        warnings.warn(f"hand region {REGION_NAMES[r]!r} came out empty; giving it vertex {v}", stacklevel=3)
        region[v] = r
    return region


def palmar_mask(
    vertex_normals: np.ndarray, region: np.ndarray, cps: ControlPoints, *, min_cos: float = 0.0
) -> np.ndarray:
    """Vertices whose normal points to the palm side of their region's link.

    The palmar direction of a phalanx region is the splay axis of its joint's twist–splay–bend frame (the
    direction the joint's flexion moves toward); for the two palm regions it is the palm normal.

    Args:
        vertex_normals: (V, 3) unit normals, rest pose.
        region: (V,) region ids.
        cps: control points (their ``palmar`` direction, one per region, is used).
        min_cos: threshold on ``normal · palmar``.

    Returns:
        (V,) bool.
    """
    direction = np.zeros((len(REGION_NAMES), 3))
    for r in range(len(REGION_NAMES)):
        p = cps.palmar[cps.region == r].mean(axis=0)
        direction[r] = p / np.linalg.norm(p)
    return np.einsum("ij,ij->i", vertex_normals, direction[region]) > min_cos

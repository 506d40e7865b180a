"""Contact zones of a hand model from grasp statistics (ObMan, Hasson et al. 2019, §3.2).

ObMan counts, for every MANO vertex, how often across its synthetic grasps the vertex lies in the immediate
vicinity of the object (less than 3 mm from the surface); the vertices near the object in at least 8 % of the
grasps form 6 connected regions: the five fingertips and part of the palm. This module re-derives such zones
for any hand model from any :class:`~contactkit.io.grasps.GraspSet`:

1. :func:`contact_frequency`: fraction of grasps in which each vertex has signed distance ``<= distance_m``
   (penetrating vertices count as in contact, signed distance is negative inside);
2. :func:`zones_from_frequency`: vertices with frequency ``>= min_frequency``, split into connected components
   of the hand mesh (edge adjacency), each labelled by the finger of its vertices' hand regions
   (``HandAnnotations.region_of_vertex``; palm regions -> ``palm``). By default (``mode="per_finger"``)
   components do not cross from one finger (or the palm) to another and the strongest component of each label
   is its zone; ``mode="obman"`` keeps plain components and merges those with the same label.

The result uses the format of ``HandAnnotations.contact_zones``: ``{"palm", "thumb", "index", "middle",
"ring", "little"} -> sorted int64 vertex indices``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from contactkit.errors import ContactkitError, ShapeError

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.io.grasps import GraspSet

__all__ = [
    "SHIPPED_ZONES_DIR",
    "ZONE_NAMES",
    "ContactZones",
    "contact_frequency",
    "derive_contact_zones",
    "hand_object_signed_distance",
    "load_shipped_zones",
    "shipped_zones_path",
    "zones_from_frequency",
]

#: Zone names, in the order of ``HandAnnotations.contact_zones``.
ZONE_NAMES: tuple[str, ...] = ("palm", "thumb", "index", "middle", "ring", "little")
#: ObMan's thresholds.
OBMAN_DISTANCE_M = 0.003
OBMAN_MIN_FREQUENCY = 0.08


@dataclass
class ContactZones:
    """Zones derived from grasp statistics.

    Attributes:
        zones: zone name -> sorted (n_i,) int64 vertex indices (all six keys, possibly empty).
        frequency: (V,) float64 fraction of grasps in which each vertex was within the distance threshold.
        component_labels: zone name of each connected component, in component order.
        components: (V,) int64 component id per vertex, -1 for vertices below the frequency threshold.
    """

    zones: dict[str, np.ndarray]
    frequency: np.ndarray
    component_labels: list[str] = field(default_factory=list)
    components: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_components(self) -> int:
        """Number of connected regions above the threshold."""
        return len(self.component_labels)


def contact_frequency(signed_dist: np.ndarray, distance_m: float = OBMAN_DISTANCE_M) -> np.ndarray:
    """Per-vertex fraction of grasps with signed distance ``<= distance_m``.

    Args:
        signed_dist: (N, V) float hand-vertex signed distances to the object, metres, negative inside.
        distance_m: contact distance threshold, metres.

    Returns: (V,) float64 in [0, 1].
    """
    d = np.asarray(signed_dist)
    if d.ndim != 2 or d.shape[0] == 0:
        raise ShapeError(f"signed_dist must have shape (N, V) with N >= 1, got {d.shape}")
    return (d <= distance_m).mean(axis=0).astype(np.float64)


def _finger_of_region(region_names: list[str] | tuple[str, ...]) -> list[str]:
    out = []
    for name in region_names:
        finger = name.split("_")[0]
        out.append(finger if finger in ZONE_NAMES else "palm")
    return out


def _components(mask: np.ndarray, faces: np.ndarray, same: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Connected components of the masked vertices over mesh edges (optionally only edges joining vertices
    of the same label ``same (V,)``); returns ``(component id per vertex or -1, count)``."""
    v = mask.shape[0]
    sel = np.flatnonzero(mask)
    comp_of = np.full(v, -1, dtype=np.int64)
    if sel.size == 0:
        return comp_of, 0
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keep = mask[e[:, 0]] & mask[e[:, 1]]
    if same is not None:
        keep &= same[e[:, 0]] == same[e[:, 1]]
    e = e[keep]
    remap = np.full(v, -1, dtype=np.int64)
    remap[sel] = np.arange(sel.size)
    adj = sp.coo_matrix(
        (np.ones(len(e), dtype=bool), (remap[e[:, 0]], remap[e[:, 1]])), shape=(sel.size, sel.size)
    )
    n_comp, comp = connected_components(adj, directed=False)
    comp_of[sel] = comp
    return comp_of, int(n_comp)


def zones_from_frequency(
    frequency: np.ndarray,
    faces: np.ndarray,
    region_of_vertex: np.ndarray,
    region_names: list[str] | tuple[str, ...],
    *,
    min_frequency: float = OBMAN_MIN_FREQUENCY,
    mode: Literal["per_finger", "obman"] = "per_finger",
) -> ContactZones:
    """Threshold per-vertex contact frequency and group the vertices into labelled connected regions.

    Args:
        frequency: (V,) float contact frequency per hand vertex.
        faces: (F, 3) int hand faces (mesh adjacency).
        region_of_vertex: (V,) int region id of each vertex.
        region_names: names of the regions (``"<finger>_<phalanx>"`` or ``"palm_*"``).
        min_frequency: minimum frequency of a zone vertex (ObMan: 0.08).
        mode: ``"obman"``: connected components of the thresholded vertices, each labelled by the majority
            finger of its vertices, components with the same label merged (a zone may then be several
            regions, and a region touching two fingers goes to one of them). ``"per_finger"`` (default):
            components are formed over edges joining vertices of the same finger (or palm), and for each label
            the component with the largest total frequency is kept, so every zone is one connected region on
            one finger or the palm (ObMan's six regions, even when a few grasps bridge them).
    """
    if mode not in ("per_finger", "obman"):
        raise ShapeError(f"mode must be 'per_finger' or 'obman', got {mode!r}")
    freq = np.asarray(frequency, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    regions = np.asarray(region_of_vertex, dtype=np.int64)
    v = freq.shape[0]
    if freq.ndim != 1:
        raise ShapeError(f"frequency must have shape (V,), got {freq.shape}")
    if regions.shape != (v,):
        raise ShapeError(f"region_of_vertex must have shape ({v},), got {regions.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and faces.max() >= v):
        raise ShapeError(f"faces must have shape (F, 3) with indices < {v}, got {faces.shape}")
    finger_of_region = _finger_of_region(region_names)
    label_of_vertex = np.array(
        [ZONE_NAMES.index(finger_of_region[r]) if 0 <= r < len(finger_of_region) else 0 for r in regions],
        dtype=np.int64,
    )
    mask = freq >= min_frequency
    comp_of, n_comp = _components(mask, faces, label_of_vertex if mode == "per_finger" else None)
    zones: dict[str, list[np.ndarray]] = {z: [] for z in ZONE_NAMES}
    best: dict[str, tuple[float, int]] = {}
    comp_label: list[str] = []
    for c in range(n_comp):
        verts = np.flatnonzero(comp_of == c)
        votes = np.bincount(label_of_vertex[verts], minlength=len(ZONE_NAMES))
        label = ZONE_NAMES[int(np.argmax(votes))]
        comp_label.append(label)
        if mode == "obman":
            zones[label].append(verts)
        else:
            mass = float(freq[verts].sum())
            if label not in best or mass > best[label][0]:
                best[label] = (mass, c)
    if mode == "per_finger":
        kept = sorted(c for _, c in best.values())
        new_ids = np.full(n_comp, -1, dtype=np.int64)
        new_ids[kept] = np.arange(len(kept))
        comp_of = np.where(comp_of >= 0, new_ids[np.maximum(comp_of, 0)], -1)
        comp_label = [comp_label[c] for c in kept]
        for c in kept:
            zones[comp_label[int(new_ids[c])]].append(np.flatnonzero(comp_of == new_ids[c]))
    out = {
        z: (np.unique(np.concatenate(zones[z])) if zones[z] else np.zeros(0)).astype(np.int64)
        for z in ZONE_NAMES
    }
    return ContactZones(zones=out, frequency=freq, component_labels=comp_label, components=comp_of)


def hand_object_signed_distance(
    grasps: GraspSet, hand: HandModel, *, batch_size: int = 64
) -> np.ndarray:
    """(N, V) float64 signed distance of every posed hand vertex to its grasp's object, metres (negative
    inside).

    Hand vertices are posed by ``hand`` from the grasp parameters and mapped into the object frame (``x_obj =
    R^T (x - t)``) before querying the object's exact signed distance.
    """
    n = len(grasps)
    out = []
    rot_all = np.asarray(grasps.object_rotation, dtype=np.float64)
    tr_all = np.asarray(grasps.object_translation, dtype=np.float64)
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        sub = grasps.subset(idx)
        t = sub.hand_tensors(hand.device, hand.dtype)
        betas = t["betas"] if t["betas"].shape[1] else None
        with torch.no_grad():
            posed = hand(t["global_orient"], t["hand_pose"], betas, t["transl"]).vertices
        verts = posed.detach().cpu().double().numpy()
        for j, i in enumerate(idx):
            local = (verts[j] - tr_all[i]) @ rot_all[i]
            obj = grasps.objects[grasps.object_ids[i]]
            out.append(np.asarray(obj.signed_distance(local), dtype=np.float64))
    return np.stack(out)


def derive_contact_zones(
    grasps: GraspSet,
    hand: HandModel | None = None,
    *,
    distance_m: float = OBMAN_DISTANCE_M,
    min_frequency: float = OBMAN_MIN_FREQUENCY,
    mode: Literal["per_finger", "obman"] = "per_finger",
) -> ContactZones:
    """ObMan's contact zones re-derived from ``grasps`` for ``hand`` (default: the grasps' own hand model).

    Args:
        grasps: N >= 1 grasps of any objects.
        hand: hand model matching ``grasps.hand_model`` / ``side``.
        distance_m: a vertex is near the object when its signed distance is ``<= distance_m`` (ObMan: 3 mm).
        min_frequency: fraction of grasps a zone vertex must be near the object in (ObMan: 8 %).
        mode: grouping, see :func:`zones_from_frequency`.
    """
    if len(grasps) == 0:
        raise ContactkitError("grasps must hold at least one grasp to derive contact zones")
    if hand is None:
        from contactkit.hands import load_hand

        hand = load_hand(grasps.hand_model, grasps.side)
    if hand.num_verts != (np.asarray(grasps.hand_vertices).shape[1] if grasps.hand_vertices is not None
                          else hand.num_verts):
        raise ShapeError("grasps.hand_vertices do not match the hand model's vertex count")
    if grasps.hand_vertices is not None:
        verts = np.asarray(grasps.hand_vertices, dtype=np.float64)
        rot = np.asarray(grasps.object_rotation, dtype=np.float64)
        tr = np.asarray(grasps.object_translation, dtype=np.float64)
        sd = np.stack([
            np.asarray(grasps.objects[grasps.object_ids[i]].signed_distance(
                (verts[i] - tr[i]) @ rot[i]), dtype=np.float64)
            for i in range(len(grasps))
        ])
    else:
        sd = hand_object_signed_distance(grasps, hand)
    freq = contact_frequency(sd, distance_m)
    ann = hand.annotations
    result = zones_from_frequency(
        freq,
        hand.faces.detach().cpu().numpy(),
        np.asarray(ann.region_of_vertex),
        list(ann.region_names),
        min_frequency=min_frequency,
        mode=mode,
    )
    empty = [z for z in ZONE_NAMES if result.zones[z].size == 0]
    if empty:
        warnings.warn(f"no vertex reached the contact frequency threshold for zones {empty}", stacklevel=2)
    return result


#: Folder of the contact zones shipped per bundled hand (``<hand>_<side>.npz``, one int64 array per zone name),
#: derived from synthesised grasps by ``scripts/derive_contact_zones.py``.
SHIPPED_ZONES_DIR = Path(__file__).resolve().parent / "contact_zones"


def shipped_zones_path(hand_name: str, side: str) -> Path:
    """Where the statistics zones of a bundled hand are shipped (the file may not exist)."""
    return SHIPPED_ZONES_DIR / f"{hand_name}_{side}.npz"


def load_shipped_zones(hand_name: str, side: str) -> dict[str, np.ndarray] | None:
    """The shipped statistics zones of ``hand_name``/``side`` (zone name -> sorted int64 vertex ids), or None."""
    path = shipped_zones_path(hand_name, side)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {z: np.asarray(data[z], dtype=np.int64) for z in ZONE_NAMES}

"""Learned targets for any hand: a vertex correspondence between the training hand and the user's hand.

The shipped estimators are trained on OpenHand (right). Every contactkit hand shares MANO's joint tree, the 32
anchors and the 17 subregions (:class:`contactkit.hands.annotations.HandAnnotations`), so a correspondence can
be derived by code:

1. pose both hands at zero pose (their rest posture) and align the user's hand onto the training hand by the
   similarity transform (rotation, scale, translation; Umeyama) of their 21 keypoints;
2. a left hand is mirrored through x = 0 first (and at run time the whole scene — hand and object — is mirrored,
   which leaves contact unchanged);
3. each vertex of one hand is matched to the closest point on the other hand's surface *within the same
   subregion* (the faces touching that region), kept as a face and barycentric coordinates.

The estimator then sees proxy training-hand vertices interpolated on the user's posed surface, and its
per-vertex outputs are interpolated back onto the user's vertices. Anchors and regions are shared, so object
contact and PiCR's springs need no mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.targets.contract import ContactTargets

__all__ = [
    "HandCorrespondence",
    "TransferredEstimator",
    "hand_correspondence",
    "rest_alignment",
    "similarity_transform",
]

_MIRROR = np.array([-1.0, 1.0, 1.0])


def similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama: ``(s, R, t)`` minimising ``sum ||s R source_i + t - target_i||^2``; source, target (N, 3)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    xs, xt = source - mu_s, target - mu_t
    cov = xt.T @ xs / len(source)
    u, d, vt = np.linalg.svd(cov)
    fix = np.eye(3)
    fix[2, 2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ fix @ vt
    scale = float(np.trace(np.diag(d) @ fix) / (xs**2).sum(1).mean())
    return scale, rot, mu_t - scale * rot @ mu_s


@dataclass
class HandCorrespondence:
    """Surface correspondence between a source (training) hand and a target (user) hand.

    Attributes:
        source_name, target_name: hand model names.
        mirror: whether the target is the other side (its scene is mirrored through x = 0).
        src_on_target_faces: (Vs, 3) long — target vertex indices of the triangle under each source vertex.
        src_on_target_bary: (Vs, 3) float — barycentric coordinates on it.
        tgt_on_source_faces: (Vt, 3) long — source vertex indices of the triangle under each target vertex.
        tgt_on_source_bary: (Vt, 3) float.
        rms_mm: RMS distance (mm) of the aligned rest-pose source vertices to their matched target points.
    """

    source_name: str
    target_name: str
    mirror: bool
    src_on_target_faces: Tensor
    src_on_target_bary: Tensor
    tgt_on_source_faces: Tensor
    tgt_on_source_bary: Tensor
    rms_mm: float

    def source_vertices(self, target_verts: Tensor) -> Tensor:
        """Proxy source-hand vertices (B, Vs, 3) on posed target vertices (B, Vt, 3) (mirrored if needed)."""
        verts = self.mirror_points(target_verts)
        tri = verts[:, self.src_on_target_faces.to(verts.device)]  # (B, Vs, 3, 3)
        return (tri * self.src_on_target_bary.to(verts).unsqueeze(-1)).sum(-2)

    def to_target(self, values: Tensor) -> Tensor:
        """Per-source-vertex values (B, Vs) interpolated onto the target's vertices -> (B, Vt)."""
        tri = values[:, self.tgt_on_source_faces.to(values.device)]  # (B, Vt, 3)
        return (tri * self.tgt_on_source_bary.to(values)).sum(-1)

    def mask_to_target(self, mask: Tensor) -> Tensor:
        """A (Z, Vs) bool vertex mask moved onto the target: a target vertex is in the mask when most of the
        barycentric weight of its matched source triangle is -> (Z, Vt) bool."""
        return self.to_target(mask.to(torch.float64)) >= 0.5

    def mirror_points(self, x: Tensor) -> Tensor:
        """``x (..., 3)`` mirrored through x = 0 when the two hands are of different sides, else unchanged."""
        if not self.mirror:
            return x
        return x * torch.tensor(_MIRROR, dtype=x.dtype, device=x.device)


def _rest(hand: Any) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pose vertices (V, 3) and keypoints (21, 3), float64, metres."""
    z = hand.zero_params(1)
    with torch.no_grad():
        out = hand(z.global_orient, z.hand_pose, z.betas if hand.num_betas > 0 else None, z.transl)
    return out.vertices[0].detach().cpu().double().numpy(), out.keypoints[0].detach().cpu().double().numpy()


def _region_match(
    points: np.ndarray, point_region: np.ndarray, verts: np.ndarray, faces: np.ndarray, vert_region: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point, the closest point on the faces of its own region: ``(face vertex ids (N, 3), bary (N, 3),
    dist (N,))``."""
    from contactkit.geometry.mesh_distance import closest_points_on_mesh

    n = len(points)
    out_f = np.zeros((n, 3), dtype=np.int64)
    out_b = np.zeros((n, 3))
    out_d = np.zeros(n)
    vt = torch.as_tensor(verts)
    face_regions = vert_region[faces]  # (F, 3)
    for r in np.unique(point_region):
        sel = np.flatnonzero(point_region == r)
        own = faces[(face_regions == r).any(1)]
        if len(own) == 0:  # a region absent from this hand: match anywhere
            own = faces
        res = closest_points_on_mesh(torch.as_tensor(points[sel]).unsqueeze(0), vt, torch.as_tensor(own))
        fi = res.face_idx[0].cpu().numpy()
        out_f[sel] = own[fi]
        out_b[sel] = res.bary[0].detach().cpu().double().numpy()
        out_d[sel] = res.dist[0].detach().cpu().double().numpy()
    return out_f, out_b, out_d


def rest_alignment(source: Any, target: Any) -> np.ndarray:
    """(3, 3) rotation taking the target hand's rest pose onto the source hand's (same side), from the similarity
    transform of their 21 rest keypoints; hands of different canonical orientation share pose parameters only
    after composing their global rotation with it."""
    if source.side != target.side:
        raise ContactkitError("rest_alignment needs two hands of the same side")
    _, src_k = _rest(source)
    _, tgt_k = _rest(target)
    return similarity_transform(tgt_k, src_k)[1]


def hand_correspondence(source: Any, target: Any) -> HandCorrespondence:
    """The region-constrained surface correspondence between two hand models (module docstring).

    Args:
        source: the hand an estimator was trained on (:class:`contactkit.hands.HandModel`).
        target: the user's hand.
    """
    for name, h in (("source", source), ("target", target)):
        if getattr(h, "annotations", None) is None:
            raise ContactkitError(f"{name} hand {getattr(h, 'name', '?')!r} has no annotations (regions)")
    src_v, src_k = _rest(source)
    tgt_v, tgt_k = _rest(target)
    mirror = source.side != target.side
    if mirror:
        tgt_v, tgt_k = tgt_v * _MIRROR, tgt_k * _MIRROR
    scale, rot, shift = similarity_transform(tgt_k, src_k)
    tgt_aligned = scale * tgt_v @ rot.T + shift
    src_faces = source.faces.cpu().numpy()
    tgt_faces = target.faces.cpu().numpy()
    if mirror:
        tgt_faces = tgt_faces[:, ::-1].copy()
    src_reg = np.asarray(source.annotations.region_of_vertex, dtype=np.int64)
    tgt_reg = np.asarray(target.annotations.region_of_vertex, dtype=np.int64)
    s_f, s_b, s_d = _region_match(src_v, src_reg, tgt_aligned, tgt_faces, tgt_reg)
    t_f, t_b, _ = _region_match(tgt_aligned, tgt_reg, src_v, src_faces, src_reg)
    return HandCorrespondence(
        source_name=str(source.name), target_name=str(target.name), mirror=mirror,
        src_on_target_faces=torch.as_tensor(s_f), src_on_target_bary=torch.as_tensor(s_b),
        tgt_on_source_faces=torch.as_tensor(t_f), tgt_on_source_bary=torch.as_tensor(t_b),
        rms_mm=float(np.sqrt((s_d**2).mean()) * 1000.0),
    )


class TransferredEstimator:
    """A contact estimator trained on one hand, run on another through a :class:`HandCorrespondence`.

    ``predict(hand_verts (B, Vt, 3), obj_points (B, P, 3), obj_normals (B, P, 3))`` with the target hand's posed
    vertices returns :class:`ContactTargets` for the target hand (``hand_contact (B, Vt)`` interpolated from the
    source hand's prediction; ``object_contact`` and ``k_atr`` as predicted).
    """

    def __init__(self, estimator: Any, correspondence: HandCorrespondence) -> None:
        self.estimator = estimator
        self.correspondence = correspondence
        self.kind: str = estimator.kind
        self.trained_on = correspondence.source_name

    @torch.no_grad()
    def predict(self, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor) -> ContactTargets:
        c = self.correspondence
        proxy = c.source_vertices(hand_verts.to(torch.float64)).to(hand_verts.dtype)
        out = self.estimator.predict(proxy, c.mirror_points(obj_points), c.mirror_points(obj_normals))
        hand_contact = None if out.hand_contact is None else c.to_target(out.hand_contact).clamp(0.0, 1.0)
        return ContactTargets(hand_contact=hand_contact, object_contact=out.object_contact, k_atr=out.k_atr)

"""CHOIR stage-2 fitting term of paper 002 (Sec. 3.3.b, Eq. 10): Gaussian-weighted distances from every hand
vertex to its ``K`` nearest object points.

``L_rec = sum_i sum_{k<K} Phi_j(v_i) ||v_i - p_k||^2`` with ``j`` the anchor nearest to ``v_i`` and ``Phi_j`` the
unnormalised density (peak 1) of that anchor's contact Gaussian (:func:`contactkit.contact.choir.contact_density`),
``K = 5``. Distances in millimetres squared, divided by 1e3, the scale of ``lambda4 = 10`` used with the
``choir`` preset's other stage-2 terms. The nearest-point and nearest-anchor indices are searched without
gradient (cached between iterations by the state's :class:`~contactkit.contact.terms.NeighbourCache`); the
distances are differentiable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.contact.choir import ChoirField, contact_density, nearest_anchor
from contactkit.contact.terms import HandObjectState
from contactkit.errors import ShapeError

__all__ = ["ChoirNearestPointsTerm", "ContactAnchorSurfaceTerm", "InputAnchorPriorTerm", "contact_anchor_gap",
           "gaussian_weighted_knn_loss"]


def gaussian_weighted_knn_loss(
    verts: Tensor, obj_points: Tensor, anchors: Tensor, field: ChoirField, *, k: int = 5,
    knn_idx: Tensor | None = None, length_unit: float = 1e-3,
) -> Tensor:
    """Eq. 10 in the object frame.

    Args:
        verts: (B, V, 3) float, metres — hand vertices.
        obj_points: (B, P, 3) float, metres — object surface samples.
        anchors: (B, 32, 3) float, metres — the hand's anchors.
        field: the CHOIR field (B rows) whose contact Gaussians weight the vertices.
        k: nearest object points per vertex.
        knn_idx: optional precomputed (B, V, k) int64 indices into ``obj_points``.

    Returns:
        (B,) float — ``sum_i sum_k Phi ||v_i - p_k||^2`` in mm^2, divided by 1e3.
    """
    if k < 1:
        raise ShapeError(f"k must be >= 1, got {k}")
    b, v, _ = verts.shape
    if knn_idx is None:
        knn_idx = torch.cdist(verts.detach(), obj_points.detach()).topk(k, dim=-1, largest=False).indices
    near = torch.gather(obj_points.unsqueeze(1).expand(b, v, -1, 3), 2, knn_idx.unsqueeze(-1).expand(-1, -1, -1, 3))
    sq = ((verts.unsqueeze(2) - near) ** 2).sum(-1) / length_unit**2  # (B, V, k) mm^2
    owner = nearest_anchor(verts, anchors)
    mean = torch.gather(field.gauss_mean.to(verts.dtype), 1, owner.unsqueeze(-1).expand(-1, -1, 3))
    chol = torch.gather(field.gauss_chol.to(verts.dtype), 1, owner.view(b, v, 1, 1).expand(-1, -1, 3, 3))
    dens = contact_density(verts, mean, chol, torch.gather(field.gauss_active, 1, owner))
    return (dens.unsqueeze(-1) * sq).sum((1, 2)) / 1e3


def _to_object_frame(state: HandObjectState, points: Tensor) -> Tensor:
    """World-frame points (B, N, 3) of ``state`` in its object's frame."""
    if state.obj_rotation is None or state.obj_translation is None:
        return points
    return (points - state.obj_translation.unsqueeze(1)) @ state.obj_rotation


@dataclass
class ChoirNearestPointsTerm:
    """Stage-2 ``L_rec`` of paper 002 (Eq. 10) as an energy term; ``field`` in the object frame, rows indexed by
    the state's ``sample_index``."""

    field: ChoirField
    weight: float = 10.0
    k: int = 5
    name: str = "choir_nearest_points"

    def __call__(self, state: HandObjectState) -> Tensor:
        anchors = _to_object_frame(state, state.require_anchors(self.name))
        verts = _to_object_frame(state, state.hand_verts)
        pts = _to_object_frame(state, state.obj_points)
        idx = state.cache.get(
            f"{self.name}_knn",
            lambda: torch.cdist(verts.detach(), pts.detach()).topk(self.k, dim=-1, largest=False).indices,
        )
        return gaussian_weighted_knn_loss(verts, pts, anchors, self.field.index(state.rows), k=self.k, knn_idx=idx)


@dataclass
class InputAnchorPriorTerm:
    """Keeps the hand near its input: mean squared distance (mm^2) of the hand's 32 anchors to the input hand's.

    The anchors are the ones CHOIR's stage 1 fits to the sampled ``d_H``, so this is the input's own CHOIR read as
    a prior next to the sampled one (refinement in the wild: the noisy hand is evidence too). ``anchors`` (N, 32,
    3) float, metres, in the state's (world) frame, rows indexed by the state's ``sample_index``.
    """

    anchors: Tensor
    weight: float = 1.0
    name: str = "input_anchor_prior"
    length_unit: float = 1e-3

    def __call__(self, state: HandObjectState) -> Tensor:
        cur = state.require_anchors(self.name)
        ref = self.anchors[state.rows].to(cur)
        return ((cur - ref) ** 2).sum(-1).mean(-1) / self.length_unit**2


def contact_anchor_gap(verts: Tensor, sdf: Tensor, anchors: Tensor, active: Tensor) -> Tensor:
    """Gap between each in-contact anchor's hand region and the object (contactkit's addition).

    Args:
        verts: (B, V, 3) float, metres — hand vertices (any frame shared with ``anchors``).
        sdf: (B, V) float, metres — signed distance of each vertex to the object (negative inside).
        anchors: (B, A, 3) float, metres — the hand's anchors.
        active: (B, A) bool — anchors whose contact Gaussian is active in the CHOIR.

    Returns:
        (B, A) float, metres — ``relu(min sdf)`` over the vertices whose nearest anchor is ``j`` (0 where an anchor
        owns no vertex or is inactive): how far an active anchor's region floats above the object surface.
    """
    owner = nearest_anchor(verts, anchors)
    big = torch.full((anchors.shape[0], anchors.shape[1], verts.shape[1]), float("inf"), dtype=sdf.dtype,
                     device=sdf.device)
    mask = owner.unsqueeze(1) == torch.arange(anchors.shape[1], device=owner.device).view(1, -1, 1)  # (B, A, V)
    nearest = torch.where(mask, sdf.unsqueeze(1).expand_as(big), big).amin(-1)  # (B, A)
    gap = torch.relu(torch.where(torch.isfinite(nearest), nearest, torch.zeros_like(nearest)))
    return torch.where(active, gap, torch.zeros_like(gap))


@dataclass
class ContactAnchorSurfaceTerm:
    """Brings the hand regions of the CHOIR's in-contact anchors to the object surface (contactkit's addition):
    ``sum_j gap_j^2`` in mm^2 over the anchors whose contact Gaussian is active (:func:`contact_anchor_gap`).
    One-sided: a region already touching or inside is left to the penetration term. It reads only which anchors
    are in contact, not where the Gaussians are (their predicted means are tens of millimetres off in the wild)."""

    field: ChoirField
    weight: float = 1.0
    name: str = "contact_anchor_surface"
    length_unit: float = 1e-3

    def __call__(self, state: HandObjectState) -> Tensor:
        sdf = state.require_sdf(self.name)
        anchors = state.require_anchors(self.name)
        active = self.field.index(state.rows).gauss_active
        gap = contact_anchor_gap(state.hand_verts, sdf, anchors, active) / self.length_unit
        return (gap**2).sum(-1)

"""ObMan contact loss (Hasson et al., CVPR 2019, paper 001, Sec. 3.3).

- Penalisation ``l_alpha(x) = alpha * tanh(x / alpha)``.
- Repulsion ``L_R = sum_{v in Int(Obj)} l_r(d(v, Obj))`` over hand vertices inside the object, ``r = 2 cm``.
- Attraction ``L_A = sum_{i=1..6} l_a(d(C_i ∩ Ext(Obj), Obj))`` over the contact zones (set-to-set distance:
  the smallest distance of the zone's exterior vertices), ``a = 1 cm``.
- ``L_contact = lambda_R L_R + (1 - lambda_R) L_A`` (the paper's best balance is ``lambda_R = 0.5``).
- The supervised hand loss ``L_Hand = L_V + L_J`` (Eq. 1): squared errors of the root-relative hand vertices and
  21 keypoints, which ObMan trains beside ``mu_C L_contact``; with a reference grasp (oracle targets) it is the
  supervision of test-time refinement (:class:`HandSupervisionTerm`).

Distances to the object come from the signed distance of each hand vertex to the object surface (negative inside,
see ``docs/ARCHITECTURE.md``), which replaces the paper's ray-parity inside test plus distance to object vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.contact.terms import HandObjectState
from contactkit.errors import ShapeError

__all__ = [
    "ATTRACTION_DISTANCE",
    "REPULSION_DISTANCE",
    "AttractionTerm",
    "HandSupervisionTerm",
    "RepulsionTerm",
    "attraction_loss",
    "contact_loss",
    "hand_supervision_loss",
    "penalize",
    "repulsion_loss",
    "zone_mask",
]

REPULSION_DISTANCE = 0.02
ATTRACTION_DISTANCE = 0.01


def penalize(x: Tensor, alpha: float) -> Tensor:
    """``alpha * tanh(x / alpha)`` elementwise; ``x`` and ``alpha`` in metres."""
    return alpha * torch.tanh(x / alpha)


def repulsion_loss(sdf: Tensor, *, r: float = REPULSION_DISTANCE) -> Tensor:
    """Repulsion of hand vertices inside the object.

    Args:
        sdf: (B, V) float, metres, negative inside.
        r: characteristic distance, metres.

    Returns:
        (B,) float, metres: ``sum_v [sdf_v < 0] r tanh(-sdf_v / r)``.
    """
    depth = torch.relu(-sdf)
    return penalize(depth, r).sum(-1)


def zone_mask(zones: dict[str, object] | list[object], num_verts: int) -> Tensor:
    """(Z, V) bool mask from a dict or list of vertex-index arrays (e.g. ``hand.annotations.contact_zones``)."""
    items = list(zones.values()) if isinstance(zones, dict) else list(zones)
    mask = torch.zeros(len(items), num_verts, dtype=torch.bool)
    for i, idx in enumerate(items):
        mask[i, torch.as_tensor(idx, dtype=torch.long)] = True
    return mask


def attraction_loss(sdf: Tensor, zones: Tensor, *, a: float = ATTRACTION_DISTANCE) -> Tensor:
    """Attraction of the contact zones' exterior vertices.

    Args:
        sdf: (B, V) float, metres, negative inside.
        zones: (Z, V) or (B, Z, V) bool — vertices of each contact zone.
        a: characteristic distance, metres.

    Returns:
        (B,) float, metres: ``sum_z a tanh(min_{v in zone z, sdf_v >= 0} sdf_v / a)``; a zone without exterior
        vertices contributes 0.
    """
    if zones.ndim == 2:
        zones = zones.unsqueeze(0).expand(sdf.shape[0], -1, -1)
    if zones.ndim != 3 or zones.shape[0] != sdf.shape[0] or zones.shape[2] != sdf.shape[1]:
        raise ShapeError(
            f"zones must have shape (Z, V) or (B, Z, V) with B, V = {tuple(sdf.shape)}, got {tuple(zones.shape)}"
        )
    outside = zones.to(torch.bool) & (sdf >= 0).unsqueeze(1)
    big = torch.full_like(sdf, float("inf")).unsqueeze(1).expand_as(outside)
    dist = torch.where(outside, sdf.unsqueeze(1).expand_as(outside), big)
    closest = dist.min(dim=-1).values
    has = torch.isfinite(closest)
    closest = torch.where(has, closest, torch.zeros_like(closest))
    return penalize(closest, a).sum(-1)


def contact_loss(
    sdf: Tensor,
    zones: Tensor,
    *,
    lambda_r: float = 0.5,
    r: float = REPULSION_DISTANCE,
    a: float = ATTRACTION_DISTANCE,
) -> Tensor:
    """``lambda_R * L_R + (1 - lambda_R) * L_A`` (Eq. 5); (B,) float, metres."""
    if not 0.0 <= lambda_r <= 1.0:
        raise ShapeError(f"lambda_r must lie in [0, 1], got {lambda_r}")
    return lambda_r * repulsion_loss(sdf, r=r) + (1.0 - lambda_r) * attraction_loss(sdf, zones, a=a)


def hand_supervision_loss(
    verts: Tensor, keypoints: Tensor, ref_verts: Tensor, ref_keypoints: Tensor, *, length_unit: float = 1e-3
) -> Tensor:
    """ObMan's ``L_V + L_J``: mean squared error of root-relative vertices plus that of root-relative keypoints.

    The root is keypoint 0 (the wrist), so the loss ignores a common translation of the hand (ObMan supervises
    root-relative positions).

    Args:
        verts: (B, V, 3) float, metres; keypoints: (B, 21, 3) float, metres.
        ref_verts, ref_keypoints: the reference, same shapes.
        length_unit: errors are measured in this unit (metres; default millimetres).

    Returns:
        (B,) float, ``length_unit`` squared.
    """
    if verts.shape != ref_verts.shape or keypoints.shape != ref_keypoints.shape or keypoints.ndim != 3:
        raise ShapeError(
            f"verts/ref_verts and keypoints/ref_keypoints must match, got {tuple(verts.shape)} vs "
            f"{tuple(ref_verts.shape)} and {tuple(keypoints.shape)} vs {tuple(ref_keypoints.shape)}"
        )
    root, ref_root = keypoints[:, :1], ref_keypoints[:, :1]
    dv = ((verts - root) - (ref_verts - ref_root)) / length_unit
    dk = ((keypoints - root) - (ref_keypoints - ref_root)) / length_unit
    return (dv * dv).sum(-1).mean(-1) + (dk * dk).sum(-1).mean(-1)


@dataclass
class HandSupervisionTerm:
    """ObMan's supervised hand loss ``L_V + L_J`` (mm^2) to reference vertices ``(N0, V, 3)`` and keypoints
    ``(N0, 21, 3)``, metres, indexed by ``state.sample_index``."""

    ref_verts: Tensor
    ref_keypoints: Tensor
    weight: float = 1.0
    name: str = "hand_supervision"
    length_unit: float = 1e-3

    def __call__(self, state: HandObjectState) -> Tensor:
        dtype = state.hand_verts.dtype
        return hand_supervision_loss(
            state.hand_verts, state.keypoints, self.ref_verts[state.rows].to(dtype),
            self.ref_keypoints[state.rows].to(dtype), length_unit=self.length_unit,
        )


@dataclass
class RepulsionTerm:
    """ObMan repulsion ``L_R`` from ``state.hand_sdf``."""

    weight: float = 0.5
    name: str = "repulsion"
    r: float = REPULSION_DISTANCE

    def __call__(self, state: HandObjectState) -> Tensor:
        return repulsion_loss(state.require_sdf(self.name), r=self.r)


@dataclass
class AttractionTerm:
    """ObMan attraction ``L_A``; ``zones`` is (Z, V) bool shared by all samples or (N0, Z, V) per sample."""

    zones: Tensor
    weight: float = 0.5
    name: str = "attraction"
    a: float = ATTRACTION_DISTANCE

    def __call__(self, state: HandObjectState) -> Tensor:
        zones = self.zones if self.zones.ndim == 2 else self.zones[state.rows]
        return attraction_loss(state.require_sdf(self.name), zones.to(state.hand_verts.device), a=self.a)

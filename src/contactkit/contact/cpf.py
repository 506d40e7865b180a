"""CPF: the contact potential field (Yang et al., ICCV 2021, paper 004, Sec. 4 and 5.3).

A grasp is a system of springs:

- *attractive springs* between hand anchors ``a_i`` and object points ``v_j``, rest length 0, energy
  ``E_atr = 1/2 k_atr ||a_i - v_j||^2`` (Eq. 1); ground-truth elasticities follow the cosine heuristic
  ``k_atr = 0.5 cos(pi d / s) + 0.5`` with ``s = 20 mm``, rejecting pairs with ``d >= 20 mm`` (Eq. 4);
- *repulsive springs* along object normals, energy ``E_rpl = 1/2 k_rpl (exp(-dl))^2`` with ``dl`` the projection
  of ``v_h - v_o`` on the object normal ``n_o`` (Eq. 2), ``k_rpl = 1e-3``, only for pairs closer than 20 mm;
- the A-MANO anatomical cost (:func:`contactkit.hands.anatomy.anatomy_cost`) and an offset term that keeps the
  refined vertices close to their initial estimate (Eq. 11, GeO).

Units: as in CPF, spring lengths enter the energies in **millimetres** (``length_unit = 1e-3``), the scale at
which ``s = 20 mm`` and the exponential repulsion are meaningful; inputs stay in metres.

Documented choices: the repulsive spring of a hand vertex is taken with its closest object surface point, for
which the normal projection equals the signed distance (``dl = sdf``, negative inside), so penetrating vertices
are pushed harder; the paper writes ``|dl|``, which would weaken the push inside the object.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.contact.terms import HandObjectState, check_points
from contactkit.errors import ShapeError

__all__ = [
    "K_RPL",
    "SPRING_SCALE",
    "AnatomyTerm",
    "AttractiveSpringTerm",
    "OffsetTerm",
    "RepulsiveSpringTerm",
    "attractive_energy",
    "oracle_springs",
    "repulsive_energy",
    "spring_elasticity",
]

SPRING_SCALE = 0.02
K_RPL = 1e-3
REPULSION_RANGE = 0.02
LENGTH_UNIT = 1e-3


def spring_elasticity(dist: Tensor, *, s: float = SPRING_SCALE) -> Tensor:
    """Cosine heuristic ``0.5 cos(pi d / s) + 0.5`` for ``d < s``, else 0 (Eq. 4).

    Args:
        dist: (...) float, metres — anchor-to-object-point distance at the reference pose.
        s: scale factor, metres (20 mm).

    Returns:
        (...) float in [0, 1].
    """
    k = 0.5 * torch.cos(math.pi * dist / s) + 0.5
    return torch.where(dist < s, k, torch.zeros_like(k))


def attractive_energy(
    anchors: Tensor, obj_points: Tensor, k_atr: Tensor, *, length_unit: float = LENGTH_UNIT
) -> Tensor:
    """``sum_ij 1/2 k_ij ||a_i - v_j||^2`` with lengths in units of ``length_unit`` metres.

    Args:
        anchors: (B, A, 3) float, metres.
        obj_points: (B, P, 3) float, metres.
        k_atr: (B, A, P) float >= 0 — elasticity of each anchor/object-point spring (0 = no spring).

    Returns:
        (B,) float.
    """
    check_points("anchors", anchors)
    check_points("obj_points", obj_points, batch=anchors.shape[0])
    if k_atr.shape != (anchors.shape[0], anchors.shape[1], obj_points.shape[1]):
        raise ShapeError(
            f"k_atr must have shape (B, A, P) = {(anchors.shape[0], anchors.shape[1], obj_points.shape[1])}, "
            f"got {tuple(k_atr.shape)}"
        )
    a = anchors / length_unit
    p = obj_points / length_unit
    sq = (a * a).sum(-1, keepdim=True) + (p * p).sum(-1).unsqueeze(1) - 2.0 * a @ p.transpose(1, 2)
    return 0.5 * (k_atr * sq.clamp(min=0.0)).sum((1, 2))


def repulsive_energy(
    sdf: Tensor,
    *,
    k_rpl: float = K_RPL,
    max_distance: float = REPULSION_RANGE,
    length_unit: float = LENGTH_UNIT,
    linear_beyond: float = 5e-3,
) -> Tensor:
    """``sum_v 1/2 k_rpl exp(-dl_v)^2`` over hand vertices within ``max_distance`` of the object (Eq. 2).

    For penetrations deeper than ``linear_beyond`` (metres) the exponential is continued linearly so that a badly
    initialised hand does not produce overflowing energies (a contactkit safeguard).

    Args:
        sdf: (B, V) float, metres — signed distance of each hand vertex (negative inside); it equals the normal
            projection ``(v_h - v_o) . n_o`` for the closest surface point ``v_o``.

    Returns:
        (B,) float.
    """
    dl = sdf / length_unit
    cap = -linear_beyond / length_unit
    inner = 0.5 * k_rpl * torch.exp(-2.0 * dl.clamp(min=cap))
    # beyond ``linear_beyond`` of penetration the energy continues along its tangent (finite, still pushing out)
    energy = torch.where(dl >= cap, inner, inner * (1.0 + 2.0 * (cap - dl)))
    return torch.where(sdf < max_distance, energy, torch.zeros_like(energy)).sum(-1)


def oracle_springs(
    ref_anchors: Tensor,
    ref_hand_verts: Tensor,
    obj_points: Tensor,
    anchor_region: Tensor,
    region_of_vertex: Tensor,
    *,
    contact_threshold: float = 0.005,
    s: float = SPRING_SCALE,
) -> Tensor:
    """Attractive-spring elasticities measured on a reference grasp (what PiCR learns to predict).

    For every object point whose nearest reference hand vertex lies within ``contact_threshold`` (vertex
    contact), the subregion of that vertex selects its anchors (Alg. 1); each spring gets the cosine elasticity
    of the reference anchor-to-point distance, zero at 20 mm or more.

    Args:
        ref_anchors: (B, 32, 3) float, metres — reference anchors.
        ref_hand_verts: (B, V, 3) float, metres — reference hand vertices.
        obj_points: (B, P, 3) float, metres — object points, same frame.
        anchor_region: (32,) int64 — subregion of each anchor.
        region_of_vertex: (V,) int64 — subregion of each hand vertex.

    Returns:
        (B, 32, P) float in [0, 1].
    """
    check_points("ref_anchors", ref_anchors)
    check_points("ref_hand_verts", ref_hand_verts, batch=ref_anchors.shape[0])
    check_points("obj_points", obj_points, batch=ref_anchors.shape[0])
    with torch.no_grad():
        d_hand = torch.cdist(obj_points, ref_hand_verts)  # (B, P, V)
        dmin, vidx = d_hand.min(-1)
        region = region_of_vertex.to(vidx.device)[vidx]  # (B, P)
        same = anchor_region.to(vidx.device).view(1, -1, 1) == region.unsqueeze(1)  # (B, 32, P)
        in_contact = (dmin <= contact_threshold).unsqueeze(1)
        dist = torch.cdist(ref_anchors, obj_points)
        k = spring_elasticity(dist, s=s)
        return torch.where(same & in_contact, k, torch.zeros_like(k))


@dataclass
class AttractiveSpringTerm:
    """Attractive springs; ``k_atr`` is (N0, 32, P) indexed by ``state.sample_index``."""

    k_atr: Tensor
    weight: float = 1.0
    name: str = "attractive_springs"
    length_unit: float = LENGTH_UNIT

    def __call__(self, state: HandObjectState) -> Tensor:
        anchors = state.require_anchors(self.name)
        k = self.k_atr[state.rows].to(anchors.dtype)
        return attractive_energy(anchors, state.obj_points, k, length_unit=self.length_unit)


@dataclass
class RepulsiveSpringTerm:
    """Repulsive springs along object normals, from ``state.hand_sdf``."""

    weight: float = 1.0
    name: str = "repulsive_springs"
    k_rpl: float = K_RPL
    max_distance: float = REPULSION_RANGE
    length_unit: float = LENGTH_UNIT

    def __call__(self, state: HandObjectState) -> Tensor:
        return repulsive_energy(
            state.require_sdf(self.name), k_rpl=self.k_rpl, max_distance=self.max_distance,
            length_unit=self.length_unit,
        )


@dataclass
class AnatomyTerm:
    """A-MANO anatomical cost ``cost_fn(hand_pose (B, 45)) -> (B,)`` on ``state.params['hand_pose']``."""

    cost_fn: Callable[[Tensor], Tensor]
    weight: float = 1.0
    name: str = "anatomy"

    def __call__(self, state: HandObjectState) -> Tensor:
        if "hand_pose" not in state.params:
            raise ShapeError("term 'anatomy' needs state.params['hand_pose'] (B, 45) axis-angle")
        return self.cost_fn(state.params["hand_pose"])


@dataclass
class OffsetTerm:
    """Mean squared offset (in units of ``length_unit``) of hand vertices from ``state``'s initial vertices.

    ``init_verts`` is (N0, V, 3) metres, indexed by ``state.sample_index``.
    """

    init_verts: Tensor
    weight: float = 1.0
    name: str = "offset"
    length_unit: float = LENGTH_UNIT

    def __call__(self, state: HandObjectState) -> Tensor:
        init = self.init_verts[state.rows].to(state.hand_verts.dtype)
        diff = (state.hand_verts - init) / self.length_unit
        return (diff * diff).sum(-1).mean(-1)

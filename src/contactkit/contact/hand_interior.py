"""Object surface points inside the hand: the penetration the hand-vertex SDF cannot see.

:class:`~contactkit.contact.diffcontact.SDFPenetrationTerm` penalises hand vertices inside the object. An object
thinner than the hand (a 1 cm ring, a 1.5 cm handle) can sit wholly inside a finger or the palm with no hand vertex
inside it, so that term is zero while the intersection volume is tens of cm³. This term looks from the object's
side: an object surface point ``p`` whose nearest hand vertex ``v`` (unit outward normal ``n``) has
``(p - v) . n < 0`` is inside the hand (the nearest-vertex normal test of GraspTTA's interpenetration loss;
contactkit's weight and depth). Only points within ``reach`` of their nearest vertex count, so that the sign test
is not applied where the nearest vertex says nothing about inside/outside (points far from the hand).

Units: metres. Signed distances are negative inside the hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.contact.diffcontact import C_PEN, nearest_index
from contactkit.contact.terms import HandObjectState
from contactkit.geometry.normals import vertex_normals

__all__ = ["ObjectInHandTerm", "object_in_hand_depth"]

#: object points farther than this from their nearest hand vertex are never counted as inside (metres): half
#: the thickness of the palm, the thickest part of a hand
REACH_M = 0.02


def object_in_hand_depth(
    hand_verts: Tensor, hand_normals: Tensor, obj_points: Tensor, nearest_idx: Tensor, *, reach: float = REACH_M
) -> Tensor:
    """Depth of each object point inside the hand by the nearest-vertex normal test.

    Args:
        hand_verts: (B, V, 3) metres; hand_normals: (B, V, 3) unit outward vertex normals.
        obj_points: (B, P, 3) metres.
        nearest_idx: (B, P) int64, index of each object point's nearest hand vertex.
        reach: points farther than this (metres) from their nearest vertex get depth 0.

    Returns:
        (B, P) depth in metres, >= 0 (0 outside the hand or out of reach); differentiable in the positions.
    """
    take = nearest_idx.unsqueeze(-1).expand(-1, -1, 3)
    v = torch.gather(hand_verts, 1, take)
    n = torch.gather(hand_normals, 1, take)
    offset = obj_points - v
    depth = torch.relu(-(offset * n).sum(-1))
    near = offset.detach().norm(dim=-1) < reach
    return torch.where(near, depth, torch.zeros_like(depth))


@dataclass
class ObjectInHandTerm:
    """Sum over object points of their depth inside the hand beyond ``depth`` (metres), per sample ``(B,)``.

    ``faces`` (F, 3) int64 are the hand's faces (for the vertex normals when ``state.hand_normals`` is None).
    The nearest-vertex search is shared with the object contact term (cache key ``object_to_hand``).
    """

    faces: Tensor
    weight: float = 1.0
    name: str = "object_in_hand"
    depth: float = C_PEN
    reach: float = REACH_M

    def __call__(self, state: HandObjectState) -> Tensor:
        verts, pts = state.hand_verts, state.obj_points
        idx = state.cache.get("object_to_hand", lambda: nearest_index(pts, verts))
        if idx.shape != pts.shape[:2]:
            state.cache.clear()
            idx = state.cache.get("object_to_hand", lambda: nearest_index(pts, verts))
        normals = state.hand_normals
        if normals is None:
            normals = vertex_normals(verts, torch.as_tensor(self.faces, dtype=torch.long, device=verts.device))
        d = object_in_hand_depth(verts, normals.to(verts.dtype), pts, idx, reach=self.reach)
        return torch.relu(d - self.depth).sum(-1)

"""Physical affinity loss (Zhuang & Mu, ICMR 2021, paper 003, Sec. 3.3).

Given the 21 hand keypoints ``H_i`` and the object's 8-corner bounding box:

1. every box face ``Pi_j`` is sampled with ``N x N`` points by bilinear interpolation of its 4 corners;
2. ``d(H_i, Pi_j)`` is the smallest distance from ``H_i`` to the face's points and ``supp(H_i, Pi_j)`` the point
   reaching it (Eq. 3);
3. the ``N_c = 10`` support points with the smallest distances are the candidate contacts ``C`` (Eq. 4);
4. candidates with ``d > eta L`` are dropped (``eta = 0.2``; ``L`` = mean side length of the box's upper and
   lower faces, the object's "radius") (Eq. 5);
5. each valid contact ``P_i`` gets the direction ``v_i = P_i - R_i`` from its projection ``R_i`` on the central
   axis (the line through the centres of the upper and lower faces), and the loss is the mean pairwise cosine
   similarity of these directions (Eq. 6): low when the contacts surround the axis.

With ``face_samples=None`` the support point is the exact closest point of the face rectangle (the limit of many
samples), which also carries a gradient to the hand keypoints; the paper's sampled faces give a gradient only
through the object box.

Box convention: corners in the order of :func:`box_corners` — index bits ``(x, y, z)`` with ``z`` the box's
"up" axis; the upper face is ``z = max``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.contact.terms import HandObjectState, check_points
from contactkit.errors import ShapeError

__all__ = [
    "BOX_FACES",
    "KeypointTerm",
    "KeypointContactTerm",
    "ETA",
    "NUM_CANDIDATES",
    "AffinityTerm",
    "box_corners",
    "physical_affinity_loss",
    "support_points",
]

NUM_CANDIDATES = 10
ETA = 0.2

#: Corner indices of the 6 faces, each as (c00, c10, c01, c11) for bilinear interpolation.
BOX_FACES = (
    (0, 1, 2, 3),  # z = min (lower)
    (4, 5, 6, 7),  # z = max (upper)
    (0, 1, 4, 5),  # y = min
    (2, 3, 6, 7),  # y = max
    (0, 2, 4, 6),  # x = min
    (1, 3, 5, 7),  # x = max
)


def box_corners(points: Tensor) -> Tensor:
    """Axis-aligned 8-corner box of ``points (B, N, 3)`` -> (B, 8, 3); corner k has bits (x=k&1, y=k>>1&1, z=k>>2)."""
    check_points("points", points)
    lo = points.amin(1)
    hi = points.amax(1)
    corners = []
    for k in range(8):
        sel = torch.tensor([k & 1, (k >> 1) & 1, (k >> 2) & 1], dtype=torch.bool, device=points.device)
        corners.append(torch.where(sel, hi, lo))
    return torch.stack(corners, 1)


def support_points(keypoints: Tensor, corners: Tensor, face_samples: int | None = None) -> tuple[Tensor, Tensor]:
    """Distances and support points between keypoints and the 6 box faces.

    Args:
        keypoints: (B, K, 3) float, metres.
        corners: (B, 8, 3) float, metres, in :func:`box_corners` order.
        face_samples: N for an N x N bilinear sampling of each face (paper); None for the exact closest point
            of each (planar parallelogram) face.

    Returns:
        ``(dist (B, K, 6), supp (B, K, 6, 3))``.
    """
    faces = torch.tensor(BOX_FACES, device=corners.device)
    c = corners[:, faces]  # (B, 6, 4, 3)
    origin, e1, e2 = c[:, :, 0], c[:, :, 1] - c[:, :, 0], c[:, :, 2] - c[:, :, 0]
    if face_samples is None:
        rel = keypoints.unsqueeze(2) - origin.unsqueeze(1)  # (B, K, 6, 3)
        n1 = (e1 * e1).sum(-1).clamp(min=1e-18).unsqueeze(1)
        n2 = (e2 * e2).sum(-1).clamp(min=1e-18).unsqueeze(1)
        u = ((rel * e1.unsqueeze(1)).sum(-1) / n1).clamp(0.0, 1.0)
        v = ((rel * e2.unsqueeze(1)).sum(-1) / n2).clamp(0.0, 1.0)
        supp = origin.unsqueeze(1) + u.unsqueeze(-1) * e1.unsqueeze(1) + v.unsqueeze(-1) * e2.unsqueeze(1)
        dist = torch.sqrt(((keypoints.unsqueeze(2) - supp) ** 2).sum(-1) + 1e-18)
        return dist, supp
    if face_samples < 2:
        raise ShapeError(f"face_samples must be >= 2 or None, got {face_samples}")
    t = torch.linspace(0.0, 1.0, face_samples, dtype=corners.dtype, device=corners.device)
    uu, vv = torch.meshgrid(t, t, indexing="ij")
    uu, vv = uu.reshape(-1), vv.reshape(-1)
    c00, c10, c01, c11 = c[:, :, 0], c[:, :, 1], c[:, :, 2], c[:, :, 3]
    w = [((1 - uu) * (1 - vv)), (uu * (1 - vv)), ((1 - uu) * vv), (uu * vv)]
    pts = torch.zeros_like(c00).unsqueeze(2) * uu.view(1, 1, -1, 1)
    for wk, ck in zip(w, (c00, c10, c01, c11), strict=True):
        pts = pts + wk.view(1, 1, -1, 1) * ck.unsqueeze(2)
    # pts: (B, 6, S, 3)
    d = torch.cdist(keypoints.unsqueeze(1).expand(-1, 6, -1, -1), pts)  # (B, 6, K, S)
    dist, idx = d.min(-1)
    supp = torch.gather(pts, 2, idx.unsqueeze(-1).expand(-1, -1, -1, 3))  # (B, 6, K, 3)
    return dist.transpose(1, 2), supp.transpose(1, 2)


def physical_affinity_loss(
    keypoints: Tensor,
    corners: Tensor,
    *,
    num_candidates: int = NUM_CANDIDATES,
    eta: float = ETA,
    face_samples: int | None = None,
) -> Tensor:
    """Diversity of contact directions around the box's central axis (Eqs. 3-6).

    Args:
        keypoints: (B, 21, 3) float, metres.
        corners: (B, 8, 3) float, metres (:func:`box_corners` order, z up).

    Returns:
        (B,) float in [-1, 1]; 0 where fewer than two valid contacts remain.
    """
    check_points("keypoints", keypoints)
    check_points("corners", corners, batch=keypoints.shape[0], count=8)
    bsz = keypoints.shape[0]
    dist, supp = support_points(keypoints, corners, face_samples)
    flat_d = dist.reshape(bsz, -1)
    flat_s = supp.reshape(bsz, -1, 3)
    k = min(num_candidates, flat_d.shape[1])
    top_d, top_i = torch.topk(flat_d, k, dim=1, largest=False)
    cand = torch.gather(flat_s, 1, top_i.unsqueeze(-1).expand(-1, -1, 3))  # (B, k, 3)
    lower = corners[:, 0:4]
    upper = corners[:, 4:8]
    side = lambda f: ((f[:, 1] - f[:, 0]).norm(dim=-1) + (f[:, 2] - f[:, 0]).norm(dim=-1)  # noqa: E731
                      + (f[:, 3] - f[:, 2]).norm(dim=-1) + (f[:, 3] - f[:, 1]).norm(dim=-1)) / 4.0
    radius = 0.5 * (side(lower) + side(upper))  # (B,)
    valid = top_d <= eta * radius.unsqueeze(1)
    c_lo, c_hi = lower.mean(1), upper.mean(1)
    axis = c_hi - c_lo
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    rel = cand - c_lo.unsqueeze(1)
    proj = (rel * axis.unsqueeze(1)).sum(-1, keepdim=True) * axis.unsqueeze(1)
    vec = rel - proj
    unit = vec / torch.sqrt((vec * vec).sum(-1, keepdim=True) + 1e-18)
    cos = unit @ unit.transpose(1, 2)  # (B, k, k)
    pair = valid.unsqueeze(2) & valid.unsqueeze(1)
    pair = torch.triu(pair, diagonal=1)
    pf = pair.to(cos.dtype)
    count = pf.sum((1, 2))
    return (cos * pf).sum((1, 2)) / count.clamp(min=1.0)


@dataclass
class AffinityTerm:
    """Physical affinity on ``state.keypoints`` with box ``corners_object (N0, 8, 3)`` in the object frame."""

    corners_object: Tensor
    weight: float = 1.0
    name: str = "physical_affinity"
    num_candidates: int = NUM_CANDIDATES
    eta: float = ETA
    face_samples: int | None = None

    def __call__(self, state: HandObjectState) -> Tensor:
        corners = self.corners_object[state.rows].to(state.keypoints.dtype)
        if state.obj_rotation is not None and state.obj_translation is not None:
            corners = corners @ state.obj_rotation.transpose(1, 2) + state.obj_translation.unsqueeze(1)
        return physical_affinity_loss(
            state.keypoints, corners, num_candidates=self.num_candidates, eta=self.eta,
            face_samples=self.face_samples,
        )


@dataclass
class KeypointContactTerm:
    """Mean distance (metres) of the hand keypoints to their nearest object surface sample (contactkit).

    The affinity loss scores contacts it assumes exist: keypoints farther than ``eta L`` from the box are not
    contacts and get no gradient, so a hand placed centimetres off stays there. In the wild this term brings the
    keypoints onto the object, the grasp the affinity loss then shapes; penetration and anatomy keep the hand
    outside the object and plausible. ``state.keypoints (B, K, 3)``, ``state.obj_points (B, P, 3)`` -> (B,).
    """

    weight: float = 1.0
    name: str = "keypoint_contact"

    def __call__(self, state: HandObjectState) -> Tensor:
        dist = torch.cdist(state.keypoints, state.obj_points, compute_mode="donot_use_mm_for_euclid_dist")
        return dist.amin(-1).mean(-1)


@dataclass
class KeypointTerm:
    """Mean squared keypoint error (mm^2) to target keypoints ``(N0, 21, 3)`` — the supervised 3D loss that
    paper 003 trains beside the affinity loss (oracle targets)."""

    target: Tensor
    weight: float = 1.0
    name: str = "keypoints"
    length_unit: float = 1e-3

    def __call__(self, state: HandObjectState) -> Tensor:
        tgt = self.target[state.rows].to(state.keypoints.dtype)
        diff = (state.keypoints - tgt) / self.length_unit
        return (diff * diff).sum(-1).mean(-1)

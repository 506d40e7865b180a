"""DiffContact: ContactOpt's differentiable contact model (Grady et al., CVPR 2021, paper 000, Sec. 3.2-3.3).

A virtual capsule sits on every object point ``p`` along its outward normal ``n``: its principal segment is
``p + alpha n`` for ``alpha in [-c_bot, c_top]``. With ``phi(x)`` the distance of ``x`` to that segment, the
contact value is ``min(c_rad / phi, 1)``: 1 inside the capsule, falling off as ``c_rad / phi`` outside.
Defaults are the paper's: ``c_top = 0.5 mm``, ``c_bot = 1 mm``, ``c_rad = 1 mm`` (so contact extends 2 mm into
the object). The contact loss is asymmetric (``missing_weight = lambda = 3`` for missing contact, where the
prediction is below the target) and penetration beyond ``c_pen = 2 mm`` is penalised.

Implementation notes (documented departures):

- The object contact map pairs each object point with its Euclidean-nearest hand vertex (index search without
  gradient via :func:`contactkit.geometry.knn.nearest_points`) and evaluates the capsule distance on that pair;
  the paper takes the vertex of smallest capsule distance. Both agree when the hand touches the capsule.
- The hand contact map used in optimisation is the continuous-surface limit of the capsule model: for a hand
  vertex at signed distance ``s`` from the object, the closest surface point's capsule gives
  ``phi = s - c_top`` above the surface and ``phi = -s - c_bot`` below (0 in between). It needs only the object
  SDF. :func:`hand_contact_map` gives the point-sampled version.
- The penetration term penalises hand vertices deeper than ``c_pen`` with the object SDF (sum of excess depths,
  metres); :func:`penetration_along_normals` is the paper's Eq. 3 on object points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from contactkit.contact.terms import HandObjectState, NeighbourCache, check_points
from contactkit.errors import ShapeError

__all__ = [
    "C_BOT",
    "C_PEN",
    "C_RAD",
    "C_TOP",
    "MISSING_WEIGHT",
    "HandContactTerm",
    "ObjectContactTerm",
    "SDFPenetrationTerm",
    "asymmetric_contact_loss",
    "capsule_contact",
    "capsule_distance",
    "coordinate_planes",
    "hand_contact_from_sdf",
    "hand_contact_loss",
    "hand_contact_map",
    "nearest_index",
    "object_contact_loss",
    "object_contact_map",
    "pair_gather_index",
    "penetration_along_normals",
    "penetration_from_sdf",
]

C_TOP = 0.5e-3
C_BOT = 1.0e-3
C_RAD = 1.0e-3
C_PEN = 2.0e-3
MISSING_WEIGHT = 3.0
_EPS = 1e-12


def nearest_index(query: Tensor, points: Tensor, order: Tensor | None = None) -> Tensor:
    """(B, N) int64 index of the Euclidean-nearest row of ``points (B, M, 3)`` for each ``query (B, N, 3)``.

    No gradient (index search only), delegated to :func:`contactkit.geometry.knn.nearest_indices` (``order``:
    its optional (B, N) search order of the queries, same indices).
    """
    from contactkit.geometry.knn import nearest_indices

    with torch.no_grad():
        return nearest_indices(query.detach(), points.detach(), order=order)


def _gather(points: Tensor, idx: Tensor) -> Tensor:
    """points (B, M, D), idx (B, N) -> (B, N, D): ``torch.gather`` along dim 1 as one ``index_select`` of whole
    rows; same values and gradients, forward + backward 2.5-3.0 ms instead of 3.3-3.4 ms for 64 x 2048 pairs
    (CPU, one thread)."""
    b, m, d = points.shape
    offsets = torch.arange(0, b * m, m, device=idx.device).unsqueeze(-1)
    return points.reshape(b * m, d).index_select(0, (idx + offsets).reshape(-1)).view(b, idx.shape[1], d)



# ----------------------------------------------------------------------------------------------------------
# Fused losses of the refiner's terms (bitwise equal to the composed functions, one autograd node each)
#
# Each repeats autograd's own floating-point operations on the composition: every product, quotient and mask in
# the same order, and the backward formulas of ``index_select``, ``mean``, ``where``, ``clamp``, ``reciprocal``,
# ``sqrt``, ``mul``, ``neg`` and ``sub``; a sum of two gradients of which one is zero is written as one product.
# Masks are 0/1 tensors multiplied in: ``torch.where`` is about 20x slower than a product on CPU and gives the same
# values (a masked entry is -0 instead of +0, which no later sum can tell apart). Tests:
# ``tests/contact/test_diffcontact.py::test_fused_*`` (values and gradients ``torch.equal`` to the composition).


def _mask(compare: Any, x: Tensor, value: float) -> Tensor:
    """``compare(x, value)`` as a 0/1 tensor of ``x``'s dtype (written straight into it: no bool tensor)."""
    out: Tensor = compare(x, value, out=torch.empty_like(x))
    return out


def _contact_loss_forward(phi: Tensor, target: Tensor, c_rad: float, missing_weight: float) -> tuple[Tensor, ...]:
    """``asymmetric_contact_loss(capsule_contact(phi), target)`` (B,) and what its backward needs."""
    r = phi.clamp(min=c_rad * 1e-6).reciprocal()  # c_rad / t is t.reciprocal() * c_rad in torch
    q = r * c_rad
    diff = q.clamp(max=1.0) - target
    out = torch.maximum(diff, diff * -missing_weight).mean(-1)  # = where(diff < 0, -w * diff, diff) for w > 0
    return out, r, _mask(torch.lt, diff, 0.0), _mask(torch.le, q, 1.0), _mask(torch.ge, phi, c_rad * 1e-6)


def _contact_loss_backward(grad_out: Tensor, saved: Sequence[Tensor], c_rad: float, missing_weight: float) -> Tensor:
    """Gradient w.r.t. ``phi`` of :func:`_contact_loss_forward`'s loss, given ``grad_out (B,)`` and the
    ``(r, lt, q_ok, phi_ok)`` it returned after the loss."""
    r, lt, q_ok, phi_ok = saved
    g = grad_out.unsqueeze(-1).expand(lt.shape) / lt.shape[-1]  # mean
    g = g * (lt * -missing_weight + (1.0 - lt))  # where(diff < 0, -w * diff, diff): g * -w or g
    g = g * q_ok * c_rad  # clamp(max=1), then * c_rad
    return -g * (r * r) * phi_ok  # reciprocal, then clamp(min)


class _ObjectContactLoss(torch.autograd.Function):
    """:func:`object_contact_map` followed by :func:`asymmetric_contact_loss` (gradient w.r.t. the hand only).

    Works coordinate-major: the pairs are gathered into (3, B, P) planes, so every step runs on contiguous
    (B, P) rows (a 3-element reduction or a (B, P, 1) x (B, P, 3) broadcast is 5-10x slower than the same
    arithmetic on planes, CPU); ``p.sum(-1)`` of 3 elements is ``p[0] + p[1] + p[2]``, the same additions.
    The planes are gathered straight from the hand's (B, V, 3) layout through :func:`pair_gather_index`, and
    the gradient is scattered back into it (no transposing copies of the hand vertices or their gradient); the
    scatter adds each vertex coordinate's terms in the same order as ``index_select``'s own backward.
    """

    @staticmethod
    def forward(
        ctx: Any, hand_verts: Tensor, flat: Tensor, centres: Tensor, normals: Tensor, target: Tensor,
        c_top: float, c_bot: float, c_rad: float, missing_weight: float,
    ) -> Tensor:
        _, b, p = centres.shape
        x = hand_verts.reshape(-1).index_select(0, flat).view(3, b, p)
        rel = x - centres
        m = rel * normals
        s1 = m[0] + m[1] + m[2]
        alpha = s1.clamp(min=-c_bot, max=c_top)
        perp = rel - alpha * normals
        m = perp * perp
        s2 = m[0] + m[1] + m[2]
        phi = torch.sqrt(s2.clamp(min=_EPS * _EPS))
        out, *tail = _contact_loss_forward(phi, target, c_rad, missing_weight)
        in_range = _mask(torch.ge, s1, -c_bot).mul_(_mask(torch.le, s1, c_top))
        ctx.save_for_backward(flat, normals, perp, phi, _mask(torch.ge, s2, _EPS * _EPS), in_range, *tail)
        ctx.consts = (c_rad, missing_weight, hand_verts.shape)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        flat, normals, perp, phi, s2_ok, in_range, *tail = ctx.saved_tensors
        c_rad, missing_weight, (b, v, _) = ctx.consts
        g = _contact_loss_backward(grad_out, tail, c_rad, missing_weight)
        g = g / (phi * 2) * s2_ok  # sqrt, then clamp(min)
        t = g * perp
        g_perp = t + t  # perp * perp: the same product reaches perp twice
        t = -g_perp * normals
        g_x = g_perp + (t[0] + t[1] + t[2]) * in_range * normals
        grad = g_x.new_zeros(b * v * 3).index_add_(0, flat, g_x.reshape(-1))  # index_select's backward
        # contiguous like index_select's own gradient: the hand layer's backward products round by memory layout
        return grad.view(b, v, 3), None, None, None, None, None, None, None, None


class _HandContactLoss(torch.autograd.Function):
    """:func:`hand_contact_from_sdf` followed by :func:`asymmetric_contact_loss` (gradient w.r.t. ``sdf``)."""

    @staticmethod
    def forward(
        ctx: Any, sdf: Tensor, target: Tensor, c_top: float, c_bot: float, c_rad: float, missing_weight: float
    ) -> Tensor:
        above = _mask(torch.gt, sdf, 0.0)
        w = (sdf - c_top) * above + (-sdf - c_bot) * (1.0 - above)  # where(sdf > 0, ...): one product is 0
        out, *tail = _contact_loss_forward(w.clamp(min=0.0), target, c_rad, missing_weight)
        ctx.save_for_backward(above * 2.0 - 1.0, _mask(torch.ge, w, 0.0), *tail)
        ctx.consts = (c_rad, missing_weight)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        sign, w_ok, *tail = ctx.saved_tensors
        c_rad, missing_weight = ctx.consts
        g = _contact_loss_backward(grad_out, tail, c_rad, missing_weight) * w_ok  # clamp(min=0)
        return g * sign, None, None, None, None, None  # sdf - c_top above the surface, -sdf - c_bot below


def object_contact_loss(
    hand_verts: Tensor,
    obj_points: Tensor,
    obj_normals: Tensor,
    target: Tensor,
    nearest_idx: Tensor,
    *,
    c_top: float = C_TOP,
    c_bot: float = C_BOT,
    c_rad: float = C_RAD,
    missing_weight: float = MISSING_WEIGHT,
    planes: tuple[Tensor, Tensor] | None = None,
    gather_index: Tensor | None = None,
) -> Tensor:
    """``asymmetric_contact_loss(object_contact_map(...), target)`` with the pairs ``nearest_idx`` given.

    Args:
        hand_verts: (B, V, 3) float, metres; obj_points, obj_normals: (B, P, 3) float (unit normals).
        target: (B, P) float in [0, 1]; nearest_idx: (B, P) int64 hand vertex paired with each object point.
        planes: optional ``(obj_points, obj_normals)`` as contiguous (3, B, P) coordinate planes (see
            :func:`coordinate_planes`), for a caller that reuses them across calls.
        gather_index: optional ``pair_gather_index(nearest_idx, V)``, for a caller that reuses the pairs across
            calls.

    Returns:
        (B,) float; bitwise equal to the composition (values and gradients). One autograd node when only
        ``hand_verts`` needs a gradient (the refiner's case), the composition otherwise.
    """
    check_points("hand_verts", hand_verts)
    check_points("obj_points", obj_points, batch=hand_verts.shape[0])
    check_points("obj_normals", obj_normals, batch=hand_verts.shape[0], count=obj_points.shape[1])
    if target.shape != obj_points.shape[:2] or nearest_idx.shape != obj_points.shape[:2]:
        raise ShapeError(f"target and nearest_idx must have shape (B, P) = {tuple(obj_points.shape[:2])}, got "
                         f"{tuple(target.shape)} and {tuple(nearest_idx.shape)}")
    if obj_points.requires_grad or obj_normals.requires_grad or target.requires_grad or missing_weight <= 0:
        pred = object_contact_map(hand_verts, obj_points, obj_normals, c_top=c_top, c_bot=c_bot, c_rad=c_rad,
                                  nearest_idx=nearest_idx)
        return asymmetric_contact_loss(pred, target, missing_weight=missing_weight)
    if planes is None:
        planes = (coordinate_planes(obj_points), coordinate_planes(obj_normals))
    if gather_index is None:
        gather_index = pair_gather_index(nearest_idx, hand_verts.shape[1])
    out: Tensor = _ObjectContactLoss.apply(hand_verts, gather_index, *planes, target, c_top, c_bot, c_rad,
                                           missing_weight)
    return out


def coordinate_planes(points: Tensor) -> Tensor:
    """(B, N, 3) -> contiguous (3, B, N): one plane per coordinate."""
    return points.detach().permute(2, 0, 1).contiguous()


def pair_gather_index(nearest_idx: Tensor, num_verts: int) -> Tensor:
    """(3 B P,) int64: where the paired vertices' coordinates lie in a flattened (B, V, 3) hand, plane by plane.

    Entry ``c B P + b P + i`` is ``3 (b V + nearest_idx[b, i]) + c``: gathering ``hand_verts.reshape(-1)`` there
    gives the (3, B, P) coordinate planes of the pairs.

    Args:
        nearest_idx: (B, P) int64 hand vertex paired with each object point; num_verts: V.
    """
    b = nearest_idx.shape[0]
    rows = nearest_idx + torch.arange(0, b * num_verts, num_verts, device=nearest_idx.device).unsqueeze(-1)
    return (rows.reshape(1, -1) * 3 + torch.arange(3, device=nearest_idx.device).unsqueeze(-1)).reshape(-1)


def hand_contact_loss(
    sdf: Tensor,
    target: Tensor,
    *,
    c_top: float = C_TOP,
    c_bot: float = C_BOT,
    c_rad: float = C_RAD,
    missing_weight: float = MISSING_WEIGHT,
) -> Tensor:
    """``asymmetric_contact_loss(hand_contact_from_sdf(sdf), target)``.

    Args:
        sdf: (B, V) float, metres, negative inside; target: (B, V) float in [0, 1].

    Returns:
        (B,) float; bitwise equal to the composition (values and gradients), one autograd node when only ``sdf``
        needs a gradient.
    """
    if sdf.shape != target.shape or sdf.ndim != 2:
        raise ShapeError(f"sdf and target must both have shape (B, V), got {tuple(sdf.shape)} and "
                         f"{tuple(target.shape)}")
    if target.requires_grad or missing_weight <= 0:
        pred = hand_contact_from_sdf(sdf, c_top=c_top, c_bot=c_bot, c_rad=c_rad)
        return asymmetric_contact_loss(pred, target, missing_weight=missing_weight)
    out: Tensor = _HandContactLoss.apply(sdf, target, c_top, c_bot, c_rad, missing_weight)
    return out


def capsule_distance(
    x: Tensor, centres: Tensor, normals: Tensor, *, c_top: float = C_TOP, c_bot: float = C_BOT
) -> Tensor:
    """Distance ``phi`` of each point to the principal segment of its paired capsule.

    Args:
        x: (..., 3) float, metres — query points.
        centres: (..., 3) float, metres — capsule base points (object surface points).
        normals: (..., 3) float — unit outward normals; the segment is ``centre + alpha * normal``,
            ``alpha in [-c_bot, c_top]``.
        c_top, c_bot: segment extents outside / inside the surface, metres.

    Returns:
        (...) float, metres, >= 0.
    """
    rel = x - centres
    alpha = (rel * normals).sum(-1).clamp(min=-c_bot, max=c_top)
    perp = rel - alpha.unsqueeze(-1) * normals
    return torch.sqrt((perp * perp).sum(-1).clamp(min=_EPS * _EPS))


def capsule_contact(phi: Tensor, *, c_rad: float = C_RAD) -> Tensor:
    """Contact value ``min(c_rad / phi, 1)`` in [0, 1] from capsule distances ``phi (...)`` in metres."""
    return torch.clamp(c_rad / phi.clamp(min=c_rad * 1e-6), max=1.0)


def object_contact_map(
    hand_verts: Tensor,
    obj_points: Tensor,
    obj_normals: Tensor,
    *,
    c_top: float = C_TOP,
    c_bot: float = C_BOT,
    c_rad: float = C_RAD,
    nearest_idx: Tensor | None = None,
) -> Tensor:
    """Contact at each object point from its nearest hand vertex (paper Eq. 1).

    Args:
        hand_verts: (B, V, 3) float, metres.
        obj_points: (B, P, 3) float, metres.
        obj_normals: (B, P, 3) float, unit outward normals.
        nearest_idx: optional (B, P) int64 index of the hand vertex paired with each object point (computed
            with :func:`nearest_index` when omitted).

    Returns:
        (B, P) float in [0, 1].
    """
    check_points("hand_verts", hand_verts)
    check_points("obj_points", obj_points, batch=hand_verts.shape[0])
    check_points("obj_normals", obj_normals, batch=hand_verts.shape[0], count=obj_points.shape[1])
    idx = nearest_index(obj_points, hand_verts) if nearest_idx is None else nearest_idx
    paired = _gather(hand_verts, idx)
    phi = capsule_distance(paired, obj_points, obj_normals, c_top=c_top, c_bot=c_bot)
    return capsule_contact(phi, c_rad=c_rad)


def hand_contact_map(
    hand_verts: Tensor,
    obj_points: Tensor,
    obj_normals: Tensor,
    *,
    c_top: float = C_TOP,
    c_bot: float = C_BOT,
    c_rad: float = C_RAD,
    nearest_idx: Tensor | None = None,
) -> Tensor:
    """Contact at each hand vertex from the capsule of its nearest object point.

    Args:
        hand_verts: (B, V, 3) float, metres.
        obj_points: (B, P, 3) float, metres.
        obj_normals: (B, P, 3) float, unit outward normals.
        nearest_idx: optional (B, V) int64 index of the object point paired with each hand vertex.

    Returns:
        (B, V) float in [0, 1].
    """
    check_points("hand_verts", hand_verts)
    check_points("obj_points", obj_points, batch=hand_verts.shape[0])
    check_points("obj_normals", obj_normals, batch=hand_verts.shape[0], count=obj_points.shape[1])
    idx = nearest_index(hand_verts, obj_points) if nearest_idx is None else nearest_idx
    phi = capsule_distance(
        hand_verts, _gather(obj_points, idx), _gather(obj_normals, idx), c_top=c_top, c_bot=c_bot
    )
    return capsule_contact(phi, c_rad=c_rad)


def hand_contact_from_sdf(
    sdf: Tensor, *, c_top: float = C_TOP, c_bot: float = C_BOT, c_rad: float = C_RAD
) -> Tensor:
    """Hand contact map from signed distances to a continuous surface (capsule model's surface limit).

    Args:
        sdf: (B, V) float, metres, negative inside the object.

    Returns:
        (B, V) float in [0, 1]: 1 for ``-c_bot - c_rad <= sdf <= c_top + c_rad``.
    """
    phi = torch.where(sdf > 0, sdf - c_top, -sdf - c_bot).clamp(min=0.0)
    return capsule_contact(phi, c_rad=c_rad)


def asymmetric_contact_loss(
    pred: Tensor, target: Tensor, *, missing_weight: float = MISSING_WEIGHT, mask: Tensor | None = None
) -> Tensor:
    """ContactOpt's contact loss (Eq. 2), averaged over points.

    Args:
        pred: (B, N) float in [0, 1] — contact from DiffContact.
        target: (B, N) float in [0, 1] — desired contact.
        missing_weight: lambda > 1 multiplying ``|pred - target|`` where ``pred < target``.
        mask: optional (B, N) bool/float of points to count.

    Returns:
        (B,) float.
    """
    if pred.shape != target.shape or pred.ndim != 2:
        raise ShapeError(
            f"pred and target must both have shape (B, N), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    diff = pred - target
    err = torch.where(diff < 0, -missing_weight * diff, diff)
    if mask is None:
        return err.mean(-1)
    m = mask.to(err.dtype)
    return (err * m).sum(-1) / m.sum(-1).clamp(min=1.0)


def penetration_from_sdf(sdf: Tensor, *, depth: float = C_PEN) -> Tensor:
    """Sum over hand vertices of penetration beyond ``depth``: ``sum relu(-sdf - depth)``.

    Args:
        sdf: (B, V) float, metres, negative inside.

    Returns:
        (B,) float, metres.
    """
    return torch.relu(-sdf - depth).sum(-1)


def penetration_along_normals(
    obj_points: Tensor,
    obj_normals: Tensor,
    paired_hand: Tensor,
    *,
    c_pen: float = C_PEN,
    max_distance: float | None = 0.02,
) -> Tensor:
    """Paper Eq. 3: ``sum_i relu((v_i^O - v_j^H) . n_i^O - c_pen)`` with ``v_j^H`` each point's nearest vertex.

    Args:
        obj_points: (B, P, 3) float, metres.
        obj_normals: (B, P, 3) float, unit outward normals.
        paired_hand: (B, P, 3) float, metres — the hand vertex nearest to each object point.
        max_distance: pairs farther apart than this (metres) are ignored, so that a hand on one side of the
            object is not counted as penetrating the far side; None keeps every pair (the paper's formula).

    Returns:
        (B,) float, metres.
    """
    rel = obj_points - paired_hand
    depth = torch.relu((rel * obj_normals).sum(-1) - c_pen)
    if max_distance is not None:
        depth = torch.where(rel.norm(dim=-1) <= max_distance, depth, torch.zeros_like(depth))
    return depth.sum(-1)


# ----------------------------------------------------------------------------------------------------------
# Term objects


@dataclass
class ObjectContactTerm:
    """Asymmetric loss between the object contact map and a target ``(N0, P)`` (rows picked by sample_index).

    ``target`` must be sampled at the same object points (same order) as ``state.obj_points``.
    """

    target: Tensor
    weight: float = 1.0
    name: str = "object_contact"
    missing_weight: float = MISSING_WEIGHT
    c_top: float = C_TOP
    c_bot: float = C_BOT
    c_rad: float = C_RAD
    _planes: tuple[list[tuple[Tensor, int]], tuple[Tensor, Tensor]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _pairs: tuple[Tensor, int, int, Tensor] | None = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, state: HandObjectState) -> Tensor:
        target = self.target[state.rows]
        if target.shape != state.obj_points.shape[:2]:
            raise ShapeError(
                f"object contact target must have shape (B, P) = {tuple(state.obj_points.shape[:2])}, "
                f"got {tuple(target.shape)}"
            )
        idx = _cached_nearest(state.cache, "object_to_hand", state.obj_points, state.hand_verts)
        moving = state.obj_points.requires_grad or state.obj_normals.requires_grad  # then the composition runs
        return object_contact_loss(
            state.hand_verts, state.obj_points, state.obj_normals, target.to(state.hand_verts.dtype), idx,
            c_top=self.c_top, c_bot=self.c_bot, c_rad=self.c_rad, missing_weight=self.missing_weight,
            planes=None if moving else self._object_planes(state),
            gather_index=None if moving else self._gather_index(idx, state.hand_verts.shape[1]),
        )

    def _gather_index(self, idx: Tensor, num_verts: int) -> Tensor:
        """:func:`pair_gather_index` of the pairs, kept while the neighbour cache returns the same index tensor
        (between two refreshes)."""
        kept = self._pairs
        if kept is None or kept[0] is not idx or kept[1] != idx._version or kept[2] != num_verts:
            kept = (idx, idx._version, num_verts, pair_gather_index(idx, num_verts))
            self._pairs = kept
        return kept[3]

    def _object_planes(self, state: HandObjectState) -> tuple[Tensor, Tensor]:
        """Coordinate planes of the object points and normals, kept while the state holds the same tensors
        (the refiner poses a fixed object once and passes the same tensors at every iteration)."""
        key = [(t, t._version) for t in (state.obj_points, state.obj_normals)]
        kept = self._planes
        if kept is None or any(a is not t or v != t._version for (a, v), (t, _) in zip(kept[0], key, strict=True)):
            kept = (key, (coordinate_planes(state.obj_points), coordinate_planes(state.obj_normals)))
            self._planes = kept
        return kept[1]


@dataclass
class HandContactTerm:
    """Asymmetric loss between the SDF-based hand contact map and a target ``(N0, V)``."""

    target: Tensor
    weight: float = 1.0
    name: str = "hand_contact"
    missing_weight: float = MISSING_WEIGHT
    c_top: float = C_TOP
    c_bot: float = C_BOT
    c_rad: float = C_RAD

    def __call__(self, state: HandObjectState) -> Tensor:
        sdf = state.require_sdf(self.name)
        target = self.target[state.rows]
        if target.shape != sdf.shape:
            raise ShapeError(
                f"hand contact target must have shape (B, V) = {tuple(sdf.shape)}, got {tuple(target.shape)}"
            )
        return hand_contact_loss(sdf, target.to(sdf.dtype), c_top=self.c_top, c_bot=self.c_bot, c_rad=self.c_rad,
                                 missing_weight=self.missing_weight)


@dataclass
class SDFPenetrationTerm:
    """Penetration of hand vertices deeper than ``depth`` (metres), summed, from ``state.hand_sdf``."""

    weight: float = 1.0
    name: str = "penetration"
    depth: float = C_PEN

    def __call__(self, state: HandObjectState) -> Tensor:
        return penetration_from_sdf(state.require_sdf(self.name), depth=self.depth)



def _cached_nearest(cache: NeighbourCache, key: str, query: Tensor, points: Tensor) -> Tensor:
    def search() -> Tensor:  # queries walked along their cached Morton order: same indices, faster tree search
        return nearest_index(query, points, order=cache.query_order(key, query))

    idx = cache.get(key, search)
    if idx.shape != query.shape[:2]:
        cache.clear()
        idx = cache.get(key, search)
    return idx

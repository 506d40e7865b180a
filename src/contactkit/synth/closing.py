"""Closing the hand on an object: synthesis's optimisation, as a preset of contactkit's one refiner.

:func:`closing_method` is a :class:`~contactkit.refine.methods.MethodSpec` of one stage whose terms and
:class:`~contactkit.refine.refiner.RefinerSettings` reproduce ObMan-style closing (module docstring of
:mod:`contactkit.synth.synthesis`, step 3); :func:`close_hand` samples the approaches (steps 1-2) and runs it
through :func:`contactkit.refine.api.run_method`. Synthesis therefore has no optimisation loop of its own: the
refiner's Adam, parameter groups (learning rates as multipliers of ``lr_orient``) and PCA pose update
(``hand_pose = hand_pose_0 + c @ components[:n_pca]``, ``c`` starting at 0) do the closing.

The terms (each ``(B,)`` per candidate; ``state.rows`` indexes per-candidate data):

- :class:`ClosingAttractionTerm` — ObMan's attraction of the six contact zones to ``squeeze_m`` inside the
  surface, ``sum_z a tanh(min_{v in z} (sdf_v + squeeze) / a)``, with ``a`` annealed geometrically from
  ``attraction_a_start_m`` to ``attraction_a_end_m`` over the refiner's steps (``state.cache.iteration``);
- :class:`contactkit.contact.obman.RepulsionTerm` — ObMan's repulsion of penetrating vertices;
- :class:`contactkit.contact.cpf.AnatomyTerm` — A-MANO anatomy cost;
- :class:`PalmFacingTerm` — ``1 + <R n_palm, n_approach>`` (the palm faces the surface it approached);
- :class:`PcaPriorTerm` — ``|c_total|^2`` of the pose's PCA coefficients (``hand_pose @ components[:k].T``; the
  components are orthonormal rows and the pose stays in their span, so these are the optimised coefficients
  plus the pre-shape's);
- :class:`PalmarCoverTerm` — ``mean_{v palmar} a tanh(max(sdf_v + squeeze, 0) / a)``, pulling the whole inner
  hand onto the object;
- :class:`ContactBalanceTerm` — ``|F|^2``, ``F`` the contact-weighted mean of the object's outward normals at
  the thumb's, each finger's and the palm's palmar vertices: zero when the hand presses on the object from
  opposing sides (a static squeeze in equilibrium), one when every contact pushes the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.obman import attraction_loss
from contactkit.contact.terms import HandObjectState
from contactkit.errors import ShapeError
from contactkit.geometry.rotations import axis_angle_to_rotmat, rotmat_to_axis_angle

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.objects.mesh import ObjectMesh
    from contactkit.refine.methods import MethodSpec
    from contactkit.synth.synthesis import SynthesisConfig

__all__ = [
    "ClosingAttractionTerm",
    "ContactBalanceTerm",
    "PalmFacingTerm",
    "PalmarCoverTerm",
    "PcaPriorTerm",
    "approach_init",
    "close_hand",
    "grip_width_prior",
    "grip_width_rolls",
    "tangent_widths",
    "closing_method",
]


def _params(state: HandObjectState, name: str, term: str) -> Tensor:
    if name not in state.params:
        raise ShapeError(f"term {term!r} needs state.params[{name!r}]")
    return state.params[name]


@dataclass
class ClosingAttractionTerm:
    """ObMan attraction of ``zones`` ((Z, V) bool) to ``squeeze_m`` inside the surface, ``a`` annealed from
    ``a_start_m`` to ``a_end_m`` over ``iterations`` refiner steps (held at ``a_end_m`` after them)."""

    zones: Tensor
    iterations: int
    a_start_m: float
    a_end_m: float
    squeeze_m: float
    weight: float = 1.0
    name: str = "attraction"

    def distance(self, iteration: int) -> float:
        """The attraction distance ``a`` (metres) at refiner step ``iteration``."""
        frac = min(1.0, iteration / max(1, self.iterations - 1))
        return self.a_start_m * (self.a_end_m / self.a_start_m) ** frac

    def __call__(self, state: HandObjectState) -> Tensor:
        sdf = state.require_sdf(self.name)
        a = self.distance(state.cache.iteration)
        return attraction_loss(sdf + self.squeeze_m, self.zones.to(sdf.device), a=a)


@dataclass
class PalmFacingTerm:
    """``1 + <R(global_orient) n_palm, approach[rows]>``: 0 when the palm faces along ``-approach``.

    ``n_palm`` (3,) is the rest palm normal, ``approach`` (N0, 3) the unit outward surface normals approached."""

    n_palm: Tensor
    approach: Tensor
    weight: float = 0.01
    name: str = "palm_facing"

    def __call__(self, state: HandObjectState) -> Tensor:
        rot = axis_angle_to_rotmat(_params(state, "global_orient", self.name))
        palm_dir = rot @ self.n_palm.to(rot.dtype)
        return 1.0 + (palm_dir * self.approach[state.rows].to(rot.dtype)).sum(-1)


@dataclass
class PcaPriorTerm:
    """``|hand_pose @ components.T|^2``: squared norm of the pose's coefficients on ``components`` ((k, 45),
    orthonormal rows)."""

    components: Tensor
    weight: float = 1e-4
    name: str = "pca_prior"

    def __call__(self, state: HandObjectState) -> Tensor:
        pose = _params(state, "hand_pose", self.name)
        coeffs = pose @ self.components.to(pose.dtype).T
        return (coeffs * coeffs).sum(-1)


@dataclass
class PalmarCoverTerm:
    """``mean_{v in palmar} a tanh(max(sdf_v + squeeze_m, 0) / a)`` over the ``palmar`` (V,) bool vertices."""

    palmar: Tensor
    a_m: float
    squeeze_m: float
    weight: float = 10.0
    name: str = "palmar_cover"

    def __call__(self, state: HandObjectState) -> Tensor:
        sdf = state.require_sdf(self.name)
        gap = (sdf[:, self.palmar.to(sdf.device)] + self.squeeze_m).clamp_min(0.0)
        return (self.a_m * torch.tanh(gap / self.a_m)).mean(-1)


@dataclass
class ContactBalanceTerm:
    """``|F|^2`` with ``F = sum_r c_r m_r / (sum_r c_r + eps)``, the squeeze's net contact direction.

    Over the palmar vertices of each hand part ``r`` (``part`` (V,) int64: 0..R-1, -1 elsewhere; thumb, the four
    fingers and the palm): contact weights ``w_v = exp(-max(sdf_v + squeeze_m, 0) / sigma_m)`` (1 on and inside
    the surface), the part's contact normal ``m_r = sum_v w_v n_v / (sum_v w_v + eps)`` with ``n_v`` the object's
    outward normal at the vertex (the SDF's gradient, central differences of ``sdf_fn`` over ``step_m``; the
    gradient flows through them too, so a vertex at an edge can slide onto the face that balances the others)
    and its contact strength ``c_r = tanh(sum_v w_v / 5)``. A hand that only pushes (palm on one face, fingers on an
    adjacent one) has ``|F|`` near 1 and holds nothing once the object is free; parts pressing on opposite faces
    cancel (``F = 0``), as a squeeze in static equilibrium does. Each part counts once, however many of its
    vertices touch, so the palm does not outweigh the thumb.

    ``sdf_fn(points (B, N, 3)) -> (B, N)`` is the object's signed distance in the state's frame.
    """

    part: Tensor
    sdf_fn: Any
    n_parts: int = 6
    sigma_m: float = 0.005
    squeeze_m: float = 0.001
    step_m: float = 0.002
    weight: float = 1.0
    name: str = "contact_balance"

    def __call__(self, state: HandObjectState) -> Tensor:
        sdf = state.require_sdf(self.name)
        part = self.part.to(sdf.device)
        idx = torch.nonzero(part >= 0).squeeze(1)
        pts = state.hand_verts[:, idx]
        eye = torch.eye(3, dtype=pts.dtype, device=pts.device) * self.step_m
        grad = torch.stack(
            [self.sdf_fn(pts + eye[i]) - self.sdf_fn(pts - eye[i]) for i in range(3)], dim=-1)
        normal = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-9)  # (B, N, 3)
        w = torch.exp(-(sdf[:, idx] + self.squeeze_m).clamp_min(0.0) / self.sigma_m)  # (B, N)
        onehot = torch.nn.functional.one_hot(part[idx], self.n_parts).to(w.dtype)  # (N, R)
        mass = w @ onehot  # (B, R)
        mean_n = torch.einsum("bn,bnk,nr->brk", w, normal, onehot) / (mass[..., None] + 1e-9)
        strength = torch.tanh(mass / 5.0)
        net = (strength[..., None] * mean_n).sum(1) / (strength.sum(1, keepdim=True) + 1e-9)
        return (net * net).sum(-1)


def _align_rotation(src: Tensor, dst: Tensor) -> Tensor:
    """(K, 3, 3) rotations taking unit ``src (3,)`` onto unit ``dst (K, 3)`` (smallest angle)."""
    src = src / src.norm()
    axis = torch.linalg.cross(src.expand_as(dst), dst, dim=-1)
    s = axis.norm(dim=-1, keepdim=True)
    c = (dst * src).sum(-1, keepdim=True)
    angle = torch.atan2(s, c)
    helper = torch.tensor([1.0, 0.0, 0.0], dtype=src.dtype)
    if abs(float(src[0])) > 0.9:
        helper = torch.tensor([0.0, 1.0, 0.0], dtype=src.dtype)
    perp = torch.linalg.cross(src, helper)
    perp = perp / perp.norm()
    unit = torch.where(s > 1e-9, axis / s.clamp_min(1e-12), perp.expand_as(axis))
    return axis_angle_to_rotmat(unit * angle)


GRIP_ROLL_BINS = 12


def tangent_widths(hull: np.ndarray, normals: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The object's width across ``GRIP_ROLL_BINS`` directions tangent to each normal.

    ``w_kb = max_x u_kb·x - min_x u_kb·x`` over the object, with ``u_kb = cos θ_b a_k + sin θ_b (n_k × a_k)`` and
    ``θ_b`` the bin centres ``(b + 1/2) 2π / GRIP_ROLL_BINS``, i.e. ``a_k`` rolled by ``θ_b`` about ``n_k``.

    Args:
        hull: (V, 3) points whose extent is the object's (its convex hull's vertices suffice), metres.
        normals: (K, 3) unit normals.
        axis: (K, 3) unit directions orthogonal to ``normals`` (roll 0).

    Returns:
        (K, GRIP_ROLL_BINS) widths, metres.
    """
    step = 2.0 * math.pi / GRIP_ROLL_BINS
    theta = np.arange(GRIP_ROLL_BINS) * step + step / 2.0
    side = np.cross(normals, axis)
    u = np.cos(theta)[None, :, None] * axis[:, None] + np.sin(theta)[None, :, None] * side[:, None]
    proj = u.reshape(-1, 3) @ hull.T  # (K * bins, V)
    return (proj.max(1) - proj.min(1)).reshape(len(normals), GRIP_ROLL_BINS)


def _any_tangent(normals: np.ndarray) -> np.ndarray:
    """(K, 3) unit vectors orthogonal to the unit ``normals (K, 3)``."""
    helper = np.where(np.abs(normals[:, :1]) > 0.9, [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]])
    t = np.cross(normals, helper)
    return t / np.linalg.norm(t, axis=-1, keepdims=True)


def grip_width_prior(
    hull: np.ndarray, normals: np.ndarray, k: int, width_m: float, rng: np.random.Generator, span_m: float = 0.0
) -> np.ndarray:
    """Surface samples to approach, favouring those across whose tangent plane the object is narrow.

    A hand wraps an object when its fingers run across a narrow extent (a person holds a box by a thin side,
    not with the palm flat on a large face). With ``e(w) = max(w - span_m, 0)`` the width in excess of what the
    hand closes around anyway, sample ``i`` is drawn with probability
    ``∝ exp(-(e(min_b w_ib) - min_j e(min_b w_jb)) / width_m)`` (:func:`tangent_widths`): uniform on a sphere,
    and on any object no wider than ``span_m`` across some tangent of every sample.

    Args:
        hull: (V, 3) points whose extent is the object's (its convex hull's vertices suffice), metres.
        normals: (P, 3) unit normals of the surface samples to choose from.
        k: samples drawn (with replacement when ``P < k``).
        width_m: temperature, metres (> 0).
        rng: random generator (one draw).
        span_m: widths up to this are equally good, metres (0: the narrowest is preferred however small).

    Returns:
        (k,) indices into ``normals``.
    """
    unit = normals / np.linalg.norm(normals, axis=-1, keepdims=True).clip(1e-12)
    narrow = np.maximum(tangent_widths(hull, unit, _any_tangent(unit)).min(1) - span_m, 0.0)
    prob = np.exp(-(narrow - narrow.min()) / width_m)
    return rng.choice(len(normals), size=k, replace=len(normals) < k, p=prob / prob.sum())


def grip_width_rolls(
    hull: np.ndarray, normals: np.ndarray, finger: np.ndarray, width_m: float, rng: np.random.Generator,
    span_m: float = 0.0,
) -> np.ndarray:
    """Rolls about the approach normals that point the fingers across the object's narrow side.

    ``θ`` is drawn per candidate from ``p(θ_b) ∝ exp(-(e_b - min_b e_b) / width_m)`` with
    ``e_b = max(w_b - span_m, 0)`` and ``w_b`` the width along the finger axis rolled by ``θ_b``
    (:func:`tangent_widths`), uniformly inside its bin: on a sphere, and across any direction no wider than
    ``span_m``, every roll is equally likely; on a box wider than ``span_m`` the fingers go across its thickness
    with the long edge across the palm. ``u`` and ``-u`` have the same width, so the thumb may be on either side.

    Args:
        hull: (V, 3) points whose extent is the object's (its convex hull's vertices suffice), metres.
        normals: (K, 3) unit approach normals.
        finger: (K, 3) the finger axis at roll 0, orthogonal to ``normals``.
        width_m: temperature, metres (> 0).
        rng: random generator (two draws per candidate: the bin, the offset inside it).
        span_m: widths up to this are equally good, metres.

    Returns:
        (K,) rolls in radians, ``[0, 2π)``.
    """
    f = finger / np.linalg.norm(finger, axis=-1, keepdims=True).clip(1e-12)
    width = np.maximum(tangent_widths(hull, normals, f) - span_m, 0.0)
    prob = np.exp(-(width - width.min(1, keepdims=True)) / width_m)
    prob /= prob.sum(1, keepdims=True)
    bins = (prob.cumsum(1) < rng.uniform(size=(len(normals), 1))).sum(1).clip(max=GRIP_ROLL_BINS - 1)
    step = 2.0 * math.pi / GRIP_ROLL_BINS
    return (bins + 0.5 + rng.uniform(-0.5, 0.5, size=len(normals))) * step % (2.0 * math.pi)


def _hull_points(points: np.ndarray) -> np.ndarray:
    """The vertices of the convex hull of ``points (P, 3)`` (the same extents in every direction, far fewer)."""
    import trimesh

    return np.asarray(trimesh.convex.convex_hull(points).vertices)


def approach_init(
    hand: HandModel, obj: ObjectMesh, cfg: SynthesisConfig, rng: np.random.Generator, dtype: torch.dtype
) -> tuple[dict[str, Tensor], Tensor]:
    """Steps 1-2 of synthesis for ``K = cfg.batch_size`` candidates: approach points and pre-shapes.

    Returns:
        ``(init, approach)``: ``init`` holds ``global_orient (K, 3)``, ``hand_pose (K, 45)`` axis-angle (the
        pre-shape ``coeffs @ components[:n_pca]``) and ``transl (K, 3)`` metres; ``approach (K, 3)`` the unit
        outward normals of the approached surface points.
    """
    from contactkit.hands.anatomy import palm_normal

    k = cfg.batch_size
    pts, nrm = obj.sample_surface(4096, seed=0)
    hull = _hull_points(np.asarray(pts)) if cfg.grip_width_m > 0 else None
    if hull is not None:
        pick = grip_width_prior(hull, np.asarray(nrm), k, cfg.grip_width_m, rng, cfg.grip_span_m)
    else:
        pick = rng.choice(len(pts), size=k, replace=len(pts) < k)
    p0 = torch.as_tensor(pts[pick], dtype=dtype)
    n0 = torch.as_tensor(nrm[pick], dtype=dtype)
    n0 = n0 / n0.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if cfg.centre_bias > 0:
        radial = p0 - torch.as_tensor(np.asarray(pts).mean(0), dtype=dtype)
        radial = radial / radial.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        n0 = n0 + cfg.centre_bias * radial
        n0 = n0 / n0.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    n_palm = palm_normal(hand.rest_joints.to(dtype), hand.side)
    align = _align_rotation(n_palm, -n0)
    if hull is not None:
        finger = hand.rest_joints[4].to(dtype) - hand.rest_joints[0].to(dtype)  # wrist -> middle MCP
        finger_aligned = torch.einsum("kij,j->ki", align, finger - (finger @ n_palm) * n_palm)
        roll = torch.as_tensor(
            grip_width_rolls(hull, n0.numpy(), finger_aligned.numpy(), cfg.grip_width_m, rng, cfg.grip_span_m),
            dtype=dtype)
    else:
        roll = torch.as_tensor(rng.uniform(0.0, 2.0 * math.pi, size=k), dtype=dtype)
    pre = torch.as_tensor(rng.normal(0.0, cfg.preshape_noise, size=(k, cfg.n_pca)), dtype=dtype)
    with torch.no_grad():
        rest = hand(torch.zeros(1, 3, dtype=dtype), torch.zeros(1, 45, dtype=dtype), None,
                    torch.zeros(1, 3, dtype=dtype))
    palm_idx = torch.as_tensor(np.asarray(hand.annotations.contact_zones["palm"]), dtype=torch.long)
    palm_c = rest.vertices[0, palm_idx].mean(0)
    j0 = rest.joints[0, 0]
    # wrist orientation: palm normal -> -n, then roll about n; palm centre standoff_m above the point
    r0 = axis_angle_to_rotmat(n0 * roll[:, None]) @ align
    target = p0 + n0 * cfg.standoff_m
    transl0 = target - j0 - torch.einsum("kij,j->ki", r0, palm_c - j0)
    comps = hand.pca_components.to(dtype)[: cfg.n_pca]
    mean_coeffs = (hand.pca_mean.to(dtype) @ comps.T) * cfg.preshape_mean
    if not hand.flat_hand_mean:
        mean_coeffs = mean_coeffs * 0.0  # the model already adds its mean pose
    coeffs = mean_coeffs.expand(k, -1) + pre
    init = {"global_orient": rotmat_to_axis_angle(r0), "hand_pose": coeffs @ comps, "transl": transl0}
    return init, n0


PARTS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little", "palm")


def palmar_parts(hand: HandModel) -> Tensor:
    """(V,) int64: the part (index into :data:`PARTS`) of each palmar vertex, from the hand's region
    annotation (a region ``"<part>_..."`` belongs to ``<part>``), -1 for the other vertices."""
    ann = hand.annotations
    region = np.asarray(ann.region_of_vertex)
    first = np.array([PARTS.index(nm.split("_")[0]) if nm.split("_")[0] in PARTS else -1 for nm in ann.region_names])
    part = np.where(np.asarray(ann.palmar_mask, dtype=bool), first[region], -1)
    return torch.as_tensor(part, dtype=torch.long)


def closing_method(hand: HandModel, cfg: SynthesisConfig, approach: Tensor, dtype: torch.dtype,
                   sdf_fn: Any = None) -> MethodSpec:
    """The closing optimisation as a one-stage refiner preset for candidates approaching along ``approach``
    ((K, 3) unit normals): the terms of the module docstring, Adam with ``lr = lr_orient`` and the other
    learning rates as multipliers, ``cfg.iterations`` steps, PCA(``n_pca``) pose update, no restarts.
    ``sdf_fn(points (K, N, 3)) -> (K, N)``, the object's signed distance, is needed when ``cfg.w_balance > 0``."""
    from contactkit.contact.cpf import AnatomyTerm
    from contactkit.contact.obman import RepulsionTerm, zone_mask
    from contactkit.hands.anatomy import anatomy_cost, palm_normal
    from contactkit.refine.methods import MethodContext, MethodSpec, StageSpec
    from contactkit.refine.refiner import RefinerSettings

    zones = zone_mask(dict(hand.annotations.contact_zones.items()), hand.num_verts)
    palmar = torch.as_tensor(np.asarray(hand.annotations.palmar_mask), dtype=torch.bool)
    n_palm = palm_normal(hand.rest_joints.to(dtype), hand.side)
    comps = hand.pca_components.to(dtype)[: cfg.n_pca]

    def anatomy(pose: Tensor) -> Tensor:
        return anatomy_cost(hand, pose)

    def build(ctx: MethodContext) -> list[Any]:
        terms: list[Any] = [
            ClosingAttractionTerm(zones, cfg.iterations, cfg.attraction_a_start_m, cfg.attraction_a_end_m,
                                  cfg.squeeze_m, weight=cfg.w_attraction),
            RepulsionTerm(weight=cfg.w_repulsion),
            AnatomyTerm(anatomy, weight=cfg.w_anatomy),
            PalmFacingTerm(n_palm, approach, weight=cfg.w_palm),
            PcaPriorTerm(comps, weight=cfg.w_reg),
        ]
        if cfg.w_cover > 0:
            terms.append(PalmarCoverTerm(palmar, cfg.cover_a_m, cfg.squeeze_m, weight=cfg.w_cover))
        if cfg.w_balance > 0:
            if sdf_fn is None:
                raise ShapeError("the contact balance term needs the object's signed distance (sdf_fn)")
            terms.append(ContactBalanceTerm(palmar_parts(hand), sdf_fn, sigma_m=cfg.balance_sigma_m,
                                            squeeze_m=cfg.squeeze_m, weight=cfg.w_balance))
        return terms

    settings = RefinerSettings(
        iterations=cfg.iterations, lr=cfg.lr_orient,
        lr_scale={"global_orient": 1.0, "hand_pose": cfg.lr_pose / cfg.lr_orient,
                  "transl": cfg.lr_transl / cfg.lr_orient},
        optimize=("global_orient", "hand_pose", "transl"), pose_space="pca", pca_components=cfg.n_pca,
        restarts=1, dtype=dtype,
    )
    return MethodSpec("synthesis", "ObMan-style grasp synthesis (paper 001, Sec. 4), contactkit's closing",
                      [StageSpec("closing", build, settings)],
                      description="annealed zone attraction, repulsion, anatomy, palm facing, PCA prior, "
                      "palmar cover")


def close_hand(
    hand: HandModel, obj: ObjectMesh, cfg: SynthesisConfig, rng: np.random.Generator, dtype: torch.dtype
) -> dict[str, Tensor]:
    """Sample ``cfg.batch_size`` approaches and close the hand on ``obj`` with :func:`closing_method`.

    Returns:
        ``global_orient (K, 3)``, ``hand_pose (K, 45)`` axis-angle, ``transl (K, 3)``, ``vertices (K, V, 3)``
        (the refiner's best iterate of each candidate) and ``loss (K,)`` (its closing loss).
    """
    from contactkit.refine.api import run_method
    from contactkit.targets import ContactTargets, HandParamsInit, ObjectBatch

    init, approach = approach_init(hand, obj, cfg, rng, dtype)
    k = cfg.batch_size
    grid = obj.sdf_grid(cfg.sdf_resolution).to(dtype=dtype)
    pts, nrm = obj.sample_surface(256, seed=0)  # the state's object samples; no closing term reads them

    def sdf(points: Tensor, rows: Tensor) -> Tensor:
        return grid.sample(points)

    objects = ObjectBatch(
        torch.as_tensor(pts, dtype=dtype).expand(k, -1, -1), torch.as_tensor(nrm, dtype=dtype).expand(k, -1, -1),
        torch.eye(3, dtype=dtype).expand(k, 3, 3), torch.zeros(k, 3, dtype=dtype), sdf,
    )
    params = HandParamsInit(init["global_orient"], init["hand_pose"], torch.zeros(k, hand.num_betas, dtype=dtype),
                            init["transl"])
    res = run_method(hand, params, objects, closing_method(hand, cfg, approach, dtype, grid.sample),
                     ContactTargets())
    with torch.no_grad():
        out = hand(res.global_orient, res.hand_pose, None, res.transl)
    return {
        "global_orient": res.global_orient.detach(),
        "hand_pose": res.hand_pose.detach(),
        "transl": res.transl.detach(),
        "vertices": out.vertices.detach(),
        "loss": res.best_loss.detach(),
    }

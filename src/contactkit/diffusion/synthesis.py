"""Grasp synthesis from the object-conditioned JointDiffusion model (paper 002, Sec. 4, grasp synthesis).

:class:`DiffusionCandidates` is a candidate generator for :func:`contactkit.synth.synthesis.synthesize`: for a batch
it samples one CHOIR per candidate conditioned on the object's BPS distances alone, places the hand rigidly on each
sampled ``d_H`` (:func:`place_on_field`) and runs the two-stage fit
(:func:`contactkit.diffusion.fitting.fit_fields` with :data:`SYNTH_FIT`; shape fixed to the mean, as the
optimisation synthesiser keeps it). Acceptance (penetration, intersection volume, finger contacts, simulation),
ranking and the output format are the synthesiser's own, so ``contactkit synth --method diffusion`` and
``--method optimize`` are comparable.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch

from contactkit.contact.choir import ChoirField, anchor_distance_loss
from contactkit.diffusion.fitting import (
    CONTACT_ANCHOR_WEIGHT,
    PENETRATION_DEPTH,
    STAGE1_PENETRATION,
    anchors_of,
    fit_fields,
    initial_params_from_field,
    rigid_init_from_field,
)
from contactkit.diffusion.predictor import ChoirPredictor
from contactkit.errors import ContactkitError
from contactkit.geometry.rotations import axis_angle_to_rotmat, quat_to_rotmat, rotmat_to_axis_angle
from contactkit.refine.refiner import HandParamsInit, ObjectBatch
from contactkit.targets import subset_objects

__all__ = ["PLACEMENT_ROTATIONS", "SYNTH_FIT", "SYNTH_SAMPLING", "DiffusionCandidates", "diffusion_candidates",
           "place_on_field"]

#: Sampler of ``contactkit synth --method diffusion``: DDIM in 50 steps, not the refinement default (DPM-Solver++, then
#: 10). On held-out objects the only accepted diffusion grasp so far came from DDIM 50 (1 of 20; DPM-Solver++ 10:
#: 0 of 12), and the fit from a flat hand, not the sampler, dominates the time (2.25 vs 2.1 CPU s per candidate).
SYNTH_SAMPLING: dict[str, Any] = {"sampler": "ddim", "steps": 50}


#: The fit's settings in synthesis: refinement in the wild's additions (``diffusion/fitting.py``: stage-1
#: penetration 1e5, no penetration tolerance, the contact-anchor term at 0.1), 150 + 100 iterations and stage 2 at
#: base learning rate 1e-2 (the preset's: 300 + 100 at 2e-3). With the shuffled-assignment object model (version 4)
#: and :func:`place_on_field`, validation objects accepted 66 of 148 candidates against 48 of 148 with the preset's
#: iterations and rate (session 14's rule written beforehand; docs/jointdiffusion.md, "Session 14"): penetration,
#: the check most candidates failed, falls when stage 2 can move the hand further.
SYNTH_FIT: dict[str, Any] = {"stage1_penetration": STAGE1_PENETRATION, "penetration_depth": PENETRATION_DEPTH,
                             "contact_anchor_weight": CONTACT_ANCHOR_WEIGHT, "iterations": (150, 100),
                             "stage2_lr": 1e-2}
#: Random wrist rotations tried per finger pose by :func:`place_on_field` (besides the closed-form placement's own
#: orientation): 2 x (1 + 8) = 18 hypotheses per sampled field (the setting chosen on validation objects, not tuned
#: further; docs/jointdiffusion.md, "Synthesis (round 2)").
PLACEMENT_ROTATIONS = 8


def place_on_field(hand: Any, field: ChoirField, objects: ObjectBatch, *, rotations: int = PLACEMENT_ROTATIONS,
                   seed: int = 0) -> HandParamsInit:
    """Place a mean-shape hand rigidly on each sampled field, choosing the anchors' mirror sides jointly.

    ``d_H`` fixes each anchor only up to its mirror image across its grid plane
    (:func:`~contactkit.contact.choir.anchors_from_distances`); a placement on anchors whose sides are picked one
    by one (:func:`~contactkit.diffusion.fitting.initial_params_from_field`) mixes the two. Here each field gets
    ``2 (1 + rotations)`` hypotheses — finger pose flat or the hand's PCA mean pose, wrist orientation that of the
    closed-form placement or turned by a random rotation (seeded) about the anchors' centroid — each moved
    rigidly onto the field by :func:`~contactkit.diffusion.fitting.rigid_init_from_field` (all in one batch); the
    hypothesis whose anchors best reproduce ``d_H`` (lowest
    :func:`~contactkit.contact.choir.anchor_distance_loss`) is kept.

    Args:
        field: (K) sampled CHOIR fields, object frame.
        objects: (K) the candidates' objects (their poses map the world frame to the object frame; the
            closed-form start assumes the identity, as synthesis places the object at the origin).
        rotations: random orientations tried per finger pose (>= 0).
        seed: seed of the random rotations.

    Returns:
        (K) hand parameters (shape at the mean), world frame, radians and metres.
    """
    if rotations < 0:
        raise ContactkitError(f"rotations must be >= 0, got {rotations}")
    flat = initial_params_from_field(hand, field)
    k, dtype = flat.transl.shape[0], flat.transl.dtype
    gen = torch.Generator().manual_seed(int(seed))
    # pose parameters of the flat hand and of the PCA mean pose (a model without a flat mean adds its mean itself)
    mean = hand.pca_mean.to(dtype)
    poses = (torch.zeros_like(mean), mean) if hand.flat_hand_mean else (-mean, torch.zeros_like(mean))
    starts = []
    for pose in (x.expand(k, -1) for x in poses):
        base = HandParamsInit(flat.global_orient, pose, flat.betas, flat.transl)
        starts.append(base)
        centre = anchors_of(hand, base).mean(1)
        for _ in range(rotations):
            rot = quat_to_rotmat(torch.randn(k, 4, generator=gen).to(dtype))
            orient = rotmat_to_axis_angle(rot @ axis_angle_to_rotmat(flat.global_orient))
            turned = anchors_of(hand, HandParamsInit(orient, pose, flat.betas, flat.transl)).mean(1)
            starts.append(HandParamsInit(orient, pose, flat.betas, flat.transl + centre - turned))
    h = len(starts)
    rows = torch.arange(k).repeat(h)
    many, sub = field.index(rows), subset_objects(objects, rows)
    stacked = HandParamsInit(*(torch.cat([getattr(p, f.name) for p in starts]) for f in fields(HandParamsInit)))
    placed = rigid_init_from_field(hand, stacked, sub, many)
    local = (anchors_of(hand, placed) - sub.translation.to(dtype).unsqueeze(1)) @ sub.rotation.to(dtype)
    loss = anchor_distance_loss(local.to(many.grid.dtype), many.grid, many.anchor_sq_dist, many.assignment).view(h, k)
    pick = loss.argmin(0) * k + torch.arange(k)
    return placed.subset(pick)


class DiffusionCandidates:
    """Sample-and-fit candidate generator (same call and output as the synthesiser's closing optimisation).

    Args:
        predictor: an "object"-context :class:`~contactkit.diffusion.predictor.ChoirPredictor`.
        settings: overrides of the fit's options (:data:`SYNTH_FIT`, ``iterations``) and
            :class:`~contactkit.refine.refiner.RefinerSettings`.
    """

    def __init__(self, predictor: ChoirPredictor, **settings: Any) -> None:
        if predictor.context != "object":
            raise ContactkitError(f"synthesis needs an object-conditioned model, got context {predictor.context!r}")
        self.predictor = predictor
        self.settings = {"optimize": ("global_orient", "hand_pose", "transl"), **SYNTH_FIT, **settings}
        self.name = f"diffusion: {predictor.name} ({predictor.sampler}, {predictor.steps} steps)"

    def __call__(self, hand: Any, obj: Any, cfg: Any, rng: np.random.Generator, dtype: torch.dtype
                 ) -> dict[str, torch.Tensor]:
        """``cfg.batch_size`` candidates for ``obj`` (object frame = world frame): parameters (K, ...),
        ``vertices (K, V, 3)`` and the fit's final ``loss (K,)``."""
        from contactkit.targets import GroupedSDF

        k = cfg.batch_size
        pts, nrm = obj.sample_surface(self.predictor.spec.num_points, seed=0)
        p = torch.as_tensor(np.array(pts), dtype=torch.float32).unsqueeze(0).expand(k, -1, -1).contiguous()
        field = _cast(self.predictor.sample_fields(p, None, seed=int(rng.integers(2**31 - 1))), dtype)
        objects = ObjectBatch(
            p.to(dtype), torch.as_tensor(np.array(nrm), dtype=dtype).unsqueeze(0).expand(k, -1, -1),
            torch.eye(3, dtype=dtype).expand(k, 3, 3).contiguous(), torch.zeros(k, 3, dtype=dtype),
            GroupedSDF([obj.sdf_grid(cfg.sdf_resolution).to("cpu", dtype)], torch.zeros(k, dtype=torch.long)),
        )
        fit_seed = int(rng.integers(2**31 - 1))
        init = place_on_field(hand, field, objects, seed=fit_seed)
        res = fit_fields(hand, init, objects, field, seed=fit_seed, **self.settings)
        with torch.no_grad():
            out = hand(res.global_orient, res.hand_pose, res.betas if hand.num_betas else None, res.transl)
        return {"global_orient": res.global_orient.detach(), "hand_pose": res.hand_pose.detach(),
                "transl": res.transl.detach(), "vertices": out.vertices.detach(), "loss": res.best_loss.detach()}


def _cast(field: Any, dtype: torch.dtype) -> Any:
    from contactkit.contact.choir import ChoirField

    f = lambda x: x.to(dtype)  # noqa: E731
    return ChoirField(f(field.grid), f(field.object_sq_dist), f(field.anchor_sq_dist), field.assignment,
                      f(field.gauss_mean), f(field.gauss_chol), field.gauss_active)


def diffusion_candidates(hand: str, side: str, weights: Any = None, seed: int = 0, **options: Any
                         ) -> DiffusionCandidates:
    """The candidate generator of ``contactkit synth --method diffusion``: the object model of ``weights`` (default:
    shipped) serving hand ``hand``/``side`` through its own anchors; ``options`` go to the predictor (default sampler:
    :data:`SYNTH_SAMPLING`)."""
    from contactkit.diffusion.predictor import load_choir_predictor
    from contactkit.hands import load_hand

    predictor = load_choir_predictor(load_hand(hand, side), weights=weights, context="object", seed=seed,
                                     **{**SYNTH_SAMPLING, **options})
    return DiffusionCandidates(predictor)

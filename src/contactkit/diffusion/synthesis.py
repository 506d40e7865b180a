"""Grasp synthesis from the object-conditioned JointDiffusion model (paper 002, Sec. 4, grasp synthesis).

:class:`DiffusionCandidates` is a candidate generator for :func:`contactkit.synth.synthesis.synthesize`: for a batch
it samples one CHOIR per candidate conditioned on the object's BPS distances alone, places a flat hand on the
anchors decoded from each sampled ``d_H`` and runs the two-stage fit
(:func:`contactkit.diffusion.fitting.fit_fields`; shape fixed to the mean, as the optimisation synthesiser keeps
it). Acceptance (penetration, intersection volume, finger contacts, simulation), ranking and the output format are
the synthesiser's own, so ``contactkit synth --method diffusion`` and ``--method optimize`` are comparable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from contactkit.diffusion.fitting import fit_fields, initial_params_from_field
from contactkit.diffusion.predictor import ChoirPredictor
from contactkit.errors import ContactkitError
from contactkit.refine.refiner import HandParamsInit, ObjectBatch

__all__ = ["SYNTH_SAMPLING", "DiffusionCandidates", "diffusion_candidates"]

#: Sampler of ``contactkit synth --method diffusion``: DDIM in 50 steps, not the refinement default (DPM-Solver++, then
#: 10). On held-out objects the only accepted diffusion grasp so far came from DDIM 50 (1 of 20; DPM-Solver++ 10:
#: 0 of 12), and the fit from a flat hand, not the sampler, dominates the time (2.25 vs 2.1 CPU s per candidate).
SYNTH_SAMPLING: dict[str, Any] = {"sampler": "ddim", "steps": 50}


class DiffusionCandidates:
    """Sample-and-fit candidate generator (same call and output as the synthesiser's closing optimisation).

    Args:
        predictor: an "object"-context :class:`~contactkit.diffusion.predictor.ChoirPredictor`.
        settings: overrides of the fit's :class:`~contactkit.refine.refiner.RefinerSettings` (e.g. iterations).
    """

    def __init__(self, predictor: ChoirPredictor, **settings: Any) -> None:
        if predictor.context != "object":
            raise ContactkitError(f"synthesis needs an object-conditioned model, got context {predictor.context!r}")
        self.predictor = predictor
        self.settings = {"optimize": ("global_orient", "hand_pose", "transl"), **settings}
        self.name = f"diffusion: {predictor.name} ({predictor.sampler}, {predictor.steps} steps)"

    def __call__(self, hand: Any, obj: Any, cfg: Any, rng: np.random.Generator, dtype: torch.dtype
                 ) -> dict[str, torch.Tensor]:
        """``cfg.batch_size`` candidates for ``obj`` (object frame = world frame): parameters (K, ...),
        ``vertices (K, V, 3)`` and the fit's final ``loss (K,)``."""
        from contactkit.targets import GroupedSDF

        k = cfg.batch_size
        pts, nrm = obj.sample_surface(self.predictor.spec.num_points, seed=0)
        p = torch.as_tensor(np.array(pts), dtype=torch.float32).unsqueeze(0).expand(k, -1, -1).contiguous()
        field = self.predictor.sample_fields(p, None, seed=int(rng.integers(2**31 - 1)))
        init = initial_params_from_field(hand, _cast(field, dtype))
        init = HandParamsInit(*(x.to(dtype) for x in (init.global_orient, init.hand_pose, init.betas, init.transl)))
        objects = ObjectBatch(
            p.to(dtype), torch.as_tensor(np.array(nrm), dtype=dtype).unsqueeze(0).expand(k, -1, -1),
            torch.eye(3, dtype=dtype).expand(k, 3, 3).contiguous(), torch.zeros(k, 3, dtype=dtype),
            GroupedSDF([obj.sdf_grid(cfg.sdf_resolution).to("cpu", dtype)], torch.zeros(k, dtype=torch.long)),
        )
        res = fit_fields(hand, init, objects, _cast(field, dtype), seed=int(rng.integers(2**31 - 1)),
                         **self.settings)
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

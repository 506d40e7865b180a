"""Learned CHOIR targets (contract B of the refinement resolver): sample one CHOIR field per grasp from a trained
JointDiffusion model.

``load_choir_predictor(hand)`` loads the shipped refinement model (context "noisy"); ``predictor.predict(grasps,
hand)`` returns :class:`ChoirTargets` whose ``field`` is the :class:`~contactkit.contact.choir.ChoirField` the
``choir`` method fits (object frame: basis grid, sampled ``d_H``, contact Gaussians). CHOIR is defined on the 32
anchors every contactkit hand derives (:meth:`HandModel.anchors`), so a model trained on OpenHand serves MANO
through MANO's own anchors; no hand-specific weights are needed.

Sampling composes the network and the sampler without either knowing the other: the network's two noise
predictions are packed into one flat vector for :func:`contactkit.diffusion.schedule.sample`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contactkit.contact.choir import ChoirField
from contactkit.diffusion.checkpoint import DiffusionCheckpoint, load_diffusion
from contactkit.diffusion.representation import (
    field_from_raw,
    grasp_geometry,
    noisy_context_raw,
    object_context_raw,
)
from contactkit.diffusion.schedule import sample, sampling_scheduler
from contactkit.errors import ContactkitError

__all__ = ["DEFAULT_REFINE_SAMPLES", "DEFAULT_SAMPLER", "DEFAULT_STEPS", "WEIGHTS_DIR", "ChoirPredictor",
           "ChoirTargets", "load_choir_predictor", "shipped_weights"]

#: Default sampler and steps: DPM-Solver++ (2nd order) in 5 steps. For one sample, 10 steps gave the same refinement
#: quality as DDIM in 50 (session 5); for the mean of 16 samples, 5 steps gave the same as 10 (43.4 vs 44.0 mm MPJPE on
#: 16 validation inputs) at half the cost (docs/jointdiffusion.md, "Speed"). DDIM, 50 steps, remains available.
DEFAULT_SAMPLER = "dpm"
DEFAULT_STEPS = 5
#: Samples averaged per grasp by a refinement ("noisy") model: the field handed to the fit is the mean of this many
#: independent samples (in the standardised space the network samples in), a Monte-Carlo estimate of the posterior
#: mean given the noisy input. Chosen on validation objects (docs/jointdiffusion.md, "Where the error comes from"):
#: refined MPJPE 62 mm from one sample, 53 / 50 / 49 mm from the mean of 4 / 8 / 16 (input 84 mm; best of 16 or the
#: medoid, selected without ground truth, 55 mm). No ground truth is read. Synthesis ("object" context) always takes
#: single samples (diversity).
DEFAULT_REFINE_SAMPLES = 16
#: Folder of the shipped JointDiffusion weights (``jointdiffusion_{context}.pt``).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def shipped_weights(context: str) -> Path:
    """Path of the shipped model for ``context`` ("noisy" or "object"); it may not exist."""
    return WEIGHTS_DIR / f"jointdiffusion_{context}.pt"


@dataclass
class ChoirTargets:
    """Predicted CHOIR fields for N grasps.

    Attributes:
        field: the fields (N rows), object frame, metres.
        source: what produced them (model file, sampler, steps, seed) — recorded in the refinement metadata.
    """

    field: ChoirField
    source: str

    def __len__(self) -> int:
        return int(self.field.grid.shape[0])


class ChoirPredictor:
    """Samples CHOIR fields from a trained JointDiffusion model.

    Args:
        checkpoint: a loaded checkpoint (its ``state_dict`` are the weights sampled with).
        sampler: "dpm" (DPM-Solver++, default :data:`DEFAULT_SAMPLER`) or "ddim".
        steps: denoising steps (default :data:`DEFAULT_STEPS`).
        seed: seed of the initial noise (the same seed and inputs give the same fields).
        clip: bound of every step's ``x_0`` estimate in standardised units (default 3: three training standard
            deviations per entry; :func:`~contactkit.diffusion.schedule.sample`), or None for none.
        device: where the network runs.
        name: a label for :attr:`ChoirTargets.source`.
        samples: independent samples averaged into each returned field (standardised space; the Monte-Carlo
            posterior mean). Default: :data:`DEFAULT_REFINE_SAMPLES` for a "noisy" model, 1 for an "object" model
            (synthesis wants distinct grasps, not their mean). ``samples=1`` draws exactly the noise it always did.
    """

    def __init__(self, checkpoint: DiffusionCheckpoint, *, sampler: str = DEFAULT_SAMPLER, steps: int = DEFAULT_STEPS,
                 seed: int = 0, clip: float | None = 3.0, device: torch.device | str = "cpu", name: str = "",
                 samples: int | None = None) -> None:
        self.spec = checkpoint.spec
        self.net = checkpoint.build(device)
        self.sampler, self.steps, self.seed, self.clip = sampler, int(steps), int(seed), clip
        if samples is None:
            samples = DEFAULT_REFINE_SAMPLES if self.spec.context == "noisy" else 1
        if samples < 1:
            raise ContactkitError(f"samples must be >= 1, got {samples}")
        self.samples = int(samples)
        self.device = torch.device(device)
        self.name = name or "JointDiffusion"
        sampling_scheduler(sampler)  # validates the sampler name early

    @property
    def context(self) -> str:
        return self.spec.context

    @torch.no_grad()
    def sample_fields(self, obj_points: Tensor, anchors: Tensor | None = None, *, seed: int | None = None,
                      batch_size: int = 64) -> ChoirField:
        """One CHOIR per row (the mean of :attr:`samples` samples).

        Args:
            obj_points: (B, P, 3) float, metres — object surface samples in the object frame.
            anchors: (B, 32, 3) float, metres — the noisy hand's anchors in the object frame (context "noisy"
                only; must be None for "object").
            seed: overrides the predictor's seed.
            batch_size: samples per network batch (``batch_size // samples`` grasps, at least one).
        """
        if (anchors is None) != (self.context == "object"):
            raise ContactkitError(f"a {self.context!r}-context model needs anchors "
                                  f"{'None' if self.context == 'object' else '(B, 32, 3)'}")
        fields = []
        gen = torch.Generator().manual_seed(self.seed if seed is None else int(seed))
        step = max(1, batch_size // self.samples)
        for s in range(0, obj_points.shape[0], step):
            pts = obj_points[s:s + step].float()
            if anchors is None:
                ctx_raw, grid = object_context_raw(pts)
            else:
                ctx_raw, grid = noisy_context_raw(pts, anchors[s:s + step].float(), self.spec.assignment)
            fields.append(self._sample(ctx_raw, grid, pts, gen))
        return _cat_fields(fields)

    def _sample(self, ctx_raw: Tensor, grid: Tensor, pts: Tensor, gen: torch.Generator) -> ChoirField:
        sc, cfg, dev = self.spec.scaler, self.spec.model, self.device
        b, r = ctx_raw.shape[0], cfg.resolution
        n_vol, n_con = r ** 3, cfg.num_anchors * cfg.contact_dim
        k = self.samples
        tokens = self.net.encode_context(sc.norm_context(ctx_raw).to(dev))
        tokens = tokens.repeat(k, *([1] * (tokens.dim() - 1)))  # sample-major: row j * b + i is grasp i's j-th sample
        b = b * k

        def eps(x: Tensor, t: Tensor) -> Tensor:
            out = self.net.denoise(x[:, :n_vol].view(b, 1, r, r, r), x[:, n_vol:].view(b, cfg.num_anchors, -1), t,
                                   tokens)
            return torch.cat([out.eps_d.flatten(1), out.eps_c.flatten(1)], 1)

        x0 = sample(eps, (b, n_vol + n_con), sampling_scheduler(self.sampler, self.spec.schedule), self.steps,
                    generator=gen, device=dev, clip=self.clip)
        b = b // k
        x0 = x0.view(k, b, -1).mean(0)
        volume = sc.denorm_volume(x0[:, :n_vol].view(b, 1, r, r, r)).cpu()
        contact = sc.denorm_contact(x0[:, n_vol:].view(b, cfg.num_anchors, -1).cpu())
        return field_from_raw(volume, contact, grid, pts, self.spec.assignment)

    def predict(self, grasps: Any, hand: Any) -> ChoirTargets:
        """One sampled CHOIR per grasp of ``grasps`` (contract B): the noisy hand's anchors (through ``hand``'s own
        anchor definition) and the object's seeded surface samples condition the "noisy" model."""
        if self.context != "noisy":
            raise ContactkitError("predict needs a refinement model (context 'noisy'); this one is "
                                  f"{self.context!r}-conditioned")
        _check_hand(hand)
        geo = grasp_geometry(grasps, hand, num_points=self.spec.num_points, dtype=getattr(hand, "dtype", torch.float32))
        fld = self.sample_fields(geo["obj_points"], geo["anchors"])
        return ChoirTargets(fld, f"{self.name} ({self.sampler}, {self.steps} steps, clip {self.clip}, "
                                 f"mean of {self.samples} sample{'s' * (self.samples > 1)}, seed {self.seed})")


def _check_hand(hand: Any) -> None:
    anchors = getattr(hand, "anchors", None)
    if not callable(anchors):
        raise ContactkitError("the hand model must provide anchors(vertices) -> (B, 32, 3) for CHOIR")


def _cat_fields(fields: list[ChoirField]) -> ChoirField:
    if len(fields) == 1:
        return fields[0]
    cat = lambda name: torch.cat([getattr(f, name) for f in fields])  # noqa: E731
    return ChoirField(cat("grid"), cat("object_sq_dist"), cat("anchor_sq_dist"), fields[0].assignment,
                      cat("gauss_mean"), cat("gauss_chol"), cat("gauss_active"))


def load_choir_predictor(hand: Any, *, weights: str | os.PathLike[str] | None = None, context: str = "noisy",
                         **options: Any) -> ChoirPredictor:
    """The CHOIR predictor for ``hand`` (contract B).

    Args:
        hand: the hand model to serve (any hand with 32 anchors: OpenHand-trained weights serve MANO too).
        weights: a checkpoint written by ``contactkit train jointdiffusion`` (default: the shipped
            ``jointdiffusion_{context}.pt``).
        context: "noisy" (refinement) or "object" (synthesis).
        options: :class:`ChoirPredictor` options (sampler, steps, seed, device).

    Raises:
        ContactkitError: no weights are installed, or the file is not a JointDiffusion model of that context.
    """
    _check_hand(hand)
    path = Path(weights) if weights is not None else shipped_weights(context)
    if not path.is_file():
        name = getattr(hand, "name", "?")
        raise ContactkitError(
            f"no learned CHOIR predictor is installed for hand {name!r} ({path} is missing); train one with "
            "`contactkit train jointdiffusion` or use --targets oracle"
        )
    ckpt = load_diffusion(path)
    if ckpt.spec.context != context:
        raise ContactkitError(f"{path} is a {ckpt.spec.context!r}-context model, expected {context!r}")
    return ChoirPredictor(ckpt, name=f"JointDiffusion[{path.name}]", **options)

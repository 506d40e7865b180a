"""Noise schedules and samplers from ``diffusers`` (DDPM for training; DDIM or DPM-Solver++ for sampling).

The schedulers hold no weights and never see the network: :func:`sample` takes a plain callable
``eps(x_t (B, D), t (B,)) -> (B, D)`` over a flat sample, so the same loop serves any denoiser (the predictor
composes the U-Net's two outputs into one vector).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from contactkit.errors import ContactkitError

__all__ = ["DEFAULT_SCHEDULE", "SamplerKind", "add_noise", "sample", "sampling_scheduler", "training_scheduler"]

SamplerKind = Literal["ddim", "dpm"]
#: The training schedule (DDPM, 1000 steps, cosine betas; no clipping: samples are standardised, not in [-1, 1]).
DEFAULT_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
    "clip_sample": False,
}


def training_scheduler(schedule: dict[str, Any] | None = None) -> Any:
    """A ``diffusers.DDPMScheduler`` with ``schedule`` (default :data:`DEFAULT_SCHEDULE`)."""
    from diffusers import DDPMScheduler

    cfg = dict(DEFAULT_SCHEDULE if schedule is None else schedule)
    unknown = sorted(set(cfg) - set(DEFAULT_SCHEDULE))
    if unknown:
        raise ContactkitError(f"unknown schedule keys {unknown}; valid: {sorted(DEFAULT_SCHEDULE)}")
    return DDPMScheduler(**cfg)


def sampling_scheduler(kind: str, schedule: dict[str, Any] | None = None) -> Any:
    """A sampler for the training ``schedule``: ``"ddim"`` (deterministic DDIM, eta 0) or ``"dpm"``
    (DPM-Solver++ multistep, second order)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    base = training_scheduler(schedule).config
    if kind == "ddim":
        return DDIMScheduler.from_config(base)
    if kind == "dpm":
        return DPMSolverMultistepScheduler.from_config(base, algorithm_type="dpmsolver++", solver_order=2)
    raise ContactkitError(f"sampler must be 'ddim' or 'dpm', got {kind!r}")


def add_noise(scheduler: Any, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` for per-sample timesteps ``t`` (B,) (any sample shape)."""
    return scheduler.add_noise(x0, noise, t)


@torch.no_grad()
def sample(
    eps: Callable[[Tensor, Tensor], Tensor],
    shape: tuple[int, ...],
    scheduler: Any,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    init_noise: Tensor | None = None,
    clip: float | None = None,
) -> Tensor:
    """Draw samples by the reverse process.

    With ``clip``, every step's implied ``x_0`` estimate ``(x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` is clamped
    to ``[-clip, clip]`` and the noise prediction handed to the scheduler is the one consistent with the clamped
    estimate (``diffusers``' ``clip_sample``, applied the same way for every sampler). Samples are standardised
    per entry, so ``clip = 3`` keeps them within three training standard deviations: an imperfect denoiser's
    errors are otherwise amplified by ``1 / sqrt(abar_t)`` at the first, noisiest steps and its samples diverge.

    Args:
        eps: noise prediction ``eps(x_t (B, D...), t (B,) int64) -> same shape as x_t``.
        shape: sample shape ``(B, D...)``.
        scheduler: a sampling scheduler (:func:`sampling_scheduler`); its timesteps are (re)set here.
        steps: number of denoising steps.
        generator: seeds the initial noise.
        init_noise: the initial ``x_T`` (drawn from N(0, I) when None).
        clip: bound of the ``x_0`` estimates (standardised units), or None.

    Returns:
        ``x_0`` estimates of shape ``shape``.
    """
    if steps < 1:
        raise ContactkitError(f"steps must be >= 1, got {steps}")
    if clip is not None and not clip > 0:
        raise ContactkitError(f"clip must be > 0, got {clip}")
    scheduler.set_timesteps(steps, device=device)
    if init_noise is None:
        x = torch.randn(shape, generator=generator, dtype=dtype).to(device)
    else:
        x = init_noise.to(device=device, dtype=dtype)
    x = x * scheduler.init_noise_sigma
    abar = scheduler.alphas_cumprod.to(device=device, dtype=dtype)
    for t in scheduler.timesteps:
        tb = torch.full((shape[0],), int(t), dtype=torch.long, device=device)
        e = eps(scheduler.scale_model_input(x, t), tb)
        if clip is not None:
            a = abar[int(t)]
            x0 = ((x - (1 - a).sqrt() * e) / a.sqrt()).clamp(-clip, clip)
            e = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = scheduler.step(e, t, x).prev_sample
    return x

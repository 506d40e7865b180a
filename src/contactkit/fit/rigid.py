"""Least-squares rigid (or similarity) alignment of corresponding point sets: Kabsch / Umeyama (1991)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.contact.terms import check_points
from contactkit.errors import ShapeError

__all__ = ["RigidFit", "rigid_fit"]


@dataclass
class RigidFit:
    """``target ~ scale * source @ rotation.T + translation``.

    Attributes:
        rotation: (B, 3, 3) proper rotations (det +1).
        translation: (B, 3) metres.
        scale: (B,) (ones unless fitted).
        rms: (B,) root-mean-square residual, metres.
    """

    rotation: Tensor
    translation: Tensor
    scale: Tensor
    rms: Tensor


def rigid_fit(source: Tensor, target: Tensor, *, with_scale: bool = False, weights: Tensor | None = None) -> RigidFit:
    """Best rotation, translation (and optionally scale) mapping ``source`` onto ``target`` (Umeyama 1991).

    Args:
        source: (B, N, 3) float, N >= 3 not all collinear.
        target: (B, N, 3) float, corresponding points.
        with_scale: also fit a uniform scale (similarity transform).
        weights: (B, N) non-negative point weights, or None for equal weights.

    Returns:
        :class:`RigidFit`; differentiable almost everywhere (SVD).
    """
    check_points("source", source)
    check_points("target", target, batch=source.shape[0], count=source.shape[1])
    if source.shape[1] < 3:
        raise ShapeError(f"source needs at least 3 points, got {source.shape[1]}")
    w = torch.ones(source.shape[:2], dtype=source.dtype, device=source.device) if weights is None else weights
    if w.shape != source.shape[:2] or bool((w < 0).any()):
        raise ShapeError(f"weights must be non-negative with shape {tuple(source.shape[:2])}")
    w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
    mu_s = (w.unsqueeze(-1) * source).sum(1)
    mu_t = (w.unsqueeze(-1) * target).sum(1)
    s_c = source - mu_s.unsqueeze(1)
    t_c = target - mu_t.unsqueeze(1)
    cov = (t_c * w.unsqueeze(-1)).transpose(1, 2) @ s_c  # (B, 3, 3) sum_i w_i t_i s_i^T
    u, sig, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    diag = torch.ones_like(sig)
    diag = torch.cat([diag[:, :2], d.unsqueeze(-1)], dim=-1)
    rot = u @ torch.diag_embed(diag) @ vh
    if with_scale:
        var_s = (w * s_c.pow(2).sum(-1)).sum(1).clamp_min(1e-18)
        scale = (sig * diag).sum(-1) / var_s
    else:
        scale = torch.ones_like(d)
    transl = mu_t - scale.unsqueeze(-1) * (rot @ mu_s.unsqueeze(-1)).squeeze(-1)
    fitted = scale[:, None, None] * source @ rot.transpose(1, 2) + transl.unsqueeze(1)
    rms = (fitted - target).pow(2).sum(-1).mean(1).sqrt()
    return RigidFit(rotation=rot, translation=transl, scale=scale, rms=rms)

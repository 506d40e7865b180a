"""Training losses of the contact estimators.

- DeepContact (paper 000): contact in [0, 1] discretised into ``n_bins`` equal bins, class-weighted cross-entropy
  (weights from inverse bin frequency, so the rare high-contact bins are not drowned by the zero bin).
- PiCR (paper 004): binary focal loss on vertex contact (eq. 5, α = inverse class frequency, γ = 2), multi-class
  focal loss on the contact region of positive points (eq. 6), BCE on the anchor elasticity of positive points
  (eq. 7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def contact_to_bins(contact: Tensor, n_bins: int) -> Tensor:
    """Discretise contact values in [0, 1] into ``n_bins`` equal bins.

    Args:
        contact: (...,) float in [0, 1].
        n_bins: number of bins.

    Returns:
        (...,) long bin indices in [0, n_bins).
    """
    return (contact.clamp(0.0, 1.0) * n_bins).long().clamp_max(n_bins - 1)


def bins_to_contact(logits: Tensor) -> Tensor:
    """Expected contact value from bin logits: the softmax-weighted mean of the bin centres.

    Args:
        logits: (..., n_bins) unnormalised scores.

    Returns:
        (...,) float in [0, 1].
    """
    n_bins = logits.shape[-1]
    centres = (torch.arange(n_bins, dtype=logits.dtype, device=logits.device) + 0.5) / n_bins
    return (torch.softmax(logits, dim=-1) * centres).sum(-1)


def bins_probability_above(logits: Tensor, level: float = 0.5) -> Tensor:
    """Probability that contact exceeds ``level``: the softmax mass of the bins whose lower edge is >= level.

    Args:
        logits: (..., n_bins) unnormalised scores.
        level: contact level in [0, 1] (0.5: bins 5-9 of 10).

    Returns:
        (...,) float in [0, 1].
    """
    n_bins = logits.shape[-1]
    lower = torch.arange(n_bins, dtype=logits.dtype, device=logits.device) / n_bins
    return (torch.softmax(logits, dim=-1) * (lower >= level - 1e-9).to(logits.dtype)).sum(-1)


def inverse_frequency_weights(
    labels: Tensor, n_classes: int, *, power: float = 0.5, max_ratio: float = 10.0
) -> Tensor:
    """Class weights ∝ frequency^-power, normalised to mean 1 over present classes, ratio capped at ``max_ratio``.

    ``power = 1`` is plain inverse frequency; the default 0.5 (inverse square root) keeps the rare high-contact
    bins from being drowned by the zero bin without making the network predict contact everywhere (with plain
    inverse frequency and ~95 % zero-contact points, it does).

    Args:
        labels: (...,) long class labels.
        n_classes: number of classes.
        power: exponent of the inverse frequency.
        max_ratio: cap on the largest / smallest weight, so empty bins do not explode.

    Returns:
        (n_classes,) float weights.
    """
    counts = torch.bincount(labels.reshape(-1), minlength=n_classes).to(torch.float64)
    freq = counts / counts.sum().clamp_min(1.0)
    present = counts > 0
    weights = torch.zeros(n_classes, dtype=torch.float64, device=labels.device)
    weights[present] = freq[present].pow(-power)
    weights[present] = weights[present] / weights[present].min()
    weights = weights.clamp_max(max_ratio)
    weights[~present] = max_ratio
    return (weights / weights[present].mean()).float()


def weighted_bin_cross_entropy(logits: Tensor, contact: Tensor, class_weights: Tensor) -> Tensor:
    """Class-weighted cross-entropy of binned contact.

    Args:
        logits: (B, N, n_bins).
        contact: (B, N) target contact in [0, 1].
        class_weights: (n_bins,) weights.

    Returns:
        scalar mean loss.
    """
    n_bins = logits.shape[-1]
    target = contact_to_bins(contact, n_bins)
    return F.cross_entropy(logits.reshape(-1, n_bins), target.reshape(-1), weight=class_weights.to(logits))


def binary_focal_loss(logits: Tensor, target: Tensor, *, gamma: float = 2.0, mask: Tensor | None = None) -> Tensor:
    """Binary focal loss with α = inverse class frequency of the batch (paper 004 eq. 5).

    Args:
        logits: (B, N) vertex-contact logits.
        target: (B, N) {0, 1} float targets.
        gamma: focusing parameter (2 in the paper).
        mask: optional (B, N) bool of points that count.

    Returns:
        scalar mean loss over counted points.
    """
    if mask is None:
        mask = torch.ones_like(target, dtype=torch.bool)
    prob = torch.sigmoid(logits)
    p_true = torch.where(target > 0.5, prob, 1.0 - prob)
    pos_frac = target[mask].mean().clamp(1e-3, 1 - 1e-3)
    alpha = torch.where(target > 0.5, 1.0 / pos_frac, 1.0 / (1.0 - pos_frac)) * 0.5
    log_p = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    loss = -alpha * (1.0 - p_true).pow(gamma) * log_p
    return loss[mask].mean() if mask.any() else logits.sum() * 0.0


def multiclass_focal_loss(logits: Tensor, target: Tensor, mask: Tensor, *, gamma: float = 2.0) -> Tensor:
    """Multi-class focal loss on the points of ``mask`` (paper 004 eq. 6).

    Args:
        logits: (B, N, C) region logits.
        target: (B, N) long region labels.
        mask: (B, N) bool, the points whose ground-truth vertex contact is positive.
        gamma: focusing parameter.

    Returns:
        scalar mean loss (0 with a gradient path when no point is masked).
    """
    if not mask.any():
        return logits.sum() * 0.0
    log_prob = torch.log_softmax(logits[mask], dim=-1)
    log_m = log_prob.gather(-1, target[mask][:, None])[:, 0]
    return (-(1.0 - log_m.exp()).pow(gamma) * log_m).mean()


def masked_bce(logits: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Binary cross-entropy of the anchor elasticity on masked points (paper 004 eq. 7).

    Args:
        logits: (B, N) elasticity logits; target: (B, N) elasticity in [0, 1]; mask: (B, N) bool.
    """
    if not mask.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[mask], target[mask])

"""Converters between PCA pose coefficients and axis-angle hand pose (MANO convention).

A MANO-style layer maps ``k`` PCA coefficients to the 45 axis-angle values of the 15 finger joints by
``hand_pose = coeffs @ components[:k]`` (the rows of ``components (45, 45)`` are the principal directions,
orthonormal). The PCA mean is *not* added here: like the MANO layers, a model adds its ``pose_offset`` (the
mean when ``flat_hand_mean=False``, zero otherwise) to whatever axis-angle pose it receives.
"""

from __future__ import annotations

import numpy as np
import torch

from contactkit.errors import ShapeError

__all__ = ["pca_to_axis_angle", "axis_angle_to_pca", "pca_basis_from_samples"]


def _check_components(components: torch.Tensor) -> None:
    if components.dim() != 2 or components.shape[1] != 45 or components.shape[0] < 1:
        raise ShapeError(f"components must have shape (k, 45) with k >= 1, got {tuple(components.shape)}")


def pca_to_axis_angle(coeffs: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
    """PCA coefficients to axis-angle hand pose.

    Args:
        coeffs: (B, k) float PCA coefficients, k <= number of component rows.
        components: (K, 45) float principal directions (rows), K >= k.

    Returns:
        (B, 45) float axis-angle pose of the 15 finger joints (MANO joint order), radians.
    """
    _check_components(components)
    if coeffs.dim() != 2 or not 1 <= coeffs.shape[1] <= components.shape[0]:
        raise ShapeError(
            f"coeffs must have shape (B, k) with 1 <= k <= {components.shape[0]}, got {tuple(coeffs.shape)}"
        )
    k = coeffs.shape[1]
    return coeffs @ components[:k].to(coeffs)


def axis_angle_to_pca(pose: torch.Tensor, components: torch.Tensor, k: int) -> torch.Tensor:
    """Least-squares PCA coefficients of an axis-angle hand pose.

    For orthonormal components this is the projection ``pose @ components[:k].T``; in general the
    pseudo-inverse is used, so ``axis_angle_to_pca(pca_to_axis_angle(c)) == c`` for any full-row-rank basis.

    Args:
        pose: (B, 45) float axis-angle, radians.
        components: (K, 45) float principal directions (rows).
        k: number of coefficients, 1 <= k <= K.

    Returns:
        (B, k) float coefficients.
    """
    _check_components(components)
    if pose.dim() != 2 or pose.shape[1] != 45:
        raise ShapeError(f"pose must have shape (B, 45), got {tuple(pose.shape)}")
    if not 1 <= int(k) <= components.shape[0]:
        raise ShapeError(f"k must be in [1, {components.shape[0]}], got {k}")
    comp = components[: int(k)].to(pose)
    return pose @ torch.linalg.pinv(comp)


def pca_basis_from_samples(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal directions of a set of pose samples.

    Args:
        samples: (N, 45) float axis-angle poses, N >= 46 for a full basis.

    Returns:
        ``(components (45, 45), mean (45,), std (45,))``: orthonormal rows sorted by decreasing variance,
        the sample mean, and the standard deviation of the samples along each component. The sign of each
        row is fixed so its largest-magnitude entry is positive (deterministic output).
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 45:
        raise ShapeError(f"samples must have shape (N, 45), got {x.shape}")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    sign = np.sign(vt[np.arange(45), np.abs(vt).argmax(axis=1)])
    vt = vt * sign[:, None]
    std = np.zeros(45)
    std[: len(s)] = s[:45] / np.sqrt(max(len(x) - 1, 1))
    return vt, mean, std

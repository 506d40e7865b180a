"""Keypoint accuracy as paper 003 reports it: mean 3D keypoint error (mm) and the 3D PCK curve with its AUC.

PCK follows the paper's Sec. 4.2: a pose is correct at threshold ``t`` when the **mean** distance of its
keypoints to the ground truth is below ``t`` (a per-pose criterion, not per keypoint).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ShapeError

__all__ = ["PCK_THRESHOLDS_MM", "keypoint_errors_mm", "pck_auc", "pck_curve"]

#: Default PCK thresholds, mm (0 to 50 in 1 mm steps).
PCK_THRESHOLDS_MM: np.ndarray = np.arange(0.0, 50.5, 1.0)


def keypoint_errors_mm(pred: Tensor, target: Tensor) -> Tensor:
    """Per-keypoint Euclidean errors (B, N) in mm of ``pred`` against ``target`` (both (B, N, 3), metres)."""
    if pred.shape != target.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ShapeError(f"pred and target must both be (B, N, 3), got {tuple(pred.shape)} and {tuple(target.shape)}")
    return (pred - target).norm(dim=-1) * 1000.0


def pck_curve(pose_errors_mm: np.ndarray | Tensor, thresholds_mm: np.ndarray = PCK_THRESHOLDS_MM) -> np.ndarray:
    """Fraction (T,) of poses whose mean keypoint error (``pose_errors_mm`` (M,), mm) is <= each threshold."""
    err = np.asarray(pose_errors_mm.detach().cpu() if isinstance(pose_errors_mm, torch.Tensor) else pose_errors_mm,
                     dtype=np.float64).reshape(-1)
    if err.size == 0:
        raise ShapeError("pose_errors_mm is empty")
    return (err[None, :] <= np.asarray(thresholds_mm, dtype=np.float64)[:, None]).mean(1)


def pck_auc(pck: np.ndarray, thresholds_mm: np.ndarray = PCK_THRESHOLDS_MM) -> float:
    """Area under a PCK curve by the trapezoidal rule, normalised by the threshold range (in [0, 1])."""
    t = np.asarray(thresholds_mm, dtype=np.float64)
    p = np.asarray(pck, dtype=np.float64)
    if p.shape != t.shape or t.size < 2:
        raise ShapeError(f"pck must match thresholds_mm of >= 2 entries, got {p.shape} and {t.shape}")
    return float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(t)) / (t[-1] - t[0]))

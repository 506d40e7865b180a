"""Pose metrics: joint, vertex and surface errors between a prediction and a reference.

Pure torch functions, batch-first, device-agnostic, float32 or float64 (the result keeps the input dtype and
device). All inputs and outputs are in metres; :mod:`contactkit.metrics.evaluate` converts to millimetres.
"""

from __future__ import annotations

import torch

from contactkit.errors import ShapeError

#: Default PCK thresholds: 0 to 50 mm in 1 mm steps (metres).
PCK_THRESHOLDS_M = torch.linspace(0.0, 0.05, 51, dtype=torch.float64)


def _check_pair(pred: torch.Tensor, target: torch.Tensor, pname: str, tname: str) -> None:
    for t, n in ((pred, pname), (target, tname)):
        if not isinstance(t, torch.Tensor):
            raise ShapeError(f"Expected {n} to be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 3 or t.shape[-1] != 3:
            raise ShapeError(f"Expected {n} to be of shape (B, N, 3), got {tuple(t.shape)}")
    if pred.shape != target.shape:
        raise ShapeError(f"{pname} has shape {tuple(pred.shape)} but {tname} has shape {tuple(target.shape)}")
    if pred.shape[1] == 0:
        raise ShapeError(f"{pname} has no points (N = 0)")


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error: mean over points of the Euclidean distance.

    Args:
        pred: (B, J, 3) float, metres (keypoints or vertices).
        target: (B, J, 3) float, metres, same shape.

    Returns:
        (B,) mean distance in metres.
    """
    _check_pair(pred, target, "pred", "target")
    return torch.linalg.norm(pred - target, dim=-1).mean(dim=-1)


def mpvpe(pred_verts: torch.Tensor, target_verts: torch.Tensor) -> torch.Tensor:
    """Mean per-vertex position error (B,) in metres; ``pred_verts``/``target_verts`` are (B, V, 3) metres."""
    _check_pair(pred_verts, target_verts, "pred_verts", "target_verts")
    return torch.linalg.norm(pred_verts - target_verts, dim=-1).mean(dim=-1)


def root_aligned_mpjpe(pred: torch.Tensor, target: torch.Tensor, root: int = 0) -> torch.Tensor:
    """MPJPE after translating both sets so that joint ``root`` (the wrist, 0) is at the origin.

    Args:
        pred: (B, J, 3) float, metres.
        target: (B, J, 3) float, metres.
        root: index of the root joint.

    Returns:
        (B,) metres.
    """
    _check_pair(pred, target, "pred", "target")
    if not 0 <= root < pred.shape[1]:
        raise ShapeError(f"root index {root} out of range for {pred.shape[1]} joints")
    return mpjpe(pred - pred[:, root : root + 1], target - target[:, root : root + 1])


def procrustes_align(pred: torch.Tensor, target: torch.Tensor, *, scale: bool = True) -> torch.Tensor:
    """Align ``pred`` to ``target`` per sample with the similarity (or rigid) transform of least squares.

    Umeyama's closed form: rotation from the SVD of the cross-covariance (reflections excluded), optional
    isotropic scale, translation matching the centroids.

    Args:
        pred: (B, N, 3) float.
        target: (B, N, 3) float.
        scale: also fit an isotropic scale (PA-MPJPE convention).

    Returns:
        (B, N, 3) aligned copy of ``pred``.
    """
    _check_pair(pred, target, "pred", "target")
    mu_p = pred.mean(dim=1, keepdim=True)
    mu_t = target.mean(dim=1, keepdim=True)
    p = pred - mu_p
    t = target - mu_t
    cov = t.transpose(1, 2) @ p  # (B, 3, 3) = sum t p^T
    u, s, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    diag = torch.ones_like(s)
    diag[:, -1] = d
    rot = u @ torch.diag_embed(diag) @ vh  # maps p to t
    if scale:
        var_p = (p**2).sum(dim=(1, 2))
        factor = (s * diag).sum(dim=-1) / var_p.clamp_min(torch.finfo(pred.dtype).tiny)
    else:
        factor = torch.ones_like(s[:, 0])
    return factor[:, None, None] * (p @ rot.transpose(1, 2)) + mu_t


def pa_mpjpe(pred: torch.Tensor, target: torch.Tensor, *, scale: bool = True) -> torch.Tensor:
    """Procrustes-aligned MPJPE (B,) in metres: MPJPE after :func:`procrustes_align` (with scale)."""
    return mpjpe(procrustes_align(pred, target, scale=scale), target)


def pck_curve(
    pred: torch.Tensor, target: torch.Tensor, thresholds: torch.Tensor | None = None, *, per: str = "keypoint"
) -> torch.Tensor:
    """3D PCK: fraction of correct keypoints at each distance threshold.

    Args:
        pred: (B, J, 3) float, metres.
        target: (B, J, 3) float, metres.
        thresholds: (T,) metres, increasing; default :data:`PCK_THRESHOLDS_M` (0-50 mm, 1 mm steps).
        per: ``"keypoint"`` (a keypoint is correct when its error is <= the threshold; the usual 3D PCK) or
            ``"pose"`` (paper 003's wording: a pose is correct when its mean joint error is <= the threshold).

    Returns:
        (B, T) fractions in [0, 1].
    """
    _check_pair(pred, target, "pred", "target")
    thr = (PCK_THRESHOLDS_M if thresholds is None else thresholds).to(pred.device, pred.dtype)
    if thr.ndim != 1 or thr.numel() == 0:
        raise ShapeError(f"Expected thresholds to be of shape (T,) with T > 0, got {tuple(thr.shape)}")
    err = torch.linalg.norm(pred - target, dim=-1)  # (B, J)
    if per == "keypoint":
        return (err[:, :, None] <= thr).to(pred.dtype).mean(dim=1)
    if per == "pose":
        return (err.mean(dim=1)[:, None] <= thr).to(pred.dtype)
    raise ShapeError(f"per must be one of 'keypoint', 'pose'; got {per!r}")


def pck_auc(curve: torch.Tensor, thresholds: torch.Tensor | None = None) -> torch.Tensor:
    """Area under a PCK curve, normalised by the threshold range: (B,) in [0, 1].

    Args:
        curve: (B, T) output of :func:`pck_curve`.
        thresholds: (T,) the thresholds used, metres (default :data:`PCK_THRESHOLDS_M`).
    """
    thr = (PCK_THRESHOLDS_M if thresholds is None else thresholds).to(curve.device, curve.dtype)
    if curve.ndim != 2 or curve.shape[1] != thr.numel() or thr.numel() < 2:
        raise ShapeError(f"Expected curve (B, {thr.numel()}) with at least 2 thresholds, got {tuple(curve.shape)}")
    span = thr[-1] - thr[0]
    return torch.trapezoid(curve, thr, dim=-1) / span


def chamfer_distance(points_a: torch.Tensor, points_b: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer distance (B,) in metres: mean of the two mean nearest-neighbour distances.

    ``0.5 * (mean_a min_b |a - b| + mean_b min_a |a - b|)`` (unsquared distances, so the unit is a length).

    Args:
        points_a: (B, N, 3) float, metres.
        points_b: (B, M, 3) float, metres.
    """
    for t, n in ((points_a, "points_a"), (points_b, "points_b")):
        if not isinstance(t, torch.Tensor) or t.ndim != 3 or t.shape[-1] != 3 or t.shape[1] == 0:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ShapeError(f"Expected {n} to be a tensor of shape (B, N, 3) with N > 0, got {shape}")
    if points_a.shape[0] != points_b.shape[0]:
        raise ShapeError(f"points_a has batch {points_a.shape[0]} but points_b has batch {points_b.shape[0]}")
    from contactkit.geometry.knn import nearest_points

    d_ab = nearest_points(points_a, points_b).dist
    d_ba = nearest_points(points_b, points_a).dist
    return 0.5 * (d_ab.mean(dim=1) + d_ba.mean(dim=1))

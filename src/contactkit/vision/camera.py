"""Pinhole cameras (OpenCV convention: x right, y down, z forward, ``u = fx x / z + cx``) for keypoint lifting.

Pure tensor functions: projection, pixels to normalised image coordinates, the camera-frame translation of a
root-relative 3D shape from its 2D projections (linear least squares), and random look-at cameras around a
hand-object pair (the lifter's training views).
"""

from __future__ import annotations

import torch
from torch import Tensor

from contactkit.errors import ShapeError

__all__ = [
    "camera_to_world",
    "look_at",
    "pixels_to_normalized",
    "project",
    "random_cameras",
    "translation_from_projections",
]


def _check_k(k: Tensor, batch: int) -> None:
    if not isinstance(k, Tensor) or k.shape != (batch, 3, 3):
        shape = tuple(k.shape) if isinstance(k, Tensor) else type(k).__name__
        raise ShapeError(f"K must have shape ({batch}, 3, 3), got {shape}")


def project(points: Tensor, k: Tensor) -> Tensor:
    """Pixels (B, N, 2) of camera-frame ``points (B, N, 3)`` (metres, z > 0) with intrinsics ``k (B, 3, 3)``."""
    _check_k(k, points.shape[0])
    uvw = points @ k.transpose(1, 2)
    return uvw[..., :2] / uvw[..., 2:3]


def pixels_to_normalized(uv: Tensor, k: Tensor) -> Tensor:
    """Normalised image coordinates ``(x/z, y/z)`` (B, N, 2) of pixels ``uv (B, N, 2)`` under ``k (B, 3, 3)``."""
    _check_k(k, uv.shape[0])
    fx, fy = k[:, 0, 0, None], k[:, 1, 1, None]
    cx, cy = k[:, 0, 2, None], k[:, 1, 2, None]
    skew = k[:, 0, 1, None]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - skew * y) / fx
    return torch.stack([x, y], dim=-1)


def translation_from_projections(relative: Tensor, normalized: Tensor) -> Tensor:
    """Camera-frame translation ``T`` (B, 3) placing a root-relative shape on its projections.

    Solves ``min_T sum_i |pi(X_i + T) - x_i|`` in its linear form: for each point ``X = (X, Y, Z)`` with
    normalised projection ``(x, y)``, ``T_x - x T_z = x Z - X`` and ``T_y - y T_z = y Z - Y`` (least squares over
    all points; exact when the projections are exact). Differentiable in both inputs.

    Args:
        relative: (B, N, 3) float, metres, the shape relative to any root (N >= 2).
        normalized: (B, N, 2) float, normalised image coordinates of ``relative + T``.

    Returns:
        (B, 3) float, metres.
    """
    if relative.ndim != 3 or relative.shape[-1] != 3 or normalized.shape != relative.shape[:2] + (2,):
        raise ShapeError(f"relative must be (B, N, 3) and normalized (B, N, 2); got {tuple(relative.shape)} "
                         f"and {tuple(normalized.shape)}")
    x, y = normalized[..., 0], normalized[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows = torch.cat([torch.stack([one, zero, -x], -1), torch.stack([zero, one, -y], -1)], dim=1)  # (B, 2N, 3)
    rhs = torch.cat([x * relative[..., 2] - relative[..., 0], y * relative[..., 2] - relative[..., 1]], dim=1)
    ata = rows.transpose(1, 2) @ rows
    atb = rows.transpose(1, 2) @ rhs.unsqueeze(-1)
    return torch.linalg.solve(ata, atb).squeeze(-1)


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """World-to-camera rotations (B, 3, 3) of cameras at ``eye`` looking at ``target`` (OpenCV axes).

    ``up`` (B, 3) is the world direction that appears upward in the image (-y of the camera); it must not be
    parallel to the viewing direction.
    """
    z = torch.nn.functional.normalize(target - eye, dim=-1)
    x = torch.nn.functional.normalize(torch.cross(z, up, dim=-1), dim=-1)
    y = torch.cross(z, x, dim=-1)
    return torch.stack([x, y, z], dim=1)


def random_cameras(
    centres: Tensor,
    generator: torch.Generator,
    *,
    distance: tuple[float, float] = (0.35, 0.7),
    focal: tuple[float, float] = (300.0, 450.0),
    image_size: int = 256,
    jitter: float = 0.02,
) -> tuple[Tensor, Tensor]:
    """Random cameras looking at ``centres`` (B, 3) from all directions, with uniform roll and random focal length.

    Args:
        centres: (B, 3) world points the cameras look at (e.g. the hand-object pair's centre), metres.
        generator: seeded torch generator (CPU).
        distance: range of camera distances, metres.
        focal: range of focal lengths, pixels (square pixels; principal point at the image centre).
        image_size: width = height of the virtual image, pixels.
        jitter: standard deviation of the look-at point around ``centres``, metres.

    Returns:
        ``(K (B, 3, 3), cam_from_world (B, 4, 4))`` in the dtype of ``centres`` (CPU).
    """
    b, dt = centres.shape[0], centres.dtype
    f64 = torch.float64
    direction = torch.nn.functional.normalize(torch.randn(b, 3, generator=generator, dtype=f64), dim=-1)
    dist = distance[0] + (distance[1] - distance[0]) * torch.rand(b, generator=generator, dtype=f64)
    target = centres.double() + jitter * torch.randn(b, 3, generator=generator, dtype=f64)
    eye = target + dist[:, None] * direction
    helper = torch.nn.functional.normalize(torch.randn(b, 3, generator=generator, dtype=f64), dim=-1)
    up = torch.nn.functional.normalize(helper - (helper * direction).sum(-1, keepdim=True) * direction, dim=-1)
    rot = look_at(eye, target, up)  # a random image-up direction: uniform roll
    ext = torch.eye(4, dtype=torch.float64).repeat(b, 1, 1)
    ext[:, :3, :3] = rot
    ext[:, :3, 3] = -(rot @ eye.unsqueeze(-1)).squeeze(-1)
    f = focal[0] + (focal[1] - focal[0]) * torch.rand(b, generator=generator, dtype=f64)
    k = torch.zeros(b, 3, 3, dtype=torch.float64)
    k[:, 0, 0], k[:, 1, 1] = f, f
    k[:, 0, 2] = k[:, 1, 2] = image_size / 2.0
    k[:, 2, 2] = 1.0
    return k.to(dt), ext.to(dt)


def camera_to_world(points: Tensor, cam_from_world: Tensor) -> Tensor:
    """World-frame points (B, N, 3) of camera-frame ``points`` under extrinsics ``cam_from_world`` (B, 4, 4)."""
    if cam_from_world.shape != (points.shape[0], 4, 4):
        raise ShapeError(f"cam_from_world must have shape ({points.shape[0]}, 4, 4), got {tuple(cam_from_world.shape)}")
    rot = cam_from_world[:, :3, :3].to(points)
    t = cam_from_world[:, :3, 3].to(points)
    return (points - t.unsqueeze(1)) @ rot

"""Rigid-transform helpers (batch-first torch).

Convention (as everywhere in contactkit): a rigid pose ``(rot, transl)`` maps object coordinates to world
coordinates, ``x_world = rot @ x_object + transl``, with ``rot (B, 3, 3)`` acting on column vectors and
``transl (B, 3)`` in metres. All functions keep the input dtype and device and are differentiable.
"""

from __future__ import annotations

import torch

from contactkit.errors import ShapeError
from contactkit.geometry._checks import check_tensor, shape_str
from contactkit.geometry.rotations import axis_angle_to_rotmat

__all__ = [
    "apply_rigid",
    "invert_rigid",
    "compose_rigid",
    "random_rotations",
    "to_homogeneous",
    "from_homogeneous",
]


def _check_pose(rot: torch.Tensor, transl: torch.Tensor) -> None:
    check_tensor(rot, "rot")
    check_tensor(transl, "transl")
    if rot.dim() != 3 or rot.shape[1:] != (3, 3):
        raise ShapeError(f"rot must have shape (B, 3, 3), got {shape_str(rot)}")
    if transl.dim() != 2 or transl.shape[1] != 3:
        raise ShapeError(f"transl must have shape (B, 3), got {shape_str(transl)}")
    if transl.shape[0] != rot.shape[0]:
        raise ShapeError(f"rot and transl batch sizes differ: {rot.shape[0]} vs {transl.shape[0]}")


def apply_rigid(points: torch.Tensor, rot: torch.Tensor, transl: torch.Tensor) -> torch.Tensor:
    """Apply ``x' = rot @ x + transl`` to every point.

    Args:
        points: (B, N, 3) float, metres.
        rot: (B, 3, 3) float rotation matrices.
        transl: (B, 3) float translations, metres.

    Returns:
        (B, N, 3) transformed points, same dtype/device as ``points``.
    """
    check_tensor(points, "points")
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ShapeError(f"points must have shape (B, N, 3), got {shape_str(points)}")
    _check_pose(rot, transl)
    if points.shape[0] != rot.shape[0]:
        raise ShapeError(f"points and rot batch sizes differ: {points.shape[0]} vs {rot.shape[0]}")
    return points @ rot.transpose(1, 2) + transl[:, None, :]


def invert_rigid(rot: torch.Tensor, transl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse pose: ``(rot^T, -rot^T @ transl)``.

    Args:
        rot: (B, 3, 3) float rotation matrices (assumed orthonormal).
        transl: (B, 3) float, metres.

    Returns:
        ``(rot_inv (B, 3, 3), transl_inv (B, 3))``.
    """
    _check_pose(rot, transl)
    rot_t = rot.transpose(1, 2)
    return rot_t, -(rot_t @ transl[:, :, None])[:, :, 0]


def compose_rigid(
    rot_a: torch.Tensor, transl_a: torch.Tensor, rot_b: torch.Tensor, transl_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose two poses: the result applies ``b`` first, then ``a`` (``x -> a(b(x))``).

    Args:
        rot_a, rot_b: (B, 3, 3) float rotation matrices.
        transl_a, transl_b: (B, 3) float, metres.

    Returns:
        ``(rot_a @ rot_b, rot_a @ transl_b + transl_a)`` with shapes (B, 3, 3) and (B, 3).
    """
    _check_pose(rot_a, transl_a)
    _check_pose(rot_b, transl_b)
    if rot_a.shape[0] != rot_b.shape[0]:
        raise ShapeError(f"pose batch sizes differ: {rot_a.shape[0]} vs {rot_b.shape[0]}")
    return rot_a @ rot_b, (rot_a @ transl_b[:, :, None])[:, :, 0] + transl_a


def random_rotations(
    n: int,
    sigma_rad: float,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Random rotations with a uniformly distributed axis and a Gaussian angle.

    The axis is uniform on the unit sphere and the angle is drawn from ``N(0, sigma_rad^2)``; this is the
    perturbation protocol of ContactOpt (``ΔR ~ N(0, 15°)``, i.e. ``sigma_rad = radians(15)``). Pass
    ``sigma_rad = inf`` for rotations uniform over SO(3) (drawn from normalised Gaussian quaternions instead).
    Sampling happens on the CPU with ``generator`` (so results do not depend on the device) and is then moved.

    Args:
        n: number of rotations, >= 0.
        sigma_rad: standard deviation of the rotation angle, radians, >= 0.
        generator: optional seeded CPU ``torch.Generator`` for reproducibility.
        dtype, device: of the result.

    Returns:
        (n, 3, 3) rotation matrices.
    """
    if n < 0:
        raise ShapeError(f"n must be >= 0, got {n}")
    if not sigma_rad >= 0:
        raise ShapeError(f"sigma_rad must be >= 0, got {sigma_rad}")
    if sigma_rad == float("inf"):
        q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
        q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        w, x, y, z = q.unbind(-1)
        rot = torch.stack(
            [
                1 - 2 * (y * y + z * z),
                2 * (x * y - w * z),
                2 * (x * z + w * y),
                2 * (x * y + w * z),
                1 - 2 * (x * x + z * z),
                2 * (y * z - w * x),
                2 * (x * z - w * y),
                2 * (y * z + w * x),
                1 - 2 * (x * x + y * y),
            ],
            dim=-1,
        ).reshape(n, 3, 3)
        return rot.to(dtype=dtype, device=device)
    axis = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    angle = torch.randn(n, generator=generator, dtype=torch.float64) * float(sigma_rad)
    return axis_angle_to_rotmat(axis * angle[:, None]).to(dtype=dtype, device=device)


def to_homogeneous(rot: torch.Tensor, transl: torch.Tensor) -> torch.Tensor:
    """Pack a pose into 4x4 homogeneous matrices ``[[rot, transl], [0, 0, 0, 1]]``.

    Args:
        rot: (B, 3, 3) float.
        transl: (B, 3) float, metres.

    Returns:
        (B, 4, 4) float, same dtype/device.
    """
    _check_pose(rot, transl)
    top = torch.cat([rot, transl[:, :, None]], dim=2)
    bottom = torch.zeros(rot.shape[0], 1, 4, dtype=rot.dtype, device=rot.device)
    bottom[:, 0, 3] = 1
    return torch.cat([top, bottom], dim=1)


def from_homogeneous(mat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split (B, 4, 4) homogeneous matrices into ``(rot (B, 3, 3), transl (B, 3))``."""
    check_tensor(mat, "mat")
    if mat.dim() != 3 or mat.shape[1:] != (4, 4):
        raise ShapeError(f"mat must have shape (B, 4, 4), got {shape_str(mat)}")
    return mat[:, :3, :3], mat[:, :3, 3]

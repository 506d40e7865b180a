"""Pinhole cameras in the OpenCV convention: x right, y down, z forward; pixel ``(u, v)`` with ``u`` the column
and ``v`` the row, the centre of the top-left pixel at ``(0, 0)``; ``u = fx x / z + cx``, ``v = fy y / z + cy``.

Cameras are placed around a hand–object pair by :func:`sample_cameras`: uniform directions on the sphere around
the pair's centre, at the distance where its bounding sphere fills ``fill`` of the image height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contactkit.errors import ContactkitError

__all__ = ["Camera", "intrinsics", "look_at", "pinhole_intrinsics", "project", "sample_cameras", "to_camera"]


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    Attributes:
        K: ``(3, 3)`` float64 pixel intrinsics.
        cam_from_world: ``(4, 4)`` float64 rigid transform, ``x_cam = R x_world + t`` (metres).
        width, height: image size in pixels.
        fovy_deg: vertical field of view (degrees), the renderer's parameter.
    """

    K: np.ndarray
    cam_from_world: np.ndarray
    width: int
    height: int
    fovy_deg: float


def intrinsics(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """``(3, 3)`` intrinsics of a square-pixel camera with vertical field of view ``fovy_deg`` whose principal
    point is the image centre (``cx = (width - 1) / 2`` in pixel-centre coordinates)."""
    if not (0.0 < fovy_deg < 180.0):
        raise ContactkitError(f"fovy_deg must be in (0, 180), got {fovy_deg}")
    return pinhole_intrinsics(0.5 * height / math.tan(math.radians(fovy_deg) / 2.0), width, height)


def pinhole_intrinsics(focal_px: float, width: int, height: int) -> np.ndarray:
    """``(3, 3)`` intrinsics of a square-pixel camera with focal length ``focal_px`` (pixels) whose principal point
    is the image centre (``cx = (width - 1) / 2`` in pixel-centre coordinates)."""
    f = float(focal_px)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``(4, 4)`` ``cam_from_world`` of a camera at ``eye`` looking at ``target`` with image-up close to ``up``
    (all ``(3,)`` metres, world frame)."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, -up)  # image x (right) = forward x down
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = -rot @ eye
    return out


def to_camera(points: np.ndarray, cam_from_world: np.ndarray) -> np.ndarray:
    """World points ``(..., 3)`` into the camera frame ``(..., 3)``."""
    return np.asarray(points) @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points ``(..., 3)`` (z > 0) to pixels ``(..., 2)``."""
    p = np.asarray(points_cam) @ np.asarray(K).T
    return p[..., :2] / p[..., 2:3]


def sample_cameras(
    center: np.ndarray,
    radius: float,
    n: int,
    rng: np.random.Generator,
    *,
    width: int = 256,
    height: int = 256,
    fovy_deg: float = 45.0,
    fill: float = 0.8,
) -> list[Camera]:
    """``n`` cameras looking at ``center`` from uniform random directions, with a random image roll.

    Args:
        center: ``(3,)`` world point the cameras look at (metres).
        radius: radius of a sphere about ``center`` holding the scene (metres); it spans ``fill`` of the image
            height.
        rng: numpy generator (the only source of randomness).
    """
    if n < 1 or radius <= 0:
        raise ContactkitError(f"need n >= 1 cameras and radius > 0, got n={n}, radius={radius}")
    K = intrinsics(fovy_deg, width, height)
    dist = radius / math.sin(math.radians(fovy_deg) / 2.0 * fill)
    cams = []
    for _ in range(n):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        up = rng.normal(size=3)
        up -= (up @ d) * d
        up /= np.linalg.norm(up)
        cams.append(Camera(K.copy(), look_at(center + dist * d, center, up), width, height, fovy_deg))
    return cams

"""Shared meshes for the geometry tests (built procedurally, no files needed)."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

SPHERE_RADIUS = 0.05


def icosphere(subdivisions: int = 4, radius: float = SPHERE_RADIUS) -> tuple[torch.Tensor, torch.Tensor]:
    """Icosphere centred at the origin: verts (V, 3) float64, faces (F, 3) int64."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return torch.tensor(np.asarray(m.vertices)), torch.tensor(np.asarray(m.faces), dtype=torch.long)


def box(half: tuple[float, float, float] = (0.03, 0.02, 0.01)) -> tuple[torch.Tensor, torch.Tensor]:
    """Axis-aligned box centred at the origin with half extents ``half``."""
    m = trimesh.creation.box(extents=[2 * h for h in half])
    return torch.tensor(np.asarray(m.vertices)), torch.tensor(np.asarray(m.faces), dtype=torch.long)


def sphere_sag(verts: torch.Tensor, faces: torch.Tensor, radius: float) -> float:
    """Largest gap between the sphere and the inscribed polyhedron: r - min face-plane distance."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    n = torch.cross(b - a, c - a, dim=-1)
    n = n / n.norm(dim=-1, keepdim=True)
    return float(radius - (n * a).sum(-1).abs().min())


def box_sdf(points: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Analytic signed distance to an axis-aligned box (negative inside)."""
    q = points.abs() - half
    outside = q.clamp_min(0).norm(dim=-1)
    inside = q.max(dim=-1).values.clamp_max(0)
    return outside + inside


def holey_sphere(z_cut: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """Icosphere (subdivision 3) with the cap of faces whose centroid has ``z > z_cut * r`` removed."""
    v, f = icosphere(3)
    cz = v[f].mean(dim=1)[:, 2]
    return v, f[cz <= z_cut * SPHERE_RADIUS]


def random_rigid(seed: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A random rotation (3, 3) and translation (3,) in metres."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(4, generator=g, dtype=torch.float64)
    q = q / q.norm()
    w, x, y, z = q.tolist()
    rot = torch.tensor(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ],
        dtype=torch.float64,
    )
    transl = torch.randn(3, generator=g, dtype=torch.float64) * 0.1
    return rot.to(dtype), transl.to(dtype)

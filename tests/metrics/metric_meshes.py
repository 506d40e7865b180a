"""Analytic meshes and rigid motions shared by the metric tests."""

from __future__ import annotations

import numpy as np
import trimesh


def box(extents, centre=(0.0, 0.0, 0.0)):
    m = trimesh.creation.box(extents=extents)
    return np.asarray(m.vertices) + np.asarray(centre), np.asarray(m.faces, dtype=np.int64)


def sphere(radius, centre=(0.0, 0.0, 0.0), subdivisions=5):
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(m.vertices) + np.asarray(centre), np.asarray(m.faces, dtype=np.int64)


def lens_volume(r1, r2, d):
    """Closed-form volume of the intersection of two balls of radii r1, r2 at centre distance d."""
    return (
        np.pi
        * (r1 + r2 - d) ** 2
        * (d * d + 2 * d * r2 - 3 * r2 * r2 + 2 * d * r1 + 6 * r1 * r2 - 3 * r1 * r1)
        / (12 * d)
    )


def random_rigid(seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q, rng.normal(scale=0.3, size=3)

"""What the report shows: meshes (layers) per sample, with their contact maps and penetration masks.

Plain numpy dataclasses, built by :mod:`contactkit.report.pipeline` (or by users) and consumed by
:mod:`contactkit.report.html` and :mod:`contactkit.report.snapshot`. Coordinates are metres in one common
(world) frame per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from contactkit.errors import ShapeError
from contactkit.report.colors import ROLE_COLORS

LayerRole = Literal["object", "noisy", "refined", "ground_truth", "hand"]
_ROLES = ("object", "noisy", "refined", "ground_truth", "hand")


@dataclass
class MeshLayer:
    """One toggleable mesh of a sample.

    Attributes:
        name: label shown in the viewer ("object", "noisy", "contactopt", "ground truth", ...).
        role: one of ``object``, ``noisy``, ``refined``, ``ground_truth``, ``hand``.
        vertices: (V, 3) float, metres, world frame.
        faces: (F, 3) int, indices into ``vertices``.
        contact: optional (V,) float contact map in [0, 1] (heat colours in the view).
        penetrating: optional (V,) bool, vertices inside the object (marked in the view).
        color: base RGB in [0, 1]; defaults to the role's colour.
        visible: whether the layer is shown when the sample is first displayed.
        detail: a short note shown beside the layer's name (e.g. where a refined hand's targets came from).
    """

    name: str
    role: str
    vertices: np.ndarray
    faces: np.ndarray
    contact: np.ndarray | None = None
    penetrating: np.ndarray | None = None
    color: tuple[float, float, float] | None = None
    visible: bool = True
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ShapeError(f"role: expected one of {list(_ROLES)}, got {self.role!r}")
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or self.vertices.shape[0] == 0:
            raise ShapeError(f"vertices of layer {self.name!r}: expected shape (V, 3) with V > 0, got "
                             f"{self.vertices.shape}")
        if not np.all(np.isfinite(self.vertices)):
            raise ShapeError(f"vertices of layer {self.name!r}: expected finite values")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ShapeError(f"faces of layer {self.name!r}: expected shape (F, 3), got {self.faces.shape}")
        num_v = self.vertices.shape[0]
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= num_v):
            raise ShapeError(f"faces of layer {self.name!r}: expected indices in [0, {num_v}), got range "
                             f"[{self.faces.min()}, {self.faces.max()}]")
        if self.contact is not None:
            self.contact = np.asarray(self.contact, dtype=np.float64).reshape(-1)
            if self.contact.shape != (num_v,):
                raise ShapeError(f"contact of layer {self.name!r}: expected shape ({num_v},), got "
                                 f"{self.contact.shape}")
        if self.penetrating is not None:
            self.penetrating = np.asarray(self.penetrating).reshape(-1).astype(bool)
            if self.penetrating.shape != (num_v,):
                raise ShapeError(f"penetrating of layer {self.name!r}: expected shape ({num_v},), got "
                                 f"{self.penetrating.shape}")
        if self.color is None:
            self.color = ROLE_COLORS.get(self.role, ROLE_COLORS["hand"])

    @property
    def base_color(self) -> tuple[float, float, float]:
        """The layer's base RGB colour (never ``None`` after construction)."""
        return self.color if self.color is not None else ROLE_COLORS["hand"]


@dataclass
class ReportSample:
    """One grasp shown in the report: its layers and, optionally, per-layer metric values.

    Attributes:
        title: label in the sample selector.
        layers: the meshes; the first ``object`` layer is the object.
        metrics: ``{layer name: {metric name: value}}`` shown beside the 3D view.
        units: ``{metric name: unit}`` for the per-sample table headers.
    """

    title: str
    layers: list[MeshLayer]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.layers:
            raise ShapeError(f"layers of sample {self.title!r}: expected at least one layer")

"""Checks and repairs for object meshes: validation, degenerate faces, units and watertightness.

Every function works on numpy arrays (vertices ``(V, 3)`` float64 metres, faces ``(F, 3)`` int64) and either
returns cleaned arrays or raises :class:`contactkit.errors.MeshError` with a message naming the problem.
Fallbacks (removing faces, filling holes, flagging a mesh as open) are reported with ``warnings.warn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import trimesh

from contactkit.errors import MeshError, UnitsError
from contactkit.objects.cache import warn_external

__all__ = [
    "MILLIMETRE_EXTENT_THRESHOLD_M",
    "UNIT_SCALES",
    "Units",
    "WatertightReport",
    "check_units",
    "remove_degenerate_faces",
    "repair_watertight",
    "validate_arrays",
]

Units = Literal["auto", "m", "cm", "mm"]
UNIT_SCALES: dict[str, float] = {"m": 1.0, "cm": 1e-2, "mm": 1e-3}

#: A hand-held object whose largest extent exceeds this (in "metres") was almost surely given in millimetres.
MILLIMETRE_EXTENT_THRESHOLD_M = 1.5
#: With ``units="auto"``, a largest extent below this (m) draws a warning (nothing graspable is that small).
SMALLEST_PLAUSIBLE_EXTENT_M = 0.002


def validate_arrays(vertices: object, faces: object, *, what: str = "mesh") -> tuple[np.ndarray, np.ndarray]:
    """Check and convert raw vertex/face arrays.

    Args:
        vertices: array-like ``(V, 3)``, finite, metres.
        faces: array-like ``(F, 3)`` integer indices in ``[0, V)``.
        what: name used in error messages (e.g. the file name).

    Returns:
        ``(vertices (V, 3) float64 C-contiguous, faces (F, 3) int64 C-contiguous)``.

    Raises:
        MeshError: empty mesh, wrong shapes, non-finite vertices, non-integer or out-of-range faces.
    """
    try:
        v = np.asarray(vertices, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MeshError(f"{what}: vertices are not numeric: {exc}") from None
    f_raw = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise MeshError(f"{what}: vertices must have shape (V, 3), got {tuple(v.shape)}")
    if f_raw.ndim != 2 or f_raw.shape[1] != 3:
        raise MeshError(f"{what}: faces must have shape (F, 3) (triangles), got {tuple(f_raw.shape)}")
    if v.shape[0] == 0 or f_raw.shape[0] == 0:
        raise MeshError(f"{what}: mesh is empty ({v.shape[0]} vertices, {f_raw.shape[0]} faces)")
    if not np.issubdtype(f_raw.dtype, np.integer):
        if (
            not np.issubdtype(f_raw.dtype, np.floating)
            or not np.all(np.isfinite(f_raw))
            or np.any(f_raw != np.round(f_raw))
        ):
            raise MeshError(f"{what}: faces must be integer vertex indices, got dtype {f_raw.dtype}")
    f = f_raw.astype(np.int64)
    bad_v = ~np.isfinite(v).all(axis=1)
    if bad_v.any():
        idx = np.flatnonzero(bad_v)
        raise MeshError(
            f"{what}: {idx.size} vertices contain NaN or inf (first: vertex {idx[0]} = {v[idx[0]].tolist()})"
        )
    out = (f < 0) | (f >= v.shape[0])
    if out.any():
        row = int(np.flatnonzero(out.any(axis=1))[0])
        raise MeshError(
            f"{what}: face indices out of range [0, {v.shape[0]}) "
            f"({int(out.any(axis=1).sum())} faces; first: face {row} = {f[row].tolist()})"
        )
    return np.ascontiguousarray(v), np.ascontiguousarray(f)


def remove_degenerate_faces(
    vertices: np.ndarray, faces: np.ndarray, *, what: str = "mesh", rel_area_tol: float = 1e-12
) -> np.ndarray:
    """Drop faces with a repeated vertex index or (near) zero area, and duplicated faces, with a warning.

    Args:
        vertices: ``(V, 3)`` float64.
        faces: ``(F, 3)`` int64.
        rel_area_tol: a face is degenerate if its area is below ``rel_area_tol * extent**2``.

    Returns:
        The kept faces ``(F', 3)`` int64 (order preserved).

    Raises:
        MeshError: if no face survives.
    """
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    area2 = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    extent = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    tiny = area2 <= 2.0 * rel_area_tol * max(extent, 1e-300) ** 2
    keep = ~(repeated | tiny)
    # duplicated faces (same vertex set) double-count area and break manifoldness
    sorted_f = np.sort(faces, axis=1)
    _, first = np.unique(sorted_f, axis=0, return_index=True)
    unique_mask = np.zeros(len(faces), dtype=bool)
    unique_mask[first] = True
    n_dup = int((keep & ~unique_mask).sum())
    keep &= unique_mask
    n_removed = int(len(faces) - keep.sum())
    if keep.sum() == 0:
        raise MeshError(f"{what}: all {len(faces)} faces are degenerate (zero area or repeated vertices)")
    if n_removed:
        warn_external(
            f"{what}: removed {n_removed} degenerate face(s) ({int((repeated | tiny).sum())} zero-area or "
            f"repeated-vertex, {n_dup} duplicated)"
        )
    return np.ascontiguousarray(faces[keep])


def check_units(vertices: np.ndarray, units: Units, *, what: str = "mesh") -> np.ndarray:
    """Apply the unit convention and warn when ``units="auto"`` meets extents that look like millimetres.

    Policy: ``"m"``, ``"cm"``, ``"mm"`` rescale to metres by 1, 1e-2, 1e-3. ``"auto"`` never rescales
    (guessing wrong would silently scale a correct mesh by 1000); if the largest extent exceeds
    :data:`MILLIMETRE_EXTENT_THRESHOLD_M` it warns and suggests ``units="mm"``.

    Returns:
        vertices ``(V, 3)`` float64 in metres.
    """
    if units == "auto":
        extent = float(np.ptp(vertices, axis=0).max())
        if extent < SMALLEST_PLAUSIBLE_EXTENT_M:
            warn_external(
                f"{what}: largest extent is {extent:.4g} m, implausibly small for a graspable object "
                f"(< {SMALLEST_PLAUSIBLE_EXTENT_M * 1e3:g} mm); is the unit right? The mesh was NOT rescaled."
            )
        if extent > MILLIMETRE_EXTENT_THRESHOLD_M:
            warn_external(
                f"{what}: largest extent is {extent:.4g} but contactkit works in metres; this looks like "
                f"millimetres (pass units='mm' to rescale). The mesh was NOT rescaled."
            )
        return vertices
    if units not in UNIT_SCALES:
        raise UnitsError(f"units must be one of 'auto', 'm', 'cm', 'mm'; got {units!r}")
    scale = UNIT_SCALES[units]
    return vertices * scale if scale != 1.0 else vertices


@dataclass(frozen=True)
class WatertightReport:
    """Outcome of :func:`repair_watertight`.

    Attributes:
        vertices: ``(V, 3)`` float64, possibly with vertices added by hole filling.
        faces: ``(F, 3)`` int64.
        is_watertight: every edge shared by exactly two faces with consistent winding.
        repaired: holes were filled and the result is watertight.
        flipped: the winding was inverted (negative volume) and has been flipped outward.
    """

    vertices: np.ndarray
    faces: np.ndarray
    is_watertight: bool
    repaired: bool
    flipped: bool


def _is_closed(mesh: trimesh.Trimesh) -> bool:
    return bool(mesh.is_watertight and mesh.is_winding_consistent)


def repair_watertight(
    vertices: np.ndarray, faces: np.ndarray, *, what: str = "mesh", repair: bool = True
) -> WatertightReport:
    """Detect open meshes, try to close them (trimesh ``fill_holes``), and orient closed meshes outward.

    If the mesh is still open after the attempt, the original is kept and a warning says that inside tests
    fall back to generalised winding numbers.
    """
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)
    repaired = False
    if not _is_closed(mesh) and repair:
        candidate: trimesh.Trimesh | None = mesh.copy()
        try:
            trimesh.repair.fill_holes(candidate)
        except Exception:  # noqa: BLE001 - a failed repair is a fallback, never an error
            candidate = None
        if candidate is not None and _is_closed(candidate):
            n_added = len(candidate.faces) - len(mesh.faces)
            mesh = candidate
            repaired = True
            warn_external(f"{what}: mesh was open; closed it by filling holes ({n_added} faces added)")
    closed = _is_closed(mesh)
    if not closed:
        _, counts = np.unique(mesh.edges_sorted, axis=0, return_counts=True)
        n_open, n_nonmanifold = int((counts == 1).sum()), int((counts > 2).sum())
        warn_external(
            f"{what}: mesh is not watertight ({n_open} boundary edges, {n_nonmanifold} non-manifold edges"
            f"{'' if mesh.is_winding_consistent else ', inconsistent winding'}) and could not be closed; "
            f"kept as is. "
            f"Inside tests use generalised winding numbers and volumes are estimates."
        )
    flipped = False
    if closed and mesh.volume < 0:
        mesh.invert()
        flipped = True
        warn_external(f"{what}: faces were wound inward; flipped them to face outward")
    return WatertightReport(
        vertices=np.ascontiguousarray(np.asarray(mesh.vertices, dtype=np.float64)),
        faces=np.ascontiguousarray(np.asarray(mesh.faces, dtype=np.int64)),
        is_watertight=closed,
        repaired=repaired,
        flipped=flipped,
    )

"""``ObjectMesh``: a validated, content-hashed triangle mesh of a rigid object, in metres.

Construction (:meth:`ObjectMesh.from_file`, :meth:`ObjectMesh.from_arrays`) runs the checks of
:mod:`contactkit.objects.checks` in this order: shapes / finiteness / index range (``MeshError``), units,
merging of duplicate vertices, removal of degenerate and duplicated faces (warning), removal of unreferenced
vertices, watertightness detection with a hole-filling repair attempt (warning), outward orientation.

Geometry queries (sampling, normals, inside tests, signed distances, SDF grids) are delegated to
:mod:`contactkit.geometry`; their results are cached by content hash (:mod:`contactkit.objects.cache`).
An ``ObjectMesh`` is immutable: its arrays are read-only and every transformation returns a new object.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import trimesh

from contactkit.errors import ContactkitError, MeshError, ShapeError
from contactkit.objects import cache as _cache
from contactkit.objects.checks import (
    Units,
    check_units,
    remove_degenerate_faces,
    repair_watertight,
    validate_arrays,
)

if TYPE_CHECKING:
    from contactkit.geometry import SDFGrid

__all__ = ["SUPPORTED_SUFFIXES", "ObjectMesh"]

SUPPORTED_SUFFIXES = (".obj", ".ply", ".stl", ".glb", ".gltf", ".off")

#: Default padding of signed distance grids around the object's bounding box, metres.
DEFAULT_SDF_PADDING_M = 0.02
#: Grid resolution of the winding-number volume estimate of open meshes (cells per axis).
VOLUME_ESTIMATE_RESOLUTION = 48


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous copy (never freezes the caller's array)."""
    a = np.array(a, order="C", copy=True)
    a.setflags(write=False)
    return a


def _check_ply_counts(path: Path, n_verts: int, n_faces: int) -> None:
    """Raise :class:`MeshError` when a PLY header announces more vertices or faces than were read."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    counts = {}
    for line in head.split(b"end_header")[0].splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"element" and parts[1] in (b"vertex", b"face") and parts[2].isdigit():
            counts[parts[1].decode()] = int(parts[2])
    for element, read in (("vertex", n_verts), ("face", n_faces)):
        if element in counts and counts[element] > read:
            raise MeshError(
                f"{path}: the PLY header announces {counts[element]} {element} elements but the file holds "
                f"{read} (truncated?)"
            )


class ObjectMesh:
    """A rigid object's triangle mesh (object frame, metres).

    Attributes:
        name: human-readable name (not part of the content hash).
        vertices: ``(V, 3)`` float64, metres, read-only.
        faces: ``(F, 3)`` int64, read-only, outward-facing when ``is_watertight``.
        content_hash: first 16 hex chars of sha256 over the vertex and face bytes.
        is_watertight: every edge has exactly two faces with consistent winding. Inside tests on open meshes
            use generalised winding numbers.
        analytic_volume_m3: exact volume for primitives, else ``None``.
        source: provenance string (file path, ``"primitive:..."``, ``"bundled:..."``) or ``None``.
        primitive: ``{"kind": ..., **params}`` for procedural shapes, else ``None``.

    The constructor trusts its arguments (only shapes are checked); use :meth:`from_arrays` or
    :meth:`from_file` for untrusted data.
    """

    def __init__(
        self,
        name: str,
        vertices: np.ndarray,
        faces: np.ndarray,
        *,
        is_watertight: bool,
        analytic_volume_m3: float | None = None,
        source: str | None = None,
        primitive: dict[str, Any] | None = None,
    ) -> None:
        v, f = validate_arrays(vertices, faces, what=name)
        self.name = str(name)
        self.vertices = _readonly(v)
        self.faces = _readonly(f)
        self.is_watertight = bool(is_watertight)
        self.analytic_volume_m3 = None if analytic_volume_m3 is None else float(analytic_volume_m3)
        self.source = source
        self.primitive = None if primitive is None else dict(primitive)
        self.content_hash = _cache.content_hash(self.vertices, self.faces)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        vertices: Any,
        faces: Any,
        *,
        name: str = "object",
        units: Units = "auto",
        repair: bool = True,
        analytic_volume_m3: float | None = None,
        source: str | None = None,
        primitive: dict[str, Any] | None = None,
    ) -> ObjectMesh:
        """Build a checked object from raw arrays.

        Args:
            vertices: ``(V, 3)`` array-like (numpy or torch), in ``units``.
            faces: ``(F, 3)`` integer array-like.
            name: object name.
            units: ``"m"``, ``"cm"``, ``"mm"`` rescale to metres; ``"auto"`` (default) keeps the values
                and warns when the largest extent exceeds 1.5 (likely millimetres).
            repair: try to close open meshes by filling holes.
            analytic_volume_m3: known exact volume (primitives), in m^3 after unit conversion.

        Raises:
            MeshError: empty, non-finite, malformed or fully degenerate mesh.
        """
        return cls._checked(
            vertices,
            faces,
            name=name,
            what=name,
            units=units,
            repair=repair,
            analytic_volume_m3=analytic_volume_m3,
            source=source,
            primitive=primitive,
        )

    @classmethod
    def _checked(
        cls,
        vertices: Any,
        faces: Any,
        *,
        name: str,
        what: str,
        units: Units,
        repair: bool,
        analytic_volume_m3: float | None,
        source: str | None,
        primitive: dict[str, Any] | None,
    ) -> ObjectMesh:
        """The checking pipeline of :meth:`from_arrays`; ``what`` names the mesh in errors and warnings."""
        v, f = validate_arrays(_to_numpy(vertices), _to_numpy(faces), what=what)
        v = check_units(v, units, what=what)
        merged = trimesh.Trimesh(vertices=v, faces=f, process=True, validate=False)
        v = np.asarray(merged.vertices, dtype=np.float64)
        f = np.asarray(merged.faces, dtype=np.int64)
        f = remove_degenerate_faces(v, f, what=what)
        used = np.unique(f)
        if used.size < len(v):
            remap = np.full(len(v), -1, dtype=np.int64)
            remap[used] = np.arange(used.size)
            v, f = v[used], remap[f]
        report = repair_watertight(v, f, what=what, repair=repair)
        return cls(
            name,
            report.vertices,
            report.faces,
            is_watertight=report.is_watertight,
            analytic_volume_m3=analytic_volume_m3,
            source=source,
            primitive=primitive,
        )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        units: Units = "auto",
        repair: bool = True,
    ) -> ObjectMesh:
        """Load a mesh from ``.obj``, ``.ply``, ``.stl``, ``.glb``/``.gltf`` or ``.off`` (scenes are merged).

        Raises:
            MeshError: missing, empty, unreadable (truncated, garbage) or malformed file, with the path.
        """
        p = Path(path)
        display = str(p)
        if not p.is_file():
            raise MeshError(f"{display}: mesh file not found")
        suffix = p.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise MeshError(
                f"{display}: unsupported mesh format {suffix!r}; "
                f"expected one of {', '.join(SUPPORTED_SUFFIXES)}"
            )
        if p.stat().st_size == 0:
            raise MeshError(f"{display}: file is empty (0 bytes)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = trimesh.load(str(p), force="mesh", process=False)
        except Exception as exc:  # noqa: BLE001 - any parser failure becomes one clear MeshError
            fmt = suffix[1:].upper()
            if isinstance(exc, ImportError):  # trimesh guessing a text encoding for binary garbage
                detail = "binary data where text was expected"
            elif isinstance(exc, IndexError):
                detail = f"face indices out of range ({exc})"
            else:
                detail = f"{type(exc).__name__}: {exc}"
            raise MeshError(
                f"{display}: could not read the file as {fmt} (truncated or corrupt?): {detail}"
            ) from None
        if not isinstance(loaded, trimesh.Trimesh):
            raise MeshError(f"{display}: file holds no triangle mesh (got {type(loaded).__name__})")
        verts = np.asarray(loaded.vertices)
        faces = np.asarray(loaded.faces)
        if suffix == ".ply":
            _check_ply_counts(p, len(verts), len(faces))
        if len(verts) == 0 or len(faces) == 0:
            raise MeshError(
                f"{display}: no triangles could be read ({len(verts)} vertices, {len(faces)} faces); "
                f"the file is empty, truncated or not a valid {suffix[1:].upper()} mesh"
            )
        return cls._checked(
            verts,
            faces,
            name=name or p.stem,
            what=display,
            units=units,
            repair=repair,
            analytic_volume_m3=None,
            source=str(p.resolve()),
            primitive=None,
        )

    # ------------------------------------------------------------------ basic properties
    def __repr__(self) -> str:
        wt = "watertight" if self.is_watertight else "open"
        return (
            f"ObjectMesh(name={self.name!r}, V={len(self.vertices)}, F={len(self.faces)}, {wt}, "
            f"hash={self.content_hash})"
        )

    def __len__(self) -> int:
        return len(self.vertices)

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def bounds(self) -> np.ndarray:
        """``(2, 3)`` float64: min and max corner of the axis-aligned bounding box, metres."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    @property
    def extents(self) -> np.ndarray:
        """``(3,)`` float64: bounding-box side lengths, metres."""
        return np.ptp(self.vertices, axis=0)

    @property
    def surface_area_m2(self) -> float:
        v, f = self.vertices, self.faces
        cr = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        return float(0.5 * np.linalg.norm(cr, axis=1).sum())

    @property
    def mesh_volume_m3(self) -> float:
        """Signed divergence-theorem volume of the triangles (meaningful only for watertight meshes), m^3."""
        v, f = self.vertices, self.faces
        return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0)

    @property
    def volume_is_estimate(self) -> bool:
        """True when :attr:`volume_m3` is a winding-number estimate (open mesh, no analytic volume)."""
        return self.analytic_volume_m3 is None and not self.is_watertight

    @property
    def volume_m3(self) -> float:
        """Volume in m^3: analytic for primitives, else the mesh volume when watertight, else a generalised
        winding-number estimate on a 48^3 grid (see :attr:`volume_is_estimate`)."""
        if self.analytic_volume_m3 is not None:
            return self.analytic_volume_m3
        if self.is_watertight:
            return self.mesh_volume_m3
        key = (self.content_hash, "volume_estimate", VOLUME_ESTIMATE_RESOLUTION)
        cached = _cache.MEMORY_CACHE.get(key)
        if cached is None:
            cached = self._winding_volume(VOLUME_ESTIMATE_RESOLUTION)
            _cache.MEMORY_CACHE.put(key, cached)
        return float(cached)

    def _winding_volume(self, resolution: int) -> float:
        from contactkit.geometry import winding_number

        lo, hi = self.bounds
        size = np.maximum(hi - lo, 1e-12)
        axes = [lo[i] + (np.arange(resolution) + 0.5) * size[i] / resolution for i in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        verts, faces = self.to_torch(dtype=torch.float64)
        w = _to_numpy(winding_number(torch.as_tensor(grid, dtype=torch.float64), verts, faces))
        frac = float((np.abs(w) > 0.5).mean())
        return frac * float(np.prod(size))

    def principal_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Area-weighted principal axes of the surface.

        Returns:
            ``(center (3,), axes (3, 3))`` float64: the area-weighted surface centroid (metres) and unit
            axes as rows, sorted by decreasing spread.
        """
        v, f = self.vertices, self.faces
        tri = v[f]
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        cen = tri.mean(axis=1)
        w = area / area.sum()
        center = (w[:, None] * cen).sum(axis=0)
        d = cen - center
        cov = (w[:, None, None] * d[:, :, None] * d[:, None, :]).sum(axis=0)
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1]
        return center, np.ascontiguousarray(evecs[:, order].T)

    # ------------------------------------------------------------------ conversion and transforms
    def to_torch(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(vertices (V, 3) dtype, faces (F, 3) int64)`` tensors on ``device``."""
        verts = torch.as_tensor(np.array(self.vertices), dtype=dtype, device=device)
        faces = torch.as_tensor(np.array(self.faces), dtype=torch.long, device=device)
        return verts, faces

    def to_trimesh(self) -> trimesh.Trimesh:
        """A fresh (writable) ``trimesh.Trimesh`` copy."""
        return trimesh.Trimesh(vertices=np.array(self.vertices), faces=np.array(self.faces), process=False)

    def with_name(self, name: str) -> ObjectMesh:
        """Same geometry (same content hash), new name."""
        return ObjectMesh(
            name,
            self.vertices,
            self.faces,
            is_watertight=self.is_watertight,
            analytic_volume_m3=self.analytic_volume_m3,
            source=self.source,
            primitive=self.primitive,
        )

    def transformed(self, rot: Any, transl: Any) -> ObjectMesh:
        """Apply ``x' = rot @ x + transl``.

        Args:
            rot: ``(3, 3)`` proper rotation matrix (numpy or torch).
            transl: ``(3,)`` translation, metres.

        Returns:
            A new ``ObjectMesh`` (new content hash; watertightness and analytic volume carried over).

        Raises:
            ShapeError: wrong shapes, or ``rot`` is not a rotation (orthonormal with det +1, tol 1e-6).
        """
        r = _to_numpy(rot).astype(np.float64)
        t = _to_numpy(transl).astype(np.float64)
        if r.shape != (3, 3):
            raise ShapeError(f"rot must have shape (3, 3), got {tuple(r.shape)}")
        if t.shape != (3,):
            raise ShapeError(f"transl must have shape (3,), got {tuple(t.shape)}")
        if not (np.isfinite(r).all() and np.isfinite(t).all()):
            raise ShapeError("rot and transl must be finite")
        if np.abs(r @ r.T - np.eye(3)).max() > 1e-6 or np.linalg.det(r) < 0:
            raise ShapeError("rot must be a proper rotation matrix (orthonormal, det = +1)")
        return ObjectMesh(
            self.name,
            self.vertices @ r.T + t,
            self.faces,
            is_watertight=self.is_watertight,
            analytic_volume_m3=self.analytic_volume_m3,
            source=self.source,
            primitive=self.primitive,
        )

    # ------------------------------------------------------------------ cached geometry
    def sample_surface(self, n: int = 2048, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Area-weighted surface samples (cached by content hash, ``n`` and ``seed``).

        Returns:
            ``(points (n, 3), normals (n, 3))`` float64 numpy arrays (fresh copies of the cached entry, so
            they are writable and convert to torch without sharing the cache); points in metres, unit
            normals of the sampled faces (outward for watertight meshes).
        """
        if n <= 0:
            raise ContactkitError(f"n must be a positive number of samples, got {n}")
        key = (self.content_hash, "samples", int(n), int(seed))
        hit = _cache.MEMORY_CACHE.get(key)
        if hit is None:
            from contactkit.geometry import sample_surface

            verts, faces = self.to_torch(dtype=torch.float64)
            pts, nrm, _ = sample_surface(verts, faces, int(n), int(seed))
            hit = (_readonly(_to_numpy(pts).astype(np.float64)), _readonly(_to_numpy(nrm).astype(np.float64)))
            _cache.MEMORY_CACHE.put(key, hit)
        return hit[0].copy(), hit[1].copy()

    def vertex_normals(self) -> np.ndarray:
        """``(V, 3)`` float64 area-weighted unit vertex normals (a copy of the cached entry)."""
        key = (self.content_hash, "vertex_normals")
        hit = _cache.MEMORY_CACHE.get(key)
        if hit is None:
            from contactkit.geometry import vertex_normals

            verts, faces = self.to_torch(dtype=torch.float64)
            hit = _readonly(_to_numpy(vertex_normals(verts[None], faces)[0]).astype(np.float64))
            _cache.MEMORY_CACHE.put(key, hit)
        return hit.copy()

    def _points_tensor(self, points: Any, argname: str = "points") -> tuple[torch.Tensor, tuple[int, ...]]:
        pts = points if isinstance(points, torch.Tensor) else torch.as_tensor(np.asarray(points, np.float64))
        if pts.ndim not in (2, 3) or pts.shape[-1] != 3:
            raise ShapeError(f"{argname} must have shape (N, 3) or (B, N, 3), got {tuple(pts.shape)}")
        if not pts.is_floating_point():
            pts = pts.to(torch.float64)
        return pts, tuple(pts.shape[:-1])

    def contains(self, points: Any) -> Any:
        """Inside test (exact fast path when watertight, generalised winding numbers otherwise).

        Args:
            points: ``(N, 3)`` or ``(B, N, 3)`` float, object frame, metres (numpy or torch).

        Returns:
            bool array of shape ``points.shape[:-1]``, numpy if ``points`` is numpy, else a torch tensor
            on the points' device.
        """
        from contactkit.geometry import contains

        pts, lead = self._points_tensor(points)
        verts, faces = self.to_torch(device=pts.device, dtype=pts.dtype)
        out = contains(pts.reshape(-1, 3), verts, faces, closed=self.is_watertight).reshape(lead)
        return out if isinstance(points, torch.Tensor) else _to_numpy(out)

    def signed_distance(self, points: Any) -> Any:
        """Exact signed distance to the surface, **negative inside**, metres; differentiable for torch input.

        Args:
            points: ``(N, 3)`` or ``(B, N, 3)`` float (numpy or torch), object frame, metres.

        Returns:
            Array of shape ``points.shape[:-1]`` (numpy for numpy input, else torch, same dtype/device).
        """
        from contactkit.geometry import signed_distance

        pts, lead = self._points_tensor(points)
        verts, faces = self.to_torch(device=pts.device, dtype=pts.dtype)
        batched = pts if pts.ndim == 3 else pts[None]
        out = signed_distance(batched, verts, faces, closed=self.is_watertight).reshape(lead)
        return out if isinstance(points, torch.Tensor) else _to_numpy(out)

    def sdf_grid(self, resolution: int = 64, padding: float = DEFAULT_SDF_PADDING_M) -> SDFGrid:
        """Signed distance grid (negative inside) over the bounding box grown by ``padding`` metres.

        Cached in memory and on disk (``<cache root>/objects/<hash>/sdf_<res>_pad<mm>.npz``), keyed by content
        hash, resolution and padding. Returned on CPU in float64; use ``grid.to(device, dtype)``.
        """
        if resolution < 2:
            raise ContactkitError(f"resolution must be >= 2, got {resolution}")
        if not (padding >= 0 and math.isfinite(padding)):
            raise ContactkitError(f"padding must be a finite non-negative length in metres, got {padding}")
        key = (self.content_hash, "sdf", int(resolution), round(float(padding), 9))
        hit = _cache.MEMORY_CACHE.get(key)
        if hit is not None:
            return hit
        from contactkit.geometry import SDFGrid

        path = _cache.object_cache_dir(self.content_hash) / f"sdf_{resolution}_pad{padding * 1000:g}mm.npz"
        stored = _cache.load_npz_cache(path, ("origin", "spacing", "values", "version"))
        grid: SDFGrid | None = None
        if stored is not None:
            try:
                grid = SDFGrid.from_arrays(stored)
            except ContactkitError as exc:
                _cache.warn_external(f"ignoring invalid cache file {path} ({exc}); rebuilding it")
            if grid is not None and (
                grid.resolution != resolution or str(stored.get("content_hash")) != self.content_hash
            ):
                grid = None
        if grid is None:
            verts, faces = self.to_torch(dtype=torch.float64)
            grid = SDFGrid.build(
                verts,
                faces,
                resolution=int(resolution),
                padding=float(padding),
                closed=self.is_watertight,
                dtype=torch.float64,
            )
            arrays = grid.to_arrays()
            arrays["content_hash"] = np.asarray(self.content_hash)
            _cache.save_npz_cache(path, arrays)
        _cache.MEMORY_CACHE.put(key, grid)
        return grid

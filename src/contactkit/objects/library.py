"""The object library: one spec syntax for *sets* of objects, sources beyond the bundled meshes, and the
per-object checks that decide which objects a grasp synthesiser may use.

Set specs (:func:`resolve_objects`), joined with ``+``::

    bundled                 the bundled YCB meshes (mug, cracker_box, mustard_bottle)
    primitives              one default instance of every procedural kind (box, sphere, ...)
    random-urdfs            the 1,000 procedural objects of the pybullet wheel (zlib licence)
    random-urdfs:N          the first N of them (000 .. N-1)
    random-urdfs:A-B        objects A..B inclusive (e.g. ``random-urdfs:900-999`` for a held-out range)
    DIR                     every mesh file (.obj/.ply/.stl/.glb/.gltf/.off) below a directory, sorted
    GLOB                    a glob pattern (``scans/*.ply``), sorted
    SPEC                    a single object spec of :func:`contactkit.objects.load_object`

Each :class:`LibraryEntry` loads lazily. :func:`check_object` runs the per-object checks
(:class:`ObjectChecks`); every object that fails gets a reason in its :class:`CheckResult`.

The random-URDF objects ship inside the ``pybullet`` wheel (``pip install contactkit[objects]``):
``pybullet_data/random_urdfs/NNN/NNN.obj`` with the scale of the mesh given in ``NNN.urdf``
(``<mesh filename="NNN.obj" scale="s s s"/>``); the library applies that scale, so the objects are in metres.
"""

from __future__ import annotations

import glob as _glob
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from contactkit.errors import ContactkitError, MeshError
from contactkit.objects.bundled import list_bundled_objects, load_bundled, load_object
from contactkit.objects.mesh import SUPPORTED_SUFFIXES, ObjectMesh
from contactkit.objects.primitives import PRIMITIVE_KINDS, make_primitive, parse_primitive_spec

__all__ = [
    "CheckResult",
    "LibraryEntry",
    "ObjectChecks",
    "check_object",
    "object_box_corners",
    "random_urdfs_root",
    "resolve_objects",
]

#: number of objects in pybullet_data/random_urdfs
RANDOM_URDF_COUNT = 1000


@dataclass(frozen=True)
class LibraryEntry:
    """One object of a set: a stable ``object_id``, where it comes from, and how to load it.

    Attributes:
        object_id: stable identifier, unique within a set (``bundled/mug``, ``random-urdfs/042``,
            ``primitive/sphere``, ``file/<path>``).
        source: provenance (file path or generator).
        license: licence of the source data.
        loader: zero-argument callable returning the :class:`ObjectMesh` (metres).
    """

    object_id: str
    source: str
    license: str
    loader: Callable[[], ObjectMesh] = field(repr=False, compare=False)

    def load(self) -> ObjectMesh:
        """Load the mesh (warnings of the mesh checks are not suppressed)."""
        return self.loader()


@dataclass(frozen=True)
class ObjectChecks:
    """Thresholds of the per-object checks (metres).

    Attributes:
        require_watertight: skip meshes that stay open after hole filling (inside tests, volumes and the
            simulation check are only exact on closed meshes).
        min_largest_extent_m: smaller objects (largest principal extent) are skipped: below this a hand
            cannot hold them with several fingers, or the file is in the wrong units.
        max_largest_extent_m: larger objects are skipped: out of reach of a one-hand grasp, or millimetres.
        max_smallest_extent_m: the smallest principal extent must fit between thumb and fingers (the hand's
            aperture); wider objects can only be pushed, not grasped.
    """

    require_watertight: bool = True
    min_largest_extent_m: float = 0.02
    max_largest_extent_m: float = 0.35
    max_smallest_extent_m: float = 0.12


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check_object` for one entry.

    Attributes:
        object_id: the entry's id.
        ok: the object passed every check.
        reason: why it was skipped (``""`` when ``ok``).
        name, content_hash, num_vertices, num_faces, is_watertight: of the loaded mesh (empty when it did
            not load).
        extents_m: principal-axis box extents ``(3,)``, decreasing (metres).
        warnings: messages of the mesh checks while loading (repairs, unit hints).
    """

    object_id: str
    ok: bool
    reason: str
    name: str = ""
    content_hash: str = ""
    num_vertices: int = 0
    num_faces: int = 0
    is_watertight: bool = False
    extents_m: tuple[float, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "object_id": self.object_id, "ok": self.ok, "reason": self.reason, "name": self.name,
            "content_hash": self.content_hash, "num_vertices": self.num_vertices, "num_faces": self.num_faces,
            "is_watertight": self.is_watertight, "extents_cm": [round(e * 100, 2) for e in self.extents_m],
            "warnings": list(self.warnings),
        }


def object_box_corners(mesh: ObjectMesh) -> tuple[np.ndarray, np.ndarray]:
    """The object's box: the axis-aligned bounding box of its vertices in its own (canonical) frame.

    This is contactkit's one object box, the one papers 003 and 004 use (the datasets behind them, ObMan,
    FPHA and HO-3D, give the 8 corners of the box of the object model in its canonical frame): the rendered
    dataset's ``object_corners_3d/2d``, the keypoint networks' targets, the box placement of ``contactkit
    estimate`` and the box of the ``affinity`` refinement (:func:`contactkit.contact.affinity.box_corners` of the
    object-frame points) all follow it.

    Returns:
        ``(corners (8, 3), extents (3,))`` float64 metres, object frame. Corner ``k`` takes the maximum along
        x when bit 0 of ``k`` is set, along y for bit 1 and along z for bit 2 (corner 0 = (min, min, min),
        1 = (max, min, min), 2 = (min, max, min), 4 = (min, min, max), 7 = (max, max, max)): the order of
        :func:`contactkit.contact.affinity.box_corners`, whose ``z`` is the affinity loss's central axis.
        ``extents`` are the side lengths along x, y, z.
    """
    verts = np.asarray(mesh.vertices, dtype=np.float64)
    lo, hi = verts.min(0), verts.max(0)
    k = np.arange(8)
    bits = np.stack([k & 1, (k >> 1) & 1, (k >> 2) & 1], axis=1).astype(np.float64)
    return lo + bits * (hi - lo), hi - lo


def check_object(entry: LibraryEntry, checks: ObjectChecks | None = None) -> tuple[ObjectMesh | None, CheckResult]:
    """Load an entry and run the checks, in order: loads (mesh errors), watertight, units/size.

    Returns:
        ``(mesh or None, result)``; the mesh is returned also when a check failed (for ``objects show``),
        ``None`` only when it could not be loaded.
    """
    c = checks or ObjectChecks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mesh = entry.load()
        except (MeshError, ContactkitError, OSError) as err:
            return None, CheckResult(entry.object_id, False, f"could not load: {err}")
    msgs = tuple(str(w.message) for w in caught)
    _, axes = mesh.principal_axes()  # size checks use the frame-independent principal extents
    local = np.asarray(mesh.vertices) @ axes.T
    ext = np.sort(local.max(0) - local.min(0))[::-1]
    base: dict[str, Any] = {
        "name": mesh.name, "content_hash": mesh.content_hash, "num_vertices": mesh.num_vertices,
        "num_faces": mesh.num_faces, "is_watertight": mesh.is_watertight,
        "extents_m": tuple(float(e) for e in ext), "warnings": msgs,
    }
    reason = ""
    if c.require_watertight and not mesh.is_watertight:
        reason = "not watertight (open after hole filling)"
    elif ext[0] > 1.5:
        reason = f"largest extent {ext[0]:.4g} 'm' looks like millimetres or centimetres (wrong units?)"
    elif ext[0] > c.max_largest_extent_m:
        reason = f"too large to grasp: largest extent {ext[0] * 100:.1f} cm > {c.max_largest_extent_m * 100:.0f} cm"
    elif ext[0] < c.min_largest_extent_m:
        reason = (f"too small to grasp (or wrong units): largest extent {ext[0] * 1000:.1f} mm < "
                  f"{c.min_largest_extent_m * 1000:.0f} mm")
    elif ext[2] > c.max_smallest_extent_m:
        reason = (f"too wide for the hand: smallest extent {ext[2] * 100:.1f} cm > "
                  f"{c.max_smallest_extent_m * 100:.0f} cm")
    return mesh, CheckResult(entry.object_id, not reason, reason, **base)


# --------------------------------------------------------------------------------------- sources
def random_urdfs_root() -> Path:
    """Folder of the pybullet wheel's random URDF objects; a clear error when pybullet is not installed."""
    try:
        import pybullet_data
    except ImportError:
        raise ContactkitError(
            "the random-urdfs objects come from the pybullet wheel, which is not installed; "
            "pip install 'contactkit[objects]' (or pip install pybullet)"
        ) from None
    root = Path(pybullet_data.getDataPath()) / "random_urdfs"
    if not root.is_dir():
        raise ContactkitError(f"{root} is missing from the installed pybullet_data")
    return root


def _urdf_scale(urdf: Path) -> np.ndarray:
    """The mesh scale ``(3,)`` of the first ``<mesh>`` element of a pybullet random URDF (1 if absent)."""
    root = ET.parse(urdf).getroot()
    for mesh in root.iter("mesh"):
        scale = mesh.get("scale")
        if scale:
            vals = np.array([float(s) for s in scale.split()], dtype=np.float64)
            if vals.shape != (3,) or not np.all(np.isfinite(vals)) or np.any(vals <= 0):
                raise MeshError(f"{urdf}: invalid mesh scale {scale!r}")
            return vals
    return np.ones(3)


def _load_random_urdf(index: int) -> ObjectMesh:
    folder = random_urdfs_root() / f"{index:03d}"
    obj, urdf = folder / f"{index:03d}.obj", folder / f"{index:03d}.urdf"
    if not obj.is_file() or not urdf.is_file():
        raise MeshError(f"random-urdfs object {index:03d}: {folder} lacks the .obj or the .urdf")
    raw = ObjectMesh.from_file(obj, units="m", name=f"random_urdf_{index:03d}")
    return ObjectMesh.from_arrays(
        np.asarray(raw.vertices) * _urdf_scale(urdf), raw.faces, name=f"random_urdf_{index:03d}", units="m",
        source=f"pybullet_data/random_urdfs/{index:03d} (zlib licence)",
    )


def _random_urdf_entries(arg: str) -> list[LibraryEntry]:
    if not arg:
        lo, hi = 0, RANDOM_URDF_COUNT - 1
    elif re.fullmatch(r"\d+", arg):
        lo, hi = 0, int(arg) - 1
    elif re.fullmatch(r"\d+-\d+", arg):
        lo, hi = (int(x) for x in arg.split("-"))
    else:
        raise ContactkitError(f"random-urdfs spec must be random-urdfs, random-urdfs:N or random-urdfs:A-B, "
                              f"got 'random-urdfs:{arg}'")
    if not (0 <= lo <= hi < RANDOM_URDF_COUNT):
        raise ContactkitError(f"random-urdfs range {lo}-{hi} outside 0-{RANDOM_URDF_COUNT - 1}")
    random_urdfs_root()  # fail early when pybullet is missing
    return [
        LibraryEntry(f"random-urdfs/{i:03d}", f"pybullet_data/random_urdfs/{i:03d}", "zlib",
                     partial(_load_random_urdf, i))
        for i in range(lo, hi + 1)
    ]


def _file_entries(paths: list[Path]) -> list[LibraryEntry]:
    return [
        LibraryEntry(f"file/{p}", str(p), "unknown (user file)", partial(ObjectMesh.from_file, p))
        for p in paths
    ]


def _single(term: str) -> list[LibraryEntry]:
    if term == "bundled":
        return [LibraryEntry(f"bundled/{n}", f"bundled:{n}", "CC BY 4.0 (YCB)", partial(load_bundled, n))
                for n in list_bundled_objects()]
    if term == "primitives":
        return [LibraryEntry(f"primitive/{k}", f"primitive:{k}", "contactkit (procedural)",
                             partial(make_primitive, k)) for k in PRIMITIVE_KINDS]
    if term == "random-urdfs" or term.startswith("random-urdfs:"):
        return _random_urdf_entries(term.partition(":")[2])
    path = Path(term).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise ContactkitError(f"object directory {path} holds no mesh file ({', '.join(SUPPORTED_SUFFIXES)})")
        return _file_entries(files)
    if any(ch in term for ch in "*?["):
        files = sorted(Path(p) for p in _glob.glob(str(path), recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise ContactkitError(f"object glob {term!r} matches no mesh file")
        return _file_entries(files)
    if term in list_bundled_objects():
        return [LibraryEntry(f"bundled/{term}", f"bundled:{term}", "CC BY 4.0 (YCB)",
                             partial(load_bundled, term))]
    head = term.partition(":")[0].lower()
    if head in PRIMITIVE_KINDS and (":" in term or term.lower() == head):
        parse_primitive_spec(term)  # validates the parameters now
        return [LibraryEntry(f"primitive/{term}", f"primitive:{term}", "contactkit (procedural)",
                             partial(load_object, term))]
    if path.is_file():
        return _file_entries([path])
    raise ContactkitError(
        f"unknown objects term {term!r}: expected bundled, primitives, random-urdfs[:N|:A-B], a directory, a glob, "
        f"a bundled name ({', '.join(list_bundled_objects())}), a primitive spec (kind:key=value,... with kind in "
        f"{', '.join(PRIMITIVE_KINDS)}) or a mesh file"
    )


def resolve_objects(spec: str) -> list[LibraryEntry]:
    """Resolve a set spec (see the module docstring) into entries, in spec order, duplicates dropped.

    Raises:
        ContactkitError: empty spec, unknown term, empty directory/glob, pybullet missing for random-urdfs.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ContactkitError(f"objects spec must be a non-empty string, got {spec!r}")
    out: dict[str, LibraryEntry] = {}
    for term in spec.split("+"):
        term = term.strip()
        if not term:
            raise ContactkitError(f"empty term in objects spec {spec!r} (terms are joined with '+')")
        for e in _single(term):
            out.setdefault(e.object_id, e)
    return list(out.values())

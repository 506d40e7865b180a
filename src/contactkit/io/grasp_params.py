"""The parameter-only grasp file ``contactkit.grasp_params`` (version 1): grasps without their meshes.

A :class:`~contactkit.io.grasps.GraspSet` file stores every object's mesh and, for synthesised grasps, large
derived arrays (hand vertices, contact maps). This file stores only what cannot be recomputed: per grasp the hand
parameters, the object pose, which object (an object *library spec* such as ``"random-urdfs:17-17"`` plus the
content hash of its geometry), the per-grasp metadata and the set's ``attrs``. Reading it resolves each distinct
object once through :mod:`contactkit.objects.library` (the loader the grasp builders use), recomputes its content
hash and refuses the file when the geometry differs from the one the grasps were made on (another pybullet wheel,
another contactkit mesh loader). The full specification is the "Parameter-only grasp files" section of
``docs/grasp_format.md``.

* ``header``: a JSON string: ``format`` (``"contactkit.grasp_params"``), ``version`` (1), ``created_by``,
  ``attrs`` (free-form provenance: the build command, settings), ``hand_model``, ``side``, ``units`` (``"m"``),
  ``num_grasps``, ``objects`` (a list of ``{"spec", "content_hash", "name"}``), ``metadata`` (one JSON object per
  grasp), ``grasp_attrs`` (the set's ``attrs``) and ``dropped`` (name -> shape of each optional array of the
  saved set that is not stored, e.g. ``{"hand_vertices": [1200, 1159, 3]}``);
* ``object_index (N,) int64`` into ``objects``;
* ``global_orient (N,3)``, ``hand_pose (N,45)``, ``betas (N,S)``, ``transl (N,3)``, ``object_rotation (N,3,3)``,
  ``object_translation (N,3)``: float64, or float32 where that holds the float64 values exactly (values that came
  from a float32 optimiser); they are read back as the same float64 values, bit for bit;
* optionally ``reference_index (N,) int64``.

Writes are atomic; reading runs with ``allow_pickle=False`` and raises :class:`~contactkit.errors.GraspFileError`.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contactkit.errors import ContactkitError, GraspFileError
from contactkit.io.atomic import atomic_savez
from contactkit.io.grasps import GraspSet, _json_header, _read_npz
from contactkit.objects.mesh import ObjectMesh

__all__ = [
    "GRASP_PARAMS_FORMAT_NAME",
    "GRASP_PARAMS_FORMAT_VERSION",
    "load_grasp_params",
    "read_grasp_params_header",
    "save_grasp_params",
]

GRASP_PARAMS_FORMAT_NAME = "contactkit.grasp_params"
GRASP_PARAMS_FORMAT_VERSION = 1
_SUPPORTED_VERSIONS = (1,)
#: stored parameter arrays: name -> shape after the first axis (None: any width)
_PARAM_SHAPES: dict[str, tuple[int | None, ...]] = {
    "global_orient": (3,),
    "hand_pose": (45,),
    "betas": (None,),
    "transl": (3,),
    "object_rotation": (3, 3),
    "object_translation": (3,),
}
#: optional arrays of a GraspSet that are dropped (derived data, recomputable or not needed to rebuild the grasps)
_DROPPED = ("hand_vertices", "hand_contact", "object_points", "object_contact", "loss_traces")
_HASH_RE = re.compile(r"[0-9a-f]{16}")


def _compact(arr: np.ndarray) -> np.ndarray:
    """``arr`` (float64) as float32 when that holds every value exactly (bit for bit back to float64), else float64."""
    as32 = arr.astype(np.float32)
    same = np.array_equal(as32.astype(np.float64).view(np.int64), arr.view(np.int64))
    return as32 if same else arr


def save_grasp_params(
    path: str | os.PathLike[str],
    grasps: GraspSet,
    object_specs: Sequence[str],
    *,
    attrs: dict[str, Any] | None = None,
) -> None:
    """Write ``grasps`` without meshes or derived arrays to ``path`` atomically (``contactkit.grasp_params`` v1).

    Args:
        path: destination ``.npz``.
        grasps: N grasps; their optional arrays other than ``reference_index`` are dropped (their shapes are
            recorded in the header's ``dropped``).
        object_specs: N object library specs, one per grasp (any spec of
            :func:`contactkit.objects.library.resolve_objects` that names exactly one object, e.g.
            ``"random-urdfs:17-17"``, ``"mug"``, ``"sphere:radius=0.04"``). Every spec is resolved and loaded
            here, once per distinct spec, and must give the grasp's object (same content hash), so that the file
            can be read back.
        attrs: free-form JSON provenance of the file (build command, settings); not the set's ``attrs``, which
            are stored as well.

    Raises:
        GraspFileError: not a GraspSet, wrong number of specs, a spec that does not resolve to exactly one
            object, or resolves to other geometry than the grasp's object, or two specs for one object.
    """
    from contactkit import __version__

    if not isinstance(grasps, GraspSet):
        raise GraspFileError(f"save_grasp_params expects a GraspSet, got {type(grasps).__name__}")
    specs = list(object_specs)
    if len(specs) != len(grasps) or not all(isinstance(s, str) for s in specs):
        raise GraspFileError(f"{path}: object_specs must be {len(grasps)} strings (one per grasp), got {len(specs)}")
    order: dict[str, int] = {}  # spec -> index into the header's objects
    objects: list[dict[str, str]] = []
    spec_of_hash: dict[str, str] = {}
    for i, (spec, oid) in enumerate(zip(specs, grasps.object_ids, strict=True)):
        if spec_of_hash.setdefault(oid, spec) != spec:
            raise GraspFileError(f"{path}: grasp {i}: object {oid} has two specs, {spec_of_hash[oid]!r} and {spec!r}")
        if spec not in order:
            mesh = _resolve(spec, f"{path}: grasp {i}")
            if mesh.content_hash != oid:
                raise GraspFileError(
                    f"{path}: grasp {i}: object spec {spec!r} loads {mesh.name} with content hash "
                    f"{mesh.content_hash}, but the grasp's object {grasps.objects[oid].name} hashes to {oid}"
                )
            order[spec] = len(objects)
            objects.append({"spec": spec, "content_hash": oid, "name": mesh.name})
        elif objects[order[spec]]["content_hash"] != oid:
            raise GraspFileError(f"{path}: grasp {i}: spec {spec!r} names two objects in the set")
    header = {
        "format": GRASP_PARAMS_FORMAT_NAME,
        "version": GRASP_PARAMS_FORMAT_VERSION,
        "created_by": f"contactkit {__version__}",
        "attrs": attrs or {},
        "hand_model": grasps.hand_model,
        "side": grasps.side,
        "units": "m",
        "num_grasps": len(grasps),
        "objects": objects,
        "metadata": grasps.metadata,
        "grasp_attrs": grasps.attrs,
        "dropped": {k: list(getattr(grasps, k).shape) for k in _DROPPED if getattr(grasps, k) is not None},
    }
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GraspFileError(f"{path}: attrs must be JSON (no NaN/inf, no objects): {exc}") from None
    arrays: dict[str, np.ndarray] = {
        "header": np.asarray(text),
        "object_index": np.asarray([order[s] for s in specs], dtype=np.int64),
    }
    for name in _PARAM_SHAPES:
        arrays[name] = _compact(np.asarray(getattr(grasps, name), dtype=np.float64))
    if grasps.reference_index is not None:
        arrays["reference_index"] = np.asarray(grasps.reference_index, dtype=np.int64)
    atomic_savez(path, **arrays)


def _resolve(spec: str, where: str) -> ObjectMesh:
    """Load the one object named by a library spec, as the grasp builders do (``check_object``'s loader)."""
    from contactkit.objects.library import check_object, resolve_objects

    try:
        entries = resolve_objects(spec)
    except ContactkitError as exc:
        raise GraspFileError(f"{where}: object spec {spec!r}: {exc}") from None
    if len(entries) != 1:
        raise GraspFileError(
            f"{where}: object spec {spec!r} names {len(entries)} objects, expected one "
            "(for one random URDF write random-urdfs:K-K)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mesh repairs were reported when the grasps were built
        mesh, check = check_object(entries[0])
    if mesh is None:
        raise GraspFileError(f"{where}: object spec {spec!r}: {check.reason}")
    return mesh


def read_grasp_params_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated header of a ``contactkit.grasp_params`` file (no object is loaded).

    Returns:
        The header's JSON object (keys as in the module docstring).

    Raises:
        GraspFileError: missing, truncated or corrupt file, pickled arrays, unknown format or version, a header
            field of the wrong type, a missing, unknown or mis-shaped array.
    """
    header, _ = _read_validated(Path(path))
    return header


def _read_validated(p: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not p.is_file():
        raise GraspFileError(f"{p}: grasp parameter file not found")
    raw = _read_npz(p)
    header = _json_header(p, raw, "contactkit grasp parameter file")
    del raw["header"]
    fmt = header.get("format") if isinstance(header, dict) else None
    if fmt != GRASP_PARAMS_FORMAT_NAME:
        raise GraspFileError(f"{p}: not a grasp parameter file (format {fmt!r}, expected {GRASP_PARAMS_FORMAT_NAME!r})")
    version = header.get("version")
    if isinstance(version, bool) or version not in _SUPPORTED_VERSIONS:
        raise GraspFileError(
            f"{p}: unsupported {GRASP_PARAMS_FORMAT_NAME} version {version!r}; this contactkit reads version(s) "
            f"{', '.join(map(str, _SUPPORTED_VERSIONS))}"
        )
    if header.get("units") != "m":
        raise GraspFileError(f"{p}: units must be 'm' (metres), header says {header.get('units')!r}")
    for key, typ in (("created_by", str), ("attrs", dict), ("hand_model", str), ("side", str), ("num_grasps", int),
                     ("objects", list), ("metadata", list), ("grasp_attrs", dict), ("dropped", dict)):
        value = header.get(key)
        if not isinstance(value, typ) or isinstance(value, bool):
            raise GraspFileError(f"{p}: header field {key!r} missing or not a {typ.__name__}, got {value!r}")
    n = header["num_grasps"]
    if n < 0:
        raise GraspFileError(f"{p}: header field 'num_grasps' must be a count >= 0, got {n}")
    for k, obj in enumerate(header["objects"]):
        ok = isinstance(obj, dict) and set(obj) == {"spec", "content_hash", "name"} and all(
            isinstance(v, str) for v in obj.values())
        if not ok or not _HASH_RE.fullmatch(obj["content_hash"]):
            raise GraspFileError(
                f"{p}: object {k}: header entry must be {{'spec': str, 'content_hash': 16 hex digits, 'name': str}}, "
                f"got {obj!r}"
            )
    expected = {"object_index", *_PARAM_SHAPES} | ({"reference_index"} if "reference_index" in raw else set())
    unknown = sorted(set(raw) - expected)
    if unknown:
        raise GraspFileError(f"{p}: unknown arrays {unknown}")
    for name in sorted(expected):
        if name not in raw:
            raise GraspFileError(f"{p}: array {name!r} is missing")
        arr = raw[name]
        tail = _PARAM_SHAPES.get(name, ())
        ok_shape = arr.ndim == 1 + len(tail) and arr.shape[0] == n and all(
            t is None or a == t for a, t in zip(arr.shape[1:], tail, strict=True))
        if not ok_shape:
            desc = ", ".join(["N", *("S" if t is None else str(t) for t in tail)])
            raise GraspFileError(f"{p}: {name} must have shape ({desc}{',' if not tail else ''}) with N = {n}, "
                                 f"got {arr.shape}")
        kinds = "i" if name in ("object_index", "reference_index") else "f"
        if arr.dtype.kind != kinds or (kinds == "f" and arr.dtype not in (np.float32, np.float64)):
            raise GraspFileError(f"{p}: array {name!r} has dtype {arr.dtype}, expected "
                                 f"{'int64' if kinds == 'i' else 'float64 or float32'}")
    idx = raw["object_index"]
    if n and (idx.min() < 0 or idx.max() >= len(header["objects"])):
        i = int(np.flatnonzero((idx < 0) | (idx >= len(header["objects"])))[0])
        raise GraspFileError(f"{p}: grasp {i}: object_index {int(idx[i])} is not one of the "
                             f"{len(header['objects'])} objects of the header")
    if len(header["metadata"]) != n:
        raise GraspFileError(f"{p}: header lists {len(header['metadata'])} metadata entries for {n} grasps")
    return header, raw


def load_grasp_params(path: str | os.PathLike[str]) -> GraspSet:
    """Read a ``contactkit.grasp_params`` file and rebuild its grasps with their objects.

    Each distinct object is loaded once through the object library; its content hash must be the one recorded.

    Returns:
        The GraspSet: parameter arrays float64 (bit for bit the saved values), objects, metadata, ``attrs`` and
        ``reference_index`` as saved; the dropped optional arrays (header ``dropped``) are absent.

    Raises:
        GraspFileError: every problem of :func:`read_grasp_params_header`; an object spec that no longer
            resolves or loads, or whose geometry hashes differently (``random-urdfs:17-17 ... hashes to ...,
            the grasps were made on ...``); values the GraspSet refuses (NaN, millimetres, not a rotation).
    """
    p = Path(path)
    header, raw = _read_validated(p)
    meshes: list[ObjectMesh] = []
    for k, obj in enumerate(header["objects"]):
        mesh = _resolve(obj["spec"], f"{p}: object {k}")
        if mesh.content_hash != obj["content_hash"]:
            raise GraspFileError(
                f"{p}: object {k}: spec {obj['spec']!r} now loads geometry hashing to {mesh.content_hash}, but the "
                f"grasps were made on geometry hashing to {obj['content_hash']} ({obj['name']}); the object source "
                "differs (another pybullet wheel or contactkit mesh loader?), so these grasps cannot be rebuilt"
            )
        meshes.append(mesh)
    ids = [meshes[k].content_hash for k in raw["object_index"].tolist()]
    try:
        return GraspSet(
            hand_model=header["hand_model"],
            side=header["side"],
            object_ids=ids,
            objects={meshes[k].content_hash: meshes[k] for k in dict.fromkeys(raw["object_index"].tolist())},
            metadata=header["metadata"],
            attrs=header["grasp_attrs"],
            reference_index=raw.get("reference_index"),
            **{k: raw[k].astype(np.float64) for k in _PARAM_SHAPES},
        )
    except ContactkitError as exc:
        raise GraspFileError(f"{p}: {exc}") from None

"""The grasp file format ``contactkit.grasps`` (version 1) and the in-memory :class:`GraspSet`.

A file is one ``.npz`` archive (read with ``allow_pickle=False``) holding

* ``header``: a JSON string: ``format`` (``"contactkit.grasps"``), ``version`` (1), ``hand_model``, ``side``,
  ``units`` (``"m"``), ``num_grasps``, ``object_ids`` (one content hash per grasp), ``objects`` (per hash:
  ``name``, ``is_watertight``, ``analytic_volume_m3``, ``source``, ``primitive``), ``optional`` (names of the
  optional arrays present), ``metadata`` (one JSON object per grasp), ``attrs`` (set-level JSON object) and
  ``created_by``;
* the per-grasp arrays (float64 unless noted; N grasps): ``global_orient (N,3)``, ``hand_pose (N,45)``,
  ``betas (N,S)``, ``transl (N,3)``, ``object_rotation (N,3,3)``, ``object_translation (N,3)`` and,
  optionally, ``hand_vertices (N,V,3)``, ``hand_contact (N,V)``, ``object_points (N,P,3)``,
  ``object_contact (N,P)``, ``loss_traces (N,T)``, ``reference_index (N,) int64``;
* each object once: ``objects/<hash>/vertices (V,3) float64`` and ``objects/<hash>/faces (F,3) int64``.

The full specification, with an example, is ``docs/grasp_format.md``. Writes are atomic. Reading validates the
format name and version, the presence, shapes and dtypes of arrays, finiteness, units (coordinates above 10 m
are taken for millimetres) and object references, and names the offending record in a
:class:`~contactkit.errors.GraspFileError` (``"grasp 17: transl contains NaN or inf"``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contactkit.errors import ContactkitError, GraspFileError, MeshError, ShapeError, UnitsError
from contactkit.io.atomic import atomic_savez
from contactkit.objects.cache import warn_external
from contactkit.objects.checks import validate_arrays
from contactkit.objects.mesh import ObjectMesh

__all__ = [
    "GRASP_FORMAT_NAME",
    "GRASP_FORMAT_VERSION",
    "MAX_COORDINATE_M",
    "GraspSet",
    "load_grasps",
    "save_grasps",
]

GRASP_FORMAT_NAME = "contactkit.grasps"
GRASP_FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
#: A coordinate (translation, vertex, point) above this many metres is taken for millimetres.
MAX_COORDINATE_M = 10.0
SIDES = ("right", "left")
#: A joint or root rotation beyond a full turn (rad) draws a warning: no data set or optimiser produces one.
MAX_PLAUSIBLE_ANGLE_RAD = 2.0 * math.pi
#: Shape coefficients beyond this many standard deviations draw a warning.
MAX_PLAUSIBLE_BETA = 10.0
#: Contact values may exceed [0, 1] by this much (floating-point round-off) before they are refused.
CONTACT_TOLERANCE = 1e-6

_REQUIRED_ARRAYS = ("global_orient", "hand_pose", "betas", "transl", "object_rotation", "object_translation")
_OPTIONAL_ARRAYS = (
    "hand_vertices",
    "hand_contact",
    "object_points",
    "object_contact",
    "loss_traces",
    "reference_index",
)
#: arrays holding positions in metres (checked against MAX_COORDINATE_M)
_LENGTH_ARRAYS = ("transl", "object_translation", "hand_vertices", "object_points")


def _as_array(value: Any, dtype: type) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr: np.ndarray = np.array(value, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def _first_bad(mask_per_record: np.ndarray) -> int:
    return int(np.flatnonzero(mask_per_record)[0])


def _json_clean(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{what} must be JSON-serialisable (no NaN/inf, no objects): {exc}") from None


@dataclass(frozen=True, eq=False)
class GraspSet:
    """N hand–object grasps (immutable; arrays are read-only numpy, float64 metres/radians).

    Attributes:
        hand_model: hand model id, e.g. ``"openhand"`` or ``"mano"``.
        side: ``"right"`` or ``"left"``.
        global_orient: ``(N, 3)`` axis-angle of the hand root, radians.
        hand_pose: ``(N, 45)`` axis-angles of the 15 non-root joints (MANO joint order), radians.
        betas: ``(N, S)`` shape coefficients (``S`` may be 0).
        transl: ``(N, 3)`` hand translation, metres.
        object_ids: N content hashes, each a key of ``objects``.
        objects: content hash -> :class:`ObjectMesh` (object frame).
        object_rotation: ``(N, 3, 3)`` object pose, ``x_world = R @ x_object + t``.
        object_translation: ``(N, 3)`` metres.
        hand_vertices: optional ``(N, V, 3)`` posed hand vertices, world frame, metres.
        hand_contact: optional ``(N, V)`` per-vertex hand contact in [0, 1].
        object_points: optional ``(N, P, 3)`` object points in the **object** frame, metres.
        object_contact: optional ``(N, P)`` contact of ``object_points`` in [0, 1] (needs ``object_points``).
        loss_traces: optional ``(N, T)`` loss per iteration (NaN pads early stops, inf marks divergence; not
            checked for finiteness).
        reference_index: optional ``(N,)`` int64 index into the reference set named by ``attrs["reference"]``.
        metadata: N JSON objects (dicts), one per grasp.
        attrs: set-level JSON object.
    """

    hand_model: str
    side: str
    global_orient: np.ndarray
    hand_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    object_ids: list[str]
    objects: dict[str, ObjectMesh]
    object_rotation: np.ndarray
    object_translation: np.ndarray
    hand_vertices: np.ndarray | None = None
    hand_contact: np.ndarray | None = None
    object_points: np.ndarray | None = None
    object_contact: np.ndarray | None = None
    loss_traces: np.ndarray | None = None
    reference_index: np.ndarray | None = None
    metadata: list[dict[str, Any]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        setf = object.__setattr__
        if not isinstance(self.hand_model, str) or not self.hand_model:
            raise ShapeError(f"hand_model must be a non-empty string, got {self.hand_model!r}")
        if self.side not in SIDES:
            raise ShapeError(f"side must be 'right' or 'left', got {self.side!r}")
        for name in _REQUIRED_ARRAYS:
            setf(self, name, _as_array(getattr(self, name), np.float64))
        for name in _OPTIONAL_ARRAYS:
            value = getattr(self, name)
            if value is not None:
                setf(self, name, _as_array(value, np.int64 if name == "reference_index" else np.float64))
        n = self.global_orient.shape[0] if self.global_orient.ndim >= 1 else -1
        ids = list(self.object_ids)
        if not all(isinstance(i, str) for i in ids):
            raise ShapeError("object_ids must be strings (object content hashes)")
        setf(self, "object_ids", ids)
        objs = dict(self.objects)
        for key, obj in objs.items():
            if not isinstance(obj, ObjectMesh):
                raise ShapeError(f"objects[{key!r}] must be an ObjectMesh, got {type(obj).__name__}")
            if obj.content_hash != key:
                raise ShapeError(
                    f"objects key {key!r} differs from the object's content hash {obj.content_hash!r}"
                )
        setf(self, "objects", objs)
        meta = list(self.metadata) if self.metadata else [{} for _ in range(max(n, 0))]
        for i, m in enumerate(meta):
            if not isinstance(m, dict):
                raise ShapeError(f"grasp {i}: metadata must be a dict, got {type(m).__name__}")
        setf(self, "metadata", [_json_clean(m, f"metadata of grasp {i}") for i, m in enumerate(meta)])
        setf(self, "attrs", _json_clean(dict(self.attrs), "attrs"))
        ref = self.attrs.get("reference")
        if "reference" in self.attrs and not (isinstance(ref, str) and ref):
            raise ShapeError(f"attrs['reference'] must be the path of the ground-truth grasp file, got {ref!r}")
        self._check_shapes(n)
        self._check_values()

    def _check_shapes(self, n: int) -> None:
        def expect(name: str, arr: np.ndarray, shape: tuple[int | None, ...], desc: str) -> None:
            ok = arr.ndim == len(shape) and all(
                s is None or a == s for a, s in zip(arr.shape, shape, strict=False)
            )
            if not ok:
                raise ShapeError(f"{name} must have shape {desc}, got {tuple(arr.shape)}")

        if n < 0:
            raise ShapeError(f"global_orient must have shape (N, 3), got {tuple(self.global_orient.shape)}")
        expect("global_orient", self.global_orient, (n, 3), f"(N, 3) with N = {n}")
        expect("hand_pose", self.hand_pose, (n, 45), f"(N, 45) with N = {n}")
        expect("betas", self.betas, (n, None), f"(N, S) with N = {n}")
        expect("transl", self.transl, (n, 3), f"(N, 3) with N = {n}")
        expect("object_rotation", self.object_rotation, (n, 3, 3), f"(N, 3, 3) with N = {n}")
        expect("object_translation", self.object_translation, (n, 3), f"(N, 3) with N = {n}")
        if len(self.object_ids) != n:
            raise ShapeError(f"object_ids must have N = {n} entries, got {len(self.object_ids)}")
        if len(self.metadata) != n:
            raise ShapeError(f"metadata must have N = {n} entries, got {len(self.metadata)}")
        if self.hand_vertices is not None:
            expect("hand_vertices", self.hand_vertices, (n, None, 3), f"(N, V, 3) with N = {n}")
        if self.hand_contact is not None:
            v = self.hand_vertices.shape[1] if self.hand_vertices is not None else None
            expect(
                "hand_contact",
                self.hand_contact,
                (n, v),
                f"(N, V) with N = {n}" + (f", V = {v}" if v else ""),
            )
        if self.object_points is not None:
            expect("object_points", self.object_points, (n, None, 3), f"(N, P, 3) with N = {n}")
        if self.object_contact is not None:
            if self.object_points is None:
                raise ShapeError(
                    "object_contact needs object_points (the points the contact values belong to)"
                )
            p = self.object_points.shape[1]
            expect("object_contact", self.object_contact, (n, p), f"(N, P) with N = {n}, P = {p}")
        if self.loss_traces is not None:
            expect("loss_traces", self.loss_traces, (n, None), f"(N, T) with N = {n}")
        if self.reference_index is not None:
            expect("reference_index", self.reference_index, (n,), f"(N,) with N = {n}")

    def _check_values(self) -> None:
        n = len(self)
        for name in (*_REQUIRED_ARRAYS, *_OPTIONAL_ARRAYS):
            arr = getattr(self, name)
            if arr is None or n == 0 or name == "loss_traces":  # traces: NaN pads, inf marks divergence
                continue
            flat = arr.reshape(n, -1)
            bad = ~np.isfinite(flat).all(axis=1)
            if bad.any():
                raise ShapeError(f"grasp {_first_bad(bad)}: {name} contains NaN or inf")
            if name in _LENGTH_ARRAYS:
                big = (np.abs(flat) > MAX_COORDINATE_M).any(axis=1)
                if big.any():
                    i = _first_bad(big)
                    raise UnitsError(
                        f"grasp {i}: {name} has a coordinate of {np.abs(flat[i]).max():.4g} m (> "
                        f"{MAX_COORDINATE_M:g} m); values look like millimetres, contactkit stores metres"
                    )
            if name in ("hand_contact", "object_contact"):
                out = ((flat < -CONTACT_TOLERANCE) | (flat > 1 + CONTACT_TOLERANCE)).any(axis=1)
                if out.any():
                    raise ShapeError(f"grasp {_first_bad(out)}: {name} must lie in [0, 1]")
        self._warn_implausible()
        if n:
            r = self.object_rotation
            err = np.abs(r @ np.swapaxes(r, 1, 2) - np.eye(3)).reshape(n, -1).max(axis=1)
            bad = (err > 1e-4) | (np.linalg.det(r) < 0)
            if bad.any():
                raise ShapeError(f"grasp {_first_bad(bad)}: object_rotation is not a rotation matrix")
        for i, oid in enumerate(self.object_ids):
            if oid not in self.objects:
                raise ShapeError(f"grasp {i}: object id {oid!r} is not among the stored objects")
        for key, obj in self.objects.items():
            extent = float(np.abs(obj.vertices).max())
            if extent > MAX_COORDINATE_M:
                raise UnitsError(
                    f"object {key} ({obj.name}): a vertex coordinate is {extent:.4g} m "
                    f"(> {MAX_COORDINATE_M:g} m); "
                    "looks like millimetres, contactkit stores metres"
                )

    def _warn_implausible(self) -> None:
        """Warn (do not refuse) on finite but absurd parameters: they pose a hand, but not a plausible one."""
        if len(self) == 0:
            return
        for name in ("global_orient", "hand_pose"):
            angles = np.linalg.norm(getattr(self, name).reshape(len(self), -1, 3), axis=-1)
            if angles.max() > MAX_PLAUSIBLE_ANGLE_RAD:
                i = _first_bad((angles > MAX_PLAUSIBLE_ANGLE_RAD).any(axis=1))
                warn_external(
                    f"grasp {i}: {name} has a rotation of {angles[i].max():.4g} rad (> {MAX_PLAUSIBLE_ANGLE_RAD:.4g}, "
                    "a full turn); the parameters look corrupt or diverged"
                )
        if self.betas.size and np.abs(self.betas).max() > MAX_PLAUSIBLE_BETA:
            i = _first_bad((np.abs(self.betas) > MAX_PLAUSIBLE_BETA).any(axis=1))
            warn_external(
                f"grasp {i}: betas reach {np.abs(self.betas[i]).max():.4g} (> {MAX_PLAUSIBLE_BETA:g}; shape "
                "coefficients are in standard deviations, typically within +-3): the hand shape is not plausible"
            )

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_arrays(
        cls,
        *,
        hand_model: str,
        side: str,
        global_orient: Any,
        hand_pose: Any,
        objects: ObjectMesh | Sequence[ObjectMesh],
        betas: Any = None,
        transl: Any = None,
        object_rotation: Any = None,
        object_translation: Any = None,
        num_betas: int = 10,
        **optional: Any,
    ) -> GraspSet:
        """Build a set with defaults: zero betas (``num_betas`` wide), zero translations, identity poses.

        Args:
            objects: one object for every grasp, or a sequence of N objects (one per grasp).
            **optional: any optional field (``hand_vertices``, ``metadata``, ``attrs``, ...).
        """
        go = _as_array(global_orient, np.float64)
        n = go.shape[0] if go.ndim else 0
        objs = [objects] * n if isinstance(objects, ObjectMesh) else list(objects)
        if len(objs) != n:
            raise ShapeError(f"objects must be one ObjectMesh or N = {n} of them, got {len(objs)}")
        return cls(
            hand_model=hand_model,
            side=side,
            global_orient=go,
            hand_pose=hand_pose,
            betas=np.zeros((n, num_betas)) if betas is None else betas,
            transl=np.zeros((n, 3)) if transl is None else transl,
            object_ids=[o.content_hash for o in objs],
            objects={o.content_hash: o for o in objs},
            object_rotation=np.broadcast_to(np.eye(3), (n, 3, 3))
            if object_rotation is None
            else object_rotation,
            object_translation=np.zeros((n, 3)) if object_translation is None else object_translation,
            **optional,
        )

    def replace(self, **changes: Any) -> GraspSet:
        """A copy with some fields changed (re-validated), like ``dataclasses.replace``."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return int(self.global_orient.shape[0])

    def __repr__(self) -> str:
        opt = [k for k in _OPTIONAL_ARRAYS if getattr(self, k) is not None]
        return (
            f"GraspSet(N={len(self)}, hand_model={self.hand_model!r}, side={self.side!r}, "
            f"objects={[o.name for o in self.objects.values()]}, optional={opt})"
        )

    @property
    def num_betas(self) -> int:
        return int(self.betas.shape[1])

    def optional_fields(self) -> list[str]:
        """Names of the optional arrays present."""
        return [k for k in _OPTIONAL_ARRAYS if getattr(self, k) is not None]

    def check_hand(self, hand: Any) -> None:
        """Raise :class:`ShapeError` unless ``hand`` (a HandModel) can pose these grasps.

        Checks the hand model name and side, the number of shape coefficients (extra ones must be zero) and the
        vertex count of stored ``hand_vertices`` / ``hand_contact`` against ``hand.num_verts``.
        """
        name, side = getattr(hand, "name", None), getattr(hand, "side", None)
        if name != self.hand_model or side != self.side:
            raise ShapeError(
                f"the grasps are for the {self.side} {self.hand_model} hand, got a {side} {name} hand model"
            )
        v = int(getattr(hand, "num_verts", -1))
        for field_name in ("hand_vertices", "hand_contact"):
            arr = getattr(self, field_name)
            if arr is not None and arr.shape[1] != v:
                raise ShapeError(
                    f"{field_name} stores {arr.shape[1]} vertices per grasp but the {self.side} {self.hand_model} "
                    f"hand model has {v}"
                )
        nb = getattr(hand, "num_betas", None)
        k = self.betas.shape[1] if nb is None else int(nb)
        if self.betas.shape[1] > k and np.any(self.betas[:, k:] != 0):
            raise ShapeError(f"the grasps carry {self.betas.shape[1]} shape coefficients but the hand uses {k}")

    def object_of(self, i: int) -> ObjectMesh:
        """The object (object frame) of grasp ``i``."""
        return self.objects[self.object_ids[i]]

    def object_groups(self) -> dict[str, np.ndarray]:
        """Object id -> ``(n_k,)`` int64 indices of the grasps using that object (first-seen order)."""
        groups: dict[str, list[int]] = {}
        for i, oid in enumerate(self.object_ids):
            groups.setdefault(oid, []).append(i)
        return {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}

    def subset(self, idx: Any) -> GraspSet:
        """Grasps selected by ``idx`` (int array, bool mask (N,), slice, or list); unused objects dropped."""
        n = len(self)
        if isinstance(idx, slice):
            sel = np.arange(n)[idx]
        else:
            arr = np.asarray(idx.detach().cpu() if isinstance(idx, torch.Tensor) else idx)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise ShapeError(f"boolean idx must have shape (N,) = ({n},), got {arr.shape}")
                sel = np.flatnonzero(arr)
            elif arr.size == 0:
                sel = np.zeros(0, dtype=np.int64)
            elif np.issubdtype(arr.dtype, np.integer):
                sel = arr.reshape(-1).astype(np.int64)
                if (sel < -n).any() or (sel >= n).any():
                    raise ShapeError(f"idx out of range for a set of {n} grasps")
                sel = np.where(sel < 0, sel + n, sel)
            else:
                raise ShapeError(f"idx must be integers, a boolean mask, or a slice; got dtype {arr.dtype}")
        ids = [self.object_ids[i] for i in sel]
        changes: dict[str, Any] = {k: getattr(self, k)[sel] for k in _REQUIRED_ARRAYS}
        for k in _OPTIONAL_ARRAYS:
            v = getattr(self, k)
            if v is not None:
                changes[k] = v[sel]
        return self.replace(
            object_ids=ids,
            objects={k: self.objects[k] for k in dict.fromkeys(ids)},
            metadata=[self.metadata[i] for i in sel],
            **changes,
        )

    @staticmethod
    def concat(sets: Sequence[GraspSet]) -> GraspSet:
        """Concatenate sets with the same hand model, side, number of betas and optional fields.

        ``attrs`` are kept when all sets agree, else stored as ``{"concat_of": [attrs, ...]}``.
        """
        sets = list(sets)
        if not sets:
            raise ShapeError("concat needs at least one GraspSet")
        first = sets[0]
        for k, s in enumerate(sets[1:], start=1):
            if (s.hand_model, s.side, s.num_betas) != (first.hand_model, first.side, first.num_betas):
                raise ShapeError(
                    f"concat: set {k} has hand ({s.hand_model}, {s.side}, {s.num_betas} betas), set 0 has "
                    f"({first.hand_model}, {first.side}, {first.num_betas} betas)"
                )
            if s.optional_fields() != first.optional_fields():
                raise ShapeError(
                    f"concat: set {k} has optional fields {s.optional_fields()}, "
                    f"set 0 has {first.optional_fields()}"
                )
        arrays: dict[str, Any] = {}
        for name in (*_REQUIRED_ARRAYS, *first.optional_fields()):
            parts = [getattr(s, name) for s in sets]
            if parts[0].ndim >= 2 and len({p.shape[1:] for p in parts}) > 1:
                raise ShapeError(f"concat: {name} shapes differ beyond N: {[p.shape for p in parts]}")
            arrays[name] = np.concatenate(parts, axis=0)
        objects: dict[str, ObjectMesh] = {}
        for s in sets:
            objects.update(s.objects)
        same_attrs = all(s.attrs == first.attrs for s in sets)
        return GraspSet(
            hand_model=first.hand_model,
            side=first.side,
            object_ids=[i for s in sets for i in s.object_ids],
            objects=objects,
            metadata=[m for s in sets for m in s.metadata],
            attrs=dict(first.attrs) if same_attrs else {"concat_of": [s.attrs for s in sets]},
            **arrays,
        )

    def hand_tensors(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, torch.Tensor]:
        """Hand parameters (and object poses) as torch tensors.

        Returns:
            dict with ``global_orient (N,3)``, ``hand_pose (N,45)``, ``betas (N,S)``, ``transl (N,3)``,
            ``object_rotation (N,3,3)``, ``object_translation (N,3)`` and, when present,
            ``hand_vertices (N,V,3)`` and ``hand_contact (N,V)``, all of ``dtype`` on ``device``.
        """
        names = [
            *_REQUIRED_ARRAYS,
            *(k for k in ("hand_vertices", "hand_contact") if getattr(self, k) is not None),
        ]
        return {k: torch.as_tensor(np.array(getattr(self, k)), dtype=dtype, device=device) for k in names}

    def object_tensors(
        self, object_id: str, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """World-frame vertices of one object in every grasp that uses it.

        Returns:
            ``(vertices (n_k, V, 3) dtype, faces (F, 3) int64, grasp_idx (n_k,) int64)``: the object's
            vertices             posed by each of its grasps' ``object_rotation``/``object_translation``.
        """
        if object_id not in self.objects:
            raise ShapeError(f"object id {object_id!r} is not in this set; known: {sorted(self.objects)}")
        idx = self.object_groups().get(object_id, np.zeros(0, dtype=np.int64))
        verts, faces = self.objects[object_id].to_torch(device=device, dtype=dtype)
        rot = torch.as_tensor(self.object_rotation[idx], dtype=dtype, device=device)
        t = torch.as_tensor(self.object_translation[idx], dtype=dtype, device=device)
        world = torch.einsum("bij,vj->bvi", rot, verts) + t[:, None, :]
        return world, faces, torch.as_tensor(idx, device=device)


# ---------------------------------------------------------------------- writing
def _object_header(obj: ObjectMesh) -> dict[str, Any]:
    return {
        "name": obj.name,
        "is_watertight": obj.is_watertight,
        "analytic_volume_m3": obj.analytic_volume_m3,
        "source": obj.source,
        "primitive": obj.primitive,
    }


def save_grasps(path: str | os.PathLike[str], grasps: GraspSet) -> None:
    """Write ``grasps`` to ``path`` (``.npz`` recommended) atomically in format ``contactkit.grasps`` v1.

    Only the objects referenced by ``object_ids`` are stored, each once.
    """
    from contactkit import __version__

    if not isinstance(grasps, GraspSet):
        raise GraspFileError(f"save_grasps expects a GraspSet, got {type(grasps).__name__}")
    used = list(dict.fromkeys(grasps.object_ids))
    header = {
        "format": GRASP_FORMAT_NAME,
        "version": GRASP_FORMAT_VERSION,
        "hand_model": grasps.hand_model,
        "side": grasps.side,
        "units": "m",
        "num_grasps": len(grasps),
        "object_ids": grasps.object_ids,
        "objects": {k: _object_header(grasps.objects[k]) for k in used},
        "optional": grasps.optional_fields(),
        "metadata": grasps.metadata,
        "attrs": grasps.attrs,
        "created_by": f"contactkit {__version__}",
    }
    arrays: dict[str, np.ndarray] = {"header": np.asarray(json.dumps(header, allow_nan=False))}
    for name in (*_REQUIRED_ARRAYS, *grasps.optional_fields()):
        arrays[name] = np.asarray(getattr(grasps, name))
    for key in used:
        obj = grasps.objects[key]
        arrays[f"objects/{key}/vertices"] = np.asarray(obj.vertices, dtype=np.float64)
        arrays[f"objects/{key}/faces"] = np.asarray(obj.faces, dtype=np.int64)
    atomic_savez(path, **arrays)


# ---------------------------------------------------------------------- reading
def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise GraspFileError(f"{path}: cannot read grasp file (truncated or corrupt npz): not a zip archive")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.array(data[k]) for k in data.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
        raise GraspFileError(
            f"{path}: cannot read grasp file (truncated or corrupt npz): {type(exc).__name__}: {exc}"
        ) from None
    except ValueError as exc:  # includes "Object arrays cannot be loaded when allow_pickle=False"
        raise GraspFileError(f"{path}: not a valid grasp file (pickled or malformed array): {exc}") from None


def _resolve_reference_path(attrs: dict[str, Any], path: Path) -> dict[str, Any]:
    """A relative ``attrs["reference"]`` names a file beside the grasp file: make it usable from any directory."""
    ref = attrs.get("reference")
    if isinstance(ref, str) and ref and not Path(ref).is_absolute():
        return {**attrs, "reference": str((path.parent / ref).resolve())}
    return attrs


def _json_header(path: Path, raw: dict[str, np.ndarray], kind: str) -> Any:
    """The parsed JSON of ``raw["header"]`` (a 0-d unicode array) of the ``kind`` file ``path``; raises
    :class:`GraspFileError` when it is missing, not a string, or not JSON. Shared by the grasp and grasp-parameter
    formats."""
    if "header" not in raw:
        raise GraspFileError(f"{path}: not a {kind} (no 'header' entry)")
    h = raw["header"]
    if h.shape != () or h.dtype.kind != "U":
        raise GraspFileError(f"{path}: 'header' must be a JSON string, got dtype {h.dtype} shape {h.shape}")
    try:
        return json.loads(str(h))
    except json.JSONDecodeError as exc:
        raise GraspFileError(f"{path}: header is not valid JSON: {exc}") from None


def _parse_header(path: Path, raw: dict[str, np.ndarray]) -> dict[str, Any]:
    header = _json_header(path, raw, "contactkit grasp file")
    if not isinstance(header, dict) or header.get("format") != GRASP_FORMAT_NAME:
        fmt = header.get("format") if isinstance(header, dict) else None
        raise GraspFileError(
            f"{path}: not a contactkit grasp file (format {fmt!r}, expected {GRASP_FORMAT_NAME!r})"
        )
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise GraspFileError(
            f"{path}: unsupported {GRASP_FORMAT_NAME} version {version!r}; this contactkit reads version(s) "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}"
        )
    if header.get("units") != "m":
        raise GraspFileError(f"{path}: units must be 'm' (metres), header says {header.get('units')!r}")
    for key, typ in (
        ("hand_model", str),
        ("side", str),
        ("num_grasps", int),
        ("object_ids", list),
        ("objects", dict),
        ("metadata", list),
        ("attrs", dict),
        ("optional", list),
    ):
        if not isinstance(header.get(key), typ):
            raise GraspFileError(f"{path}: header field {key!r} missing or not a {typ.__name__}")
    return header


#: Header entries of a stored object: name -> (accepted types, description). None marks an optional entry.
_OBJECT_HEADER_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"),
    "is_watertight": ((bool,), "true or false"),
    "analytic_volume_m3": ((int, float, type(None)), "a number or null"),
    "source": ((str, type(None)), "a string or null"),
    "primitive": ((dict, type(None)), "an object or null"),
}


def _check_object_header(p: Path, key: str, info: dict[str, Any]) -> None:
    """Raise :class:`GraspFileError` naming the field when an object's header entry has the wrong type."""
    for field_name, (types, desc) in _OBJECT_HEADER_TYPES.items():
        if field_name not in info:
            continue
        value = info[field_name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise GraspFileError(f"{p}: object {key}: header field {field_name!r} must be {desc}, got {value!r}")
    vol = info.get("analytic_volume_m3")
    if vol is not None and not (math.isfinite(vol) and vol > 0):
        raise GraspFileError(f"{p}: object {key}: analytic_volume_m3 must be a positive number, got {vol!r}")


def load_grasps(path: str | os.PathLike[str]) -> GraspSet:
    """Read and validate a ``contactkit.grasps`` file.

    Raises:
        GraspFileError: missing, truncated or corrupt file; unknown format or version; missing or mis-shaped
            arrays; NaN/inf values, millimetre-scale coordinates or unknown object ids (naming the grasp
            index).
    """
    p = Path(path)
    if not p.is_file():
        raise GraspFileError(f"{p}: grasp file not found")
    raw = _read_npz(p)
    header = _parse_header(p, raw)
    n = header["num_grasps"]
    if isinstance(n, bool) or n < 0:
        raise GraspFileError(f"{p}: header field 'num_grasps' must be a count >= 0, got {n!r}")
    optional = header["optional"]
    unknown = [k for k in optional if k not in _OPTIONAL_ARRAYS]
    if unknown:
        raise GraspFileError(f"{p}: unknown optional arrays {unknown}")
    for name in (*_REQUIRED_ARRAYS, *optional):
        if name not in raw:
            raise GraspFileError(f"{p}: array {name!r} is missing")
        arr = raw[name]
        if arr.ndim == 0 or arr.shape[0] != n:
            raise GraspFileError(
                f"{p}: array {name!r} has {arr.shape[0] if arr.ndim else 0} records, header says {n}"
            )
        if arr.dtype.kind not in "fiu":
            raise GraspFileError(f"{p}: array {name!r} has non-numeric dtype {arr.dtype}")
    ids = header["object_ids"]
    if not all(isinstance(i, str) for i in ids):
        raise GraspFileError(f"{p}: header field 'object_ids' must list strings (object content hashes)")
    if len(ids) != n:
        raise GraspFileError(f"{p}: header lists {len(ids)} object ids for {n} grasps")
    for i, oid in enumerate(ids):
        if oid not in header["objects"] or f"objects/{oid}/vertices" not in raw:
            raise GraspFileError(f"{p}: grasp {i}: object id {oid!r} is not stored in the file")
    objects: dict[str, ObjectMesh] = {}
    for key, info in header["objects"].items():
        vkey, fkey = f"objects/{key}/vertices", f"objects/{key}/faces"
        if vkey not in raw or fkey not in raw or not isinstance(info, dict):
            raise GraspFileError(f"{p}: object {key}: vertices, faces or header entry missing")
        _check_object_header(p, key, info)
        try:
            v, f = validate_arrays(raw[vkey], raw[fkey], what=f"object {key}")
            obj = ObjectMesh(
                str(info.get("name", key)),
                v,
                f,
                is_watertight=bool(info.get("is_watertight", False)),
                analytic_volume_m3=info.get("analytic_volume_m3"),
                source=info.get("source"),
                primitive=info.get("primitive"),
            )
        except MeshError as exc:
            raise GraspFileError(f"{p}: {exc}") from None
        if obj.content_hash != key:
            raise GraspFileError(
                f"{p}: object {key}: stored geometry hashes to {obj.content_hash} (file corrupt or edited)"
            )
        objects[key] = obj
    try:
        return GraspSet(
            hand_model=header["hand_model"],
            side=header["side"],
            object_ids=ids,
            objects=objects,
            metadata=header["metadata"],
            attrs=_resolve_reference_path(header["attrs"], p),
            **{k: raw[k] for k in (*_REQUIRED_ARRAYS, *optional)},
        )
    except ContactkitError as exc:
        raise GraspFileError(f"{p}: {exc}") from None

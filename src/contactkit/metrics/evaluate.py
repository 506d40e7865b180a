"""``evaluate``: every named metric over a grasp set, optionally against a reference grasp set.

Two layers:

* :func:`evaluate_posed` works on :class:`PosedGrasps` (posed hand vertices and keypoints, closed hand faces,
  object meshes in their own frame and object poses: plain arrays), so any hand model or data source can use it;
* :func:`evaluate` takes a :class:`contactkit.io.grasps.GraspSet`, poses the hand with its hand model, finds the
  reference (``grasps.attrs["reference"]`` + ``reference_index``) and calls :func:`evaluate_posed`.

Everything except the pose errors and the simulation is computed in the object frame (hand vertices mapped by
``R^T (x - t)``), so those metrics are exactly invariant under a common rigid motion and voxel grids are fixed to
the object. Per-sample values are NaN where a metric cannot be computed for that sample (e.g. object-vertex
error between different objects); means and standard deviations ignore NaN.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from contactkit.cache import LRUCache, array_key, mesh_key
from contactkit.errors import ContactkitError, ShapeError
from contactkit.geometry.inside import is_closed
from contactkit.geometry.mesh_distance import MeshIndex
from contactkit.io.atomic import json_number
from contactkit.metrics import _compute, _geom
from contactkit.metrics import contact as _contact
from contactkit.metrics._arrays import faces_array, points_batch, to_numpy
from contactkit.metrics.registry import METRICS, resolve_metrics

#: Hand vertices certainly farther than this (m) from the object (outside it) only need a lower bound of their
#: distance: the metrics read signed distances only through ``|sd| <= 2 mm`` and ``max(0, -sd)`` (and the exact
#: fingertip-region values).
_SD_BAND = 0.0025
#: Approximation factors of the successive nearest-object-vertex passes that bound the fingertip regions'
#: distances, each over the vertices the earlier ones could not rule out (fast for far points first, then exact:
#: an exact query costs a fraction of the exact signed distance it can save for a vertex several cm away).
_NV_EPS = (0.5, 0.1, 0.0)
#: Number of object surface samples used by the object-side contact metrics and the Chamfer distance.
OBJECT_SAMPLES = 2048


@dataclass
class PosedGrasps:
    """A batch of N posed grasps as plain arrays (metres, world frame unless stated).

    Attributes:
        hand_verts: (N, V, 3) float64 hand vertices.
        keypoints: (N, K, 3) float64 hand keypoints (21, contactkit order).
        hand_faces: (F, 3) int64 closed (watertight) hand faces.
        object_ids: N keys into ``objects``.
        objects: id -> (vertices (V_o, 3) float64 in the object frame, faces (F_o, 3) int64); stored as
            read-only copies (their content keys, :meth:`object_key`, are computed once).
        object_rotation: (N, 3, 3) float64, ``x_world = R x_object + t``.
        object_translation: (N, 3) float64.
        fingertip_regions: five vertex-index arrays (thumb..little) for the disjointedness, or None.
        hand_labels: (V,) int region of each vertex (simulation ``hand_shape="regions"``), or None.
        hand_contact: (N, V) reference hand contact map in [0, 1] (or bool), or None.
        object_points: (N, P, 3) object-frame points carrying ``object_contact``, or None.
        object_contact: (N, P) object contact map in [0, 1] (or bool), or None.
    """

    hand_verts: np.ndarray
    keypoints: np.ndarray
    hand_faces: np.ndarray
    object_ids: list[str]
    objects: dict[str, tuple[np.ndarray, np.ndarray]]
    object_rotation: np.ndarray
    object_translation: np.ndarray
    fingertip_regions: list[np.ndarray] | None = None
    hand_labels: np.ndarray | None = None
    hand_contact: np.ndarray | None = None
    object_points: np.ndarray | None = None
    object_contact: np.ndarray | None = None
    #: object id -> (vertices, faces, their mesh_key): content keys computed once (the arrays are read-only)
    _keys: dict[str, tuple[np.ndarray, np.ndarray, bytes]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.hand_verts = points_batch(self.hand_verts, "hand_verts")
        n = self.hand_verts.shape[0]
        self.keypoints = points_batch(self.keypoints, "keypoints")
        if self.keypoints.shape[0] != n:
            raise ShapeError(f"Expected keypoints to have batch size {n}, got {self.keypoints.shape[0]}")
        self.hand_faces = faces_array(self.hand_faces, "hand_faces", self.hand_verts.shape[1])
        if len(self.object_ids) != n:
            raise ShapeError(f"Expected {n} object_ids, got {len(self.object_ids)}")
        missing = sorted(set(self.object_ids) - set(self.objects))
        if missing:
            raise ShapeError(f"object_ids {missing} have no entry in objects")
        self.objects = {
            k: (
                np.array(points_batch(v, f"objects[{k!r}] vertices", allow_unbatched=True)[0]),
                np.array(faces_array(f, f"objects[{k!r}] faces", np.asarray(to_numpy(v)).shape[0])),
            )
            for k, (v, f) in self.objects.items()
        }
        for v, f in self.objects.values():  # private copies, frozen: their content keys stay valid
            v.setflags(write=False)
            f.setflags(write=False)
        self.object_rotation = np.asarray(to_numpy(self.object_rotation), dtype=np.float64)
        self.object_translation = np.asarray(to_numpy(self.object_translation), dtype=np.float64)
        if self.object_rotation.shape != (n, 3, 3):
            raise ShapeError(f"Expected object_rotation to be of shape ({n}, 3, 3), got {self.object_rotation.shape}")
        if self.object_translation.shape != (n, 3):
            raise ShapeError(
                f"Expected object_translation to be of shape ({n}, 3), got {self.object_translation.shape}"
            )

    def __len__(self) -> int:
        return int(self.hand_verts.shape[0])

    def object_key(self, key: str) -> bytes:
        """The :func:`~contactkit.cache.mesh_key` of object ``key``'s mesh, computed once per mesh arrays."""
        v, f = self.objects[key]
        hit = self._keys.get(key)
        if hit is None or hit[0] is not v or hit[1] is not f:
            hit = (v, f, mesh_key(v, f))
            self._keys[key] = hit
        return hit[2]

    def share_object_keys(self, other: PosedGrasps) -> None:
        """Take ``other``'s content keys for the objects whose meshes equal this set's (no hashing: a comparison)."""
        for key in set(self.objects) & set(other.objects):
            (v, f), (ov, of) = self.objects[key], other.objects[key]
            if v.shape == ov.shape and f.shape == of.shape and np.array_equal(v, ov) and np.array_equal(f, of):
                self._keys[key] = (v, f, other.object_key(key))

    def to_object_frame(self, points: np.ndarray) -> np.ndarray:
        """Map world points ``(N, M, 3)`` to each sample's object frame: ``R^T (x - t)``.

        The values of ``np.einsum("nmj,nji->nmi", x - t, R)`` (a zeroed output plus the three products in
        order: ``((0 + d_0 R_0i) + d_1 R_1i) + d_2 R_2i``; the einsum twin is in the tests) on coordinate planes,
        several times faster than einsum's generic loop."""
        d = points - self.object_translation[:, None, :]
        r = self.object_rotation[:, None, :, :]  # (N, 1, 3, 3)
        x, y, z = d[..., 0], d[..., 1], d[..., 2]
        return np.stack([0.0 + x * r[..., 0, i] + y * r[..., 1, i] + z * r[..., 2, i] for i in range(3)], axis=-1)

    def object_world_verts(self, i: int) -> np.ndarray:
        """(V_o, 3) vertices of sample ``i``'s object in the world frame."""
        v, _ = self.objects[self.object_ids[i]]
        return v @ self.object_rotation[i].T + self.object_translation[i]


@dataclass
class MetricResult:
    """Per-sample values of one metric in its reporting unit.

    Attributes:
        name: metric name (see :data:`contactkit.metrics.registry.METRICS`).
        unit: reporting unit.
        values: (N,) float64; NaN where not computable.
        variant: convention used (``"default"`` or a paper's).
        fallback: (N,) bool, True where a fallback method was used (see the metric's docs).
        extra: additional JSON-able data (e.g. the mean PCK curve).
    """

    name: str
    unit: str
    values: np.ndarray
    variant: str
    fallback: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        v = self.values[np.isfinite(self.values)]
        return float(v.mean()) if v.size else float("nan")

    @property
    def std(self) -> float:
        v = self.values[np.isfinite(self.values)]
        return float(v.std()) if v.size else float("nan")

    @property
    def count(self) -> int:
        return int(np.isfinite(self.values).sum())


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: one :class:`MetricResult` per metric, in the requested order."""

    results: dict[str, MetricResult]
    num_grasps: int
    reference: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> MetricResult:
        return self.results[name]

    def __contains__(self, name: str) -> bool:
        return name in self.results

    def means(self) -> dict[str, float]:
        """``{name: mean}``."""
        return {k: r.mean for k, r in self.results.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN and infinities become null)."""
        metrics = {}
        for name, r in self.results.items():
            metrics[name] = {
                "mean": json_number(r.mean),
                "std": json_number(r.std),
                "unit": r.unit,
                "count": r.count,
                "not_computed": len(r.values) - r.count,
                "variant": r.variant,
                "values": [json_number(float(v)) for v in r.values],
                "fallback": [bool(f) for f in r.fallback],
                **({"extra": r.extra} if r.extra else {}),
            }
        return {
            "format": "contactkit.evaluation",
            "version": 1,
            "num_grasps": self.num_grasps,
            "reference": self.reference,
            "settings": self.settings,
            "metrics": metrics,
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The JSON text of :meth:`to_dict`; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            from contactkit.io.atomic import atomic_write_text

            atomic_write_text(path, text + "\n")
        return text

    def table(self) -> str:
        """A plain-text table: metric, mean ± std, unit, count, variant and fallbacks."""
        rows = [("metric", "mean ± std", "unit", "n", "variant")]
        for name, r in self.results.items():
            note = r.variant + (f" ({int(r.fallback.sum())} fallback)" if r.fallback.any() else "")
            skipped = int(r.extra.get("not_simulable", 0))
            if skipped:
                note += f" ({skipped} not simulable)"
            if len(r.values) - r.count > skipped:
                note += f" ({len(r.values) - r.count - skipped} not computed)"
            rows.append((name, f"{r.mean:.3f} ± {r.std:.3f}", r.unit, str(r.count), note))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ helpers


def _region_min(values: np.ndarray, regions: list[np.ndarray]) -> np.ndarray:
    """For ``values (..., R)`` laid out as the concatenated ``regions`` along the last axis, each entry's region
    minimum (same layout)."""
    out = np.empty_like(values)
    start = 0
    for r in regions:
        stop = start + r.size
        if r.size:
            out[..., start:stop] = values[..., start:stop].min(axis=-1, keepdims=True)
        start = stop
    return out


def _groups(ids: Sequence[str]) -> dict[str, np.ndarray]:
    out: dict[str, list[int]] = {}
    for i, k in enumerate(ids):
        out.setdefault(k, []).append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}


_SAMPLES: LRUCache[np.ndarray] = LRUCache()


def _surface_samples(verts: np.ndarray, faces: np.ndarray, n: int, key: bytes) -> np.ndarray:
    """``n`` area-weighted surface samples (object frame), deterministic (seed 0), cached by mesh content
    (``key``: the mesh's :func:`~contactkit.cache.mesh_key`)."""
    from contactkit.geometry.sampling import sample_surface

    def make() -> np.ndarray:
        pts, _, _ = sample_surface(np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64), n, seed=0)
        out = pts.numpy()
        out.setflags(write=False)
        return out

    return _SAMPLES.get_or_make((key, n), make)


_BOUNDS: LRUCache[_geom.ObjectBounds] = LRUCache()
_INDICES: LRUCache[MeshIndex] = LRUCache()


V = TypeVar("V")


def _by_array(store: dict[int, tuple[np.ndarray, V]], verts: np.ndarray, make: Callable[[], V]) -> V:
    """``store``'s value for the array ``verts`` (keyed by ``id``, checked by identity: the entry keeps the array
    alive, so a recycled id never hits), made with ``make()`` on a miss."""
    hit = store.get(id(verts))
    if hit is None or hit[0] is not verts:
        hit = (verts, make())
        store[id(verts)] = hit
    return hit[1]


class _Context:
    """Lazily computed per-sample quantities shared by several metrics. ``fingertips``: whether :attr:`hand_sd`
    must carry each fingertip region's exact smallest distance (disjointedness); a reference's context only feeds
    the contact masks, so it skips that work."""

    def __init__(self, g: PosedGrasps, n_samples: int, *, fingertips: bool = True) -> None:
        self.g = g
        self.n_samples = n_samples
        self.fingertips = fingertips
        # AABB trees by id of the object's vertex array (the entry keeps the array, checked by identity)
        self.indices: dict[int, tuple[np.ndarray, MeshIndex]] = {}
        self._bounds: dict[int, tuple[np.ndarray, _geom.ObjectBounds]] = {}
        self._object_masks: dict[tuple[int, int], np.ndarray] = {}
        self.hv_obj = g.to_object_frame(g.hand_verts)
        self.kp_obj = g.to_object_frame(g.keypoints)
        self.groups = _groups(g.object_ids)
        self._sd: np.ndarray | None = None
        self._samples: dict[str, np.ndarray] = {}

    @property
    def hand_sd(self) -> np.ndarray:
        """(N, V) signed distance of the hand vertices to the object (negative inside).

        Exact for every vertex not certainly outside the object and farther than ``_SD_BAND``, and (with
        ``fingertips``) for each fingertip region's vertices that may be its nearest to the object; the others get
        a lower bound of their (positive, > 2.5 mm) distance from the object's cached
        :class:`~contactkit.metrics._geom.ObjectBounds`. That is all penetration depth, contact masks and
        disjointedness (the smallest distance of each region) read, and it skips most of the exact queries.
        """
        if self._sd is None:
            sd = np.zeros(self.hv_obj.shape[:2])
            regions = [np.asarray(r, dtype=np.int64) for r in self.g.fingertip_regions or []]
            regions = regions if self.fingertips else []
            for key, idx in self.groups.items():
                ov, of = self.g.objects[key]
                bounds = self.bounds(ov, of)
                # all grasps of the object at once (every query is per point: the values of a grasp-by-grasp loop)
                pts = self.hv_obj[idx]  # (n, V, 3)
                bound = bounds.outside_bound(pts.reshape(-1, 3)).reshape(pts.shape[:2])  # -inf: perhaps inside
                need = bound <= _SD_BAND
                # a fingertip-region vertex is needed exactly unless it is certainly farther than the region's
                # nearest point can be (disjointedness reads the region's smallest distance)
                if regions:
                    every = np.concatenate(regions)
                    known_out = bound[:, every] > 0.0
                    # nearest object vertices, approximate first, then tighter for the vertices the earlier
                    # passes could not rule out; d >= |sd| >= bounds.surface_lower_bound(d, eps)
                    sel = pts[:, every]
                    lower = bound[:, every]
                    d_nv = np.full(lower.shape, np.inf)
                    todo = np.ones(lower.shape, dtype=bool)
                    for eps in _NV_EPS:
                        d = bounds.nearest_vertex(sel[todo], eps=eps)
                        d_nv[todo] = np.minimum(d_nv[todo], d)
                        tighter = np.where(known_out[todo], bounds.surface_lower_bound(d, eps), -np.inf)
                        lower[todo] = np.maximum(lower[todo], tighter)
                        todo &= known_out & ~(lower > np.maximum(_SD_BAND, _region_min(d_nv, regions)))
                        if not todo.any():
                            break
                    # a vertex in several regions is needed when any of them needs it
                    flag = ~(lower > np.maximum(_SD_BAND, _region_min(d_nv, regions)))
                    rows = np.broadcast_to(np.arange(len(idx))[:, None], flag.shape)
                    np.logical_or.at(need, (rows, np.broadcast_to(every, flag.shape)), flag)
                    bound[:, every] = lower
                # one exact query for the whole group (a call has a fixed cost of about 2 ms)
                bound[need] = _geom.signed_distance(pts[need], ov, of, index=self.index(ov, of))
                sd[idx] = bound
            self._sd = sd
        return self._sd

    def _key(self, verts: np.ndarray, faces: np.ndarray) -> bytes:
        """The content key of the mesh ``verts``, ``faces`` (the set's key when it is one of the set's objects)."""
        for k, (v, f) in self.g.objects.items():
            if v is verts and f is faces:
                return self.g.object_key(k)
        return mesh_key(verts, faces)

    def bounds(self, verts: np.ndarray, faces: np.ndarray) -> _geom.ObjectBounds:
        """The object's cached distance bounds, looked up once per object."""

        def make() -> _geom.ObjectBounds:
            closed = is_closed(faces, verts.shape[0])
            return _geom.ObjectBounds(verts, faces, self.index(verts, faces), closed=closed, margin=_SD_BAND)

        return _by_array(self._bounds, verts, lambda: _BOUNDS.get_or_make(self._key(verts, faces), make))

    def index(self, verts: np.ndarray, faces: np.ndarray) -> MeshIndex:
        """The object's AABB tree, looked up once per object (by the set's content key: no extra hashing)."""
        key = self._key(verts, faces)
        return _by_array(self.indices, verts, lambda: _INDICES.get_or_make(key, lambda: MeshIndex(verts, faces)))

    def object_mask(self, i: int, points: np.ndarray) -> np.ndarray:
        """(P,) bool: which ``points`` (object frame) lie within 2 mm of sample ``i``'s closed hand surface."""
        key = (i, id(points))
        if key not in self._object_masks:
            # PosedGrasps validated the hand; the points are its own samples or object points
            self._object_masks[key] = _contact.object_contact_mask_one(points, self.hv_obj[i], self.g.hand_faces)
        return self._object_masks[key]

    def samples(self, key: str) -> np.ndarray:
        if key not in self._samples:
            ov, of = self.g.objects[key]
            self._samples[key] = _surface_samples(ov, of, self.n_samples, self.g.object_key(key))
        return self._samples[key]


#: Contexts of recently evaluated references: one ground truth is usually scored against several methods, and its
#: signed distances and contact masks are the same every time.
_REFERENCE_CONTEXTS: LRUCache[_Context] = LRUCache(size=4)


def _content_key(g: PosedGrasps, n_samples: int) -> bytes:
    """The content key of everything a :class:`_Context` derives its values from."""
    arrays = [g.hand_verts, g.hand_faces, g.object_rotation, g.object_translation]
    arrays += [np.asarray(r, dtype=np.int64) for r in g.fingertip_regions or []]
    meshes = tuple(g.object_key(key) for key in sorted(set(g.object_ids)))
    return array_key(*arrays, extra=(n_samples, tuple(g.object_ids), len(g.fingertip_regions or []), meshes))


def clear_reference_cache() -> None:
    """Forget the cached reference contexts (benchmarks time cold evaluations with it)."""
    _REFERENCE_CONTEXTS.clear()


def _reference_context(reference: PosedGrasps, n_samples: int) -> _Context:
    """The reference's context, reused when the same reference content was evaluated recently."""
    key = _content_key(reference, n_samples)
    return _REFERENCE_CONTEXTS.get_or_make(key, lambda: _Context(reference, n_samples, fingertips=False))


# ------------------------------------------------------------------------------------------------ evaluate


def evaluate_posed(
    grasps: PosedGrasps,
    reference: PosedGrasps | None = None,
    metrics: Sequence[str] | None = None,
    *,
    workers: int = 1,
    object_samples: int = OBJECT_SAMPLES,
    reference_name: str | None = None,
    ray: str | None = None,
) -> Evaluation:
    """Compute the named metrics for posed grasps (see :mod:`contactkit.metrics.registry` for the names).

    Args:
        grasps: the grasps to evaluate.
        reference: ground truth, sample ``i`` paired with ``grasps`` sample ``i``; None: reference-free metrics.
        metrics: metric names, group names, ``"default"`` or ``"all"``; None = the defaults.
        workers: worker processes for the simulation (with ``ray``: the CPUs of a local Ray).
        object_samples: surface samples per object for object-side contact and Chamfer.
        reference_name: recorded in the result.
        ray: run the simulations as Ray tasks (``""``: a local Ray started here, ``HOST:PORT``: a cluster;
            :mod:`contactkit.raytasks`); every other metric is computed in this process. Same result as serial.
            Called directly, wrap it in :func:`contactkit.raytasks.ray_session` to start Ray once for all objects
            (:func:`evaluate` does).
    """
    if reference is not None and len(reference) != len(grasps):
        raise ShapeError(f"reference has {len(reference)} grasps but grasps has {len(grasps)}; they must pair up")
    names = resolve_metrics(list(metrics) if metrics is not None else None, has_reference=reference is not None)
    if reference is not None and reference.keypoints.shape != grasps.keypoints.shape:
        raise ShapeError(
            f"keypoints {grasps.keypoints.shape} and reference keypoints {reference.keypoints.shape} differ"
        )
    if reference is not None:
        grasps.share_object_keys(reference)  # usually the same meshes: hashed once
    ctx = _Context(grasps, object_samples)
    rctx = _reference_context(reference, object_samples) if reference is not None else None
    run = _compute.MetricRun(grasps, ctx, reference, rctx, workers, ray)
    no_fb = np.zeros(len(grasps), dtype=bool)
    results = {}
    for name in names:
        spec = METRICS[name]
        out = spec.compute(run)
        results[name] = MetricResult(
            name=name,
            unit=spec.unit,
            values=np.asarray(out.values, dtype=np.float64) * spec.scale,
            variant=spec.variant,
            fallback=no_fb.copy() if out.fallback is None else np.asarray(out.fallback, dtype=bool).copy(),
            extra=out.extra,
        )
    return Evaluation(
        results=results,
        num_grasps=len(grasps),
        reference=reference_name,
        settings={
            "contact_threshold_mm": _contact.CONTACT_THRESHOLD_M * 1e3,
            "object_samples": object_samples,
        },
    )


def _posed_from_graspset(grasps: Any, hand: Any, *, stored_contact: bool = False) -> PosedGrasps:
    """Pose a GraspSet's hands with ``hand`` (a HandModel) and gather the arrays of :class:`PosedGrasps`."""
    dtype = torch.float64
    with torch.no_grad():
        h = hand.to(dtype=dtype)
        n = len(grasps)

        def t(a: Any) -> torch.Tensor:
            return torch.as_tensor(np.array(a, dtype=np.float64), dtype=dtype)

        betas = np.asarray(getattr(grasps, "betas", np.zeros((n, 0))), dtype=np.float64).reshape(n, -1)
        k = int(getattr(hand, "num_betas", betas.shape[1]))
        if betas.shape[1] > k:
            if np.any(betas[:, k:] != 0):
                raise ContactkitError(
                    f"the grasps carry {betas.shape[1]} shape coefficients but the {hand.name} hand uses {k}"
                )
            betas = betas[:, :k]
        elif betas.shape[1] < k:
            betas = np.concatenate([betas, np.zeros((n, k - betas.shape[1]))], axis=1)
        out = h(t(grasps.global_orient), t(grasps.hand_pose), t(betas) if k else None, t(grasps.transl))
    verts = out.vertices.numpy()
    hv_stored = getattr(grasps, "hand_vertices", None)
    if hv_stored is not None:
        verts = np.asarray(hv_stored, dtype=np.float64)
    ann = hand.annotations
    regions = [np.nonzero(np.asarray(ann.region_of_vertex) == r)[0] for r in np.asarray(ann.fingertip_regions)]
    objects = {k: (np.asarray(o.vertices), np.asarray(o.faces)) for k, o in grasps.objects.items()}
    return (
        PosedGrasps(
            hand_verts=verts,
            keypoints=out.keypoints.numpy(),
            hand_faces=to_numpy(hand.closed_faces),
            object_ids=list(grasps.object_ids),
            objects=objects,
            object_rotation=np.asarray(grasps.object_rotation),
            object_translation=np.asarray(grasps.object_translation),
            fingertip_regions=regions,
            hand_labels=np.asarray(ann.region_of_vertex),
            hand_contact=getattr(grasps, "hand_contact", None) if stored_contact else None,
            object_points=getattr(grasps, "object_points", None) if stored_contact else None,
            object_contact=getattr(grasps, "object_contact", None) if stored_contact else None,
        )
        if n
        else PosedGrasps(
            np.zeros((0, 1, 3)),
            np.zeros((0, 1, 3)),
            np.zeros((1, 3), np.int64),
            [],
            {},
            np.zeros((0, 3, 3)),
            np.zeros((0, 3)),
        )
    )


def _resolve_reference(grasps: Any, reference: Any) -> tuple[Any, str | None]:
    """The reference GraspSet paired sample-by-sample with ``grasps`` (or None), and its name."""
    from contactkit.io.grasps import load_grasps

    name: str | None = None
    attrs = getattr(grasps, "attrs", {}) or {}
    implicit = reference is None
    if reference is None:
        ref_path = attrs.get("reference")
        if not ref_path:
            return None, None
        if not isinstance(ref_path, str):
            raise ContactkitError(f"attrs['reference'] must be a path string, got {ref_path!r}")
        path = Path(ref_path)  # load_grasps made a relative reference absolute
        if not path.exists():
            raise ContactkitError(f"the grasp set names reference {ref_path!r}, which does not exist; pass reference=")
        reference, name = load_grasps(path), str(ref_path)
    elif isinstance(reference, str | os.PathLike):
        name = str(reference)
        reference = load_grasps(reference)
    from contactkit.io.grasps import GraspSet

    if not isinstance(reference, GraspSet):
        raise ContactkitError(f"reference must be a GraspSet or a path to one, got {type(reference).__name__}")
    if (reference.hand_model, reference.side) != (grasps.hand_model, grasps.side):
        raise ContactkitError(
            f"reference {name or ''} holds {reference.side} {reference.hand_model} grasps, the set "
            f"{grasps.side} {grasps.hand_model} grasps: they do not match"
        )
    idx = getattr(grasps, "reference_index", None)
    if idx is None:
        idx = attrs.get("reference_index")
    if idx is not None:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.shape[0] != len(grasps) or (idx.size and (idx.min() < 0 or idx.max() >= len(reference))):
            raise ContactkitError(
                f"reference_index must be ({len(grasps)},) indices into the {len(reference)} reference grasps"
            )
        reference = reference.subset(idx)
    elif len(reference) != len(grasps):
        raise ContactkitError(
            f"reference has {len(reference)} grasps but the set has {len(grasps)} and no reference_index pairs them"
        )
    same = np.asarray([a == b for a, b in zip(grasps.object_ids, reference.object_ids, strict=True)], dtype=bool)
    if len(grasps) and not same.any():
        # perturbed and refined sets keep their ground truth's objects; not one shared object means the
        # reference belongs to another set (a predicted object mesh is possible: only an explicit reference)
        message = (
            f"reference {name or ''} does not match the set: no grasp holds the same object as its reference "
            f"(grasp 0: {grasps.object_ids[0]} vs {reference.object_ids[0]})"
        )
        if implicit:
            raise ContactkitError(message)
        warnings.warn(message + "; object metrics compare different meshes", stacklevel=3)
    return reference, name


def evaluate(
    grasps: Any,
    reference: Any = None,
    metrics: Sequence[str] | None = None,
    *,
    hand: Any = None,
    workers: int = 1,
    reference_contact: Literal["geometry", "stored"] = "geometry",
    ray: str | None = None,
) -> Evaluation:
    """Evaluate a :class:`~contactkit.io.grasps.GraspSet`.

    Args:
        grasps: the GraspSet (N grasps).
        reference: a GraspSet or a path to one; None: ``grasps.attrs["reference"]`` (with
            ``attrs["reference_index"]`` pairing each grasp with its ground truth) when present, else no
            reference (reference-based metrics are skipped).
        metrics: metric names, group names, ``"default"`` or ``"all"`` (see :mod:`contactkit.metrics.registry`).
        hand: the HandModel to pose the grasps; default ``load_hand(grasps.hand_model, grasps.side)``.
        workers: worker processes for the simulation (with ``ray``: the CPUs of a local Ray).
        ray: run the simulations as Ray tasks (see :func:`evaluate_posed`); one Ray session serves every object.
        reference_contact: where the reference's contact comes from for contact precision/recall/F1:
            ``"geometry"`` (default) measures it on the reference grasp with the same ±2 mm definition as the
            prediction, so a grasp evaluated against itself scores 100 %; ``"stored"`` uses the reference file's
            ``hand_contact`` / ``object_points`` + ``object_contact`` maps (binarised), e.g. measured thermal
            contact from ContactPose.
    """
    if reference_contact not in ("geometry", "stored"):
        raise ContactkitError(f"reference_contact must be 'geometry' or 'stored', got {reference_contact!r}")
    if hand is None:
        from contactkit.hands import load_hand

        hand = load_hand(grasps.hand_model, side=grasps.side)
    if len(grasps) == 0:
        raise ContactkitError("the grasp set is empty: there is nothing to evaluate")
    grasps.check_hand(hand)
    ref, ref_name = _resolve_reference(grasps, reference)
    if ref is not None:
        ref.check_hand(hand)
    posed = _posed_from_graspset(grasps, hand)
    posed_ref = (
        _posed_from_graspset(ref, hand, stored_contact=reference_contact == "stored") if ref is not None else None
    )
    if ray is None:
        return evaluate_posed(posed, posed_ref, metrics, workers=workers, reference_name=ref_name)
    from contactkit.raytasks import ray_session

    with ray_session(ray, workers):
        return evaluate_posed(posed, posed_ref, metrics, workers=workers, reference_name=ref_name, ray=ray)

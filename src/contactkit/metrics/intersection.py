"""Hand-object intersection volume: the exact default and the papers' voxel variants.

* :func:`intersection_volume` (default, ``intersection_volume_cm3``): the exact volume of the boolean
  intersection of the closed hand mesh and the object mesh (manifold3d). When either mesh is not a closed
  manifold, a 1 mm solid grid with winding-number occupancy is used instead and the sample is flagged (most
  centres' occupancy comes from ray crossings along the grid's columns, which provably give the same decision
  as the winding number there; see :func:`_grid_occupancy`).
* :func:`voxel_intersection_volume`: voxel counts on a grid fixed to a given frame (the object frame in
  :func:`contactkit.metrics.evaluate`), either *solid* (voxel centres inside both meshes; CHOIR's 2 mm) or
  *surface* (voxels touched by the object surface whose centre is inside the hand; ObMan's / GraspTTA's 5 mm).
* :func:`cpf_solid_intersection_volume`: the object's bounding box cut into ``80^3`` cells, the volume of the
  cells whose centre is inside both the object and the hand (CPF's SIV).

All volumes are in cubic metres, numpy float64 ``(B,)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import manifold3d
import numpy as np
import trimesh

from contactkit.cache import LRUCache, mesh_key
from contactkit.errors import ShapeError
from contactkit.geometry.inside import (
    boundary_chain,
    grid_ray_winding,
    ray_winding_ball_bound,
    ray_winding_error_bound,
)
from contactkit.metrics import _geom
from contactkit.metrics._arrays import bbox, boxes_disjoint, mesh_batch, points_batch, to_numpy

#: Pitch (metres) of the solid grid used when the exact boolean is impossible.
FALLBACK_PITCH_M = 0.001
#: Largest number of voxel centres evaluated at once.
_CHUNK = 400_000


@dataclass(frozen=True)
class VolumeResult:
    """Intersection volumes of a batch.

    Attributes:
        volume_m3: (B,) float64, cubic metres.
        fallback: (B,) bool, True where the exact boolean was impossible and the 1 mm grid was used.
    """

    volume_m3: np.ndarray
    fallback: np.ndarray


def _manifold(verts: np.ndarray, faces: np.ndarray) -> manifold3d.Manifold | None:
    """A manifold3d solid of a closed, consistently outward-oriented mesh, or None if it is not one."""
    mesh = manifold3d.Mesh64(
        vert_properties=np.array(verts, dtype=np.float64, order="C"),  # writable copies (nanobind)
        tri_verts=np.array(faces, dtype=np.uint64, order="C"),
    )
    solid = manifold3d.Manifold(mesh)
    if solid.status() != manifold3d.Error.NoError or solid.is_empty():
        mesh.merge()  # weld coincident vertices (seams) and retry
        solid = manifold3d.Manifold(mesh)
        if solid.status() != manifold3d.Error.NoError or solid.is_empty():
            return None
    if solid.volume() <= 0.0:
        return None
    return solid


#: Equal slabs per axis of an object's box whose inner planes are the candidate cuts of :class:`_SharedObject`'s
#: trimmed solids (31 planes per axis, two sides each).
_SLABS = 32
#: A trimmed solid is built for a batch only when the object faces it spares the batch's booleans (summed over the
#: grasps that use it) reach this many times the object's face count: trimming a solid costs about as much as
#: booleans over that many object faces (measured on the 16k-face ellipsoid: a trim 8-16 ms, about two to three
#: whole-object hand booleans; a hand boolean ~0.2 ms plus ~0.25 ms per 1k object faces).
_TRIM_COST = 3.0
#: Most trimmed solids kept per object (each up to the object's size).
_MAX_TRIMS = 8


class _SharedObject:
    """An object mesh shared by the samples of a batch, and by content by later batches: its manifold3d solid
    (None: not a closed manifold), its solid trimmed by axis planes (:meth:`solids_for`) and, for the grid
    fallback, its :class:`_GridMesh`, each built on first use (building a 16k-face solid costs about as much as a
    dozen hand booleans, its winding-number tree about as much as a dozen grid samples, and the same objects are
    evaluated again and again)."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray) -> None:
        self.verts, self.faces = np.array(verts, dtype=np.float64), np.array(faces, dtype=np.int64)  # own copies
        self._solid: manifold3d.Manifold | None = None
        self._built = False
        self._grid: _GridMesh | None = None
        self.box = bbox(self.verts)
        self._trims: dict[tuple[int, int, int], manifold3d.Manifold | None] = {}
        self._cut_table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def solid(self) -> manifold3d.Manifold | None:
        if not self._built:
            self._solid, self._built = _manifold(self.verts, self.faces), True
        return self._solid

    def grid(self) -> _GridMesh:
        if self._grid is None:
            self._grid = _GridMesh(self.verts, self.faces)
        return self._grid

    def _cuts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The candidate trims, per axis, side (0: ``+1``, 1: ``-1``) and plane index ``k`` (only
        ``1 <= k < _SLABS`` are cuts): ``(3, _SLABS + 1)`` plane positions ``c_k`` (metres; the planes of
        :data:`_SLABS` equal slabs of the object's box), ``(3, 2, _SLABS + 1)`` faces kept and ``(3, 2, _SLABS + 1)``
        reach (metres).

        Trim ``(a, 0, k)`` keeps the object where ``x_a >= c_k``, ``(a, 1, k)`` where ``x_a <= c_k``. Faces kept:
        those reaching that side (counted from the sorted face extents). Reach: how far into the kept side the
        faces the plane splits (or touches, or passes within ``1e-6 L`` of; ``L`` the longest edge, far above
        manifold3d's tolerance) extend, at least the plane itself: the largest ``x_a`` of those faces for side 0,
        the smallest for side 1. The trim changes nothing beyond its reach.
        """
        if self._cut_table is None:
            # per coordinate, on (F,) rows of the three corners (coordinate-major: several times faster than
            # reductions over the short axes of an (F, 3, 3) array)
            corners = [[x[f] for f in np.ascontiguousarray(self.faces.T)] for x in np.ascontiguousarray(self.verts.T)]
            sq = [sum((c[i] - c[j]) ** 2 for c in corners) for i, j in ((0, 1), (1, 2), (2, 0))]
            edge = float(np.sqrt(max(float(x.max()) for x in sq)))
            tol = 1e-6 * edge
            lo, hi = self.box
            planes = lo[:, None] + np.arange(_SLABS + 1)[None] * ((hi - lo) / _SLABS)[:, None]  # (3, S + 1)
            kept = np.zeros((3, 2, _SLABS + 1), dtype=np.int64)
            reach = np.zeros((3, 2, _SLABS + 1))
            for a in range(3):
                c, (x0, x1, x2) = planes[a], corners[a]
                f_lo, f_hi = np.minimum(np.minimum(x0, x1), x2), np.maximum(np.maximum(x0, x1), x2)  # (F,)
                by_lo, by_hi = np.argsort(f_lo, kind="stable"), np.argsort(f_hi, kind="stable")
                s_lo, s_hi = f_lo[by_lo], f_hi[by_hi]
                kept[a, 0] = len(self.faces) - np.searchsorted(s_hi, c, "left")
                kept[a, 1] = np.searchsorted(s_lo, c, "right")
                # side 0: the largest x_a of the faces starting below c + tol (a prefix in x_a-min order); when
                # it is at least c - tol, that face is split and the largest of the split faces, else none is
                top = np.maximum.accumulate(f_hi[by_lo])
                n = np.searchsorted(s_lo, c + tol, "right")
                reach[a, 0] = np.maximum(c, np.where(n > 0, top[np.maximum(n - 1, 0)], c)) + tol
                bottom = np.minimum.accumulate(f_lo[by_hi][::-1])[::-1]  # side 1, mirrored: a suffix in x_a-max order
                n = np.searchsorted(s_hi, c - tol, "left")
                reach[a, 1] = np.minimum(c, np.where(n < len(bottom), bottom[np.minimum(n, len(bottom) - 1)], c)) - tol
            self._cut_table = planes, kept, reach
        return self._cut_table

    def _valid_cuts(self, box: tuple[np.ndarray, np.ndarray]) -> list[tuple[int, int, int]]:
        """The trims ``(axis, side index, k)`` (:meth:`_cuts`) that may replace the object's solid for a hand
        inside ``box`` ((3,) lower and upper corners, metres): those whose reach stops short of the box. The faces
        the plane splits and the new cap are then outside the box, so every object face that can meet the hand is
        an original face, unchanged, and ``hand ∩ trimmed = hand ∩ object`` face for face (only the boolean's
        vertex and face order, so the volume's summation order, can differ)."""
        _, _, reach = self._cuts()
        k_plus = np.nonzero(reach[:, 0, 1:_SLABS] < box[0][:, None])
        k_minus = np.nonzero(reach[:, 1, 1:_SLABS] > box[1][:, None])
        return [(int(a), 0, int(k) + 1) for a, k in zip(*k_plus, strict=True)] + [
            (int(a), 1, int(k) + 1) for a, k in zip(*k_minus, strict=True)
        ]

    def _trim(self, cut: tuple[int, int, int], whole: manifold3d.Manifold) -> manifold3d.Manifold | None:
        if cut not in self._trims:
            a, side, k = cut
            sign = 1.0 if side == 0 else -1.0
            normal = [0.0, 0.0, 0.0]
            normal[a] = sign
            trimmed = whole.trim_by_plane(normal, sign * float(self._cuts()[0][a, k]))
            ok = trimmed.status() == manifold3d.Error.NoError and not trimmed.is_empty()
            self._trims[cut] = trimmed if ok else None
        return self._trims[cut]

    def solids_for(
        self, whole: manifold3d.Manifold, boxes: list[tuple[np.ndarray, np.ndarray]]
    ) -> list[manifold3d.Manifold]:
        """One solid per hand box ((3,) lower and upper corners, metres) of a batch's grasps against this object,
        ``whole`` its :meth:`solid`: the solid trimmed by an axis plane clear of the box (:meth:`_valid_cuts`), or
        ``whole``. The intersection of any solid inside the box with it is ``solid ∩ object``, face for face.

        Trims are kept with the object (at most :data:`_MAX_TRIMS`). New ones are chosen greedily for the batch:
        the cut that spares the batch's booleans the most object faces (each box taking the kept cut with the
        fewest faces) is built while that saving reaches :data:`_TRIM_COST` times the object's face count; then
        each box takes the built cut with the fewest faces among those that suit it, or ``whole``.
        """
        _, kept, _ = self._cuts()
        n_faces = len(self.faces)
        valid = [self._valid_cuts(box) for box in boxes]

        def best(cuts: list[tuple[int, int, int]]) -> tuple[int, tuple[int, int, int] | None]:
            built = [(int(kept[c]), c) for c in cuts if self._trims.get(c) is not None]
            return min(built) if built else (n_faces, None)

        while True:
            current = [best(v)[0] for v in valid]
            gain: dict[tuple[int, int, int], int] = {}
            for cuts, now in zip(valid, current, strict=True):
                for c in cuts:
                    if c not in self._trims and kept[c] < now:
                        gain[c] = gain.get(c, 0) + now - int(kept[c])
            if not gain:
                break
            cut = max(gain, key=lambda c: (gain[c], c))
            if gain[cut] < _TRIM_COST * n_faces or len(self._trims) >= _MAX_TRIMS:
                break
            self._trim(cut, whole)
        out = []
        for cuts in valid:
            chosen = best(cuts)[1]
            solid = None if chosen is None else self._trims[chosen]
            out.append(whole if solid is None else solid)
        return out


_OBJECTS: LRUCache[_SharedObject] = LRUCache()


def _shared_object(verts: np.ndarray, faces: np.ndarray, key: bytes | None = None) -> _SharedObject:
    """The cached :class:`_SharedObject` of a mesh; ``key``: its :func:`~contactkit.cache.mesh_key` if known."""
    return _OBJECTS.get_or_make(mesh_key(verts, faces) if key is None else key, lambda: _SharedObject(verts, faces))


def object_solid(verts: np.ndarray, faces: np.ndarray) -> manifold3d.Manifold | None:
    """:func:`_manifold` of an object mesh, cached by content (None: not a closed manifold)."""
    return _shared_object(verts, faces).solid()


class _HandSolids:
    """Solids of one closed hand face set in the poses of a batch: the first pose's solid is built
    (:func:`_manifold`), the others are that solid warped to their vertices (manifold3d ``warp_batch``: the same
    topology, new positions; about half the cost of building). manifold3d keeps a solid's vertices in its own
    order, so the built solid's vertices are matched to the input's once (by value; they are the input's own
    coordinates, permuted). Where there is no such match (the build welded or dropped vertices, duplicate input
    vertices) or no solid, every pose is built, as :func:`_manifold` does. A warped solid is refused, as a built
    one, when its volume is not positive (inside-out)."""

    def __init__(self, faces: np.ndarray) -> None:
        self.faces = faces
        self._base: manifold3d.Manifold | None = None
        self._order: np.ndarray | None = None  # (V,) input vertex of each solid vertex
        self._warp = True

    def solid(self, verts: np.ndarray) -> manifold3d.Manifold | None:
        """The solid of the hand at ``verts (V, 3)`` (finite, metres), or None if it is not a closed manifold."""
        if self._base is None or self._order is None:
            built = _manifold(verts, self.faces)
            if self._warp:
                self._warp = False
                order = _vertex_order(built, verts) if built is not None else None
                if order is not None:
                    self._base, self._order, self._warp = built, order, True
            return built
        new = np.ascontiguousarray(verts[self._order])
        warped = self._base.warp_batch(lambda _: new)
        return warped if warped.volume() > 0.0 else None


def _vertex_order(solid: manifold3d.Manifold, verts: np.ndarray) -> np.ndarray | None:
    """``(V,)`` the row of ``verts (V, 3)`` at each of ``solid``'s vertices (manifold3d's order), or None when
    the solid's vertices are not exactly a permutation of distinct rows of ``verts``."""
    mine = np.asarray(solid.to_mesh64().vert_properties, dtype=np.float64)[:, :3]
    if mine.shape != verts.shape:
        return None
    a, b = np.lexsort(verts.T[::-1]), np.lexsort(mine.T[::-1])
    if not np.array_equal(verts[a], mine[b]) or np.any(np.all(verts[a][1:] == verts[a][:-1], axis=1)):
        return None
    order = np.empty(len(verts), dtype=np.int64)
    order[b] = a
    return order


class _LazySolid:
    """Defers building an object solid until a sample actually overlaps it."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray) -> None:
        self.verts, self.faces = verts, faces

    def build(self) -> manifold3d.Manifold | None:
        return _manifold(self.verts, self.faces)


def exact_volume_pair(
    hand_verts: np.ndarray,
    hand_faces: np.ndarray,
    obj_verts: np.ndarray,
    obj_faces: np.ndarray,
    *,
    obj_solid: Any = False,
    obj_box: tuple[np.ndarray, np.ndarray] | None = None,
) -> float | None:
    """Exact intersection volume (m^3) of two closed meshes ``(V, 3)``/``(F, 3)``, or None if impossible.

    ``obj_solid`` may carry a pre-built object solid (or None if the object is known not to be a manifold),
    ``obj_box`` the object's :func:`~contactkit.metrics._arrays.bbox`.
    """
    if boxes_disjoint(bbox(hand_verts), bbox(obj_verts) if obj_box is None else obj_box):
        return 0.0
    if obj_solid is None:  # known not to be a manifold: no need to build the hand's solid
        return None
    hand = _manifold(hand_verts, hand_faces)
    if hand is None:
        return None
    if obj_solid is False:
        obj = _manifold(obj_verts, obj_faces)
    elif isinstance(obj_solid, _LazySolid):
        obj = obj_solid.build()
    else:
        obj = obj_solid
    if obj is None:
        return None
    return float(max((hand ^ obj).volume(), 0.0))


def _exact_volumes_shared(hv: np.ndarray, hf: np.ndarray, obj: _SharedObject) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_volume_pair` of every hand pose ``hv (B, V, 3)`` against one closed object: ``(B,)`` volumes
    (m^3) and ``(B,)`` bool, True where the hand is not a closed manifold (volume 0, for the grid fallback).

    The same boolean on the same faces, faster: the hand's solids come from :class:`_HandSolids` (one built, the
    others warped) and each is intersected with the object's solid trimmed clear of the hand's box
    (:meth:`_SharedObject.solids_for`), which meets the hand in the same object faces. The volumes equal the
    whole-object boolean's up to summation order (vertex and face order of the result; tested to 1e-9 relative
    against :func:`exact_volume_pair`). Disjoint boxes give exactly 0, as there.
    """
    vol, bad = np.zeros(len(hv)), np.zeros(len(hv), dtype=bool)
    whole = obj.solid()
    if whole is None:
        raise ValueError("_exact_volumes_shared needs a closed object")
    boxes = [bbox(h) for h in hv]
    todo = [b for b, box in enumerate(boxes) if not boxes_disjoint(box, obj.box)]
    hands = _HandSolids(hf)
    for b, solid in zip(todo, obj.solids_for(whole, [boxes[b] for b in todo]), strict=True):
        hand = hands.solid(hv[b])
        if hand is None:
            bad[b] = True
        else:
            vol[b] = max((hand ^ solid).volume(), 0.0)
    return vol, bad


def intersection_mesh(
    hand_verts: np.ndarray, hand_faces: np.ndarray, obj_verts: np.ndarray, obj_faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The exact solid ``hand ∩ object`` as a mesh ``(verts (K, 3), faces (M, 3))`` (possibly empty), or None
    when either input is not a closed manifold. Voxel variants test their centres against it: a centre is inside
    both meshes exactly when it is inside their intersection, and the intersection's box is small."""
    hand = _manifold(hand_verts, hand_faces)
    obj = _manifold(obj_verts, obj_faces) if hand is not None else None
    if hand is None or obj is None:
        return None
    mesh = (hand ^ obj).to_mesh64()
    return np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3], np.asarray(mesh.tri_verts, dtype=np.int64)


def intersection_volume(
    hand_verts: Any,
    hand_faces: Any,
    obj_verts: Any,
    obj_faces: Any,
    *,
    fallback_pitch: float = FALLBACK_PITCH_M,
    object_key: bytes | None = None,
) -> VolumeResult:
    """Exact hand-object intersection volume per sample (cubic metres).

    Args:
        hand_verts: (B, V, 3) float, metres.
        hand_faces: (F, 3) int, a closed face set of the hand (``HandModel.closed_faces``).
        obj_verts: (V_o, 3) or (B, V_o, 3) float, metres, world frame.
        obj_faces: (F_o, 3) int.
        fallback_pitch: pitch (m) of the solid grid used when a mesh is not a closed manifold (warned, flagged).
        object_key: the shared object mesh's :func:`~contactkit.cache.mesh_key` when the caller has it (skips
            hashing the mesh again).
    """
    hv = points_batch(hand_verts, "hand_verts")
    hv, hf = mesh_batch(hv, hand_faces, hv.shape[0], "hand_verts", "hand_faces")
    shared = to_numpy(obj_verts).ndim == 2
    ov, of = mesh_batch(obj_verts, obj_faces, hv.shape[0], "obj_verts", "obj_faces")
    vol = np.zeros(hv.shape[0])
    flag = np.zeros(hv.shape[0], dtype=bool)
    obj = _shared_object(ov[0], of, object_key) if shared else None
    hand_chain: tuple[np.ndarray, np.ndarray] | None = None  # the fallback's, shared by the batch
    if obj is not None and obj.solid() is not None:
        vol, flag = _exact_volumes_shared(hv, hf, obj)
    else:  # per-sample objects, or a shared object that is not a closed manifold
        for b in range(hv.shape[0]):
            obj_solid = obj.solid() if obj is not None else _LazySolid(ov[b], of)
            obj_box = obj.box if obj is not None else None
            v = exact_volume_pair(hv[b], hf, ov[b], of, obj_solid=obj_solid, obj_box=obj_box)
            flag[b] = v is None
            vol[b] = 0.0 if v is None else v
    for b in np.nonzero(flag)[0].tolist():
        hand_chain = boundary_chain(hf) if hand_chain is None else hand_chain
        grid = obj.grid() if obj is not None else _GridMesh(ov[b], of)
        vol[b] = _solid_grid_volume(hv[b], hf, ov[b], of, fallback_pitch, np.eye(3), np.zeros(3), try_exact=False,
                                    hand_chain=hand_chain, obj=grid)  # fmt: skip
    if flag.any():
        warnings.warn(
            f"intersection_volume: {int(flag.sum())} of {len(flag)} samples have a hand or object mesh that is not "
            f"a closed manifold; used a {fallback_pitch * 1000:g} mm solid grid with winding-number occupancy",
            stacklevel=2,
        )
    return VolumeResult(volume_m3=vol, fallback=flag)


def _frames(rot: Any, origin: Any, batch: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.broadcast_to(np.eye(3), (batch, 3, 3)) if rot is None else np.asarray(to_numpy(rot), np.float64)
    o = np.zeros((batch, 3)) if origin is None else np.asarray(to_numpy(origin), np.float64)
    if r.ndim == 2:
        r = np.broadcast_to(r, (batch, 3, 3))
    if o.ndim == 1:
        o = np.broadcast_to(o, (batch, 3))
    if r.shape != (batch, 3, 3):
        raise ShapeError(f"Expected grid_rotation to be of shape (3, 3) or ({batch}, 3, 3), got {tuple(r.shape)}")
    if o.shape != (batch, 3):
        raise ShapeError(f"Expected grid_origin to be of shape (3,) or ({batch}, 3), got {tuple(o.shape)}")
    return r, o


def _grid_axes(lo: np.ndarray, hi: np.ndarray, pitch: float) -> list[np.ndarray] | None:
    """Per-axis centres ``k * pitch`` (grid frame) of the voxels whose centre lies in the box [lo, hi]."""
    k_lo = np.ceil(lo / pitch - 1e-9).astype(np.int64)
    k_hi = np.floor(hi / pitch + 1e-9).astype(np.int64)
    if np.any(k_hi < k_lo):
        return None
    return [np.arange(a, b + 1) * pitch for a, b in zip(k_lo, k_hi, strict=True)]


def _grid_centres(lo: np.ndarray, hi: np.ndarray, pitch: float) -> np.ndarray:
    """Centres ``k * pitch`` (grid frame) of the voxels whose centre lies in the box [lo, hi]."""
    axes = _grid_axes(lo, hi, pitch)
    if axes is None:
        return np.zeros((0, 3))
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


#: Largest ``|w - X|`` (winding number against ray crossings) at which the crossings decide occupancy.
_RAY_BOUND = 0.25
#: Block edges (grid centres per axis) tried, largest first, to certify ``|w - X| < _RAY_BOUND`` blockwise.
_BLOCKS = (16, 8, 4, 2)


class _GridMesh:
    """One mesh of the grid fallback: its vertices and faces (any frame), its :func:`boundary_chain` and its
    fast winding number (:class:`~contactkit.metrics._geom.FastWinding`, built on first use). One per object and
    batch, so the chain and the winding-number tree are built once for all samples of an object."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, chain: tuple[np.ndarray, np.ndarray] | None = None):
        self.verts, self.faces = verts, faces
        self.edges, self.mult = boundary_chain(faces) if chain is None else chain
        self._winding: _geom.FastWinding | None = None

    def inside(self, points: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: winding number above 0.5 at ``points (N, 3)`` (same frame as :attr:`verts`)."""
        if self._winding is None:
            self._winding = _geom.FastWinding(self.verts, self.faces)
        return self._winding.inside(points)


def _certified_blocks(todo: np.ndarray, axes: list[np.ndarray], local: np.ndarray, mesh: _GridMesh) -> np.ndarray:
    """(nx, ny, nz) bool: the ``todo`` centres where ``|w - X| < _RAY_BOUND`` holds for their whole block.

    The grid is cut into blocks of ``size^3`` centres for each size of ``_BLOCKS`` in turn; a block is certified
    when :func:`~contactkit.geometry.inside.ray_winding_ball_bound` of its bounding ball (one ribbon value at its
    centre plus a gradient bound) is below ``_RAY_BOUND``, and the centres it certifies leave ``todo``. The rest
    get a bound each (:func:`~contactkit.geometry.inside.ray_winding_error_bound`), as before: the same decision
    at every centre (``X`` wherever ``|w - X| < _RAY_BOUND``), a fraction of the ribbon evaluations.
    """
    left = todo.copy()
    shape = np.asarray(todo.shape)
    for size in _BLOCKS:
        nb = -(-shape // size)
        pad = np.zeros(tuple(nb * size), dtype=bool)
        pad[: shape[0], : shape[1], : shape[2]] = left
        has = pad.reshape(nb[0], size, -1).any(1)  # any centre left per block, one axis at a time (fast)
        has = has.reshape(nb[0], nb[1], size, -1).any(2)
        block = np.argwhere(has.reshape(nb[0], nb[1], nb[2], size).any(3))
        if not len(block):
            break
        first, last = block * size, np.minimum(block * size + size, shape) - 1
        lo = np.stack([axes[k][first[:, k]] for k in range(3)], 1)
        hi = np.stack([axes[k][last[:, k]] for k in range(3)], 1)
        centre, radius = 0.5 * (lo + hi), 0.5 * np.linalg.norm(hi - lo, axis=1)
        bound = ray_winding_ball_bound(centre, radius, local, mesh.edges, mesh.mult, exact_above=_RAY_BOUND)
        ok = np.zeros(tuple(nb), dtype=bool)
        ok[tuple(block[bound < _RAY_BOUND].T)] = True
        left &= ~ok.repeat(size, 0).repeat(size, 1).repeat(size, 2)[: shape[0], : shape[1], : shape[2]]
    return todo & ~left


def _grid_occupancy(
    axes: list[np.ndarray], mesh: _GridMesh, rot: np.ndarray, origin: np.ndarray, only: np.ndarray | None = None
) -> np.ndarray:
    """``winding number > 0.5`` of a mesh at the grid centres ``axes`` (grid frame), (nx, ny, nz) bool.

    The integer ray-crossing count ``X`` along the grid's columns
    (:func:`contactkit.geometry.inside.grid_ray_winding`) decides every centre where it provably agrees with the
    generalised winding number ``w`` (``|w - X|`` below ``_RAY_BOUND``, certified blockwise by
    :func:`_certified_blocks`, else by :func:`~contactkit.geometry.inside.ray_winding_error_bound` per centre:
    ``w`` is then within 0.25 of the integer ``X``): all centres of a closed mesh, all but those whose column
    passes near a hole of an open one. The others (and the centres on the surface) get ``w`` itself, as before.
    ``only``: (nx, ny, nz) bool, the centres that matter (the others are returned False).
    """
    local = (mesh.verts - origin) @ rot
    wind, amb = grid_ray_winding(local, mesh.faces, *axes)
    occ = wind >= 1
    need = np.ones_like(occ) if only is None else only
    occ &= need
    unsure = amb & need
    if len(mesh.edges):
        todo = need & ~amb
        todo &= ~_certified_blocks(todo, axes, local, mesh)
        idx = np.nonzero(todo)
        pts = np.stack([axes[k][idx[k]] for k in range(3)], -1)
        far = ray_winding_error_bound(pts, local, mesh.edges, mesh.mult, exact_above=_RAY_BOUND) >= _RAY_BOUND
        unsure[tuple(i[far] for i in idx)] = True
    if unsure.any():
        idx = np.nonzero(unsure)
        centres = np.stack([axes[k][idx[k]] for k in range(3)], -1) @ rot.T + origin
        occ[idx] = mesh.inside(centres)
    return occ


def _count_inside_both_grid(
    axes: list[np.ndarray], hand: _GridMesh, obj: _GridMesh, rot: np.ndarray, origin: np.ndarray
) -> int:
    """:func:`_count_inside_both` of the grid centres ``axes`` (grid frame), through :func:`_grid_occupancy`:
    the same centres are counted (winding number above 0.5 for both meshes), most of them decided by ray
    crossings along the grid's columns instead of a winding number each."""
    in_hand = _grid_occupancy(axes, hand, rot, origin)
    if not in_hand.any():
        return 0
    return int(_grid_occupancy(axes, obj, rot, origin, only=in_hand).sum())


def _count_inside_both(
    centres_world: np.ndarray, hv: np.ndarray, hf: np.ndarray, ov: np.ndarray, of: np.ndarray
) -> int:
    count = 0
    for s in range(0, centres_world.shape[0], _CHUNK):
        c = centres_world[s : s + _CHUNK]
        in_h = _geom.inside(c, hv, hf)
        if in_h.any():
            count += int(_geom.inside(c[in_h], ov, of).sum())
    return count


def _solid_grid_volume(
    hv: np.ndarray, hf: np.ndarray, ov: np.ndarray, of: np.ndarray, pitch: float, rot: np.ndarray, origin: np.ndarray,
    *, try_exact: bool = True, hand_chain: tuple[np.ndarray, np.ndarray] | None = None, obj: _GridMesh | None = None,
) -> float:
    """Solid voxel volume: ``pitch^3`` times the number of grid centres inside both meshes.

    ``try_exact=False`` skips the exact intersection solid (the caller knows a mesh is not a closed manifold);
    ``hand_chain`` (the hand faces' :func:`boundary_chain`) and ``obj`` (the object's :class:`_GridMesh` of
    ``ov``, ``of``) may be shared by the samples of a batch.
    """
    hg = (hv - origin) @ rot  # grid-frame coordinates: R^T (x - o)
    og = (ov - origin) @ rot
    (h_lo, h_hi), (o_lo, o_hi) = bbox(hg), bbox(og)
    lo, hi = np.maximum(h_lo, o_lo), np.minimum(h_hi, o_hi)
    if np.any(lo > hi):
        return 0.0
    inter = intersection_mesh(hv, hf, ov, of) if try_exact else None
    if inter is not None:
        iv, i_f = inter
        if iv.shape[0] == 0 or i_f.shape[0] == 0:
            return 0.0
        ig = (iv - origin) @ rot
        centres = _grid_centres(np.maximum(lo, ig.min(0)), np.minimum(hi, ig.max(0)), pitch) @ rot.T + origin
        count = sum(int(_geom.inside(centres[s : s + _CHUNK], iv, i_f).sum()) for s in range(0, len(centres), _CHUNK))
        return count * pitch**3
    axes = _grid_axes(lo, hi, pitch)
    if axes is None:
        return 0.0
    obj = _GridMesh(ov, of) if obj is None else obj
    return _count_inside_both_grid(axes, _GridMesh(hv, hf, hand_chain), obj, rot, origin) * pitch**3


def _surface_voxel_volume(
    hv: np.ndarray,
    hf: np.ndarray,
    ov: np.ndarray,
    of: np.ndarray,
    pitch: float,
    rot: np.ndarray,
    origin: np.ndarray,
) -> float:
    """Surface-voxel volume: voxels touched by the object surface whose centre is inside the hand."""
    og = (ov - origin) @ rot
    hg = (hv - origin) @ rot
    lo, hi = hg.min(0) - pitch, hg.max(0) + pitch
    if np.any(np.maximum(lo, og.min(0)) > np.minimum(hi, og.max(0))):
        return 0.0
    # Subdivide the surface until every edge is shorter than half a voxel, then mark the voxels of its vertices
    # (the surface voxelisation of trimesh's ``voxelized``, which ObMan's and GraspTTA's code call).
    tri = og[of]
    near = np.all(tri.max(axis=1) >= lo, axis=1) & np.all(tri.min(axis=1) <= hi, axis=1)
    if not near.any():
        return 0.0
    sv, sf = trimesh.remesh.subdivide_to_size(og, of[near], max_edge=pitch / 2.0, max_iter=16)
    keep = np.all((sv >= lo) & (sv <= hi), axis=1)
    if not keep.any():
        return 0.0
    keys = np.unique(np.round(sv[keep] / pitch).astype(np.int64), axis=0)
    centres = (keys * pitch) @ rot.T + origin
    return int(_geom.inside(centres, hv, hf).sum()) * pitch**3


def voxel_intersection_volume(
    hand_verts: Any,
    hand_faces: Any,
    obj_verts: Any,
    obj_faces: Any,
    *,
    pitch: float,
    mode: Literal["solid", "surface"] = "solid",
    grid_rotation: Any = None,
    grid_origin: Any = None,
) -> np.ndarray:
    """Voxelised intersection volume ``(B,)`` in cubic metres on a grid of cubic voxels of edge ``pitch``.

    The grid's voxel centres are ``origin + R @ (k * pitch)`` for integer ``k``; pass the object pose as
    ``grid_rotation``/``grid_origin`` to fix the grid to the object (then the value is invariant under a common
    rigid motion of hand and object); the default is the world grid (the papers' code).

    Args:
        hand_verts: (B, V, 3) float, metres.
        hand_faces: (F, 3) int, closed face set of the hand.
        obj_verts: (V_o, 3) or (B, V_o, 3) float, metres.
        obj_faces: (F_o, 3) int.
        pitch: voxel edge in metres (> 0).
        mode: ``"solid"``: voxels whose centre is inside both meshes (converges to the exact volume, error
            below ``sqrt(3) * pitch * area(boundary of the intersection)`` to first order); ``"surface"``:
            voxels touched by the object surface whose centre is inside the hand (ObMan / GraspTTA; a shell
            of thickness ~pitch, so it does *not* converge to the exact volume as the pitch shrinks).
        grid_rotation: (3, 3) or (B, 3, 3) grid frame rotation; default identity.
        grid_origin: (3,) or (B, 3) grid frame origin, metres; default 0.
    """
    if not pitch > 0:
        raise ShapeError(f"pitch must be > 0 metres, got {pitch}")
    if mode not in ("solid", "surface"):
        raise ShapeError(f"mode must be one of 'solid', 'surface'; got {mode!r}")
    hv = points_batch(hand_verts, "hand_verts")
    hv, hf = mesh_batch(hv, hand_faces, hv.shape[0], "hand_verts", "hand_faces")
    ov, of = mesh_batch(obj_verts, obj_faces, hv.shape[0], "obj_verts", "obj_faces")
    rot, origin = _frames(grid_rotation, grid_origin, hv.shape[0])
    fn = _solid_grid_volume if mode == "solid" else _surface_voxel_volume
    return np.array([fn(hv[b], hf, ov[b], of, pitch, rot[b], origin[b]) for b in range(hv.shape[0])])


def cpf_solid_intersection_volume(
    hand_verts: Any,
    hand_faces: Any,
    obj_verts: Any,
    obj_faces: Any,
    *,
    resolution: int = 80,
    grid_rotation: Any = None,
    grid_origin: Any = None,
) -> np.ndarray:
    """CPF's solid intersection volume ``(B,)`` in cubic metres.

    The object's axis-aligned bounding box in the grid frame is cut into ``resolution^3`` cells (box-shaped,
    edge = extent / resolution per axis); the result is the total volume of the cells whose centre is inside the
    object (solid occupancy, winding number) and inside the closed hand.

    Args:
        hand_verts: (B, V, 3) float, metres.
        hand_faces: (F, 3) int, closed face set of the hand.
        obj_verts: (V_o, 3) or (B, V_o, 3) float, metres.
        obj_faces: (F_o, 3) int.
        resolution: cells per axis (CPF: 80).
        grid_rotation: (3, 3) or (B, 3, 3) frame of the bounding box (the object's rotation); default identity.
        grid_origin: (3,) or (B, 3) origin of that frame, metres; default 0.
    """
    if int(resolution) != resolution or resolution < 1:
        raise ShapeError(f"resolution must be a positive integer, got {resolution}")
    hv = points_batch(hand_verts, "hand_verts")
    hv, hf = mesh_batch(hv, hand_faces, hv.shape[0], "hand_verts", "hand_faces")
    ov, of = mesh_batch(obj_verts, obj_faces, hv.shape[0], "obj_verts", "obj_faces")
    rot, origin = _frames(grid_rotation, grid_origin, hv.shape[0])
    out = np.zeros(hv.shape[0])
    for b in range(hv.shape[0]):
        og = (ov[b] - origin[b]) @ rot[b]
        hg = (hv[b] - origin[b]) @ rot[b]
        lo_o, hi_o = og.min(0), og.max(0)
        cell = np.maximum((hi_o - lo_o) / resolution, 1e-12)
        # cells of the object's box whose centre can be inside the hand
        i_lo = np.clip(np.ceil((hg.min(0) - lo_o) / cell - 0.5), 0, resolution - 1).astype(np.int64)
        i_hi = np.clip(np.floor((hg.max(0) - lo_o) / cell - 0.5), 0, resolution - 1).astype(np.int64)
        if np.any(hg.min(0) > hi_o) or np.any(hg.max(0) < lo_o) or np.any(i_hi < i_lo):
            continue
        inter = intersection_mesh(hv[b], hf, ov[b], of)
        if inter is not None:
            iv, i_f = inter
            if iv.shape[0] == 0 or i_f.shape[0] == 0:
                continue
            ig = (iv - origin[b]) @ rot[b]
            i_lo = np.maximum(i_lo, np.clip(np.ceil((ig.min(0) - lo_o) / cell - 0.5), 0, resolution - 1)).astype(int)
            i_hi = np.minimum(i_hi, np.clip(np.floor((ig.max(0) - lo_o) / cell - 0.5), 0, resolution - 1)).astype(int)
            if np.any(i_hi < i_lo):
                continue
        axes = [lo_o[a] + (np.arange(i_lo[a], i_hi[a] + 1) + 0.5) * cell[a] for a in range(3)]
        centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3) @ rot[b].T + origin[b]
        if inter is not None:
            count = sum(
                int(_geom.inside(centres[s : s + _CHUNK], iv, i_f).sum()) for s in range(0, len(centres), _CHUNK)
            )
        else:
            count = _count_inside_both(centres, hv[b], hf, ov[b], of)
        out[b] = count * float(np.prod(cell))
    return out

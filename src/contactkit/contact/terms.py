"""Shared state and the energy-term protocol of the contact models.

Every contact model in :mod:`contactkit.contact` is a set of pure tensor functions plus small term objects.
A term is a callable ``term(state) -> (B,)`` loss with a ``name`` and a ``weight`` (theseus-like cost
functions); an :class:`Objective` sums weighted terms. Terms that need per-sample data (target contact maps,
springs, CHOIR fields) hold it in their own tensors indexed by :attr:`HandObjectState.sample_index`, so that the
refiner can run several restarts of one sample in the same batch.

Conventions (see ``docs/ARCHITECTURE.md``): metres, batch-first, signed distance negative inside the object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from contactkit.errors import ShapeError

__all__ = [
    "EnergyTerm",
    "FunctionTerm",
    "HandObjectState",
    "NeighbourCache",
    "Objective",
    "ObjectiveValue",
    "check_points",
]


def check_points(name: str, value: Tensor, *, batch: int | None = None, count: int | None = None) -> None:
    """Raise :class:`ShapeError` unless ``value`` is a floating ``(B, N, 3)`` tensor (optionally of given B/N)."""
    if not isinstance(value, Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor of shape (B, N, 3), got {type(value).__name__}")
    if value.ndim != 3 or value.shape[-1] != 3:
        raise ShapeError(f"{name} must have shape (B, N, 3), got {tuple(value.shape)}")
    if not value.is_floating_point():
        raise ShapeError(f"{name} must be a floating tensor, got {value.dtype}")
    if batch is not None and value.shape[0] != batch:
        raise ShapeError(f"{name} must have batch size {batch}, got shape {tuple(value.shape)}")
    if count is not None and value.shape[1] != count:
        raise ShapeError(f"{name} must have {count} points, got shape {tuple(value.shape)}")


class NeighbourCache:
    """Nearest-neighbour indices shared across iterations of an optimisation.

    Index searches are not differentiable and cost more than everything else in a step; the refiner lets them
    be refreshed every few iterations (``refresh_every``) while distances stay differentiable on the gathered
    pairs. ``NeighbourCache(refresh_every=1)`` recomputes at every call (exact).
    """

    def __init__(self, refresh_every: int = 1) -> None:
        if refresh_every < 1:
            raise ShapeError(f"refresh_every must be >= 1, got {refresh_every}")
        self.refresh_every = int(refresh_every)
        self.iteration = 0
        self._store: dict[str, tuple[int, Tensor]] = {}
        self._orders: dict[str, Tensor] = {}

    def get(self, key: str, compute: Callable[[], Tensor]) -> Tensor:
        """Cached long index tensor for ``key``; recomputed when stale or when its shape no longer fits."""
        hit = self._store.get(key)
        if hit is not None and self.iteration - hit[0] < self.refresh_every:
            return hit[1]
        value = compute()
        self._store[key] = (self.iteration, value)
        return value

    def query_order(self, key: str, query: Tensor) -> Tensor:
        """(B, N) int64 :func:`~contactkit.geometry.knn.spatial_order` of ``query (B, N, 3)`` for the searches
        of ``key``, computed on first use and kept while the shape fits.

        Any permutation gives the same neighbour indices (it only sets the order in which the tree is walked),
        so a kept order stays correct when the query points move; it stays fast while they move rigidly, as an
        object's samples do during a refinement.
        """
        order = self._orders.get(key)
        if order is None or order.shape != query.shape[:2]:
            from contactkit.geometry.knn import spatial_order

            order = spatial_order(query)
            self._orders[key] = order
        return order

    def step(self) -> None:
        """Advance the iteration counter (called once per optimiser step)."""
        self.iteration += 1

    def clear(self) -> None:
        self._store.clear()
        self._orders.clear()


@dataclass
class HandObjectState:
    """A posed hand-object batch, in one common (world) frame.

    Attributes:
        hand_verts: (B, V, 3) float, metres — posed hand vertices.
        keypoints: (B, 21, 3) float, metres — the 21 keypoints (wrist, thumb 1-4, ..., little 1-4).
        anchors: (B, 32, 3) float, metres, or None — CPF anchors interpolated on the hand surface.
        anchor_fn: optional ``hand_verts (B, V, 3) -> anchors (B, 32, 3)``; when ``anchors`` is None,
            :meth:`require_anchors` computes them with it on first use (terms without anchors skip the work).
        obj_points: (B, P, 3) float, metres — object surface samples (posed).
        obj_normals: (B, P, 3) float — unit outward normals at ``obj_points`` (posed).
        hand_sdf: (B, V) float, metres, or None — signed distance of each hand vertex to the object surface,
            negative inside the object.
        hand_normals: (B, V, 3) float or None — unit hand vertex normals (only the CHOIR cone needs them).
        obj_rotation: (B, 3, 3) float or None — object pose, ``x_world = R x_object + t``.
        obj_translation: (B, 3) float or None.
        params: the current optimisation variables by name (``global_orient (B,3)``, ``hand_pose (B,45)``
            axis-angle, ``betas (B,n)``, ``transl (B,3)``), for regularisers.
        init_params: the same names at the start of the optimisation (offset/pose regularisers).
        sample_index: (B,) int64 — row of the original batch each state row comes from (restarts repeat rows).
        cache: neighbour-index cache shared by the terms of one optimisation.
    """

    hand_verts: Tensor
    keypoints: Tensor
    obj_points: Tensor
    obj_normals: Tensor
    anchors: Tensor | None = None
    anchor_fn: Callable[[Tensor], Tensor] | None = None
    hand_sdf: Tensor | None = None
    hand_normals: Tensor | None = None
    obj_rotation: Tensor | None = None
    obj_translation: Tensor | None = None
    params: dict[str, Tensor] = field(default_factory=dict)
    init_params: dict[str, Tensor] = field(default_factory=dict)
    sample_index: Tensor | None = None
    cache: NeighbourCache = field(default_factory=NeighbourCache)

    def __post_init__(self) -> None:
        check_points("hand_verts", self.hand_verts)
        batch = self.hand_verts.shape[0]
        check_points("keypoints", self.keypoints, batch=batch)
        check_points("obj_points", self.obj_points, batch=batch)
        check_points("obj_normals", self.obj_normals, batch=batch, count=self.obj_points.shape[1])
        if self.anchors is not None:
            check_points("anchors", self.anchors, batch=batch)
        if self.hand_sdf is not None and tuple(self.hand_sdf.shape) != tuple(self.hand_verts.shape[:2]):
            raise ShapeError(
                f"hand_sdf must have shape (B, V) = {tuple(self.hand_verts.shape[:2])}, "
                f"got {tuple(self.hand_sdf.shape)}"
            )
        if self.sample_index is None:
            self.sample_index = torch.arange(batch, device=self.hand_verts.device)

    @property
    def batch_size(self) -> int:
        return int(self.hand_verts.shape[0])

    @property
    def rows(self) -> Tensor:
        """(B,) int64 index into per-sample term data."""
        assert self.sample_index is not None  # set in __post_init__
        return self.sample_index

    def require_sdf(self, term: str) -> Tensor:
        if self.hand_sdf is None:
            raise ShapeError(f"term {term!r} needs state.hand_sdf (B, V): build the state with an object SDF")
        return self.hand_sdf

    def require_anchors(self, term: str) -> Tensor:
        if self.anchors is None and self.anchor_fn is not None:
            self.anchors = self.anchor_fn(self.hand_verts)
            check_points("anchors", self.anchors, batch=self.batch_size)
        if self.anchors is None:
            raise ShapeError(f"term {term!r} needs state.anchors (B, 32, 3)")
        return self.anchors


@runtime_checkable
class EnergyTerm(Protocol):
    """A weighted energy: ``term(state) -> (B,)`` unweighted loss per sample; ``name``; ``weight``."""

    name: str
    weight: float

    def __call__(self, state: HandObjectState) -> Tensor: ...


@dataclass
class FunctionTerm:
    """Wrap a function ``fn(state) -> (B,)`` as an :class:`EnergyTerm`."""

    name: str
    fn: Callable[[HandObjectState], Tensor]
    weight: float = 1.0

    def __call__(self, state: HandObjectState) -> Tensor:
        return self.fn(state)


@dataclass
class ObjectiveValue:
    """Result of evaluating an :class:`Objective`: total (B,) and each weighted term (B,) by name."""

    total: Tensor
    terms: dict[str, Tensor]


class Objective:
    """Weighted sum of energy terms (theseus ``Objective``)."""

    def __init__(self, terms: Sequence[EnergyTerm]) -> None:
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ShapeError(f"energy term names must be unique, got {names}")
        self.terms = list(terms)

    def evaluate(self, state: HandObjectState) -> ObjectiveValue:
        """Per-sample weighted losses; ``total`` is (B,)."""
        parts: dict[str, Tensor] = {}
        total = state.hand_verts.new_zeros(state.batch_size)
        for term in self.terms:
            if term.weight == 0.0:
                continue
            value = term(state)
            if value.shape != (state.batch_size,):
                raise ShapeError(
                    f"energy term {term.name!r} returned shape {tuple(value.shape)}, expected ({state.batch_size},)"
                )
            weighted = term.weight * value
            parts[term.name] = weighted
            total = total + weighted
        return ObjectiveValue(total=total, terms=parts)

    def __call__(self, state: HandObjectState) -> Tensor:
        return self.evaluate(state).total

"""contactkit's in-memory caches: one LRU class, one content key for meshes and arrays, one ``clear_caches()``.

Derived per-object data (AABB trees, surface samples, manifold solids, distance bounds, convex decompositions,
SDF grids) is recomputed only when the geometry changes, so every cache is keyed by content:

* :func:`array_key` — a blake2b digest of arrays (dtype, shape and bytes) and a few integers;
* :func:`mesh_key` — the same for a mesh ``verts (V, 3)`` float64, ``faces (F, 3)`` int64 (the key of every
  per-mesh cache);
* :class:`LRUCache` — a small thread-safe least-recently-used mapping; every instance registers itself so that
  :func:`clear_caches` empties them all (benchmarks timing cold runs, tests, long sessions freeing memory).

(The persistent object id stored in grasp files, :attr:`contactkit.objects.ObjectMesh.content_hash`, is a
format field, not a cache key: it is kept stable across versions. The on-disk cache of
:mod:`contactkit.objects.cache` is keyed by it.)

This module imports nothing else of contactkit, so every layer (geometry included) can use it.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

__all__ = ["LRUCache", "array_key", "clear_caches", "mesh_key"]

T = TypeVar("T")

_REGISTRY: weakref.WeakSet[LRUCache[object]] = weakref.WeakSet()


class LRUCache(Generic[T]):
    """A thread-safe least-recently-used mapping ``key -> value`` of at most ``size`` entries.

    Values are shared: callers treat them as read-only. ``get(key)`` returns None on a miss;
    ``get_or_make(key, make)`` returns the cached value or stores and returns ``make()``.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = int(size)
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()
        _REGISTRY.add(self)  # type: ignore[arg-type]

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def get_or_make(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()  # outside the lock: making may take long and may use other caches
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)


def array_key(*arrays: np.ndarray, extra: tuple[object, ...] = ()) -> bytes:
    """A 16-byte digest of ``arrays`` (each's dtype, shape and C-order bytes) and ``repr(extra)``."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        arr = np.ascontiguousarray(a)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    h.update(repr(extra).encode())
    return h.digest()


def mesh_key(verts: np.ndarray, faces: np.ndarray, *extra: int) -> bytes:
    """The content key of a mesh ``verts (V, 3)``, ``faces (F, 3)`` (compared as float64 / int64 values) and a
    few integers (e.g. a sample count)."""
    return array_key(
        np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64), extra=tuple(int(x) for x in extra)
    )


def clear_caches() -> None:
    """Empty every in-memory cache of contactkit (the on-disk object cache is left alone)."""
    for cache in list(_REGISTRY):
        cache.clear()

"""The one cache module: an LRU, a content key for meshes, and clear_caches() emptying every cache."""

from __future__ import annotations

import importlib

import numpy as np
from metric_meshes import box, sphere

import contactkit
from contactkit.cache import LRUCache, array_key, mesh_key
from contactkit.geometry import mesh_distance
from contactkit.objects import cache as object_cache


def test_lru_evicts_the_least_recently_used():
    c: LRUCache[int] = LRUCache(size=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # "a" is now the most recent
    c.put("c", 3)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3
    calls = []
    assert c.get_or_make("d", lambda: calls.append(1) or 4) == 4
    assert c.get_or_make("d", lambda: calls.append(1) or 5) == 4 and calls == [1]


def test_mesh_key_follows_content_not_dtype_or_identity():
    v, f = box([0.04, 0.05, 0.06])
    assert mesh_key(v, f) == mesh_key(v.copy(), f.astype(np.int32))
    moved = v.copy()
    moved[0, 0] += 1e-12
    assert mesh_key(moved, f) != mesh_key(v, f)
    assert mesh_key(v, f, 5) != mesh_key(v, f, 6)
    assert array_key(np.zeros(3)) != array_key(np.zeros(3, dtype=np.float32))
    assert mesh_distance.mesh_key is mesh_key  # geometry's caches use the same key


def test_clear_caches_empties_every_cache():
    ev = importlib.import_module("contactkit.metrics.evaluate")  # the package attribute is the function
    v, f = sphere(0.03, subdivisions=2)
    mesh_distance.mesh_index(v, f)
    ev._surface_samples(v, f, 64, mesh_key(v, f))
    object_cache.MEMORY_CACHE.put(("probe",), 1)
    assert len(mesh_distance._INDEX_CACHE) and len(ev._SAMPLES) and len(object_cache.MEMORY_CACHE)
    contactkit.clear_caches()
    assert len(mesh_distance._INDEX_CACHE) == len(ev._SAMPLES) == len(object_cache.MEMORY_CACHE) == 0


def test_posed_grasps_object_keys_are_the_content_keys():
    from contactkit.metrics.evaluate import PosedGrasps

    v, f = sphere(0.03, subdivisions=2)

    def posed(verts):
        return PosedGrasps(np.zeros((2, 4, 3)), np.zeros((2, 21, 3)), np.array([[0, 1, 2], [0, 2, 3]]), ["o", "o"],
                           {"o": (verts, f)}, np.repeat(np.eye(3)[None], 2, 0), np.zeros((2, 3)))  # fmt: skip

    a, b, moved = posed(v), posed(v.copy()), posed(v + 1e-9)
    assert a.object_key("o") == mesh_key(v, f)
    assert not a.objects["o"][0].flags.writeable and not a.objects["o"][1].flags.writeable  # frozen copies
    assert v.flags.writeable and f.flags.writeable  # the caller's arrays are left alone
    b.share_object_keys(a)
    moved.share_object_keys(a)  # different content: not shared
    assert b.object_key("o") == mesh_key(v, f) and moved.object_key("o") == mesh_key(v + 1e-9, f) != b.object_key("o")
    a.objects["o"] = (v + 1e-9, f)  # a replaced mesh gets its own key
    assert a.object_key("o") == mesh_key(v + 1e-9, f)

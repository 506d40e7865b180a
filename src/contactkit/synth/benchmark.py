"""The standard synthetic benchmark set: synthesised grasps on the bundled (and shared YCB) objects, split by
object and by grasp, with a manifest that lets anyone rebuild the identical set.

Layout written by :func:`build_benchmark_set` under ``out/``::

    objects/{name}.npz             all accepted grasps of one object (resumable: objects/{name}.npz.parts/)
    split_object/{train,val,test}.npz   split by object: test/val objects are never seen in training
    split_grasp/{train,val,test}.npz    split by grasp: every object in every split, grasps disjoint
    manifest.json                  seeds, versions, settings, object hashes, split membership, statistics

Objects: the bundled ones (:func:`contactkit.objects.list_bundled_objects`) plus the meshes of
the folder ``$CONTACTKIT_SHARED_OBJECTS`` names (none when it is unset; no machine-local default), skipping
shared meshes whose name (without the YCB number) is already bundled. Each object's synthesis seed is derived
from the benchmark seed and the object name (:func:`object_seed`), so adding an object does not change the
others.

Object split: objects sorted by name, shuffled with the benchmark seed; ``max(1, round(0.15 n))`` test
objects, ``max(1, round(0.15 n))`` validation objects (when at least 3 objects), the rest train. Grasp split:
each object's grasps shuffled with its seed, 80 / 10 / 10 % (at least one grasp in each part from 3 grasps on;
all in train below that).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from contactkit.errors import ContactkitError
from contactkit.io.atomic import json_safe
from contactkit.synth.synthesis import SynthesisConfig, synthesize

__all__ = ["DEFAULT_GRASPS_PER_OBJECT", "QUICK_GRASPS_PER_OBJECT", "benchmark_objects", "build_benchmark_set",
           "object_seed", "split_by_grasp", "split_by_object"]

DEFAULT_GRASPS_PER_OBJECT = 20
QUICK_GRASPS_PER_OBJECT = 2
MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb")


def object_seed(seed: int, name: str) -> int:
    """Synthesis seed of one object: first 8 hex digits of sha256(f"{seed}:{name}")."""
    return int(hashlib.sha256(f"{int(seed)}:{name}".encode()).hexdigest()[:8], 16)


def benchmark_objects(shared_dir: str | Path | None = None) -> list[tuple[str, str]]:
    """``(name, spec)`` of the standard objects: bundled names, then the shared meshes not already bundled."""
    from contactkit.objects import list_bundled_objects

    out = [(n, n) for n in list_bundled_objects()]
    shared = shared_dir if shared_dir is not None else os.environ.get("CONTACTKIT_SHARED_OBJECTS")
    folder = Path(shared) if shared else None
    if folder is not None and folder.is_dir():
        bundled = set(list_bundled_objects())
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in MESH_SUFFIXES:
                continue
            stem = p.stem
            short = stem.split("_", 1)[1] if stem[:3].isdigit() and "_" in stem else stem
            if short in bundled or stem in bundled:
                continue
            out.append((short, str(p)))
    return out


def split_by_object(names: list[str], seed: int) -> dict[str, list[str]]:
    """Train / val / test object names (see the module docstring)."""
    names = sorted(names)
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    order = [names[i] for i in rng.permutation(len(names))]
    n = len(order)
    n_test = max(1, round(0.15 * n)) if n >= 2 else 0
    n_val = max(1, round(0.15 * n)) if n >= 3 else 0
    return {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def split_by_grasp(n: int, seed: int) -> dict[str, np.ndarray]:
    """Train / val / test grasp indices of one object's ``n`` grasps (80 / 10 / 10 %, each part non-empty for
    ``n >= 3``)."""
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    perm = rng.permutation(n)
    n_test = max(1, int(round(0.1 * n))) if n >= 3 else 0
    n_val = max(1, int(round(0.1 * n))) if n >= 3 else 0
    return {"test": np.sort(perm[:n_test]), "val": np.sort(perm[n_test:n_test + n_val]),
            "train": np.sort(perm[n_test + n_val:])}


def _versions() -> dict[str, str]:
    import scipy
    import torch

    from contactkit import __version__

    return {"contactkit": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "torch": torch.__version__, "platform": platform.platform()}


def build_benchmark_set(
    out: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    workers: int = 1,
    grasps_per_object: int | None = None,
    objects: list[str] | None = None,
    hand: str = "openhand",
    config: SynthesisConfig | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Build (or resume) the benchmark set in ``out`` and return its manifest (see the module docstring).

    Args:
        out: output folder.
        quick: ``QUICK_GRASPS_PER_OBJECT`` grasps per object instead of ``DEFAULT_GRASPS_PER_OBJECT``.
        seed: benchmark seed (object split, per-object synthesis seeds, grasp split).
        workers: synthesis worker processes per object.
        grasps_per_object: override the number of grasps per object.
        objects: object specs to use instead of :func:`benchmark_objects` (names are the specs' stems).
        hand: hand model.
        config: synthesis settings.
        progress: progress bars.
    """
    from contactkit.io.atomic import atomic_write_json
    from contactkit.io.grasps import GraspSet, load_grasps, save_grasps

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    n_per = grasps_per_object or (QUICK_GRASPS_PER_OBJECT if quick else DEFAULT_GRASPS_PER_OBJECT)
    cfg = config or SynthesisConfig()
    if objects is not None:
        objs = [(Path(s).stem if any(s.endswith(x) for x in MESH_SUFFIXES) else s.replace(":", "_")
                 .replace("=", "").replace(",", "_"), s) for s in objects]
    else:
        objs = benchmark_objects()
    if not objs:
        raise ContactkitError("no benchmark objects found")
    names = [n for n, _ in objs]
    if len(set(names)) != len(names):
        raise ContactkitError(f"benchmark object names must be unique, got {names}")
    (root / "objects").mkdir(exist_ok=True)
    per_object: dict[str, GraspSet] = {}
    stats: dict[str, Any] = {}
    for name, spec in objs:
        path = root / "objects" / f"{name}.npz"
        oseed = object_seed(seed, name)
        if path.is_file():
            per_object[name] = load_grasps(path)
            stats[name] = per_object[name].attrs.get("synthesis", {}).get("stats", {})
            continue
        res = synthesize(spec, n_per, hand=hand, seed=oseed, config=cfg, out=path, workers=workers,
                         progress=progress)
        if len(res.grasps) < n_per:
            raise ContactkitError(f"object {name!r}: only {len(res.grasps)} of {n_per} grasps accepted")
        per_object[name] = res.grasps
        stats[name] = {k: v for k, v in res.stats.items()}
    obj_split = split_by_object(names, seed)
    manifest_splits: dict[str, Any] = {"object": obj_split, "grasp": {}}
    for folder in ("split_object", "split_grasp"):
        (root / folder).mkdir(exist_ok=True)
    for part, members in obj_split.items():
        sets = [per_object[n].replace(attrs={"benchmark": {"split": f"object/{part}"}}) for n in members]
        if sets:
            save_grasps(root / "split_object" / f"{part}.npz", GraspSet.concat(sets))
    grasp_parts: dict[str, list[GraspSet]] = {"train": [], "val": [], "test": []}
    for name in names:
        idx = split_by_grasp(len(per_object[name]), object_seed(seed, name))
        manifest_splits["grasp"][name] = {k: v.tolist() for k, v in idx.items()}
        for part, sel in idx.items():
            if sel.size:
                grasp_parts[part].append(per_object[name].subset(sel).replace(
                    attrs={"benchmark": {"split": f"grasp/{part}"}}))
    for part, sets in grasp_parts.items():
        if sets:
            save_grasps(root / "split_grasp" / f"{part}.npz", GraspSet.concat(sets))
    manifest = {
        "format": "contactkit.benchmark_set",
        "version": 1,
        "seed": int(seed),
        "quick": bool(quick),
        "grasps_per_object": int(n_per),
        "hand": hand,
        "config": cfg.to_dict(),
        "versions": _versions(),
        "objects": {name: {"spec": spec if not Path(spec).is_absolute() else Path(spec).name,
                           "seed": object_seed(seed, name),
                           "content_hash": next(iter(per_object[name].objects)),
                           "grasps": len(per_object[name])} for name, spec in objs},
        "splits": manifest_splits,
        "stats": stats,
        "rebuild": f"contactkit benchmark-set --out DIR --seed {seed}" + (" --quick" if quick else ""),
    }
    manifest = json_safe(json.loads(json.dumps(json_safe(manifest), default=float)))
    atomic_write_json(root / "manifest.json", manifest)
    return manifest

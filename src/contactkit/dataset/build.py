"""Build a rendered dataset: object set → per-object shards (grasps + rendered views), resumable, in this
process, in worker processes, or as Ray tasks (see ``docs/dataset.md``).

``dataset.json`` (written first, before any shard) fixes everything the shards depend on: the format version,
the object set spec, the objects that passed the checks (and the reason for each skipped one), the split by
object (seeded), each object's seed, and the synthesis and render settings. A restart with other settings is
refused; a restart with the same settings builds only the shards that are missing, so a killed build loses at
most the shards in flight and duplicates none.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from contactkit.dataset.shard import ShardTask, make_shard, object_seed, shard_dir, write_shard
from contactkit.errors import ContactkitError

__all__ = ["DATASET_FORMAT", "DATASET_VERSION", "assign_splits", "build_dataset", "dataset_info", "read_manifest"]

DATASET_FORMAT = "contactkit.rendered"
DATASET_VERSION = 1
SPLITS = ("train", "val", "test")

#: synthesis settings of dataset builds unless overridden (the synthesiser's defaults otherwise)
DEFAULT_SYNTHESIS: dict[str, Any] = {"batch_size": 16}


def assign_splits(object_ids: list[str], seed: int, fractions: tuple[float, float] = (0.1, 0.1)) -> dict[str, str]:
    """Split objects into train/val/test with a seeded permutation: ``round(fraction * n)`` objects (at least
    one each when there are >= 3 objects) go to val and to test, the rest to train."""
    n = len(object_ids)
    order = np.random.Generator(np.random.PCG64(int(seed))).permutation(n)
    n_val = max(1, round(fractions[0] * n)) if n >= 3 else 0
    n_test = max(1, round(fractions[1] * n)) if n >= 3 else 0
    out = {}
    for rank, i in enumerate(order):
        out[object_ids[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def read_manifest(root: str | Path) -> dict[str, Any]:
    """``dataset.json`` of a dataset folder, checked for format and version."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        raise ContactkitError(f"{root} is not a contactkit dataset (no dataset.json)")
    man = json.loads(path.read_text())
    if man.get("format") != DATASET_FORMAT or man.get("version") != DATASET_VERSION:
        raise ContactkitError(f"{path}: format {man.get('format')!r} v{man.get('version')!r}, expected "
                              f"{DATASET_FORMAT!r} v{DATASET_VERSION}")
    return man


def _run_serial(tasks: list[ShardTask]) -> Iterator[tuple[ShardTask, dict[str, Any]]]:
    for t in tasks:
        yield t, make_shard(t)


def _run_processes(tasks: list[ShardTask], workers: int) -> Iterator[tuple[ShardTask, dict[str, Any]]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        pending = list(tasks)
        running: dict[Future[dict[str, Any]], ShardTask] = {}
        while pending or running:
            while pending and len(running) < workers:
                t = pending.pop(0)
                running[pool.submit(make_shard, t)] = t
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                yield running.pop(fut), fut.result()


def _run_ray(tasks: list[ShardTask], address: str | None, workers: int) -> Iterator[tuple[ShardTask, dict[str, Any]]]:
    from contactkit.raytasks import ray_session

    with ray_session(address, workers) as ray:
        remote = ray.remote(num_cpus=1)(make_shard)
        refs = {remote.remote(t): t for t in tasks}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                yield refs.pop(ref), ray.get(ref)


def build_dataset(
    objects: str,
    out: str | Path,
    *,
    grasps_per_object: int,
    views: int,
    seed: int = 0,
    hand: str = "openhand",
    side: str = "right",
    workers: int = 1,
    ray_address: str | None = None,
    use_ray: bool = False,
    synthesis: dict[str, Any] | None = None,
    max_batches: int = 4,
    render: dict[str, Any] | None = None,
    allow_open: bool = False,
    max_objects: int | None = None,
    on_shard: Callable[[ShardTask, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Build (or resume) a rendered dataset in ``out``; returns the manifest with build statistics.

    Args:
        objects: object set spec (:func:`contactkit.objects.library.resolve_objects`).
        grasps_per_object: accepted grasps wanted per object (fewer when synthesis runs out of ``max_batches``).
        views: rendered views per grasp.
        seed: fixes the split and every object's seed.
        workers: worker processes (1: this process); with ``use_ray`` the local Ray's CPUs.
        use_ray, ray_address: run shards as Ray tasks; ``ray_address`` connects to a cluster (None: local Ray
            started in this process).
        synthesis: synthesis setting overrides (on top of :data:`DEFAULT_SYNTHESIS` and ``stop_after_accepted =
            grasps_per_object``: the kept grasps are those of a full check, without simulating the ones dropped).
        render: :class:`contactkit.render.views.ViewSettings` fields (default 256 x 256).
        allow_open: accept non-watertight meshes; max_objects: use only the first N objects that pass.
        on_shard: called after each shard is written.
    """
    from contactkit import __version__
    from contactkit.objects.library import ObjectChecks, check_object, resolve_objects
    from contactkit.render.views import ViewSettings

    for name, val in (("grasps_per_object", grasps_per_object), ("views", views), ("workers", workers)):
        if not isinstance(val, int) or val < 1:
            raise ContactkitError(f"{name} must be an integer >= 1, got {val!r}")
    root = Path(out)
    from contactkit.synth.synthesis import SynthesisConfig

    # the full configuration is stored, so a resumed build never mixes settings of two contactkit versions
    synth_cfg = SynthesisConfig().with_updates(
        **{**DEFAULT_SYNTHESIS, "stop_after_accepted": grasps_per_object, **(synthesis or {})}
    ).to_dict()
    render_cfg = ViewSettings(**(render or {})).to_dict()
    settings = {
        "objects": objects, "grasps_per_object": grasps_per_object, "views": views, "seed": int(seed),
        "hand": hand, "side": side, "synthesis": synth_cfg, "max_batches": max_batches, "render": render_cfg,
        "allow_open": allow_open, "max_objects": max_objects,
    }
    man_path = root / "dataset.json"
    if man_path.is_file():
        manifest = read_manifest(root)
        if manifest["settings"] != json.loads(json.dumps(settings)):
            raise ContactkitError(f"{root} holds a dataset built with other settings; use another --out "
                                  f"(stored: {manifest['settings']}, asked: {settings})")
    else:
        from contactkit.io.atomic import atomic_write_json

        entries = resolve_objects(objects)
        checks = ObjectChecks(require_watertight=not allow_open)
        accepted: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for e in entries:
            if max_objects is not None and len(accepted) >= max_objects:
                break
            _, res = check_object(e, checks)
            if res.ok:
                accepted.append({"object_id": e.object_id, "name": res.name, "content_hash": res.content_hash,
                                 "source": e.source, "license": e.license,
                                 "extents_cm": [round(x * 100, 2) for x in res.extents_m]})
            else:
                skipped.append({"object_id": e.object_id, "reason": res.reason})
        if not accepted:
            raise ContactkitError(f"no object of {objects!r} passed the checks ({len(skipped)} skipped)")
        split = assign_splits([a["object_id"] for a in accepted], seed)
        for i, a in enumerate(accepted):
            a.update({"shard": i, "split": split[a["object_id"]], "seed": object_seed(seed, a["object_id"])})
        manifest = {
            "format": DATASET_FORMAT, "version": DATASET_VERSION, "settings": settings,
            "split": {"seed": int(seed), "fractions": {"val": 0.1, "test": 0.1}, "by": "object"},
            "objects": accepted, "skipped": skipped,
            "created_with": {"contactkit": __version__, "python": platform.python_version(),
                             "machine": platform.machine()},
        }
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(man_path, manifest)
    shards = root / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    for stale in shards.glob(".tmp-*"):  # leftovers of a killed build: never complete, rebuilt below
        import shutil

        shutil.rmtree(stale, ignore_errors=True)
    tasks = [
        ShardTask(index=o["shard"], object_id=o["object_id"], object_spec=_spec_of(o["object_id"], objects),
                  split=o["split"], seed=o["seed"], grasps=grasps_per_object, views=views, hand=hand, side=side,
                  synthesis=synth_cfg, max_batches=max_batches, render=render_cfg)
        for o in manifest["objects"]
        if not (shard_dir(root, o["shard"]) / "shard.json").is_file()
    ]
    start = time.perf_counter()
    if use_ray:
        runner = _run_ray(tasks, ray_address, workers)
    elif workers > 1:
        runner = _run_processes(tasks, workers)
    else:
        runner = _run_serial(tasks)
    built = 0
    for task, result in runner:
        write_shard(root, task.index, result)
        built += 1
        if on_shard is not None:
            on_shard(task, result["meta"])
    info = dataset_info(root)
    info["built_this_run"] = built
    info["seconds_this_run"] = time.perf_counter() - start
    return info


def _spec_of(object_id: str, objects: str) -> str:
    """The single-object spec that resolves ``object_id`` again (cheaper than re-resolving the whole set)."""
    kind, _, rest = object_id.partition("/")
    if kind == "random-urdfs":
        return f"random-urdfs:{int(rest)}-{int(rest)}"
    if kind == "bundled":
        return rest
    if kind == "primitive":
        return rest if ":" in rest else f"{rest}:"
    if kind == "file":
        return rest
    return objects


def dataset_info(root: str | Path) -> dict[str, Any]:
    """Summary of a dataset folder: settings, per-split objects/grasps/views, shards done and missing, empty
    shards with their reasons, total build seconds."""
    man = read_manifest(root)
    per = {s: {"objects": 0, "grasps": 0, "views": 0} for s in SPLITS}
    done = missing = 0
    empty = []
    seconds = 0.0
    for o in man["objects"]:
        js = shard_dir(Path(root), o["shard"]) / "shard.json"
        if not js.is_file():
            missing += 1
            continue
        meta = json.loads(js.read_text())
        done += 1
        seconds += float(meta.get("seconds") or 0.0)
        if meta["n_grasps"] == 0:
            empty.append({"object_id": o["object_id"], "reason": meta.get("reason", "")})
            continue
        d = per[o["split"]]
        d["objects"] += 1
        d["grasps"] += meta["n_grasps"]
        d["views"] += meta["n_views"]
    return {
        "root": str(root), "format": man["format"], "version": man["version"], "settings": man["settings"],
        "objects_checked_ok": len(man["objects"]), "objects_skipped": len(man["skipped"]),
        "shards_done": done, "shards_missing": missing, "empty_shards": empty, "splits": per,
        "shard_seconds_total": seconds,
    }



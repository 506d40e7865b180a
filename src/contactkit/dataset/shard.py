"""One shard of a rendered dataset: the grasps of one object and their rendered views.

:func:`make_shard` is a pure function of its :class:`ShardTask` (object, seeds, settings): it synthesises the
grasps, renders the views and returns the shard's files as bytes. The caller (serial loop, worker process or Ray
task) hands them to :func:`write_shard`, which writes them into a temporary folder and renames it into place, so
a shard on disk is always complete. Torch runs with one thread inside a task, so the bytes do not depend on where
the task ran.

Shard folder ``shards/NNNNN/``:

* ``grasps.npz`` — the accepted grasps, contactkit grasp format (``io.grasps.save_grasps``), ranked;
* ``views.npz`` — arrays over the shard's ``G * V`` views (view ``j`` of grasp ``g`` is row ``g * V + j``):
  ``depth (N, H, W) float32`` metres, ``hand_mask``/``object_mask (N, H, W) bool``, ``K (N, 3, 3)``,
  ``cam_from_world (N, 4, 4)``, ``hand_keypoints_3d (N, 21, 3)``, ``hand_keypoints_2d (N, 21, 2)``,
  ``object_corners_3d (N, 8, 3)``, ``object_corners_2d (N, 8, 2)`` (float32), ``grasp_row (N,)``,
  ``view_index (N,)`` int64;
* ``rgb/g{grasp:04d}_v{view:02d}.png`` — the RGB images (8-bit sRGB, lossless);
* ``shard.json`` — object id/name/hash, split, counts, synthesis statistics, the appearance of every view, or
  the reason the shard is empty (no grasp accepted).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contactkit.errors import ContactkitError
from contactkit.io.atomic import json_safe

__all__ = ["ShardTask", "make_shard", "object_seed", "shard_dir", "write_shard"]

VIEW_ARRAYS: tuple[str, ...] = (
    "depth", "hand_mask", "object_mask", "K", "cam_from_world", "hand_keypoints_3d", "hand_keypoints_2d",
    "object_corners_3d", "object_corners_2d",
)


def object_seed(seed: int, object_id: str) -> int:
    """The synthesis/render seed of one object: ``sha256("{seed}:{object_id}")``'s first 8 hex digits, so an
    object's shard does not depend on which other objects are in the set."""
    return int(hashlib.sha256(f"{seed}:{object_id}".encode()).hexdigest()[:8], 16)


def shard_dir(root: Path, index: int) -> Path:
    return Path(root) / "shards" / f"{index:05d}"


@dataclass(frozen=True)
class ShardTask:
    """Everything one shard depends on (picklable; shipped to worker processes and Ray tasks).

    Attributes:
        index: shard number; object_id: library id; split: ``train``/``val``/``test``.
        object_spec: the library's set spec term that resolves ``object_id`` (reloaded in the task).
        seed: :func:`object_seed` of the object.
        grasps: accepted grasps wanted; views: views per grasp.
        hand, side: hand model.
        synthesis: :class:`contactkit.synth.synthesis.SynthesisConfig` fields; max_batches: synthesis budget.
        render: :class:`contactkit.render.views.ViewSettings` fields.
    """

    index: int
    object_id: str
    object_spec: str
    split: str
    seed: int
    grasps: int
    views: int
    hand: str = "openhand"
    side: str = "right"
    synthesis: dict[str, Any] = field(default_factory=dict)
    max_batches: int = 4
    render: dict[str, Any] = field(default_factory=dict)


def _load_entry(task: ShardTask) -> Any:
    from contactkit.objects.library import resolve_objects

    for e in resolve_objects(task.object_spec):
        if e.object_id == task.object_id:
            return e
    raise ContactkitError(f"object {task.object_id!r} is no longer in {task.object_spec!r}")


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def make_shard(task: ShardTask) -> dict[str, Any]:
    """Synthesise and render one shard; returns ``{"files": {relative path: bytes}, "meta": shard.json dict}``.

    Deterministic given the task (torch single-threaded inside)."""
    import warnings

    import torch

    from contactkit.hands import load_hand
    from contactkit.io.grasps import save_grasps
    from contactkit.objects.library import object_box_corners
    from contactkit.render.mujoco_backend import PairRenderer
    from contactkit.render.views import ViewSettings, render_grasp_views
    from contactkit.synth.synthesis import SynthesisConfig, synthesize

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mesh = _load_entry(task).load()
            meta: dict[str, Any] = {
                "object_id": task.object_id, "name": mesh.name, "content_hash": mesh.content_hash,
                "split": task.split, "seed": task.seed, "index": task.index,
            }
            try:
                res = synthesize(mesh, task.grasps, hand=task.hand, side=task.side, seed=task.seed,
                                 config=SynthesisConfig().with_updates(**task.synthesis),
                                 max_batches=task.max_batches)
            except Exception as err:  # noqa: BLE001 - one object's failure is its shard's reason, not the end
                reason = (str(err) if isinstance(err, ContactkitError)
                          else f"synthesis failed: {type(err).__name__}: {err}")
                return {"files": {}, "meta": {**meta, "n_grasps": 0, "n_views": 0, "reason": reason,
                                              "seconds": time.perf_counter() - start}}
        grasps = res.grasps
        hand = load_hand(task.hand, task.side)
        with torch.no_grad():
            out = hand(*(torch.tensor(np.array(a), dtype=hand.dtype) for a in
                         (grasps.global_orient, grasps.hand_pose)),
                       torch.tensor(np.array(grasps.betas), dtype=hand.dtype) if grasps.num_betas else None,
                       torch.tensor(np.array(grasps.transl), dtype=hand.dtype))
        hv = out.vertices.double().numpy()
        kp = out.keypoints.double().numpy()
        corners, _ = object_box_corners(mesh)
        settings = ViewSettings(**task.render)
        renderer = PairRenderer(mesh.vertices, mesh.faces, hv, hand.closed_faces.numpy(),
                                width=settings.width, height=settings.height)
        files: dict[str, bytes] = {}
        arrays: dict[str, list[np.ndarray]] = {k: [] for k in VIEW_ARRAYS}
        rows, view_idx, appearance = [], [], []
        try:
            for g in range(len(grasps)):
                rot = np.asarray(grasps.object_rotation[g], dtype=np.float64)
                tr = np.asarray(grasps.object_translation[g], dtype=np.float64)
                ov = np.asarray(mesh.vertices) @ rot.T + tr
                rng = np.random.Generator(np.random.PCG64([task.seed, g]))
                views = render_grasp_views(renderer, g, hv[g], kp[g], ov, corners @ rot.T + tr, rot, tr,
                                           task.views, rng, settings)
                for j, v in enumerate(views):
                    files[f"rgb/g{g:04d}_v{j:02d}.png"] = _png(v["rgb"])
                    for k in VIEW_ARRAYS:
                        arrays[k].append(v[k])
                    rows.append(g)
                    view_idx.append(j)
                    appearance.append(v["appearance"])
        finally:
            renderer.close()
        stacked = {k: np.stack(v) for k, v in arrays.items()}
        stacked["grasp_row"] = np.asarray(rows, dtype=np.int64)
        stacked["view_index"] = np.asarray(view_idx, dtype=np.int64)
        files["views.npz"] = _npz(stacked)
        files["grasps.npz"] = _grasps_bytes(grasps, save_grasps)
        timing = ("seconds_this_run", "seconds_per_accepted_this_run", "cpu_seconds_by_stage",
                  "cpu_seconds_per_accepted")
        stats = {k: v for k, v in res.stats.items() if k not in timing}
        meta.update({"n_grasps": len(grasps), "n_views": len(rows), "views_per_grasp": task.views,
                     "synthesis": stats, "appearance": appearance, "reason": "",
                     "seconds": time.perf_counter() - start})
        return {"files": files, "meta": meta}
    finally:
        torch.set_num_threads(threads)


def _grasps_bytes(grasps: Any, save: Any) -> bytes:
    """The grasp file's bytes (``save_grasps`` writes atomically to a path; it goes through a temp folder)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "grasps.npz"
        save(p, grasps)
        return p.read_bytes()


def write_shard(root: Path, index: int, result: dict[str, Any]) -> Path:
    """Write a shard's files into ``shards/.tmp-NNNNN-PID`` and rename it to ``shards/NNNNN`` (atomic: readers
    and resumed builds see a shard completely or not at all). ``shard.json`` is written last."""
    final = shard_dir(root, index)
    tmp = final.parent / f".tmp-{index:05d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "rgb").mkdir(parents=True)
    for rel, data in sorted(result["files"].items()):
        with open(tmp / rel, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    with open(tmp / "shard.json", "w") as fh:
        json.dump(json_safe(result["meta"]), fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    if final.exists():  # a finished shard is never replaced
        shutil.rmtree(tmp)
        return final
    os.rename(tmp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final



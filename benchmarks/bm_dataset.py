"""Benchmark of dataset builds: accepted grasps per second and rendered views per second, serial, with worker
processes and on a local Ray, on the same objects and seed (the three builds must also be identical).

Run by hand: ``python benchmarks/bm_dataset.py [--objects random-urdfs:900-905] [--grasps 2] [--views 2]
[--iterations 60] [--batch-size 8]``. Prints one row per mode and the render-only throughput (views per second
with synthesis excluded, from re-rendering the built grasps).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def render_only(root: Path, views: int) -> float:
    """Views per second of rendering alone: re-render every grasp of the built dataset."""
    import torch

    from contactkit.dataset import RenderedDataset
    from contactkit.hands import load_hand
    from contactkit.objects.library import object_box_corners
    from contactkit.render.mujoco_backend import PairRenderer
    from contactkit.render.views import render_grasp_views

    hand = load_hand("openhand")
    n_views = 0
    t0 = time.perf_counter()
    for split in ("train", "val", "test"):
        try:
            ds = RenderedDataset(root, split)
        except Exception:  # noqa: BLE001 - a split can be empty in a tiny build
            continue
        g = ds.grasps
        for oid, rows in g.object_groups().items():
            obj = g.objects[oid]
            sub = g.subset(rows)
            with torch.no_grad():
                out = hand(torch.as_tensor(sub.global_orient, dtype=torch.float32),
                           torch.as_tensor(sub.hand_pose, dtype=torch.float32), None,
                           torch.as_tensor(sub.transl, dtype=torch.float32))
            hv, kp = out.vertices.double().numpy(), out.keypoints.double().numpy()
            corners, _ = object_box_corners(obj)
            with PairRenderer(obj.vertices, obj.faces, hv, hand.closed_faces.numpy()) as r:
                for i in range(len(sub)):
                    render_grasp_views(r, i, hv[i], kp[i], np.asarray(obj.vertices), corners, np.eye(3),
                                       np.zeros(3), views, np.random.default_rng(i))
                    n_views += views
    return n_views / (time.perf_counter() - t0)


def main() -> None:
    from contactkit.dataset import build_dataset

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--objects", default="random-urdfs:900-905")
    ap.add_argument("--grasps", type=int, default=2)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--max-batches", type=int, default=2)
    ap.add_argument("--modes", default="serial,workers2,ray2")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    synth = {"batch_size": args.batch_size, "iterations": args.iterations}
    print(f"{'mode':>10} {'grasps':>7} {'views':>7} {'wall_s':>8} {'grasps/s':>9} {'views/s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        last = None
        for mode in args.modes.split(","):
            out = Path(tmp) / mode
            kw = {"workers": 2} if mode.endswith("2") else {}
            t0 = time.perf_counter()
            info = build_dataset(args.objects, out, grasps_per_object=args.grasps, views=args.views,
                                 synthesis=synth, max_batches=args.max_batches, use_ray=mode.startswith("ray"),
                                 **kw)
            wall = time.perf_counter() - t0
            g = sum(d["grasps"] for d in info["splits"].values())
            v = sum(d["views"] for d in info["splits"].values())
            print(f"{mode:>10} {g:>7d} {v:>7d} {wall:>8.1f} {g / wall:>9.3f} {v / wall:>8.3f}")
            last = out
        if last is not None:
            print(f"render only (EGL/OSMesa per MUJOCO_GL, 256x256): {render_only(last, args.views):.1f} views/s")


if __name__ == "__main__":
    main()

"""``contactkit dataset build|info``: rendered, sharded training sets of synthesised grasps."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _positive(text: str) -> int:
    try:
        val = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if val < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {val}")
    return val


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dataset",
        help="build a rendered grasp dataset (sharded, resumable, workers or Ray) or describe one",
        description="build: per object, synthesise grasps and render views (RGB, depth, masks, 2D/3D keypoints "
        "and box corners, cameras) into one atomic shard; re-running the same command resumes. "
        "info: settings, splits and counts of a dataset folder.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build or resume a dataset")
    b.add_argument("--objects", required=True, help="object set spec (see `contactkit objects --help`)")
    b.add_argument("--grasps-per-object", type=_positive, required=True, help="accepted grasps per object")
    b.add_argument("--views", type=_positive, required=True, help="rendered views per grasp")
    b.add_argument("--out", type=Path, required=True, help="dataset folder")
    b.add_argument("--seed", type=int, default=0, help="seed of the split and of every object (default 0)")
    b.add_argument("--hand", choices=["openhand", "mano"], default="openhand")
    b.add_argument("--side", choices=["right", "left"], default="right")
    b.add_argument("--size", type=_positive, default=256, help="image width and height (default 256)")
    b.add_argument("--max-objects", type=_positive, default=None, help="use the first N objects that pass")
    b.add_argument("--max-batches", type=_positive, default=4, help="synthesis batches per object (default 4)")
    b.add_argument("--batch-size", type=_positive, default=None, help="synthesis candidates per batch")
    b.add_argument("--iterations", type=_positive, default=None, help="synthesis closing iterations")
    b.add_argument("--allow-open", action="store_true", help="accept meshes that are not watertight")
    group = b.add_mutually_exclusive_group()
    group.add_argument("--workers", type=_positive, default=1, help="worker processes (default 1)")
    group.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run shards as Ray tasks: a local Ray in this process, or the cluster at ADDRESS")
    b.add_argument("--ray-cpus", type=_positive, default=2, help="CPUs of the local Ray (default 2)")
    b.set_defaults(func=run_build)
    i = sub.add_parser("info", help="describe a dataset folder")
    i.add_argument("dir", type=Path, help="dataset folder")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.add_argument("--stats", action="store_true",
                   help="also yield, rejection reasons and the kept grasps' coverage, fingers in contact, "
                   "penetration, intersection volume, displacement and build seconds (reads every shard)")
    i.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from contactkit.dataset import build_dataset

    synth = {}
    if args.batch_size is not None:
        synth["batch_size"] = args.batch_size
    if args.iterations is not None:
        synth["iterations"] = args.iterations

    def progress(task: Any, meta: dict[str, Any]) -> None:
        print(f"shard {task.index:05d} {task.object_id}: {meta['n_grasps']} grasps, {meta['n_views']} views "
              f"({meta['seconds']:.1f} s){'  ' + meta['reason'] if meta.get('reason') else ''}", flush=True)

    use_ray = args.ray is not None
    info = build_dataset(
        args.objects, args.out, grasps_per_object=args.grasps_per_object, views=args.views, seed=args.seed,
        hand=args.hand, side=args.side, workers=args.ray_cpus if use_ray else args.workers,
        use_ray=use_ray, ray_address=args.ray or None, synthesis=synth, max_batches=args.max_batches,
        render={"width": args.size, "height": args.size}, allow_open=args.allow_open,
        max_objects=args.max_objects, on_shard=progress,
    )
    _print_info(info)
    return 0 if info["shards_missing"] == 0 else 1


def _print_info(info: dict[str, Any]) -> None:
    s = info["settings"]
    print(f"{info['root']}: {info['format']} v{info['version']}; objects {s['objects']!r}, "
          f"{s['grasps_per_object']} grasps x {s['views']} views, seed {s['seed']}, "
          f"{s['render']['width']}x{s['render']['height']}")
    print(f"objects: {info['objects_checked_ok']} passed the checks, {info['objects_skipped']} skipped; "
          f"shards: {info['shards_done']} done, {info['shards_missing']} missing, "
          f"{len(info['empty_shards'])} without an accepted grasp")
    for split, d in info["splits"].items():
        print(f"  {split:5s}: {d['objects']:5d} objects {d['grasps']:6d} grasps {d['views']:7d} views")
    print(f"shard build time (sum over shards): {info['shard_seconds_total']:.0f} s")


def run_info(args: argparse.Namespace) -> int:
    from contactkit.dataset import dataset_info

    info = dataset_info(args.dir)
    if args.stats:
        from contactkit.dataset.stats import dataset_statistics

        info["statistics"] = dataset_statistics(args.dir)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
        if args.stats:
            _print_statistics(info["statistics"])
    return 0


def _fmt(q: dict[str, float | None], scale: float = 1.0) -> str:
    if q["mean"] is None:
        return "-"
    v = {k: float(x or 0.0) * scale for k, x in q.items()}
    return f"mean {v['mean']:.2f} [p10 {v['p10']:.2f}, p50 {v['p50']:.2f}, p90 {v['p90']:.2f}]"


def _print_statistics(st: dict[str, Any]) -> None:
    syn, kept = st["synthesis"], st["kept"]
    pooled = "-" if syn["yield"] is None else f"{100 * syn['yield']:.1f} %"
    print(f"synthesis over {st['shards']} finished shards: {syn['accepted']} accepted of {syn['candidates']} "
          f"candidates (yield {pooled}); per object yield % {_fmt(syn['object_yield'], 100)}")
    print("  rejected: " + ", ".join(f"{k} {v}" for k, v in syn["rejected"].items()))
    print(f"kept grasps: {kept['grasps']}")
    for key in ("coverage_percent", "penetration_mm", "intersection_cm3", "displacement_cm"):
        print(f"  {key:17s} {_fmt(kept[key])}")
    print(f"  fingers in contact (0..5): {kept['fingers_in_contact_histogram']}; per finger "
          + ", ".join(f"{k} {100 * v:.0f} %" for k, v in kept["finger_contact_fraction"].items())
          + (f"; palm {100 * kept['palm_in_contact_fraction']:.0f} %" if kept["palm_in_contact_fraction"] is not None
             else ""))
    per = st["seconds_per_kept_grasp"]
    print(f"build seconds per object {_fmt(st['seconds_per_object'])}"
          + (f"; {per:.1f} s per kept grasp" if per is not None else ""))

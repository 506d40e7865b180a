"""``contactkit benchmark-set``: build the standard synthetic benchmark (rebuildable identically)."""

from __future__ import annotations

import argparse
import json

from contactkit.cli._args import MAX_GRASPS, bounded_int, output_dir, seed, workers


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "benchmark-set",
        help="build the standard synthetic benchmark set",
        description="Synthesise grasps on the bundled objects (and the shared YCB objects when present), "
        "split train/val/test by object and by grasp, and write the sets with a manifest of seeds and "
        "versions. Re-running resumes; the same seed rebuilds the same set.",
    )
    p.add_argument("--out", type=output_dir, required=True, help="output folder")
    p.add_argument("--quick", action="store_true", help="small set (few grasps per object) for smoke tests")
    p.add_argument("--seed", type=seed, default=0, help="benchmark seed (default 0)")
    p.add_argument("--workers", type=workers, default=1, help="worker processes (default 1)")
    p.add_argument("--grasps-per-object", type=bounded_int(1, MAX_GRASPS), default=None,
                   help="override the grasps per object")
    p.add_argument("--objects", default=None,
                   help="comma-separated object specs (default: the standard list)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from contactkit.synth.benchmark import build_benchmark_set

    objects = [s for s in args.objects.split(",") if s] if args.objects else None
    manifest = build_benchmark_set(args.out, quick=args.quick, seed=args.seed, workers=args.workers,
                                   grasps_per_object=args.grasps_per_object, objects=objects, progress=True)
    print(json.dumps(manifest["splits"], indent=2))
    print(f"benchmark set written to {args.out}")
    return 0

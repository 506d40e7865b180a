"""``contactkit evaluate GRASPS [--reference GT] [--metrics ...] [--json OUT]``: metrics of a grasp file."""

from __future__ import annotations

import argparse
from typing import Any

from contactkit.cli._args import output_file, workers


def add_parser(subparsers: Any) -> None:
    """Register the ``evaluate`` sub-command."""
    from contactkit.metrics.registry import METRICS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate",
        help="compute hand-object metrics of a grasp file (table of mean ± std, optional JSON)",
        description=(
            "Compute metrics of the grasps in GRASPS (a contactkit .npz grasp file). Pose and contact "
            "precision/recall metrics need a reference: --reference, or the one the file names "
            "(attrs['reference'] with reference_index, as written by `contactkit perturb`). Metric names: "
            + ", ".join(METRICS)
            + "; or 'default', 'all', or a group (pose, object, physics, contact, stability, quality)."
        ),
    )
    p.add_argument("grasps", help="grasp file (.npz)")
    p.add_argument("--reference", default=None, help="reference (ground-truth) grasp file")
    p.add_argument("--metrics", nargs="+", action="extend", default=None, metavar="NAME",
                   help="metrics to compute: names separated by spaces or commas; repeatable (all are kept)")
    p.add_argument("--json", type=output_file, default=None, metavar="OUT",
                   help="write the full result (per-sample values) here")
    p.add_argument("--workers", type=workers, default=1,
                   help="worker processes for the simulation, or the local Ray's CPUs with --ray (default 1)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the simulations as Ray tasks: a local Ray started here (no ADDRESS) or the cluster at "
                   "ADDRESS (pip install 'contactkit[ray]'); same result as without")
    p.add_argument(
        "--reference-contact",
        choices=("geometry", "stored"),
        default="geometry",
        help="reference contact for precision/recall/F1: measured on the reference grasp (default) or its stored maps",
    )
    p.set_defaults(func=run)


def metric_names(values: list[str]) -> list[str]:
    """The metric names of every ``--metrics`` value (each may hold several, comma-separated), in order, once each."""
    from contactkit.errors import ContactkitError

    names = list(dict.fromkeys(n.strip() for v in values for n in v.split(",") if n.strip()))
    if not names:
        raise ContactkitError(f"--metrics names no metric: {values}")
    return names


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, optionally write JSON; returns the exit code."""
    from contactkit.errors import ContactkitError
    from contactkit.io.grasps import load_grasps
    from contactkit.metrics.evaluate import evaluate

    if args.workers < 1:
        raise ContactkitError(f"--workers must be >= 1, got {args.workers}")
    metrics = None if args.metrics is None else metric_names(args.metrics)
    grasps = load_grasps(args.grasps)
    result = evaluate(
        grasps, args.reference, metrics, workers=args.workers, reference_contact=args.reference_contact,
        ray=args.ray,
    )
    ref = f" against {result.reference}" if result.reference else ""
    print(f"{result.num_grasps} grasps from {args.grasps}{ref}")
    print(result.table())
    if args.json:
        result.to_json(args.json)
        print(f"wrote {args.json}")
    return 0

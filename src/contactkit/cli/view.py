"""``contactkit view``: render a grasp file as a self-contained interactive HTML page (and a PNG still)."""

from __future__ import annotations

import argparse
import sys
import time

from contactkit.cli._args import bounded_int, output_file
from contactkit.cli._outputs import print_outputs


def _log(msg: str) -> None:
    print(f"[contactkit] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from contactkit.report.pipeline import render_grasp_file

    t0 = time.perf_counter()
    files = render_grasp_file(args.grasps, args.out, reference=args.reference, max_samples=args.max_samples,
                              snapshot=args.snapshot, with_metrics=not args.no_metrics, log=_log)
    print_outputs(files, time.perf_counter() - t0)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "view", help="render a grasp file as an interactive HTML page",
        description="Render the grasps of GRASPS (object, hand, contact maps as heat colours, penetrating "
                    "vertices, and the ground truth when the file links one) as one self-contained HTML file "
                    "that works offline.")
    p.add_argument("grasps", metavar="GRASPS", help="grasp file (.npz, contactkit grasp format)")
    p.add_argument("--out", type=output_file, required=True, metavar="FILE.html", help="HTML file to write")
    p.add_argument("--reference", default=None, metavar="GT",
                   help="ground-truth grasp file (default: the one the file records, if any)")
    p.add_argument("--max-samples", type=bounded_int(1, 10_000), default=24, metavar="N",
                   help="show at most N grasps (default 24)")
    p.add_argument("--snapshot", type=output_file, default=None, metavar="FILE.png",
                   help="also write a PNG still of the first "
                   "grasp")
    p.add_argument("--no-metrics", action="store_true", help="do not evaluate the grasps for the table")
    p.set_defaults(func=run)

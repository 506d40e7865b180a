"""``contactkit demo``: synthesise, perturb, refine with every method, evaluate, and write a report."""

from __future__ import annotations

import argparse
import sys
import time

from contactkit.cli._args import output_dir
from contactkit.cli._outputs import print_outputs


def _log(msg: str) -> None:
    print(f"[contactkit] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from contactkit.report.pipeline import run_demo
    from contactkit.report.tables import format_text_table

    t0 = time.perf_counter()
    methods = args.methods.split(",") if args.methods else None
    output = run_demo(args.out, quick=args.quick, log=_log, methods=methods, ground_truth=args.ground_truth)
    print(format_text_table(output.results))
    print_outputs(output.files, time.perf_counter() - t0)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the main job on bundled objects and write report.html and results.json",
        description="Synthesise ground-truth grasps on the bundled objects, perturb them (ContactOpt "
                    "protocol), refine them with every method, evaluate everything against the ground truth, "
                    "print the table and write DIR/report.html and DIR/results.json.")
    p.add_argument("--out", type=output_dir, default="out/demo", metavar="DIR",
                   help="output directory (default: out/demo)")
    p.add_argument("--quick", action="store_true", help="one object, two grasps, shortened refinement")
    p.add_argument("--methods", default=None, metavar="A,B", help="comma-separated methods (default: all)")
    p.add_argument("--ground-truth", default=None, metavar="GRASPS",
                   help="use this grasp file as ground truth instead of synthesising")
    p.set_defaults(func=run)

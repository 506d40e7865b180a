"""``contactkit demo``: perturb bundled grasps, refine them with every method, measure, and write a report."""

from __future__ import annotations

import argparse
import time

from contactkit.cli._args import output_dir
from contactkit.cli._log import stderr_log
from contactkit.cli._outputs import print_outputs


def run(args: argparse.Namespace) -> int:
    from contactkit.report.pipeline import run_demo
    from contactkit.report.tables import format_text_table

    t0, cpu0 = time.perf_counter(), time.process_time()
    methods = args.methods.split(",") if args.methods else None
    output = run_demo(args.out, quick=args.quick, full=args.full, log=stderr_log(), methods=methods,
                      ground_truth=args.ground_truth, oracle=not args.no_oracle)
    print(format_text_table(output.results))
    print_outputs(output.files, time.perf_counter() - t0, time.process_time() - cpu0)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the main job on bundled grasps and write report.html and results.json",
        description="Perturb ground-truth grasps (ContactOpt protocol), refine them with every method, measure "
                    "everything against the ground truth, print the tables and write DIR/report.html and "
                    "DIR/results.json.\n\n"
                    "Every method runs in the wild first (no ground truth: learned or statistical targets from "
                    "the noisy hand and the object; a method that cannot is listed as not available), then, as "
                    "upper bounds, toward the ground truth (rows labelled '(oracle)').\n\n"
                    "Sizes on a 2-core CPU: the default (6 bundled grasps on 3 objects, paper settings) about "
                    "3 min; --quick (short refinement) about 1 min; --full (synthesises 12 grasps, 2 noisy copies "
                    "each) the better part of an hour.")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="the bundled grasps with every method cut to 40 iterations, no restarts")
    size.add_argument("--full", action="store_true",
                      help="synthesise the ground truth (4 grasps per bundled object, 2 noisy copies each) and "
                           "refine at the papers' settings")
    p.add_argument("--out", type=output_dir, default="out/demo", metavar="DIR", help="output directory")
    p.add_argument("--methods", default=None, metavar="A,B",
                   help="comma-separated refinement methods (default: all; `contactkit info` lists them)")
    p.add_argument("--no-oracle", action="store_true",
                   help="skip the upper-bound block (methods refined toward the ground truth)")
    p.add_argument("--ground-truth", default=None, metavar="GRASPS",
                   help="use this grasp file as ground truth (default: the bundled example set; with --full, "
                        "synthesised)")
    p.set_defaults(func=run)

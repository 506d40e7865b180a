"""``contactkit bench``: every method on the standard benchmark set; JSON, CSV, markdown table and plots."""

from __future__ import annotations

import argparse
import time

from contactkit.cli._args import output_dir
from contactkit.cli._log import stderr_log
from contactkit.cli._outputs import print_outputs


def run(args: argparse.Namespace) -> int:
    from contactkit.report.pipeline import run_bench
    from contactkit.report.tables import format_text_table

    t0, cpu0 = time.perf_counter(), time.process_time()
    methods = args.methods.split(",") if args.methods else None
    output = run_bench(args.out, quick=args.quick, log=stderr_log(), methods=methods, split=args.split,
                       benchmark_dir=args.set, oracle=not args.no_oracle)
    print(format_text_table(output.results))
    print_outputs(output.files, time.perf_counter() - t0, time.process_time() - cpu0)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark every refinement method on the standard benchmark set",
        description="Perturb the standard synthetic benchmark set, refine it with every method (in the wild, "
                    "then toward the ground truth as labelled upper bounds), evaluate every row under the same "
                    "metric definitions, and write results.json, results.csv, results.md, plots/ and "
                    "report.html to --out.")
    p.add_argument("--out", type=output_dir, required=True, metavar="DIR", help="output directory")
    p.add_argument("--quick", action="store_true",
                   help="the quick benchmark set, every method cut to 40 iterations without restarts")
    p.add_argument("--split", default="split_grasp/test",
                   help="split file of the set: split_grasp/test (held-out grasps) or split_object/test "
                        "(held-out objects)")
    p.add_argument("--set", default=None, metavar="DIR",
                   help="benchmark set folder (default: OUT/benchmark_set, built if missing)")
    p.add_argument("--methods", default=None, metavar="A,B", help="comma-separated methods (default: all)")
    p.add_argument("--no-oracle", action="store_true",
                   help="skip the upper-bound block (methods refined toward the ground truth)")
    p.set_defaults(func=run)

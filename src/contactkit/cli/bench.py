"""``contactkit bench``: every method on the standard benchmark set; JSON, CSV, markdown table and plots."""

from __future__ import annotations

import argparse
import sys
import time

from contactkit.cli._args import output_dir
from contactkit.cli._outputs import print_outputs


def _log(msg: str) -> None:
    print(f"[contactkit] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from contactkit.report.pipeline import run_bench
    from contactkit.report.tables import format_text_table

    t0 = time.perf_counter()
    methods = args.methods.split(",") if args.methods else None
    output = run_bench(args.out, quick=args.quick, log=_log, methods=methods, split=args.split,
                       benchmark_dir=args.set)
    print(format_text_table(output.results))
    print_outputs(output.files, time.perf_counter() - t0)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark every refinement method on the standard benchmark set",
        description="Perturb the standard synthetic benchmark set, refine it with every method, evaluate "
                    "every method under the same metric definitions, and write results.json, results.csv, "
                    "results.md, plots/ and report.html to --out.")
    p.add_argument("--out", type=output_dir, required=True, metavar="DIR", help="output directory")
    p.add_argument("--quick", action="store_true", help="only the first grasps of the split")
    p.add_argument("--split", default="split_grasp/test",
                   help="split file of the set (default: split_grasp/test; or split_object/test)")
    p.add_argument("--set", default=None, metavar="DIR",
                   help="benchmark set folder (default: OUT/benchmark_set, built if missing)")
    p.add_argument("--methods", default=None, metavar="A,B", help="comma-separated methods (default: all)")
    p.set_defaults(func=run)

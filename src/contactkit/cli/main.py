"""The ``contactkit`` command: one sub-command per module in :mod:`contactkit.cli`.

Each sub-command lives in its own module ``contactkit.cli.<name>`` exposing
``add_parser(subparsers: argparse._SubParsersAction) -> None``; the parser it adds sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit code. Modules are imported lazily so that
``contactkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from contactkit import __version__
from contactkit.errors import ContactkitError

#: Sub-command modules, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "demo",
    "info",
    "evaluate",
    "refine",
    "view",
    "bench",
    "synth",
    "perturb",
    "benchmark_set",
    "convert",
    "train",
    "estimate",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="contactkit",
        description="Measure, refine, learn and synthesise hand grasps of objects.",
    )
    parser.add_argument("--version", action="version", version=f"contactkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"contactkit.cli.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``contactkit`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ContactkitError as err:
        print(f"contactkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"contactkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``contactkit`` command: one sub-command per module in :mod:`contactkit.cli`.

Each sub-command lives in its own module ``contactkit.cli.<name>`` exposing
``add_parser(subparsers: argparse._SubParsersAction) -> None``; the parser it adds sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit code. The module's docstring starts with
``"``contactkit <command> ...``: <one-line summary>"``.

Only the module of the command being run has its ``add_parser`` called; every other command is listed from its
docstring's summary. So ``contactkit --help`` imports no torch (the sub-command modules keep their top-level
imports light, and ``add_parser`` may import what it needs to list its choices).

Every sub-command's parser uses :class:`HelpFormatter`, which shows each option's default.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

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
    "objects",
    "dataset",
    "estimate",
)


class HelpFormatter(argparse.HelpFormatter):
    """The one help formatter of every ``contactkit`` parser: descriptions are wrapped paragraph by paragraph
    (a line break starts a new paragraph; indented lines, such as a list of methods, are kept as they are), and
    every option's help ends with its default.

    An option whose help already names its default (contains ``default``) is left as is; flags
    (``store_true``) and options without a default (``None``) show none; a required option says ``required``.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for line in text.splitlines():
            if not line.strip() or line[:1].isspace():
                out.append(indent + line if line.strip() else "")
            else:
                out.append(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent))
        return "\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS:
            return text
        if not action.option_strings:  # positionals
            return text
        if action.required:
            return f"{text} (required)".strip()
        if isinstance(action, argparse._StoreConstAction | argparse._StoreTrueAction | argparse._StoreFalseAction
                      | argparse._HelpAction | argparse._VersionAction | argparse._CountAction):
            return text
        if action.default is None:
            return text
        default = action.default
        if isinstance(default, list | tuple):
            default = " ".join(str(d) for d in default) or "none"
        return f"{text} (default: {str(default).replace('%', '%%')})".strip()


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with :class:`HelpFormatter` unless another formatter is asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("formatter_class") in (None, argparse.HelpFormatter, argparse.RawDescriptionHelpFormatter):
            kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)


def command_name(module: str) -> str:
    """The command of a sub-command module (``benchmark_set`` -> ``benchmark-set``)."""
    return module.replace("_", "-")


def command_summary(module: str) -> str:
    """The one-line summary of a sub-command: its module docstring's first line after
    ``"``contactkit <command> ...``: "``."""
    doc = (importlib.import_module(f"contactkit.cli.{module}").__doc__ or "").strip().splitlines()
    first = doc[0] if doc else ""
    return re.sub(r"^``[^`]*``:\s*", "", first).rstrip(".")


def _lazy_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser for ``argv``: lazy for a known command (the first argument not starting with ``-``) or none;
    every command's options otherwise, so a command whose name is not its module's still parses."""
    names = {command_name(m): m for m in SUBCOMMANDS}
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first in names:
        return build_parser(names.get(first) if first else None, lazy=True)
    return build_parser()


def build_parser(command: str | None = None, *, lazy: bool = False) -> argparse.ArgumentParser:
    """The top-level parser.

    Args:
        command: with ``lazy``, the sub-command module whose options are registered (its ``add_parser`` runs).
        lazy: register only ``command``'s options (none when ``None``) and every other sub-command by its
            summary, importing nothing heavy (what :func:`main` does); by default every sub-command's options
            are registered (imports what each ``add_parser`` needs).
    """
    parser = Parser(
        prog="contactkit",
        description="Measure, refine, learn and synthesise hand grasps of objects.",
        epilog="Run `contactkit COMMAND --help` for a command's options; `contactkit info papers` lists the papers "
        "the methods come from.",
    )
    parser.add_argument("--version", action="version", version=f"contactkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in SUBCOMMANDS:
        if not lazy or name == command:
            importlib.import_module(f"contactkit.cli.{name}").add_parser(subparsers)
        else:
            summary = command_summary(name)
            subparsers.add_parser(command_name(name), help=summary, description=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``contactkit`` console script; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _lazy_parser(args_list)
    args = parser.parse_args(args_list)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ContactkitError as err:
        print(f"contactkit {args.command}: error: {err}", file=sys.stderr)
        print(f"(`contactkit {args.command} --help` lists every option)", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, permissions, a vanished file: the message, not a traceback
        print(f"contactkit {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"contactkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

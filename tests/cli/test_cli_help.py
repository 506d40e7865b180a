"""The command line's help: fast (no torch until a command runs), every default shown, papers named."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from contactkit.cli.info import PAPERS, format_papers
from contactkit.cli.main import SUBCOMMANDS, HelpFormatter, build_parser, command_name, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_top_level_help_imports_no_torch():
    """``contactkit --help`` lists every command from the modules' summaries without importing torch (what
    made it take 3 s)."""
    code = ("import sys, contextlib, io\n"
            "from contactkit.cli.main import main\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules, 'numpy' in sys.modules)\n"
            "print(buf.getvalue())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, help_text = out.split("\n", 1)
    assert first == "False False"
    for module in SUBCOMMANDS:
        assert command_name(module) in help_text
    assert "contactkit info papers" in " ".join(help_text.split())


def test_a_command_registers_only_its_own_options():
    parser = build_parser("demo", lazy=True)
    subs = _subparsers(parser)
    assert "--quick" in subs["demo"].format_help()
    assert "--method" not in subs["refine"].format_help()  # listed by summary only
    assert set(subs) == {command_name(m) for m in SUBCOMMANDS}


def test_every_option_shows_its_default():
    """Every option with a default value says it in its help (one formatter for every command)."""
    missing = []
    for name, sub in _subparsers(build_parser()).items():
        assert sub.formatter_class is HelpFormatter, name
        for action in sub._actions:
            if (not action.option_strings or action.default in (None, False, argparse.SUPPRESS)
                    or isinstance(action, argparse._HelpAction)):
                continue
            text = sub._get_formatter()._expand_help(action) if action.help else ""
            if "default" not in text:
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []


def test_formatter_adds_the_default_once():
    p = argparse.ArgumentParser(formatter_class=HelpFormatter)
    p.add_argument("--size", type=int, default=16, help="candidates per batch")
    p.add_argument("--out", default="out/demo", help="output directory (default: out/demo)")
    p.add_argument("--flag", action="store_true", help="a switch")
    p.add_argument("--need", required=True, help="a must")
    text = " ".join(p.format_help().split())
    assert "candidates per batch (default: 16)" in text
    assert text.count("(default: out/demo)") == 1
    assert "a switch (default" not in text
    assert "a must (required)" in text


def test_info_papers_names_every_cited_paper(capsys):
    assert main(["info", "papers"]) == 0
    text = capsys.readouterr().out
    assert text == format_papers() + "\n"
    for p in PAPERS:
        assert p.number in text and p.authors in text and p.title in text
    # every paper the help texts cite by number is in the table
    helps = " ".join(sub.format_help() for sub in _subparsers(build_parser()).values())
    cited = set(re.findall(r"paper (\d{3})", helps))
    assert cited and cited <= {p.number for p in PAPERS}


def test_a_user_error_says_what_to_do(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert "contactkit view: error:" in err and "`contactkit view --help` lists every option" in err


def test_unknown_command_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["refin"])
    assert "invalid choice: 'refin'" in capsys.readouterr().err

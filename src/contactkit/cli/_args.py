"""Validated ``argparse`` types shared by every sub-command: bad arguments fail at parse time, in one line.

Each function takes the argument's text and returns the parsed value or raises
:class:`argparse.ArgumentTypeError`, which argparse reports as ``contactkit CMD: error: argument --x: <message>``
with exit code 2 — before any work starts. Output paths are checked here too, so a run never does minutes of
work and then fails to write (or exits 0 without writing):

* :func:`output_file`: not a directory, not a symlink, not a device or other special file, its folder exists
  and is writable (a missing folder is an error: a typo should not create a new tree);
* :func:`output_dir`: a directory or a path that can be created (its nearest existing ancestor is a writable
  directory), not a symlink, not a file.

Usage: ``p.add_argument("--seed", type=seed)``, ``p.add_argument("--batch-size", type=positive_int)``,
``p.add_argument("--n", type=bounded_int(1, 10**6))``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from contactkit.errors import OutputError

__all__ = [
    "MAX_COPIES",
    "MAX_COUNT",
    "MAX_GRASPS",
    "MAX_SEED",
    "MAX_WORKERS",
    "bounded_int",
    "device",
    "finite_float",
    "output_dir",
    "output_file",
    "positive_float",
    "positive_int",
    "seed",
    "workers",
]

#: Largest seed: numpy's and torch's generators take seeds in [0, 2**32) everywhere they are used.
MAX_SEED = 2**32 - 1
#: Sizes that cannot finish in a working day on a CPU are refused at the argument (``synth --n``,
#: ``perturb --copies``); larger sets are built by concatenating runs.
MAX_GRASPS = 100_000
MAX_COPIES = 1_000
#: Largest count, size or iteration number (a C int, so no library call overflows; far beyond any useful run).
MAX_COUNT = 2**31 - 1
#: Most worker processes a command accepts.
MAX_WORKERS = 256


def _int(text: str) -> int:
    try:
        value = float(text) if any(c in text for c in ".eE") else int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
        value = int(value)
    return value


def bounded_int(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type for an integer in ``[lo, hi]`` (``hi`` None: no upper bound)."""

    def parse(text: str) -> int:
        value = _int(text)
        if value < lo or (hi is not None and value > hi):
            want = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise argparse.ArgumentTypeError(f"expected an integer {want}, got {text}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


def positive_int(text: str) -> int:
    """An integer in ``[1, MAX_COUNT]`` (counts, sizes, iterations)."""
    return bounded_int(1, MAX_COUNT)(text)


def int_list(text: str) -> list[int]:
    """Comma-separated integers in ``[1, MAX_COUNT]``, e.g. ``2,2,2`` (blocks per ResNet stage)."""
    try:
        return [positive_int(part) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None


def workers(text: str) -> int:
    """A number of worker processes in ``[1, MAX_WORKERS]``."""
    return bounded_int(1, MAX_WORKERS)(text)


def seed(text: str) -> int:
    """A random seed in ``[0, 2**32 - 1]``."""
    return bounded_int(0, MAX_SEED)(text)


def finite_float(text: str) -> float:
    """A finite float."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0 (learning rates, thresholds)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def device(text: str) -> str:
    """A torch device that exists on this machine (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; expected cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return text
    if dev.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise argparse.ArgumentTypeError(
                f"device {text!r} requested, but this torch build ({torch.__version__}) is CPU-only; use --device cpu"
            )
        count = torch.cuda.device_count()
        if count == 0:
            raise argparse.ArgumentTypeError(f"device {text!r} requested, but no CUDA device is visible")
        if dev.index is not None and dev.index >= count:
            raise argparse.ArgumentTypeError(f"device {text!r} requested, but only {count} CUDA device(s) exist")
        return text
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(f"device {text!r} requested, but MPS is not available here")
        return text
    raise argparse.ArgumentTypeError(f"unsupported device {text!r}; expected cpu, cuda, cuda:N or mps")


def output_file(text: str) -> Path:
    """A path a file can be written to (see the module docstring); returned as a :class:`~pathlib.Path`."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file path, got an empty string")
    path = Path(text)
    try:
        from contactkit.io.atomic import check_output_path  # lazy: contactkit.io imports torch

        check_output_path(path)
        if not path.parent.exists():
            raise OutputError(f"folder {str(path.parent)!r} of {text!r} does not exist")
    except OutputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return path


def output_dir(text: str) -> Path:
    """A directory that exists and is writable, or can be created."""
    if not text:
        raise argparse.ArgumentTypeError("expected a directory path, got an empty string")
    path = Path(text)
    if path.is_symlink():
        raise argparse.ArgumentTypeError(f"{text!r} is a symbolic link; give the real directory")
    if path.exists():
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"directory {text!r} is not writable")
        return path
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot create {text!r}: {str(ancestor)!r} is not a writable folder")
    return path

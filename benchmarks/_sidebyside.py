"""Side-by-side timing shared by the benchmarks: contactkit and its reference, interleaved, in one run.

On a shared machine absolute times drift; timing both in alternation (A, B, A, B, ...) exposes them to the same
load, so the ratio of their medians is the figure to trust. Each row prints both medians, the ratio
(reference / contactkit, > 1 means contactkit is faster) and the machine's load average.

Clock: by default the process CPU time (``time.process_time``, all threads of this process), which a busy
machine does not inflate the way it inflates wall time when other processes take the cores; ``CLOCK=wall`` in
the environment switches to wall time (use it on an idle machine, or with several threads).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_naive(relpath: str) -> ModuleType:
    """Import a test module holding the naive reference functions (``tests/...py``) by path."""
    path = ROOT / relpath
    return load_module(path, f"_naive_{path.stem}")


def load_module(path: Path, name: str) -> ModuleType:
    """Import the Python file ``path`` as module ``name`` (registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def clock_fn(device: torch.device | None = None) -> Callable[[], float]:
    """The benchmark clock: process CPU time, or wall time with ``CLOCK=wall`` or on CUDA."""
    if os.environ.get("CLOCK", "cpu") == "wall" or (device is not None and device.type == "cuda"):
        return time.perf_counter
    return time.process_time


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1, device: torch.device | None = None
) -> dict[str, float]:
    """Median milliseconds per call of each function, timed in alternation.

    Args:
        fns: label -> zero-argument callable.
        repeats: timed rounds; each round calls every function once, in turn.
        warmup: untimed rounds first.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    clock = clock_fn(device)
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync(device)
            t0 = clock()
            fn()
            _sync(device)
            times[k].append((clock() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def header(title: str) -> None:
    """Print the run's context: torch version, threads, CPU, load average, date."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = platform.processor() or platform.machine()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {title}")
    clock = "wall" if os.environ.get("CLOCK", "cpu") == "wall" else "process CPU time"
    print(f"# {stamp}; torch {torch.__version__}; {torch.get_num_threads()} thread(s); {os.cpu_count()} CPUs "
          f"({cpu}); load average {load}; clock: {clock}")


def row(label: str, ours_ms: float, ref_ms: float, *, per: int = 1, ref_name: str = "reference") -> str:
    """One formatted line: contactkit and reference medians (ms per call and per item) and their ratio."""
    return (f"{label:<52} contactkit {ours_ms:9.2f} ms ({ours_ms / per:8.3f}/item)   {ref_name} "
            f"{ref_ms:9.2f} ms ({ref_ms / per:8.3f}/item)   ratio {ref_ms / ours_ms:6.2f}x")

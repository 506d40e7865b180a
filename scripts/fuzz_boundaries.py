"""Fuzz contactkit's public API and CLI with malformed inputs and print how each was answered.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/fuzz_boundaries.py --cases 2400 --seed 0

Classes (issue 13): malformed or implausible mesh files, malformed grasp files (header fields, arrays, values,
references, zero grasps, pickles), and command lines with one bad argument (counts, seeds, devices, output
paths, missing inputs). Prints the counts of clear errors, warnings, tracebacks, silent acceptances and hangs,
per class, and the details of every traceback, silent acceptance and hang. Exit code 1 if any.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))

from cases import OUTCOMES, classify, cli_cases, grasp_cases, mesh_cases  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2400, help="total number of cases (default 2400)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    rng = np.random.default_rng(args.seed)
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    problems: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        per = args.cases // 3
        streams = [
            mesh_cases(rng, folder, per),
            grasp_cases(rng, folder, per, hand),
            cli_cases(rng, folder, args.cases - 2 * per),
        ]
        for stream in streams:
            for case in stream:
                outcome, detail = classify(case, args.timeout)
                counts[case.kind][outcome] += 1
                if outcome in ("traceback", "silent", "hang"):
                    problems.append(f"[{outcome}] {case.kind}: {case.label}: {detail}")
    total = collections.Counter[str]()
    for c in counts.values():
        total.update(c)
    print(f"{sum(total.values())} malformed inputs in {time.perf_counter() - start:.0f} s (seed {args.seed})")
    print(f"{'class':8s} " + " ".join(f"{o:>10s}" for o in OUTCOMES))
    for kind, c in [*counts.items(), ("total", total)]:
        print(f"{kind:8s} " + " ".join(f"{c[o]:10d}" for o in OUTCOMES))
    for line in problems[:60]:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

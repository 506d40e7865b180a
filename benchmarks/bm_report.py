"""Cost of the report's pieces on this machine: sample building, HTML rendering, plots, snapshot.

Run: ``python benchmarks/bm_report.py`` (CPU; the report has no GPU path). Prints one line per step.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))

from report_fixtures import make_ground_truth, make_results  # noqa: E402

from contactkit.hands import load_hand  # noqa: E402
from contactkit.report.html import render_report  # noqa: E402
from contactkit.report.plots import standard_plots  # noqa: E402
from contactkit.report.scene import build_samples  # noqa: E402
from contactkit.report.snapshot import render_snapshot  # noqa: E402


def timed(label: str, fn, repeat: int = 3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<48s} {best * 1e3:9.1f} ms")
    return out


def main() -> None:
    torch.set_num_threads(1)
    hand = load_hand("openhand")
    gt = make_ground_truth(8)
    refined = {f"method{k}": gt for k in range(5)}
    print(f"{'step':<48s} {'best of 3':>12s}")
    samples = timed("build_samples: 1 grasp, 7 hand layers + object",
                    lambda: build_samples(gt, gt, refined, hand, [0]))
    many = timed("build_samples: 8 grasps, 7 hand layers + object",
                 lambda: build_samples(gt, gt, refined, hand, list(range(8))), repeat=1)
    results = make_results()
    plots = timed("standard_plots (3 SVG)", lambda: standard_plots(results))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.html"
        timed("render_report: 8 samples + table + plots", lambda: render_report(many, results, plots, path))
        print(f"{'report size':<48s} {path.stat().st_size / 1e6:9.2f} MB")
    timed("render_snapshot 800 px", lambda: render_snapshot(samples[0], size_px=800))


if __name__ == "__main__":
    main()

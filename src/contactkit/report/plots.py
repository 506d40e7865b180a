"""Plots of a run's :class:`~contactkit.report.results.Results`, as PNG bytes (matplotlib, Agg backend).

- :func:`plot_metric_distributions`: per-sample distribution of each metric, one box per row (method);
- :func:`plot_before_after`: a metric per grasp before refinement (x) against after it (y), per method;
- :func:`plot_time_per_grasp`: mean wall time per grasp of each method.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from contactkit.report.results import Results
from contactkit.report.tables import header_label


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure_to_png(fig: Any, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def plot_metric_distributions(results: Results, metrics: Sequence[str] | None = None) -> bytes:
    """Box plots of the per-sample values of each metric, one box per row that measured it.

    Args:
        results: the run's results.
        metrics: metric names to plot (default: every metric column).

    Returns:
        PNG bytes.
    """
    plt = _pyplot()
    names = list(metrics) if metrics is not None else list(results.metric_names)
    ncols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(names):
            ax.axis("off")
            continue
        m = names[k]
        labels, data = [], []
        for row in results.rows:
            s = row.metrics.get(m)
            if s is None:
                continue
            vals = _finite(s.values)
            if vals.size:
                labels.append(row.method)
                data.append(vals)
        ax.set_title(header_label(m, results.units.get(m, "")), fontsize=10)
        if data:
            ax.boxplot(data, tick_labels=labels, showmeans=True)
            ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        else:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return figure_to_png(fig)


def plot_before_after(results: Results, metric: str = "mpjpe_mm", before: str = "perturbed",
                      exclude: Sequence[str] = ()) -> bytes:
    """Scatter of ``metric`` per grasp before refinement (row ``before``) against after, for every method.

    Points below the diagonal improved. Rows named in ``exclude`` and rows whose per-sample values do not align
    with ``before`` (different counts) are skipped.

    Returns:
        PNG bytes.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    unit = results.units.get(metric, "")
    base = next((r for r in results.rows if r.method == before), None)
    x = np.asarray(base.metrics[metric].values, dtype=np.float64) if base and metric in base.metrics else None
    lo, hi = math.inf, -math.inf
    if x is not None:
        for row in results.rows:
            if row.method == before or row.method in exclude or metric not in row.metrics:
                continue
            y = np.asarray(row.metrics[metric].values, dtype=np.float64)
            if y.shape != x.shape:
                continue
            ok = np.isfinite(x) & np.isfinite(y)
            if not ok.any():
                continue
            ax.scatter(x[ok], y[ok], s=18, alpha=0.75, label=row.method)
            lo, hi = min(lo, x[ok].min(), y[ok].min()), max(hi, x[ok].max(), y[ok].max())
    if math.isfinite(lo):
        pad = 0.05 * (hi - lo + 1e-9)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, ls="--", label="no change")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"{metric} before ({before}) [{unit}]")
    ax.set_ylabel(f"{metric} after refinement [{unit}]")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_to_png(fig)


def plot_time_per_grasp(results: Results) -> bytes:
    """Bar chart of each method's mean wall time per grasp (seconds).

    Returns:
        PNG bytes.
    """
    plt = _pyplot()
    rows = [r for r in results.rows if r.time_per_grasp_s is not None and math.isfinite(r.time_per_grasp_s)]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.0 + 0.9 * len(rows)), 3.4))
    if rows:
        ax.bar([r.method for r in rows], [r.time_per_grasp_s for r in rows], color="#5a8ad8")
        for i, r in enumerate(rows):
            ax.text(i, r.time_per_grasp_s, f"{r.time_per_grasp_s:.3g}", ha="center", va="bottom", fontsize=8)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    else:
        ax.text(0.5, 0.5, "no timings", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("time per grasp [s]")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return figure_to_png(fig)


def standard_plots(results: Results, before: str = "perturbed", exclude: Sequence[str] = ()) -> dict[str, bytes]:
    """The report's plots: caption -> PNG bytes (``exclude``: rows left out of the before/after plot)."""
    plots = {"Metric distributions per method": plot_metric_distributions(results)}
    if "mpjpe_mm" in results.metric_names:
        plots["MPJPE per grasp, before vs after refinement"] = plot_before_after(results, "mpjpe_mm", before,
                                                                                 exclude)
    plots["Time per grasp"] = plot_time_per_grasp(results)
    return plots

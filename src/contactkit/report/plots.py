"""Plots of a run's :class:`~contactkit.report.results.Results`, as SVG text (matplotlib, Agg backend).

- :func:`plot_metric_distributions`: per-sample distribution of each metric, one horizontal box per row;
- :func:`plot_before_after`: a metric per grasp before refinement (x) against after it (y), per method;
- :func:`plot_time_per_grasp`: mean wall time per grasp of each method.

Every plot colours a row with the colour the report's tables and 3D view use (``colors``, from
:func:`contactkit.report.colors.row_colors`). SVG keeps text as text, so the report shows it sharp at any
width; the figures are sized for the report's column (about 900 px), with 10-11 pt text.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from contactkit.report.colors import hex_rgb, row_colors
from contactkit.report.results import MethodResult, Results
from contactkit.report.tables import metric_header

Colors = Mapping[str, tuple[float, float, float]]

#: Width of every plot in inches (the report shows it at about 96 px per inch).
PLOT_WIDTH_IN = 9.0


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure_to_svg(fig: Any) -> str:
    """Render a matplotlib figure to SVG text (text kept as text, no timestamp) and close it."""
    plt = _pyplot()
    buf = io.StringIO()
    try:
        with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "contactkit"}):
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    return buf.getvalue()


def figure_to_png(fig: Any, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (the snapshot's format)."""
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


def _colors_of(results: Results, colors: Colors | None) -> Colors:
    return colors if colors is not None else row_colors([r.method for r in results.rows if not r.error])


def plot_metric_distributions(results: Results, colors: Colors | None = None,
                              metrics: Sequence[str] | None = None) -> str:
    """Horizontal box plots of the per-sample values of each metric, one box per row that measured it (rows
    top to bottom in table order, a dashed rule above the oracle rows; the mean as a white diamond).

    Args:
        results: the run's results.
        colors: row label -> RGB in [0, 1] (default: :func:`row_colors` of the rows).
        metrics: metric names to plot (default: every metric column).

    Returns:
        SVG text.
    """
    plt = _pyplot()
    colors = _colors_of(results, colors)
    names = list(metrics) if metrics is not None else list(results.metric_names)
    rows: list[MethodResult] = [r for r in results.rows if any(m in r.metrics for m in names)]
    ncols = 2 if len(names) > 1 else 1
    nrows = max(1, math.ceil(len(names) / ncols))
    height = max(2.2, 0.32 * len(rows) + 1.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PLOT_WIDTH_IN, height * nrows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(names):
            ax.axis("off")
            continue
        m = names[k]
        labels, data, cols = [], [], []
        for row in rows:
            s = row.metrics.get(m)
            vals = _finite(s.values) if s is not None else np.zeros(0)
            labels.append(row.method)
            data.append(vals if vals.size else np.array([np.nan]))
            cols.append(colors.get(row.method, (0.5, 0.5, 0.5)))
        ax.set_title(metric_header(m, results.units.get(m, "")), fontsize=11)
        pos = np.arange(len(labels))[::-1]
        bp = ax.boxplot(data, positions=pos, orientation="horizontal", widths=0.6, patch_artist=True, showmeans=True,
                        meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black",
                                   "markersize": 4},
                        medianprops={"color": "black"}, flierprops={"markersize": 3})
        for patch, c in zip(bp["boxes"], cols, strict=True):
            patch.set_facecolor(hex_rgb(c))
            patch.set_alpha(0.85)
        ax.set_yticks(pos)
        ax.set_yticklabels(labels if k % ncols == 0 else [""] * len(labels), fontsize=10)
        first_oracle = next((j for j, row in enumerate(rows) if row.oracle), None)
        if first_oracle:  # a dashed rule above the upper-bound rows
            ax.axhline(pos[first_oracle] + 0.5, color="0.4", lw=0.8, ls="--")
        ax.tick_params(axis="x", labelsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return figure_to_svg(fig)


def plot_before_after(results: Results, metric: str = "mpjpe_mm", before: str = "perturbed",
                      exclude: Sequence[str] = (), colors: Colors | None = None) -> str:
    """Scatter of ``metric`` per grasp before refinement (row ``before``) against after, for every method.

    Points below the diagonal improved. Rows named in ``exclude`` and rows whose per-sample values do not align
    with ``before`` (different counts) are skipped; oracle rows are drawn hollow.

    Returns:
        SVG text.
    """
    plt = _pyplot()
    colors = _colors_of(results, colors)
    fig, ax = plt.subplots(figsize=(PLOT_WIDTH_IN * 0.75, PLOT_WIDTH_IN * 0.5))
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
            c = hex_rgb(colors.get(row.method, (0.5, 0.5, 0.5)))
            style = {"facecolors": "none", "edgecolors": c} if row.oracle else {"color": c}
            ax.scatter(x[ok], y[ok], s=30, alpha=0.85, label=row.method, linewidths=1.2, **style)
            lo, hi = min(lo, x[ok].min(), y[ok].min()), max(hi, x[ok].max(), y[ok].max())
    label = metric_header(metric, unit)
    if math.isfinite(lo):
        pad = 0.05 * (hi - lo + 1e-9)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, ls="--", label="no change")
        ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"{label}, before ({before})", fontsize=10)
    ax.set_ylabel(f"{label}, after refinement", fontsize=10)
    ax.tick_params(labelsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_to_svg(fig)


def plot_time_per_grasp(results: Results, colors: Colors | None = None) -> str:
    """Horizontal bars of each method's mean wall time per grasp (seconds), in table order.

    Returns:
        SVG text.
    """
    plt = _pyplot()
    colors = _colors_of(results, colors)
    rows = [r for r in results.rows if r.time_per_grasp_s is not None and math.isfinite(r.time_per_grasp_s)]
    fig, ax = plt.subplots(figsize=(PLOT_WIDTH_IN * 0.75, max(1.8, 0.32 * len(rows) + 0.9)))
    if rows:
        pos = np.arange(len(rows))[::-1]
        times = [float(r.time_per_grasp_s or 0.0) for r in rows]
        ax.barh(pos, times, color=[hex_rgb(colors.get(r.method, (0.5, 0.5, 0.5))) for r in rows], height=0.6)
        for p, t in zip(pos, times, strict=True):
            ax.text(t, p, f" {t:.3g} s", va="center", fontsize=9)
        ax.set_yticks(pos)
        ax.set_yticklabels([r.method for r in rows], fontsize=10)
        ax.set_xlim(0, max(times) * 1.18)
    else:
        ax.text(0.5, 0.5, "no timings", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("time per grasp [s] ↓", fontsize=10)
    ax.tick_params(axis="x", labelsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return figure_to_svg(fig)


#: One-line reading guide of each standard plot, by caption.
PLOT_GUIDES: dict[str, str] = {
    "Metric distributions per row": "One box per row: the box spans the middle half of the grasps, the line is "
    "the median, the diamond the mean; compare each method with 'perturbed' (its input). Rows below the dashed "
    "rule are oracle upper bounds.",
    "MPJPE per grasp, before vs after refinement": "One point per grasp: below the dashed line the method "
    "moved the hand closer to the ground truth; hollow points are oracle rows.",
    "Time per grasp": "Wall time of each method divided by the number of grasps (batched, this machine).",
}


def standard_plots(results: Results, colors: Colors | None = None, before: str = "perturbed",
                   exclude: Sequence[str] = ()) -> dict[str, str]:
    """The report's plots: caption -> SVG text (``exclude``: rows left out of the before/after plot).

    The captions are the keys of :data:`PLOT_GUIDES`."""
    colors = _colors_of(results, colors)
    plots = {"Metric distributions per row": plot_metric_distributions(results, colors)}
    if "mpjpe_mm" in results.metric_names:
        plots["MPJPE per grasp, before vs after refinement"] = plot_before_after(results, "mpjpe_mm", before,
                                                                                 exclude, colors)
    plots["Time per grasp"] = plot_time_per_grasp(results, colors)
    return plots

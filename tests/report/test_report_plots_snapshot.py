"""Plots and snapshots are valid PNG images showing the data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from contactkit.errors import ShapeError
from contactkit.report.colors import (
    HEAT_STOPS,
    METHOD_PALETTE,
    PENETRATION_COLOR,
    ROLE_COLORS,
    heat_colors,
    hex_rgb,
    row_colors,
    vertex_colors,
)
from contactkit.report.plots import plot_before_after, plot_time_per_grasp, standard_plots
from contactkit.report.snapshot import render_snapshot


def _img(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_heat_map_hits_its_stops_and_clips():
    xs = np.array([s[0] for s in HEAT_STOPS])
    np.testing.assert_allclose(heat_colors(xs), np.array([s[1] for s in HEAT_STOPS]))
    np.testing.assert_allclose(heat_colors(np.array([-1.0, 2.0])), heat_colors(np.array([0.0, 1.0])))
    c = vertex_colors(3, (0.1, 0.2, 0.3), np.array([0.0, 0.25, 1.0]))
    np.testing.assert_allclose(c[0], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(c[2], HEAT_STOPS[-1][1])
    with pytest.raises(ShapeError, match=r"contact: expected shape \(3,\)"):
        vertex_colors(3, (0, 0, 0), np.zeros(2))


def test_plots_are_svg_in_the_rows_colours(results):
    plots = standard_plots(results)
    assert len(plots) == 3
    colors = row_colors([r.method for r in results.rows if not r.error])
    for caption, svg in plots.items():
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg, caption
        assert "contactopt (oracle)" in svg  # text kept as text: sharp and readable at any size
    dist = plots["Metric distributions per row"]
    for method, rgb in colors.items():
        assert hex_rgb(rgb) in dist, method
    assert "MPJPE [mm] ↓" in dist and "contact F1 [%] ↑" in dist


def test_before_after_skips_unaligned_rows(results):
    a = plot_before_after(results)
    assert ">contactopt<" in a.replace(" ", "")
    results.rows[1].metrics["mpjpe_mm"].values = results.rows[1].metrics["mpjpe_mm"].values[:2]
    b = plot_before_after(results)
    assert ">contactopt<" not in b.replace(" ", "") and "contactopt (oracle)" in b
    assert "0.123" in plot_time_per_grasp(results)


def test_no_two_rows_share_a_colour():
    """Method colours are distinct from each other and from the baselines, markers and heat map."""
    labels = [f"method{k}" for k in range(30)] + ["ground truth", "perturbed"]
    colors = row_colors(labels)
    rgb = np.round(np.array(list(colors.values())) * 255)
    assert len({tuple(c) for c in rgb}) == len(labels)
    fixed = [*METHOD_PALETTE, *ROLE_COLORS.values(), PENETRATION_COLOR, *(c for _, c in HEAT_STOPS)]
    pal = np.round(np.array(fixed) * 255)
    d = np.linalg.norm(pal[:, None] - pal[None], axis=-1)
    n = len(METHOD_PALETTE)
    np.fill_diagonal(d, np.inf)
    assert d[:n].min() >= 50, "a palette colour is too close to another colour of the report"
    assert colors["ground truth"] == ROLE_COLORS["ground_truth"] and colors["perturbed"] == ROLE_COLORS["noisy"]


def test_snapshot_marks_penetration(samples, tmp_path):
    s = samples[0]
    pen = np.round(np.array(PENETRATION_COLOR) * 255).astype(int)
    with_marks = _img(render_snapshot(s, tmp_path / "a.png", size_px=300))
    without = _img(render_snapshot(s, size_px=300, penetration=False))
    assert (tmp_path / "a.png").exists()

    def count(img):
        return int((np.abs(img - pen).max(axis=-1) < 30).sum())

    assert count(with_marks) > 10
    assert count(without) == 0
    with pytest.raises(ShapeError, match="layers: unknown layer names"):
        render_snapshot(s, layers=["nope"])
    with pytest.raises(ShapeError, match="object_alpha"):
        render_snapshot(s, object_alpha=0.0)

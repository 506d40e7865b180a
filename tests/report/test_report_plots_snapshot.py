"""Plots and snapshots are valid PNG images showing the data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from contactkit.errors import ShapeError
from contactkit.report.colors import HEAT_STOPS, PENETRATION_COLOR, heat_colors, vertex_colors
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


def test_plots_are_png(results):
    plots = standard_plots(results)
    assert len(plots) == 3
    for png in plots.values():
        img = _img(png)
        assert img.shape[0] > 100 and img.shape[1] > 100
        assert img.std() > 5  # not a blank image


def test_before_after_skips_unaligned_rows(results):
    a = _img(plot_before_after(results))
    results.rows[1].metrics["mpjpe_mm"].values = results.rows[1].metrics["mpjpe_mm"].values[:2]
    b = _img(plot_before_after(results))
    assert a.shape != b.shape or np.abs(a - b).sum() > 0
    assert _img(plot_time_per_grasp(results)).std() > 5


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

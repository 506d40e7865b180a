"""Open the report in headless Chromium: the WebGL view renders and the page logs no errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contactkit.report.colors import PENETRATION_COLOR
from contactkit.report.html import BACKGROUND, render_report


def _canvas_pixels(run, inset: int = 4) -> np.ndarray:
    rect = run.attr("ck-canvas", "data-rect")
    assert rect is not None, "viewer did not record the canvas rectangle (did it draw?)"
    x, y, w, h = (int(v) for v in rect.split(","))
    assert w > 100 and h > 100
    return run.screenshot[y + inset:y + h - inset, x + inset:x + w - inset].astype(np.int32)


def test_report_renders_in_headless_chromium(browser, samples, results, tmp_path: Path):
    page = render_report(samples, results, {}, tmp_path / "report.html")
    run = browser.open(page)
    assert run.uncaught() == []
    assert run.attr("ck-status", "data-state") == "ok", run.dom[:2000]
    assert run.attr("ck-status", "data-errors") == "0"
    assert int(run.attr("ck-canvas", "data-frames") or 0) >= 1
    px = _canvas_pixels(run)
    bg = np.round(np.array(BACKGROUND) * 255).astype(np.int32)
    drawn = np.abs(px - bg).max(axis=-1) > 12
    assert drawn.mean() > 0.02, f"canvas is blank: {drawn.mean():.4f} of pixels differ from the background"
    # several distinct colours (object, hands, heat map), not a flat fill
    colours = np.unique((px[drawn] // 16).reshape(-1, 3), axis=0)
    assert len(colours) > 20
    # the penetrating vertices of the refined hand are marked
    pen = np.round(np.array(PENETRATION_COLOR) * 255).astype(np.int32)
    assert (np.abs(px - pen).max(axis=-1) < 40).sum() > 20


def test_browser_harness_detects_a_broken_page(browser, samples, tmp_path: Path):
    """The harness must fail on a page whose viewer throws (here: corrupted mesh payload)."""
    page = render_report(samples, None, {}, tmp_path / "report.html")
    text = page.read_text()
    start = text.index("id='ck-data'>") + len("id='ck-data'>")
    broken = tmp_path / "broken.html"
    broken.write_text(text[:start] + "{not json" + text[start:])
    run = browser.open(broken)
    assert run.attr("ck-status", "data-state") == "error"
    assert run.attr("ck-status", "data-errors") != "0"
    assert run.attr("ck-canvas", "data-rect") is None  # nothing was drawn


def test_every_method_has_its_own_colour_in_the_rendered_page(browser, tmp_path: Path):
    """In the page as Chromium built it, the layer swatches of the 3D view and the table swatches give each
    row one colour, the same in both places, and no two rows share one."""
    import re

    from report_fixtures import make_results, make_samples

    from contactkit.report.colors import row_colors
    from contactkit.report.data import MeshLayer, ReportSample

    results = make_results()
    colors = row_colors([r.method for r in results.rows if not r.error])
    base = make_samples(1)[0]
    hand = base.layers[3]
    layers = [base.layers[0], base.layers[1], base.layers[2]]
    layers += [MeshLayer(name, "refined", hand.vertices, hand.faces, color=colors[name], visible=False)
               for name in ("contactopt", "contactopt (oracle)")]
    sample = ReportSample("sphere #0", layers)
    page = render_report([sample], results, {}, tmp_path / "report.html", colors=colors)
    run = browser.open(page)
    assert run.uncaught() == [] and run.attr("ck-status", "data-errors") == "0"
    assert [ln for ln in run.console if "error" in ln.lower()] == []
    # the viewer's layer list, as the script built it
    side = run.dom[run.dom.index('id="ck-layers"'):run.dom.index('id="ck-contact"')]
    layer_swatches = {name: rgb for rgb, name in re.findall(r'background: (rgb\([^)]*\));?"></span> ([^<]+?)<',
                                                            side)}
    table = dict(re.findall(r'data-method="([^"]+)" style="background: (rgb\([^)]*\))"', run.dom))
    methods = [m for m in table if m not in ("ground truth", "perturbed")]
    assert sorted(methods) == ["contactopt", "contactopt (oracle)"]
    assert len(set(table.values())) == len(table), table
    for m in methods:
        assert layer_swatches[m].replace(" ", "") == table[m].replace(" ", ""), m


def test_translucent_object_has_no_triangle_artefacts(browser, tmp_path: Path):
    """A translucent sphere alone: only its nearest surface is blended, so the image inside its outline is
    smooth. Blending its back faces in triangle order (the old artefacts) makes jumps of tens of grey levels
    between neighbouring pixels along triangle edges."""
    import trimesh

    from contactkit.report.data import MeshLayer, ReportSample

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.04)
    sample = ReportSample("sphere", [MeshLayer("object", "object", sphere.vertices, sphere.faces)])
    run = browser.open(render_report([sample], None, {}, tmp_path / "report.html"))
    assert run.attr("ck-status", "data-state") == "ok"
    px = _canvas_pixels(run)
    bg = np.round(np.array(BACKGROUND) * 255).astype(np.int32)
    drawn = np.abs(px - bg).max(axis=-1) > 12
    assert drawn.mean() > 0.02
    # the inside of the disc: drawn pixels whose 5x5 neighbourhood is all drawn (away from the silhouette)
    from numpy.lib.stride_tricks import sliding_window_view

    inner = np.zeros_like(drawn)
    inner[2:-2, 2:-2] = sliding_window_view(drawn, (5, 5)).all(axis=(-1, -2))
    lum = px.mean(axis=-1)
    jump_x = np.abs(np.diff(lum, axis=1))[inner[:, 1:] & inner[:, :-1]]
    jump_y = np.abs(np.diff(lum, axis=0))[inner[1:] & inner[:-1]]
    jumps = np.concatenate([jump_x, jump_y])
    assert jumps.size > 1000
    assert np.quantile(jumps, 0.999) < 10, f"neighbouring pixels jump by up to {jumps.max():.0f} grey levels"

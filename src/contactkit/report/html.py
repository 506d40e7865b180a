"""A self-contained, offline HTML report: interactive WebGL view per sample, results table, plots.

The page embeds everything it needs: the viewer script (``report/static/viewer.js``, written for contactkit,
no libraries), the meshes as base64 little-endian arrays inside a JSON block, and the plots as base64 SVG data
URIs. It loads nothing from the network. Every section opens with a one-line "how to read this".
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from contactkit import __version__
from contactkit.errors import ShapeError
from contactkit.io.atomic import atomic_write_text
from contactkit.report.colors import PENETRATION_COLOR, css_gradient, css_rgb, row_colors, to_uint8, vertex_colors
from contactkit.report.data import ReportSample
from contactkit.report.results import Results
from contactkit.report.tables import column_decimals, metric_header, table_blocks, unavailable_lines

#: Viewer background RGB in [0, 1] (the browser test compares canvas pixels against it).
BACKGROUND: tuple[float, float, float] = (0.97, 0.97, 0.98)


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def viewer_script() -> str:
    """The viewer's JavaScript source (package data ``contactkit/report/static/viewer.js``)."""
    return resources.files("contactkit.report").joinpath("static/viewer.js").read_text(encoding="utf-8")


def build_payload(samples: Sequence[ReportSample]) -> dict[str, Any]:
    """The JSON object the viewer reads: samples, layers and shared face arrays.

    Vertices are float32 little-endian (metres), faces uint32, colours uint8 RGB per vertex (plain and with
    the contact heat map), penetrating vertices as uint32 indices. Identical face arrays (e.g. the hand's
    topology across layers) are stored once.
    """
    if not samples:
        raise ShapeError("samples: expected at least one ReportSample")
    faces: dict[str, str] = {}
    out_samples = []
    for s in samples:
        layers = []
        for layer in s.layers:
            f = layer.faces.astype("<u4")
            key = hashlib.sha256(f.tobytes()).hexdigest()[:16]
            faces.setdefault(key, _b64(f))
            nv = layer.vertices.shape[0]
            plain = to_uint8(vertex_colors(nv, layer.base_color))
            entry: dict[str, Any] = {
                "name": layer.name,
                "role": layer.role,
                "visible": bool(layer.visible),
                "vertices": _b64(layer.vertices.astype("<f4")),
                "faces": key,
                "colors": _b64(plain),
                "swatch": [int(c) for c in plain[0]],
                "detail": layer.detail or "",
            }
            if layer.contact is not None:
                entry["contact_colors"] = _b64(to_uint8(vertex_colors(nv, layer.base_color, layer.contact)))
            if layer.penetrating is not None:
                entry["penetrating"] = _b64(np.flatnonzero(layer.penetrating).astype("<u4"))
            layers.append(entry)
        names: list[str] = []
        for vals in s.metrics.values():
            for k in vals:
                if k not in names:
                    names.append(k)
        out_samples.append({
            "title": s.title,
            "layers": layers,
            "metrics": {k: {m: (None if not np.isfinite(v) else float(v)) for m, v in d.items()}
                        for k, d in s.metrics.items()},
            "metric_names": names,
            "metric_labels": [metric_header(n, s.units.get(n, "")) for n in names],
            "metric_decimals": [column_decimals(d.get(n) for d in s.metrics.values()) for n in names],
            "units": dict(s.units),
        })
    return {
        "version": 1,
        "background": list(BACKGROUND),
        "penetration_color": list(PENETRATION_COLOR),
        "faces": faces,
        "samples": out_samples,
    }


def _results_table_html(results: Results, colors: Mapping[str, tuple[float, float, float]]) -> str:
    """One heading, reading guide and table per block of :func:`table_blocks`; a colour swatch per row (the
    row's colour in the 3D view and the plots); the reasons of the rows that are not available."""
    parts = []
    for block in table_blocks(results):
        parts.append(f"<h3 class='ck-block' data-block='{html.escape(block.key)}'>{html.escape(block.title)}</h3>")
        parts.append(f"<p class='ck-how'>{html.escape(block.how_to_read)} ↓ lower is better, ↑ higher is "
                     "better.</p>")
        rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.header) + "</tr>"]
        for row, cells in zip(block.rows, block.body, strict=True):
            color = colors.get(row.method)
            swatch = (f"<span class='ck-swatch' data-method='{html.escape(row.method)}' "
                      f"style='background: {css_rgb(color)}'></span> " if color and not row.error else "")
            cls = " class='ck-oracle'" if row.oracle else (" class='ck-na'" if row.error else "")
            tds = [f"<td>{swatch}{html.escape(cells[0])}</td>"]
            tds += [f"<td class='num'>{html.escape(c)}</td>" for c in cells[1:-1]]
            tds.append(f"<td class='ck-src'>{html.escape(cells[-1])}</td>")
            rows.append(f"<tr{cls}>" + "".join(tds) + "</tr>")
        parts.append(f"<table class='ck-table' data-block='{html.escape(block.key)}'>{''.join(rows)}</table>")
    parts += [f"<p class='warn'>{html.escape(line)}</p>" for line in unavailable_lines(results)]
    return "".join(parts)


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0; color: #222;
  background: #fff; }
header { padding: 12px 20px; border-bottom: 1px solid #ddd; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; color: #555; font-size: 13px; }
main { padding: 12px 20px; }
#ck-viewer { display: flex; gap: 12px; align-items: stretch; }
#ck-side { width: 250px; flex: none; font-size: 13px; }
#ck-side h3 { font-size: 13px; margin: 12px 0 4px; }
#ck-canvas { flex: 1; min-width: 300px; height: 560px; border: 1px solid #ccc; border-radius: 4px;
  touch-action: none; cursor: grab; display: block; }
.ck-row { display: block; margin: 2px 0; white-space: nowrap; }
.ck-swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: middle;
  margin-left: 4px; border: 1px solid #999; }
.ck-pen { color: #a0a; font-size: 11px; }
#ck-status { font-size: 12px; color: #666; margin-top: 8px; }
#ck-status[data-state=error] { color: #b00; font-weight: bold; }
.ck-legend { height: 10px; border: 1px solid #999; margin: 2px 0; }
.ck-legend-labels { display: flex; justify-content: space-between; font-size: 11px; color: #555; }
table.ck-table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.ck-table th, table.ck-table td { border: 1px solid #ddd; padding: 3px 6px; white-space: nowrap; }
#ck-results { overflow-x: auto; }
table.ck-table th { background: #f3f3f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ck-plots figure { margin: 0 0 20px; max-width: 900px; }
.ck-plots img { width: 100%; height: auto; border: 1px solid #eee; }
.ck-plots figcaption { font-size: 13px; color: #444; }
.ck-how { color: #555; font-size: 13px; margin: 2px 0 8px; max-width: 1000px; }
h2 { font-size: 17px; margin: 18px 0 4px; }
h3.ck-block { font-size: 14px; margin: 14px 0 2px; }
tr.ck-oracle td:first-child { font-style: italic; }
tr.ck-na td { color: #999; }
td.ck-src { font-size: 12px; color: #555; }
.ck-sub { font-size: 11px; color: #555; margin: 8px 0 2px; text-transform: uppercase; letter-spacing: 0.04em; }
.ck-detail { color: #777; font-size: 11px; white-space: normal; display: block; margin-left: 20px; }
.warn { color: #a60; font-size: 13px; }
pre { background: #f6f6f8; padding: 8px; font-size: 12px; overflow-x: auto; }
"""


#: The "how to read this" line of each section.
SECTION_GUIDES: dict[str, str] = {
    "view": "Pick a grasp; tick layers to compare a method's hand (its colour is the same in the tables and "
            "plots) with the noisy input and the ground truth. Warm colours are contact, magenta dots are hand "
            "points inside the object. Drag to rotate, shift-drag to pan, wheel to zoom.",
    "sample": "The metrics of the grasp shown above, one row per layer (↓ lower is better, ↑ higher is better).",
    "results": "Mean ± standard deviation over all grasps. Read the first table for what each method achieves "
               "without ground truth; the second, if present, only as an upper bound.",
    "plots": "The same numbers per grasp; colours are the rows' colours in the tables and the 3D view.",
    "notes": "How the numbers were measured.",
}


def _guide(key: str) -> str:
    return f"<p class='ck-how'>{html.escape(SECTION_GUIDES[key])}</p>"


def render_report_html(
    samples: Sequence[ReportSample],
    results: Results | None = None,
    plots: Mapping[str, str] | None = None,
    *,
    title: str = "contactkit report",
    subtitle: str = "",
    notes: Sequence[str] = (),
    colors: Mapping[str, tuple[float, float, float]] | None = None,
) -> str:
    """Build the report page as a string (see :func:`render_report`)."""
    from contactkit.report.plots import PLOT_GUIDES

    payload = json.dumps(build_payload(samples), allow_nan=False, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")  # never close the script element early
    script = viewer_script().replace("</script", "<\\/script")
    parts: list[str] = []
    parts.append("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    parts.append("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    parts.append(f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>")
    parts.append(f"<header><h1>{html.escape(title)}</h1>")
    sub = subtitle or f"contactkit {__version__}"
    parts.append(f"<p>{html.escape(sub)}</p></header><main>")
    parts.append("<section id='ck-view-section'><h2>3D view</h2>" + _guide("view")
                 + "<div id='ck-viewer'><div id='ck-side'>")
    parts.append("<label for='ck-sample'><b>Sample</b></label><br><select id='ck-sample'></select>")
    parts.append("<h3>Layers</h3><div id='ck-layers'></div>")
    parts.append("<h3>Display</h3>")
    parts.append("<label class='ck-row'><input type='checkbox' id='ck-contact' checked> "
                 "contact heat map</label>")
    parts.append("<label class='ck-row'><input type='checkbox' id='ck-penetration' checked> "
                 "penetrating vertices <span class='ck-swatch' style='background: rgb("
                 + ",".join(str(round(c * 255)) for c in PENETRATION_COLOR) + ")'></span></label>")
    parts.append("<label class='ck-row'>object opacity <input type='range' id='ck-alpha' min='0.1' max='1' "
                 "step='0.05' value='0.7'></label>")
    parts.append(f"<div class='ck-legend' style='background: {css_gradient()}'></div>"
                 "<div class='ck-legend-labels'><span>contact 0</span><span>1</span></div>")
    parts.append("<button id='ck-reset' type='button'>reset view</button>")
    parts.append("<p style='font-size:11px;color:#777'>"
                 "drag: rotate · shift/right-drag: pan · wheel: zoom</p>")
    parts.append("<div id='ck-status' data-state='loading'>loading viewer…</div>")
    parts.append("</div><canvas id='ck-canvas' width='800' height='560'></canvas></div>")
    parts.append("<h3 style='font-size:14px'>This sample, per layer</h3>" + _guide("sample")
                 + "<table class='ck-table' id='ck-sample-metrics'></table></section>")
    if results is not None:
        row_cols = dict(colors) if colors is not None else row_colors([r.method for r in results.rows if not r.error])
        parts.append("<section id='ck-results'><h2>Results</h2>" + _guide("results"))
        parts.append(_results_table_html(results, row_cols))
        parts.append("</section>")
    if plots:
        parts.append("<section id='ck-plots'><h2>Plots</h2>" + _guide("plots") + "<div class='ck-plots'>")
        for caption, svg in plots.items():
            data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
            guide = PLOT_GUIDES.get(caption, "")
            parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/svg+xml;base64,{data}'>"
                         f"<figcaption><b>{html.escape(caption)}.</b> {html.escape(guide)}</figcaption></figure>")
        parts.append("</div></section>")
    if notes:
        parts.append("<section><h2>Notes</h2>" + _guide("notes") + "".join(f"<p>{html.escape(n)}</p>" for n in notes)
                     + "</section>")
    if results is not None and (results.config or results.environment):
        cfg = json.dumps({"config": results.config, "environment": results.environment}, indent=2,
                         default=str)
        parts.append(f"<section><h2>Configuration</h2><pre>{html.escape(cfg)}</pre></section>")
    parts.append("</main>")
    parts.append(f"<script type='application/json' id='ck-data'>{payload}</script>")
    parts.append(f"<script>{script}</script>")
    parts.append("</body></html>\n")
    return "".join(parts)


def render_report(
    samples: Sequence[ReportSample],
    results: Results | None,
    plots: Mapping[str, str] | None,
    out_path: str | Path,
    *,
    title: str = "contactkit report",
    subtitle: str = "",
    notes: Sequence[str] = (),
    colors: Mapping[str, tuple[float, float, float]] | None = None,
) -> Path:
    """Write the self-contained report to ``out_path`` (atomically) and return the path.

    Args:
        samples: grasps to show in the 3D view (at least one).
        results: the run's results (table of method × metrics × time), or ``None``.
        plots: caption -> SVG text, embedded as data URIs.
        out_path: destination ``.html`` file; its directory is created.
        title, subtitle, notes: page text.
        colors: row label -> RGB in [0, 1] of the tables' swatches (default: :func:`row_colors` of the rows);
            pass the colours the samples' layers and the plots used.
    """
    text = render_report_html(samples, results, plots, title=title, subtitle=subtitle, notes=notes,
                              colors=colors)
    path = Path(out_path)
    atomic_write_text(path, text)
    return path

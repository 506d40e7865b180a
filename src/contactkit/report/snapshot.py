"""PNG snapshots of a grasp for papers and slides (matplotlib 3D, no display or browser needed).

The colours are the report viewer's (:mod:`contactkit.report.colors`): base colour per layer, contact as a
heat map, penetrating vertices marked. All triangles of all layers go into one collection, so matplotlib's
painter's algorithm orders them by depth across layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from contactkit.errors import ShapeError
from contactkit.io.atomic import atomic_write_bytes
from contactkit.report.colors import PENETRATION_COLOR, vertex_colors
from contactkit.report.data import ReportSample
from contactkit.report.plots import _pyplot, figure_to_png


def _view_direction(elev_deg: float, azim_deg: float) -> np.ndarray:
    e, a = np.radians(elev_deg), np.radians(azim_deg)
    return np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def render_snapshot(
    sample: ReportSample,
    out_path: str | Path | None = None,
    *,
    layers: Sequence[str] | None = None,
    contact: bool = True,
    penetration: bool = True,
    object_alpha: float = 0.45,
    elev: float = 25.0,
    azim: float | None = None,
    size_px: int = 800,
    title: str | None = None,
) -> bytes:
    """Render one sample to PNG.

    Args:
        sample: the grasp to draw.
        out_path: when given, the PNG is also written there (atomically).
        layers: names of the layers to draw (default: the layers marked ``visible``).
        contact: colour contact maps as heat.
        penetration: mark penetrating vertices.
        object_alpha: opacity of ``object`` layers in (0, 1].
        elev, azim: camera elevation and azimuth in degrees; by default the azimuth looks at the first hand
            (the first refined one, else any) and the object from the side (perpendicular to the line between
            their centroids).
        size_px: width and height of the image in pixels.
        title: optional title drawn above the view.

    Returns:
        PNG bytes.
    """
    if not 0.0 < object_alpha <= 1.0:
        raise ShapeError(f"object_alpha: expected a value in (0, 1], got {object_alpha}")
    names = [layer.name for layer in sample.layers]
    if layers is not None:
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ShapeError(f"layers: unknown layer names {unknown}; the sample has {names}")
        chosen = [layer for layer in sample.layers if layer.name in layers]
    else:
        chosen = [layer for layer in sample.layers if layer.visible]
    if not chosen:
        raise ShapeError("layers: no layer to draw")

    if azim is None:
        azim = 40.0
        obj = next((layer for layer in chosen if layer.role == "object"), None)
        hnd = next((layer for layer in chosen if layer.role == "refined"), None) or next(
            (layer for layer in chosen if layer.role != "object"), None)
        if obj is not None and hnd is not None:
            d = hnd.vertices.mean(axis=0) - obj.vertices.mean(axis=0)
            if abs(d[0]) + abs(d[1]) > 1e-9:
                azim = float(np.degrees(np.arctan2(d[1], d[0]))) + 90.0
    view = _view_direction(elev, azim)
    tris, colors, marks = [], [], []
    for layer in chosen:
        v, f = layer.vertices, layer.faces
        vc = vertex_colors(v.shape[0], layer.base_color, layer.contact if contact else None)
        t = v[f]  # (F, 3, 3)
        n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
        shade = 0.35 + 0.65 * np.abs(n @ view)
        rgb = np.clip(vc[f].mean(axis=1) * shade[:, None], 0.0, 1.0)
        alpha = np.full((len(f), 1), object_alpha if layer.role == "object" else 1.0)
        tris.append(t)
        colors.append(np.concatenate([rgb, alpha], axis=1))
        if penetration and layer.penetrating is not None and layer.penetrating.any():
            marks.append(v[layer.penetrating])
    all_tris = np.concatenate(tris)
    all_colors = np.concatenate(colors)

    plt = _pyplot()
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    dpi = 100
    fig = plt.figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    ax = fig.add_subplot(projection="3d")
    ax.computed_zorder = False  # the markers go over the (internally depth-sorted) triangles
    coll = Poly3DCollection(all_tris, facecolors=all_colors, edgecolors="none", linewidths=0, zorder=1)
    ax.add_collection3d(coll)
    if marks:
        m = np.concatenate(marks)
        ax.scatter(m[:, 0], m[:, 1], m[:, 2], s=9, c=[PENETRATION_COLOR], depthshade=False, zorder=10)
    pts = all_tris.reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1), zoom=1.5)
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=11)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.95 if title else 1)
    png = figure_to_png(fig, dpi=dpi)
    if out_path is not None:
        atomic_write_bytes(out_path, png)
    return png

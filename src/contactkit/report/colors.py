"""Colours of the report: layer base colours and the contact heat map, shared by the viewer and snapshots.

Every colour is computed here (numpy, RGB in [0, 1]) so the interactive view and the PNG snapshots of a grasp
look the same; the viewer only displays the per-vertex colours it is given.
"""

from __future__ import annotations

import numpy as np

from contactkit.errors import ShapeError

#: Stops of the contact heat map: (contact value in [0, 1], RGB in [0, 1]); piecewise linear between them.
HEAT_STOPS: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (0.0, (0.99, 0.94, 0.62)),
    (0.35, (0.99, 0.70, 0.28)),
    (0.7, (0.93, 0.33, 0.12)),
    (1.0, (0.70, 0.02, 0.06)),
)

#: Contact values below this are shown in the layer's base colour (no contact).
CONTACT_FLOOR = 0.02

#: Base colours by layer role.
ROLE_COLORS: dict[str, tuple[float, float, float]] = {
    "object": (0.60, 0.64, 0.70),
    "ground_truth": (0.45, 0.78, 0.47),
    "noisy": (0.93, 0.62, 0.38),
    "hand": (0.86, 0.72, 0.62),
}

#: Colours of the method rows, in order of appearance: the 3D view's refined hands, the tables' swatches and the
#: plots all take a row's colour from :func:`row_colors`. Chosen apart from each other and from the role colours,
#: the penetration markers and the heat map (RGB distance >= 50 of 255; tested).
METHOD_PALETTE: tuple[tuple[float, float, float], ...] = tuple(
    (r / 255.0, g / 255.0, b / 255.0) for r, g, b in (
        (31, 119, 180),   # blue
        (148, 103, 189),  # purple
        (23, 190, 207),   # cyan
        (140, 86, 75),    # brown
        (188, 189, 34),   # olive
        (57, 59, 121),    # navy
        (0, 128, 128),    # teal
        (227, 119, 194),  # pink
        (99, 121, 57),    # dark olive
        (158, 202, 225),  # light blue
        (110, 30, 130),   # plum
        (40, 40, 40),     # near black
    )
)

#: Row labels that take a role colour instead of a palette colour.
ROW_ROLES: dict[str, str] = {"ground truth": "ground_truth", "perturbed": "noisy", "noisy": "noisy"}


def _extra_color(k: int) -> tuple[float, float, float]:
    """The ``k``-th colour beyond the palette: golden-angle hues at two lightness levels."""
    import colorsys

    hue = (0.61803398875 * (k + 1)) % 1.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.35 if k % 2 else 0.55, 0.65)
    return (r, g, b)


def row_colors(labels: list[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per row label: role colours for the baselines (:data:`ROW_ROLES`), the palette in order for
    every other row (each distinct label its own colour), then generated hues if there are more rows."""
    out: dict[str, tuple[float, float, float]] = {}
    k = 0
    for label in labels:
        if label in out:
            continue
        if label in ROW_ROLES:
            out[label] = ROLE_COLORS[ROW_ROLES[label]]
            continue
        out[label] = METHOD_PALETTE[k] if k < len(METHOD_PALETTE) else _extra_color(k - len(METHOD_PALETTE))
        k += 1
    return out


def css_rgb(rgb: tuple[float, float, float]) -> str:
    """``rgb(r,g,b)`` of an RGB triple in [0, 1]."""
    return "rgb(" + ",".join(str(round(c * 255)) for c in rgb) + ")"


def hex_rgb(rgb: tuple[float, float, float]) -> str:
    """``#rrggbb`` of an RGB triple in [0, 1] (matplotlib's colour format)."""
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


#: Colour of the markers of penetrating vertices.
PENETRATION_COLOR: tuple[float, float, float] = (0.85, 0.0, 0.85)


def heat_colors(values: np.ndarray) -> np.ndarray:
    """Map contact values to heat-map colours.

    Args:
        values: (V,) float, contact in [0, 1] (values outside are clipped).

    Returns:
        (V, 3) float64 RGB in [0, 1].
    """
    v = np.clip(np.asarray(values, dtype=np.float64).reshape(-1), 0.0, 1.0)
    xs = np.array([s[0] for s in HEAT_STOPS])
    rgb = np.array([s[1] for s in HEAT_STOPS])
    return np.stack([np.interp(v, xs, rgb[:, k]) for k in range(3)], axis=1)


def vertex_colors(
    num_vertices: int, base: tuple[float, float, float], contact: np.ndarray | None = None
) -> np.ndarray:
    """Per-vertex colours of a layer: its base colour, with contact shown as heat where contact is present.

    Args:
        num_vertices: number of vertices V.
        base: RGB in [0, 1].
        contact: optional (V,) float contact values in [0, 1]; values below :data:`CONTACT_FLOOR` keep the
            base colour, the rest blend into the heat map (fully from 0.25 on).

    Returns:
        (V, 3) float64 RGB in [0, 1].
    """
    out = np.tile(np.asarray(base, dtype=np.float64), (num_vertices, 1))
    if contact is None:
        return out
    c = np.asarray(contact, dtype=np.float64).reshape(-1)
    if c.shape[0] != num_vertices:
        raise ShapeError(f"contact: expected shape ({num_vertices},), got {tuple(np.shape(contact))}")
    w = np.clip((c - CONTACT_FLOOR) / (0.25 - CONTACT_FLOOR), 0.0, 1.0)[:, None]
    return (1.0 - w) * out + w * heat_colors(c)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """(V, 3) float RGB in [0, 1] -> (V, 3) uint8."""
    return np.clip(np.round(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)


def css_gradient() -> str:
    """A CSS ``linear-gradient`` drawing the contact heat map left (0) to right (1), for the legend."""
    parts = []
    for x, (r, g, b) in HEAT_STOPS:
        parts.append(f"rgb({round(r * 255)},{round(g * 255)},{round(b * 255)}) {x * 100:.0f}%")
    return "linear-gradient(to right, " + ", ".join(parts) + ")"

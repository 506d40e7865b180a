"""Tables formatted from :class:`~contactkit.report.results.Results`: plain text, markdown and CSV.

The text and markdown tables (and the report's HTML tables, :mod:`contactkit.report.html`) come in blocks
(:meth:`Results.blocks`): the rows that used no ground truth first, then, headed as upper bounds, the rows
refined toward the ground truth (labelled ``" (oracle)"``). Each metric column shows mean ± std with one
number of decimals per column (:func:`column_decimals`: three significant figures for the column's largest
mean), a readable header with its unit and an arrow (↓ lower is better, ↑ higher is better). The CSV keeps full
precision and the canonical metric names.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass

from contactkit.report.results import MethodResult, Results

#: Readable names of the common metric columns (others show their canonical name).
METRIC_NAMES: dict[str, str] = {
    "mpjpe_mm": "MPJPE",
    "r_mpjpe_mm": "R-MPJPE",
    "penetration_depth_mm": "penetration",
    "intersection_volume_cm3": "intersection",
    "contact_coverage_pct": "contact coverage",
    "contact_f1_pct": "contact F1",
    "simulation_displacement_cm": "sim. displacement",
}

#: Units as the tables print them.
UNIT_TEXT: dict[str, str] = {"cm3": "cm³", "pct": "%"}

_LOWER_BETTER = ("mpjpe", "mpvpe", "error", "penetration", "intersection", "displacement", "distance", "chamfer",
                 "time")
_HIGHER_BETTER = ("f1", "precision", "recall", "coverage", "pck", "auc")

#: Heading and one-line reading guide of each block of :meth:`Results.blocks`.
BLOCK_TITLES: dict[str, tuple[str, str]] = {
    "in the wild": ("In the wild: no ground truth used",
                    "What a user with only a noisy hand and the object gets. 'perturbed' is the input; "
                    "'ground truth' measured against itself shows the physics and contact of real grasps."),
    "oracle": ("Upper bounds: refined toward the ground truth (oracle)",
               "Each method given the ground-truth contact, pose or keypoints as targets. Not possible without "
               "the ground truth; an upper bound for the rows above, never a result of the method."),
}

#: Column header of the time per grasp.
TIME_HEADER = "time/grasp [s] ↓"


def metric_direction(name: str) -> str:
    """``"↓"`` when lower values of metric ``name`` are better, ``"↑"`` when higher are, else ``""``."""
    low = name.lower()
    if any(k in low for k in _HIGHER_BETTER):
        return "↑"
    if any(k in low for k in _LOWER_BETTER):
        return "↓"
    return ""


def metric_header(name: str, unit: str) -> str:
    """Column header of a metric: readable name, unit and direction, e.g. ``MPJPE [mm] ↓``."""
    label = METRIC_NAMES.get(name, name)
    text = f"{label} [{UNIT_TEXT.get(unit, unit)}]" if unit else label
    arrow = metric_direction(name)
    return f"{text} {arrow}" if arrow else text


def column_decimals(values: Iterable[float | None], significant: int = 3, max_decimals: int = 4) -> int:
    """Decimals that show the largest finite ``|value|`` with ``significant`` significant figures (0 to
    ``max_decimals``); every number of a column is printed with these decimals."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
    biggest = max(finite, default=0.0)
    if biggest == 0.0:
        return 0
    return int(min(max_decimals, max(0, significant - 1 - math.floor(math.log10(biggest)))))


def format_value(value: float | None, decimals: int) -> str:
    """A number with ``decimals`` decimals; ``-`` for missing or non-finite values."""
    if value is None or not math.isfinite(value):
        return "-"
    text = f"{value:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def format_mean_std(mean: float | None, std: float | None, decimals: int) -> str:
    """``mean ± std`` (just ``mean`` when the std is missing), both with ``decimals`` decimals."""
    m, s = format_value(mean, decimals), format_value(std, decimals)
    return m if s == "-" or m == "-" else f"{m} ± {s}"


def metric_decimals(results: Results) -> dict[str, int]:
    """Decimals of each metric column and of the time column (``"time"``), over every row of ``results``."""
    out = {m: column_decimals(r.metrics[m].mean for r in results.rows if m in r.metrics)
           for m in results.metric_names}
    out["time"] = column_decimals(r.time_per_grasp_s for r in results.rows)
    return out


def row_label(row: MethodResult) -> str:
    """A row's label in the tables: its method, with ``— not available`` when it could not run."""
    return f"{row.method} — not available" if row.error else row.method


@dataclass
class TableBlock:
    """One block of the results table: heading, reading guide, header cells and body cells."""

    key: str
    title: str
    how_to_read: str
    header: list[str]
    body: list[list[str]]
    rows: list[MethodResult]


def table_blocks(results: Results) -> list[TableBlock]:
    """The blocks of the results table (see the module docstring), cells formatted."""
    dec = metric_decimals(results)
    header = ["method", "n"] + [metric_header(m, results.units.get(m, "")) for m in results.metric_names]
    header += [TIME_HEADER, "targets"]
    blocks = []
    for key, rows in results.blocks():
        body = []
        for row in rows:
            cells = [row_label(row), str(row.num_grasps) if not row.error else "-"]
            for m in results.metric_names:
                s = row.metrics.get(m)
                cells.append("-" if s is None else format_mean_std(s.mean, s.std, dec[m]))
            cells.append(format_value(row.time_per_grasp_s, dec["time"]))
            cells.append(row.targets or "-")
            body.append(cells)
        title, guide = BLOCK_TITLES.get(key, (key, ""))
        blocks.append(TableBlock(key, title, guide, header, body, rows))
    return blocks


def table_cells(results: Results) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of every block together (in block order)."""
    blocks = table_blocks(results)
    return blocks[0].header, [cells for b in blocks for cells in b.body]


def unavailable_lines(results: Results) -> list[str]:
    """``"<method>: not available: <reason>"`` for every row that could not run."""
    return [f"{r.method}: not available: {r.error}" for r in results.rows if r.error]


def format_text_table(results: Results) -> str:
    """Fixed-width text tables for the terminal: one per block, columns separated by at least two spaces."""
    blocks = table_blocks(results)
    all_rows = [blocks[0].header] + [c for b in blocks for c in b.body]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(blocks[0].header))]
    last = len(widths) - 1

    def line(cells: list[str]) -> str:
        out = [c.ljust(w) if i in (0, last) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                          strict=True))]
        return "  ".join(out).rstrip()

    lines: list[str] = []
    for b in blocks:
        if lines:
            lines.append("")
        lines += [f"{b.title} (↓ lower is better, ↑ higher is better)", line(b.header),
                  "-" * len(line(b.header)), *[line(r) for r in b.body]]
    lines += unavailable_lines(results)
    return "\n".join(lines)


def format_markdown_table(results: Results) -> str:
    """GitHub-flavoured markdown: one heading, reading guide and table per block."""
    out: list[str] = []
    for b in table_blocks(results):
        out += [f"### {b.title}", "", b.how_to_read + " ↓ lower is better, ↑ higher is better.", "",
                "| " + " | ".join(b.header) + " |",
                "|" + "|".join(["---", *(["---:"] * (len(b.header) - 2)), "---"]) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in b.body]
        out.append("")
    out += [f"- {line}" for line in unavailable_lines(results)]
    return "\n".join(out).rstrip() + "\n"


def format_csv(results: Results) -> str:
    """CSV with one row per method and separate mean/std columns (full precision, canonical names)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["method", "oracle", "targets", "num_grasps"]
    for m in results.metric_names:
        head += [f"{m}_mean", f"{m}_std"]
    head += ["time_per_grasp_s", "error"]
    w.writerow(head)
    for row in results.rows:
        cells: list[object] = [row.method, int(row.oracle), row.targets or "", row.num_grasps]
        for m in results.metric_names:
            s = row.metrics.get(m)
            cells += ["" if s is None else repr(s.mean), "" if s is None else repr(s.std)]
        cells += ["" if row.time_per_grasp_s is None else repr(row.time_per_grasp_s), row.error or ""]
        w.writerow(cells)
    return buf.getvalue()

"""Tables formatted from :class:`~contactkit.report.results.Results`: plain text, markdown and CSV.

All three show the same numbers as ``results.json`` (mean ± std per metric, time per grasp), rounded by
:func:`format_value` only.
"""

from __future__ import annotations

import csv
import io
import math

from contactkit.report.results import Results

#: Significant decimals per unit in the tables.
_DECIMALS = {"mm": 2, "cm3": 2, "cm": 2, "%": 1, "s": 3}


def format_value(value: float | None, unit: str = "") -> str:
    """Format a number for a table: fixed decimals by unit, ``-`` for missing or non-finite values."""
    if value is None or not math.isfinite(value):
        return "-"
    decimals = _DECIMALS.get(unit, 3)
    return f"{value:.{decimals}f}"


def header_label(name: str, unit: str) -> str:
    """Column header of a metric, e.g. ``mpjpe_mm``; the unit is appended when the name does not carry it."""
    suffix = {"cm3": "_cm3", "mm": "_mm", "cm": "_cm", "%": "_pct", "s": "_s"}.get(unit, "")
    if unit and suffix and not name.endswith(suffix):
        return f"{name} [{unit}]"
    return name


def table_cells(results: Results) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the results table (mean ± std; time per grasp in seconds)."""
    header = ["method", "n"] + [header_label(m, results.units.get(m, "")) for m in results.metric_names]
    header.append("time/grasp [s]")
    body: list[list[str]] = []
    for row in results.rows:
        cells = [row.method, str(row.num_grasps)]
        for m in results.metric_names:
            s = row.metrics.get(m)
            if s is None:
                cells.append("-")
            else:
                mean, std = format_value(s.mean, s.unit), format_value(s.std, s.unit)
                cells.append(mean if std == "-" else f"{mean} ± {std}")
        cells.append(format_value(row.time_per_grasp_s, "s"))
        if row.error:
            cells[0] = f"{row.method} (failed)"
        body.append(cells)
    return header, body


def format_text_table(results: Results) -> str:
    """A fixed-width text table for the terminal."""
    header, body = table_cells(results)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                            strict=True)))

    rule = "-" * len(line(header))
    lines = [line(header), rule, *[line(r) for r in body]]
    failed = [r for r in results.rows if r.error]
    for r in failed:
        lines.append(f"{r.method} failed: {r.error}")
    return "\n".join(lines)


def format_markdown_table(results: Results) -> str:
    """A GitHub-flavoured markdown table."""
    header, body = table_cells(results)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out) + "\n"


def format_csv(results: Results) -> str:
    """CSV with one row per method and separate mean/std columns (full precision)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["method", "num_grasps"]
    for m in results.metric_names:
        head += [f"{m}_mean", f"{m}_std"]
    head += ["time_per_grasp_s", "error"]
    w.writerow(head)
    for row in results.rows:
        cells: list[object] = [row.method, row.num_grasps]
        for m in results.metric_names:
            s = row.metrics.get(m)
            cells += ["" if s is None else repr(s.mean), "" if s is None else repr(s.std)]
        cells += ["" if row.time_per_grasp_s is None else repr(row.time_per_grasp_s), row.error or ""]
        w.writerow(cells)
    return buf.getvalue()

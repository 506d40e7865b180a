"""Results: JSON round trip, and every table shows exactly the JSON's numbers."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from report_fixtures import parse_text_table

from contactkit.report.results import MetricSummary, Results, ResultsFileError
from contactkit.report.tables import format_csv, format_markdown_table, format_text_table, format_value


def test_summary_ignores_non_finite_values():
    s = MetricSummary.from_values([1.0, 3.0, np.nan], "mm")
    assert s.mean == 2.0 and s.std == 1.0
    assert math.isnan(s.values[2])
    j = s.to_json()
    assert j["values"][2] is None
    json.dumps(j, allow_nan=False)  # strict JSON
    assert math.isnan(MetricSummary.from_values([], "mm").mean)


def test_json_round_trip(results):
    text = json.dumps(results.to_json(), allow_nan=False)
    back = Results.from_json(json.loads(text))
    assert back.metric_names == results.metric_names
    for a, b in zip(results.rows, back.rows, strict=True):
        assert a.method == b.method and a.error == b.error and a.num_grasps == b.num_grasps
        for m in a.metrics:
            np.testing.assert_array_equal(a.metrics[m].values, b.metrics[m].values)
            assert a.metrics[m].mean == b.metrics[m].mean


def test_bad_results_file(tmp_path):
    with pytest.raises(ResultsFileError, match="format: expected 'contactkit.results'"):
        Results.from_json({"format": "x", "version": 1})
    with pytest.raises(ResultsFileError, match="version: expected 1"):
        Results.from_json({"format": "contactkit.results", "version": 7})
    with pytest.raises(ResultsFileError, match="cannot read results file"):
        Results.load(tmp_path / "missing.json")
    with pytest.raises(ResultsFileError, match="no row named 'x'"):
        Results("demo", [], {}, []).row("x")


def test_text_table_agrees_with_json(results):
    table = parse_text_table(format_text_table(results))
    data = results.to_json()
    for row in data["rows"]:
        label = row["method"] + (" (failed)" if row["error"] else "")
        assert label in table
        cells = table[label]
        for m in data["metric_names"]:
            if m not in row["metrics"]:
                assert cells.get(m, "-") == "-"
                continue
            s = row["metrics"][m]
            assert cells[m] == f"{format_value(s['mean'], s['unit'])} ± {format_value(s['std'], s['unit'])}"
    assert table["contactopt"]["time/grasp"] == "0.123"


def test_csv_and_markdown_carry_the_same_numbers(results):
    rows = list(csv.DictReader(io.StringIO(format_csv(results))))
    assert [r["method"] for r in rows] == [r.method for r in results.rows]
    for r, res in zip(rows, results.rows, strict=True):
        for m, s in res.metrics.items():
            assert float(r[f"{m}_mean"]) == s.mean
    md = format_markdown_table(results)
    assert md.count("\n") == 2 + len(results.rows)
    assert f"{results.row('contactopt').metrics['mpjpe_mm'].mean:.2f}" in md

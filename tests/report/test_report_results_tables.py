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
from contactkit.report.tables import (
    column_decimals,
    format_csv,
    format_markdown_table,
    format_mean_std,
    format_text_table,
    format_value,
    metric_decimals,
    metric_direction,
    metric_header,
)


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
        assert a.targets == b.targets and a.oracle == b.oracle
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
    dec = metric_decimals(results)
    for row in data["rows"]:
        label = row["method"] + (" — not available" if row["error"] else "")
        assert label in table
        cells = table[label]
        for m in data["metric_names"]:
            header = metric_header(m, data["units"][m])
            if m not in row["metrics"]:
                assert cells[header] == "-"
                continue
            s = row["metrics"][m]
            assert cells[header] == format_mean_std(s["mean"], s["std"], dec[m])
        assert cells["targets"] == (row["targets"] or "-")
    assert table["contactopt"]["time/grasp [s] ↓"] == "0.123"


def test_in_the_wild_table_comes_first_and_oracle_rows_are_upper_bounds(results):
    text = format_text_table(results)
    wild, oracle = text.split("Upper bounds")
    assert "In the wild" in wild and "(oracle)" not in wild
    assert "contactopt (oracle)" in oracle and "oracle (reference grasps)" in oracle
    # the input is repeated in the upper-bound block for comparison; the in-the-wild method is not
    assert "perturbed" in oracle and "learned (DeepContactEstimator)" not in oracle
    assert "cpf: not available: no estimator for this hand" in text
    md = format_markdown_table(results)
    assert md.index("### In the wild") < md.index("### Upper bounds") < md.index("contactopt (oracle)")


def test_one_number_format_per_column():
    assert column_decimals([0.0007694, 0.1301]) == 3  # 0.130 -> three significant figures
    assert column_decimals([63.42, 2.0]) == 1
    assert column_decimals([123.4]) == 0
    assert column_decimals([0.00001]) == 4  # capped
    assert column_decimals([None, float("nan")]) == 0
    assert format_value(0.0007694, 3) == "0.001" and format_value(-0.0001, 2) == "0.00"
    assert format_mean_std(63.42, float("nan"), 1) == "63.4"
    assert format_value(None, 2) == "-"


def test_every_metric_column_says_which_way_is_better():
    for name in ("mpjpe_mm", "penetration_depth_mm", "intersection_volume_cm3", "simulation_displacement_cm"):
        assert metric_direction(name) == "↓", name
    for name in ("contact_f1_pct", "contact_coverage_pct", "object_contact_precision_pct"):
        assert metric_direction(name) == "↑", name
    assert metric_header("intersection_volume_cm3", "cm3") == "intersection [cm³] ↓"


def test_csv_and_markdown_carry_the_same_numbers(results):
    rows = list(csv.DictReader(io.StringIO(format_csv(results))))
    assert [r["method"] for r in rows] == [r.method for r in results.rows]
    for r, res in zip(rows, results.rows, strict=True):
        assert r["oracle"] == str(int(res.oracle)) and r["targets"] == (res.targets or "")
        for m, s in res.metrics.items():
            assert float(r[f"{m}_mean"]) == s.mean
    md = format_markdown_table(results)
    table_lines = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| method")]
    assert len(table_lines) == len(results.rows) + 1  # the perturbed row is repeated in the oracle block
    dec = metric_decimals(results)["mpjpe_mm"]
    assert f"| {format_value(results.row('contactopt').metrics['mpjpe_mm'].mean, dec)} ± " in md

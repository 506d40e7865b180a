"""The report's commands: ``info`` and ``view`` (``demo``/``bench`` run the pipeline tested beside)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_fixtures import make_ground_truth, parse_text_table

from contactkit.cli.main import build_parser, main


def test_commands_are_registered():
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("demo", "info", "view", "bench"):
        assert name in choices


def test_info_lists_what_the_package_provides(capsys):
    from contactkit.objects import list_bundled_objects
    from contactkit.refine.methods import list_methods

    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["objects"] == list_bundled_objects()
    assert info["refine_methods"] == list_methods()
    assert info["hands"]["openhand"]["available"] is True
    assert info["hands"]["openhand"]["num_verts"] > 700
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "openhand" in text and "torch" in text


def test_view_renders_a_grasp_file(tmp_path: Path, capsys):
    from contactkit.io.grasps import save_grasps

    path = tmp_path / "g.npz"
    save_grasps(path, make_ground_truth(2))
    out = tmp_path / "v.html"
    snap = tmp_path / "v.png"
    assert main(["view", str(path), "--out", str(out), "--snapshot", str(snap)]) == 0
    text = out.read_text()
    assert "http://" not in text and "https://" not in text
    assert "sphere #0" in text and "sphere #1" in text
    assert snap.stat().st_size > 1000
    printed = capsys.readouterr().out
    assert str(out) in printed


def test_view_reports_a_missing_file(tmp_path: Path, capsys):
    assert main(["view", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "x.html")]) == 2
    assert "error" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["view"])


def test_demo_prints_the_table_of_results_json(tmp_path: Path, capsys):
    """``demo`` on a given ground truth: the printed tables are results.json's (in the wild first, then the
    oracle upper bounds), the progress lines carry timestamps, and the end says where the report is."""
    from contactkit.io.grasps import save_grasps
    from contactkit.report.results import Results
    from contactkit.report.tables import format_mean_std, metric_decimals, metric_header

    gt = tmp_path / "gt.npz"
    save_grasps(gt, make_ground_truth(2))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--ground-truth", str(gt), "--methods", "obman"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    table_text = printed.split("\n\nDone in")[0]
    assert table_text.index("In the wild") < table_text.index("Upper bounds") < table_text.index("obman (oracle)")
    table = parse_text_table(table_text)
    results = Results.load(out / "results.json")
    dec = metric_decimals(results)
    assert {"ground truth", "perturbed", "obman (oracle)"} <= set(table)
    for row in results.rows:
        if row.error:
            assert f"{row.method} — not available" in table
            continue
        for m in results.metric_names:
            s = row.metrics[m]
            assert table[row.method][metric_header(m, s.unit)] == format_mean_std(s.mean, s.std, dec[m])
    assert results.row("obman (oracle)").oracle and results.row("obman (oracle)").targets
    assert results.config["refine_settings"] == {"iterations": 40, "restarts": 1}
    assert str(out / "report.html") in printed and str(out / "results.json") in printed
    assert "Open it in any browser" in printed
    stamped = [ln for ln in captured.err.splitlines() if re.match(r"\[\d\d:\d\d:\d\d \+\d+:\d\d\] ", ln)]
    assert any("refining 2 grasps with obman, in the wild" in ln for ln in stamped)


def test_demo_without_oracle_runs_no_upper_bound(tmp_path: Path, capsys):
    from contactkit.io.grasps import save_grasps
    from contactkit.report.results import Results

    gt = tmp_path / "gt.npz"
    save_grasps(gt, make_ground_truth(2))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--no-oracle", "--out", str(out), "--ground-truth", str(gt),
                 "--methods", "contactopt"]) == 0
    assert "Upper bounds" not in capsys.readouterr().out
    results = Results.load(out / "results.json")
    assert not any(r.oracle for r in results.rows)
    assert results.row("contactopt").targets == "learned:deepcontact" or results.row("contactopt").error


def test_demo_rejects_quick_with_full(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--quick", "--full"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_bench_on_an_existing_benchmark_set(tmp_path: Path, capsys):
    """``bench --set DIR`` uses a built set as is (here a constructed one) and writes JSON, CSV and markdown."""
    from contactkit.io.grasps import save_grasps

    bench_set = tmp_path / "set"
    save_grasps(bench_set / "split_grasp" / "test.npz", make_ground_truth(2))
    (bench_set / "manifest.json").write_text(json.dumps({"format": "contactkit.benchmark_set", "seed": 3}))
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--no-oracle", "--out", str(out), "--set", str(bench_set),
                 "--methods", "contactopt"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "bench" and results["config"]["benchmark_seed"] == 3
    assert [r["method"] for r in results["rows"]] == ["ground truth", "perturbed", "contactopt"]
    csv_text = (out / "results.csv").read_text()
    assert csv_text.splitlines()[0].startswith("method,oracle,targets,num_grasps,mpjpe_mm_mean,mpjpe_mm_std")
    assert (out / "results.md").read_text().startswith("### In the wild")
    assert len(list((out / "plots").glob("*.svg"))) == 3
    assert "contactopt" in printed


def test_demo_names_the_valid_methods(tmp_path: Path, capsys):
    from contactkit.io.grasps import save_grasps

    gt = tmp_path / "gt.npz"
    save_grasps(gt, make_ground_truth(1))
    assert main(["demo", "--quick", "--out", str(tmp_path / "d"), "--ground-truth", str(gt),
                 "--methods", "contactop"]) == 2
    err = capsys.readouterr().err
    assert "unknown refinement method(s) ['contactop']" in err and "contactopt" in err and "--methods" in err

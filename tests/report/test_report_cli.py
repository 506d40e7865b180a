"""The report's commands: ``info`` and ``view`` (``demo``/``bench`` run the pipeline tested beside)."""

from __future__ import annotations

import json
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
    """``demo`` on a given ground truth: the printed table is results.json's, and the outputs are listed."""

    from contactkit.io.grasps import save_grasps
    from contactkit.report.results import Results
    from contactkit.report.tables import format_value

    gt = tmp_path / "gt.npz"
    save_grasps(gt, make_ground_truth(2))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--ground-truth", str(gt), "--methods", "obman"]) == 0
    printed = capsys.readouterr().out
    table_text = printed.split("\n\nDone in")[0]
    table = parse_text_table(table_text)
    results = Results.load(out / "results.json")
    assert set(table) == {"ground truth", "perturbed", "obman"}
    for row in results.rows:
        for m in results.metric_names:
            s = row.metrics[m]
            assert table[row.method][m] == f"{format_value(s.mean, s.unit)} ± {format_value(s.std, s.unit)}"
    assert results.config["refine_settings"] == {"iterations": 40, "restarts": 1}
    assert str(out / "report.html") in printed and str(out / "results.json") in printed


def test_bench_on_an_existing_benchmark_set(tmp_path: Path, capsys):
    """``bench --set DIR`` uses a built set as is (here a constructed one) and writes JSON, CSV and markdown."""
    from contactkit.io.grasps import save_grasps

    bench_set = tmp_path / "set"
    save_grasps(bench_set / "split_grasp" / "test.npz", make_ground_truth(2))
    (bench_set / "manifest.json").write_text(json.dumps({"format": "contactkit.benchmark_set", "seed": 3}))
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--out", str(out), "--set", str(bench_set), "--methods", "obman"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "bench" and results["config"]["benchmark_seed"] == 3
    assert [r["method"] for r in results["rows"]] == ["ground truth", "perturbed", "obman"]
    csv_text = (out / "results.csv").read_text()
    assert csv_text.splitlines()[0].startswith("method,num_grasps,mpjpe_mm_mean,mpjpe_mm_std")
    assert (out / "results.md").read_text().startswith("| method | n |")
    assert len(list((out / "plots").glob("*.png"))) == 3
    assert "obman" in printed

"""The pipeline on a small constructed ground truth: files written; JSON = table = the metrics' numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import make_ground_truth, parse_text_table

from contactkit.report.pipeline import PipelineConfig, run_pipeline
from contactkit.report.results import Results
from contactkit.report.tables import format_mean_std, format_text_table, metric_decimals, metric_header
from contactkit.targets.contract import is_oracle_source


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = PipelineConfig(objects=["sphere"], grasps_per_object=0, methods=["contactopt", "obman"],
                         refine_settings={"iterations": 3, "restarts": 1}, report_samples=2)
    logs: list[str] = []
    output = run_pipeline(cfg, out, ground_truth=make_ground_truth(2), log=logs.append)
    return output, logs


def test_outputs_are_written(small_run):
    output, logs = small_run
    for key in ("report", "results_json", "results_csv", "results_md", "table_txt", "snapshot",
                "ground_truth", "perturbed", "refined_contactopt", "refined_contactopt_oracle",
                "refined_obman_oracle"):
        assert output.files[key].is_file(), key
        assert output.files[key].parent == output.out_dir or output.files[key].parent.parent == output.out_dir
    assert not list(output.out_dir.glob(".*.tmp"))  # atomic writes left no temporary file
    assert any("refining" in line and "in the wild" in line for line in logs)
    assert any("toward the ground truth (oracle)" in line for line in logs)
    html = output.files["report"].read_text()
    assert "http://" not in html and "https://" not in html


def test_json_and_printed_table_agree(small_run):
    output, _ = small_run
    data = json.loads(output.files["results_json"].read_text())
    loaded = Results.from_json(data)
    printed = format_text_table(loaded)
    assert printed == format_text_table(output.results)
    assert output.files["table_txt"].read_text().strip() == printed.strip()
    table = parse_text_table(printed)
    labels = [r["method"] for r in data["rows"]]
    assert labels[:3] == ["ground truth", "perturbed", "contactopt"]
    assert labels[-2:] == ["contactopt (oracle)", "obman (oracle)"]
    # obman in the wild: available (with i12's statistical zones) or listed as not available, never oracle
    obman = loaded.row("obman")
    assert obman.error is not None or "oracle" not in (obman.targets or "oracle")
    dec = metric_decimals(loaded)
    for row in data["rows"]:
        if row["error"]:
            assert row["metrics"] == {} and f"{row['method']}: not available: {row['error']}" in printed
            continue
        for m in data["metric_names"]:
            s = row["metrics"][m]
            assert table[row["method"]][metric_header(m, s["unit"])] == format_mean_std(s["mean"], s["std"], dec[m])
            vals = np.array([np.nan if v is None else v for v in s["values"]])
            assert s["mean"] == pytest.approx(float(np.nanmean(vals)))
        if row["method"] in ("ground truth", "perturbed"):
            assert row["time_per_grasp_s"] is None and row["targets"] is None and not row["oracle"]
        else:
            assert row["time_per_grasp_s"] > 0 and row["targets"]
            assert row["oracle"] == row["method"].endswith(" (oracle)")
            assert is_oracle_source(row["targets"]) == row["oracle"]


def test_numbers_are_the_metrics_modules(small_run):
    """Re-evaluate the written grasp files independently: the JSON holds exactly those values."""
    from contactkit.io.grasps import load_grasps
    from contactkit.metrics.evaluate import evaluate

    output, _ = small_run
    data = Results.load(output.files["results_json"])
    gt = load_grasps(output.files["ground_truth"])
    for name, key in (("perturbed", "perturbed"), ("contactopt", "refined_contactopt")):
        gs = load_grasps(output.files[key])
        ev = evaluate(gs, reference=gt, metrics=data.metric_names)
        for m in data.metric_names:
            np.testing.assert_allclose(data.row(name).metrics[m].values, ev[m].values, rtol=1e-9, atol=1e-9,
                                       err_msg=f"{name} {m}")
    # the perturbation moved the hands: a real, non-zero pose error before refinement
    assert data.row("perturbed").metrics["mpjpe_mm"].mean > 1.0
    # the ground truth paired with itself is exact
    gt_row = data.row("ground truth")
    assert max(gt_row.metrics["mpjpe_mm"].values) == pytest.approx(0.0, abs=1e-6)
    assert min(gt_row.metrics["contact_f1_pct"].values) == pytest.approx(100.0)


def test_refined_files_link_their_ground_truth(small_run):
    from contactkit.io.grasps import load_grasps

    output, _ = small_run
    gs = load_grasps(output.files["refined_obman_oracle"])
    # stored relative to the file ("ground_truth.npz"), returned resolved by load_grasps
    assert gs.attrs["reference"] == str((Path(output.out_dir) / "ground_truth.npz").resolve())
    assert Path(gs.attrs["reference"]).is_file()
    np.testing.assert_array_equal(gs.reference_index, [0, 1])


def test_pipeline_report_renders_in_headless_chromium(browser, small_run):
    """The real report (OpenHand meshes, every layer) renders in the browser without errors."""
    output, _ = small_run
    run = browser.open(output.files["report"])
    assert run.uncaught() == []
    assert run.attr("ck-status", "data-state") == "ok", run.dom[:2000]
    assert run.attr("ck-status", "data-errors") == "0"
    rect = run.attr("ck-canvas", "data-rect")
    assert rect is not None
    x, y, w, h = (int(v) for v in rect.split(","))
    px = run.screenshot[y + 4:y + h - 4, x + 4:x + w - 4].astype(int)
    from contactkit.report.html import BACKGROUND

    bg = np.round(np.array(BACKGROUND) * 255).astype(int)
    assert (np.abs(px - bg).max(axis=-1) > 12).mean() > 0.02


def test_in_the_wild_never_sees_the_ground_truth(monkeypatch):
    """refine_rows gives in-the-wild runs no targets, no link and no contact maps; a run whose recorded target
    source is the oracle anyway is refused; an error makes the row not available; oracle rows get the truth."""
    from report_fixtures import make_ground_truth

    import contactkit.refine.api as api
    from contactkit.errors import ContactkitError
    from contactkit.hands import load_hand
    from contactkit.report.pipeline import refine_rows
    from contactkit.report.progress import ProgressLog
    from contactkit.synth.perturb import perturb

    gt = make_ground_truth(2)
    noisy = perturb(gt, "contactopt", 1, 0, reference="gt.npz")
    assert "reference" in noisy.attrs
    seen = []

    def fake_refine(grasps, method, *, targets=None, **kw):
        seen.append((method, targets, grasps))
        if method == "obman" and targets is None:
            raise ContactkitError("no statistical zones for this hand")
        source = "oracle" if targets is not None or method == "cpf" else "learned:x"
        return grasps.replace(attrs={**grasps.attrs, "refine": {"targets": source}})

    monkeypatch.setattr(api, "refine", fake_refine)
    rows = refine_rows(["contactopt", "obman", "cpf"], noisy, gt, load_hand("openhand"), oracle=True, seed=0,
                       settings={}, progress=ProgressLog(lambda msg: None))
    by = {r.label: r for r in rows}
    assert [r.label for r in rows] == ["contactopt", "obman", "cpf", "contactopt (oracle)", "obman (oracle)",
                                      "cpf (oracle)"]
    for method, targets, grasps in seen[:3]:
        assert targets is None and "reference" not in grasps.attrs and grasps.reference_index is None
        assert grasps.hand_contact is None and grasps.object_contact is None, method
    for _, targets, _ in seen[3:]:
        assert targets is gt
    assert by["contactopt"].refined is not None and by["contactopt"].targets == "learned:x"
    assert by["obman"].refined is None and by["obman"].error == "no statistical zones for this hand"
    assert by["cpf"].refined is None and "resolved to the ground truth" in (by["cpf"].error or "")
    assert all(by[f"{m} (oracle)"].oracle and by[f"{m} (oracle)"].refined is not None
               for m in ("contactopt", "obman", "cpf"))


def test_bundled_example_set_is_the_demos_default_ground_truth():
    """The demo's default input: synthesised grasps on every bundled object, small, with its provenance."""
    from contactkit.io.grasps import load_grasps
    from contactkit.objects import list_bundled_objects
    from contactkit.report.pipeline import demo_config, demo_set_path

    path = demo_set_path()
    assert path.is_file() and path.stat().st_size < 400_000
    gs = load_grasps(path)
    assert gs.hand_model == "openhand" and len(gs) == 6
    assert sorted({gs.objects[o].name for o in gs.object_ids}) == sorted(list_bundled_objects())
    info = gs.attrs["demo_set"]
    assert info["script"] == "scripts/make_demo_set.py" and info["seed"] == 0
    # the default demo uses it at the papers' settings; --quick shortens refinement only; --full synthesises
    assert demo_config().grasps_per_object == 0 and demo_config().refine_settings == {}
    assert demo_config(quick=True).refine_settings == {"iterations": 40, "restarts": 1}
    assert demo_config(full=True).grasps_per_object > 0


def test_rows_read_the_target_source_refine_records():
    """The report reads each row's target source through the one contract (``contactkit.targets``)."""
    from report_fixtures import make_ground_truth

    from contactkit.targets.contract import is_oracle_source, target_source_of

    gs = make_ground_truth(1)
    assert target_source_of(gs) is None
    assert target_source_of(gs.replace(attrs={"targets": "learned:picr"})) == "learned:picr"
    assert is_oracle_source("oracle") and is_oracle_source("reference") and is_oracle_source("file:gt.npz")
    assert not is_oracle_source("learned:deepcontact") and not is_oracle_source(None)


def test_synthesis_reports_every_batch(monkeypatch, tmp_path):
    """``demo --full``'s synthesis stage: one stage per object, a line per batch with accepted vs wanted."""
    from types import SimpleNamespace

    from report_fixtures import make_ground_truth

    import contactkit.synth.synthesis as synthesis
    from contactkit.report.pipeline import PipelineConfig, synthesise_ground_truth

    def fake_synthesize(obj, n, *, on_batch=None, **kw):
        for b, acc in enumerate((0, 1, 2)):
            on_batch(b, {"accepted": acc})
        return SimpleNamespace(grasps=make_ground_truth(n), stats={"batches": 3})

    monkeypatch.setattr(synthesis, "synthesize", fake_synthesize)
    lines: list[str] = []
    cfg = PipelineConfig(objects=["sphere:radius=0.035"], grasps_per_object=2, synthesis_max_batches=5)
    gt, stats = synthesise_ground_truth(cfg, tmp_path, log=lines.append)
    assert len(gt) == 2 and stats[next(iter(stats))]["batches"] == 3
    assert lines[0].startswith("synthesising 2 grasps on ") and "(at most 5 batches)" in lines[0]
    assert "  batch 3 done: 3 grasps accepted, 2 wanted" in lines
    assert any(": 2/2 grasps" in ln for ln in lines) and "done in" in lines[-1]

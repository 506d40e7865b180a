"""The main job: ground truth, perturbation, refinement with every method, evaluation, report.

:func:`run_demo` works on the bundled example set (``contactkit demo``; ``full=True`` synthesises a larger one);
:func:`run_bench` runs the same pipeline over the standard benchmark set (``contactkit bench``). Both write,
atomically, into one output directory:

- ``results.json``: every number of the run (:class:`~contactkit.report.results.Results`); the printed
  table (:func:`~contactkit.report.tables.format_text_table`), ``results.md`` and ``results.csv`` are
  formatted from the same object;
- ``report.html``: the self-contained report (3D views, tables, plots), ``snapshot.png``: a still of the first
  sample, ``plots/*.svg``;
- the grasp files: ``ground_truth.npz``, ``perturbed.npz``, ``refined_<row>.npz``.

Every method runs twice. **In the wild** (the default targets, ``targets=None``) on the perturbed grasps with
no link to the ground truth and no contact maps, exactly what a user without ground truth has; a method that
cannot run so (a :class:`~contactkit.errors.ContactkitError`) is listed as *not available* with the reason,
never replaced by an oracle. Then, as a separate block of upper bounds, **toward the ground truth**
(``targets`` = the aligned ground-truth grasps), labelled ``" (oracle)"`` everywhere.

Library code does not print: lines go to the ``log`` callback through :class:`~contactkit.report.progress.ProgressLog`
(stage lines, step counts with smoothed rates, a heartbeat after 5 s without a line).
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contactkit import __version__
from contactkit.errors import ContactkitError
from contactkit.io.atomic import atomic_write_json, atomic_write_text
from contactkit.report.progress import ProgressLog
from contactkit.report.results import MethodResult, MetricSummary, Results, oracle_label
from contactkit.report.tables import format_csv, format_markdown_table, format_text_table
from contactkit.targets.contract import is_oracle_source, target_source_of

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.io.grasps import GraspSet

#: Metric columns of the demo and benchmark tables (canonical names of :mod:`contactkit.metrics`).
TABLE_METRICS: tuple[str, ...] = (
    "mpjpe_mm",
    "penetration_depth_mm",
    "intersection_volume_cm3",
    "contact_coverage_pct",
    "contact_f1_pct",
)

#: Row label of the perturbed grasps (before any refinement).
PERTURBED_ROW = "perturbed"
#: Row label of the ground truth measured against itself (its physics and contact metrics are the target).
GROUND_TRUTH_ROW = "ground truth"

#: The demo's bundled example set: ground-truth grasps on every bundled object, synthesised once by
#: ``scripts/make_demo_set.py`` with :func:`demo_config` ``(full=True)``'s synthesis settings.
DEMO_SET = "demo_data/demo_grasps.npz"

Log = Callable[[str], None]


def _no_log(msg: str) -> None:
    del msg


def demo_set_path() -> Path:
    """Path of the bundled example set (package data ``contactkit/report/demo_data/demo_grasps.npz``)."""
    return Path(str(resources.files("contactkit.report").joinpath(DEMO_SET)))


@dataclass
class PipelineConfig:
    """Sizes and seeds of a run (recorded in ``results.json``).

    Attributes:
        objects: bundled object names (or ``load_object`` specs).
        grasps_per_object: ground-truth grasps synthesised per object (0: the ground truth is given).
        protocol: perturbation protocol name (:func:`contactkit.synth.perturb.perturb`).
        copies: perturbed copies per ground-truth grasp.
        methods: refinement methods; ``None`` means every method of :func:`contactkit.refine.methods.list_methods`.
        oracle: also refine toward the ground truth (the upper-bound block, rows labelled ``" (oracle)"``).
        metrics: metric columns.
        hand: hand model name.
        seed: seed of synthesis, perturbation and refinement.
        report_samples: how many grasps the report shows in 3D.
        variant: ``default``, ``quick`` or ``full`` (what the demo's flags chose).
        synthesis: overrides of :class:`contactkit.synth.synthesis.SynthesisConfig` (e.g. smaller batches).
        refine_settings: overrides of every method's refiner settings (e.g. ``iterations``); empty = the
            papers' settings.
        synthesis_max_batches: stop synthesising an object after this many batches (None: synthesis default);
            an object with no accepted grasp is left out with a warning.
    """

    objects: list[str]
    grasps_per_object: int
    protocol: str = "contactopt"
    copies: int = 1
    methods: list[str] | None = None
    oracle: bool = True
    metrics: list[str] = field(default_factory=lambda: list(TABLE_METRICS))
    hand: str = "openhand"
    seed: int = 0
    report_samples: int = 6
    variant: str = "default"
    synthesis: dict[str, Any] = field(default_factory=dict)
    refine_settings: dict[str, Any] = field(default_factory=dict)
    synthesis_max_batches: int | None = None


def demo_config(*, quick: bool = False, full: bool = False) -> PipelineConfig:
    """The demo's configuration.

    Default: the bundled example set (2 synthesised grasps on each bundled object), one perturbed copy each
    (ContactOpt protocol), every method at its paper's settings. ``quick``: the same grasps, methods cut to 40
    iterations without restarts. ``full``: synthesise 4 grasps per bundled object (16 candidates per batch, at
    most 12 batches), two perturbed copies each, paper settings.
    """
    from contactkit.objects import list_bundled_objects

    if quick and full:
        raise ContactkitError("quick, full: choose at most one of --quick and --full")
    objects = list(list_bundled_objects())
    if not objects:
        raise ContactkitError("objects: contactkit has no bundled objects to run the demo on")
    if full:
        return PipelineConfig(objects=objects, grasps_per_object=4, copies=2, variant="full",
                              synthesis={"batch_size": 16}, synthesis_max_batches=12)
    return PipelineConfig(objects=objects, grasps_per_object=0, variant="quick" if quick else "default",
                          refine_settings={"iterations": 40, "restarts": 1} if quick else {})


@dataclass
class PipelineOutput:
    """What a run produced: its results and the paths it wrote."""

    results: Results
    out_dir: Path
    files: dict[str, Path]


def in_the_wild(grasps: GraspSet) -> GraspSet:
    """What a user without ground truth holds: ``grasps`` without a link to a reference set and without
    contact maps (``hand_contact``, ``object_points``, ``object_contact``)."""
    return unlinked(grasps).replace(hand_contact=None, object_points=None, object_contact=None)


def environment() -> dict[str, Any]:
    """Versions and device of this run."""
    import torch

    return {
        "contactkit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }


# ----------------------------------------------------------------------------------------------- stages
def synthesise_ground_truth(
    config: PipelineConfig, out_dir: Path | None = None, log: Log = _no_log
) -> tuple[GraspSet, dict[str, Any]]:
    """Synthesise ``config.grasps_per_object`` grasps on every object of the config, concatenated.

    With ``out_dir``, each object's synthesis is resumable and reused (``out_dir/synth/<object>.npz``).
    ``log`` receives the progress lines: one stage per object (:class:`ProgressLog`, with its heartbeat) and
    one line per finished batch with the accepted count and rate.

    Returns:
        the grasps and per-object synthesis statistics.
    """
    with ProgressLog(log) as progress:
        return _synthesise(config, out_dir, progress)


def _synthesise(
    config: PipelineConfig, out_dir: Path | None, progress: ProgressLog
) -> tuple[GraspSet, dict[str, Any]]:
    from contactkit.io.grasps import GraspSet, load_grasps
    from contactkit.objects import load_object
    from contactkit.synth.synthesis import SynthesisConfig, synthesize

    log = progress.line
    wanted = config.grasps_per_object
    synth_cfg = SynthesisConfig().with_updates(**config.synthesis)
    sets = []
    stats: dict[str, Any] = {}
    for name in config.objects:
        obj = load_object(name)
        target = None if out_dir is None else out_dir / "synth" / f"{obj.name}.npz"
        if target is not None and target.is_file():
            gs = load_grasps(target)
            if len(gs) >= config.grasps_per_object:
                log(f"reusing {len(gs)} synthesised grasps on {obj.name} from {target}")
                sets.append(gs.subset(np.arange(config.grasps_per_object, dtype=np.int64)))
                stats[obj.name] = {"reused": str(target)}
                continue
        accepted = [0]

        def on_batch(b: int, st: dict[str, Any], acc: list[int] = accepted) -> None:
            acc[0] += int(st.get("accepted", 0))
            progress.step(min(acc[0], wanted), wanted, "grasps")
            log(f"  batch {b + 1} done: {acc[0]} grasps accepted, {wanted} wanted")

        try:
            with progress.stage(f"synthesising {wanted} grasps on {obj.name} (at most "
                                f"{config.synthesis_max_batches or 'the default number of'} batches)"):
                # the same seed for every object, so a run's grasps are reused by the next
                res = synthesize(obj, wanted, hand=config.hand, seed=config.seed, config=synth_cfg, out=target,
                                 progress=False, on_batch=on_batch, max_batches=config.synthesis_max_batches)
        except ContactkitError as err:
            warnings.warn(f"synthesis on {obj.name} failed ({err}); the object is left out", stacklevel=2)
            log(f"synthesis on {obj.name} accepted no grasp; left out")
            stats[obj.name] = {"error": str(err)}
            continue
        stats[obj.name] = {k2: v for k2, v in res.stats.items() if isinstance(v, int | float | str)}
        if len(res.grasps) == 0:
            warnings.warn(f"synthesis accepted no grasp on {obj.name}; it is left out", stacklevel=2)
            continue
        sets.append(res.grasps)
    if not sets:
        raise ContactkitError("objects: synthesis accepted no grasp on any object")
    return GraspSet.concat(sets), stats


def summarise_evaluation(evaluation: Any, metrics: Sequence[str]) -> dict[str, MetricSummary]:
    """Per-metric summaries (mean/std recomputed from the per-sample values) of a metrics ``Evaluation``."""
    out: dict[str, MetricSummary] = {}
    for name in metrics:
        if name not in evaluation:
            continue
        m = evaluation[name]
        out[name] = MetricSummary.from_values(np.asarray(m.values, dtype=np.float64), str(m.unit))
    return out


def unlinked(grasps: GraspSet) -> GraspSet:
    """``grasps`` without its link to a reference set (``reference_index`` and ``attrs["reference"]``), so
    that an explicitly given, already aligned reference pairs with it 1:1."""
    attrs = {k: v for k, v in grasps.attrs.items() if k not in ("reference", "reference_index")}
    return grasps.replace(reference_index=None, attrs=attrs)


def reference_index_of(grasps: GraspSet) -> np.ndarray | None:
    """The (N,) int64 index of each grasp's reference grasp, if the set records one."""
    idx = getattr(grasps, "reference_index", None)
    if idx is None:
        idx = grasps.attrs.get("reference_index")
    return None if idx is None else np.asarray(idx, dtype=np.int64)


def linked(grasps: GraspSet, reference_index: np.ndarray, reference: str) -> GraspSet:
    """``grasps`` linked to its ground truth: ``reference_index`` and ``attrs["reference"]`` (a path
    relative to the grasp file's folder)."""
    return grasps.replace(reference_index=np.asarray(reference_index, dtype=np.int64),
                          attrs={**grasps.attrs, "reference": reference})


@dataclass
class RowRun:
    """One refinement row of a run: which method, toward what, and what came out."""

    label: str
    method: str
    oracle: bool
    refined: GraspSet | None = None
    targets: str | None = None
    error: str | None = None
    time_per_grasp_s: float | None = None


def refine_rows(
    methods: Sequence[str],
    noisy: GraspSet,
    gt_aligned: GraspSet,
    hand: HandModel,
    *,
    oracle: bool,
    seed: int,
    settings: dict[str, Any],
    progress: ProgressLog,
) -> list[RowRun]:
    """Refine ``noisy`` with every method in the wild, then (``oracle``) toward ``gt_aligned``.

    A method that raises a :class:`ContactkitError` is recorded as not available with the error's message. An
    in-the-wild run whose recorded target source mentions the oracle is refused (recorded as not available):
    ground truth must never stand in for a method's own targets.
    """
    from contactkit.refine.api import refine

    wild = in_the_wild(noisy)
    plans = [RowRun(m, m, False) for m in methods]
    if oracle:
        plans += [RowRun(oracle_label(m), m, True) for m in methods]
    n = len(noisy)
    for k, row in enumerate(plans):
        kind = "toward the ground truth (oracle)" if row.oracle else "in the wild"
        with progress.stage(f"refining {n} grasps with {row.method}, {kind} [{k + 1}/{len(plans)}]") as end:
            t0 = time.perf_counter()

            def on_step(step: int, total: int, loss: float) -> None:
                del loss
                progress.step(step, total, "steps")

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    out = refine(unlinked(noisy) if row.oracle else wild, row.method,
                                 targets=gt_aligned if row.oracle else None, hand=hand, seed=seed,
                                 progress=on_step, **settings)
            except ContactkitError as err:
                row.error = str(err)
                progress.line(f"  {row.label}: not available: {err}")
                end.outcome = "not available"
                continue
            row.targets = target_source_of(out)
            if not row.oracle and is_oracle_source(row.targets):
                row.error = (f"its targets resolved to the ground truth ({row.targets}) although none was "
                             "given; refused (use --oracle for upper bounds)")
                progress.line(f"  {row.label}: not available: {row.error}")
                end.outcome = "not available"
                continue
            row.refined = out
            row.time_per_grasp_s = (time.perf_counter() - t0) / max(1, n)
    return plans


def run_pipeline(
    config: PipelineConfig,
    out_dir: str | Path,
    *,
    kind: str = "demo",
    ground_truth: GraspSet | None = None,
    log: Log = _no_log,
    title: str = "contactkit demo",
    extra_config: dict[str, Any] | None = None,
) -> PipelineOutput:
    """Run ground truth → perturbation → refinement (every method; in the wild, then oracle) → evaluation →
    report.

    Args:
        config: sizes, seeds and methods.
        out_dir: output directory (created).
        kind: ``demo`` or ``bench`` (recorded in the results).
        ground_truth: use these grasps instead of synthesising (e.g. the bundled set or a benchmark split).
        log: receives the progress lines (:class:`~contactkit.report.progress.ProgressLog`).
        title: the report's title.
        extra_config: more entries recorded in ``results.json``'s ``config``.
    """
    with ProgressLog(log) as progress:
        return _run(config, Path(out_dir), kind, ground_truth, progress, title, extra_config or {})


def _run(config: PipelineConfig, out: Path, kind: str, ground_truth: GraspSet | None, progress: ProgressLog,
         title: str, extra_config: dict[str, Any]) -> PipelineOutput:
    with progress.stage("loading the hand model and the refinement methods"):
        from contactkit.hands import load_hand
        from contactkit.io.grasps import save_grasps
        from contactkit.metrics.evaluate import evaluate
        from contactkit.refine.methods import list_methods
        from contactkit.synth.perturb import perturb

        hand = load_hand(config.hand)
    methods = list(config.methods) if config.methods is not None else list_methods()
    unknown = [m for m in methods if m not in list_methods()]
    if unknown:
        raise ContactkitError(f"methods: unknown refinement method(s) {unknown}; choose from "
                              f"{', '.join(list_methods())} (comma-separated, e.g. --methods contactopt,cpf)")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    timings: dict[str, float] = {}
    cpu0 = time.process_time()

    t0 = time.perf_counter()
    synth_stats: dict[str, Any] = {}
    if ground_truth is not None:
        gt = ground_truth
    else:
        progress.line(f"synthesising the ground truth on {len(config.objects)} objects")
        gt, synth_stats = _synthesise(config, out, progress)
    timings["ground_truth_s"] = time.perf_counter() - t0
    files["ground_truth"] = out / "ground_truth.npz"
    save_grasps(files["ground_truth"], gt)

    t0 = time.perf_counter()
    with progress.stage(f"perturbing {len(gt)} grasps ({config.protocol} protocol, {config.copies} "
                        f"cop{'y' if config.copies == 1 else 'ies'} each)"):
        # the link is relative to the grasp file's folder, so the output folder can be moved
        noisy = perturb(gt, config.protocol, config.copies, config.seed, reference=files["ground_truth"].name,
                        hand=hand)
    timings["perturb_s"] = time.perf_counter() - t0
    files["perturbed"] = out / "perturbed.npz"
    save_grasps(files["perturbed"], noisy)
    found = reference_index_of(noisy)
    ref_index = found if found is not None else np.arange(len(noisy), dtype=np.int64)
    gt_aligned = unlinked(gt.subset(ref_index))

    t0 = time.perf_counter()
    runs = refine_rows(methods, noisy, gt_aligned, hand, oracle=config.oracle, seed=config.seed,
                       settings=config.refine_settings, progress=progress)
    timings["refine_s"] = time.perf_counter() - t0
    refined: dict[str, GraspSet] = {}
    for r in runs:
        if r.refined is None:
            continue
        refined[r.label] = r.refined
        slug = r.label.replace(" (oracle)", "_oracle").replace(" ", "_")
        files[f"refined_{slug}"] = out / f"refined_{slug}.npz"
        save_grasps(files[f"refined_{slug}"], linked(r.refined, ref_index, files["ground_truth"].name))

    t0 = time.perf_counter()
    evaluations: dict[str, Any] = {}
    sets = {GROUND_TRUTH_ROW: gt_aligned, PERTURBED_ROW: noisy, **refined}
    with progress.stage(f"measuring {len(sets)} grasp sets against the ground truth"):
        for k, (name, gs) in enumerate(sets.items()):
            evaluations[name] = evaluate(unlinked(gs), reference=gt_aligned, metrics=list(config.metrics),
                                         hand=hand)
            progress.step(k + 1, len(sets), "sets")
    timings["evaluate_s"] = time.perf_counter() - t0

    units: dict[str, str] = {}
    rows: list[MethodResult] = []
    for name, gs in sets.items():
        summaries = summarise_evaluation(evaluations[name], config.metrics)
        for m, s in summaries.items():
            units.setdefault(m, s.unit)
        run = next((r for r in runs if r.label == name), None)
        rows.append(MethodResult(name, summaries, None if run is None else run.time_per_grasp_s, len(gs),
                                 targets=None if run is None else run.targets,
                                 oracle=run is not None and run.oracle))
    rows += [MethodResult(r.label, {}, None, 0, error=r.error, oracle=r.oracle) for r in runs if r.error]
    order = {r.label: k for k, r in enumerate(runs)}
    rows.sort(key=lambda r: (r.oracle, order.get(r.method, -1)))
    metric_names = [m for m in config.metrics if m in units]
    results = Results(kind=kind, metric_names=metric_names, units=units, rows=rows,
                      config={**asdict(config), "methods": methods, "num_ground_truth": len(gt),
                              "num_perturbed": len(noisy), "synthesis_stats": synth_stats, **extra_config},
                      environment=environment(), timings_s=timings)

    t0 = time.perf_counter()
    with progress.stage("writing the results and the report"):
        files.update(write_results(results, out))
        files.update(write_report(results, out, gt, noisy, refined, hand, ref_index, evaluations,
                                  config.report_samples, title, progress))
    timings["report_s"] = time.perf_counter() - t0
    timings["cpu_s"] = time.process_time() - cpu0
    results.timings_s = timings
    atomic_write_json(files["results_json"], results.to_json())
    return PipelineOutput(results, out, files)


def write_results(results: Results, out: Path) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv``, ``results.md`` and ``table.txt`` (all from ``results``)."""
    files = {"results_json": out / "results.json", "results_csv": out / "results.csv",
             "results_md": out / "results.md", "table_txt": out / "table.txt"}
    atomic_write_json(files["results_json"], results.to_json())
    atomic_write_text(files["results_csv"], format_csv(results))
    atomic_write_text(files["results_md"], format_markdown_table(results))
    atomic_write_text(files["table_txt"], format_text_table(results) + "\n")
    return files


def write_report(
    results: Results,
    out: Path,
    gt: GraspSet,
    noisy: GraspSet,
    refined: dict[str, GraspSet],
    hand: HandModel,
    ref_index: np.ndarray,
    evaluations: dict[str, Any],
    num_samples: int,
    title: str,
    progress: ProgressLog | None = None,
) -> dict[str, Path]:
    """Plots (SVG), snapshot and ``report.html`` of a run."""
    from contactkit.report.colors import row_colors
    from contactkit.report.html import render_report
    from contactkit.report.plots import standard_plots
    from contactkit.report.scene import build_samples
    from contactkit.report.snapshot import render_snapshot

    files: dict[str, Path] = {}
    colors = row_colors([r.method for r in results.rows if not r.error])
    plots = standard_plots(results, colors, before=PERTURBED_ROW, exclude=(GROUND_TRUTH_ROW,))
    (out / "plots").mkdir(exist_ok=True)
    for k, (caption, svg) in enumerate(plots.items()):
        slug = "".join(c if c.isalnum() else "_" for c in caption.lower()).strip("_")
        p = out / "plots" / f"{k}_{slug[:40]}.svg"
        atomic_write_text(p, svg)
        files[f"plot_{k}"] = p

    n = len(noisy)
    idx = _spread_indices(noisy, min(num_samples, n))
    per_sample: dict[int, dict[str, dict[str, float]]] = {}
    for i in idx:
        per_sample[i] = {}
        for name, ev in evaluations.items():
            layer = "noisy" if name == PERTURBED_ROW else name
            per_sample[i][layer] = {m: float(ev[m].values[i]) for m in results.metric_names if m in ev}
    sources = {r.method: r.targets for r in results.rows if r.targets}
    samples = []
    for k, i in enumerate(idx):
        samples += build_samples(gt, noisy, refined, hand, [i], reference_index=ref_index,
                                 metrics=per_sample, units=results.units, colors=colors, sources=sources)
        if progress is not None:
            progress.step(k + 1, len(idx), "3D views")
    files["snapshot"] = out / "snapshot.png"
    render_snapshot(samples[0], files["snapshot"], title=samples[0].title)
    files["report"] = out / "report.html"
    wild = [r.method for r in results.rows if not r.oracle and r.method not in (PERTURBED_ROW, GROUND_TRUTH_ROW)]
    subtitle = (f"contactkit {__version__} · {results.config.get('num_perturbed', n)} perturbed grasps of "
                f"{len(set(noisy.object_ids))} objects ({results.config.get('protocol', '')} protocol) · "
                f"methods: {', '.join(wild)}")
    notes = [
        "Metrics are measured against the ground truth with contactkit.metrics under their default "
        "definitions (see docs/metrics.md); time per grasp is the method's wall time divided by the number "
        "of grasps (batched).",
        "Targets: 'learned (...)' rows predict contact with a shipped estimator from the noisy hand and the "
        "object; rows marked (oracle) were given the ground truth and are upper bounds only.",
    ]
    render_report(samples, results, plots, files["report"], title=title, subtitle=subtitle, notes=notes,
                  colors=colors)
    return files


def _spread_indices(grasps: GraspSet, k: int) -> list[int]:
    """Up to ``k`` grasp indices, round-robin over objects so every object is shown."""
    by_obj: dict[str, list[int]] = {}
    for i, oid in enumerate(grasps.object_ids):
        by_obj.setdefault(oid, []).append(i)
    out: list[int] = []
    queues = list(by_obj.values())
    while len(out) < k and any(queues):
        for q in queues:
            if q and len(out) < k:
                out.append(q.pop(0))
    return sorted(out)


# ----------------------------------------------------------------------------------------------- entries
def run_demo(out_dir: str | Path, quick: bool = False, *, full: bool = False, log: Log = _no_log,
             methods: Sequence[str] | None = None, ground_truth: str | Path | None = None,
             oracle: bool = True) -> PipelineOutput:
    """The demo (see :func:`demo_config` for sizes).

    Args:
        out_dir: output directory.
        quick: the quick variant (the bundled grasps, short refinement).
        full: synthesise the ground truth (paper settings, more grasps) instead of using the bundled set.
        log: receives the progress lines.
        methods: methods to run (default: all).
        ground_truth: a grasp file to use as ground truth (e.g. your own grasps); default: the bundled
            example set, or synthesis with ``full``.
        oracle: also run the upper-bound block (every method toward the ground truth).
    """
    from contactkit.io.grasps import load_grasps

    config = demo_config(quick=quick, full=full)
    config.oracle = oracle
    if methods is not None:
        config.methods = list(methods)
    gt = None
    extra: dict[str, Any] = {}
    if ground_truth is None and not full:
        ground_truth = demo_set_path()
        if not ground_truth.is_file():
            raise ContactkitError(f"the bundled example set {ground_truth} is missing from this installation; "
                                  "reinstall contactkit, or run `contactkit demo --full` to synthesise one")
    if ground_truth is not None:
        gt = load_grasps(ground_truth)
        config.objects = sorted({gt.objects[o].name for o in gt.object_ids})
        config.grasps_per_object = 0
        extra["ground_truth_file"] = str(ground_truth)
    suffix = {"quick": " (quick)", "full": " (full)"}.get(config.variant, "")
    return run_pipeline(config, out_dir, kind="demo", log=log, ground_truth=gt, extra_config=extra,
                        title="contactkit demo" + suffix)


def run_bench(out_dir: str | Path, quick: bool = False, *, log: Log = _no_log,
              methods: Sequence[str] | None = None, split: str = "split_grasp/test",
              benchmark_dir: str | Path | None = None, oracle: bool = True) -> PipelineOutput:
    """The pipeline over a split of the standard benchmark set.

    The set is built (or reused) by :func:`contactkit.synth.benchmark.build_benchmark_set`.

    Args:
        out_dir: output directory.
        quick: the quick benchmark set (2 grasps per object), refinement cut to 40 iterations, no restarts.
        methods: methods to run (default: all).
        split: which split file of the set, e.g. ``split_grasp/test`` (every object, held-out grasps) or
            ``split_object/test`` (held-out objects).
        benchmark_dir: an existing (or to-be-built) benchmark set folder; default ``out_dir/benchmark_set``.
            A folder with ``manifest.json`` and the split file is used as is; otherwise the set is built there
            (resumable, reused on later runs).
        oracle: also run the upper-bound block (every method toward the ground truth).
    """
    from contactkit.io.grasps import load_grasps
    from contactkit.synth.benchmark import build_benchmark_set

    out = Path(out_dir)
    root = Path(benchmark_dir) if benchmark_dir is not None else out / "benchmark_set"
    split_path = root / f"{split}.npz"
    manifest_path = root / "manifest.json"
    if manifest_path.is_file() and split_path.is_file():
        import json

        log(f"using the benchmark set in {root}")
        manifest = json.loads(manifest_path.read_text())
    else:
        log(f"building the standard benchmark set in {root} (resumable)")
        manifest = build_benchmark_set(root, quick=quick, progress=True)
    if not split_path.is_file():
        raise ContactkitError(f"split: {split_path} does not exist; splits are "
                              "split_grasp/{train,val,test} and split_object/{train,val,test}")
    gt = load_grasps(split_path)
    config = PipelineConfig(objects=sorted({gt.objects[o].name for o in gt.object_ids}),
                            grasps_per_object=int(manifest.get("grasps_per_object", 0)),
                            variant="quick" if quick else "default", oracle=oracle,
                            report_samples=6, methods=list(methods) if methods is not None else None,
                            refine_settings={"iterations": 40, "restarts": 1} if quick else {})
    config_extra = {"benchmark_dir": str(root), "split": split, "benchmark_seed": manifest.get("seed")}
    return run_pipeline(config, out, kind="bench", ground_truth=gt, log=log, extra_config=config_extra,
                        title="contactkit benchmark" + (" (quick)" if quick else ""))


def render_grasp_file(
    path: str | Path,
    out_path: str | Path,
    *,
    reference: str | Path | None = None,
    max_samples: int = 24,
    snapshot: str | Path | None = None,
    with_metrics: bool = True,
    log: Log = _no_log,
) -> dict[str, Path]:
    """Render any grasp file as the report's 3D view (``contactkit view``).

    Args:
        path: a grasp file (:func:`contactkit.io.grasps.load_grasps`).
        out_path: the ``.html`` to write.
        reference: ground-truth grasp file; by default the file's ``attrs["reference"]`` when it exists
            (resolved as given, then relative to the grasp file's directory).
        max_samples: show at most this many grasps (spread over objects).
        snapshot: also write a PNG still of the first grasp there.
        with_metrics: evaluate the shown grasps (against the reference when there is one) for the table.
    """
    from contactkit.hands import load_hand
    from contactkit.io.grasps import load_grasps
    from contactkit.report.html import render_report
    from contactkit.report.scene import build_samples
    from contactkit.report.snapshot import render_snapshot

    src = Path(path)
    grasps = load_grasps(src)
    ref_path: Path | None = Path(reference) if reference is not None else None
    if ref_path is None and grasps.attrs.get("reference"):
        for cand in (Path(str(grasps.attrs["reference"])), src.parent / str(grasps.attrs["reference"])):
            if cand.exists():
                ref_path = cand
                break
    ref = load_grasps(ref_path) if ref_path is not None else None
    ref_index = None
    if ref is not None:
        ref_index = reference_index_of(grasps)
        if ref_index is not None:
            pass
        elif len(ref) == len(grasps):
            ref_index = np.arange(len(grasps), dtype=np.int64)
        else:
            raise ContactkitError(f"reference: {ref_path} has {len(ref)} grasps and {src} has {len(grasps)}, "
                                  f"and {src} records no reference_index")
    hand = load_hand(grasps.hand_model, grasps.side)
    idx = _spread_indices(grasps, min(max_samples, len(grasps)))
    sub = grasps.subset(np.asarray(idx, dtype=np.int64))
    sub_ref = ref.subset(ref_index[idx]) if ref is not None and ref_index is not None else None
    metrics: dict[int, dict[str, dict[str, float]]] = {}
    units: dict[str, str] = {}
    label = src.stem
    if with_metrics:
        from contactkit.metrics.evaluate import evaluate

        log(f"evaluating {len(sub)} grasps")
        names = [m for m in TABLE_METRICS if sub_ref is not None or m not in ("mpjpe_mm", "contact_f1_pct")]
        ev = evaluate(sub, reference=sub_ref, metrics=names)
        summaries = summarise_evaluation(ev, names)
        units = {m: s.unit for m, s in summaries.items()}
        for k in range(len(sub)):
            metrics[k] = {label: {m: s.values[k] for m, s in summaries.items()}}
    log(f"building {len(sub)} views")
    source = target_source_of(grasps)
    samples = build_samples(sub_ref, None, {label: sub}, hand, list(range(len(sub))),
                            titles=[f"{sub.objects[sub.object_ids[k]].name} #{i}" for k, i in enumerate(idx)],
                            metrics=metrics, units=units, sources={label: source} if source else None)
    subtitle = (f"{len(grasps)} grasps ({grasps.hand_model}, {grasps.side} hand); showing {len(sub)}"
                + (f"; ground truth: {ref_path}" if ref_path else ""))
    files = {"report": render_report(samples, None, None, out_path, title=f"contactkit view: {src.name}",
                                     subtitle=subtitle)}
    if snapshot is not None:
        files["snapshot"] = Path(snapshot)
        render_snapshot(samples[0], snapshot, title=samples[0].title)
    return files

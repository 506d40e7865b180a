"""The main job: synthesise ground truth, perturb it, refine with every method, evaluate, report.

:func:`run_demo` works on the bundled objects (``contactkit demo``); :func:`run_bench` runs the same pipeline
over the standard benchmark set (``contactkit bench``). Both write, atomically, into one output directory:

- ``results.json``: every number of the run (:class:`~contactkit.report.results.Results`); the printed
  table (:func:`~contactkit.report.tables.format_text_table`), ``results.md`` and ``results.csv`` are
  formatted from the same object;
- ``report.html``: the self-contained report (3D views, table, plots), ``snapshot.png``: a still of the first
  sample, ``plots/*.png``;
- the grasp files: ``ground_truth.npz``, ``perturbed.npz``, ``refined_<method>.npz``.

Library code does not print: stage messages go to the ``log`` callback, progress bars to stderr (tqdm).
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contactkit import __version__
from contactkit.errors import ContactkitError
from contactkit.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from contactkit.report.results import MethodResult, MetricSummary, Results
from contactkit.report.tables import format_csv, format_markdown_table, format_text_table

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

Log = Callable[[str], None]


def _no_log(msg: str) -> None:
    del msg


@dataclass
class PipelineConfig:
    """Sizes and seeds of a run (recorded in ``results.json``).

    Attributes:
        objects: bundled object names (or ``load_object`` specs).
        grasps_per_object: ground-truth grasps synthesised per object.
        protocol: perturbation protocol name (:func:`contactkit.synth.perturb.perturb`).
        copies: perturbed copies per ground-truth grasp.
        methods: refinement methods; ``None`` means every available method.
        metrics: metric columns.
        hand: hand model name.
        seed: seed of synthesis, perturbation and refinement.
        report_samples: how many grasps the report shows in 3D.
        quick: whether this is the ``--quick`` variant.
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
    metrics: list[str] = field(default_factory=lambda: list(TABLE_METRICS))
    hand: str = "openhand"
    seed: int = 0
    report_samples: int = 6
    quick: bool = False
    synthesis: dict[str, Any] = field(default_factory=dict)
    refine_settings: dict[str, Any] = field(default_factory=dict)
    synthesis_max_batches: int | None = None


def demo_config(quick: bool = False) -> PipelineConfig:
    """The demo's configuration.

    Full: every bundled object, 2 grasps each, each method's paper settings. Quick: one object (the mug when
    bundled: the best synthesis yield), 2 grasps, methods cut to 40 iterations without restarts.
    """
    from contactkit.objects import list_bundled_objects

    objects = list(list_bundled_objects())
    if not objects:
        raise ContactkitError("objects: contactkit has no bundled objects to run the demo on")
    synthesis = {"batch_size": 16}
    if quick:
        first = "mug" if "mug" in objects else objects[0]
        return PipelineConfig(objects=[first], grasps_per_object=2, report_samples=2, quick=True,
                              synthesis=synthesis, refine_settings={"iterations": 40, "restarts": 1},
                              synthesis_max_batches=8)
    return PipelineConfig(objects=objects, grasps_per_object=2, report_samples=6, synthesis=synthesis,
                          synthesis_max_batches=12)


@dataclass
class PipelineOutput:
    """What a run produced: its results and the paths it wrote."""

    results: Results
    out_dir: Path
    files: dict[str, Path]


def available_methods(hand_name: str = "openhand") -> list[str]:
    """Every refinement method contactkit provides (:mod:`contactkit.refine.methods`), with oracle targets,
    followed by ``METHOD+ESTIMATOR`` rows for the methods that run on a shipped learned estimator for
    ``hand_name`` (no ground truth used: the real-world setting)."""
    from contactkit.learn.estimators import shipped_weights_exist
    from contactkit.refine.api import LEARNED_ESTIMATORS
    from contactkit.refine.methods import list_methods

    learned = [f"{m}+{kind}" for m, kind in LEARNED_ESTIMATORS.items()
               if m in ("contactopt", "cpf") and shipped_weights_exist(kind, hand_name)]
    return [*list_methods(), *learned]


def method_and_targets(row: str, oracle: GraspSet) -> tuple[str, GraspSet | None]:
    """Split a method row name into the refine method and its targets.

    ``"contactopt"`` → oracle targets (the aligned ground truth); ``"contactopt+deepcontact"`` → no targets, so
    :func:`contactkit.refine.api.refine` uses the method's shipped learned estimator.
    """
    from contactkit.refine.api import LEARNED_ESTIMATORS

    if "+" not in row:
        return row, oracle
    method, estimator = row.split("+", 1)
    if LEARNED_ESTIMATORS.get(method) != estimator:
        raise ContactkitError(
            f"method row {row!r}: {method!r} has no learned estimator {estimator!r}; "
            f"known: {sorted(f'{m}+{k}' for m, k in LEARNED_ESTIMATORS.items())}"
        )
    return method, None


def environment() -> dict[str, Any]:
    """Versions and device of this run."""
    import torch

    return {
        "contactkit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "platform": platform.platform(),
    }


# ----------------------------------------------------------------------------------------------- stages
def synthesise_ground_truth(
    config: PipelineConfig, out_dir: Path | None = None, log: Log = _no_log
) -> tuple[GraspSet, dict[str, Any]]:
    """Synthesise ``config.grasps_per_object`` grasps on every object of the config, concatenated.

    With ``out_dir``, each object's synthesis is resumable and reused (``out_dir/synth/<object>.npz``).

    Returns:
        the grasps and per-object synthesis statistics.
    """
    from contactkit.io.grasps import GraspSet, load_grasps
    from contactkit.objects import load_object
    from contactkit.synth.synthesis import SynthesisConfig, synthesize

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
        log(f"synthesising {config.grasps_per_object} grasps on {obj.name}")
        try:
            # the same seed for every object, so a quick run's grasps are reused by the full demo
            res = synthesize(obj, config.grasps_per_object, hand=config.hand, seed=config.seed,
                             config=synth_cfg, out=target, progress=True,
                             max_batches=config.synthesis_max_batches)
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
    """Run ground truth → perturbation → refinement (every method) → evaluation → report.

    Args:
        config: sizes, seeds and methods.
        out_dir: output directory (created).
        kind: ``demo`` or ``bench`` (recorded in the results).
        ground_truth: use these grasps instead of synthesising (e.g. a benchmark split).
        log: receives one line per stage.
        title: the report's title.
        extra_config: more entries recorded in ``results.json``'s ``config``.
    """
    from tqdm.auto import tqdm

    from contactkit.hands import load_hand
    from contactkit.io.grasps import save_grasps
    from contactkit.metrics.evaluate import evaluate
    from contactkit.refine.api import refine
    from contactkit.synth.perturb import perturb

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    timings: dict[str, float] = {}
    hand = load_hand(config.hand)

    t0 = time.perf_counter()
    synth_stats: dict[str, Any] = {}
    if ground_truth is not None:
        gt = ground_truth
    else:
        gt, synth_stats = synthesise_ground_truth(config, out, log)
    timings["ground_truth_s"] = time.perf_counter() - t0
    files["ground_truth"] = out / "ground_truth.npz"
    save_grasps(files["ground_truth"], gt)

    log(f"perturbing {len(gt)} grasps ({config.protocol} protocol, {config.copies} copies)")
    t0 = time.perf_counter()
    # the link is relative to the grasp file's folder, so the output folder can be moved
    noisy = perturb(gt, config.protocol, config.copies, config.seed, reference=files["ground_truth"].name,
                    hand=hand)
    timings["perturb_s"] = time.perf_counter() - t0
    files["perturbed"] = out / "perturbed.npz"
    save_grasps(files["perturbed"], noisy)
    found = reference_index_of(noisy)
    ref_index = found if found is not None else np.arange(len(noisy), dtype=np.int64)
    gt_aligned = unlinked(gt.subset(ref_index))
    noisy_unlinked = unlinked(noisy)

    methods = list(config.methods) if config.methods is not None else available_methods(config.hand)
    refined: dict[str, GraspSet] = {}
    rows: list[MethodResult] = []
    times: dict[str, float] = {}
    errors: dict[str, str] = {}
    for method in tqdm(methods, desc="refining", unit="method"):
        log(f"refining {len(noisy)} grasps with {method}")
        t0 = time.perf_counter()
        try:
            base, targets = method_and_targets(method, gt_aligned)
            refined[method] = refine(noisy_unlinked, base, targets=targets, hand=hand, seed=config.seed,
                                     **config.refine_settings)
        except ContactkitError as err:
            errors[method] = f"{type(err).__name__}: {err}"
            warnings.warn(f"method {method} failed: {err}", stacklevel=2)
            continue
        times[method] = (time.perf_counter() - t0) / max(1, len(noisy))
        files[f"refined_{method}"] = out / f"refined_{method}.npz"
        save_grasps(files[f"refined_{method}"],
                    linked(refined[method], ref_index, files["ground_truth"].name))
    timings["refine_s"] = float(sum(times.values()) * max(1, len(noisy)))

    log("evaluating")
    t0 = time.perf_counter()
    evaluations: dict[str, Any] = {}
    sets = {GROUND_TRUTH_ROW: gt_aligned, PERTURBED_ROW: noisy, **refined}
    for name, gs in tqdm(list(sets.items()), desc="evaluating", unit="set"):
        evaluations[name] = evaluate(unlinked(gs), reference=gt_aligned, metrics=list(config.metrics),
                                     hand=hand)
    timings["evaluate_s"] = time.perf_counter() - t0

    units: dict[str, str] = {}
    for name, gs in sets.items():
        summaries = summarise_evaluation(evaluations[name], config.metrics)
        for m, s in summaries.items():
            units.setdefault(m, s.unit)
        rows.append(MethodResult(name, summaries, times.get(name), len(gs)))
    rows += [MethodResult(m, {}, None, 0, error=e) for m, e in errors.items()]
    metric_names = [m for m in config.metrics if m in units]
    results = Results(kind=kind, metric_names=metric_names, units=units, rows=rows,
                      config={**asdict(config), "methods": methods, "num_ground_truth": len(gt),
                              "num_perturbed": len(noisy), "synthesis_stats": synth_stats,
                              **(extra_config or {})},
                      environment=environment(), timings_s=timings)

    log("writing results and report")
    t0 = time.perf_counter()
    files.update(write_results(results, out))
    files.update(write_report(results, out, gt, noisy, refined, hand, ref_index, evaluations,
                              config.report_samples, title))
    timings["report_s"] = time.perf_counter() - t0
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
) -> dict[str, Path]:
    """Plots, snapshot and ``report.html`` of a run."""
    from tqdm.auto import tqdm

    from contactkit.report.html import render_report
    from contactkit.report.plots import standard_plots
    from contactkit.report.scene import build_samples
    from contactkit.report.snapshot import render_snapshot

    files: dict[str, Path] = {}
    plots = standard_plots(results, before=PERTURBED_ROW, exclude=(GROUND_TRUTH_ROW,))
    (out / "plots").mkdir(exist_ok=True)
    for k, (caption, png) in enumerate(plots.items()):
        slug = "".join(c if c.isalnum() else "_" for c in caption.lower()).strip("_")
        p = out / "plots" / f"{k}_{slug[:40]}.png"
        atomic_write_bytes(p, png)
        files[f"plot_{k}"] = p

    n = len(noisy)
    idx = _spread_indices(noisy, min(num_samples, n))
    per_sample: dict[int, dict[str, dict[str, float]]] = {}
    for i in idx:
        per_sample[i] = {}
        for name, ev in evaluations.items():
            layer = "noisy" if name == PERTURBED_ROW else name
            per_sample[i][layer] = {m: float(ev[m].values[i]) for m in results.metric_names if m in ev}
    samples = []
    for i in tqdm(idx, desc="report views", unit="grasp"):
        samples += build_samples(gt, noisy, refined, hand, [i], reference_index=ref_index,
                                 metrics=per_sample, units=results.units)
    files["snapshot"] = out / "snapshot.png"
    render_snapshot(samples[0], files["snapshot"], title=samples[0].title)
    files["report"] = out / "report.html"
    subtitle = (f"contactkit {__version__} · {results.config.get('num_perturbed', n)} perturbed grasps "
                f"({results.config.get('protocol', '')} protocol) · methods: "
                + ", ".join(r.method for r in results.rows if r.method not in (PERTURBED_ROW, GROUND_TRUTH_ROW)))
    notes = [
        "Layers: object (with its DiffContact contact map), the noisy hand the methods started from, "
        "each method's refined hand, and the ground truth. Hand contact is DiffContact's capsule model on "
        "the exact signed distance; magenta dots mark hand vertices inside the object.",
        "Metrics are measured against the ground truth with contactkit.metrics under their default "
        "definitions (see docs/metrics.md); time per grasp is the method's wall time divided by the number "
        "of grasps (batched).",
    ]
    render_report(samples, results, plots, files["report"], title=title, subtitle=subtitle, notes=notes)
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
def run_demo(out_dir: str | Path, quick: bool = False, *, log: Log = _no_log,
             methods: Sequence[str] | None = None, ground_truth: str | Path | None = None) -> PipelineOutput:
    """The demo on the bundled objects (see :func:`demo_config` for sizes).

    Args:
        out_dir: output directory.
        quick: the quick variant.
        log: receives one line per stage.
        methods: methods to run (default: all).
        ground_truth: a grasp file to use as ground truth instead of synthesising (e.g. your own grasps).
    """
    config = demo_config(quick)
    if methods is not None:
        config.methods = list(methods)
    gt = None
    if ground_truth is not None:
        from contactkit.io.grasps import load_grasps

        gt = load_grasps(ground_truth)
        config.objects = sorted({gt.objects[o].name for o in gt.object_ids})
        config.grasps_per_object = 0
    return run_pipeline(config, out_dir, kind="demo", log=log, ground_truth=gt,
                        title="contactkit demo" + (" (quick)" if quick else ""))


def run_bench(out_dir: str | Path, quick: bool = False, *, log: Log = _no_log,
              methods: Sequence[str] | None = None, split: str = "split_grasp/test",
              benchmark_dir: str | Path | None = None) -> PipelineOutput:
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
                            grasps_per_object=int(manifest.get("grasps_per_object", 0)), quick=quick,
                            report_samples=6, methods=list(methods) if methods is not None else None,
                            refine_settings={"iterations": 40, "restarts": 1} if quick else {})
    config_extra = {"benchmark_dir": str(root), "split": split, "benchmark_seed": manifest.get("seed")}
    config.synthesis = {}
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
    samples = build_samples(sub_ref, None, {label: sub}, hand, list(range(len(sub))),
                            titles=[f"{sub.objects[sub.object_ids[k]].name} #{i}" for k, i in enumerate(idx)],
                            metrics=metrics, units=units)
    subtitle = (f"{len(grasps)} grasps ({grasps.hand_model}, {grasps.side} hand); showing {len(sub)}"
                + (f"; ground truth: {ref_path}" if ref_path else ""))
    files = {"report": render_report(samples, None, None, out_path, title=f"contactkit view: {src.name}",
                                     subtitle=subtitle)}
    if snapshot is not None:
        files["snapshot"] = Path(snapshot)
        render_snapshot(samples[0], snapshot, title=samples[0].title)
    return files

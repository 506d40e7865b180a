"""Paper 003's ablations on ground-truth grasps, reported on held-out objects.

Stages (each resumable; outputs under --work, never in git):

1. ``split``: the ground-truth grasps split by object, fixed before any training; test objects are never seen in
   training or model selection. Two sources: ``--data DATASET`` (a rendered dataset, split by object at build
   time: its train / val / test splits' grasps, ``RenderedDataset(root, split).grasps``), or ``--synth-dir DIR``
   (per-object grasp files, ``scripts/train_shipped_models.py --synth-only`` writes them, split here with
   ``contactkit.synth.benchmark.split_by_object(names, seed)``).
2. ``train``: ``contactkit train lifter`` (the project's command) for the Table 2 variants — hand sub-graph only,
   object sub-graph only, full graph — then the Table 3 pair: the full graph fine-tuned with MSE + affinity
   (weight 10) and, as the control with the same steps, with MSE alone (weight 0), both from the same weights.
3. ``eval``: every variant lifts ground-truth 2D keypoints of the test grasps seen by random cameras (fixed
   seed): mean 3D hand and object keypoint errors (mm; root-relative, and camera-frame with the translation
   solved from the 2D inputs), 95 % bootstrap intervals over grasps, 3D PCK curves and AUC (0-50 mm).
4. ``grasps``: lifted keypoints -> hand IK + box placement -> grasps, scored against the ground truth before and
   after ``refine --method affinity`` with the estimate itself as its keypoint target (no oracle).

Usage: ``PYTHONPATH=src python benchmarks/bm_keypoints.py (--data DATASET | --synth-dir DIR) --work DIR
[--stages split,train,eval]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from contactkit.hands import load_hand  # noqa: E402
from contactkit.io.atomic import atomic_write_json  # noqa: E402
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps  # noqa: E402
from contactkit.synth.benchmark import split_by_object  # noqa: E402

#: variant name -> extra ``contactkit train lifter`` arguments (``{work}`` is substituted)
VARIANTS: dict[str, list[str]] = {
    "hand_only": ["--mode", "hand"],
    "object_only": ["--mode", "object"],
    "full": ["--mode", "full"],
    "full_ft_mse": ["--mode", "full", "--init", "{work}/runs/full/best.pt", "--finetune-epochs", "{ft}",
                    "--affinity-weight", "0"],
    "full_ft_affinity": ["--mode", "full", "--init", "{work}/runs/full/best.pt", "--finetune-epochs", "{ft}",
                         "--affinity-weight", "10"],
    # sensitivity: the paper's weight is 10 on L_3D in unknown units; here L_3D is in mm^2, so 10 is tiny
    "full_ft_affinity_1000": ["--mode", "full", "--init", "{work}/runs/full/best.pt", "--finetune-epochs", "{ft}",
                              "--affinity-weight", "1000"],
}
TEST_VIEW_SEED = 20_011
#: paired comparisons reported with bootstrap intervals (first minus second, per test grasp)
PAIRS = [("full", "hand_only"), ("full", "object_only"), ("full_ft_affinity", "full_ft_mse"),
         ("full_ft_affinity_1000", "full_ft_mse")]
GRASP_METRICS = ["mpjpe_mm", "object_mpvpe_mm", "penetration_depth_mm", "intersection_volume_cm3",
                 "contact_coverage_pct", "simulation_displacement_cm", "affinity_diversity"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stage_split(args: argparse.Namespace) -> None:
    if args.data is not None:
        from contactkit.dataset import RenderedDataset

        parts: dict[str, list[str]] = {}
        for part in ("train", "val", "test"):
            grasps = RenderedDataset(args.data, part).grasps
            save_grasps(args.work / f"gt_{part}.npz", grasps)
            parts[part] = sorted({o.name for o in grasps.objects.values()})
            log(f"{part}: {len(parts[part])} objects, {len(grasps)} grasps")
        atomic_write_json(args.work / "split.json", {"data": str(args.data), **parts})
        return
    files = sorted(args.synth_dir.glob("*.npz"))
    names = [f.stem for f in files]
    split = split_by_object(names, args.seed)
    for part, objs in split.items():
        sets = [load_grasps(args.synth_dir / f"{n}.npz") for n in objs]
        save_grasps(args.work / f"gt_{part}.npz", GraspSet.concat(sets))
        log(f"{part}: {len(objs)} objects, {sum(len(s) for s in sets)} grasps")
    atomic_write_json(args.work / "split.json", {"seed": args.seed, **split})


def stage_train(args: argparse.Namespace) -> None:
    for name in args.variants:
        extra = [a.format(work=args.work, ft=args.finetune_epochs) for a in VARIANTS[name]]
        cmd = [sys.executable, "-m", "contactkit", "train", "lifter", "--data", str(args.work / "gt_train.npz"),
               "--val", str(args.work / "gt_val.npz"), "--out", str(args.work / "runs" / name), "--epochs",
               str(args.epochs), "--views-per-grasp", str(args.views_per_grasp), "--seed", str(args.seed),
               "--quiet", *extra]
        t0 = time.perf_counter()
        log(" ".join(cmd))
        subprocess.run(cmd, check=True)
        log(f"{name}: trained in {time.perf_counter() - t0:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a rendered dataset (split by object at build time)")
    source.add_argument("--synth-dir", type=Path, help="per-object ground-truth grasp files (split here)")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--stages", default="split,train,eval,grasps")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--finetune-epochs", type=int, default=8)
    p.add_argument("--views-per-grasp", type=int, default=40)
    p.add_argument("--test-views", type=int, default=20)
    p.add_argument("--grasp-rows", type=int, default=24)
    p.add_argument("--grasp-variants", default="full_ft_mse,full_ft_affinity")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.variants = args.variants.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    stages = args.stages.split(",")
    if "split" in stages:
        stage_split(args)
    if "train" in stages:
        stage_train(args)
    if "eval" in stages:
        stage_eval(args)
    if "grasps" in stages:
        stage_grasps(args)


def _bootstrap_ci(per_grasp: np.ndarray, seed: int = 0, n: int = 2000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean over grasps."""
    rng = np.random.default_rng(seed)
    means = per_grasp[rng.integers(0, len(per_grasp), (n, len(per_grasp)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _test_views(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from contactkit.vision.data import synthetic_views

    gt = load_grasps(args.work / "gt_test.npz")
    hand = load_hand(gt.hand_model, gt.side)
    return gt, hand, synthetic_views(gt, hand, args.test_views, seed=TEST_VIEW_SEED)


def stage_eval(args: argparse.Namespace) -> None:
    from contactkit.vision.metrics import PCK_THRESHOLDS_MM, keypoint_errors_mm, pck_auc, pck_curve
    from contactkit.vision.train import lifter_from_checkpoint, predict_lifter

    gt, _, views = _test_views(args)
    targets = {"hand": views.keypoints_3d[:, :21] - views.keypoints_3d[:, :1],
               "object": views.keypoints_3d[:, 21:] - views.keypoints_3d[:, 21:].mean(1, keepdim=True),
               "hand_camera": views.keypoints_3d[:, :21], "object_camera": views.keypoints_3d[:, 21:]}
    grasp_of_view = views.grasp_index.numpy()
    results: dict[str, Any] = {"test_objects": sorted({o.name for o in gt.objects.values()}),
                               "test_grasps": len(gt), "test_views": len(views), "variants": {}, "paired": {}}
    per_grasp_of: dict[tuple[str, str], np.ndarray] = {}
    for name in args.variants:
        ckpt = args.work / "runs" / name / "best.pt"
        if not ckpt.is_file():
            log(f"{name}: no checkpoint, skipped")
            continue
        net, training = lifter_from_checkpoint(ckpt)
        pred = predict_lifter(net, views)
        row: dict[str, Any] = {"epoch": training["epoch"]}
        for part, value in pred.items():
            per_view = keypoint_errors_mm(value, targets[part]).mean(1).numpy()
            per_grasp = np.array([per_view[grasp_of_view == g].mean() for g in range(len(gt))])
            per_grasp_of[(name, part)] = per_grasp
            pck = pck_curve(per_view)
            row[part] = {"mean_mm": float(per_view.mean()), "ci95_mm": _bootstrap_ci(per_grasp),
                         "auc_0_50": pck_auc(pck), "pck": pck.tolist()}
        results["variants"][name] = row
        log(f"{name}: " + ", ".join(f"{k} {v['mean_mm']:.1f} mm" for k, v in row.items() if isinstance(v, dict)))
    for a, b in PAIRS:
        for part in ("hand", "object"):
            if (a, part) in per_grasp_of and (b, part) in per_grasp_of:
                diff = per_grasp_of[(a, part)] - per_grasp_of[(b, part)]
                results["paired"][f"{a} - {b} ({part})"] = {"mean_mm": float(diff.mean()),
                                                            "ci95_mm": _bootstrap_ci(diff)}
    results["pck_thresholds_mm"] = PCK_THRESHOLDS_MM.tolist()
    atomic_write_json(args.work / "eval.json", results)
    lines = ["| lifter (ground-truth 2D in) | hand mm [95 % CI] | object mm [95 % CI] | hand AUC | object AUC | "
             "hand cam. mm | object cam. mm |", "|---|---|---|---|---|---|---|"]
    for name, row in results["variants"].items():
        def cell(part: str, key: str, row: dict[str, Any] = row) -> str:
            if part not in row:
                return "-"
            v = row[part]
            if key == "mean":
                lo, hi = v["ci95_mm"]
                return f"{v['mean_mm']:.1f} [{lo:.1f}, {hi:.1f}]"
            if key == "auc":
                return f"{v['auc_0_50']:.3f}"
            return f"{v['mean_mm']:.1f}"
        lines.append(f"| {name} | {cell('hand', 'mean')} | {cell('object', 'mean')} | {cell('hand', 'auc')} | "
                     f"{cell('object', 'auc')} | {cell('hand_camera', 'x')} | {cell('object_camera', 'x')} |")
    lines += ["", "| paired difference over test grasps (negative: first is better) | mean mm | 95 % CI |",
              "|---|---|---|"]
    lines += [f"| {k} | {v['mean_mm']:+.2f} | [{v['ci95_mm'][0]:+.2f}, {v['ci95_mm'][1]:+.2f}] |"
              for k, v in results["paired"].items()]
    (args.work / "eval.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    _plot_pck(results, args.work / "pck.png")


def _plot_pck(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = results["pck_thresholds_mm"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, part in zip(axes, ("hand", "object"), strict=True):
        for name, row in results["variants"].items():
            if part in row:
                ax.plot(t, row[part]["pck"], label=f"{name} (AUC {row[part]['auc_0_50']:.2f})")
        ax.set_xlabel("threshold (mm)")
        ax.set_ylabel("3D PCK")
        ax.set_title(f"{part}, root-relative, held-out objects")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def stage_grasps(args: argparse.Namespace) -> None:
    from contactkit.fit import grasps_from_keypoints
    from contactkit.metrics import evaluate
    from contactkit.refine import refine
    from contactkit.refine.targets import ContactTargets
    from contactkit.vision.camera import camera_to_world
    from contactkit.vision.train import lifter_from_checkpoint, predict_lifter

    gt, hand, views = _test_views(args)
    rows = np.random.default_rng(args.seed).choice(len(views), size=min(args.grasp_rows, len(views)), replace=False)
    sub = views.subset(sorted(rows.tolist()))
    results: dict[str, Any] = {}
    for name in args.grasp_variants.split(","):
        ckpt = args.work / "runs" / name / "best.pt"
        if not ckpt.is_file():
            continue
        net, _ = lifter_from_checkpoint(ckpt)
        pred = predict_lifter(net, sub)
        ext = sub.cam_from_world.double()
        hand_w = camera_to_world(pred["hand_camera"].double(), ext)
        obj_w = camera_to_world(pred["object_camera"].double(), ext)
        meshes = [gt.objects[gt.object_ids[int(g)]] for g in sub.grasp_index]
        est = grasps_from_keypoints(hand, hand_w, obj_w, meshes, reference_index=sub.grasp_index.numpy(),
                                    attrs={"reference": str(args.work / "gt_test.npz"),
                                           "estimated_by": f"lifter {name} from ground-truth 2D"})
        save_grasps(args.work / f"est_{name}.npz", est)
        targets = ContactTargets(ref_keypoints=hand_w.float())
        refined = refine(est, "affinity", targets=targets, hand=hand, seed=args.seed)
        save_grasps(args.work / f"est_{name}_affinity.npz", refined)
        for label, grasps in (("fitted", est), ("fitted + refine affinity", refined)):
            ev = evaluate(grasps, metrics=GRASP_METRICS)
            results[f"{name}: {label}"] = ev.to_dict()
            log(f"{name} {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in ev.means().items()))
    atomic_write_json(args.work / "grasps.json", results)


if __name__ == "__main__":
    main()

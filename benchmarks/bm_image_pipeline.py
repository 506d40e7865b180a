"""Paper 003's image pipeline on a rendered dataset, reported on its held-out (test-split) objects.

image -> 2D keypoints (the image network) -> 3D by the context-aware graph network -> hand IK + rigid box fit.

Stages (outputs under --work, never in git):

1. ``gt``: the ground-truth grasps of the train and val splits (``RenderedDataset(root, split).grasps``) ->
   ``gt_{split}.npz``, the graph network's training data (the test split's are written by ``eval``, from the same
   reading of the dataset as its views: a dataset still being built grows between stages).
2. ``train``: ``contactkit train lifter`` on ``gt_train.npz`` (full graph, then the affinity fine-tuning) and
   ``contactkit train keypoints`` on the dataset (train split; model selection on val).
3. ``eval``: every test view — 2D error (pixels of the dataset image) and 2D PCK, mean 3D hand / box-corner errors
   (mm; root-relative, and camera-frame), 3D PCK AUC (0-50 mm), 95 % bootstrap intervals over test grasps — for
   the rows: the training mean (baseline), the image network end to end, its 2D fed to the graph network trained
   from exact 2D, the fitted grasps (IK + box fit) of both, and the graph network on ground-truth 2D (oracle,
   an upper bound).
   Then the image pipeline's fitted grasps with and without the fit stage's penetration term
   (``IKSettings.penetration_weight``), scored by ``contactkit.metrics.evaluate`` (``grasps.json``).

Usage: ``PYTHONPATH=src python benchmarks/bm_image_pipeline.py --data /work/data/v3 --work DIR [--stages ...]``.
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

from contactkit.dataset import RenderedDataset  # noqa: E402
from contactkit.io.atomic import atomic_write_json  # noqa: E402
from contactkit.io.grasps import save_grasps  # noqa: E402
from contactkit.vision.data import OneBoxSamples  # noqa: E402
from contactkit.vision.metrics import pck_auc, pck_curve  # noqa: E402

GRASP_METRICS = ["mpjpe_mm", "object_mpvpe_mm", "penetration_depth_mm", "intersection_volume_cm3",
                 "contact_coverage_pct"]
PX_THRESHOLDS = np.arange(0.0, 20.5, 0.5)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stage_gt(args: argparse.Namespace) -> None:
    for split in ("train", "val"):
        ds = RenderedDataset(args.data, split)
        save_grasps(args.work / f"gt_{split}.npz", ds.grasps)
        log(f"{split}: {len(set(ds.grasps.object_ids))} objects, {len(ds.grasps)} grasps, {len(ds)} views")


def _run(cmd: list[str]) -> None:
    log(" ".join(cmd))
    subprocess.run(cmd, check=True)


def stage_train(args: argparse.Namespace) -> None:
    ck = [sys.executable, "-m", "contactkit", "train"]
    runs = args.work / "runs"
    if "lifter" in args.train:
        common = ["lifter", "--data", str(args.work / "gt_train.npz"), "--val", str(args.work / "gt_val.npz"),
                  "--views-per-grasp", str(args.views_per_grasp), "--seed", str(args.seed), "--quiet"]
        _run([*ck, *common, "--out", str(runs / "lifter"), "--epochs", str(args.lifter_epochs)])
        _run([*ck, *common, "--out", str(runs / "lifter_ft"), "--init", str(runs / "lifter" / "best.pt"),
              "--finetune-epochs", str(args.lifter_finetune_epochs), "--affinity-weight", "10"])
    if "keypoints" in args.train:
        _run([*ck, "keypoints", "--data", str(args.data), "--out", str(runs / "keypoints"), "--epochs",
              str(args.keypoint_epochs), "--width", str(args.width), "--blocks", args.blocks, "--image-size",
              str(args.image_size), "--views-per-step", "16", "--seed", str(args.seed), "--quiet"])


def _keypoint_net(path: Path) -> Any:
    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.vision.heads import KeypointNet, KeypointNetConfig

    ckpt = load_checkpoint(path, expected_kind="keypoints")
    net = KeypointNet(KeypointNetConfig.from_dict(ckpt.config))
    net.load_state_dict(ckpt.state_dict)
    return net.eval()


@torch.no_grad()
def _image_predictions(net: Any, samples: OneBoxSamples, batch: int = 32) -> dict[str, torch.Tensor]:
    """The image network on every sample: 2D in dataset pixels, root-relative and camera-frame 3D (metres)."""
    from contactkit.vision.backbone import normalize_images
    from contactkit.vision.heads import resize_to_square

    out: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(samples), batch):
        chunk = [samples[i] for i in range(start, min(start + batch, len(samples)))]
        rgb = torch.as_tensor(np.stack([s["rgb"] for s in chunk]))
        k = torch.as_tensor(np.stack([s["K"] for s in chunk]))
        h, w = rgb.shape[1:3]
        img, k_small = resize_to_square(rgb, k, net.config.image_size)
        pred = net(normalize_images(img), k_small)
        size = net.config.image_size
        uv = pred.keypoints_2d
        uv = torch.stack([(uv[..., 0] + 0.5) * w / size - 0.5, (uv[..., 1] + 0.5) * h / size - 0.5], -1)
        for name, v in (("uv", uv), ("hand", pred.lifted.hand), ("object", pred.lifted.object),
                        ("hand_camera", pred.hand_camera), ("object_camera", pred.object_camera)):
            out.setdefault(name, []).append(v.float())
    return {k: torch.cat(v) for k, v in out.items()}


def _bootstrap(per_view: np.ndarray, groups: np.ndarray, seed: int = 0, n: int = 2000) -> list[float]:
    """95 % percentile bootstrap interval of the mean, resampling test grasps (all views of a grasp together);
    non-finite values (metrics not computable on a row) are left out."""
    keep = np.isfinite(per_view)
    per_view, groups = per_view[keep], groups[keep]
    ids = np.unique(groups)
    sums = np.array([per_view[groups == g].sum() for g in ids])
    counts = np.array([(groups == g).sum() for g in ids])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(ids), (n, len(ids)))
    means = sums[pick].sum(1) / counts[pick].sum(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _scores(pred: dict[str, torch.Tensor], truth: dict[str, torch.Tensor], groups: np.ndarray) -> dict[str, Any]:
    """Mean errors with intervals, PCK AUCs; ``pred`` / ``truth`` share keys among uv / hand / object / *_camera."""
    row: dict[str, Any] = {}
    for name, value in pred.items():
        if name not in truth:
            continue
        err = (value.double() - truth[name].double()).norm(dim=-1)
        if name == "uv":
            per_view = err.mean(1).numpy()
            row["2d_px"] = float(per_view.mean())
            row["2d_px_ci"] = _bootstrap(per_view, groups)
            row["2d_pck_auc_0_20px"] = pck_auc((err.reshape(-1, 1).numpy() <= PX_THRESHOLDS).mean(0), PX_THRESHOLDS)
            row["2d_pck_5px"] = float((err <= 5.0).double().mean())
            row["2d_px_hand"] = float(err[:, :21].mean())
            row["2d_px_object"] = float(err[:, 21:].mean())
            continue
        per_view = (err * 1000.0).mean(1).numpy()
        row[f"{name}_mm"] = float(per_view.mean())
        row[f"{name}_mm_ci"] = _bootstrap(per_view, groups)
        row[f"{name}_auc"] = pck_auc(pck_curve(per_view))
    return row


def _fitted(grasps: Any, hand: Any, ext: torch.Tensor) -> dict[str, torch.Tensor]:
    """Camera-frame hand keypoints and box corners of fitted grasps (and their root-relative versions)."""
    from contactkit.objects.library import object_box_corners
    from contactkit.vision.losses import root_relative_targets

    t = grasps.hand_tensors(dtype=torch.float64)
    with torch.no_grad():
        kp = hand.to(dtype=torch.float64)(t["global_orient"], t["hand_pose"], t["betas"] if t["betas"].shape[1]
                                          else None, t["transl"]).keypoints
    box = torch.stack([torch.as_tensor(object_box_corners(grasps.objects[o])[0]) for o in grasps.object_ids])
    corners = box @ torch.as_tensor(np.array(grasps.object_rotation)).transpose(1, 2) + torch.as_tensor(
        np.array(grasps.object_translation))[:, None]
    e = ext.double()
    cam = torch.cat([kp, corners], 1) @ e[:, :3, :3].transpose(1, 2) + e[:, None, :3, 3]
    hand_rr, obj_rr = root_relative_targets(cam)
    return {"hand": hand_rr, "object": obj_rr, "hand_camera": cam[:, :21], "object_camera": cam[:, 21:]}


def _test_samples(args: argparse.Namespace) -> tuple[OneBoxSamples, list[dict[str, Any]]]:
    samples = OneBoxSamples(RenderedDataset(args.data, "test", cache_shards=1_000_000))
    return samples, [samples[i] for i in range(len(samples))]


def _fit(hand: Any, cam_hand: torch.Tensor, cam_obj: torch.Tensor, ext: torch.Tensor, gt: Any,
         grasp_index: np.ndarray, weight: float, label: str, args: argparse.Namespace) -> Any:
    from contactkit.fit import IKSettings, grasps_from_keypoints
    from contactkit.vision.camera import camera_to_world

    hand_w = camera_to_world(cam_hand.double(), ext.double())
    obj_w = camera_to_world(cam_obj.double(), ext.double())
    meshes = [gt.objects[gt.object_ids[int(g)]] for g in grasp_index]
    return grasps_from_keypoints(hand, hand_w, obj_w, meshes, ik=IKSettings(penetration_weight=weight),
                                 reference_index=grasp_index.astype(np.int64),
                                 attrs={"reference": str(args.work / "gt_test.npz"), "estimated_by": label})


def stage_eval(args: argparse.Namespace) -> None:
    from contactkit.hands import load_hand
    from contactkit.vision.camera import pixels_to_normalized
    from contactkit.vision.losses import root_relative_targets
    from contactkit.vision.train import lifter_from_checkpoint

    samples, test = _test_samples(args)
    gt = samples.dataset.grasps
    save_grasps(args.work / "gt_test.npz", gt)
    hand = load_hand(gt.hand_model, gt.side)
    groups = np.array([int(s["grasp_index"]) for s in test])
    kp3 = torch.as_tensor(np.stack([np.concatenate([s["hand_keypoints_3d"], s["object_corners_3d"]]) for s in test]))
    uv_t = torch.as_tensor(np.stack([np.concatenate([s["hand_keypoints_2d"], s["object_corners_2d"]]) for s in test]))
    k = torch.as_tensor(np.stack([s["K"] for s in test]))
    ext = torch.as_tensor(np.stack([s["cam_from_world"] for s in test]))
    hand_t, obj_t = root_relative_targets(kp3)
    truth = {"uv": uv_t, "hand": hand_t, "object": obj_t, "hand_camera": kp3[:, :21], "object_camera": kp3[:, 21:]}
    rows: dict[str, Any] = {"_info": {"test_views": len(test), "test_grasps": int(len(np.unique(groups))),
                                      "test_objects": sorted({o.name for o in gt.objects.values()})}}

    # baseline: the training split's mean (root-relative pose and box; 2D keypoints)
    train = OneBoxSamples(RenderedDataset(args.data, "train", cache_shards=1_000_000))
    tr = [train[i] for i in range(len(train))]
    tr3 = torch.as_tensor(np.stack([np.concatenate([s["hand_keypoints_3d"], s["object_corners_3d"]]) for s in tr]))
    tr2 = torch.as_tensor(np.stack([np.concatenate([s["hand_keypoints_2d"], s["object_corners_2d"]]) for s in tr]))
    th, to = root_relative_targets(tr3)
    n = len(test)
    mean = {"uv": tr2.mean(0).expand(n, -1, -1), "hand": th.mean(0).expand(n, -1, -1),
            "object": to.mean(0).expand(n, -1, -1)}
    rows["training mean (baseline)"] = _scores(mean, truth, groups)

    lifter, _ = lifter_from_checkpoint(args.work / "runs" / "lifter_ft" / "best.pt")

    def lift(uv: torch.Tensor) -> dict[str, torch.Tensor]:
        norm = pixels_to_normalized(uv.float(), k.float())
        with torch.no_grad():
            out = lifter(norm)
            ch, co = lifter.camera_frame(out, norm)
        return {"hand": out.hand, "object": out.object, "hand_camera": ch, "object_camera": co}

    oracle = lift(uv_t)
    rows["graph network on ground-truth 2D (oracle: ground-truth 2D, upper bound)"] = _scores(oracle, truth, groups)
    net = _keypoint_net(args.work / "runs" / "keypoints" / "best.pt")
    img = _image_predictions(net, samples)
    rows["image network end to end"] = _scores(img, truth, groups)
    lifted = lift(img["uv"])
    rows["image network 2D -> graph network trained on exact 2D"] = _scores({"uv": img["uv"], **lifted}, truth,
                                                                            groups)
    for label, src in (("image network end to end", img), ("image network 2D -> graph network trained on exact 2D",
                                                           lifted)):
        est = _fit(hand, src["hand_camera"], src["object_camera"], ext, gt, groups, 0.0, label, args)
        rows[f"{label} -> fitted grasp"] = _scores(_fitted(est, hand, ext), truth, groups)
        log(f"{label} -> fitted: {rows[f'{label} -> fitted grasp']}")
    for name, row in rows.items():
        if not name.startswith("_"):
            log(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float)))
    atomic_write_json(args.work / "eval.json", rows)
    _grasps(args, hand, {"image pipeline": img, "graph network on ground-truth 2D (oracle)": oracle}, ext, gt,
            groups)


def _grasps(args: argparse.Namespace, hand: Any, preds: dict[str, dict[str, torch.Tensor]], ext: torch.Tensor,
            gt: Any, groups: np.ndarray) -> None:
    from contactkit.metrics import evaluate

    results: dict[str, Any] = {}
    for (source, pred), weight in ((p, w) for p in preds.items() for w in args.penetration_weights):
        label = f"{source}, fit penetration weight {weight:g}"
        t0 = time.perf_counter()
        est = _fit(hand, pred["hand_camera"], pred["object_camera"], ext, gt, groups, weight, label, args)
        fit_s = time.perf_counter() - t0
        save_grasps(args.work / f"est_{'oracle' if 'oracle' in source else 'image'}_pen{weight:g}.npz", est)
        ev = evaluate(est, metrics=GRASP_METRICS)
        results[label] = {"means": ev.means(), "fit_seconds": fit_s,
                          "ik_error_mm": float(np.mean([m["ik_error_mm"] for m in est.metadata])),
                          "values": {m: np.asarray(ev[m].values, dtype=float).tolist() for m in GRASP_METRICS}}
        if weight != args.penetration_weights[0]:  # paired against the first weight (0: no penetration term)
            base = results[f"{source}, fit penetration weight {args.penetration_weights[0]:g}"]["values"]
            results[label]["paired_difference_ci"] = {
                m: _bootstrap(np.asarray(results[label]["values"][m]) - np.asarray(base[m]), groups)
                for m in ("mpjpe_mm", "penetration_depth_mm", "intersection_volume_cm3")}
        log(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in ev.means().items()) + f", fit {fit_s:.0f} s")
    atomic_write_json(args.work / "grasps.json", results)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--stages", default="gt,train,eval")
    p.add_argument("--train", default="lifter,keypoints")
    p.add_argument("--lifter-epochs", type=int, default=20)
    p.add_argument("--lifter-finetune-epochs", type=int, default=4)
    p.add_argument("--views-per-grasp", type=int, default=20)
    p.add_argument("--keypoint-epochs", type=int, default=40)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--blocks", default="1,1,1")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--penetration-weights", default="0,1,10")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.train = args.train.split(",")
    args.penetration_weights = [float(w) for w in args.penetration_weights.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    stages = args.stages.split(",")
    for name, fn in (("gt", stage_gt), ("train", stage_train), ("eval", stage_eval)):
        if name in stages:
            fn(args)


if __name__ == "__main__":
    main()

"""HoNet and the image PiCR against the baselines they must beat, on held-out objects of a rendered dataset.

Run by hand (not a timed test), after ``contactkit train honet`` and ``contactkit train picr-image``::

    python benchmarks/bm_image_baselines.py --data DS [--honet RUN/honet/best.pt] [--picr RUN/picr/best.pt] \\
        [--split test] --md OUT.md --json OUT.json

HoNet, per view of ``--split`` (default ``test``: objects never used in training or model selection), camera
frame: the root-relative hand keypoint error (R-MPJPE), the wrist error, and the object pose error (mean distance
of the object's surface samples at the predicted vs the true pose, both relative to the true wrist, so it does not
include the wrist error). Baseline: the train split's means, predicted for every view — mean root-relative hand,
mean wrist position, and the mean object pose relative to the wrist (mean offset; rotation = the projection of the
mean rotation matrix onto SO(3)).

Image PiCR: vertex-contact F1 (%), precision and recall at 0.5 on the split's object samples, with the inputs it
is trained on (the ground-truth hand plus the training noise, fixed seed). Baselines on the same inputs: every
point in contact; the distance rule "within tau of the noisy hand" with tau chosen on the val split; contactkit's
shipped geometric PiCR (same hand and points, world frame).

Intervals: 95 % paired bootstrap over views of the per-view change (model - baseline).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from bm_obman_ablation import paired_interval
from contactkit.dataset import RenderedDataset
from contactkit.learn.checkpoint import load_checkpoint
from contactkit.learn.estimators import estimator_for_hand
from contactkit.vision.honet import posed_object_points
from contactkit.vision.picr_image import ImagePiCR, ImagePiCRConfig
from contactkit.vision.train_obman import ObjectSamples, honet_from_checkpoint, obman_batch
from contactkit.vision.train_picr_image import ImagePiCRTrainConfig, picr_batch

#: Distance-rule thresholds tried on the val split, metres.
TAUS = (0.002, 0.005, 0.01, 0.015, 0.02, 0.03)


def _targets(ds: RenderedDataset, hand, image_size: int, chunk: int = 64):
    """Camera-frame targets (``ObManTargets`` fields) and network inputs of every view of ``ds``, in chunks."""
    objects = ObjectSamples(ds.grasps)
    for s in range(0, len(ds), chunk):
        yield obman_batch([ds[i] for i in range(s, min(s + chunk, len(ds)))], ds.grasps, hand, objects, image_size)


def _so3_mean(rots: Tensor) -> Tensor:
    u, _, vt = torch.linalg.svd(rots.double().mean(0))
    d = torch.sign(torch.det(u @ vt))
    return (u @ torch.diag(torch.tensor([1.0, 1.0, float(d)], dtype=torch.float64)) @ vt).float()


@torch.no_grad()
def honet_table(data: Path, split: str, weights: Path) -> tuple[list[str], dict]:
    net, training = honet_from_checkpoint(weights)
    train = RenderedDataset(data, "train")
    kps, roots, offs, rots = [], [], [], []
    for _, _, t in _targets(train, net.hand, 32):
        kps.append(t.hand_keypoints)
        roots.append(t.root)
        offs.append(t.object_translation)
        rots.append(t.object_rotation)
    mean_kp, mean_root = torch.cat(kps).mean(0), torch.cat(roots).mean(0)
    mean_off, mean_rot = torch.cat(offs).mean(0), _so3_mean(torch.cat(rots))
    ds = RenderedDataset(data, split)
    per: dict[str, dict[str, list[float]]] = {"HoNet": {}, "train mean": {}}

    def add(name: str, metric: str, v: Tensor) -> None:
        per[name].setdefault(metric, []).extend((v * 1e3).tolist())

    for images, k, t in _targets(ds, net.hand, net.config.image_size, 32):
        out = net(images, k)
        add("HoNet", "r_mpjpe_mm", (out.hand_keypoints - t.hand_keypoints).norm(dim=-1).mean(-1))
        add("HoNet", "root_mm", (out.root - t.root).norm(dim=-1))
        add("HoNet", "object_mm", (posed_object_points(out, t.object_local_points) - t.object_points)
            .norm(dim=-1).mean(-1))
        add("train mean", "r_mpjpe_mm", (mean_kp - t.hand_keypoints).norm(dim=-1).mean(-1))
        add("train mean", "root_mm", (mean_root - t.root).norm(dim=-1))
        add("train mean", "object_mm", (t.object_local_points @ mean_rot.T + mean_off - t.object_points)
            .norm(dim=-1).mean(-1))
    labels = {"r_mpjpe_mm": "hand R-MPJPE mm", "root_mm": "wrist mm", "object_mm": "object pose mm"}
    epoch = training.get("epoch")
    lines = [f"HoNet `{weights}` (epoch {epoch + 1 if isinstance(epoch, int) else '?'}) on split `{split}`: "
             f"{len(ds)} views of {len(set(ds.grasps.object_ids))} objects.", "",
             "| | " + " | ".join(labels.values()) + " |", "|---" * 4 + "|"]
    for name in per:
        lines.append(f"| {name} | " + " | ".join(f"{np.mean(per[name][m]):.1f}" for m in labels) + " |")
    cells = []
    for m in labels:
        mean, lo, hi = paired_interval(np.asarray(per["HoNet"][m]) - np.asarray(per["train mean"][m]))
        cells.append(f"{mean:.1f} [{lo:.1f}, {hi:.1f}]")
    lines.append("| HoNet − mean [95 % paired] | " + " | ".join(cells) + " |")
    return lines, per


def _f1_parts(pred: Tensor, target: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-view true positives, predicted positives and actual positives (float arrays)."""
    return ((pred & target).sum(-1).double().numpy(), pred.sum(-1).double().numpy(),
            target.sum(-1).double().numpy())


def _scores(parts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[float, float, float]:
    tp, pp, ap = (float(x.sum()) for x in parts)
    p, r = tp / max(pp, 1.0), tp / max(ap, 1.0)
    return 100 * 2 * p * r / max(p + r, 1e-12), 100 * p, 100 * r


def _per_view_f1(parts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    tp, pp, ap = parts
    return 100 * 2 * tp / np.maximum(pp + ap, 1.0)


@torch.no_grad()
def picr_table(data: Path, split: str, weights: Path) -> tuple[list[str], dict]:
    ckpt = load_checkpoint(weights, expected_kind="picr-image")
    picr = ImagePiCR(ImagePiCRConfig.from_dict(ckpt.config))
    picr.load_state_dict(ckpt.state_dict)
    picr.eval()
    cfg = ImagePiCRTrainConfig(**ckpt.training["config"])
    geometric = estimator_for_hand("picr", picr.hand)

    def batches(ds: RenderedDataset):
        gen = torch.Generator().manual_seed(20_011)
        for s in range(0, len(ds), 16):
            chunk = [ds[i] for i in range(s, min(s + 16, len(ds)))]
            ext = torch.as_tensor(np.stack([np.asarray(c["cam_from_world"], np.float32) for c in chunk]))
            yield picr_batch(chunk, ds.grasps, picr, cfg.num_points, gen, cfg.noise_pose, cfg.noise_transl), ext

    def near(bt: dict, tau: float) -> Tensor:
        return torch.cdist(bt["obj_points"], bt["hand_verts"]).min(-1).values < tau

    val_parts = {tau: [] for tau in TAUS}
    for bt, _ in batches(RenderedDataset(data, "val")):
        target = bt["vc"] > 0.5
        for tau in TAUS:
            val_parts[tau].append(_f1_parts(near(bt, tau), target))
    tau_best = max(TAUS, key=lambda t: _scores(tuple(np.concatenate(x) for x in zip(*val_parts[t], strict=True)))[0])
    ds = RenderedDataset(data, split)
    rows: dict[str, list] = {"image PiCR": [], "all points in contact": [],
                             f"distance rule (tau = {tau_best * 1e3:.0f} mm, val-chosen)": [], "geometric PiCR": []}
    for bt, ext in batches(ds):
        target = bt["vc"] > 0.5
        out = picr(bt["images"], bt["k"], bt["hand_verts"], bt["obj_points"], bt["obj_normals"])
        n = bt["hand_verts"].shape[1]
        r, t = ext[:, :3, :3], ext[:, :3, 3][:, None]
        fields = geometric.predict_fields((bt["hand_verts"] - t) @ r, (bt["obj_points"] - t) @ r,
                                          bt["obj_normals"] @ r)
        preds = [torch.sigmoid(out.vc[:, n:]) > 0.5, torch.ones_like(target), near(bt, tau_best), fields.vc > 0.5]
        for name, pred in zip(rows, preds, strict=True):
            rows[name].append(_f1_parts(pred, target))
    parts = {name: tuple(np.concatenate(x) for x in zip(*v, strict=True)) for name, v in rows.items()}
    rate = 100 * parts["image PiCR"][2].sum() / (len(ds) * cfg.num_points)
    lines = [f"Image PiCR `{weights}` on split `{split}`: {len(ds)} views, {cfg.num_points} object samples each, "
             f"hands = ground truth + noise ({cfg.noise_pose} rad, {cfg.noise_transl * 1e3:.0f} mm); contact = "
             f"ground truth within 5 mm (positive rate {rate:.1f} %).",
             "", "| | VC F1 % | precision % | recall % | per-view F1 % | per-view F1 change of the image PiCR "
             "[95 % paired] |", "|---|---|---|---|---|---|"]
    mine = _per_view_f1(parts["image PiCR"])
    for name, p in parts.items():
        f1, prec, rec = _scores(p)
        if name == "image PiCR":
            change = "—"
        else:
            mean, lo, hi = paired_interval(mine - _per_view_f1(p))
            change = f"{mean:+.1f} [{lo:+.1f}, {hi:+.1f}]"
        lines.append(f"| {name} | {f1:.1f} | {prec:.1f} | {rec:.1f} | {_per_view_f1(p).mean():.1f} | {change} |")
    return lines, {name: _per_view_f1(p).tolist() for name, p in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--honet", type=Path, default=None)
    ap.add_argument("--picr", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    lines, per = [], {}
    if args.honet is not None:
        text, per["honet"] = honet_table(args.data, args.split, args.honet)
        lines += text + [""]
    if args.picr is not None:
        text, per["picr"] = picr_table(args.data, args.split, args.picr)
        lines += text + [""]
    out = "\n".join(lines)
    print(out)
    if args.md is not None:
        args.md.write_text(out, encoding="utf-8")
    if args.json is not None:
        args.json.write_text(json.dumps(per), encoding="utf-8")


if __name__ == "__main__":
    main()

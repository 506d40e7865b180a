"""Seeded, resumable training of CPF's image PiCR (paper 004 §4) on rendered samples.

Inputs per view: the image, the hand posed from the ground-truth parameters plus Gaussian noise (``noise_pose``
radians on every axis-angle coordinate, ``noise_transl`` metres on the translation; the noise of epoch ``e``
depends only on ``(seed, e)``), standing in for HoNet's estimate, and ``num_points`` object surface samples with
normals at the true pose. Targets: :func:`contactkit.learn.data.picr_targets` of the ground-truth hand (vertex
contact within 5 mm, the touching subregion, the anchor elasticity). Loss: the geometric PiCR's
(:func:`~contactkit.vision.picr_image.image_picr_loss`). Validation: vertex-contact F1 (%) at 0.5 on the val split.
Checkpoints (kind ``picr-image``), log and resume as :mod:`contactkit.vision.train`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.io.grasps import GraspSet
from contactkit.learn.data import picr_targets
from contactkit.learn.train import f1_score
from contactkit.vision.backbone import normalize_images
from contactkit.vision.heads import resize_to_square
from contactkit.vision.picr_image import ImagePiCR, ImagePiCRConfig, image_picr_loss
from contactkit.vision.train import _rank_world, start_run
from contactkit.vision.train_keypoints import SampleSource
from contactkit.vision.train_obman import epoch_batches, save_epoch

__all__ = ["ImagePiCRTrainConfig", "picr_batch", "train_image_picr"]


@dataclass(frozen=True)
class ImagePiCRTrainConfig:
    """Settings of :func:`train_image_picr` (saved in every checkpoint); see the module docstring."""

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    num_points: int = 512
    noise_pose: float = 0.1
    noise_transl: float = 0.01
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if (self.epochs < 1 or self.batch_size < 2 or self.num_points < 16
                or min(self.noise_pose, self.noise_transl) < 0):
            raise ContactkitError("epochs >= 1, batch_size >= 2, num_points >= 16 and non-negative noise needed")


def picr_batch(samples: Sequence[Mapping[str, Any]], grasps: GraspSet, picr: ImagePiCR, num_points: int,
               gen: torch.Generator, noise_pose: float, noise_transl: float, device: torch.device | str = "cpu"
               ) -> dict[str, Tensor]:
    """Network inputs (camera frame) and PiCR targets of a batch (see the module docstring)."""
    hand = picr.hand
    rgb = torch.as_tensor(np.stack([np.asarray(s["rgb"]) for s in samples]))
    k = torch.as_tensor(np.stack([np.asarray(s["K"], np.float32) for s in samples]))
    img, k_small = resize_to_square(rgb, k, picr.config.image_size)
    rows = np.array([int(s["grasp_index"]) for s in samples])
    ext = torch.as_tensor(np.stack([np.asarray(s["cam_from_world"], np.float32) for s in samples]))
    r_cw, t_cw = ext[:, :3, :3], ext[:, :3, 3]
    t = grasps.hand_tensors(dtype=torch.float32)
    b = len(rows)
    betas = t["betas"][rows] if t["betas"].shape[1] else None
    with torch.no_grad():
        gt = hand(t["global_orient"][rows], t["hand_pose"][rows], betas, t["transl"][rows]).vertices
        noisy = hand(t["global_orient"][rows] + noise_pose * torch.randn(b, 3, generator=gen),
                     t["hand_pose"][rows] + noise_pose * torch.randn(b, 45, generator=gen), betas,
                     t["transl"][rows] + noise_transl * torch.randn(b, 3, generator=gen)).vertices
    pts, nrm = [], []
    for row in rows:
        p, n = grasps.objects[grasps.object_ids[row]].sample_surface(num_points, seed=0)
        rot = np.asarray(grasps.object_rotation[row])
        pts.append(p @ rot.T + np.asarray(grasps.object_translation[row]))
        nrm.append(n @ rot.T)

    def cam(x: Tensor) -> Tensor:
        return x.float() @ r_cw.transpose(1, 2) + t_cw[:, None]

    pts_c = cam(torch.as_tensor(np.stack(pts)))
    nrm_c = torch.as_tensor(np.stack(nrm)).float() @ r_cw.transpose(1, 2)
    gt_c = cam(gt)
    ann = hand.annotations
    vc, region, el = picr_targets(gt_c, hand.anchors(gt_c), pts_c, torch.as_tensor(ann.region_of_vertex),
                                  torch.as_tensor(ann.anchor_region))
    out = {"images": normalize_images(img), "k": k_small, "hand_verts": cam(noisy), "obj_points": pts_c,
           "obj_normals": nrm_c, "vc": vc, "region": region, "elasticity": el.float()}
    return {name: v.to(device) for name, v in out.items()}


@torch.no_grad()
def _val_f1(picr: ImagePiCR, samples: SampleSource, grasps: GraspSet, config: ImagePiCRTrainConfig) -> float:
    picr.eval()
    gen = torch.Generator().manual_seed(10_007)
    preds, targets = [], []
    for start in range(0, len(samples), 16):
        chunk = [samples[i] for i in range(start, min(start + 16, len(samples)))]
        bt = picr_batch(chunk, grasps, picr, config.num_points, gen, config.noise_pose, config.noise_transl,
                        config.device)
        out = picr(bt["images"], bt["k"], bt["hand_verts"], bt["obj_points"], bt["obj_normals"])
        preds.append(torch.sigmoid(out.vc[:, bt["hand_verts"].shape[1]:]).cpu() > 0.5)
        targets.append(bt["vc"].cpu() > 0.5)
    return f1_score(torch.cat(preds), torch.cat(targets))


def train_image_picr(train_samples: SampleSource, train_grasps: GraspSet, val_samples: SampleSource,
                     val_grasps: GraspSet, run_dir: str | Path, net_config: ImagePiCRConfig,
                     config: ImagePiCRTrainConfig, *, progress: bool = True,
                     metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or resume) an image PiCR; returns the last epoch's log record (``best.pt``: best validation F1)."""
    run_dir = Path(run_dir)
    rank, world = _rank_world()
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    picr = ImagePiCR(net_config).to(device)
    optimiser = torch.optim.Adam(picr.parameters(), lr=config.lr)
    start_epoch, _, record = start_run(run_dir, "picr-image", picr, optimiser, asdict(net_config), asdict(config),
                                       rank=rank)
    best_f1 = float(record.get("best_vc_f1_pct", -1.0))
    for epoch in range(start_epoch, config.epochs):
        picr.train()
        gen, batches = epoch_batches(len(train_samples), config.batch_size, config.seed, epoch, rank, world,
                                     desc=f"picr-image epoch {epoch + 1}/{config.epochs}", progress=progress)
        t0 = time.perf_counter()
        total, count = 0.0, 0
        for idx in batches:
            bt = picr_batch([train_samples[i] for i in idx], train_grasps, picr, config.num_points, gen,
                            config.noise_pose, config.noise_transl, device)
            loss = image_picr_loss(picr, bt["images"], bt["k"], bt["hand_verts"], bt["obj_points"],
                                   bt["obj_normals"], bt["vc"], bt["region"], bt["elasticity"])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        if rank != 0:
            continue
        f1 = _val_f1(picr, val_samples, val_grasps, config)
        improved = f1 > best_f1
        best_f1 = max(best_f1, f1)
        record = {"epoch": epoch, "train": {"total": total / max(count, 1)}, "val": {"vc_f1_pct": f1},
                  "best_vc_f1_pct": best_f1, "seconds": time.perf_counter() - t0}
        training = {**(metadata or {}), "kind": "picr-image", "epoch": epoch, "config": asdict(config), "last": record}
        save_epoch(run_dir, "picr-image", asdict(net_config), picr, optimiser, record, training, improved)
    return record

"""Seeded, resumable, DDP-ready training of CPF's image PiCR (paper 004 §4) on rendered samples.

Inputs per view: the image, the hand posed from the ground-truth parameters plus Gaussian noise (``noise_pose``
radians on every axis-angle coordinate, ``noise_transl`` metres on the translation; the noise of epoch ``e``
depends only on ``(seed, e)``), standing in for HoNet's estimate, and ``num_points`` object surface samples with
normals at the true pose. Targets: :func:`contactkit.learn.data.picr_targets` of the ground-truth hand (vertex
contact within 5 mm, the touching subregion, the anchor elasticity). Loss: the geometric PiCR's
(:func:`~contactkit.vision.picr_image.image_picr_loss`). Validation: vertex-contact F1 (%) at 0.5 on the val split
(model selection) and the threshold t_vc maximising it, recorded in the checkpoint (``training["vc_threshold"]``)
for MIHO's springs. Checkpoints (kind ``picr-image``), log, resume and DDP as :mod:`contactkit.vision.train`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from contactkit.errors import ContactkitError
from contactkit.io.grasps import GraspSet
from contactkit.learn.checkpoint import load_checkpoint
from contactkit.learn.data import picr_targets
from contactkit.learn.estimators import PICR_VC_THRESHOLD
from contactkit.learn.train import f1_score
from contactkit.vision.backbone import normalize_images
from contactkit.vision.heads import resize_to_square
from contactkit.vision.picr_image import ImagePiCR, ImagePiCRConfig, image_picr_loss
from contactkit.vision.run import EpochMeans, epoch_batches, open_run, save_epoch
from contactkit.vision.train_keypoints import SampleSource

__all__ = ["VC_THRESHOLDS", "ImagePiCRTrainConfig", "image_picr_from_checkpoint", "picr_batch", "train_image_picr",
           "validation_scores"]


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


#: Vertex-contact thresholds tried on the validation split (t_vc of the springs, paper 004 Alg. 1).
VC_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


@torch.no_grad()
def validation_scores(picr: ImagePiCR, samples: SampleSource, grasps: GraspSet, config: ImagePiCRTrainConfig
                      ) -> dict[str, float]:
    """Vertex-contact F1 (%) on ``samples`` at 0.5 (``vc_f1_pct``) and at the best of :data:`VC_THRESHOLDS`
    (``vc_threshold``, ``vc_f1_pct_at_threshold``; ties: the higher threshold), with the training noise drawn
    from a fixed seed."""
    picr.eval()
    gen = torch.Generator().manual_seed(10_007)
    probs, targets = [], []
    for start in range(0, len(samples), 16):
        chunk = [samples[i] for i in range(start, min(start + 16, len(samples)))]
        bt = picr_batch(chunk, grasps, picr, config.num_points, gen, config.noise_pose, config.noise_transl,
                        config.device)
        out = picr(bt["images"], bt["k"], bt["hand_verts"], bt["obj_points"], bt["obj_normals"])
        probs.append(torch.sigmoid(out.vc[:, bt["hand_verts"].shape[1]:]).cpu())
        targets.append(bt["vc"].cpu() > 0.5)
    p, t = torch.cat(probs), torch.cat(targets)
    f1 = {thr: f1_score(p > thr, t) for thr in VC_THRESHOLDS}
    best = max(reversed(VC_THRESHOLDS), key=lambda thr: f1[thr])
    return {"vc_f1_pct": f1_score(p > 0.5, t), "vc_threshold": best, "vc_f1_pct_at_threshold": f1[best]}


def image_picr_from_checkpoint(path: str | Path) -> tuple[ImagePiCR, dict[str, Any]]:
    """An image PiCR (eval mode) and the training dict of a ``kind="picr-image"`` checkpoint; its ``vc_threshold``
    is the checkpoint's validation-tuned one when recorded, else paper 004's 0.8."""
    ckpt = load_checkpoint(path, expected_kind="picr-image")
    picr = ImagePiCR(ImagePiCRConfig.from_dict(ckpt.config))
    picr.load_state_dict(ckpt.state_dict)
    picr.vc_threshold = float(ckpt.training.get("vc_threshold", PICR_VC_THRESHOLD))
    return picr.eval(), ckpt.training


class _PiCRLoss(nn.Module):
    """The training step's module: :func:`~contactkit.vision.picr_image.image_picr_loss` of a batch
    (:func:`picr_batch`) as a ``forward``, so that DDP sees the call and averages the gradients."""

    def __init__(self, picr: ImagePiCR) -> None:
        super().__init__()
        self.picr = picr

    def forward(self, bt: dict[str, Tensor]) -> Tensor:
        return image_picr_loss(self.picr, bt["images"], bt["k"], bt["hand_verts"], bt["obj_points"],
                               bt["obj_normals"], bt["vc"], bt["region"], bt["elasticity"])


def train_image_picr(train_samples: SampleSource, train_grasps: GraspSet, val_samples: SampleSource,
                     val_grasps: GraspSet, run_dir: str | Path, net_config: ImagePiCRConfig,
                     config: ImagePiCRTrainConfig, *, progress: bool = True,
                     metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or resume) an image PiCR; returns the last epoch's log record (``best.pt``: best validation F1)."""
    run_dir = Path(run_dir)
    run = open_run(run_dir, "picr-image", lambda: ImagePiCR(net_config), asdict(net_config), asdict(config),
                   seed=config.seed, lr=config.lr, device=config.device, wrap=_PiCRLoss)
    picr, record = run.net, run.record
    best_f1 = float(record.get("best_vc_f1_pct", -1.0))
    for epoch in range(run.start_epoch, config.epochs):
        picr.train()
        gen, batches = epoch_batches(len(train_samples), config.batch_size, config.seed, epoch, run.rank, run.world,
                                     desc=f"picr-image epoch {epoch + 1}/{config.epochs}", progress=progress)
        t0 = time.perf_counter()
        losses = EpochMeans()
        for idx in batches:
            bt = picr_batch([train_samples[i] for i in idx], train_grasps, picr, config.num_points, gen,
                            config.noise_pose, config.noise_transl, run.device)
            loss = run.model(bt)
            run.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            run.optimiser.step()
            losses.add({"total": loss}, len(idx))
        if run.rank != 0:
            continue
        val = validation_scores(picr, val_samples, val_grasps, config)
        f1 = val["vc_f1_pct"]
        improved = f1 > best_f1
        best_f1 = max(best_f1, f1)
        record = {"epoch": epoch, "train": losses.means(), "val": val,
                  "best_vc_f1_pct": best_f1, "seconds": time.perf_counter() - t0}
        training = {**(metadata or {}), "kind": "picr-image", "epoch": epoch, "config": asdict(config), "last": record,
                    "vc_threshold": val["vc_threshold"]}
        save_epoch(run_dir, "picr-image", asdict(net_config), picr, run.optimiser, record, training, improved)
    return record

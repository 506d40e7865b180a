"""Seeded, resumable, DDP-ready training of ObMan's hand + object network (paper 001 §3) and of CPF's HoNet (paper
004 §4) on rendered samples.

Samples are contract-A dicts of the rendered dataset (``contactkit.dataset.RenderedDataset``); the ground truth
comes from the dataset's grasp set (the hand posed by the hand layer, the object mesh posed and sampled), moved
to the camera frame with each view's ``cam_from_world``. Stages share one epoch counter: ``epochs`` with
``L_Hand + L_Object`` (+ the root term), then ``finetune_epochs`` at ``finetune_lr`` with ``contact_weight x
L_Contact`` added (paper: 10; 0 gives the no-contact control with the same number of steps; HoNet has no
contact stage). Checkpoints (``kind="obman-net"`` or ``"honet"``, from the type of the network config),
``log.jsonl``, ``config.json``, resume and DDP behave as in :mod:`contactkit.vision.train`
(:func:`~contactkit.vision.run.open_run`). Model selection (``best.pt``) uses the validation split only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.geometry.sampling import sample_surface
from contactkit.hands.base import HandModel
from contactkit.io.grasps import GraspSet
from contactkit.learn.checkpoint import load_checkpoint
from contactkit.metrics.pose import chamfer_distance
from contactkit.vision.backbone import normalize_images
from contactkit.vision.heads import resize_to_square
from contactkit.vision.honet import HoNet, HoNetConfig, honet_losses, posed_object_points
from contactkit.vision.obman_net import ObManLossWeights, ObManNet, ObManNetConfig, ObManTargets, obman_losses
from contactkit.vision.run import EpochMeans, epoch_batches, open_run, save_epoch
from contactkit.vision.train_keypoints import SampleSource

__all__ = ["ObManTrainConfig", "ObjectSamples", "evaluate_obman", "honet_from_checkpoint",
           "obman_batch", "obman_from_checkpoint", "train_obman"]

#: Points sampled on each ground-truth object surface (Chamfer targets).
OBJECT_SAMPLES = 600


@dataclass(frozen=True)
class ObManTrainConfig:
    """Settings of :func:`train_obman` (saved in every checkpoint).

    Attributes:
        epochs: epochs of ``L_Hand + L_Object``; finetune_epochs: epochs after them with the contact loss.
        batch_size: views per step (>= 2: batch norm).
        lr: Adam learning rate (x0.1 for the last 20 % of ``epochs``); finetune_lr: that of the fine-tuning.
        contact_weight: ``mu_C`` while fine-tuning (paper: 10; 0: the no-contact control).
        lambda_r: repulsion / attraction balance of the contact loss (paper: 0.5).
        seed: seed of initialisation and data order; device: torch device string.
        normal_weight: ``mu_N`` of the normal-consistency term (every stage; 0: paper 001's losses).
        steps_per_epoch: at most this many steps per epoch (the first ones of the epoch's seeded shuffle, so
            each epoch sees a different random subset; 0: every view), for datasets too large for whole epochs.
    """

    epochs: int = 30
    finetune_epochs: int = 0
    batch_size: int = 16
    lr: float = 1e-3
    finetune_lr: float = 1e-4
    contact_weight: float = 10.0
    lambda_r: float = 0.5
    seed: int = 0
    device: str = "cpu"
    steps_per_epoch: int = 0
    normal_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.steps_per_epoch < 0:
            raise ContactkitError("steps_per_epoch must be >= 0 (0: whole epochs)")
        if self.epochs < 0 or self.finetune_epochs < 0 or self.epochs + self.finetune_epochs < 1 or self.batch_size < 2:
            raise ContactkitError("epochs and finetune_epochs must be >= 0 with at least one epoch; batch_size >= 2")
        if (self.lr <= 0 or self.finetune_lr <= 0 or self.contact_weight < 0 or not 0 <= self.lambda_r <= 1
                or self.normal_weight < 0):
            raise ContactkitError("learning rates must be > 0, contact_weight >= 0, lambda_r in [0, 1], "
                                  "normal_weight >= 0")


def _lr_at(config: ObManTrainConfig, epoch: int) -> float:
    if epoch >= config.epochs:
        return config.finetune_lr
    return config.lr * (0.1 if epoch >= 0.8 * config.epochs else 1.0)


class ObjectSamples:
    """Per-object surface samples (object frame, ``OBJECT_SAMPLES`` points, seed 0), their centroid and the max
    vertex distance from it (the object's radius), computed once per object id."""

    def __init__(self, grasps: GraspSet) -> None:
        self.grasps = grasps
        self._cache: dict[str, tuple[Tensor, Tensor, float]] = {}

    def __call__(self, object_id: str) -> tuple[Tensor, Tensor, float]:
        if object_id not in self._cache:
            mesh = self.grasps.objects[object_id]
            pts = sample_surface(mesh.vertices, mesh.faces, OBJECT_SAMPLES, seed=0)[0].double()
            c = pts.mean(0)
            radius = float((torch.tensor(np.asarray(mesh.vertices)) - c).norm(dim=1).max())
            self._cache[object_id] = (pts, c, radius)
        return self._cache[object_id]


def obman_batch(samples: Sequence[Mapping[str, Any]], grasps: GraspSet, hand: HandModel, objects: ObjectSamples,
                image_size: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, ObManTargets]:
    """Images ``(B, 3, S, S)`` (normalised), intrinsics ``(B, 3, 3)`` of the resized images and the targets.

    The hand is posed from ``grasps`` (row ``grasp_index`` of each sample) by ``hand``; everything is moved to the
    camera frame with the sample's ``cam_from_world``.
    """
    rgb = torch.as_tensor(np.stack([np.asarray(s["rgb"]) for s in samples]))
    k = torch.as_tensor(np.stack([np.asarray(s["K"], np.float32) for s in samples]))
    small, k_small = resize_to_square(rgb, k, image_size)
    rows = np.array([int(s["grasp_index"]) for s in samples])
    ext = torch.as_tensor(np.stack([np.asarray(s["cam_from_world"], np.float64) for s in samples]))
    rot, tr = ext[:, :3, :3], ext[:, :3, 3]
    t = grasps.hand_tensors(device=hand.device, dtype=hand.dtype)
    with torch.no_grad():
        out = hand(t["global_orient"][rows], t["hand_pose"][rows],
                   t["betas"][rows] if t["betas"].shape[1] else None, t["transl"][rows])
    verts = out.vertices.double().cpu() @ rot.transpose(1, 2) + tr[:, None]
    kps = out.keypoints.double().cpu() @ rot.transpose(1, 2) + tr[:, None]
    root = kps[:, 0]
    pts, local, rots, offs, cents, radii = [], [], [], [], [], []
    for i, row in enumerate(rows):
        oid = grasps.object_ids[row]
        p, c, radius = objects(oid)
        r_o = torch.tensor(np.asarray(grasps.object_rotation[row]))
        t_o = torch.tensor(np.asarray(grasps.object_translation[row]))
        to_cam = rot[i] @ r_o
        off = rot[i] @ t_o + tr[i] - root[i]
        pts.append(p @ to_cam.T + off)
        local.append(p)
        rots.append(to_cam)
        offs.append(off)
        cents.append(to_cam @ c + off)
        radii.append(radius)
    target = ObManTargets(
        hand_verts=(verts - root[:, None]).float().to(device), hand_keypoints=(kps - root[:, None]).float().to(device),
        root=root.float().to(device), object_points=torch.stack(pts).float().to(device),
        object_centroid=torch.stack(cents).float().to(device),
        object_radius=torch.tensor(radii, dtype=torch.float32, device=device),
        object_local_points=torch.stack(local).float().to(device), object_rotation=torch.stack(rots).float().to(device),
        object_translation=torch.stack(offs).float().to(device))
    return normalize_images(small).to(device), k_small.to(device), target


@torch.no_grad()
def evaluate_obman(net: ObManNet | HoNet, samples: SampleSource, grasps: GraspSet, batch_size: int = 32
                   ) -> dict[str, float]:
    """Validation means (mm): root-relative hand keypoint error ``hand_mm``, wrist error ``root_mm`` and the
    object's symmetric Chamfer distance ``chamfer_mm`` (:func:`contactkit.metrics.pose.chamfer_distance`,
    predicted vertices — for HoNet, the surface samples at the predicted pose — vs the surface samples, both
    root-relative)."""
    net.eval()
    device = next(net.backbone.parameters()).device
    objects = ObjectSamples(grasps)
    sums = {"hand_mm": 0.0, "root_mm": 0.0, "chamfer_mm": 0.0}
    for start in range(0, len(samples), batch_size):
        chunk = [samples[i] for i in range(start, min(start + batch_size, len(samples)))]
        images, k, target = obman_batch(chunk, grasps, net.hand, objects, net.config.image_size, device)
        out = net(images, k)
        sums["hand_mm"] += float(((out.hand_keypoints - target.hand_keypoints).norm(dim=-1).mean(1) * 1e3).sum())
        sums["root_mm"] += float(((out.root - target.root).norm(dim=-1) * 1e3).sum())
        pred = (out.object_verts if isinstance(net, ObManNet) else
                posed_object_points(out, target.object_local_points))
        sums["chamfer_mm"] += float((chamfer_distance(pred.double(), target.object_points.double()) * 1e3).sum())
    return {k: v / len(samples) for k, v in sums.items()}


def obman_from_checkpoint(path: str | Path) -> tuple[ObManNet, dict[str, Any]]:
    """An ObMan network (eval mode) and the training dict of a ``kind="obman-net"`` checkpoint."""
    ckpt = load_checkpoint(path, expected_kind="obman-net")
    net = ObManNet(ObManNetConfig.from_dict(ckpt.config))
    net.load_state_dict(ckpt.state_dict)
    return net.eval(), ckpt.training


def honet_from_checkpoint(path: str | Path) -> tuple[HoNet, dict[str, Any]]:
    """A HoNet (eval mode) and the training dict of a ``kind="honet"`` checkpoint."""
    ckpt = load_checkpoint(path, expected_kind="honet")
    net = HoNet(HoNetConfig.from_dict(ckpt.config))
    net.load_state_dict(ckpt.state_dict)
    return net.eval(), ckpt.training


def train_obman(
    train_samples: SampleSource,
    train_grasps: GraspSet,
    val_samples: SampleSource,
    val_grasps: GraspSet,
    run_dir: str | Path,
    net_config: ObManNetConfig | HoNetConfig,
    config: ObManTrainConfig,
    *,
    progress: bool = True,
    metadata: dict[str, Any] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    init_state: dict[str, Tensor] | None = None,
) -> dict[str, Any]:
    """Train (or resume) an ObMan network or a HoNet (by the type of ``net_config``); returns the last epoch's log
    record (see the module docstring).

    Args:
        train_samples, val_samples: rendered views; train_grasps, val_grasps: the grasp sets their
            ``grasp_index`` refers to (``RenderedDataset.grasps``).
        init_state: starting weights (the state dict of a trained network, e.g. to
            fine-tune it with ``epochs=0``); ignored when resuming from ``RUN/last.pt``.
    """
    honet = isinstance(net_config, HoNetConfig)
    if honet and config.finetune_epochs:
        raise ContactkitError("HoNet has no contact fine-tuning stage: finetune_epochs must be 0")
    kind: Literal["obman-net", "honet"] = "honet" if honet else "obman-net"
    run_dir = Path(run_dir)
    run = open_run(run_dir, kind, lambda: HoNet(net_config) if isinstance(net_config, HoNetConfig)
                   else ObManNet(net_config), asdict(net_config), asdict(config), seed=config.seed, lr=config.lr,
                   device=config.device, init_state=init_state)
    net, best, record = run.net, run.best, run.record
    objects = ObjectSamples(train_grasps)
    total = config.epochs + config.finetune_epochs
    for epoch in range(run.start_epoch, total):
        net.train()
        finetune = epoch >= config.epochs
        weights = ObManLossWeights(contact=config.contact_weight if finetune else 0.0, lambda_r=config.lambda_r,
                                   normal=config.normal_weight)
        for group in run.optimiser.param_groups:
            group["lr"] = _lr_at(config, epoch)
        _, batches = epoch_batches(len(train_samples), config.batch_size, config.seed, epoch, run.rank, run.world,
                                   desc=f"obman-net epoch {epoch + 1}/{total}", progress=progress)
        t0 = time.perf_counter()
        losses = EpochMeans()
        for step, idx in enumerate(batches):
            if config.steps_per_epoch and step >= config.steps_per_epoch:
                break
            images, k, target = obman_batch([train_samples[i] for i in idx], train_grasps, net.hand, objects,
                                            net_config.image_size, run.device)
            if isinstance(net, HoNet):
                terms = honet_losses(net, run.model(images, k), target)
            else:
                terms = obman_losses(net, run.model(images, k), target, weights)
            run.optimiser.zero_grad(set_to_none=True)
            terms["total"].backward()
            run.optimiser.step()
            losses.add(terms, len(idx))
        if run.rank != 0:
            continue
        val = evaluate_obman(net, val_samples, val_grasps)
        err = val["hand_mm"] + val["chamfer_mm"]
        improved = err < best
        best = min(best, err)
        record = {"epoch": epoch, "stage": "contact" if finetune and config.contact_weight > 0 else
                  ("finetune" if finetune else "base"), "train": losses.means(), "val": val,
                  "seconds": time.perf_counter() - t0, "lr": _lr_at(config, epoch)}
        training = {**(metadata or {}), "kind": kind, "epoch": epoch, "best_error_mm": best,
                    "config": asdict(config), "last": record}
        save_epoch(run_dir, kind, asdict(net_config), net, run.optimiser, record, training, improved)
        if on_record is not None:
            on_record(record)
    return record

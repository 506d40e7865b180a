"""Seeded, resumable, DDP-ready training of the image -> 3D keypoint network on rendered samples.

Samples are dicts of the rendered dataset (contract A: ``contactkit.dataset.RenderedDataset``, or any sequence
of such dicts). The objective is paper 003's: ``0.01 L_2D + L_3D`` (pixels^2 of the resized image; mm^2 of the
root-relative keypoints), then ``finetune_epochs`` with ``affinity_weight`` x the physical affinity loss added.
Checkpoints, log, resume and DDP behave as in :mod:`contactkit.vision.train`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.vision.backbone import normalize_images
from contactkit.vision.camera import pixels_to_normalized
from contactkit.vision.heads import KeypointNet, KeypointNetConfig, resize_to_square
from contactkit.vision.losses import lifter_losses, root_relative_targets
from contactkit.vision.run import EpochMeans, epoch_batches, open_run, save_epoch

__all__ = ["KeypointTrainConfig", "augment_batch", "evaluate_keypoints", "sample_batch", "train_keypoints"]


@dataclass(frozen=True)
class KeypointTrainConfig:
    """Settings of :func:`train_keypoints` (saved in every checkpoint); see :class:`~contactkit.vision.train.
    LifterTrainConfig` for the shared ones. ``weight_2d``: weight of the 2D loss (paper: 0.01). ``augment``: random
    zoom / shift and colour changes of the training images (:func:`augment_batch`)."""

    epochs: int = 30
    finetune_epochs: int = 0
    batch_size: int = 16
    lr: float = 1e-3
    finetune_lr: float = 1e-4
    weight_2d: float = 0.01
    affinity_weight: float = 10.0
    augment: bool = False
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.finetune_epochs < 0 or self.epochs + self.finetune_epochs < 1 or self.batch_size < 2:
            raise ContactkitError("epochs and finetune_epochs must be >= 0 with at least one epoch; batch_size >= 2")


def _lr_at(config: KeypointTrainConfig, epoch: int) -> float:
    if epoch >= config.epochs:
        return config.finetune_lr
    return config.lr * (0.1 if epoch >= 0.8 * config.epochs else 1.0)


class SampleSource(Protocol):
    """Indexable views (a :class:`~contactkit.dataset.RenderedDataset` or a list of contract-A dicts)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Mapping[str, Any]: ...


def sample_batch(samples: Sequence[Mapping[str, Any]], image_size: int, device: torch.device | str = "cpu"
                 ) -> dict[str, Tensor]:
    """Stack rendered samples: ``images (B, 3, S, S)`` normalised, ``k (B, 3, 3)`` and ``keypoints_2d
    (B, 29, 2)`` of the resized images, ``keypoints_3d (B, 29, 3)`` camera frame, metres."""
    rgb = torch.as_tensor(np.stack([np.asarray(s["rgb"]) for s in samples]))
    k = torch.as_tensor(np.stack([np.asarray(s["K"], np.float32) for s in samples]))
    h, w = rgb.shape[1:3]
    small, k_small = resize_to_square(rgb, k, image_size)
    kp2 = torch.as_tensor(np.stack([np.concatenate([np.asarray(s["hand_keypoints_2d"], np.float32),
                                                    np.asarray(s["object_corners_2d"], np.float32)])
                                    for s in samples]))
    kp2 = torch.stack([(kp2[..., 0] + 0.5) * image_size / w - 0.5, (kp2[..., 1] + 0.5) * image_size / h - 0.5], -1)
    kp3 = torch.as_tensor(np.stack([np.concatenate([np.asarray(s["hand_keypoints_3d"], np.float32),
                                                    np.asarray(s["object_corners_3d"], np.float32)])
                                    for s in samples]))
    return {"images": normalize_images(small).to(device), "k": k_small.to(device), "keypoints_2d": kp2.to(device),
            "keypoints_3d": kp3.to(device)}


def augment_batch(batch: dict[str, Tensor], generator: torch.Generator, *, zoom: float = 0.15, shift: float = 0.1,
                  colour: float = 0.25) -> dict[str, Tensor]:
    """A randomly changed copy of a :func:`sample_batch` batch (training only).

    Geometry: each image is zoomed by ``s ~ U(1 - zoom, 1 + zoom)`` about its centre and shifted by up to ``shift``
    of its size — a change of intrinsics, ``K' = A K`` with ``A = [[s, 0, tx], [0, s, ty], [0, 0, 1]]`` in pixels,
    so the 2D targets move by ``A`` and the camera-frame 3D targets stay. Colour: per-image contrast and per-channel
    gain in ``U(1 - colour, 1 + colour)`` (on the normalised images, about their mean).
    """
    images = batch["images"]
    b, _, h, w = images.shape
    u = torch.rand(b, 5, generator=generator).to(images)
    s = 1.0 + zoom * (2.0 * u[:, 0] - 1.0)
    tx = shift * w * (2.0 * u[:, 1] - 1.0)
    ty = shift * h * (2.0 * u[:, 2] - 1.0)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    a = torch.zeros(b, 3, 3).to(images)
    a[:, 0, 0], a[:, 1, 1], a[:, 2, 2] = s, s, 1.0
    a[:, 0, 2] = cx - s * cx + tx
    a[:, 1, 2] = cy - s * cy + ty
    # output pixel p samples input pixel A^-1 p; grid_sample reads normalised coordinates (align_corners=True)
    inv = torch.linalg.inv(a)
    ys, xs = torch.meshgrid(torch.arange(h).to(images), torch.arange(w).to(images), indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)
    src = pix @ inv.transpose(1, 2)
    grid = torch.stack([src[..., 0] / (w - 1) * 2 - 1, src[..., 1] / (h - 1) * 2 - 1], -1).reshape(b, h, w, 2)
    out = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)
    mean = out.mean((1, 2, 3), keepdim=True)
    contrast = 1.0 + colour * (2.0 * u[:, 3] - 1.0)
    gain = 1.0 + colour * (2.0 * torch.rand(b, 3, generator=generator).to(images) - 1.0)
    out = (out - mean) * contrast[:, None, None, None] * gain[:, :, None, None] + mean
    kp2 = batch["keypoints_2d"] * s[:, None, None] + torch.stack([a[:, 0, 2], a[:, 1, 2]], -1)[:, None]
    return {**batch, "images": out, "k": a @ batch["k"], "keypoints_2d": kp2}


def _losses(model: torch.nn.Module, net: KeypointNet, batch: dict[str, Tensor], config: KeypointTrainConfig,
            affinity_weight: float) -> dict[str, Tensor]:
    """Loss terms of one batch; ``model`` runs the forward pass (``net`` itself or its DDP wrapper)."""
    out = model(batch["images"], batch["k"])
    norm = pixels_to_normalized(out.keypoints_2d, batch["k"])
    terms = lifter_losses(net.lifter, out.lifted, batch["keypoints_3d"], norm, affinity_weight)
    terms["keypoints_2d"] = (out.keypoints_2d - batch["keypoints_2d"]).pow(2).sum(-1).mean()
    terms["total"] = terms["total"] + config.weight_2d * terms["keypoints_2d"]
    return terms


@torch.no_grad()
def evaluate_keypoints(net: KeypointNet, samples: SampleSource, batch_size: int = 32
                       ) -> dict[str, float]:
    """Mean 2D error (pixels of the resized image) and root-relative / camera-frame 3D errors (mm)."""
    net.eval()
    device = next(net.parameters()).device
    sums: dict[str, float] = {}
    for start in range(0, len(samples), batch_size):
        chunk = [samples[i] for i in range(start, min(start + batch_size, len(samples)))]
        batch = sample_batch(chunk, net.config.image_size, device)
        out = net(batch["images"], batch["k"])
        hand_t, obj_t = root_relative_targets(batch["keypoints_3d"])
        errs = {"keypoints_2d_px": (out.keypoints_2d - batch["keypoints_2d"]).norm(dim=-1)}
        for name, pred, tgt in (("hand_mm", out.lifted.hand, hand_t), ("object_mm", out.lifted.object, obj_t),
                                ("hand_camera_mm", out.hand_camera, batch["keypoints_3d"][:, :21]),
                                ("object_camera_mm", out.object_camera, batch["keypoints_3d"][:, 21:])):
            if pred is not None:
                errs[name] = (pred - tgt).norm(dim=-1) * 1000.0
        for name, value in errs.items():
            sums[name] = sums.get(name, 0.0) + float(value.mean(1).sum())
    return {k: v / len(samples) for k, v in sums.items()}


def train_keypoints(
    train_samples: SampleSource,
    val_samples: SampleSource,
    run_dir: str | Path,
    net_config: KeypointNetConfig,
    config: KeypointTrainConfig,
    *,
    progress: bool = True,
    metadata: dict[str, Any] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    init_state: dict[str, Tensor] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a keypoint network; returns the last epoch's log record (see the module docstring)."""
    run_dir = Path(run_dir)
    run = open_run(run_dir, "keypoints", lambda: KeypointNet(net_config), asdict(net_config), asdict(config),
                   seed=config.seed, lr=config.lr, device=config.device, init_state=init_state)
    net, best, record = run.net, run.best, run.record
    total = config.epochs + config.finetune_epochs
    for epoch in range(run.start_epoch, total):
        net.train()
        finetune = epoch >= config.epochs
        for group in run.optimiser.param_groups:
            group["lr"] = _lr_at(config, epoch)
        gen, batches = epoch_batches(len(train_samples), config.batch_size, config.seed, epoch, run.rank, run.world,
                                     desc=f"keypoints epoch {epoch + 1}/{total}", progress=progress)
        t0 = time.perf_counter()
        losses = EpochMeans()
        for idx in batches:
            batch = sample_batch([train_samples[i] for i in idx], net_config.image_size, run.device)
            if config.augment:
                batch = augment_batch(batch, gen)
            terms = _losses(run.model, net, batch, config, config.affinity_weight if finetune else 0.0)
            run.optimiser.zero_grad(set_to_none=True)
            terms["total"].backward()
            run.optimiser.step()
            losses.add(terms, len(idx))
        if run.rank != 0:
            continue
        val = evaluate_keypoints(net, val_samples)
        keys = [k for k in ("hand_mm", "object_mm") if k in val]
        err = sum(val[k] for k in keys) / len(keys)
        improved = err < best
        best = min(best, err)
        record = {"epoch": epoch, "stage": "finetune" if finetune else "mse", "train": losses.means(), "val": val,
                  "seconds": time.perf_counter() - t0, "lr": _lr_at(config, epoch)}
        training = {**(metadata or {}), "kind": "keypoints", "epoch": epoch, "best_error_mm": best,
                    "config": asdict(config), "last": record}
        save_epoch(run_dir, "keypoints", asdict(net_config), net, run.optimiser, record, training, improved)
        if on_record is not None:
            on_record(record)
    return record

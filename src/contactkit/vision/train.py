"""Seeded, resumable, DDP-ready training of the keypoint lifter (paper 003 Sec. 4.3, Table 3).

Two stages share one epoch counter: ``epochs`` of MSE on the 3D keypoints (learning rate ``lr``, divided by 10 at
40 % and 80 % of the stage, as the paper's step schedule), then ``finetune_epochs`` at ``finetune_lr`` with
``affinity_weight`` x the physical affinity loss added (0 gives the MSE-only control with the same number of
steps). Every epoch writes ``RUN/last.pt`` atomically and one JSON line to ``RUN/log.jsonl``; the best
validation error goes to ``RUN/best.pt``. Rerunning the same command resumes: the order and noise of epoch
``e`` depend only on ``(seed, e)``.

DDP: under ``torchrun`` (gloo on CPU; :func:`contactkit.learn.distributed.join_process_group`) the network is
wrapped in ``DistributedDataParallel``, each rank takes every ``world_size``-th sample of the epoch's order, and
only rank 0 writes files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from contactkit.errors import ContactkitError
from contactkit.learn.checkpoint import load_checkpoint
from contactkit.vision.camera import pixels_to_normalized
from contactkit.vision.data import KeypointViews
from contactkit.vision.lifter import ContextAwareLifter, LifterConfig
from contactkit.vision.losses import lifter_losses, root_relative_targets
from contactkit.vision.metrics import keypoint_errors_mm
from contactkit.vision.run import EpochMeans, epoch_batches, open_run, save_epoch

__all__ = ["LifterTrainConfig", "evaluate_lifter", "lifter_from_checkpoint", "predict_lifter", "train_lifter"]


@dataclass(frozen=True)
class LifterTrainConfig:
    """Lifter training settings (saved in every checkpoint).

    Attributes:
        epochs: MSE epochs.
        finetune_epochs: fine-tuning epochs after them (MSE + ``affinity_weight`` x affinity).
        batch_size: views per step.
        lr: Adam learning rate of the MSE stage (x0.1 at 40 % and 80 % of it).
        finetune_lr: learning rate of the fine-tuning stage.
        affinity_weight: weight of the physical affinity loss while fine-tuning (paper: 10; needs mode "full").
        noise_px: standard deviation of Gaussian noise added to the training 2D keypoints, pixels.
        seed: seed of initialisation, data order and noise.
        device: torch device string.
    """

    epochs: int = 40
    finetune_epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    finetune_lr: float = 1e-4
    affinity_weight: float = 10.0
    noise_px: float = 0.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.finetune_epochs < 0 or self.epochs + self.finetune_epochs < 1 or self.batch_size < 1:
            raise ContactkitError("epochs and finetune_epochs must be >= 0 with at least one epoch; batch_size >= 1")
        if self.lr <= 0 or self.finetune_lr <= 0 or self.affinity_weight < 0 or self.noise_px < 0:
            raise ContactkitError("learning rates must be > 0; affinity_weight and noise_px >= 0")


def _lr_at(config: LifterTrainConfig, epoch: int) -> float:
    if epoch >= config.epochs:
        return config.finetune_lr
    frac = epoch / max(config.epochs, 1)
    return config.lr * (0.1 if frac >= 0.4 else 1.0) * (0.1 if frac >= 0.8 else 1.0)


def _inputs(views: KeypointViews, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    kp2 = views.keypoints_2d.to(device)
    return pixels_to_normalized(kp2, views.k.to(device)), views.keypoints_3d.to(device)


@torch.no_grad()
def predict_lifter(net: ContextAwareLifter, views: KeypointViews, batch_size: int = 1024
                   ) -> dict[str, torch.Tensor]:
    """Root-relative and camera-frame predictions of every view (eval mode, CPU float32).

    Returns:
        dict with ``hand`` (N, 21, 3) / ``object`` (N, 8, 3) root-relative and ``hand_camera`` /
        ``object_camera`` camera-frame keypoints (metres), for the parts the lifter's mode predicts.
    """
    net.eval()
    device = next(net.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(views), batch_size):
        sub = views.subset(list(range(start, min(start + batch_size, len(views)))))
        norm, _ = _inputs(sub, device)
        out = net(norm)
        cam_h, cam_o = net.camera_frame(out, norm)
        for name, value in (("hand", out.hand), ("object", out.object), ("hand_camera", cam_h),
                            ("object_camera", cam_o)):
            if value is not None:
                parts.setdefault(name, []).append(value.float().cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def evaluate_lifter(net: ContextAwareLifter, views: KeypointViews) -> dict[str, Any]:
    """Mean errors (mm) of the lifter on ``views``: root-relative (``hand_mm``, ``object_mm``) and camera-frame
    (``hand_camera_mm``, ``object_camera_mm``), plus per-view mean errors (lists) under ``per_view``."""
    pred = predict_lifter(net, views)
    hand_t, obj_t = root_relative_targets(views.keypoints_3d)
    targets = {"hand": hand_t, "object": obj_t, "hand_camera": views.keypoints_3d[:, :21],
               "object_camera": views.keypoints_3d[:, 21:]}
    result: dict[str, Any] = {"per_view": {}}
    for name, value in pred.items():
        per_view = keypoint_errors_mm(value, targets[name]).mean(1)
        result[f"{name}_mm"] = float(per_view.mean())
        result["per_view"][name] = per_view.tolist()
    return result


def _selection_error(val: dict[str, Any]) -> float:
    keys = [k for k in ("hand_mm", "object_mm") if k in val]
    return sum(val[k] for k in keys) / len(keys)


def lifter_from_checkpoint(path: str | Path) -> tuple[ContextAwareLifter, dict[str, Any]]:
    """A lifter (eval mode) and the training dict of a ``kind="lifter"`` checkpoint."""
    ckpt = load_checkpoint(path, expected_kind="lifter")
    net = ContextAwareLifter(LifterConfig.from_dict(ckpt.config))
    net.load_state_dict(ckpt.state_dict)
    return net.eval(), ckpt.training


def train_lifter(
    train_views: KeypointViews,
    val_views: KeypointViews,
    run_dir: str | Path,
    net_config: LifterConfig,
    config: LifterTrainConfig,
    *,
    progress: bool = True,
    metadata: dict[str, Any] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a lifter; returns the last epoch's log record.

    Args:
        train_views, val_views: keypoint views (:mod:`contactkit.vision.data`); model selection uses
            ``val_views`` only.
        run_dir: output folder (``last.pt``, ``best.pt``, ``log.jsonl``, ``config.json``).
        net_config: the lifter's settings.
        config: training settings; must equal the saved ones when resuming.
        metadata: extra JSON facts stored in the checkpoints' training dict.
        on_record: called with each epoch's log record.
        on_epoch_end: called with the finished epoch index after its checkpoint is written.
        init_state: starting weights (a state dict of the same lifter), e.g. to fine-tune a trained one with
            ``epochs=0``; ignored when resuming from ``RUN/last.pt``.
    """
    if config.affinity_weight > 0 and config.finetune_epochs > 0 and net_config.mode != "full":
        raise ContactkitError(f"the affinity fine-tuning needs mode 'full' (hand and object), got {net_config.mode!r}"
                              "; pass affinity_weight 0")
    run_dir = Path(run_dir)
    run = open_run(run_dir, "lifter", lambda: ContextAwareLifter(net_config), asdict(net_config),
                   asdict(config), seed=config.seed, lr=config.lr, device=config.device, init_state=init_state)
    net, best, record = run.net, run.best, run.record
    total_epochs = config.epochs + config.finetune_epochs
    for epoch in range(run.start_epoch, total_epochs):
        net.train()
        finetune = epoch >= config.epochs
        affinity_weight = config.affinity_weight if finetune else 0.0
        for group in run.optimiser.param_groups:
            group["lr"] = _lr_at(config, epoch)
        gen, batches = epoch_batches(len(train_views), config.batch_size, config.seed, epoch, run.rank, run.world,
                                     desc=f"lifter epoch {epoch + 1}/{total_epochs}", progress=progress, min_batch=1)
        noise = config.noise_px * torch.randn(train_views.keypoints_2d.shape, generator=gen)
        t0 = time.perf_counter()
        losses = EpochMeans()
        for idx in batches:
            sub = train_views.subset(torch.tensor(idx))
            kp2 = (sub.keypoints_2d + noise[idx]).to(run.device)
            norm = pixels_to_normalized(kp2, sub.k.to(run.device))
            terms = lifter_losses(net, run.model(norm), sub.keypoints_3d.to(run.device), norm, affinity_weight)
            run.optimiser.zero_grad(set_to_none=True)
            terms["total"].backward()
            run.optimiser.step()
            losses.add(terms, len(idx))
        seconds = time.perf_counter() - t0
        if run.rank != 0:
            continue
        val = evaluate_lifter(net, val_views)
        val.pop("per_view")
        err = _selection_error(val)
        improved = err < best
        best = min(best, err)
        record = {"epoch": epoch, "stage": "finetune" if finetune else "mse", "train": losses.means(), "val": val,
                  "seconds": seconds, "views_per_second": losses.count / max(seconds, 1e-9),
                  "lr": _lr_at(config, epoch)}
        training = {**(metadata or {}), "kind": "lifter", "epoch": epoch, "best_error_mm": best,
                    "config": asdict(config), "last": record}
        save_epoch(run_dir, "lifter", asdict(net_config), net, run.optimiser, record, training, improved)
        if on_record is not None:
            on_record(record)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return record

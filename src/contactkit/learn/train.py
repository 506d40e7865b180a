"""Seeded, resumable training of DeepContact and PiCR on precomputed contact datasets.

Every epoch writes ``RUN/last.pt`` (model, optimiser, epoch, metrics) atomically and appends one JSON line to
``RUN/log.jsonl``; the checkpoint with the best validation contact F1 is copied to ``RUN/best.pt``. Restarting
the same command resumes from ``last.pt``: the data order and dropout of epoch ``e`` depend only on
``(seed, e)``, so a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm import tqdm

from contactkit.errors import ContactkitError
from contactkit.io.atomic import atomic_write_bytes
from contactkit.io.runlog import truncate_log
from contactkit.learn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from contactkit.learn.data import ContactTensors
from contactkit.learn.estimators import build_network, network_config
from contactkit.learn.losses import (
    binary_focal_loss,
    bins_probability_above,
    bins_to_contact,
    contact_to_bins,
    inverse_frequency_weights,
    masked_bce,
    multiclass_focal_loss,
    weighted_bin_cross_entropy,
)
from contactkit.learn.networks import DeepContactNet, PiCRNet
from contactkit.learn.prior import contact_bin_prior, pose_axes

Kind = Literal["deepcontact", "picr"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (saved in every checkpoint).

    Attributes:
        epochs: number of passes over the training set.
        batch_size: grasps per optimisation step.
        lr: Adam learning rate (decayed by cosine to 5 % over the run).
        weight_decay: Adam weight decay.
        seed: seed of initialisation, data order and dropout.
        device: torch device string.
        small: the small backbone (default, as shipped) instead of the full multi-scale one.
        contact_prior: DeepContact only: add the training set's contact-bin priors (per hand vertex; marginal for
            object points; :mod:`contactkit.learn.prior`) to the logits, so the network learns a residual over
            the training set's mean contact map. Ignored for PiCR.
        shape_prior: with ``contact_prior``: the hand prior also depends linearly (learnt) on the object's extents and
            centroid in the wrist frame (:func:`~contactkit.learn.networks.object_descriptor`).
        pose_components: with ``shape_prior``: K > 0 adds the noisy hand's posture (its wrist-frame vertices on the
            training set's K principal axes, :func:`~contactkit.learn.prior.pose_axes`) to the descriptor the hand
            prior depends on (``DeepContactConfig.prior_pose``); 0: the object only.
        class_weight_power: exponent of DeepContact's inverse-frequency bin weights
            (:func:`~contactkit.learn.losses.inverse_frequency_weights`; 0: unweighted cross-entropy).
    """

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    small: bool = True
    contact_prior: bool = True
    shape_prior: bool = True
    pose_components: int = 0
    class_weight_power: float = 0.5


def f1_score(pred: Tensor, target: Tensor) -> float:
    """F1 (in %) of boolean predictions against boolean targets, over all elements (100 when both are empty)."""
    tp = (pred & target).sum().item()
    fp = (pred & ~target).sum().item()
    fn = (~pred & target).sum().item()
    if tp + fp + fn == 0:
        return 100.0
    return 100.0 * 2 * tp / (2 * tp + fp + fn)


def training_loss(
    kind: Kind, net: torch.nn.Module, batch: dict[str, Any], class_weights: Tensor | None = None
) -> Tensor:
    """Training loss of one batch (as returned by :meth:`ContactTensors.batch`).

    Args:
        kind: "deepcontact" (class-weighted binned cross-entropy over all points) or "picr" (focal VC + focal CR
            + BCE AE over object points, paper 004 eqs. 5-7).
        net: the network of that kind.
        batch: ``xyz (B, N, 3)``, ``features (B, N, C)``, targets and ``n_hand``.
        class_weights: (n_bins,) DeepContact bin weights (uniform when None); ignored for PiCR.

    Returns:
        scalar loss.
    """
    if kind == "deepcontact":
        if not isinstance(net, DeepContactNet):
            raise TypeError(f"expected a DeepContactNet, got {type(net).__name__}")
        logits = net(batch["xyz"], batch["features"])
        weights = class_weights if class_weights is not None else torch.ones(logits.shape[-1], device=logits.device)
        return weighted_bin_cross_entropy(logits, batch["contact"], weights)
    if not isinstance(net, PiCRNet):
        raise TypeError(f"expected a PiCRNet, got {type(net).__name__}")
    out = net(batch["xyz"], batch["features"])
    n_hand = int(batch["n_hand"])
    vc = batch["object_vc"]
    positive = vc > 0.5
    return (
        binary_focal_loss(out.vc[:, n_hand:], vc)
        + multiclass_focal_loss(out.cr[:, n_hand:], batch["object_region"], positive)
        + masked_bce(out.ae[:, n_hand:], batch["object_elasticity"], positive)
    )


#: Decision thresholds searched by :func:`best_threshold_f1`.
THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


def best_threshold_f1(score: Tensor, target: Tensor, thresholds: tuple[float, ...] = THRESHOLDS) -> tuple[float, float]:
    """The threshold of ``score`` with the highest F1 against boolean ``target`` and that F1 (%).

    Args:
        score: (...) float predicted contact or probability; target: (...) bool, same shape.
        thresholds: candidate thresholds (ties go to the first).
    """
    best = max(thresholds, key=lambda t: f1_score(score > t, target))
    return best, f1_score(score > best, target)


@torch.no_grad()
def predict_scores(
    kind: Kind, net: torch.nn.Module, data: ContactTensors, batch_size: int, *, above_half: bool = False
) -> dict[str, Tensor]:
    """Predicted contact of every grasp of ``data`` (eval mode, CPU float32 results).

    Args:
        above_half: DeepContact only: return the probability that contact exceeds 0.5
            (:func:`bins_probability_above`) instead of the expected contact.

    Returns:
        DeepContact: ``{"hand": (N, V), "object": (N, P)}`` expected contact in [0, 1]; PiCR: ``{"object": (N, P)}``
        vertex-contact probability.
    """
    net.eval()
    device = next(net.parameters()).device
    n_hand = data.n_hand
    hand, obj = [], []
    for start in range(0, len(data), batch_size):
        batch = data.batch(range(start, min(start + batch_size, len(data))), device)
        if kind == "deepcontact":
            logits = net(batch["xyz"], batch["features"])
            contact = (bins_probability_above(logits) if above_half else bins_to_contact(logits)).cpu()
            hand.append(contact[:, :n_hand])
            obj.append(contact[:, n_hand:])
        else:
            obj.append(torch.sigmoid(net(batch["xyz"], batch["features"]).vc[:, n_hand:]).cpu())
    out = {"object": torch.cat(obj)}
    if hand:
        out["hand"] = torch.cat(hand)
    return out


def evaluate_contact_f1(kind: Kind, net: torch.nn.Module, data: ContactTensors, batch_size: int) -> dict[str, float]:
    """Contact F1 (%) of ``net`` on ``data``: at threshold 0.5 and at the best threshold on ``data``.

    Ground-truth contact is DeepContact's target > 0.5 (hand and object) or PiCR's vertex contact (object only).
    Keys: ``{side}_f1_pct`` (predictions > 0.5), ``{side}_f1_best_pct`` and ``{side}_threshold`` (the
    threshold of :data:`THRESHOLDS` with the highest F1), for side ``hand`` (DeepContact) and ``object``.
    """
    scores = predict_scores(kind, net, data, batch_size)
    n_hand = data.n_hand
    targets = {"object": data.object_vc > 0.5} if kind == "picr" else {
        "hand": data.contact[:, :n_hand] > 0.5, "object": data.contact[:, n_hand:] > 0.5}
    result: dict[str, float] = {}
    for side, target in targets.items():
        result[f"{side}_f1_pct"] = f1_score(scores[side] > 0.5, target)
        threshold, best = best_threshold_f1(scores[side], target)
        result[f"{side}_f1_best_pct"] = best
        result[f"{side}_threshold"] = threshold
    return result


def _lr_at(config: TrainConfig, epoch: int) -> float:
    progress = epoch / max(config.epochs, 1)
    return config.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(
    kind: Kind,
    train_data: ContactTensors,
    val_data: ContactTensors,
    run_dir: str | Path,
    config: TrainConfig,
    *,
    progress: bool = True,
    metadata: dict[str, Any] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume training) a network; returns the final log record.

    Args:
        kind: "deepcontact" or "picr".
        train_data, val_data: precomputed inputs and targets (:mod:`contactkit.learn.data`).
        run_dir: output directory (``last.pt``, ``best.pt``, ``log.jsonl``, ``config.json``).
        config: training settings; must match the run's saved settings when resuming.
        progress: show a progress bar per epoch.
        metadata: extra JSON facts stored in every checkpoint's training dict (e.g. ``hand_model``, data sizes).
        on_record: called with each epoch's log record (losses, validation F1, timing) once it is logged.
        on_epoch_end: called with the finished epoch index after its checkpoint is written (tests use it to
            simulate a kill).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    use_prior = kind == "deepcontact" and config.contact_prior
    net_config = network_config(kind, small=config.small,
                                prior_hand_vertices=train_data.n_hand if use_prior else 0,
                                prior_shape=use_prior and config.shape_prior,
                                prior_pose=config.pose_components if use_prior and config.shape_prior else 0)
    net = build_network(kind, net_config)
    if use_prior and isinstance(net, DeepContactNet):
        centre = scale = pose_mean = pose_basis = None
        if net.pose_mean is not None and net.pose_basis is not None:  # the descriptor below needs the axes
            pose_mean, pose_basis = pose_axes(train_data.xyz[:, :train_data.n_hand], config.pose_components)
            net.pose_mean.copy_(pose_mean)
            net.pose_basis.copy_(pose_basis)
        if config.shape_prior:
            with torch.no_grad():
                desc = torch.cat([net.descriptor(train_data.xyz[start:start + 256])
                                  for start in range(0, len(train_data), 256)])
            centre, scale = desc.mean(0), desc.std(0).clamp_min(1e-6)
        net.set_prior(*contact_bin_prior(train_data.contact, train_data.n_hand, int(net_config["n_bins"])),
                      centre, scale, pose_mean, pose_basis)
    net = net.to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start_epoch = 0
    best_f1 = -1.0
    record: dict[str, Any] = {}
    last_path = run_dir / "last.pt"
    if last_path.exists():
        ckpt = load_checkpoint(last_path, expected_kind=kind)
        if ckpt.training.get("config") != asdict(config):
            raise ContactkitError(
                f"{run_dir} holds a run with different settings {ckpt.training.get('config')}; "
                "use a new --out directory or the same settings to resume"
            )
        net.load_state_dict(ckpt.state_dict)
        if ckpt.optimizer is not None:
            optimiser.load_state_dict(ckpt.optimizer)
        start_epoch = int(ckpt.training["epoch"]) + 1
        best_f1 = float(ckpt.training.get("best_f1", -1.0))
        record = dict(ckpt.training.get("last", {}))
    truncate_log(run_dir / "log.jsonl", "epoch", start_epoch)
    atomic_write_bytes(
        run_dir / "config.json",
        json.dumps({"kind": kind, "network": net_config, "train": asdict(config)}, indent=2).encode(),
    )
    if kind == "deepcontact":
        n_bins = int(net_config["n_bins"])
        class_weights = inverse_frequency_weights(contact_to_bins(train_data.contact, n_bins), n_bins,
                                                  power=config.class_weight_power).to(device)
    else:
        class_weights = torch.ones(1, device=device)
    for epoch in range(start_epoch, config.epochs):
        net.train()
        torch.manual_seed(config.seed * 100_003 + epoch)
        order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(config.seed + 7919 * epoch))
        for group in optimiser.param_groups:
            group["lr"] = _lr_at(config, epoch)
        t0 = time.perf_counter()
        losses = []
        steps = range(0, len(order), config.batch_size)
        for start in tqdm(steps, desc=f"{kind} epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False):
            idx = order[start : start + config.batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            batch = train_data.batch(idx.tolist(), device)
            loss = training_loss(kind, net, batch, class_weights)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - t0
        val = evaluate_contact_f1(kind, net, val_data, config.batch_size)
        # Model selection: the mean over sides of the best-threshold F1 (a threshold-free ranking; at a fixed 0.5
        # an under-confident early network scores 0 and would win ties).
        best_keys = [k for k in val if k.endswith("_f1_best_pct")]
        val_f1 = sum(val[k] for k in best_keys) / len(best_keys)
        improved = val_f1 > best_f1
        best_f1 = max(best_f1, val_f1)
        record = {
            "epoch": epoch,
            "train_loss": sum(losses) / max(len(losses), 1),
            "val": val,
            "seconds": seconds,
            "grasps_per_second": len(train_data) / max(seconds, 1e-9),
            "lr": _lr_at(config, epoch),
        }
        # The log line goes first: a kill before the checkpoint reruns this epoch and the resumed run drops
        # the orphan line (``truncate_log``), so the log never loses or repeats an epoch.
        with open(run_dir / "log.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        training = {**(metadata or {}), "kind": kind, "epoch": epoch, "best_f1": best_f1,
                    "config": asdict(config), "last": record}
        ckpt = Checkpoint(kind=kind, config=net_config, state_dict=net.state_dict(), training=training,
                          optimizer=optimiser.state_dict())
        save_checkpoint(last_path, ckpt)
        if improved:
            save_checkpoint(run_dir / "best.pt", Checkpoint(kind=kind, config=net_config,
                                                             state_dict=net.state_dict(), training=training))
        if on_record is not None:
            on_record(record)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return record

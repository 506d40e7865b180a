"""Seeded, resumable JointDiffusion training with EMA weights, a validation loss and PyTorch DDP.

Loss (paper 002 Sec. 3.2): ``||eps_d - eps_d_hat||^2 + contact_weight * ||eps_c - eps_c_hat||^2`` (means), at
uniformly drawn DDPM timesteps. Every ``val_every`` steps the run writes ``RUN/last.pt`` (raw weights, EMA weights,
optimiser state) atomically, appends one JSON line to ``RUN/log.jsonl`` and keeps the EMA weights with the lowest
validation loss in ``RUN/best.pt``. The batch, noise and timesteps of step ``s`` depend only on ``(seed, s)``, so a
run resumed from ``last.pt`` reproduces an uninterrupted one.

Scale-out: under ``torchrun --nproc-per-node N`` (``WORLD_SIZE`` > 1) the same code initialises a process group
(gloo on CPU, NCCL on CUDA), wraps the network in ``DistributedDataParallel`` and gives rank ``r`` the rows
``r::N`` of each global batch, whose noise is drawn identically on every rank; gradients averaged by DDP then equal
the single-process gradient of the whole batch. Only rank 0 writes files.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from contactkit.diffusion.checkpoint import DiffusionCheckpoint, DiffusionSpec, load_diffusion, save_diffusion
from contactkit.diffusion.model import JointDiffusion, JointDiffusionConfig
from contactkit.diffusion.representation import ChoirExamples, ChoirScaler, context_channels
from contactkit.diffusion.schedule import DEFAULT_SCHEDULE, add_noise, training_scheduler
from contactkit.errors import ContactkitError
from contactkit.io.runlog import truncate_log
from contactkit.learn.distributed import join_process_group

__all__ = ["DiffusionTrainConfig", "NormalisedBatch", "check_init", "diffusion_loss", "global_batch", "normalise",
           "step_loss", "train_jointdiffusion", "validation_loss"]


@dataclass(frozen=True)
class DiffusionTrainConfig:
    """Training settings (saved in every checkpoint; a resumed run must use the same).

    Attributes:
        steps: optimiser steps.
        batch_size: global batch (split over DDP ranks; must be divisible by their number).
        lr: AdamW learning rate (linear warm-up over 100 steps, cosine decay to 10 %).
        weight_decay: AdamW weight decay.
        ema_decay: EMA decay (warmed up as ``min(decay, (1 + s) / (10 + s))``).
        contact_weight: weight of the contact noise loss.
        val_every: steps between validation, log line and checkpoint.
        seed: seed of initialisation, batches, noise and timesteps.
        device: torch device string (``cuda`` runs each rank on ``cuda:LOCAL_RANK``).
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    contact_weight: float = 1.0
    val_every: int = 100
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.val_every < 1:
            raise ContactkitError("steps, batch_size and val_every must be >= 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ContactkitError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class NormalisedBatch:
    """Standardised network tensors of a batch: ``volume (B,1,R,R,R)``, ``contact (B,32,9)``, ``context``."""

    volume: Tensor
    contact: Tensor
    context: Tensor

    def rows(self, idx: Any) -> NormalisedBatch:
        return NormalisedBatch(self.volume[idx], self.contact[idx], self.context[idx])

    def to(self, device: torch.device | str) -> NormalisedBatch:
        return NormalisedBatch(self.volume.to(device), self.contact.to(device), self.context.to(device))


def normalise(examples: ChoirExamples, scaler: ChoirScaler) -> NormalisedBatch:
    """Standardise raw examples with ``scaler``."""
    return NormalisedBatch(scaler.norm_volume(examples.volume), scaler.norm_contact(examples.contact),
                           scaler.norm_context(examples.context))


def global_batch(n: int, step: int, config: DiffusionTrainConfig, num_timesteps: int) -> dict[str, Any]:
    """Rows, timesteps and noise generator seed of global step ``step``: a function of ``(seed, step)`` only.

    Rows: epoch-wise permutations (``seed``, epoch) of the ``n`` examples, consumed ``batch_size`` at a time.
    """
    per_epoch = max(1, n // config.batch_size)
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch))
    rows = order[k * config.batch_size: (k + 1) * config.batch_size]
    if rows.numel() < config.batch_size:  # fewer examples than one batch: draw with replacement
        g = torch.Generator().manual_seed(config.seed * 7_919 + step)
        rows = torch.randint(0, n, (config.batch_size,), generator=g)
    g = torch.Generator().manual_seed(config.seed * 104_729 + step + 1)
    t = torch.randint(0, num_timesteps, (config.batch_size,), generator=g)
    return {"rows": rows, "t": t, "generator": g}


def diffusion_loss(
    net: nn.Module, scheduler: Any, batch: NormalisedBatch, t: Tensor, noise_d: Tensor, noise_c: Tensor,
    contact_weight: float = 1.0,
) -> tuple[Tensor, dict[str, float]]:
    """Noise-prediction loss of one batch at timesteps ``t`` (B,) with the given noise (shapes of the batch).

    Returns:
        ``(loss, {"loss_d": ..., "loss_c": ...})``.
    """
    x_d = add_noise(scheduler, batch.volume, noise_d, t)
    x_c = add_noise(scheduler, batch.contact, noise_c, t)
    out = net(x_d, x_c, t, batch.context)
    loss_d = nn.functional.mse_loss(out.eps_d, noise_d)
    loss_c = nn.functional.mse_loss(out.eps_c, noise_c)
    return loss_d + contact_weight * loss_c, {"loss_d": float(loss_d.detach()), "loss_c": float(loss_c.detach())}


def _draw_noise(batch: NormalisedBatch, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    nd = torch.randn(batch.volume.shape, generator=generator)
    nc = torch.randn(batch.contact.shape, generator=generator)
    return nd, nc


def step_loss(net: nn.Module, scheduler: Any, data: NormalisedBatch, step: int, config: DiffusionTrainConfig,
              rank: int = 0, world: int = 1, device: torch.device | str = "cpu") -> Tensor:
    """This rank's loss of global step ``step``: rows ``rank::world`` of the global batch, with the global batch's
    timesteps and noise (drawn identically on every rank)."""
    gb = global_batch(len(data.volume), step, config, scheduler.config.num_train_timesteps)
    batch = data.rows(gb["rows"])
    nd, nc = _draw_noise(batch, gb["generator"])
    mine = slice(rank, None, world)
    loss, _ = diffusion_loss(net, scheduler, batch.rows(mine).to(device), gb["t"][mine].to(device),
                             nd[mine].to(device), nc[mine].to(device), config.contact_weight)
    return loss


@torch.no_grad()
def validation_loss(net: nn.Module, scheduler: Any, data: NormalisedBatch, config: DiffusionTrainConfig,
                    device: torch.device, *, max_examples: int = 512) -> float:
    """Mean loss over (up to ``max_examples``) validation examples with fixed seeded timesteps and noise."""
    net.eval()
    n = min(len(data.volume), max_examples)
    g = torch.Generator().manual_seed(12_345)
    t_all = torch.randint(0, scheduler.config.num_train_timesteps, (n,), generator=g)
    total = 0.0
    for s in range(0, n, config.batch_size):
        b = data.rows(slice(s, min(n, s + config.batch_size)))
        nd, nc = _draw_noise(b, g)
        loss, _ = diffusion_loss(net, scheduler, b.to(device), t_all[s:s + len(b.volume)].to(device),
                                 nd.to(device), nc.to(device), config.contact_weight)
        total += float(loss) * len(b.volume)
    return total / max(n, 1)


def _lr_at(config: DiffusionTrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / 100)
    progress = step / max(config.steps, 1)
    return config.lr * warm * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def check_init(init: DiffusionCheckpoint, context: str, assignment: str) -> None:
    """Refuse to fine-tune ``init`` for another context or anchor-assignment scheme (its weights and statistics
    only make sense for the tensors they were trained on)."""
    if init.spec.context != context:
        raise ContactkitError(f"--init weights were trained with context {init.spec.context!r}, not {context!r}")
    if init.spec.assignment != assignment:
        raise ContactkitError(f"--init weights were trained with the {init.spec.assignment!r} anchor assignment, not "
                              f"{assignment!r}; a model cannot change its assignment (train from scratch)")


def train_jointdiffusion(
    train_data: ChoirExamples,
    val_data: ChoirExamples,
    context: str,
    run_dir: str | Path,
    config: DiffusionTrainConfig,
    *,
    model: JointDiffusionConfig | None = None,
    metadata: dict[str, Any] | None = None,
    hand_model: str = "openhand",
    num_points: int = 2048,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    stop_after: int | None = None,
    init: DiffusionCheckpoint | None = None,
) -> dict[str, Any]:
    """Train (or resume) a JointDiffusion model; returns the last log record.

    Args:
        train_data, val_data: raw examples (:func:`contactkit.diffusion.representation.build_examples`).
        context: "noisy" or "object" (must match the examples' context channels).
        run_dir: output folder (``last.pt``, ``best.pt``, ``log.jsonl``, ``config.json``).
        config: training settings.
        model: network config (default: :class:`JointDiffusionConfig` with the context's channels).
        metadata: extra JSON facts stored in the checkpoints' training dict.
        hand_model, num_points: the examples' hand and object samples per grasp (recorded in the spec, as is the
            examples' anchor-assignment scheme, which ``train_data`` and ``val_data`` must share).
        on_record: called with each log record.
        stop_after: stop (after checkpointing) once this many steps are done — tests use it to simulate a kill.
        init: fine-tune from these weights (raw and EMA weights start from them; their network config and
            standardisation statistics are kept, ``model`` is ignored); the context and the anchor assignment must match
            (:func:`check_init`).
    """
    nctx = context_channels(context)
    if train_data.context.shape[1] != nctx or val_data.context.shape[1] != nctx:
        raise ContactkitError(f"examples have {train_data.context.shape[1]} context channels; {context!r} needs {nctx}")
    assignment = train_data.assignment
    if val_data.assignment != assignment:
        raise ContactkitError(f"training examples use the {assignment!r} anchor assignment, validation examples "
                              f"{val_data.assignment!r}")
    if init is not None:
        check_init(init, context, assignment)
    model = init.spec.model if init is not None else model or JointDiffusionConfig(context_channels=nctx)
    rank, world, device = join_process_group(config.device)
    distributed = world > 1
    if config.batch_size % world:
        raise ContactkitError(f"batch_size {config.batch_size} must be divisible by the {world} processes")
    run_dir = Path(run_dir)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    scheduler = training_scheduler()
    scaler = init.spec.scaler if init is not None else ChoirScaler.fit(train_data.volume, train_data.context,
                                                                        train_data.contact)
    spec = DiffusionSpec(model, context, scaler, dict(DEFAULT_SCHEDULE), num_points, hand_model, assignment)
    torch.manual_seed(config.seed)
    net = JointDiffusion(model).to(device)
    if init is not None:
        net.load_state_dict(init.state_dict)
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start, best = 0, math.inf
    last_path = run_dir / "last.pt"
    if last_path.exists():
        ckpt = load_diffusion(last_path)
        if ckpt.training.get("config") != asdict(config) or ckpt.spec.to_dict() != spec.to_dict():
            raise ContactkitError(f"{run_dir} holds a run with other settings or data; use a new --out to start over")
        if ckpt.extra is None or not {"raw", "ema", "optimizer"} <= set(ckpt.extra):
            raise ContactkitError(f"{last_path} holds no training state (raw, EMA and optimiser); cannot resume")
        net.load_state_dict(ckpt.extra["raw"])
        ema.load_state_dict(ckpt.extra["ema"])
        optimiser.load_state_dict(ckpt.extra["optimizer"])
        start, best = int(ckpt.training["step"]), float(ckpt.training["best_val_loss"])
    if rank == 0:
        truncate_log(run_dir / "log.jsonl", "step", start + 1)
        from contactkit.io.atomic import atomic_write_json

        atomic_write_json(run_dir / "config.json", {"spec": spec.to_dict(), "train": asdict(config)})
    train_n = normalise(train_data, spec.scaler)
    val_n = normalise(val_data, spec.scaler)
    model_for_step: nn.Module = net
    if distributed:
        model_for_step = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    record: dict[str, Any] = {}
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(start, config.steps):
        net.train()
        for group in optimiser.param_groups:
            group["lr"] = _lr_at(config, step)
        loss = step_loss(model_for_step, scheduler, train_n, step, config, rank, world, device)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        decay = min(config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pn in zip(ema.parameters(), net.parameters(), strict=True):
                pe.mul_(decay).add_(pn.detach(), alpha=1 - decay)
        losses.append(float(loss.detach()))
        done = step + 1
        if done % config.val_every and done != config.steps and done != stop_after:
            continue
        val = validation_loss(ema, scheduler, val_n, config, device)
        improved = val < best
        best = min(best, val)
        seconds = time.perf_counter() - t0
        record = {"step": done, "train_loss": sum(losses) / max(len(losses), 1), "val_loss": val,
                  "best_val_loss": best, "lr": _lr_at(config, step), "seconds": seconds,
                  "examples_per_second": len(losses) * config.batch_size / max(seconds, 1e-9)}
        losses, t0 = [], time.perf_counter()
        if rank == 0:
            with open(run_dir / "log.jsonl", "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            training = {**(metadata or {}), "step": done, "best_val_loss": best, "config": asdict(config),
                        "last": record, "train_examples": len(train_data), "val_examples": len(val_data)}
            save_diffusion(last_path, DiffusionCheckpoint(spec, ema.state_dict(), training, {
                "raw": net.state_dict(), "ema": ema.state_dict(), "optimizer": optimiser.state_dict()}))
            if improved:
                save_diffusion(run_dir / "best.pt", DiffusionCheckpoint(spec, ema.state_dict(), training))
            if on_record is not None:
                on_record(record)
        if distributed:
            torch.distributed.barrier()
        if stop_after is not None and done >= stop_after:
            break
    return record

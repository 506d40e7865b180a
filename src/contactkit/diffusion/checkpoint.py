"""JointDiffusion checkpoints: state dicts with the full model description, read with ``weights_only=True``.

A file is a ``torch.save`` of a plain dict::

    {"format": "contactkit.jointdiffusion", "version": 1,
     "spec": <JSON string: model config, schedule, context kind, scaler statistics, object samples, hand,
              anchor assignment>,
     "state_dict": {name: tensor},          # the weights to sample with (EMA weights in shipped files)
     "training": <JSON string: step, losses, settings, data>,
     "extra": {"raw": {...}, "ema": {...}, "optimizer": {...}}   # resumable runs only

Writes are atomic (:mod:`contactkit.io.atomic`).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from contactkit.contact.choir import ASSIGNMENT_SCHEMES
from contactkit.diffusion.model import JointDiffusion, JointDiffusionConfig
from contactkit.diffusion.representation import ChoirScaler, context_channels
from contactkit.diffusion.schedule import DEFAULT_SCHEDULE
from contactkit.errors import ContactkitError

__all__ = ["DiffusionCheckpoint", "DiffusionSpec", "load_diffusion", "save_diffusion"]

FORMAT = "contactkit.jointdiffusion"
VERSION = 1


class DiffusionCheckpointError(ContactkitError):
    """A JointDiffusion checkpoint is missing, not weights-only, or of another format/version."""


@dataclass
class DiffusionSpec:
    """Everything needed to rebuild and use a trained model besides its weights.

    Attributes:
        model: the network's constructor config.
        context: "noisy" (refinement) or "object" (synthesis).
        scaler: the tensors' standardisation statistics.
        schedule: the DDPM training schedule (``diffusers`` config keys).
        num_points: object surface samples per grasp (seeded 0), as the grids were built.
        hand_model: hand the training data used (CHOIR is defined on the 32 anchors every hand derives, so the
            model serves any hand through its own anchors).
        assignment: anchor-assignment scheme of ``d_H`` in the model's volumes and noisy-hand context
            (:func:`contactkit.contact.choir.anchor_assignment`: "ordered" or "shuffled"). Specs written before the
            key existed (the weights shipped until session 11) read as "ordered".
    """

    model: JointDiffusionConfig
    context: str
    scaler: ChoirScaler
    schedule: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SCHEDULE))
    num_points: int = 2048
    hand_model: str = "openhand"
    assignment: str = "ordered"

    def __post_init__(self) -> None:
        if self.assignment not in ASSIGNMENT_SCHEMES:
            raise ContactkitError(f"assignment must be one of {ASSIGNMENT_SCHEMES}, got {self.assignment!r}")
        if context_channels(self.context) != self.model.context_channels:
            raise ContactkitError(
                f"context {self.context!r} needs {context_channels(self.context)} context channels, the model "
                f"config has {self.model.context_channels}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "context": self.context, "scaler": self.scaler.to_dict(),
                "schedule": dict(self.schedule), "num_points": self.num_points, "hand_model": self.hand_model,
                "assignment": self.assignment}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffusionSpec:
        """The spec of ``data`` (:meth:`to_dict`); without an ``"assignment"`` key (older files) it is "ordered"."""
        known = {"model", "context", "scaler", "schedule", "num_points", "hand_model", "assignment"}
        if set(data) != known and set(data) != known - {"assignment"}:
            raise ContactkitError(f"spec keys must be {sorted(known)} ('assignment' optional), got {sorted(data)}")
        return cls(JointDiffusionConfig.from_dict(data["model"]), data["context"],
                   ChoirScaler.from_dict(data["scaler"]), dict(data["schedule"]), int(data["num_points"]),
                   str(data["hand_model"]), str(data.get("assignment", "ordered")))


@dataclass
class DiffusionCheckpoint:
    """Contents of a checkpoint file (``extra`` holds raw weights, EMA and optimiser state for resuming)."""

    spec: DiffusionSpec
    state_dict: dict[str, torch.Tensor]
    training: dict[str, Any]
    extra: dict[str, Any] | None = None

    def build(self, device: torch.device | str = "cpu") -> JointDiffusion:
        """The network with ``state_dict`` loaded, in eval mode."""
        net = JointDiffusion(self.spec.model)
        net.load_state_dict(self.state_dict)
        return net.to(device).eval()


def save_diffusion(path: str | os.PathLike[str], ckpt: DiffusionCheckpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically."""
    from contactkit.io.atomic import atomic_write_bytes

    payload: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "spec": json.dumps(ckpt.spec.to_dict()),
        "training": json.dumps(ckpt.training),
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
    }
    if ckpt.extra is not None:
        payload["extra"] = ckpt.extra
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_diffusion(path: str | os.PathLike[str]) -> DiffusionCheckpoint:
    """Read a checkpoint written by :func:`save_diffusion` (``weights_only=True``), refusing anything else."""
    path = Path(path)
    if not path.is_file():
        raise DiffusionCheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe files
        raise DiffusionCheckpointError(f"checkpoint {path} is not a readable weights-only file: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DiffusionCheckpointError(f"checkpoint {path} is not a JointDiffusion checkpoint ('{FORMAT}')")
    if payload.get("version") != VERSION:
        raise DiffusionCheckpointError(f"checkpoint {path} has version {payload.get('version')!r}, expected {VERSION}")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DiffusionCheckpointError(f"checkpoint {path} has no valid state_dict")
    return DiffusionCheckpoint(DiffusionSpec.from_dict(json.loads(payload["spec"])), state,
                               json.loads(payload.get("training", "{}")), payload.get("extra"))

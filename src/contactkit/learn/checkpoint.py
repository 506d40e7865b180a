"""Checkpoints of contactkit's networks: a state dict with its format version and constructor config.

A checkpoint file is a ``torch.save`` of a plain dict::

    {"format": "contactkit.checkpoint", "version": 1, "kind": one of NetworkKind,
     "config": <JSON string of the network config>, "state_dict": {name: tensor},
     "training": <JSON string of training state: epoch, metrics, optimiser settings>,
     "optimizer": {...} (optional, resumable training only)}

and is always read with ``torch.load(..., weights_only=True)``, which refuses arbitrary pickled objects. Writes
are atomic (temporary file + rename), so a killed training run never leaves a truncated checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from contactkit.errors import ContactkitError

CHECKPOINT_FORMAT = "contactkit.checkpoint"
CHECKPOINT_VERSION = 1
NetworkKind = Literal["deepcontact", "picr", "lifter", "keypoints", "obman-net", "honet", "picr-image"]


class CheckpointError(ContactkitError):
    """A checkpoint file is missing, not a contactkit state dict, or of an unknown version."""


@dataclass
class Checkpoint:
    """The contents of a checkpoint file.

    Attributes:
        kind: which network the state dict belongs to.
        config: the network's constructor config as plain JSON data.
        state_dict: parameter and buffer tensors.
        training: epoch, best metrics and settings of the run that produced it.
        optimizer: optimiser state dict for resuming, or None.
    """

    kind: NetworkKind
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    training: dict[str, Any]
    optimizer: dict[str, Any] | None = None


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "kind": checkpoint.kind,
        "config": json.dumps(checkpoint.config),
        "training": json.dumps(checkpoint.training),
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
    }
    if checkpoint.optimizer is not None:
        payload["optimizer"] = checkpoint.optimizer
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp creates 0600; a checkpoint is an ordinary file
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike[str], *, expected_kind: NetworkKind | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing anything else.

    Raises:
        CheckpointError: missing file, unreadable or non-weights content, wrong format/version/kind.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe files
        # torch's own message advises retrying with weights_only=False: wrong advice for an untrusted file, so
        # only its first line (the reason) is kept
        text = str(err)
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if unsafe:
            reason = f"it holds a pickled {unsafe.group(1)}, not just tensors"
        elif "weights_only" in text or "Weights only load failed" in text:
            reason = "it holds pickled objects other than tensors"
        else:
            reason = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path} is not a readable contactkit state dict ({reason}); contactkit loads weights only "
            "and never unpickles code, so do not load this file with weights_only=False unless you trust its author"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a contactkit checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has version {payload.get('version')!r}; this contactkit reads {CHECKPOINT_VERSION}"
        )
    kind: NetworkKind = payload.get("kind")  # type: ignore[assignment]  # checked on the next line
    if kind not in get_args(NetworkKind):
        raise CheckpointError(f"checkpoint {path} has unknown kind {kind!r}")
    if expected_kind is not None and kind != expected_kind:
        raise CheckpointError(f"checkpoint {path} holds a {kind} network, expected {expected_kind}")
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"checkpoint {path} has no valid state_dict")
    return Checkpoint(
        kind=kind,
        config=json.loads(payload["config"]),
        state_dict=state_dict,
        training=json.loads(payload.get("training", "{}")),
        optimizer=payload.get("optimizer"),
    )

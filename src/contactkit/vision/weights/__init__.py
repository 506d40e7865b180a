"""Shipped image-model weights (state dict + config, read with ``weights_only=True``); see
``docs/keypoints_model_card.md`` and ``docs/obman_net_model_card.md``."""

from __future__ import annotations

from pathlib import Path

from contactkit.errors import ContactkitError

__all__ = ["default_keypoints_path", "default_lifter_path", "default_obman_net_path"]

_DIR = Path(__file__).resolve().parent


def default_lifter_path(hand_model: str = "openhand") -> Path:
    """The shipped full-graph lifter for ``hand_model`` (raises when none is shipped)."""
    path = _DIR / f"lifter_{hand_model}.pt"
    if not path.is_file():
        raise ContactkitError(f"no shipped lifter for hand {hand_model!r}; train one with `contactkit train lifter` "
                              "and pass --weights")
    return path


def default_obman_net_path(hand_model: str = "openhand") -> Path:
    """The shipped ObMan network (contact fine-tuned) for ``hand_model`` (raises when none is shipped)."""
    path = _DIR / f"obman_net_{hand_model}.pt"
    if not path.is_file():
        raise ContactkitError(f"no shipped obman-net for hand {hand_model!r}; train one with `contactkit train "
                              "obman-net` and pass --weights")
    return path


def default_keypoints_path(hand_model: str = "openhand") -> Path:
    """The shipped image network (image -> 2D -> 3D keypoints) for ``hand_model`` (raises when none is shipped)."""
    path = _DIR / f"keypoints_{hand_model}.pt"
    if not path.is_file():
        raise ContactkitError(f"no shipped image network for hand {hand_model!r}; train one with `contactkit train "
                              "keypoints` and pass --weights")
    return path

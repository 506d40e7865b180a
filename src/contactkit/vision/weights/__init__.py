"""Shipped image-model weights (state dict + config, read with ``weights_only=True``); see
``docs/keypoints_model_card.md`` and ``docs/obman_net_model_card.md`` (ObMan network, HoNet, image PiCR)."""

from __future__ import annotations

from pathlib import Path

from contactkit.errors import ContactkitError

__all__ = ["default_honet_path", "default_keypoints_path", "default_lifter_path", "default_obman_net_path",
           "default_picr_image_path"]

_DIR = Path(__file__).resolve().parent


def _shipped(stem: str, what: str, kind: str, hand_model: str) -> Path:
    """``stem_{hand_model}.pt`` beside this module; raises naming ``what`` and how to train one when absent."""
    path = _DIR / f"{stem}_{hand_model}.pt"
    if not path.is_file():
        raise ContactkitError(f"no shipped {what} for hand {hand_model!r}; train one with `contactkit train "
                              f"{kind}` and pass --weights")
    return path


def default_lifter_path(hand_model: str = "openhand") -> Path:
    """The shipped full-graph lifter for ``hand_model`` (raises when none is shipped)."""
    return _shipped("lifter", "lifter", "lifter", hand_model)


def default_obman_net_path(hand_model: str = "openhand") -> Path:
    """The shipped ObMan network (contact fine-tuned) for ``hand_model`` (raises when none is shipped)."""
    return _shipped("obman_net", "obman-net", "obman-net", hand_model)


def default_keypoints_path(hand_model: str = "openhand") -> Path:
    """The shipped image network (image -> 2D -> 3D keypoints) for ``hand_model`` (raises when none is shipped)."""
    return _shipped("keypoints", "image network", "keypoints", hand_model)


def default_honet_path(hand_model: str = "openhand") -> Path:
    """The shipped HoNet (CPF's hand + known-object pose network) for ``hand_model`` (raises when none is shipped)."""
    return _shipped("honet", "HoNet", "honet", hand_model)


def default_picr_image_path(hand_model: str = "openhand") -> Path:
    """The shipped image PiCR (CPF's contact network on image features) for ``hand_model`` (raises when none is
    shipped)."""
    return _shipped("picr_image", "image PiCR", "picr-image", hand_model)

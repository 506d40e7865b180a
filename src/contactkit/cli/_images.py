"""Image files as the ``estimate`` command's input: the accepted suffixes, and reading them with a pinhole camera."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from contactkit.errors import ContactkitError

if TYPE_CHECKING:
    from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def not_images(paths: list[Path]) -> list[str]:
    """The paths in ``paths`` whose suffix is not an image's (empty when all are images)."""
    return [str(p) for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES]


def read_images(paths: list[Path], focal: float | None) -> tuple[Tensor, Tensor, float]:
    """Read same-size image files as RGB, with one pinhole camera for all of them.

    Args:
        paths: image files (all the same size).
        focal: focal length in pixels; None: the image width (a ~53 degree horizontal field of view).

    Returns:
        rgb (N, H, W, 3) uint8; k (N, 3, 3) intrinsics with the principal point at the image centre; the focal
        length used, pixels.
    """
    import numpy as np
    import torch
    from PIL import Image

    from contactkit.render.camera import pinhole_intrinsics

    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    if len({im.shape for im in images}) != 1:
        raise ContactkitError("all images must have the same size")
    h, w = images[0].shape[:2]
    f = float(w) if focal is None else float(focal)
    k = torch.tensor(pinhole_intrinsics(f, w, h), dtype=torch.float32).expand(len(images), 3, 3)
    return torch.as_tensor(np.stack(images)), k, f

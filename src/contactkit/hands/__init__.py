"""contactkit.hands: differentiable hand models (OpenHand, bundled; MANO, from the user's files).

``load_hand("openhand" | "mano", side)`` returns a :class:`HandModel`; see ``docs/hands.md``.
"""

from __future__ import annotations

import os

import torch

from contactkit.errors import HandModelError
from contactkit.hands.base import (
    KEYPOINT_NAMES,
    MANO_JOINT_NAMES,
    HandModel,
    HandModelData,
    HandOutput,
    HandParams,
    check_side,
)

__all__ = [
    "HandModel",
    "HandModelData",
    "HandOutput",
    "HandParams",
    "KEYPOINT_NAMES",
    "MANO_JOINT_NAMES",
    "HAND_NAMES",
    "load_hand",
]

HAND_NAMES = ("openhand", "mano")


def load_hand(
    name: str = "openhand",
    side: str = "right",
    *,
    mano_dir: str | os.PathLike[str] | None = None,
    ncomps: int = 45,
    flat_hand_mean: bool = True,
    dtype: torch.dtype = torch.float32,
) -> HandModel:
    """Build a hand model.

    Args:
        name: "openhand" (bundled, MIT) or "mano" (needs ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``).
        side: "right" or "left".
        mano_dir: folder with the MANO pickles; defaults to ``$CONTACTKIT_MANO_DIR``.
        ncomps: default number of PCA pose coefficients (1..45).
        flat_hand_mean: if True a zero ``hand_pose`` is the flat hand, else the PCA mean hand.
        dtype: floating dtype of the model buffers.

    Raises:
        HandModelError: unknown name or side, MANO files missing or unsafe.
    """
    side = check_side(side)
    if name == "openhand":
        from contactkit.hands.openhand import openhand_data

        data = openhand_data(side)
    elif name == "mano":
        from contactkit.hands.mano import mano_data

        data = mano_data(side, mano_dir)
    else:
        raise HandModelError(f"name must be one of {HAND_NAMES}, got {name!r}")
    return HandModel(data, ncomps=ncomps, flat_hand_mean=flat_hand_mean, dtype=dtype)

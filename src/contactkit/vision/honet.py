"""CPF's HoNet (paper 004 §4): one RGB image -> the hand (pose + shape through the hand layer) and the 6D pose of
a known object.

The encoder and hand branch are ObMan's (:class:`~contactkit.vision.obman_net.HandBranch`, shared code); the
object branch regresses the object's rotation (the continuous 6D representation, Zhou et al. 2019) and its
translation relative to the hand root, camera axes. The loss is the hand's (``L_V + L_J + mu_beta L_beta`` +
the root term, as :func:`~contactkit.vision.obman_net.obman_losses`) plus the mean squared error (mm^2) of the
object's surface samples posed by the prediction against the same samples posed by the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from contactkit.geometry.rotations import rot6d_to_rotmat
from contactkit.hands import HandModel
from contactkit.settings import from_fields
from contactkit.vision.obman_net import (
    HandNetConfig,
    HandObjectEncoder,
    HandOutput,
    ObManTargets,
    _mlp,
    _sq_mm,
    hand_losses,
    hand_total,
)

__all__ = ["HoNet", "HoNetConfig", "HoNetOutput", "honet_losses", "posed_object_points"]


@dataclass(frozen=True)
class HoNetConfig(HandNetConfig):
    """Settings of :class:`HoNet` (saved with its weights): those of :class:`~contactkit.vision.obman_net.
    HandNetConfig`."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HoNetConfig:
        return from_fields(cls, "honet", data)


@dataclass
class HoNetOutput(HandOutput):
    """Outputs of :class:`HoNet` (camera axes, metres): :class:`~contactkit.vision.obman_net.HandOutput`'s and the
    object's pose, ``x_camera = root + object_rotation @ x_object + object_translation``.

    Attributes:
        object_rotation: (B, 3, 3); object_translation: (B, 3) relative to the root.
    """

    object_rotation: Tensor
    object_translation: Tensor


class HoNet(HandObjectEncoder):
    """Image -> hand + 6D pose of a known object (see the module docstring)."""

    def __init__(self, config: HoNetConfig | None = None, hand: HandModel | None = None) -> None:
        c = config or HoNetConfig()
        super().__init__(c, hand)
        self.config = c
        self.object_head = _mlp(c.encoding_dim, c.encoding_dim, 9)

    def forward(self, images: Tensor, k: Tensor) -> HoNetOutput:
        """Hand and object pose (arguments: :meth:`~contactkit.vision.obman_net.HandObjectEncoder.encode`)."""
        hand_out, phi_o = self.encode(images, k)
        o = self.object_head(phi_o)
        identity6d = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=o.dtype, device=o.device)
        rot = rot6d_to_rotmat(o[:, :6] + identity6d)
        return HoNetOutput(**vars(hand_out), object_rotation=rot, object_translation=0.1 * o[:, 6:])


def posed_object_points(out: HoNetOutput, local_points: Tensor) -> Tensor:
    """Object-frame points ``(B, P, 3)`` posed by the prediction, root-relative camera frame (B, P, 3)."""
    return local_points @ out.object_rotation.transpose(1, 2) + out.object_translation[:, None]


def honet_losses(net: HoNet, out: HoNetOutput, target: ObManTargets, root_weight: float = 1.0) -> dict[str, Tensor]:
    """HoNet's loss terms (batch means, mm^2) and ``total``."""
    t = hand_losses(out, target)
    t["object"] = _sq_mm(posed_object_points(out, target.object_local_points), target.object_points).mean()
    t["total"] = hand_total(t, root=root_weight) + t["object"]
    return t

"""CPF's HoNet (paper 004 §4): one RGB image -> the hand (pose + shape through the hand layer) and the 6D pose of
a known object.

The encoder and hand branch are ObMan's (:class:`~contactkit.vision.obman_net.HandBranch`, shared code); the
object branch regresses the object's rotation (the continuous 6D representation, Zhou et al. 2019) and its
translation relative to the hand root, camera axes. The loss is the hand's (``L_V + L_J + mu_beta L_beta`` +
the root term, as :func:`~contactkit.vision.obman_net.obman_losses`) plus the mean squared error (mm^2) of the
object's surface samples posed by the prediction against the same samples posed by the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from contactkit.errors import ContactkitError, ShapeError
from contactkit.geometry.rotations import rot6d_to_rotmat
from contactkit.hands import HandModel, load_hand
from contactkit.settings import from_fields
from contactkit.vision.backbone import build_backbone
from contactkit.vision.obman_net import BETA_WEIGHT, MM, HandBranch, ObManTargets, _mlp, _sq_mm

__all__ = ["HoNet", "HoNetConfig", "HoNetOutput", "honet_losses", "posed_object_points"]


@dataclass(frozen=True)
class HoNetConfig:
    """Settings of :class:`HoNet` (saved with its weights); fields as :class:`~contactkit.vision.obman_net.
    ObManNetConfig`'s."""

    backbone: dict[str, Any] = field(default_factory=lambda: {"name": "resnet", "width": 16, "blocks": [2, 2, 2]})
    image_size: int = 128
    encoding_dim: int = 128
    hand: str = "openhand"
    side: str = "right"
    ncomps: int = 30

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HoNetConfig:
        return from_fields(cls, "honet", data)


@dataclass
class HoNetOutput:
    """Outputs of :class:`HoNet` (camera axes, metres): the hand fields of
    :class:`~contactkit.vision.obman_net.ObManOutput` and the object's pose, ``x_camera = root +
    object_rotation @ x_object + object_translation``.

    Attributes:
        object_rotation: (B, 3, 3); object_translation: (B, 3) relative to the root.
    """

    global_orient: Tensor
    hand_pca: Tensor
    betas: Tensor
    hand_verts: Tensor
    hand_keypoints: Tensor
    root: Tensor
    object_rotation: Tensor
    object_translation: Tensor


class HoNet(nn.Module):
    """Image -> hand + 6D pose of a known object (see the module docstring)."""

    def __init__(self, config: HoNetConfig | None = None, hand: HandModel | None = None) -> None:
        super().__init__()
        self.config = c = config or HoNetConfig()
        layer = hand if hand is not None else load_hand(c.hand, c.side, ncomps=c.ncomps)
        if layer.name != c.hand or layer.side != c.side:
            raise ContactkitError(f"the hand model is {layer.name}/{layer.side}, the config says {c.hand}/{c.side}")
        self.backbone = build_backbone(c.backbone)
        channels = int(self.backbone.out_channels)  # type: ignore[arg-type]
        self.encode_hand = nn.Sequential(nn.Linear(channels, c.encoding_dim), nn.ReLU())
        self.encode_object = nn.Sequential(nn.Linear(channels, c.encoding_dim), nn.ReLU())
        self.hand_branch = HandBranch(layer, c.encoding_dim, c.ncomps)
        self.object_head = _mlp(c.encoding_dim, c.encoding_dim, 9)

    @property
    def hand(self) -> HandModel:
        """The hand layer (not in the state dict: rebuilt from ``config.hand``)."""
        return self.hand_branch.hand

    def forward(self, images: Tensor, k: Tensor) -> HoNetOutput:
        """Args: images (B, 3, S, S) normalised, S = ``config.image_size``; k (B, 3, 3) their intrinsics."""
        s = self.config.image_size
        if images.ndim != 4 or images.shape[1:] != (3, s, s):
            raise ShapeError(f"images must have shape (B, 3, {s}, {s}), got {tuple(images.shape)}")
        pooled = self.backbone(images).mean((2, 3))
        phi_h, phi_o = self.encode_hand(pooled), self.encode_object(pooled)
        go, pca, betas, verts, keypoints, root = self.hand_branch(phi_h, k, s)
        o = self.object_head(phi_o)
        identity6d = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=o.dtype, device=o.device)
        rot = rot6d_to_rotmat(o[:, :6] + identity6d)
        return HoNetOutput(global_orient=go, hand_pca=pca, betas=betas, hand_verts=verts, hand_keypoints=keypoints,
                           root=root, object_rotation=rot, object_translation=0.1 * o[:, 6:])


def posed_object_points(out: HoNetOutput, local_points: Tensor) -> Tensor:
    """Object-frame points ``(B, P, 3)`` posed by the prediction, root-relative camera frame (B, P, 3)."""
    return local_points @ out.object_rotation.transpose(1, 2) + out.object_translation[:, None]


def honet_losses(net: HoNet, out: HoNetOutput, target: ObManTargets, root_weight: float = 1.0) -> dict[str, Tensor]:
    """HoNet's loss terms (batch means, mm^2) and ``total``."""
    t = {
        "hand_verts": _sq_mm(out.hand_verts, target.hand_verts).mean(),
        "joints": _sq_mm(out.hand_keypoints, target.hand_keypoints).mean(),
        "beta": out.betas.pow(2).sum(-1).mean() if out.betas.shape[1] else out.hand_verts.new_zeros(()),
        "root": ((out.root - target.root) * MM).pow(2).sum(-1).mean(),
        "object": _sq_mm(posed_object_points(out, target.object_local_points), target.object_points).mean(),
    }
    t["total"] = t["hand_verts"] + t["joints"] + BETA_WEIGHT * t["beta"] + root_weight * t["root"] + t["object"]
    return t

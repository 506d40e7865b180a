"""2D keypoint heads: heatmaps decoded by integral regression (soft-argmax), and the image -> 3D keypoint network.

:func:`soft_argmax_2d` turns each heatmap into a probability map (softmax over pixels) and returns its expected
pixel position (Sun et al., "Integral human pose regression", ECCV 2018): differentiable and sub-pixel, so the
2D loss trains the heatmaps directly. :class:`KeypointNet` is paper 003's pipeline: a backbone, a heatmap head
for the 21 hand + 8 box keypoints, and the context-aware lifter fed with the 2D keypoints and the image's pooled
feature (the paper concatenates the global image feature to every node).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from contactkit.errors import ShapeError
from contactkit.settings import from_fields
from contactkit.vision.backbone import build_backbone
from contactkit.vision.camera import pixels_to_normalized
from contactkit.vision.keypoints import NUM_KEYPOINTS
from contactkit.vision.lifter import ContextAwareLifter, LifterConfig, LifterOutput

__all__ = ["HeatmapHead", "KeypointNet", "KeypointNetConfig", "KeypointNetOutput", "resize_to_square", "soft_argmax_2d"]


def soft_argmax_2d(heatmaps: Tensor) -> Tensor:
    """Expected (x, y) position (B, K, 2) of each heatmap (B, K, H, W) under a softmax over its pixels.

    Coordinates are heatmap pixel indices (x = column, y = row; pixel centres at integers).
    """
    if heatmaps.ndim != 4:
        raise ShapeError(f"heatmaps must have shape (B, K, H, W), got {tuple(heatmaps.shape)}")
    b, k, h, w = heatmaps.shape
    prob = torch.softmax(heatmaps.reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)
    xs = torch.arange(w, dtype=prob.dtype, device=prob.device)
    ys = torch.arange(h, dtype=prob.dtype, device=prob.device)
    return torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], dim=-1)


class HeatmapHead(nn.Module):
    """Feature map (B, C, h, w) -> K heatmaps at twice its resolution (one transposed convolution, then 1x1)."""

    def __init__(self, in_channels: int, num_keypoints: int = NUM_KEYPOINTS, hidden: int = 64) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(in_channels, hidden, 4, 2, 1, bias=False), nn.BatchNorm2d(hidden),
                                nn.ReLU())
        self.out = nn.Conv2d(hidden, num_keypoints, 1)

    def forward(self, features: Tensor) -> Tensor:
        return self.out(self.up(features))


@dataclass(frozen=True)
class KeypointNetConfig:
    """Settings of :class:`KeypointNet` (saved with its weights).

    Attributes:
        backbone: :func:`~contactkit.vision.backbone.build_backbone` config.
        image_size: square input size, pixels (images are resized to it, intrinsics alike).
        context_dim: size of the pooled image feature given to every lifter node.
        lifter: :class:`LifterConfig` fields (its ``context_dim`` is set from ``context_dim``).
    """

    backbone: dict[str, Any] = field(default_factory=lambda: {"name": "resnet", "width": 32, "blocks": [2, 2, 2]})
    image_size: int = 128
    context_dim: int = 32
    lifter: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeypointNetConfig:
        return from_fields(cls, "keypoint-network", data)


@dataclass
class KeypointNetOutput:
    """Outputs of :class:`KeypointNet`.

    Attributes:
        keypoints_2d: (B, 29, 2) pixels of the input image (21 hand keypoints, 8 box corners).
        lifted: the lifter's root-relative 3D keypoints.
        hand_camera: (B, 21, 3) camera-frame hand keypoints, metres (None without a hand sub-graph).
        object_camera: (B, 8, 3) camera-frame box corners, metres (None without an object sub-graph).
    """

    keypoints_2d: Tensor
    lifted: LifterOutput
    hand_camera: Tensor | None
    object_camera: Tensor | None


class KeypointNet(nn.Module):
    """Image -> 2D keypoints -> 3D keypoints (paper 003 Fig. 2)."""

    def __init__(self, config: KeypointNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or KeypointNetConfig()
        c = self.config
        self.backbone = build_backbone(c.backbone)
        channels = int(self.backbone.out_channels)  # type: ignore[arg-type]
        self.stride = int(self.backbone.stride)  # type: ignore[arg-type]
        self.head = HeatmapHead(channels)
        self.context = nn.Linear(channels, c.context_dim)
        self.lifter = ContextAwareLifter(LifterConfig(**{**c.lifter, "context_dim": c.context_dim}))

    def forward(self, images: Tensor, k: Tensor) -> KeypointNetOutput:
        """Estimate keypoints.

        Args:
            images: (B, 3, S, S) normalised images (:func:`~contactkit.vision.backbone.normalize_images`),
                S = ``config.image_size``.
            k: (B, 3, 3) pixel intrinsics of those images.
        """
        s = self.config.image_size
        if images.ndim != 4 or images.shape[1:] != (3, s, s):
            raise ShapeError(f"images must have shape (B, 3, {s}, {s}), got {tuple(images.shape)}")
        feats = self.backbone(images)
        heat = self.head(feats)
        scale = s / heat.shape[-1]
        kp2d = (soft_argmax_2d(heat) + 0.5) * scale - 0.5  # heatmap pixel centres -> image pixels
        context = self.context(feats.mean((2, 3)))
        norm = pixels_to_normalized(kp2d, k.to(kp2d))
        lifted = self.lifter(norm, context)
        hand, obj = self.lifter.camera_frame(lifted, norm)
        return KeypointNetOutput(keypoints_2d=kp2d, lifted=lifted, hand_camera=hand, object_camera=obj)


def resize_to_square(rgb: Tensor, k: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Resize images (B, H, W, 3) to (B, size, size, 3) (bilinear; uint8 stays uint8, rounded) and their intrinsics
    (B, 3, 3) alike."""
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ShapeError(f"rgb must have shape (B, H, W, 3), got {tuple(rgb.shape)}")
    h, w = rgb.shape[1:3]
    x = rgb.permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if rgb.dtype == torch.uint8:  # keep the 0-255 scale that normalize_images reads from uint8
        x = x.round().clamp(0, 255).to(torch.uint8)
    sx, sy = size / w, size / h
    scale = torch.tensor([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]], dtype=k.dtype,
                         device=k.device)
    return x.permute(0, 2, 3, 1), scale @ k

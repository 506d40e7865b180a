"""CPF's image PiCR (paper 004 §4): contact from image features sampled at the projected hand and object points.

contactkit's geometric PiCR (:class:`contactkit.learn.networks.PiCRNet`: a PointNet++ over the hand vertices and
object samples with per-point geometric features, cascaded heads VC -> CR -> AE, paper 004 eq. 9) is fed here,
for every point, with the geometric features concatenated to an image feature: the backbone's feature map
(reduced to ``image_channels`` by a 1x1 convolution) sampled bilinearly at the point's projection into the image.
Points behind the camera get zero image features. The three heads are unchanged: vertex contact (VC), contact
region (CR, 17 hand subregions) and anchor elasticity (AE), trained with the geometric PiCR's loss (focal VC,
focal CR and BCE AE on contact points, paper 004 eqs. 5-7; :func:`contactkit.learn.train.training_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contactkit.errors import ContactkitError, ShapeError
from contactkit.hands import HandModel, load_hand
from contactkit.learn.estimators import PICR_VC_THRESHOLD, inputs_for, network_config
from contactkit.learn.features import N_FEATURES
from contactkit.learn.networks import BackboneConfig, PiCRConfig, PiCRNet, PiCROutput
from contactkit.learn.train import training_loss
from contactkit.settings import from_fields
from contactkit.vision.backbone import build_backbone
from contactkit.vision.camera import project

__all__ = ["ImagePiCR", "ImagePiCRConfig", "image_picr_loss", "sample_image_features"]


@dataclass(frozen=True)
class ImagePiCRConfig:
    """Settings of :class:`ImagePiCR` (saved with its weights).

    Attributes:
        backbone: image backbone config; image_size: square input size, pixels.
        image_channels: image features per point.
        points: PointNet++ settings of the geometric PiCR (:class:`~contactkit.learn.networks.BackboneConfig`
            fields except ``in_channels``; default: the shipped small PiCR's).
        hand, side: the hand model.
    """

    backbone: dict[str, Any] = field(default_factory=lambda: {"name": "resnet", "width": 16, "blocks": [2, 2]})
    image_size: int = 128
    image_channels: int = 16
    points: dict[str, Any] = field(default_factory=lambda: {
        k: v for k, v in network_config("picr")["backbone"].items() if k != "in_channels"})
    hand: str = "openhand"
    side: str = "right"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImagePiCRConfig:
        return from_fields(cls, "image-PiCR", data)


def sample_image_features(feature_map: Tensor, points: Tensor, k: Tensor, image_size: int) -> Tensor:
    """Bilinear samples (B, N, C) of ``feature_map (B, C, h, w)`` (covering an ``image_size`` square image) at the
    projections of camera-frame ``points (B, N, 3)`` under ``k (B, 3, 3)``; zero outside the image or behind the
    camera."""
    if points.ndim != 3 or points.shape[-1] != 3 or feature_map.shape[0] != points.shape[0]:
        raise ShapeError(f"points must be (B, N, 3) with the feature map's B, got {tuple(points.shape)}")
    z = points[..., 2:3]
    safe = torch.where(z > 1e-6, points, torch.ones_like(points))
    uv = project(safe, k.to(points))
    grid = (uv + 0.5) / image_size * 2.0 - 1.0  # pixel centres -> [-1, 1] (align_corners=False)
    out = F.grid_sample(feature_map, grid.unsqueeze(2).to(feature_map), mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return (out[..., 0].transpose(1, 2) * (z > 1e-6).to(out)).contiguous()


class ImagePiCR(nn.Module):
    """Image + hand/object points -> per-point VC, CR, AE logits (see the module docstring)."""

    def __init__(self, config: ImagePiCRConfig | None = None, hand: HandModel | None = None) -> None:
        super().__init__()
        self.config = c = config or ImagePiCRConfig()
        layer = hand if hand is not None else load_hand(c.hand, c.side)
        if layer.name != c.hand or layer.side != c.side:
            raise ContactkitError(f"the hand model is {layer.name}/{layer.side}, the config says {c.hand}/{c.side}")
        self._hand = [layer]  # not a submodule: rebuilt from the config
        #: t_vc of the springs (paper 004: 0.8); set from the checkpoint's validation-tuned value on loading.
        self.vc_threshold = PICR_VC_THRESHOLD
        self.backbone = build_backbone(c.backbone)
        self.reduce = nn.Conv2d(int(self.backbone.out_channels), c.image_channels, 1)  # type: ignore[arg-type]
        points = BackboneConfig.from_dict({**c.points, "in_channels": N_FEATURES + c.image_channels})
        self.picr = PiCRNet(PiCRConfig(backbone=points))

    @property
    def hand(self) -> HandModel:
        return self._hand[0]

    def inputs(self, images: Tensor, k: Tensor, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor
               ) -> tuple[Tensor, Tensor]:
        """PointNet++ positions (B, V + P, 3) and features (B, V + P, 29 + image_channels), hand first.

        Args:
            images: (B, 3, S, S) normalised; k: (B, 3, 3) their intrinsics.
            hand_verts: (B, V, 3) posed hand vertices, camera frame, metres.
            obj_points: (B, P, 3) object samples and obj_normals (B, P, 3) unit normals, camera frame.
        """
        s = self.config.image_size
        if images.ndim != 4 or images.shape[1:] != (3, s, s):
            raise ShapeError(f"images must have shape (B, 3, {s}, {s}), got {tuple(images.shape)}")
        hand = self.hand
        if hand.device != images.device:
            hand.to(images.device)
        geo = inputs_for(hand, hand_verts, obj_points, obj_normals)
        fmap = self.reduce(self.backbone(images))
        img = sample_image_features(fmap, torch.cat([hand_verts, obj_points], dim=1).float(), k, s)
        return geo.xyz, torch.cat([geo.features, img], dim=-1)

    def forward(self, images: Tensor, k: Tensor, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor
                ) -> PiCROutput:
        """Per-point logits over the V hand vertices then the P object points (arguments: :meth:`inputs`)."""
        return self.picr(*self.inputs(images, k, hand_verts, obj_points, obj_normals))


def image_picr_loss(net: ImagePiCR, images: Tensor, k: Tensor, hand_verts: Tensor, obj_points: Tensor,
                    obj_normals: Tensor, vc: Tensor, region: Tensor, elasticity: Tensor) -> Tensor:
    """The geometric PiCR's training loss on the image PiCR's inputs; targets per object point ``(B, P)``
    (:func:`contactkit.learn.data.picr_targets`)."""
    xyz, feats = net.inputs(images, k, hand_verts, obj_points, obj_normals)
    batch = {"xyz": xyz, "features": feats, "object_vc": vc, "object_region": region,
             "object_elasticity": elasticity, "n_hand": hand_verts.shape[1]}
    return training_loss("picr", net.picr, batch)

"""Contact estimation networks: DeepContact (paper 000) and a geometric PiCR (paper 004).

Both share one PointNet++ segmentation backbone over the joint hand + object point cloud (the hand vertices
followed by the sampled object points), fed with per-point geometric features (``contactkit.learn.features``).

- :class:`DeepContactNet` predicts, for every point, contact in ``n_bins`` classes over [0, 1] (paper 000, after
  Brahmbhatt et al.'s discrete contact representation).
- :class:`PiCRNet` predicts, for every object point, vertex contact (VC, a logit), the hand subregion it touches
  (CR, 17 logits) and the anchor elasticity (AE, a logit of k_atr in [0, 1]); heads are cascaded as in paper 004
  eq. (9): ``VC = h_vc(F)``, ``CR = h_cr(VC, F)``, ``AE = h_ae(CR, F)``. CPF's PiCR reads image features; here the
  input is the coarse hand and object geometry, as DeepContact's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from contactkit.errors import ContactkitError
from contactkit.learn.pointnet2 import FeaturePropagation, SetAbstraction


@dataclass(frozen=True)
class BackboneConfig:
    """PointNet++ segmentation backbone sizes (MSG set abstraction, three levels + a global feature).

    Radii are in the normalised frame (metres divided by ``NormalisationConfig.scale``). With
    ``vertex_embedding > 0``, each of the ``hand_vertices`` hand vertices (the first points of the cloud) gets a
    learned embedding of that width appended to its features (zeros for object points): a per-vertex prior of
    where a hand touches, which ties the network to one hand model (checkpoints record it).
    """

    in_channels: int
    centres: tuple[int, ...] = (512, 128, 32)
    radii: tuple[tuple[float, ...], ...] = ((0.1, 0.2), (0.2, 0.4), (0.4, 0.8))
    neighbours: tuple[tuple[int, ...], ...] = ((16, 32), (16, 32), (16, 32))
    widths: tuple[int, ...] = (64, 128, 256)
    global_width: int = 256
    head_width: int = 128
    dropout: float = 0.3
    hand_vertices: int = 0
    vertex_embedding: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackboneConfig:
        """Inverse of :meth:`to_dict`; rejects unknown keys."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ContactkitError(
                f"unknown backbone config keys: {sorted(unknown)}; expected a subset of {sorted(known)}"
            )
        converted: dict[str, Any] = {
            key: tuple(tuple(v) if isinstance(v, list) else v for v in value) if isinstance(value, list) else value
            for key, value in data.items()
        }
        return cls(**converted)


class PointNet2Backbone(nn.Module):
    """Per-point features (B, N, head_width) from positions (B, N, 3) and features (B, N, in_channels)."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding: nn.Embedding | None = None
        if config.vertex_embedding > 0:
            if config.hand_vertices < 1:
                raise ContactkitError("vertex_embedding needs hand_vertices >= 1 (the hand model's vertex count)")
            self.embedding = nn.Embedding(config.hand_vertices, config.vertex_embedding)
            nn.init.normal_(self.embedding.weight, std=0.1)
        levels = nn.ModuleList()
        c_in = config.in_channels + config.vertex_embedding
        channels = [c_in]
        for n_centres, radii, neighbours, width in zip(
            config.centres, config.radii, config.neighbours, config.widths, strict=True
        ):
            mlps = [[width // 2, width // 2, width] for _ in radii]
            level = SetAbstraction(n_centres, list(radii), list(neighbours), c_in, mlps)
            levels.append(level)
            c_in = level.out_channels
            channels.append(c_in)
        self.down = levels
        self.global_level = SetAbstraction(None, [1.0], [1], c_in, [[config.global_width, config.global_width]])
        self.up = nn.ModuleList()
        coarse = config.global_width
        # Feature propagation from the global feature back through each level to the input points.
        skips = channels[::-1]  # deepest level first, input features last
        for skip in skips:
            fp = FeaturePropagation(coarse + skip, [config.head_width * 2, config.head_width])
            self.up.append(fp)
            coarse = config.head_width

    def forward(self, xyz: Tensor, features: Tensor) -> Tensor:
        """Args:
            xyz: (B, N, 3) normalised positions.
            features: (B, N, in_channels) per-point features.

        Returns:
            (B, N, head_width) per-point features.
        """
        if self.embedding is not None:
            n_hand = self.config.hand_vertices
            if features.shape[1] < n_hand:
                raise ContactkitError(
                    f"features must hold the {n_hand} hand vertices first, got {features.shape[1]} points"
                )
            emb = self.embedding.weight.to(features.dtype)
            pad = emb.new_zeros(features.shape[1] - n_hand, emb.shape[1])
            features = torch.cat([features, torch.cat([emb, pad]).expand(features.shape[0], -1, -1)], dim=-1)
        xyz_levels = [xyz]
        feat_levels = [features]
        for level in self.down:
            centres, feats = level(xyz_levels[-1], feat_levels[-1])
            xyz_levels.append(centres)
            feat_levels.append(feats)
        g_xyz, g_feat = self.global_level(xyz_levels[-1], feat_levels[-1])
        coarse_xyz, coarse_feat = g_xyz, g_feat
        for fp, dense_xyz, dense_feat in zip(self.up, reversed(xyz_levels), reversed(feat_levels), strict=True):
            coarse_feat = fp(dense_xyz, coarse_xyz, dense_feat, coarse_feat)
            coarse_xyz = dense_xyz
        return coarse_feat


def _head(c_in: int, c_hidden: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_hidden, 1, bias=False),
        nn.BatchNorm1d(c_hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Conv1d(c_hidden, c_out, 1),
    )


@dataclass(frozen=True)
class DeepContactConfig:
    """DeepContact: the backbone and the number of contact bins (10 in paper 000)."""

    backbone: BackboneConfig
    n_bins: int = 10
    extra: dict[str, Any] = field(default_factory=dict)


class DeepContactNet(nn.Module):
    """Per-point contact classification into ``n_bins`` bins (logits)."""

    def __init__(self, config: DeepContactConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = PointNet2Backbone(config.backbone)
        width = config.backbone.head_width
        self.head = _head(width, width, config.n_bins, config.backbone.dropout)

    def forward(self, xyz: Tensor, features: Tensor) -> Tensor:
        """Args: xyz (B, N, 3), features (B, N, C). Returns (B, N, n_bins) logits."""
        feats = self.backbone(xyz, features)
        return self.head(feats.transpose(1, 2)).transpose(1, 2)


@dataclass(frozen=True)
class PiCRConfig:
    """PiCR heads over the backbone: 17 subregions (paper 004)."""

    backbone: BackboneConfig
    n_regions: int = 17
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PiCROutput:
    """PiCR logits per point: ``vc`` (B, N), ``cr`` (B, N, n_regions), ``ae`` (B, N)."""

    vc: Tensor
    cr: Tensor
    ae: Tensor


class PiCRNet(nn.Module):
    """Cascaded VC → CR → AE heads (paper 004 eq. 9) on per-point backbone features."""

    def __init__(self, config: PiCRConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = PointNet2Backbone(config.backbone)
        width = config.backbone.head_width
        drop = config.backbone.dropout
        self.vc_head = _head(width, width, 1, drop)
        self.cr_head = _head(width + 1, width, config.n_regions, drop)
        self.ae_head = _head(width + config.n_regions, width, 1, drop)

    def forward(self, xyz: Tensor, features: Tensor) -> PiCROutput:
        """Args: xyz (B, N, 3), features (B, N, C). Returns per-point logits."""
        feats = self.backbone(xyz, features).transpose(1, 2)  # (B, W, N)
        vc = self.vc_head(feats)
        cr = self.cr_head(torch.cat([torch.sigmoid(vc), feats], dim=1))
        ae = self.ae_head(torch.cat([torch.softmax(cr, dim=1), feats], dim=1))
        return PiCROutput(vc=vc[:, 0], cr=cr.transpose(1, 2), ae=ae[:, 0])

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

#: Backbone config keys of older checkpoints (the removed per-hand-vertex embedding), accepted only as 0.
LEGACY_EMBEDDING_KEYS = ("hand_vertices", "vertex_embedding")


@dataclass(frozen=True)
class BackboneConfig:
    """PointNet++ segmentation backbone sizes (MSG set abstraction, three levels + a global feature).

    Radii are in the normalised frame (metres divided by ``NormalisationConfig.scale``).
    """

    in_channels: int
    centres: tuple[int, ...] = (512, 128, 32)
    radii: tuple[tuple[float, ...], ...] = ((0.1, 0.2), (0.2, 0.4), (0.4, 0.8))
    neighbours: tuple[tuple[int, ...], ...] = ((16, 32), (16, 32), (16, 32))
    widths: tuple[int, ...] = (64, 128, 256)
    global_width: int = 256
    head_width: int = 128
    dropout: float = 0.3

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackboneConfig:
        """Inverse of :meth:`to_dict`; rejects unknown keys.

        The keys ``hand_vertices`` / ``vertex_embedding`` of checkpoints written before the per-vertex embedding
        was removed are accepted when 0 (no embedding) and refused otherwise.
        """
        data = dict(data)
        for legacy in LEGACY_EMBEDDING_KEYS:
            value = data.pop(legacy, 0)
            if int(value) != 0:
                raise ContactkitError(
                    f"backbone config {legacy}={value!r}: checkpoints with a learned per-vertex embedding "
                    "are no longer supported (retrain with 'contactkit train', which uses the contact prior)"
                )
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
        levels = nn.ModuleList()
        c_in = config.in_channels
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
    """DeepContact: the backbone and the number of contact bins (10 in paper 000).

    With ``prior_hand_vertices = V > 0`` the network adds fixed log-probability priors to its bin logits
    (``contactkit.learn.prior``): a (V, n_bins) one for the hand vertices (the first V points) and an (n_bins,)
    one for the object points, held in the buffers ``hand_prior`` and ``object_prior`` (saved in the state
    dict). The head's last layer then starts at zero, so the untrained network predicts the prior.

    With ``prior_shape`` as well, the hand prior depends linearly on the object's size and place: the logits of
    hand vertex v get ``shape_weight[v] @ ((d - shape_centre) / shape_scale)``, where ``d`` (B, 6) is
    :func:`object_descriptor` of the object points (extents and centroid in the wrist frame, so invariant to moving
    hand and object together), ``shape_centre`` / ``shape_scale`` (6,) the training set's mean and standard
    deviation of it (buffers) and ``shape_weight`` (V, n_bins, 6) learnt, starting at zero.

    With ``prior_pose = K > 0`` as well, the descriptor also holds the noisy hand's own posture: the coordinates of
    its vertices in the wrist frame (the first V points of ``xyz``, flattened) on K fixed principal axes of the
    training set (buffers ``pose_mean`` (3V,) and ``pose_basis`` (3V, K)), so ``d`` is (B, 6 + K) and
    ``shape_weight`` (V, n_bins, 6 + K): which fingers are closed says which vertices are likely to touch.
    """

    backbone: BackboneConfig
    n_bins: int = 10
    prior_hand_vertices: int = 0
    prior_shape: bool = False
    prior_pose: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def object_extents(xyz: Tensor) -> Tensor:
    """Size of a point cloud: the square roots of its covariance eigenvalues, ascending.

    Invariant to rotating and translating the cloud (and to the order of its points).

    Args:
        xyz: (B, P, 3) points (any unit; the result is in the same unit).

    Returns:
        (B, 3) standard deviations along the principal axes, smallest first.
    """
    centred = xyz - xyz.mean(dim=1, keepdim=True)
    cov = centred.transpose(1, 2) @ centred / max(xyz.shape[1], 1)
    return torch.linalg.eigvalsh(cov).clamp_min(0.0).sqrt()


#: Width of :func:`object_descriptor`.
OBJECT_DESCRIPTOR_WIDTH = 6


def object_descriptor(xyz: Tensor) -> Tensor:
    """Global description of the object points of a cloud: :func:`object_extents` and the centroid.

    Args:
        xyz: (B, P, 3) object points in the network's (wrist, normalised) frame.

    Returns:
        (B, 6): the three extents (smallest first) and the centroid (x, y, z).
    """
    return torch.cat([object_extents(xyz), xyz.mean(dim=1)], dim=-1)


class DeepContactNet(nn.Module):
    """Per-point contact classification into ``n_bins`` bins (logits), optionally a residual over a fixed prior."""

    hand_prior: Tensor | None
    object_prior: Tensor | None
    shape_centre: Tensor | None
    shape_scale: Tensor | None
    pose_mean: Tensor | None
    pose_basis: Tensor | None

    def __init__(self, config: DeepContactConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = PointNet2Backbone(config.backbone)
        width = config.backbone.head_width
        self.head = _head(width, width, config.n_bins, config.backbone.dropout)
        if config.prior_hand_vertices < 0:
            raise ContactkitError(f"prior_hand_vertices must be >= 0, got {config.prior_hand_vertices}")
        if config.prior_hand_vertices > 0:
            self.register_buffer("hand_prior", torch.zeros(config.prior_hand_vertices, config.n_bins))
            self.register_buffer("object_prior", torch.zeros(config.n_bins))
            last = self.head[-1]
            assert isinstance(last, nn.Conv1d)
            nn.init.zeros_(last.weight)
            if last.bias is not None:
                nn.init.zeros_(last.bias)
        else:
            self.hand_prior = None
            self.object_prior = None
        self.shape_weight: nn.Parameter | None = None
        if config.prior_pose < 0 or (config.prior_pose > 0 and not config.prior_shape):
            raise ContactkitError(f"prior_pose must be >= 0 and needs prior_shape, got {config.prior_pose}")
        if config.prior_shape:
            if config.prior_hand_vertices < 1:
                raise ContactkitError("prior_shape needs a hand prior (prior_hand_vertices >= 1)")
            width = self.descriptor_width
            self.register_buffer("shape_centre", torch.zeros(width))
            self.register_buffer("shape_scale", torch.ones(width))
            self.shape_weight = nn.Parameter(torch.zeros(config.prior_hand_vertices, config.n_bins, width))
        else:
            self.shape_centre = None
            self.shape_scale = None
        if config.prior_pose > 0:
            self.register_buffer("pose_mean", torch.zeros(3 * config.prior_hand_vertices))
            self.register_buffer("pose_basis", torch.zeros(3 * config.prior_hand_vertices, config.prior_pose))
        else:
            self.pose_mean = None
            self.pose_basis = None

    @property
    def descriptor_width(self) -> int:
        """Width of the descriptor the conditioned prior reads: 6 object numbers + ``prior_pose`` hand numbers."""
        return OBJECT_DESCRIPTOR_WIDTH + self.config.prior_pose

    def descriptor(self, xyz: Tensor) -> Tensor:
        """The conditioned prior's descriptor of a cloud (hand vertices first), before centring and scaling.

        Args:
            xyz: (B, V + P, 3) normalised positions.

        Returns:
            (B, descriptor_width): :func:`object_descriptor` of the object points, then (with ``prior_pose``) the
            hand vertices' wrist-frame coordinates projected on the principal axes ``pose_basis``.
        """
        n_hand = self.config.prior_hand_vertices
        desc = object_descriptor(xyz[:, n_hand:])
        if self.pose_mean is None or self.pose_basis is None:
            return desc
        flat = xyz[:, :n_hand].reshape(xyz.shape[0], -1) - self.pose_mean.to(xyz.dtype)
        return torch.cat([desc, flat @ self.pose_basis.to(xyz.dtype)], dim=-1)

    def set_prior(
        self,
        hand: Tensor,
        obj: Tensor,
        shape_centre: Tensor | None = None,
        shape_scale: Tensor | None = None,
        pose_mean: Tensor | None = None,
        pose_basis: Tensor | None = None,
    ) -> None:
        """Set the fixed priors (``contactkit.learn.prior.contact_bin_prior``).

        Args:
            hand: (V, n_bins) log-probabilities per hand vertex; obj: (n_bins,) log-probabilities of object points.
            shape_centre, shape_scale: (D,) mean and standard deviation (> 0) of :meth:`descriptor` over the
                training grasps (D = :attr:`descriptor_width`); required when the config has ``prior_shape``.
            pose_mean, pose_basis: (3V,) and (3V, K) mean and principal axes of the training grasps' flattened
                wrist-frame hand vertices (``contactkit.learn.prior.pose_axes``); set them first (the descriptor
                depends on them); required when the config has ``prior_pose = K``.
        """
        if self.hand_prior is None or self.object_prior is None:
            raise ContactkitError("this DeepContact network has no prior (config prior_hand_vertices = 0)")
        if hand.shape != self.hand_prior.shape or obj.shape != self.object_prior.shape:
            raise ContactkitError(
                f"prior shapes must be hand {tuple(self.hand_prior.shape)} and object "
                f"{tuple(self.object_prior.shape)}, got {tuple(hand.shape)} and {tuple(obj.shape)}"
            )
        self.hand_prior.copy_(hand)
        self.object_prior.copy_(obj)
        if self.pose_mean is not None and self.pose_basis is not None:
            if pose_mean is None or pose_basis is None or pose_mean.shape != self.pose_mean.shape \
                    or pose_basis.shape != self.pose_basis.shape:
                raise ContactkitError(
                    f"this network's prior depends on the hand's posture: pass pose_mean "
                    f"{tuple(self.pose_mean.shape)} and pose_basis {tuple(self.pose_basis.shape)}"
                )
            self.pose_mean.copy_(pose_mean)
            self.pose_basis.copy_(pose_basis)
        if self.shape_centre is not None and self.shape_scale is not None:
            width = self.descriptor_width
            if shape_centre is None or shape_scale is None or shape_centre.shape != (width,) \
                    or shape_scale.shape != (width,) or not bool((shape_scale > 0).all()):
                raise ContactkitError(
                    f"this network's prior depends on the object: pass shape_centre ({width},) and shape_scale "
                    f"({width},) > 0"
                )
            self.shape_centre.copy_(shape_centre)
            self.shape_scale.copy_(shape_scale)

    def forward(self, xyz: Tensor, features: Tensor) -> Tensor:
        """Args: xyz (B, N, 3), features (B, N, C). Returns (B, N, n_bins) logits."""
        feats = self.backbone(xyz, features)
        logits = self.head(feats.transpose(1, 2)).transpose(1, 2)
        if self.hand_prior is None or self.object_prior is None:
            return logits
        n_hand = self.hand_prior.shape[0]
        if logits.shape[1] <= n_hand:
            raise ContactkitError(
                f"a DeepContact network with a hand prior needs the {n_hand} hand vertices first and then object "
                f"points, got {logits.shape[1]} points"
            )
        hand = logits[:, :n_hand] + self.hand_prior.to(logits.dtype)
        if self.shape_weight is not None and self.shape_centre is not None and self.shape_scale is not None:
            desc = (self.descriptor(xyz) - self.shape_centre.to(xyz.dtype)) / self.shape_scale.to(
                xyz.dtype)  # (B, D)
            hand = hand + torch.einsum("bk,vnk->bvn", desc.to(logits.dtype), self.shape_weight.to(logits.dtype))
        obj = logits[:, n_hand:] + self.object_prior.to(logits.dtype)
        return torch.cat([hand, obj], dim=1)


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

"""ObMan's hand + object network (Hasson et al., CVPR 2019, paper 001 §3): one RGB image -> hand mesh + object mesh.

Architecture (:class:`ObManNet`):

- **encoder**: a backbone (:mod:`contactkit.vision.backbone`, shared code with the keypoint network), global
  average pooling, then two linear encodings ``Phi_Hand`` and ``Phi_Obj`` (the paper uses two ResNet-18s; here one
  trunk is shared and the two encodings split after pooling).
- **hand branch**: an MLP regresses the wrist rotation (axis-angle), ``ncomps`` PCA pose coefficients (paper: 30)
  and the shape ``beta``; contactkit's differentiable hand layer (any hand model, :func:`contactkit.hands.
  load_hand`) turns them into vertices and the 21 keypoints, used root-relative (root = the wrist keypoint). A
  root head (not in the paper, which stays root-relative) predicts the wrist's normalised image position and
  depth, so that estimates can be placed in the camera and world frames.
- **object branch**: :class:`~contactkit.vision.atlasnet.AtlasNetDecoder` deforms an icosphere (level 3, 642
  vertices) into the object in a normalised frame, and two heads predict the translation ``T`` (object centroid
  relative to the hand root) and the scale ``S`` (max radius of the centroid-centred object); the object mesh is
  ``S x decoded + T`` (hand-relative, camera axes).

Losses (:func:`obman_losses`, all lengths in millimetres, squared terms in mm^2; paper weights):
``L_Hand = L_V + L_J + mu_beta L_beta`` (Eq. 1; ``mu_beta = BETA_WEIGHT``: the paper's weight 1 in metres),
``L_Object = L_VObj + mu_L L_L + mu_E L_E + L_T + L_S`` (Eq. 2-3, ``mu_E = 2``, ``mu_L = 0.1``; Chamfer as
AtlasNet: mean squared nearest-neighbour distances both ways), optionally ``mu_N S^2 L_N`` (normal consistency,
not in the paper; ``ObManLossWeights.normal``, 0 by default), the root term ``L_root`` (ours), and for
fine-tuning ``mu_C L_Contact`` (``mu_C = 10``; :func:`contactkit.contact.obman.contact_loss` with ``lambda_R =
0.5``, ``r = 20 mm``, ``a = 10 mm``) between the predicted hand and the predicted object mesh: the hand vertices'
distance to the nearest predicted object vertex (differentiable w.r.t. both meshes), signed by a winding-number
inside test on the predicted mesh (the paper's ray-parity test) with the nonzero rule: a point is inside where the
winding number is not 0 (``|w| > 0.5``, so the inside-out pockets of a folded mesh, ``w = -1``, count as inside).
The contact term sees the object's normalised shape detached: its gradient reaches the hand, the object's
translation and scale and, through them, the encoder, but not the AtlasNet decoder (paper 001 freezes the object
encoder and decoder after the object stage). When it could reshape the object, the fine-tune folded every
predicted mesh through itself around the hand (``docs/obman_net.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from contactkit.contact.obman import contact_loss, zone_mask
from contactkit.errors import ContactkitError, ShapeError
from contactkit.geometry.inside import winding_number
from contactkit.hands import HandModel, load_hand
from contactkit.settings import from_fields
from contactkit.vision.atlasnet import AtlasNetDecoder, edge_loss, laplacian_loss, normal_consistency
from contactkit.vision.backbone import build_backbone
from contactkit.vision.camera import pixels_to_normalized

__all__ = ["BETA_WEIGHT", "HandBranch", "HandNetConfig", "HandObjectEncoder", "HandOutput", "ObManLossWeights",
           "ObManNet", "ObManNetConfig", "ObManOutput", "ObManTargets", "hand_losses", "hand_object_sdf", "hand_total",
           "obman_losses"]

MM = 1000.0
#: Weight of ``L_beta = |beta|^2`` against the mm^2 terms: 1e6 is the paper's weight 1 with lengths in metres. With
#: weight 1 against mm^2 terms the shape is effectively free, and a network that cannot yet read the hand's
#: orientation from the image shrinks the hand to a point (|beta_0| ~ 14, a 1 cm hand: measured on the rendered
#: dataset), the mean-regression minimum of the vertex loss.
BETA_WEIGHT = 1e6


@dataclass(frozen=True)
class HandNetConfig:
    """Settings shared by :class:`ObManNet` and CPF's HoNet (saved with their weights).

    Attributes:
        backbone: :func:`~contactkit.vision.backbone.build_backbone` config.
        image_size: square input size, pixels.
        encoding_dim: size of ``Phi_Hand`` and ``Phi_Obj``.
        hand: hand model name (``openhand`` or ``mano``); side: ``right`` or ``left``.
        ncomps: PCA pose coefficients (paper: 30).
    """

    backbone: dict[str, Any] = field(default_factory=lambda: {"name": "resnet", "width": 16, "blocks": [2, 2, 2]})
    image_size: int = 128
    encoding_dim: int = 128
    hand: str = "openhand"
    side: str = "right"
    ncomps: int = 30


@dataclass(frozen=True)
class ObManNetConfig(HandNetConfig):
    """Settings of :class:`ObManNet`: :class:`HandNetConfig`'s and the object branch's.

    Attributes:
        atlas_hidden: width of the AtlasNet MLP's first layer.
        sphere_level: icosphere subdivision level (paper: 3, 642 vertices).
    """

    atlas_hidden: int = 256
    sphere_level: int = 3

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObManNetConfig:
        return from_fields(cls, "obman-net", data)


@dataclass
class HandOutput:
    """Hand outputs of :class:`ObManNet` and HoNet (camera axes, metres).

    Attributes:
        global_orient: (B, 3) wrist axis-angle, camera frame; hand_pca: (B, ncomps); betas: (B, n_shape).
        hand_verts: (B, V, 3) root-relative hand vertices; hand_keypoints: (B, 21, 3) root-relative (row 0 = 0).
        root: (B, 3) camera-frame wrist position.
    """

    global_orient: Tensor
    hand_pca: Tensor
    betas: Tensor
    hand_verts: Tensor
    hand_keypoints: Tensor
    root: Tensor


@dataclass
class ObManOutput(HandOutput):
    """Outputs of :class:`ObManNet`: :class:`HandOutput`'s and the object (camera axes, metres).

    Attributes:
        object_normalized: (B, N, 3) AtlasNet output (normalised frame); object_translation: (B, 3) centroid
            relative to the root; object_scale: (B,) radius; object_verts: (B, N, 3) root-relative object mesh
            ``scale x normalized + translation`` (faces: ``ObManNet.object_faces``).
    """

    object_normalized: Tensor
    object_translation: Tensor
    object_scale: Tensor
    object_verts: Tensor


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(), nn.Linear(hidden, cout))


class HandBranch(nn.Module):
    """Hand encoding -> wrist rotation, PCA pose, shape (through the hand layer) and the camera-frame root.

    Shared by :class:`ObManNet` and CPF's HoNet (:mod:`contactkit.vision.honet`). ``forward(phi (B, D))`` returns
    ``(global_orient (B, 3), pca (B, ncomps), betas (B, n_shape), verts (B, V, 3), keypoints (B, 21, 3), root
    (B, 3))`` with vertices and keypoints root-relative (root = wrist keypoint) and the root in the camera frame:
    the root head predicts the wrist's pixel (inside the image) and depth (0.07-3.7 m), back-projected with the
    image's intrinsics ``k``.
    """

    def __init__(self, hand: HandModel, encoding_dim: int, ncomps: int) -> None:
        super().__init__()
        self._hand = [hand]  # a list: not a submodule, so not in the state dict
        self.ncomps = int(ncomps)
        self.params = _mlp(encoding_dim, encoding_dim, 3 + self.ncomps + hand.num_betas)
        self.root = _mlp(encoding_dim, encoding_dim, 3)

    @property
    def hand(self) -> HandModel:
        """The hand layer (rebuilt from the config, not stored; moved to the input's device on use)."""
        return self._hand[0]

    def forward(self, phi: Tensor, k: Tensor, image_size: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        hand = self.hand
        if hand.device != phi.device:
            hand.to(phi.device)
        params = self.params(phi)
        nc = self.ncomps
        go, pca, betas = params[:, :3], params[:, 3:3 + nc], params[:, 3 + nc:]
        out = hand(go.to(hand.dtype), pca.to(hand.dtype), betas if betas.shape[1] else None, pose_space="pca")
        wrist = out.keypoints[:, :1]
        r = self.root(phi)
        depth = 0.5 * torch.exp(r[:, 2].clamp(-2.0, 2.0))
        uv = (torch.tanh(r[:, None, :2]) + 1.0) * (0.5 * image_size) - 0.5
        xy = pixels_to_normalized(uv, k.to(uv))[:, 0]
        root = torch.cat([xy * depth[:, None], depth[:, None]], dim=1)
        return go, pca, betas, out.vertices - wrist, out.keypoints - wrist, root


class HandObjectEncoder(nn.Module):
    """The trunk shared by :class:`ObManNet` and CPF's HoNet: backbone, global average pooling, the encodings
    ``Phi_Hand`` and ``Phi_Obj`` and the :class:`HandBranch` (the object heads are the subclasses')."""

    def __init__(self, config: HandNetConfig, hand: HandModel | None) -> None:
        super().__init__()
        c = config
        layer = hand if hand is not None else load_hand(c.hand, c.side, ncomps=c.ncomps)
        if layer.name != c.hand or layer.side != c.side:
            raise ContactkitError(f"the hand model is {layer.name}/{layer.side}, the config says {c.hand}/{c.side}")
        self.backbone = build_backbone(c.backbone)
        channels = int(self.backbone.out_channels)  # type: ignore[arg-type]
        self.encode_hand = nn.Sequential(nn.Linear(channels, c.encoding_dim), nn.ReLU())
        self.encode_object = nn.Sequential(nn.Linear(channels, c.encoding_dim), nn.ReLU())
        self.hand_branch = HandBranch(layer, c.encoding_dim, c.ncomps)
        self._image_size = c.image_size

    @property
    def hand(self) -> HandModel:
        """The hand layer (not in the state dict: rebuilt from ``config.hand``)."""
        return self.hand_branch.hand

    def encode(self, images: Tensor, k: Tensor) -> tuple[HandOutput, Tensor]:
        """The hand outputs and ``Phi_Obj`` (B, encoding_dim).

        Args:
            images: (B, 3, S, S) normalised images (:func:`~contactkit.vision.backbone.normalize_images`),
                S = ``config.image_size``.
            k: (B, 3, 3) pixel intrinsics of those images.
        """
        s = self._image_size
        if images.ndim != 4 or images.shape[1:] != (3, s, s):
            raise ShapeError(f"images must have shape (B, 3, {s}, {s}), got {tuple(images.shape)}")
        pooled = self.backbone(images).mean((2, 3))
        phi_h, phi_o = self.encode_hand(pooled), self.encode_object(pooled)
        go, pca, betas, verts, keypoints, root = self.hand_branch(phi_h, k, s)
        return HandOutput(global_orient=go, hand_pca=pca, betas=betas, hand_verts=verts, hand_keypoints=keypoints,
                          root=root), phi_o


class ObManNet(HandObjectEncoder):
    """Image -> hand (PCA pose + shape through the hand layer) + object (deformed sphere, translation, scale)."""

    zones: Tensor

    def __init__(self, config: ObManNetConfig | None = None, hand: HandModel | None = None) -> None:
        c = config or ObManNetConfig()
        super().__init__(c, hand)
        self.config = c
        self.decoder = AtlasNetDecoder(c.encoding_dim, c.atlas_hidden, c.sphere_level)
        self.translation_head = _mlp(c.encoding_dim, c.encoding_dim, 3)
        self.scale_head = _mlp(c.encoding_dim, c.encoding_dim, 1)
        zones: list[object] = list(self.hand.annotations.contact_zones.values())
        self.register_buffer("zones", zone_mask(zones, self.hand.num_verts), persistent=False)

    @property
    def object_faces(self) -> Tensor:
        """(F, 3) int64 faces of the predicted object mesh (the icosphere's)."""
        return self.decoder.faces

    def forward(self, images: Tensor, k: Tensor) -> ObManOutput:
        """Reconstruct hand and object (arguments: :meth:`HandObjectEncoder.encode`)."""
        hand_out, phi_o = self.encode(images, k)
        normalized = self.decoder(phi_o)
        translation = 0.1 * self.translation_head(phi_o)
        scale = 0.05 * torch.exp(self.scale_head(phi_o)[:, 0].clamp(-4.0, 4.0))
        obj = scale[:, None, None] * normalized + translation[:, None]
        return ObManOutput(**vars(hand_out), object_normalized=normalized, object_translation=translation,
                           object_scale=scale, object_verts=obj)


@dataclass
class ObManTargets:
    """Ground truth of a batch (camera axes, metres).

    Attributes:
        hand_verts: (B, V, 3) and hand_keypoints: (B, 21, 3), root-relative (root = wrist keypoint).
        root: (B, 3) camera-frame wrist.
        object_points: (B, P, 3) points sampled on the object's surface, root-relative.
        object_centroid: (B, 3) root-relative centroid of those samples; object_radius: (B,) max vertex distance
            from it.
        object_local_points: (B, P, 3) the same samples in the object frame.
        object_rotation: (B, 3, 3) and object_translation: (B, 3) the object's pose, ``object_points =
            object_local_points @ R^T + t`` (camera axes, root-relative).
    """

    hand_verts: Tensor
    hand_keypoints: Tensor
    root: Tensor
    object_points: Tensor
    object_centroid: Tensor
    object_radius: Tensor
    object_local_points: Tensor
    object_rotation: Tensor
    object_translation: Tensor


@dataclass(frozen=True)
class ObManLossWeights:
    """Weights of :func:`obman_losses` (paper 001: ``mu_E = 2``, ``mu_L = 0.1``, ``mu_C = 10``, ``lambda_R = 0.5``).

    ``contact = 0`` is the first stage (and the no-contact control); ``root`` weights our camera-placement term;
    ``beta`` is ``mu_beta`` (see :data:`BETA_WEIGHT`); ``normal`` is ``mu_N`` of the normal-consistency term
    ``S^2 L_N`` (not in paper 001, 0 by default; session 9 sets it against the crumpled, folded reconstructions
    of the v4 base, ``docs/obman_net.md``).
    """

    beta: float = BETA_WEIGHT
    edge: float = 2.0
    laplacian: float = 0.1
    contact: float = 0.0
    lambda_r: float = 0.5
    root: float = 1.0
    normal: float = 0.0


def _sq_mm(a: Tensor, b: Tensor) -> Tensor:
    """Mean over points of squared distances (B,), mm^2."""
    return ((a - b) * MM).pow(2).sum(-1).mean(-1)


def _chamfer_sq_mm(a: Tensor, b: Tensor) -> Tensor:
    """AtlasNet's symmetric Chamfer loss (B,), mm^2: mean squared NN distance a->b plus b->a."""
    d = torch.cdist(a * MM, b * MM).pow(2)
    return d.min(2).values.mean(1) + d.min(1).values.mean(1)


def hand_object_sdf(hand_verts: Tensor, object_verts: Tensor, faces: Tensor) -> Tensor:
    """Signed distance (B, V), metres, negative inside, of each hand vertex to a predicted object mesh.

    Magnitude: distance to the nearest object vertex (paper 001's definition; differentiable w.r.t. both point
    sets). Sign (no gradient): inside where the generalised winding number ``w`` of the mesh is nonzero,
    ``|w| > 0.5``, so the inside-out pockets of a self-overlapping mesh (``w = -1``) count as inside.
    """
    if hand_verts.ndim != 3 or object_verts.ndim != 3 or hand_verts.shape[0] != object_verts.shape[0]:
        raise ShapeError(f"hand_verts (B, V, 3) and object_verts (B, N, 3) needed, got {tuple(hand_verts.shape)}, "
                         f"{tuple(object_verts.shape)}")
    dist = torch.cdist(hand_verts, object_verts).min(2).values
    with torch.no_grad():
        inside = torch.stack([winding_number(h.detach(), o.detach().double(), faces).abs() > 0.5
                              for h, o in zip(hand_verts, object_verts, strict=True)])
    return torch.where(inside, -dist, dist)


def hand_losses(out: HandOutput, target: ObManTargets) -> dict[str, Tensor]:
    """The hand's loss terms (batch means): ``hand_verts`` ``L_V`` and ``joints`` ``L_J`` (mm^2), ``beta``
    ``|beta|^2`` and our ``root`` term (mm^2); shared by :func:`obman_losses` and HoNet's loss."""
    return {
        "hand_verts": _sq_mm(out.hand_verts, target.hand_verts).mean(),
        "joints": _sq_mm(out.hand_keypoints, target.hand_keypoints).mean(),
        "beta": out.betas.pow(2).sum(-1).mean() if out.betas.shape[1] else out.hand_verts.new_zeros(()),
        "root": ((out.root - target.root) * MM).pow(2).sum(-1).mean(),
    }


def hand_total(terms: dict[str, Tensor], *, beta: float = BETA_WEIGHT, root: float = 1.0) -> Tensor:
    """``L_V + L_J + beta x L_beta + root x L_root`` of :func:`hand_losses`' terms."""
    return terms["hand_verts"] + terms["joints"] + beta * terms["beta"] + root * terms["root"]


def obman_losses(net: ObManNet, out: ObManOutput, target: ObManTargets, weights: ObManLossWeights
                 ) -> dict[str, Tensor]:
    """Every loss term (batch means) and ``total``; see the module docstring for the definitions and units."""
    t = hand_losses(out, target)
    t |= {
        "chamfer": _chamfer_sq_mm(out.object_verts, target.object_points).mean(),
        "translation": ((out.object_translation - target.object_centroid) * MM).pow(2).sum(-1).mean(),
        "scale": ((out.object_scale - target.object_radius) * MM).pow(2).mean(),
        "edge": edge_loss(out.object_verts * MM, net.decoder.edges).mean(),
        "laplacian": laplacian_loss(out.object_verts * MM, net.decoder.template, net.decoder.edges,
                                    out.object_scale * MM).mean(),
        # L_N is unitless: times S^2 (mm^2) it weighs like the other mm^2 terms at any object size
        "normal": ((out.object_scale * MM).pow(2)
                   * normal_consistency(out.object_normalized, net.decoder.faces, net.decoder.face_pairs)).mean(),
    }
    total = (hand_total(t, beta=weights.beta, root=weights.root) + t["chamfer"] + t["translation"] + t["scale"]
             + weights.edge * t["edge"] + weights.laplacian * t["laplacian"] + weights.normal * t["normal"])
    if weights.contact > 0:
        # the contact loss moves the hand and places and scales the object, but does not reshape it: paper 001
        # freezes the object encoder and the AtlasNet decoder after the object stage; reshaping by the contact loss
        # folded the predicted meshes around the hands (docs/obman_net.md)
        obj = out.object_scale[:, None, None] * out.object_normalized.detach() + out.object_translation[:, None]
        sdf = hand_object_sdf(out.hand_verts, obj, net.object_faces)
        t["contact"] = contact_loss(sdf * MM, net.zones, lambda_r=weights.lambda_r, r=20.0, a=10.0).mean()
        total = total + weights.contact * t["contact"]
    t["total"] = total
    return t

"""Learned contact estimators behind the refiner's :class:`~contactkit.targets.ContactEstimator` protocol.

:class:`DeepContactEstimator` (paper 000) predicts hand and object contact maps from a noisy grasp;
:class:`PiCREstimator` (paper 004) predicts, per object point, vertex contact, the touching hand subregion and
the anchor elasticity, and turns them into contact maps and CPF springs. Both derive everything they need from
the posed hand vertices alone: keypoints through the model's joint regressor and fingertip vertices, and the
wrist rotation by a Kabsch fit of the vertices that move rigidly with the wrist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.geometry.normals import vertex_normals
from contactkit.hands.base import KEYPOINT_ORDER, HandModel
from contactkit.learn.checkpoint import Checkpoint, load_checkpoint
from contactkit.learn.features import N_FEATURES, ContactInputs, contact_inputs
from contactkit.learn.losses import bins_to_contact
from contactkit.learn.networks import (
    BackboneConfig,
    DeepContactConfig,
    DeepContactNet,
    PiCRConfig,
    PiCRNet,
)
from contactkit.targets.contract import ContactTargets

Kind = Literal["deepcontact", "picr"]
#: Vertices whose wrist skinning weight exceeds this move rigidly with the wrist (used for the wrist frame).
RIGID_WRIST_WEIGHT = 0.95
#: PiCR's vertex-contact probability threshold t_vc (paper 004).
PICR_VC_THRESHOLD = 0.8

_SMALL_BACKBONE: dict[str, Any] = {
    "centres": (64, 16),
    "radii": ((0.2,), (0.5,)),
    "neighbours": ((16,), (16,)),
    "widths": (32, 64),
    "global_width": 64,
    "head_width": 32,
}


def network_config(
    kind: Kind, *, small: bool = True, prior_hand_vertices: int = 0, prior_shape: bool = False, prior_pose: int = 0
) -> dict[str, Any]:
    """Default constructor config of a network, as plain JSON data (saved in checkpoints).

    Args:
        kind: "deepcontact" or "picr".
        small: the small backbone (default; ~40 k parameters, the shipped weights' size, fast enough on CPU:
            FPS's python loop over the centres dominates the larger one) or, when False, the full multi-scale
            backbone of :class:`BackboneConfig` (~1 M parameters, about 10x slower).
        prior_hand_vertices: DeepContact only: when V > 0, fixed log-probability contact priors (per hand vertex
            and for object points, :mod:`contactkit.learn.prior`) are added to the bin logits, so the network
            learns a residual over the training set's mean contact map (it then only runs on that hand model).
        prior_shape: with ``prior_hand_vertices``: the hand prior also depends linearly on the object's extents
            (:class:`~contactkit.learn.networks.DeepContactConfig`).
        prior_pose: with ``prior_shape``: K > 0 principal axes of the hand's wrist-frame posture join the object's
            extents in that dependence.
    """
    backbone = BackboneConfig(in_channels=N_FEATURES, **(_SMALL_BACKBONE if small else {}))
    config: dict[str, Any] = {"backbone": backbone.to_dict()}
    if kind == "deepcontact":
        config["n_bins"] = 10
        if prior_hand_vertices > 0:
            config["prior_hand_vertices"] = int(prior_hand_vertices)
            if prior_shape:
                config["prior_shape"] = True
                if prior_pose > 0:
                    config["prior_pose"] = int(prior_pose)
    elif kind == "picr":
        config["n_regions"] = 17
    else:
        raise ContactkitError(f"unknown network kind {kind!r}; expected 'deepcontact' or 'picr'")
    result: dict[str, Any] = json.loads(json.dumps(config))  # tuples become lists, as after a save
    return result


def build_network(kind: Kind, config: dict[str, Any]) -> DeepContactNet | PiCRNet:
    """Construct a network from its saved config."""
    backbone = BackboneConfig.from_dict(config["backbone"])
    if kind == "deepcontact":
        return DeepContactNet(DeepContactConfig(backbone=backbone, n_bins=int(config["n_bins"]),
                                                prior_hand_vertices=int(config.get("prior_hand_vertices", 0)),
                                                prior_shape=bool(config.get("prior_shape", False)),
                                                prior_pose=int(config.get("prior_pose", 0))))
    if kind == "picr":
        return PiCRNet(PiCRConfig(backbone=backbone, n_regions=int(config["n_regions"])))
    raise ContactkitError(f"unknown network kind {kind!r}; expected 'deepcontact' or 'picr'")


def kabsch_rotation(source: Tensor, target: Tensor) -> Tensor:
    """Rotation R minimising ||R (source - mean) - (target - mean)|| (no reflection).

    Args:
        source: (B, N, 3) or (N, 3) points; target: (B, N, 3).

    Returns:
        (B, 3, 3) rotation matrices.
    """
    if source.ndim == 2:
        source = source.expand(target.shape[0], -1, -1)
    src = source - source.mean(dim=1, keepdim=True)
    dst = target - target.mean(dim=1, keepdim=True)
    cov = dst.transpose(1, 2) @ src
    u, _, vh = torch.linalg.svd(cov)
    det = torch.det(u @ vh)
    fix = torch.ones_like(cov[:, 0])
    fix[:, 2] = torch.sign(det)
    return u @ torch.diag_embed(fix) @ vh


@dataclass
class HandGeometry:
    """What the features need from a posed hand, derived from its vertices.

    Attributes:
        normals: (B, V, 3) unit vertex normals.
        keypoints: (B, 21, 3) metres.
        wrist_rotation: (B, 3, 3).
    """

    normals: Tensor
    keypoints: Tensor
    wrist_rotation: Tensor


def hand_geometry_from_vertices(hand: HandModel, vertices: Tensor) -> HandGeometry:
    """Normals, keypoints and wrist rotation of posed hand vertices (B, V, 3), metres."""
    verts = vertices.to(hand.v_template.dtype)
    joints = torch.einsum("jv,bvc->bjc", hand.j_regressor, verts)
    tips = verts[:, hand.fingertips]
    keypoints = torch.cat([joints, tips], dim=1)[:, list(KEYPOINT_ORDER)]
    rigid = hand.lbs_weights[:, 0] > RIGID_WRIST_WEIGHT
    if int(rigid.sum()) < 3:
        rigid = hand.lbs_weights[:, 0] >= hand.lbs_weights[:, 0].topk(16).values[-1]
    rotation = kabsch_rotation(hand.v_template[rigid], verts[:, rigid])
    return HandGeometry(
        normals=vertex_normals(verts, hand.faces),
        keypoints=keypoints.to(vertices.dtype),
        wrist_rotation=rotation.to(vertices.dtype),
    )


def inputs_for(hand: HandModel, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor) -> ContactInputs:
    """Network inputs for posed hands and world-frame object samples (see :func:`contact_inputs`)."""
    geo = hand_geometry_from_vertices(hand, hand_verts)
    dtype = torch.float32
    return contact_inputs(
        hand_verts.to(dtype), geo.normals.to(dtype), geo.keypoints.to(dtype), geo.wrist_rotation.to(dtype),
        obj_points.to(dtype), obj_normals.to(dtype),
    )


class _Estimator:
    def __init__(self, kind: Kind, hand: HandModel, checkpoint: Checkpoint, device: str | torch.device) -> None:
        if checkpoint.kind != kind:
            raise ContactkitError(f"checkpoint holds a {checkpoint.kind} network, expected {kind}")
        trained_on = checkpoint.training.get("hand_model")
        if trained_on is not None and trained_on != hand.name:
            raise ContactkitError(
                f"this {kind} checkpoint was trained on the {trained_on!r} hand; it cannot run on {hand.name!r}"
            )
        self.hand = hand
        self.kind: str = kind
        self.trained_on = str(trained_on or hand.name)
        self.device = torch.device(device)
        self.network = build_network(kind, checkpoint.config).to(self.device)
        self.network.load_state_dict(checkpoint.state_dict)
        self.network.eval()
        self.checkpoint = checkpoint

    def _inputs(self, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor) -> ContactInputs:
        inputs = inputs_for(self.hand, hand_verts.detach(), obj_points.detach(), obj_normals.detach())
        return ContactInputs(inputs.xyz.to(self.device), inputs.features.to(self.device), inputs.n_hand)


class DeepContactEstimator(_Estimator):
    """DeepContact: hand and object contact maps in [0, 1] (expected value over the 10 bins)."""

    def __init__(self, hand: HandModel, checkpoint: Checkpoint, *, device: str | torch.device = "cpu") -> None:
        super().__init__("deepcontact", hand, checkpoint, device)

    @torch.no_grad()
    def predict(self, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor) -> ContactTargets:
        """Args: hand_verts (B, V, 3), obj_points (B, P, 3), obj_normals (B, P, 3), world frame, metres.

        Returns:
            :class:`ContactTargets` with ``hand_contact (B, V)`` and ``object_contact (B, P)``.
        """
        inputs = self._inputs(hand_verts, obj_points, obj_normals)
        contact = bins_to_contact(self.network(inputs.xyz, inputs.features)).to(hand_verts)
        return ContactTargets(hand_contact=contact[:, : inputs.n_hand], object_contact=contact[:, inputs.n_hand :])


@dataclass
class PiCRPrediction:
    """PiCR outputs per object point: ``vc`` (B, P) probability, ``region`` (B, P) long, ``elasticity`` (B, P)."""

    vc: Tensor
    region: Tensor
    elasticity: Tensor

    def springs(self, anchor_region: Tensor, vc_threshold: float) -> Tensor:
        """k_atr (B, 32, P) of paper 004 Alg. 1 (see :meth:`PiCREstimator.springs`); ``anchor_region`` (32,)
        long, ``vc_threshold`` t_vc."""
        same = anchor_region.to(self.region.device, torch.long).view(1, -1, 1) == self.region.unsqueeze(1)
        active = (self.vc > vc_threshold).unsqueeze(1) & same  # (B, A, P)
        k = self.elasticity.unsqueeze(1).expand_as(active)
        return torch.where(active, k, torch.zeros_like(k))

    def targets(self, anchor_region: Tensor, vc_threshold: float) -> ContactTargets:
        """Object contact = ``vc`` where it exceeds ``vc_threshold``, else 0, with :meth:`springs`."""
        contact = torch.where(self.vc > vc_threshold, self.vc, torch.zeros_like(self.vc))
        return ContactTargets(object_contact=contact, k_atr=self.springs(anchor_region, vc_threshold))


class PiCREstimator(_Estimator):
    """PiCR on geometry: vertex contact, contact region and anchor elasticity per object point.

    ``vc_threshold`` is t_vc, the vertex-contact probability above which a point is in contact: by default the
    checkpoint's validation-tuned ``training["vc_threshold"]`` when it records one, else paper 004's 0.8.
    """

    def __init__(
        self,
        hand: HandModel,
        checkpoint: Checkpoint,
        *,
        device: str | torch.device = "cpu",
        vc_threshold: float | None = None,
    ) -> None:
        super().__init__("picr", hand, checkpoint, device)
        if vc_threshold is None:
            vc_threshold = float(checkpoint.training.get("vc_threshold", PICR_VC_THRESHOLD))
        if not 0.0 <= vc_threshold < 1.0:
            raise ContactkitError(f"vc_threshold must be in [0, 1), got {vc_threshold}")
        self.vc_threshold = vc_threshold

    @torch.no_grad()
    def predict_fields(self, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor) -> PiCRPrediction:
        """Raw PiCR predictions for object points (same arguments as :meth:`predict`)."""
        inputs = self._inputs(hand_verts, obj_points, obj_normals)
        out = self.network(inputs.xyz, inputs.features)
        n = inputs.n_hand
        return PiCRPrediction(
            vc=torch.sigmoid(out.vc[:, n:]).to(hand_verts),
            region=out.cr[:, n:].argmax(dim=-1),
            elasticity=torch.sigmoid(out.ae[:, n:]).to(hand_verts),
        )

    def predict(self, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor) -> ContactTargets:
        """Object contact = the vertex-contact probability where it exceeds t_vc (``vc_threshold``), else 0."""
        anchor_region = torch.as_tensor(self.hand.annotations.anchor_region, dtype=torch.long)
        return self.predict_fields(hand_verts, obj_points, obj_normals).targets(anchor_region, self.vc_threshold)

    def springs(self, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor, anchor_region: Tensor) -> Tensor:
        """Attractive spring elasticities k_atr between the 32 anchors and the object points (paper 004 Alg. 1).

        For every object point j with VC[j] > t_vc (``vc_threshold``; 0.8 in the paper), the subregion
        r = argmax CR[j] is recovered and every anchor i of subregion r is tied to j with elasticity AE[j]; all
        other pairs get 0.

        Args:
            hand_verts: (B, V, 3) posed hand vertices, metres.
            obj_points: (B, P, 3) object samples in the world, metres; obj_normals: (B, P, 3) unit normals.
            anchor_region: (32,) long subregion of each anchor (``hand.annotations.anchor_region``).

        Returns:
            (B, 32, P) elasticities in [0, 1], dtype of ``hand_verts``.
        """
        if anchor_region.ndim != 1:
            raise ContactkitError(f"anchor_region must have shape (A,), got {tuple(anchor_region.shape)}")
        return self.predict_fields(hand_verts, obj_points, obj_normals).springs(anchor_region, self.vc_threshold)


def _shipped_file(kind: str, hand_name: str) -> Path:
    return Path(str(resources.files("contactkit.learn") / "weights" / f"{kind}_{hand_name}.pt"))


def shipped_weights_exist(kind: Kind, hand_name: str = "openhand") -> bool:
    """Whether the package ships ``kind`` weights for the hand model ``hand_name``."""
    return _shipped_file(kind, hand_name).is_file()


def shipped_weights_path(kind: Kind, hand_name: str = "openhand") -> Path:
    """Path of the checkpoint shipped in the package for ``kind`` and hand model ``hand_name``."""
    path = _shipped_file(kind, hand_name)
    if not path.is_file():
        raise ContactkitError(
            f"no shipped {kind} weights for the {hand_name!r} hand (looked for {path}); "
            f"train one with `contactkit train {kind}` and pass its checkpoint"
        )
    return path


#: The hand model and side the shipped estimators are trained on.
TRAINING_HAND = ("openhand", "right")


def estimator_for_hand(kind: Kind, hand: HandModel, *, device: str | torch.device = "cpu") -> Any:
    """The shipped ``kind`` estimator for ``hand``: its own weights when the package ships some for this hand and
    side, else the training hand's weights through a :func:`~contactkit.learn.transfer.hand_correspondence`
    (any hand with MANO's joint tree, anchors and regions, either side).

    Raises:
        ContactkitError: no weights are shipped for ``kind`` at all, or the hand has no annotations.
    """
    from contactkit.hands import load_hand
    from contactkit.learn.transfer import TransferredEstimator, hand_correspondence

    train_name, train_side = TRAINING_HAND
    if shipped_weights_exist(kind, hand.name) and (hand.name != train_name or hand.side == train_side):
        return load_estimator(kind, hand, device=device)
    if not shipped_weights_exist(kind, train_name):
        raise ContactkitError(
            f"no {kind} weights are installed for the {hand.name!r} hand nor the {train_name!r} hand; train one "
            f"with `contactkit train {kind}` and pass it with --estimator, or use --targets oracle"
        )
    source = load_hand(train_name, train_side, dtype=hand.dtype)
    base = load_estimator(kind, source, device=device)
    return TransferredEstimator(base, hand_correspondence(source, hand))


def load_estimator(
    kind: Kind, hand: HandModel, checkpoint: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> DeepContactEstimator | PiCREstimator:
    """A ready estimator: from ``checkpoint`` or, when None, the weights shipped for ``hand``."""
    path = Path(checkpoint) if checkpoint is not None else shipped_weights_path(kind, hand.name)
    ckpt = load_checkpoint(path, expected_kind=kind)
    if kind == "deepcontact":
        return DeepContactEstimator(hand, ckpt, device=device)
    return PiCREstimator(hand, ckpt, device=device)

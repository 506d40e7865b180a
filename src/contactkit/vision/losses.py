"""Paper 003's objective (Sec. 3.4): ``L = l1 L_2D + l2 L_3D + l3 L_physical`` (l1 = 0.01, l2 = 1, l3 = 10).

``L_3D`` is the mean squared error of the root-relative 3D keypoints in mm^2 (refined and initial sub-graph
estimates both supervised); ``L_2D`` the mean squared 2D error in pixels^2; ``L_physical`` the physical affinity
loss (:func:`contactkit.contact.affinity.physical_affinity_loss`) of the predicted hand keypoints and box corners
placed in the camera frame from their 2D inputs — differentiable, so its gradient reaches the lifter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.contact.affinity import ETA, physical_affinity_loss
from contactkit.errors import ContactkitError
from contactkit.vision.keypoints import NUM_HAND_KEYPOINTS
from contactkit.vision.lifter import ContextAwareLifter, LifterOutput

__all__ = ["LossWeights", "affinity_of_prediction", "lifter_losses", "root_relative_targets"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the objective's terms (paper 003 Sec. 3.4)."""

    keypoints_2d: float = 0.01
    keypoints_3d: float = 1.0
    affinity: float = 10.0


def root_relative_targets(keypoints_3d: Tensor) -> tuple[Tensor, Tensor]:
    """Hand keypoints relative to the wrist (B, 21, 3) and box corners relative to their mean (B, 8, 3)."""
    hand = keypoints_3d[:, :NUM_HAND_KEYPOINTS]
    obj = keypoints_3d[:, NUM_HAND_KEYPOINTS:]
    return hand - hand[:, :1], obj - obj.mean(1, keepdim=True)


def _mse_mm2(pred: Tensor, target: Tensor) -> Tensor:
    return ((pred - target) * 1000.0).pow(2).sum(-1).mean()


def affinity_of_prediction(net: ContextAwareLifter, out: LifterOutput, normalized_2d: Tensor, *,
                           eta: float = ETA) -> Tensor:
    """Mean physical affinity (scalar) of a full lifter's prediction placed in the camera frame (``eta``: the
    contact threshold as a fraction of the box's radius, paper: 0.2)."""
    hand, obj = net.camera_frame(out, normalized_2d)
    if hand is None or obj is None:
        raise ContactkitError("the physical affinity loss needs both hand and object predictions (mode 'full')")
    return physical_affinity_loss(hand, obj, eta=eta).mean()


def lifter_losses(net: ContextAwareLifter, out: LifterOutput, keypoints_3d: Tensor, normalized_2d: Tensor,
                  affinity_weight: float) -> dict[str, Tensor]:
    """Loss terms of one batch: ``hand_3d``, ``object_3d`` (mm^2, present for the parts the mode predicts),
    ``affinity`` (when ``affinity_weight`` > 0) and their weighted sum ``total``.

    Args:
        keypoints_3d: (B, 29, 3) camera-frame ground truth, metres.
        normalized_2d: (B, 29, 2) the lifter's input.
    """
    hand_t, obj_t = root_relative_targets(keypoints_3d)
    terms: dict[str, Tensor] = {}
    if out.hand is not None and out.hand_initial is not None:
        terms["hand_3d"] = _mse_mm2(out.hand, hand_t) + (
            _mse_mm2(out.hand_initial, hand_t) if out.hand_initial is not out.hand else 0.0)
    if out.object is not None and out.object_initial is not None:
        terms["object_3d"] = _mse_mm2(out.object, obj_t) + (
            _mse_mm2(out.object_initial, obj_t) if out.object_initial is not out.object else 0.0)
    total = sum(terms.values(), torch.zeros((), dtype=keypoints_3d.dtype, device=keypoints_3d.device))
    if affinity_weight > 0:
        terms["affinity"] = affinity_of_prediction(net, out, normalized_2d)
        total = total + affinity_weight * terms["affinity"]
    terms["total"] = total
    return terms

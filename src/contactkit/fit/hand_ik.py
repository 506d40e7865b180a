"""Hand inverse kinematics: the hand model's parameters whose 21 keypoints best match given 3D keypoints.

Energy (per hand, minimised jointly over ``global_orient``, ``hand_pose`` and ``transl`` with L-BFGS):

``E = mean_i |k_i(theta) - k*_i|^2 / (1 mm)^2 + w_anat * anatomy(theta) + w_pose * |theta|^2 [+ w_pen * pen(theta)]``

with ``anatomy`` the A-MANO cost (:func:`contactkit.hands.anatomy.anatomy_cost`: zero inside the natural joint
ranges, squared excess outside), which also settles what keypoints cannot see (a bone's twist about its own
axis). The start is analytic: the flat hand rigidly aligned (Kabsch) on the palm keypoints (wrist and the five
knuckles), then, down each finger, the smallest rotation turning each bone onto its target direction (swing
only). The translation is optimised in millimetres so that all parameters are of similar scale.
Shape coefficients stay at the values given (zeros by default): 21 keypoints of one frame do not separate bone
lengths from pose reliably. The optional ``pen`` term is a penetration cost of the hand's vertices (mm^2, e.g.
:class:`~contactkit.fit.penetration.PenetrationCost` of the placed object), so the fitted hand stays out of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.contact.terms import check_points
from contactkit.errors import ContactkitError
from contactkit.fit.rigid import rigid_fit
from contactkit.geometry.rotations import axis_angle_to_rotmat, rotmat_to_axis_angle
from contactkit.hands.anatomy import FINGER_JOINTS, anatomy_cost
from contactkit.hands.base import KEYPOINT_ORDER, HandModel

__all__ = ["HandFit", "IKSettings", "fit_hand_to_keypoints"]

#: Wrist and the five knuckles (thumb1, index1, middle1, ring1, little1) in keypoint order.
PALM_KEYPOINTS = (0, 1, 5, 9, 13, 17)


@dataclass(frozen=True)
class IKSettings:
    """Settings of :func:`fit_hand_to_keypoints`.

    Attributes:
        iterations: L-BFGS iterations (each with a strong-Wolfe line search).
        anatomy_weight: weight of the anatomy cost (mm^2 per rad^2 of excess).
        pose_weight: weight of the squared pose norm (mm^2 per rad^2), a weak pull toward the flat hand.
        penetration_weight: weight of the penetration cost (mm^2 of keypoint error per mm^2 of squared vertex
            depth) where one is given (:func:`~contactkit.fit.grasp.grasps_from_keypoints` gives the placed
            object's when this is > 0; 0 fits the keypoints alone).
    """

    iterations: int = 30
    anatomy_weight: float = 100.0
    pose_weight: float = 1e-2
    penetration_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.anatomy_weight < 0 or self.pose_weight < 0 or self.penetration_weight < 0:
            raise ContactkitError("iterations must be >= 1 and the weights >= 0")


@dataclass
class HandFit:
    """Fitted hand parameters (model dtype) and the keypoint residual.

    Attributes:
        global_orient: (B, 3) axis-angle, radians.
        hand_pose: (B, 45) axis-angle, radians (MANO joint order).
        betas: (B, num_betas).
        transl: (B, 3) metres.
        keypoints: (B, 21, 3) the fitted hand's keypoints, metres.
        error_mm: (B,) mean keypoint distance to the targets, mm.
    """

    global_orient: Tensor
    hand_pose: Tensor
    betas: Tensor
    transl: Tensor
    keypoints: Tensor
    error_mm: Tensor


def _swing(a: Tensor, b: Tensor) -> Tensor:
    """Smallest rotations (B, 3, 3) turning directions ``a`` onto ``b`` (B, 3) (identity for parallel ones)."""
    a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    axis = torch.linalg.cross(a, b, dim=-1)
    sin = axis.norm(dim=-1, keepdim=True)
    angle = torch.atan2(sin, (a * b).sum(-1, keepdim=True))
    return axis_angle_to_rotmat(axis / sin.clamp_min(1e-12) * angle)


def _initial_guess(hand: HandModel, target: Tensor, betas: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Analytic start (module docstring): ``global_orient (B, 3)``, ``hand_pose (B, 45)``, ``transl (B, 3)``."""
    b = target.shape[0]
    zeros = torch.zeros(b, 3, dtype=hand.dtype, device=hand.device)
    with torch.no_grad():
        rest = hand(zeros, torch.zeros(b, 45, dtype=hand.dtype, device=hand.device), betas if betas.shape[1] else None)
    palm = list(PALM_KEYPOINTS)
    fit = rigid_fit(rest.keypoints[:, palm], target[:, palm])
    j0 = rest.joints[:, 0]
    # x = R (x_rest - J0) + J0 + transl must equal R x_rest + t
    transl = fit.translation + (fit.rotation @ j0.unsqueeze(-1)).squeeze(-1) - j0
    # keypoint row of every joint (0..15) and fingertip (16..20)
    row = {src: k for k, src in enumerate(KEYPOINT_ORDER)}
    pose = torch.zeros(b, 15, 3, dtype=hand.dtype, device=hand.device)
    for f, chain in enumerate(FINGER_JOINTS):
        world = fit.rotation
        ends = [*chain, 16 + f]
        for j, child in zip(chain, ends[1:], strict=True):
            rest_bone = rest.keypoints[:, row[child]] - rest.keypoints[:, row[j]]
            target_bone = target[:, row[child]] - target[:, row[j]]
            current = (world @ rest_bone.unsqueeze(-1)).squeeze(-1)
            new_world = _swing(current, target_bone) @ world
            pose[:, j - 1] = rotmat_to_axis_angle(world.transpose(1, 2) @ new_world)
            world = new_world
    return rotmat_to_axis_angle(fit.rotation), pose.reshape(b, 45), transl


def fit_hand_to_keypoints(hand: HandModel, keypoints: Tensor, *, betas: Tensor | None = None,
                          settings: IKSettings | None = None,
                          penetration: Callable[[Tensor], Tensor] | None = None) -> HandFit:
    """Fit the hand model to target keypoints (module docstring).

    Args:
        hand: the hand model.
        keypoints: (B, 21, 3) float target keypoints in contactkit order, metres (any frame).
        betas: (B, num_betas) fixed shape, default zeros.
        settings: :class:`IKSettings`.
        penetration: ``(B, V, 3) hand vertices (metres) -> (B,)`` cost in mm^2, weighted by
            ``settings.penetration_weight`` (None: no such term).

    Returns:
        :class:`HandFit` (detached).
    """
    check_points("keypoints", keypoints, count=21)
    s = settings or IKSettings()
    b = keypoints.shape[0]
    target = keypoints.detach().to(dtype=hand.dtype, device=hand.device)
    shape = (torch.zeros(b, hand.num_betas, dtype=hand.dtype, device=hand.device) if betas is None
             else betas.detach().to(dtype=hand.dtype, device=hand.device))
    if shape.shape != (b, hand.num_betas):
        raise ContactkitError(f"betas must have shape ({b}, {hand.num_betas}), got {tuple(shape.shape)}")
    orient0, pose0, transl0 = _initial_guess(hand, target, shape)
    orient = orient0.clone().requires_grad_(True)
    pose = (pose0 - hand.pose_offset).clone().requires_grad_(True)
    transl_mm = torch.zeros(b, 3, dtype=hand.dtype, device=hand.device, requires_grad=True)
    beta_arg = shape if shape.shape[1] else None
    optimiser = torch.optim.LBFGS([orient, pose, transl_mm], lr=1.0, max_iter=s.iterations, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-14)

    def closure() -> Tensor:
        optimiser.zero_grad()
        out = hand(orient, pose, beta_arg, transl0 + transl_mm / 1000.0)
        err = ((out.keypoints - target) * 1000.0).pow(2).sum(-1).mean(-1)
        energy = err + s.anatomy_weight * anatomy_cost(hand, pose) + s.pose_weight * pose.pow(2).sum(-1)
        if penetration is not None and s.penetration_weight > 0:
            energy = energy + s.penetration_weight * penetration(out.vertices)
        total = energy.sum()
        total.backward()
        return total

    optimiser.step(closure)
    with torch.no_grad():
        transl = transl0 + transl_mm / 1000.0
        out = hand(orient, pose, beta_arg, transl)
        error = (out.keypoints - target).norm(dim=-1).mean(-1) * 1000.0
    return HandFit(global_orient=orient.detach(), hand_pose=pose.detach(), betas=shape, transl=transl.detach(),
                   keypoints=out.keypoints.detach(), error_mm=error)

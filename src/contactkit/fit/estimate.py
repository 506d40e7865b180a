"""From keypoint estimates to grasps in the world frame: the ``contactkit estimate`` pipeline's core.

Camera-frame hand keypoints and box corners (from :class:`~contactkit.vision.lifter.ContextAwareLifter` or
:class:`~contactkit.vision.heads.KeypointNet`) are moved to the world frame with the camera's extrinsics (the
identity for plain images: world = camera), then fitted (:func:`~contactkit.fit.grasp.grasps_from_keypoints`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.fit.grasp import grasps_from_keypoints
from contactkit.fit.hand_ik import IKSettings
from contactkit.hands.base import HandModel
from contactkit.io.grasps import GraspSet
from contactkit.objects.mesh import ObjectMesh
from contactkit.vision.backbone import normalize_images
from contactkit.vision.camera import camera_to_world
from contactkit.vision.data import KeypointViews
from contactkit.vision.heads import KeypointNet, resize_to_square
from contactkit.vision.train import predict_lifter

__all__ = ["MAX_DISTANCE_M", "estimate_from_images", "estimate_from_views"]

#: Estimates farther than this from the camera are refused as degenerate.
MAX_DISTANCE_M = 5.0


def _to_grasps(hand: HandModel, hand_cam: Tensor, obj_cam: Tensor, cam_from_world: Tensor,
               meshes: Sequence[ObjectMesh], ik: IKSettings | None, metadata: list[dict[str, Any]],
               attrs: dict[str, Any], reference_index: np.ndarray | None) -> GraspSet:
    far = ((hand_cam.norm(dim=-1).amax(1) > MAX_DISTANCE_M) | (obj_cam.norm(dim=-1).amax(1) > MAX_DISTANCE_M)
           | ~torch.isfinite(hand_cam).all(-1).all(-1) | ~torch.isfinite(obj_cam).all(-1).all(-1))
    if bool(far.any()):
        rows = far.nonzero().flatten().tolist()
        raise ContactkitError(f"rows {rows[:10]}: the estimated hand or object lies beyond {MAX_DISTANCE_M} m of the "
                              "camera (degenerate 2D keypoints: is the hand-object pair visible?)")
    ext = cam_from_world.double()
    hand_w = camera_to_world(hand_cam.double(), ext)
    obj_w = camera_to_world(obj_cam.double(), ext)
    for m, kp in zip(metadata, hand_w, strict=True):
        m["estimated_keypoints"] = kp.reshape(-1).tolist()  # the network's own 3D hand keypoints, world frame
    return grasps_from_keypoints(hand, hand_w, obj_w, meshes, ik=ik, metadata=metadata, attrs=attrs,
                                 reference_index=reference_index)


def estimate_from_views(lifter: torch.nn.Module, views: KeypointViews, hand: HandModel,
                        meshes: Sequence[ObjectMesh], *, ik: IKSettings | None = None,
                        attrs: dict[str, Any] | None = None, link_rows: bool = True) -> GraspSet:
    """Lift the 2D keypoints of ``views`` (a full lifter), fit grasps, one row per view.

    Args:
        lifter: a ``mode="full"`` :class:`~contactkit.vision.lifter.ContextAwareLifter`.
        views: the views (their ``keypoints_2d`` are the inputs; ``cam_from_world`` maps to the world frame).
        meshes: one object per view.
        link_rows: store ``views.grasp_index`` as ``reference_index`` (rows of the set named by
            ``attrs["reference"]``).
    """
    pred = predict_lifter(lifter, views)  # type: ignore[arg-type]
    if "hand_camera" not in pred or "object_camera" not in pred:
        raise ContactkitError("estimating grasps needs a full lifter (hand and object)")
    meta = [{"view_index": int(v), "grasp_index": int(g)} for v, g in zip(views.view_index, views.grasp_index,
                                                                          strict=True)]
    ref = views.grasp_index.numpy().astype(np.int64) if link_rows else None
    return _to_grasps(hand, pred["hand_camera"], pred["object_camera"], views.cam_from_world, meshes, ik, meta,
                      dict(attrs or {}), ref)


@torch.no_grad()
def estimate_from_images(net: KeypointNet, rgb: Tensor, k: Tensor, hand: HandModel, meshes: Sequence[ObjectMesh],
                         *, cam_from_world: Tensor | None = None, ik: IKSettings | None = None,
                         metadata: list[dict[str, Any]] | None = None, attrs: dict[str, Any] | None = None,
                         reference_index: np.ndarray | None = None, batch_size: int = 16) -> GraspSet:
    """Run the image network on ``rgb`` (B, H, W, 3) uint8 with intrinsics ``k`` (B, 3, 3) and fit grasps.

    ``cam_from_world`` (B, 4, 4) puts them in a world frame (default: the camera frame).
    """
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or k.shape != (rgb.shape[0], 3, 3):
        raise ContactkitError(f"rgb must be (B, H, W, 3) with K (B, 3, 3); got {tuple(rgb.shape)}, {tuple(k.shape)}")
    net.eval()
    b = rgb.shape[0]
    hands, objs = [], []
    for start in range(0, b, batch_size):
        img, kk = resize_to_square(rgb[start:start + batch_size], k[start:start + batch_size].float(),
                                   net.config.image_size)
        out = net(normalize_images(img), kk)
        if out.hand_camera is None or out.object_camera is None:
            raise ContactkitError("estimating grasps needs a keypoint network with a full lifter")
        hands.append(out.hand_camera)
        objs.append(out.object_camera)
    ext = cam_from_world if cam_from_world is not None else torch.eye(4).expand(b, 4, 4)
    meta = [dict(m) for m in metadata] if metadata is not None else [{} for _ in range(b)]
    return _to_grasps(hand, torch.cat(hands), torch.cat(objs), ext, meshes, ik, meta, dict(attrs or {}),
                      reference_index)

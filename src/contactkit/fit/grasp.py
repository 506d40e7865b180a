"""A :class:`~contactkit.io.grasps.GraspSet` from estimated 3D keypoints: rigid box placement of the object, then hand
IK (with the placed object's penetration cost when ``IKSettings.penetration_weight > 0``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.terms import check_points
from contactkit.errors import ContactkitError
from contactkit.fit.hand_ik import IKSettings, fit_hand_to_keypoints
from contactkit.fit.penetration import PenetrationCost
from contactkit.fit.rigid import rigid_fit
from contactkit.hands.base import HandModel
from contactkit.io.grasps import GraspSet
from contactkit.objects.library import object_box_corners
from contactkit.objects.mesh import ObjectMesh

__all__ = ["grasps_from_keypoints", "place_object"]


def place_object(corners: Tensor, mesh: ObjectMesh) -> tuple[Tensor, Tensor, Tensor]:
    """Object pose from its estimated box corners: the rigid fit (Kabsch) of the object's own box
    (:func:`~contactkit.objects.library.object_box_corners`) onto them.

    Args:
        corners: (B, 8, 3) float estimated corners (box corner order), metres.
        mesh: the object.

    Returns:
        ``(rotation (B, 3, 3), translation (B, 3), rms_mm (B,))`` with ``x = R x_object + t``.
    """
    check_points("corners", corners, count=8)
    local = torch.as_tensor(object_box_corners(mesh)[0], dtype=corners.dtype, device=corners.device)
    fit = rigid_fit(local.expand(corners.shape[0], 8, 3), corners)
    return fit.rotation, fit.translation, fit.rms * 1000.0


def grasps_from_keypoints(
    hand: HandModel,
    hand_keypoints: Tensor,
    corners: Tensor,
    meshes: Sequence[ObjectMesh],
    *,
    ik: IKSettings | None = None,
    metadata: Sequence[dict[str, Any]] | None = None,
    attrs: dict[str, Any] | None = None,
    reference_index: np.ndarray | None = None,
) -> GraspSet:
    """Grasps whose hand is fitted to ``hand_keypoints`` and whose object is placed on ``corners``.

    Args:
        hand: the hand model of the output set.
        hand_keypoints: (B, 21, 3) float, metres, contactkit keypoint order.
        corners: (B, 8, 3) float, metres, same frame, box corner order.
        meshes: B objects (one per row; repeated objects are stored once).
        ik: hand IK settings.
        metadata: B JSON dicts; each row also gets ``ik_error_mm`` and ``box_fit_rms_mm``.
        attrs: set-level JSON attributes.
        reference_index: optional (B,) int64 rows of the ground truth named by ``attrs["reference"]``.
    """
    check_points("hand_keypoints", hand_keypoints, count=21)
    check_points("corners", corners, batch=hand_keypoints.shape[0], count=8)
    b = hand_keypoints.shape[0]
    if len(meshes) != b:
        raise ContactkitError(f"meshes must have one object per row ({b}), got {len(meshes)}")
    rot = np.zeros((b, 3, 3))
    transl = np.zeros((b, 3))
    rms = np.zeros(b)
    objects: dict[str, ObjectMesh] = {}
    for mesh in meshes:
        objects.setdefault(mesh.content_hash, mesh)
    ids = [m.content_hash for m in meshes]
    for oid, mesh in objects.items():
        rows = [i for i, k in enumerate(ids) if k == oid]
        r, t, e = place_object(corners[rows].detach().double().cpu(), mesh)
        rot[rows], transl[rows], rms[rows] = r.numpy(), t.numpy(), e.numpy()
    pen = None
    if ik is not None and ik.penetration_weight > 0:
        pen = PenetrationCost(meshes, torch.as_tensor(rot), torch.as_tensor(transl))
    fit = fit_hand_to_keypoints(hand, hand_keypoints, settings=ik, penetration=pen)
    meta = [dict(m) for m in metadata] if metadata is not None else [{} for _ in range(b)]
    if len(meta) != b:
        raise ContactkitError(f"metadata must have {b} entries, got {len(meta)}")
    for i, m in enumerate(meta):
        m["ik_error_mm"] = float(fit.error_mm[i])
        m["box_fit_rms_mm"] = float(rms[i])

    def arr(x: Tensor) -> np.ndarray:
        return x.detach().double().cpu().numpy()

    return GraspSet(
        hand_model=hand.name, side=hand.side, global_orient=arr(fit.global_orient), hand_pose=arr(fit.hand_pose),
        betas=arr(fit.betas), transl=arr(fit.transl), object_ids=ids, objects=objects, object_rotation=rot,
        object_translation=transl, reference_index=reference_index, metadata=meta, attrs=dict(attrs or {}),
    )

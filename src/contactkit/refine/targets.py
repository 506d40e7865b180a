"""Refinement targets: what the contact terms should reach.

Targets come from a reference grasp (oracle mode, as ContactOpt's refinement with measured contact: the contact
maps are measured on the reference with DiffContact), from a contact map given by the user, or from a learned
estimator implementing :class:`ContactEstimator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from contactkit.contact.diffcontact import hand_contact_from_sdf, object_contact_map
from contactkit.errors import ShapeError
from contactkit.refine.refiner import HandLike, HandParamsInit, ObjectBatch

__all__ = ["ContactEstimator", "ContactTargets", "oracle_targets", "reference_geometry"]


@dataclass
class ContactTargets:
    """Targets for ``N0`` samples; every field is optional, each method states which it needs.

    Attributes:
        hand_contact: (N0, V) float in [0, 1] — target contact per hand vertex.
        object_contact: (N0, P) float in [0, 1] — target contact per object point (the ``ObjectBatch`` points).
        ref_verts: (N0, V, 3) float, metres — reference hand vertices, world frame of the refined grasp.
        ref_anchors: (N0, 32, 3) float, metres — reference anchors, same frame.
        ref_keypoints: (N0, 21, 3) float, metres — reference keypoints, same frame.
        ref_params: reference hand parameters (oracle mode), or None.
        k_atr: (N0, 32, P) float in [0, 1] — CPF attractive-spring elasticities between the anchors and the
            object points (as PiCR predicts them); when None, ``cpf`` measures them on ``ref_anchors``/``ref_verts``.
    """

    hand_contact: Tensor | None = None
    object_contact: Tensor | None = None
    ref_verts: Tensor | None = None
    ref_anchors: Tensor | None = None
    ref_keypoints: Tensor | None = None
    ref_params: HandParamsInit | None = None
    k_atr: Tensor | None = None

    def require(self, name: str, method: str) -> Tensor:
        value = getattr(self, name)
        if value is None:
            raise ShapeError(
                f"method {method!r} needs targets.{name}; give a reference grasp (oracle targets) or a "
                f"ContactTargets with {name}"
            )
        return value


@runtime_checkable
class ContactEstimator(Protocol):
    """A learned contact estimator: predicts target maps from a (noisy) grasp.

    ``predict(hand_verts (N0, V, 3), obj_points (N0, P, 3), obj_normals (N0, P, 3)) -> ContactTargets`` with at
    least ``hand_contact`` and ``object_contact`` (world frame, metres).
    """

    def predict(self, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor) -> ContactTargets: ...


def reference_geometry(
    hand: HandLike,
    reference: HandParamsInit,
    ref_rotation: Tensor,
    ref_translation: Tensor,
    objects: ObjectBatch,
) -> tuple[Tensor, Tensor, Tensor]:
    """Reference hand vertices, anchors and keypoints moved into the object pose of ``objects``.

    The reference grasp is expressed in its object's frame (``ref_rotation (N0,3,3)``, ``ref_translation
    (N0,3)``) and re-posed with ``objects.rotation / translation``, so a perturbed set whose object moved still
    gets consistent targets.

    Returns:
        ``(verts (N0, V, 3), anchors (N0, 32, 3), keypoints (N0, 21, 3))``, metres.
    """
    with torch.no_grad():
        out = hand(
            reference.global_orient, reference.hand_pose,
            reference.betas if hand.num_betas > 0 else None, reference.transl,
        )
        dtype = out.vertices.dtype
        rot_r, tr_r = ref_rotation.to(dtype), ref_translation.to(dtype)
        rot, tr = objects.rotation.to(dtype), objects.translation.to(dtype)

        def move(x: Tensor) -> Tensor:
            local = (x - tr_r.unsqueeze(1)) @ rot_r
            return local @ rot.transpose(1, 2) + tr.unsqueeze(1)

        verts = move(out.vertices)
        return verts, hand.anchors(verts), move(out.keypoints)


def oracle_targets(
    hand: HandLike,
    reference: HandParamsInit,
    objects: ObjectBatch,
    *,
    ref_rotation: Tensor | None = None,
    ref_translation: Tensor | None = None,
) -> ContactTargets:
    """Targets measured on reference grasps with DiffContact (ContactOpt's oracle mode).

    Args:
        reference: reference hand parameters (N0 samples).
        objects: the objects of the grasps to refine (their points define ``object_contact``'s order).
        ref_rotation, ref_translation: object pose of the reference grasps (default: ``objects``' pose).
    """
    n0 = objects.points.shape[0]
    if reference.batch_size != n0:
        raise ShapeError(f"reference holds {reference.batch_size} grasps, objects hold {n0}")
    rot_r = objects.rotation if ref_rotation is None else ref_rotation
    tr_r = objects.translation if ref_translation is None else ref_translation
    verts, anchors, keypoints = reference_geometry(hand, reference, rot_r, tr_r, objects)
    dtype = verts.dtype
    with torch.no_grad():
        rot, tr = objects.rotation.to(dtype), objects.translation.to(dtype)
        pts = objects.points.to(dtype) @ rot.transpose(1, 2) + tr.unsqueeze(1)
        nrm = objects.normals.to(dtype) @ rot.transpose(1, 2)
        obj_contact = object_contact_map(verts, pts, nrm)
        hand_contact = None
        if objects.sdf is not None:
            local = (verts - tr.unsqueeze(1)) @ rot
            rows = torch.arange(n0, device=verts.device)
            hand_contact = hand_contact_from_sdf(objects.sdf(local, rows))
    return ContactTargets(
        hand_contact=hand_contact,
        object_contact=obj_contact,
        ref_verts=verts,
        ref_anchors=anchors,
        ref_keypoints=keypoints,
        ref_params=reference,
    )

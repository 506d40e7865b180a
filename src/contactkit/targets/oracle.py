"""Oracle targets: contact maps and geometry measured on a reference grasp (ContactOpt's oracle mode).

Used only when asked for (``targets="oracle"``, a reference grasp file or set) and by the estimators' training
data, whose targets are measured on the ground truth exactly as oracle refinement measures them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.diffcontact import hand_contact_from_sdf, object_contact_map
from contactkit.errors import ContactkitError, ShapeError
from contactkit.targets.contract import ContactTargets, HandParamsInit, ObjectBatch

__all__ = ["oracle_targets", "reference_geometry", "reference_rows", "reference_targets"]


def reference_geometry(
    hand: Any,
    reference: HandParamsInit,
    ref_rotation: Tensor,
    ref_translation: Tensor,
    objects: ObjectBatch,
) -> tuple[Tensor, Tensor, Tensor]:
    """Reference hand vertices, anchors and keypoints moved into the object pose of ``objects``.

    The reference grasp is expressed in its object's frame (``ref_rotation (N0,3,3)``, ``ref_translation
    (N0,3)``) and re-posed with ``objects.rotation / translation``, so a perturbed set whose object moved still
    gets consistent targets.

    Args:
        hand: a hand model (:class:`contactkit.hands.HandModel` interface).

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
    hand: Any,
    reference: HandParamsInit,
    objects: ObjectBatch,
    *,
    ref_rotation: Tensor | None = None,
    ref_translation: Tensor | None = None,
) -> ContactTargets:
    """Targets measured on reference grasps with DiffContact (ContactOpt's oracle mode).

    Args:
        hand: a hand model.
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


def reference_rows(grasps: Any, reference: Any) -> np.ndarray:
    """(N,) int64: the row of ``reference`` that is the ground truth of each grasp of ``grasps``.

    ``grasps.reference_index`` decides whenever the set has one (a perturbed or reordered set keeps it through
    ``subset``), whatever the two sets' lengths; a set without it is matched 1:1 to a reference of the same
    length. Raises when neither applies, when an index is out of range, or when a pair's objects differ.
    """
    n = len(grasps)
    if grasps.reference_index is not None:
        idx = np.asarray(grasps.reference_index, dtype=np.int64)
    elif len(reference) == n:
        idx = np.arange(n, dtype=np.int64)
    else:
        raise ContactkitError(
            f"targets holds {len(reference)} grasps but the set to refine holds {n} and has no reference_index"
        )
    if idx.shape != (n,):
        raise ContactkitError(f"reference_index must have shape ({n},), got {idx.shape}")
    if idx.min(initial=0) < 0 or idx.max(initial=0) >= len(reference):
        raise ContactkitError(f"reference_index out of range for a reference set of {len(reference)} grasps")
    for i in range(n):
        if reference.object_ids[idx[i]] != grasps.object_ids[i]:
            raise ContactkitError(
                f"grasp {i} uses object {grasps.object_ids[i]} but its reference (row {idx[i]}) uses "
                f"{reference.object_ids[idx[i]]}"
            )
    return idx


def reference_targets(
    hand: Any, reference: Any, grasps: Any, objects: ObjectBatch, device: Any, dtype: torch.dtype
) -> ContactTargets:
    """Oracle targets for every grasp of ``grasps`` from its row of the reference set (:func:`reference_rows`).

    Args:
        hand: a hand model; reference, grasps: :class:`~contactkit.io.grasps.GraspSet` s.
        objects: ``objects_from_grasps(grasps)``.
    """
    ref = reference.subset(reference_rows(grasps, reference))
    t = ref.hand_tensors(device=device, dtype=dtype)
    params = HandParamsInit(t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    return oracle_targets(
        hand, params, objects, ref_rotation=t["object_rotation"], ref_translation=t["object_translation"]
    )

"""Keypoint views: 2D/3D hand keypoints and box corners seen by cameras, the lifter's data.

A :class:`KeypointViews` holds, per view, the camera (``K``, ``cam_from_world``), the 29 camera-frame 3D keypoints
and their pixels, and the row of the grasp it shows — the fields of the rendered dataset sample (contract A,
``contactkit.dataset.RenderedDataset``) without the images. Two sources build it:

- :func:`synthetic_views`: ground-truth grasps seen by random cameras around the pair (no rendering needed; the
  lifter's training data, and paper 003 Table 2's "ground-truth 2D" inputs);
- :func:`views_from_samples`: rendered dataset samples (dicts of contract A).

:class:`OneBoxSamples` re-derives a rendered dataset's object corners from its grasps with contactkit's one object
box (:func:`~contactkit.objects.library.object_box_corners`): datasets built before that box was made the only one
(e.g. ``/work/data/v3``, built with a principal-axis box) store other corners.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError, ShapeError
from contactkit.hands.base import HandModel
from contactkit.io.grasps import GraspSet
from contactkit.objects.library import object_box_corners
from contactkit.vision.camera import project, random_cameras
from contactkit.vision.keypoints import NUM_KEYPOINTS

__all__ = ["KeypointViews", "OneBoxSamples", "grasp_keypoints", "synthetic_views", "views_from_samples"]


@dataclass
class KeypointViews:
    """N camera views of grasps (float32 CPU tensors unless noted).

    Attributes:
        k: (N, 3, 3) pixel intrinsics.
        cam_from_world: (N, 4, 4) extrinsics (world = the grasp's frame).
        keypoints_3d: (N, 29, 3) camera frame, metres: 21 hand keypoints then 8 box corners.
        keypoints_2d: (N, 29, 2) pixels (u, v).
        grasp_index: (N,) int64 row of the grasp in its set.
        view_index: (N,) int64 view number of that grasp.
        object_ids: N object ids (content hashes).
    """

    k: Tensor
    cam_from_world: Tensor
    keypoints_3d: Tensor
    keypoints_2d: Tensor
    grasp_index: Tensor
    view_index: Tensor
    object_ids: list[str]

    def __post_init__(self) -> None:
        n = self.k.shape[0]
        shapes = {"k": (n, 3, 3), "cam_from_world": (n, 4, 4), "keypoints_3d": (n, NUM_KEYPOINTS, 3),
                  "keypoints_2d": (n, NUM_KEYPOINTS, 2), "grasp_index": (n,), "view_index": (n,)}
        for name, shape in shapes.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ShapeError(f"{name} must have shape {shape}, got {tuple(getattr(self, name).shape)}")
        if len(self.object_ids) != n:
            raise ShapeError(f"object_ids must have {n} entries, got {len(self.object_ids)}")

    def __len__(self) -> int:
        return int(self.k.shape[0])

    def subset(self, idx: Tensor | list[int]) -> KeypointViews:
        """The views at ``idx`` (a list or 1-D index tensor)."""
        index = torch.as_tensor(idx, dtype=torch.long)
        return KeypointViews(self.k[index], self.cam_from_world[index], self.keypoints_3d[index],
                             self.keypoints_2d[index], self.grasp_index[index], self.view_index[index],
                             [self.object_ids[i] for i in index.tolist()])


def grasp_keypoints(grasps: GraspSet, hand: HandModel) -> tuple[Tensor, Tensor]:
    """World-frame hand keypoints (N, 21, 3) and object box corners (N, 8, 3) of every grasp (float64, metres).

    The box is :func:`~contactkit.objects.library.object_box_corners` of each object, posed by the grasp's object pose.
    """
    if grasps.hand_model != hand.name or grasps.side != hand.side:
        raise ContactkitError(f"grasps use hand {grasps.hand_model}/{grasps.side} but the hand model is "
                              f"{hand.name}/{hand.side}")
    t = grasps.hand_tensors(device=hand.device, dtype=hand.dtype)
    with torch.no_grad():
        out = hand(t["global_orient"], t["hand_pose"], t["betas"] if t["betas"].shape[1] else None, t["transl"])
    boxes = {oid: torch.as_tensor(object_box_corners(mesh)[0]) for oid, mesh in grasps.objects.items()}
    local = torch.stack([boxes[oid] for oid in grasps.object_ids])
    rot = torch.as_tensor(np.array(grasps.object_rotation))
    transl = torch.as_tensor(np.array(grasps.object_translation))
    corners = local @ rot.transpose(1, 2) + transl.unsqueeze(1)
    return out.keypoints.detach().double().cpu(), corners


def synthetic_views(grasps: GraspSet, hand: HandModel, views_per_grasp: int, seed: int, **camera: Any
                    ) -> KeypointViews:
    """Every grasp seen by ``views_per_grasp`` random cameras (:func:`~contactkit.vision.camera.random_cameras`,
    keyword arguments pass through) looking at the centre of its 29 keypoints; deterministic for ``seed``."""
    if views_per_grasp < 1:
        raise ContactkitError(f"views_per_grasp must be >= 1, got {views_per_grasp}")
    hand_kp, corners = grasp_keypoints(grasps, hand)
    world = torch.cat([hand_kp, corners], dim=1).repeat_interleave(views_per_grasp, dim=0)
    gen = torch.Generator().manual_seed(int(seed))
    k, ext = random_cameras(world.mean(1), gen, **camera)
    cam = world @ ext[:, :3, :3].transpose(1, 2) + ext[:, None, :3, 3]
    n = len(grasps)
    return KeypointViews(
        k=k.float(), cam_from_world=ext.float(), keypoints_3d=cam.float(), keypoints_2d=project(cam, k).float(),
        grasp_index=torch.arange(n).repeat_interleave(views_per_grasp),
        view_index=torch.arange(views_per_grasp).repeat(n),
        object_ids=[oid for oid in grasps.object_ids for _ in range(views_per_grasp)],
    )


def views_from_samples(samples: Iterable[Mapping[str, Any]]) -> KeypointViews:
    """Stack rendered dataset samples (contract A dicts; images are not read) into :class:`KeypointViews`."""
    rows: dict[str, list[Any]] = {k: [] for k in ("k", "ext", "kp3", "kp2", "gi", "vi", "oid")}
    for i, s in enumerate(samples):
        try:
            rows["k"].append(torch.as_tensor(np.asarray(s["K"], dtype=np.float32)))
            rows["ext"].append(torch.as_tensor(np.asarray(s["cam_from_world"], dtype=np.float32)))
            rows["kp3"].append(torch.as_tensor(np.concatenate(
                [np.asarray(s["hand_keypoints_3d"], np.float32), np.asarray(s["object_corners_3d"], np.float32)])))
            rows["kp2"].append(torch.as_tensor(np.concatenate(
                [np.asarray(s["hand_keypoints_2d"], np.float32), np.asarray(s["object_corners_2d"], np.float32)])))
            rows["gi"].append(int(s["grasp_index"]))
            rows["vi"].append(int(s["view_index"]))
            rows["oid"].append(str(s["object_id"]))
        except KeyError as err:
            raise ShapeError(f"sample {i} lacks the rendered-dataset field {err}") from None
    if not rows["k"]:
        raise ContactkitError("no samples")
    return KeypointViews(torch.stack(rows["k"]), torch.stack(rows["ext"]), torch.stack(rows["kp3"]),
                         torch.stack(rows["kp2"]), torch.tensor(rows["gi"]), torch.tensor(rows["vi"]), rows["oid"])


class OneBoxSamples:
    """The samples of a rendered dataset with ``object_corners_3d`` / ``object_corners_2d`` set to the one object
    box (:func:`~contactkit.objects.library.object_box_corners`) posed by the sample's grasp (``dataset.grasps``)
    and its camera (``cam_from_world``, ``K``) — identical to the stored corners of a dataset built with it.

    Args:
        dataset: indexable contract-A samples with a ``grasps`` :class:`~contactkit.io.grasps.GraspSet` whose row
            ``grasp_index`` each sample shows (a :class:`contactkit.dataset.RenderedDataset`).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        grasps: GraspSet = dataset.grasps
        boxes = {oid: object_box_corners(mesh)[0] for oid, mesh in grasps.objects.items()}
        rot = np.asarray(grasps.object_rotation, dtype=np.float64)
        transl = np.asarray(grasps.object_translation, dtype=np.float64)
        #: (G, 8, 3) world-frame corners of every grasp, float64 metres
        self.world_corners = np.stack([boxes[oid] @ rot[g].T + transl[g]
                                       for g, oid in enumerate(grasps.object_ids)])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.dataset[index])
        ext = np.asarray(sample["cam_from_world"], dtype=np.float64)
        cam = self.world_corners[int(sample["grasp_index"])] @ ext[:3, :3].T + ext[:3, 3]
        uvw = cam @ np.asarray(sample["K"], dtype=np.float64).T
        sample["object_corners_3d"] = cam.astype(np.float32)
        sample["object_corners_2d"] = (uvw[:, :2] / uvw[:, 2:]).astype(np.float32)
        return sample


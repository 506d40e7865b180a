"""Per-point geometric input features of the contact estimators, in a hand-centred normalised frame.

The joint point cloud is the hand's vertices followed by the object's sampled surface points. Positions are
rigidly normalised into the wrist frame of the (noisy) hand and divided by :data:`NORMALISATION_SCALE_M`, so
every feature is invariant to moving the hand and the object together. Per point (``N_FEATURES`` channels):

====  ==========================================================================================
 0    1 for a hand vertex, 0 for an object point
 1    distance to the nearest point of the other surface, / 10 cm
 2    that offset along the other surface's normal at the nearest point, / 10 cm (negative: behind it)
 3    exp(-distance / 5 mm), a contact-scale proximity
 4-24 distances to the 21 hand keypoints, / 10 cm
25-27 the point's own unit normal, in the wrist frame
 28   cosine between the point's normal and the direction to its nearest point on the other surface
====  ==========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contactkit.errors import ShapeError
from contactkit.geometry.knn import nearest_points

#: Length unit of the normalised frame, metres.
NORMALISATION_SCALE_M = 0.1
#: Length scale of the proximity feature, metres.
PROXIMITY_SCALE_M = 0.005
N_FEATURES = 29


@dataclass(frozen=True)
class ContactInputs:
    """Network inputs for a batch of hand–object pairs.

    Attributes:
        xyz: (B, V + P, 3) normalised positions, hand vertices first.
        features: (B, V + P, N_FEATURES) per-point features.
        n_hand: V, the number of hand vertices.
    """

    xyz: Tensor
    features: Tensor
    n_hand: int


def wrist_frame_normalise(points: Tensor, wrist_rotation: Tensor, wrist_position: Tensor) -> Tensor:
    """Map world points into the normalised wrist frame.

    Args:
        points: (B, N, 3) metres.
        wrist_rotation: (B, 3, 3) rotation of the wrist joint in the world.
        wrist_position: (B, 3) metres.

    Returns:
        (B, N, 3) in units of NORMALISATION_SCALE_M, wrist at the origin, wrist axes aligned.
    """
    return torch.einsum("bji,bnj->bni", wrist_rotation, points - wrist_position[:, None]) / NORMALISATION_SCALE_M


def _side_features(
    points: Tensor, normals: Tensor, other: Tensor, other_normals: Tensor, keypoints: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    near = nearest_points(points, other)
    offset = points - near.nearest
    other_n = other_normals.gather(1, near.idx[..., None].expand(-1, -1, 3))
    along_normal = (offset * other_n).sum(-1)
    direction = -offset / near.dist[..., None].clamp_min(1e-9)
    facing = (normals * direction).sum(-1)
    to_keypoints = torch.cdist(points, keypoints, compute_mode="donot_use_mm_for_euclid_dist")
    return near.dist, along_normal, facing, to_keypoints, normals


def contact_inputs(
    hand_vertices: Tensor,
    hand_normals: Tensor,
    keypoints: Tensor,
    wrist_rotation: Tensor,
    object_points: Tensor,
    object_normals: Tensor,
) -> ContactInputs:
    """Build normalised positions and features for the joint hand + object cloud.

    Args:
        hand_vertices: (B, V, 3) posed hand vertices, metres.
        hand_normals: (B, V, 3) unit vertex normals of the posed hand.
        keypoints: (B, 21, 3) hand keypoints, metres (wrist first).
        wrist_rotation: (B, 3, 3) global rotation of the wrist joint.
        object_points: (B, P, 3) object surface samples in the world, metres.
        object_normals: (B, P, 3) their unit outward normals.

    Returns:
        :class:`ContactInputs`.
    """
    for name, value in (("hand_vertices", hand_vertices), ("object_points", object_points)):
        if value.ndim != 3 or value.shape[-1] != 3:
            raise ShapeError(f"{name} must have shape (B, N, 3), got {tuple(value.shape)}")
    # Distances are computed about the wrist, so float32 precision does not depend on where the grasp is.
    wrist = keypoints[:, 0]
    hand_vertices = hand_vertices - wrist[:, None]
    object_points = object_points - wrist[:, None]
    keypoints = keypoints - wrist[:, None]
    wrist = torch.zeros_like(wrist)
    rot_t = wrist_rotation.transpose(1, 2)
    scale = NORMALISATION_SCALE_M
    rows = []
    for flag, pts, nrm, other, other_nrm in (
        (1.0, hand_vertices, hand_normals, object_points, object_normals),
        (0.0, object_points, object_normals, hand_vertices, hand_normals),
    ):
        dist, along, facing, to_kp, normals = _side_features(pts, nrm, other, other_nrm, keypoints)
        local_normals = torch.einsum("bij,bnj->bni", rot_t, normals)
        rows.append(
            torch.cat(
                [
                    torch.full_like(dist[..., None], flag),
                    dist[..., None] / scale,
                    along[..., None] / scale,
                    torch.exp(-dist / PROXIMITY_SCALE_M)[..., None],
                    to_kp / scale,
                    local_normals,
                    facing[..., None],
                ],
                dim=-1,
            )
        )
    xyz = wrist_frame_normalise(torch.cat([hand_vertices, object_points], dim=1), wrist_rotation, wrist)
    return ContactInputs(xyz=xyz, features=torch.cat(rows, dim=1), n_hand=hand_vertices.shape[1])

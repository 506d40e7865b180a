"""ObMan network outputs as a grasp file: the predicted hand and the **reconstructed** object of every image.

Each row holds the network's hand (parameters moved to the world frame) and, as its object, the predicted object
mesh (the deformed icosphere; object frame = the camera frame, posed by the camera's world-from-camera
transform). Metrics that compare objects (Chamfer) then measure the reconstruction, and the physics metrics
(penetration, intersection volume, simulation) are those of the predicted hand with the predicted object, as in
ObMan's evaluation (paper 001 §5). A reconstruction is flagged watertight only when it is closed, outward and not
folded through itself (:func:`is_embedded_closed`); otherwise inside tests on it use winding numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.geometry.inside import is_closed
from contactkit.geometry.rotations import axis_angle_to_rotmat, rotmat_to_axis_angle
from contactkit.hands.base import HandModel
from contactkit.io.grasps import GraspSet
from contactkit.objects.mesh import ObjectMesh
from contactkit.vision.atlasnet import overlap_fraction
from contactkit.vision.backbone import normalize_images
from contactkit.vision.heads import resize_to_square
from contactkit.vision.obman_net import ObManNet, ObManOutput

__all__ = ["grasps_from_obman", "hand_to_world", "is_embedded_closed", "run_obman"]


@torch.no_grad()
def run_obman(net: ObManNet, rgb: Tensor, k: Tensor, batch_size: int = 16) -> ObManOutput:
    """The network on ``rgb (B, H, W, 3)`` uint8 with intrinsics ``k (B, 3, 3)``, in batches (eval mode, CPU)."""
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or k.shape != (rgb.shape[0], 3, 3):
        raise ContactkitError(f"rgb must be (B, H, W, 3) with K (B, 3, 3); got {tuple(rgb.shape)}, {tuple(k.shape)}")
    net.eval()
    device = next(net.backbone.parameters()).device
    parts: list[ObManOutput] = []
    for start in range(0, rgb.shape[0], batch_size):
        img, kk = resize_to_square(rgb[start:start + batch_size], k[start:start + batch_size].float(),
                                   net.config.image_size)
        parts.append(net(normalize_images(img).to(device), kk.to(device)))
    fields = ObManOutput.__dataclass_fields__
    return ObManOutput(**{name: torch.cat([getattr(p, name).float().cpu() for p in parts]) for name in fields})


def hand_to_world(hand: HandModel, global_orient: Tensor, hand_pca: Tensor, betas: Tensor, root: Tensor,
                  cam_from_world: Tensor) -> dict[str, Tensor]:
    """World-frame hand parameters (float64, CPU) of a camera-frame prediction.

    Args:
        global_orient: (B, 3) wrist axis-angle, camera frame; hand_pca: (B, k) PCA pose; betas: (B, n_shape).
        root: (B, 3) camera-frame wrist keypoint, metres; cam_from_world: (B, 4, 4).

    Returns:
        ``global_orient``, ``hand_pose`` (axis-angle, 45), ``betas``, ``transl`` and the camera's pose in the world
        ``world_rotation`` (B, 3, 3), ``world_translation`` (B, 3) (``x_world = R x_camera + t``).
    """
    b = root.shape[0]
    ext = cam_from_world.double().cpu()
    r_wc = ext[:, :3, :3].transpose(1, 2)
    t_wc = -(r_wc @ ext[:, :3, 3:]).squeeze(-1)
    betas = betas.double().cpu()
    with torch.no_grad():
        rest = hand(torch.zeros(b, 3, dtype=hand.dtype, device=hand.device),
                    torch.zeros(b, 45, dtype=hand.dtype, device=hand.device),
                    betas.to(hand.device, hand.dtype) if betas.shape[1] else None)
        hand_pose = hand.pca_to_axis_angle(hand_pca.to(hand.device, hand.dtype)).double().cpu()
    j0 = rest.joints[:, 0].double().cpu()  # the wrist joint does not move under global_orient
    root = root.double().cpu()
    go = rotmat_to_axis_angle(r_wc @ axis_angle_to_rotmat(global_orient.double().cpu()))
    transl = (r_wc @ root.unsqueeze(-1)).squeeze(-1) + t_wc - j0
    return {"global_orient": go, "hand_pose": hand_pose, "betas": betas, "transl": transl,
            "world_rotation": r_wc, "world_translation": t_wc}


def is_embedded_closed(verts: np.ndarray, faces: np.ndarray) -> bool:
    """Whether a reconstruction may be flagged watertight (:class:`ObjectMesh`: closed, oriented, outward).

    The deformed icosphere is always closed and consistently wound, but the decoder can fold it through itself or
    turn it inside out; then the pseudonormal sign that a watertight flag selects disagrees with the winding
    number. True when the faces are closed and oriented (:func:`contactkit.geometry.inside.is_closed`), the
    enclosed volume is positive and no part of the box has a winding number other than 0 or 1
    (:func:`contactkit.vision.atlasnet.overlap_fraction`); otherwise inside tests use winding numbers.

    Args:
        verts: (V, 3) float, metres; faces: (F, 3) int.
    """
    if not is_closed(faces, len(verts)):
        return False
    tri = verts[faces]
    volume = float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)
    return volume > 0.0 and overlap_fraction(verts, faces) == 0.0


def grasps_from_obman(net: ObManNet, out: ObManOutput, cam_from_world: Tensor | None = None, *,
                      metadata: list[dict[str, Any]] | None = None, attrs: dict[str, Any] | None = None,
                      reference_index: np.ndarray | None = None) -> GraspSet:
    """A :class:`GraspSet` of ``out`` (see the module docstring); ``cam_from_world`` (B, 4, 4) defaults to the
    identity (world = camera)."""
    b = out.root.shape[0]
    ext = cam_from_world if cam_from_world is not None else torch.eye(4).expand(b, 4, 4)
    w = hand_to_world(net.hand, out.global_orient, out.hand_pca, out.betas, out.root, ext)
    root = out.root.double().cpu()
    faces = net.object_faces.cpu().numpy()
    verts = [(out.object_verts[i].double().cpu() + root[i]).numpy() for i in range(b)]
    meshes = [ObjectMesh(f"obman-net reconstruction {i}", v, faces, is_watertight=is_embedded_closed(v, faces),
                         source="obman-net") for i, v in enumerate(verts)]
    meta = [dict(m) for m in metadata] if metadata is not None else [{} for _ in range(b)]
    for m in meta:
        m["object"] = "reconstructed (obman-net)"
    return GraspSet(hand_model=net.hand.name, side=net.hand.side, global_orient=w["global_orient"].numpy(),
                    hand_pose=w["hand_pose"].numpy(), betas=w["betas"].numpy(), transl=w["transl"].numpy(),
                    object_ids=[m.content_hash for m in meshes], objects={m.content_hash: m for m in meshes},
                    object_rotation=w["world_rotation"].numpy(), object_translation=w["world_translation"].numpy(),
                    reference_index=reference_index, metadata=meta,
                    attrs={**(attrs or {}), "estimated_by": "obman-net", "objects": "reconstructed"})

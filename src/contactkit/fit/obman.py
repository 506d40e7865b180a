"""ObMan network outputs as a grasp file: the predicted hand and the **reconstructed** object of every image.

Each row holds the network's hand (parameters moved to the world frame) and, as its object, the predicted object
mesh (the deformed icosphere; object frame = the camera frame, posed by the camera's world-from-camera
transform). Metrics that compare objects (Chamfer) then measure the reconstruction, and the physics metrics
(penetration, intersection volume, simulation) are those of the predicted hand with the predicted object, as in
ObMan's evaluation (paper 001 §5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.geometry.rotations import axis_angle_to_rotmat, rotmat_to_axis_angle
from contactkit.io.grasps import GraspSet
from contactkit.objects.mesh import ObjectMesh
from contactkit.vision.backbone import normalize_images
from contactkit.vision.heads import resize_to_square
from contactkit.vision.obman_net import ObManNet, ObManOutput

__all__ = ["grasps_from_obman", "run_obman"]


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


def grasps_from_obman(net: ObManNet, out: ObManOutput, cam_from_world: Tensor | None = None, *,
                      metadata: list[dict[str, Any]] | None = None, attrs: dict[str, Any] | None = None,
                      reference_index: np.ndarray | None = None) -> GraspSet:
    """A :class:`GraspSet` of ``out`` (see the module docstring); ``cam_from_world`` (B, 4, 4) defaults to the
    identity (world = camera)."""
    hand = net.hand
    b = out.root.shape[0]
    ext = (cam_from_world if cam_from_world is not None else torch.eye(4).expand(b, 4, 4)).double().cpu()
    r_wc = ext[:, :3, :3].transpose(1, 2)
    t_wc = -(r_wc @ ext[:, :3, 3:]).squeeze(-1)
    betas = out.betas.double()
    with torch.no_grad():
        zero = torch.zeros(b, 3, dtype=hand.dtype, device=hand.device)
        rest = hand(zero, torch.zeros(b, 45, dtype=hand.dtype, device=hand.device),
                    betas.to(hand.device, hand.dtype) if betas.shape[1] else None)
    j0 = rest.joints[:, 0].double().cpu()
    root = out.root.double()
    go = rotmat_to_axis_angle(r_wc @ axis_angle_to_rotmat(out.global_orient.double()))
    transl = (r_wc @ root.unsqueeze(-1)).squeeze(-1) + t_wc - j0
    hand_pose = hand.pca_to_axis_angle(out.hand_pca.to(hand.device, hand.dtype)).double().cpu()
    faces = net.object_faces.cpu().numpy()
    meshes = [ObjectMesh(f"obman-net reconstruction {i}", (out.object_verts[i].double() + root[i]).numpy(), faces,
                         is_watertight=True, source="obman-net") for i in range(b)]
    meta = [dict(m) for m in metadata] if metadata is not None else [{} for _ in range(b)]
    for m in meta:
        m["object"] = "reconstructed (obman-net)"
    return GraspSet(hand_model=hand.name, side=hand.side, global_orient=go.numpy(), hand_pose=hand_pose.numpy(),
                    betas=betas.numpy(), transl=transl.numpy(), object_ids=[m.content_hash for m in meshes],
                    objects={m.content_hash: m for m in meshes}, object_rotation=r_wc.numpy(),
                    object_translation=t_wc.numpy(), reference_index=reference_index, metadata=meta,
                    attrs={**(attrs or {}), "estimated_by": "obman-net", "objects": "reconstructed"})

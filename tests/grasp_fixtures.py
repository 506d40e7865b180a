"""Ground-truth grasps the tests build: the hand posed around spheres (shared by the refinement and JointDiffusion
tests)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def posed_sphere_grasps(hand, radii: Sequence[float] = (0.035,), copies: int = 1, bend: float = 0.5):
    """Grasps made by posing ``hand``: fingers flexed by ``bend`` rad per joint (A-MANO bend axes) around a
    sphere of each radius (metres) pressed 1 mm into the palm; each sphere is its own object at the origin, held
    by ``copies`` identical rows (rows ordered by radius)."""
    from contactkit.geometry.normals import vertex_normals
    from contactkit.hands.anatomy import joint_frames, twist_splay_bend_to_pose
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.primitives import make_primitive

    frames = joint_frames(hand.rest_joints.double(), hand.side)
    comp = torch.zeros(1, 15, 3, dtype=torch.float64)
    comp[..., 2] = bend
    pose = twist_splay_bend_to_pose(comp, frames).float()
    z = hand.zero_params(1)
    with torch.no_grad():
        out = hand(z.global_orient, pose, z.betas, z.transl)
    palm = torch.as_tensor(hand.annotations.contact_zones["palm"])
    nrm = vertex_normals(out.vertices[0], hand.faces)
    n_palm = torch.nn.functional.normalize(nrm[palm].mean(0), dim=0)
    sets = []
    for r in radii:
        centre = out.vertices[0, palm].mean(0) + n_palm * (r - 0.001)
        sets.append(GraspSet.from_arrays(
            hand_model=hand.name, side=hand.side, global_orient=np.zeros((copies, 3)),
            hand_pose=pose.double().repeat(copies, 1).numpy(), betas=np.zeros((copies, hand.num_betas)),
            transl=(-centre).double().repeat(copies, 1).numpy(), objects=make_primitive("sphere", radius=r),
            num_betas=hand.num_betas,
        ))
    return sets[0] if len(sets) == 1 else GraspSet.concat(sets)

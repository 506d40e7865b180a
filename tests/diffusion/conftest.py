"""Shared fixtures of the JointDiffusion tests: OpenHand, small ground-truth sphere grasps, a tiny network config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contactkit.diffusion.model import JointDiffusionConfig


@pytest.fixture(scope="session")
def openhand():
    from contactkit.hands import load_hand

    return load_hand("openhand")


def sphere_grasps(hand, radii=(0.03, 0.035, 0.04), bend: float = 0.5):
    """Ground-truth grasps made by posing the hand (fingers flexed by ``bend`` rad per joint) around spheres of the
    given radii pressed 1 mm into the palm; one grasp per radius, each sphere its own object at the origin."""
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
            hand_model=hand.name, side="right", global_orient=np.zeros((1, 3)),
            hand_pose=pose.double().numpy(), betas=np.zeros((1, hand.num_betas)),
            transl=(-centre).double().unsqueeze(0).numpy(), objects=make_primitive("sphere", radius=r),
            num_betas=hand.num_betas,
        ))
    return GraspSet.concat(sets)


@pytest.fixture(scope="session")
def gt_grasps(openhand):
    return sphere_grasps(openhand)


@pytest.fixture
def tiny_config():
    """A small network (about 60 k parameters) for fast CPU tests; same structure as the default."""
    return JointDiffusionConfig(context_channels=2, base_channels=8, channel_mult=(1, 2, 4), attn_resolutions=(4,),
                                num_heads=2, context_tokens=4, contact_hidden=64, contact_blocks=2,
                                bottleneck_channels=4)

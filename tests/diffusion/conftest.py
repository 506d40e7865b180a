"""Shared fixtures of the JointDiffusion tests: OpenHand, small ground-truth sphere grasps, a tiny network config."""

from __future__ import annotations

import pytest
from tests.grasp_fixtures import posed_sphere_grasps

from contactkit.diffusion.model import JointDiffusionConfig


@pytest.fixture(scope="session")
def openhand():
    from contactkit.hands import load_hand

    return load_hand("openhand")


@pytest.fixture(scope="session")
def gt_grasps(openhand):
    return posed_sphere_grasps(openhand, radii=(0.03, 0.035, 0.04))


@pytest.fixture
def tiny_config():
    """A small network (about 60 k parameters) for fast CPU tests; same structure as the default."""
    return JointDiffusionConfig(context_channels=2, base_channels=8, channel_mult=(1, 2, 4), attn_resolutions=(4,),
                                num_heads=2, context_tokens=4, contact_hidden=64, contact_blocks=2,
                                bottleneck_channels=4)

"""contactkit.fit: from 3D keypoints to a grasp — hand inverse kinematics with the anatomy prior, rigid placement
of the object from its box corners, and the GraspSet they make together."""

from __future__ import annotations

from contactkit.fit.grasp import grasps_from_keypoints
from contactkit.fit.hand_ik import HandFit, IKSettings, fit_hand_to_keypoints
from contactkit.fit.rigid import RigidFit, rigid_fit

__all__ = ["HandFit", "IKSettings", "RigidFit", "fit_hand_to_keypoints", "grasps_from_keypoints", "rigid_fit"]

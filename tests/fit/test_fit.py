"""Fitting: Kabsch/Umeyama against a naive reference, hand IK recovering a known pose, grasps from keypoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contactkit.errors import ShapeError
from contactkit.fit import IKSettings, fit_hand_to_keypoints, grasps_from_keypoints, rigid_fit
from contactkit.fit.grasp import place_object
from contactkit.geometry.rotations import axis_angle_to_rotmat
from contactkit.hands import load_hand
from contactkit.hands.anatomy import _hand_rest_tips, joint_frames, natural_limits, twist_splay_bend_to_pose
from contactkit.objects import load_object
from contactkit.objects.library import object_box_corners


@pytest.fixture(scope="module")
def hand64():
    return load_hand("openhand", dtype=torch.float64)


def _naive_kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Textbook Kabsch on one pair (numpy), the reference for the batched torch version."""
    cs, cd = src.mean(0), dst.mean(0)
    h = (src - cs).T @ (dst - cd)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, cd - r @ cs


def test_rigid_fit_matches_naive_kabsch_and_recovers_exact_motions():
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(5, 8, 3, generator=gen, dtype=torch.float64)
    rot = axis_angle_to_rotmat(2.0 * torch.randn(5, 3, generator=gen, dtype=torch.float64))
    t = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    dst = src @ rot.transpose(1, 2) + t[:, None]
    exact = rigid_fit(src, dst)
    torch.testing.assert_close(exact.rotation, rot)
    torch.testing.assert_close(exact.translation, t)
    assert exact.rms.max() < 1e-12
    noisy = dst + 0.05 * torch.randn(dst.shape, generator=gen, dtype=torch.float64)
    fit = rigid_fit(src, noisy)
    for i in range(5):
        r, tt = _naive_kabsch(src[i].numpy(), noisy[i].numpy())
        np.testing.assert_allclose(fit.rotation[i].numpy(), r, atol=1e-10)
        np.testing.assert_allclose(fit.translation[i].numpy(), tt, atol=1e-10)
    # a reflection in the data still gives a proper rotation
    mirrored = src * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(torch.det(rigid_fit(src, mirrored).rotation), torch.ones(5, dtype=torch.float64))
    # similarity: scale 2 recovered
    sim = rigid_fit(src, 2.0 * dst, with_scale=True)
    torch.testing.assert_close(sim.scale, torch.full((5,), 2.0, dtype=torch.float64))
    with pytest.raises(ShapeError):
        rigid_fit(src[:, :2], dst[:, :2])


def test_ik_recovers_a_known_pose_from_its_own_keypoints(hand64):
    frames = joint_frames(hand64.rest_joints, hand64.side, rest_tips=_hand_rest_tips(hand64))
    lim = natural_limits()
    lo, hi = lim.lower.clamp(-1.0, 1.0), lim.upper.clamp(-1.0, 1.0)
    gen = torch.Generator().manual_seed(0)
    comp = lo + (0.1 + 0.8 * torch.rand(3, 15, 3, generator=gen, dtype=torch.float64)) * (hi - lo)  # inside
    pose = twist_splay_bend_to_pose(comp, frames)
    orient = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    transl = 0.1 * torch.randn(3, 3, generator=gen, dtype=torch.float64)
    true = hand64(orient, pose, None, transl)
    fit = fit_hand_to_keypoints(hand64, true.keypoints, settings=IKSettings(iterations=10))
    assert fit.error_mm.max() < 1.0
    posed = hand64(fit.global_orient, fit.hand_pose, None, fit.transl)
    torch.testing.assert_close(posed.keypoints, fit.keypoints)
    assert ((posed.keypoints - true.keypoints).norm(dim=-1).max() * 1000) < 1.0
    # what keypoints cannot see (twist about a bone) moves vertices a little; the anatomy prior bounds it
    assert ((posed.vertices - true.vertices).norm(dim=-1).mean(-1) * 1000).max() < 2.0


def test_object_placed_from_its_box_corners():
    mesh = load_object("cracker_box")
    box, _ = object_box_corners(mesh)
    rot = axis_angle_to_rotmat(torch.tensor([[0.3, -1.2, 0.5]], dtype=torch.float64))
    t = torch.tensor([[0.1, 0.0, 0.5]], dtype=torch.float64)
    corners = torch.as_tensor(box)[None] @ rot.transpose(1, 2) + t[:, None]
    r, tt, rms = place_object(corners, mesh)
    torch.testing.assert_close(r, rot)
    torch.testing.assert_close(tt, t)
    assert rms.item() < 1e-6


def test_grasps_from_keypoints_round_trip(hand64):
    mesh = load_object("box:extents=0.04/0.08/0.12")
    box = torch.as_tensor(object_box_corners(mesh)[0])
    gen = torch.Generator().manual_seed(1)
    pose = 0.2 * torch.randn(2, 45, generator=gen, dtype=torch.float64)
    orient = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    true = hand64(orient, pose, None, torch.zeros(2, 3, dtype=torch.float64))
    corners = box.expand(2, 8, 3) + torch.tensor([0.0, 0.05, 0.0], dtype=torch.float64)
    grasps = grasps_from_keypoints(hand64, true.keypoints, corners, [mesh, mesh], ik=IKSettings(iterations=10),
                                   reference_index=np.array([4, 7]), attrs={"reference": "gt.npz"})
    assert len(grasps) == 2 and list(grasps.objects) == [mesh.content_hash]
    np.testing.assert_allclose(grasps.object_translation, [[0.0, 0.05, 0.0]] * 2, atol=1e-9)
    np.testing.assert_allclose(grasps.object_rotation, np.eye(3)[None].repeat(2, 0), atol=1e-9)
    assert grasps.reference_index.tolist() == [4, 7]
    assert all(m["ik_error_mm"] < 2.0 and m["box_fit_rms_mm"] < 1e-6 for m in grasps.metadata)

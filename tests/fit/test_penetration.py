"""The fit stage's penetration cost: depths of a box (analytic), pose invariance, and IK keeping a hand out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contactkit.fit import IKSettings, fit_hand_to_keypoints, grasps_from_keypoints
from contactkit.fit.penetration import PenetrationCost
from contactkit.geometry.rotations import axis_angle_to_rotmat
from contactkit.hands import load_hand
from contactkit.objects import load_object
from contactkit.objects.library import object_box_corners

BOX = "box:extents=0.06/0.08/0.10"


@pytest.fixture(scope="module")
def hand64():
    return load_hand("openhand", dtype=torch.float64)


def test_depth_inside_a_box_is_the_distance_to_its_nearest_face_in_any_pose():
    mesh = load_object(BOX)
    # object-frame points: 5 mm and 12 mm under the +x face, 3 mm under the -z face, 4 mm outside
    local = torch.tensor([[[0.025, 0.0, 0.0], [0.018, 0.01, -0.01], [0.0, 0.0, -0.047], [0.034, 0.0, 0.0]]],
                         dtype=torch.float64)
    rot = axis_angle_to_rotmat(torch.tensor([[0.4, -0.9, 0.2]], dtype=torch.float64))
    t = torch.tensor([[0.1, -0.05, 0.4]], dtype=torch.float64)
    cost = PenetrationCost([mesh], rot, t)
    world = local @ rot.transpose(1, 2) + t[:, None]
    depth = cost.depth(world)[0].numpy()
    np.testing.assert_allclose(depth, [0.005, 0.012, 0.003, 0.0], atol=2e-4)  # grid interpolation
    np.testing.assert_allclose(cost(world).item(), 1e6 * (depth ** 2).sum(), rtol=1e-9)


def test_gradient_pushes_a_vertex_out_through_the_nearest_face():
    mesh = load_object(BOX)
    cost = PenetrationCost([mesh], torch.eye(3, dtype=torch.float64)[None], torch.zeros(1, 3, dtype=torch.float64))
    pts = torch.tensor([[[0.025, 0.001, 0.002]]], dtype=torch.float64, requires_grad=True)
    cost(pts).sum().backward()
    g = pts.grad[0, 0]
    assert g[0] < 0 and abs(g[0]) > 10 * g[1:].abs().max()  # descent moves it along +x, out of the face
    # a naive finite difference agrees with the analytic gradient
    eps = 1e-6
    step = torch.tensor([[[eps, 0.0, 0.0]]], dtype=torch.float64)
    with torch.no_grad():
        fd = (cost(pts + step) - cost(pts - step)).item() / (2 * eps)
    assert fd == pytest.approx(g[0].item(), rel=1e-3)


def test_ik_with_the_penetration_term_keeps_the_hand_out_of_the_placed_box(hand64):
    mesh = load_object(BOX)
    gen = torch.Generator().manual_seed(3)
    pose = 0.15 * torch.randn(1, 45, generator=gen, dtype=torch.float64)
    true = hand64(torch.zeros(1, 3, dtype=torch.float64), pose, None, torch.zeros(1, 3, dtype=torch.float64))
    # the box sits across the palm, so fitting the keypoints alone puts the hand inside it
    centre = true.keypoints[:, [0, 5, 9, 13, 17]].mean(1)
    corners = torch.as_tensor(object_box_corners(mesh)[0])[None] + centre[:, None]
    plain = grasps_from_keypoints(hand64, true.keypoints, corners, [mesh], ik=IKSettings(iterations=30))
    kept = grasps_from_keypoints(hand64, true.keypoints, corners, [mesh],
                                 ik=IKSettings(iterations=30, penetration_weight=10.0))
    cost = PenetrationCost([mesh], torch.tensor(kept.object_rotation), torch.tensor(kept.object_translation))

    def max_depth_mm(g) -> float:
        t = g.hand_tensors(dtype=torch.float64)
        verts = hand64(t["global_orient"], t["hand_pose"], None, t["transl"]).vertices
        return float(cost.depth(verts).max()) * 1000.0

    before, after = max_depth_mm(plain), max_depth_mm(kept)
    assert before > 20.0 and after < 0.2 * before  # (25 mm -> 3 mm)
    assert plain.metadata[0]["ik_error_mm"] < 1.0 < kept.metadata[0]["ik_error_mm"]  # the box moved the hand


def test_the_cost_is_off_by_default_and_needs_matching_poses(hand64):
    mesh = load_object(BOX)
    with pytest.raises(Exception, match="rotation"):
        PenetrationCost([mesh, mesh], torch.eye(3)[None], torch.zeros(1, 3))
    assert IKSettings().penetration_weight == 0.0
    kp = hand64(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 45, dtype=torch.float64)).keypoints
    fit = fit_hand_to_keypoints(hand64, kp, settings=IKSettings(iterations=5),
                                penetration=lambda v: torch.full(v.shape[:1], float("nan"), dtype=v.dtype))
    assert fit.error_mm.item() < 1.0  # weight 0: the given cost is not evaluated into the energy

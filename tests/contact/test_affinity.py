"""Physical affinity loss (paper 003)."""

import math

import pytest
import torch

from contactkit.contact.affinity import box_corners, physical_affinity_loss, support_points
from contactkit.errors import ShapeError


def _box(half=(0.03, 0.03, 0.05)):
    h = torch.tensor(half, dtype=torch.float64)
    pts = torch.stack([torch.tensor([sx, sy, sz], dtype=torch.float64) * h
                       for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])[None]
    return box_corners(pts)


def _keypoints(contacts):
    """21 keypoints: the given contact points, the rest far away (out of eta * L)."""
    kp = torch.full((1, 21, 3), 1.0, dtype=torch.float64)
    if contacts:
        kp[0, 21 - len(contacts):] = torch.tensor(contacts, dtype=torch.float64)
    kp[0, : 21 - len(contacts)] += torch.arange(21 - len(contacts), dtype=torch.float64)[:, None]
    return kp


def test_box_corners_order():
    c = _box()
    assert c.shape == (1, 8, 3)
    assert c[0, 0].tolist() == [-0.03, -0.03, -0.05]
    assert c[0, 7].tolist() == [0.03, 0.03, 0.05]
    assert c[0, 1].tolist() == [0.03, -0.03, -0.05]


def test_opposite_contacts_give_minus_one_and_same_side_plus_one():
    c = _box()
    opposite = _keypoints([[0.032, 0.0, 0.0], [-0.032, 0.0, 0.0]])
    assert physical_affinity_loss(opposite, c).item() == pytest.approx(-1.0)
    same = _keypoints([[0.032, 0.0, 0.01], [0.032, 0.0, -0.01]])
    assert physical_affinity_loss(same, c).item() == pytest.approx(1.0)
    ring = _keypoints([[0.032 * math.cos(a), 0.032 * math.sin(a), 0.0] for a in (0.0, 2.1, 4.2)])
    assert physical_affinity_loss(ring, c).item() < -0.3
    far = _keypoints([])
    assert physical_affinity_loss(far, c).item() == 0.0  # no valid contacts


def test_sampled_faces_match_exact_projection_on_grid_points():
    c = _box()
    kp = _keypoints([[0.04, 0.015, 0.025], [0.0, -0.04, -0.05]])
    d_exact, s_exact = support_points(kp, c)
    d_samp, s_samp = support_points(kp, c, face_samples=5)
    # both keypoints project on grid nodes of the 5 x 5 sampling
    torch.testing.assert_close(d_exact[0, -2:], d_samp[0, -2:])
    torch.testing.assert_close(s_exact[0, -2:], s_samp[0, -2:])
    with pytest.raises(ShapeError, match="face_samples must be >= 2"):
        support_points(kp, c, face_samples=1)


def test_gradcheck_and_rigid_invariance():
    c = _box()
    kp = _keypoints([[0.033, 0.004, 0.01], [-0.031, 0.012, -0.02], [0.005, 0.034, 0.0]]).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda k: physical_affinity_loss(k, c), (kp,), eps=1e-8, atol=1e-6)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    t = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    moved = physical_affinity_loss(kp.detach() @ q.T + t, c @ q.T + t)
    torch.testing.assert_close(moved, physical_affinity_loss(kp.detach(), c))


def test_keypoint_contact_term_against_a_naive_loop_and_its_gradient():
    from contactkit.contact.affinity import KeypointContactTerm
    from contactkit.contact.terms import HandObjectState

    g = torch.Generator().manual_seed(0)
    kp = torch.randn(2, 21, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    pts = torch.randn(2, 50, 3, generator=g, dtype=torch.float64)
    state = HandObjectState(hand_verts=kp.detach(), keypoints=kp, obj_points=pts, obj_normals=pts)
    got = KeypointContactTerm()(state)
    naive = [sum(min(float((kp[b, i] - pts[b, j]).norm()) for j in range(50)) for i in range(21)) / 21
             for b in range(2)]
    assert got.tolist() == pytest.approx(naive, rel=1e-12)
    # analytic: a keypoint 3 cm above the only point on its line has distance 0.03, and the gradient of the mean
    # moves each keypoint straight toward its nearest point with norm 1/21
    (grad,) = torch.autograd.grad(got.sum(), kp)
    near = pts[0][torch.cdist(kp[0].detach(), pts[0]).argmin(-1)]
    unit = (kp[0].detach() - near) / (kp[0].detach() - near).norm(dim=-1, keepdim=True)
    torch.testing.assert_close(grad[0], unit / 21)

"""ObMan contact loss (paper 001): repulsion, attraction, balance."""

import math

import pytest
import torch

from contactkit.contact.obman import attraction_loss, contact_loss, penalize, repulsion_loss, zone_mask
from contactkit.errors import ShapeError


def _sphere_sdf(points: torch.Tensor, radius: float = 0.04) -> torch.Tensor:
    return points.norm(dim=-1) - radius


def test_vertex_5mm_inside_sphere_repulsion():
    v = torch.tensor([[[0.035, 0.0, 0.0], [0.05, 0.0, 0.0]]], dtype=torch.float64)
    sdf = _sphere_sdf(v)
    got = repulsion_loss(sdf)
    assert got.item() == pytest.approx(0.02 * math.tanh(0.005 / 0.02), rel=1e-12)


def test_attraction_uses_closest_exterior_vertex_of_each_zone():
    sdf = torch.tensor([[0.004, 0.012, -0.003, 0.030]], dtype=torch.float64)
    zones = torch.tensor([[True, True, False, False], [False, False, True, True], [False, False, True, False]])
    got = attraction_loss(sdf, zones)
    # zone 0: min(4, 12) mm; zone 1: only vertex 3 is outside (30 mm); zone 2: no exterior vertex -> 0
    expected = 0.01 * math.tanh(0.4) + 0.01 * math.tanh(3.0)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ShapeError, match=r"zones must have shape \(Z, V\) or \(B, Z, V\)"):
        attraction_loss(sdf, zones[:, :3])


def test_contact_loss_balance_and_zone_mask():
    sdf = torch.tensor([[-0.005, 0.004]], dtype=torch.float64)
    zones = zone_mask({"a": [1]}, 2)
    assert zones.tolist() == [[False, True]]
    full = contact_loss(sdf, zones, lambda_r=0.25)
    expected = 0.25 * penalize(torch.tensor(0.005), 0.02) + 0.75 * penalize(torch.tensor(0.004), 0.01)
    assert full.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ShapeError, match="lambda_r must lie in"):
        contact_loss(sdf, zones, lambda_r=1.5)


def test_gradcheck_obman():
    sdf = torch.tensor([[-0.004, 0.006, 0.011, -0.02]], dtype=torch.float64, requires_grad=True)
    zones = torch.tensor([[True, True, False, False], [False, False, True, True]])
    assert torch.autograd.gradcheck(lambda s: contact_loss(s, zones), (sdf,), eps=1e-8, atol=1e-7)


def test_rigid_motion_invariance_of_box_repulsion():
    """Hand vertices partly inside an anisotropic box; moving both by one rigid motion keeps the repulsion, with
    the exact mesh SDF of the moved box (a rotation-variant distance, unlike a centred sphere's)."""
    from contactkit.geometry import signed_distance
    from contactkit.objects.primitives import make_primitive

    box = make_primitive("box", extents=(0.06, 0.02, 0.1))
    verts = torch.as_tensor(box.vertices)
    faces = torch.as_tensor(box.faces)
    g = torch.Generator().manual_seed(0)
    v = (torch.rand(1, 40, 3, generator=g, dtype=torch.float64) - 0.5) * torch.tensor([0.1, 0.04, 0.14])
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    t = torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64)
    before = repulsion_loss(signed_distance(v, verts, faces, closed=True))
    after = repulsion_loss(signed_distance(v @ q.T + t, verts @ q.T + t, faces, closed=True))
    assert before.item() > 0.0
    torch.testing.assert_close(after, before)
    # the box is not rotation-invariant: rotating the hand alone changes the loss
    alone = repulsion_loss(signed_distance(v @ q.T, verts, faces, closed=True))
    assert abs(alone.item() - before.item()) > 1e-3 * before.item()


def test_hand_supervision_known_value_and_translation_invariance():
    from contactkit.contact.obman import hand_supervision_loss

    g = torch.Generator().manual_seed(1)
    ref_v = torch.randn(2, 30, 3, generator=g, dtype=torch.float64) * 0.05
    ref_k = torch.randn(2, 21, 3, generator=g, dtype=torch.float64) * 0.05
    assert hand_supervision_loss(ref_v, ref_k, ref_v, ref_k).abs().max().item() == 0.0
    # a common translation of the hand is invisible (root-relative supervision)
    shift = torch.tensor([0.03, -0.05, 0.01], dtype=torch.float64)
    assert hand_supervision_loss(ref_v + shift, ref_k + shift, ref_v, ref_k).abs().max().item() < 1e-18
    # moving every vertex by 2 mm along x and the non-root keypoints by 1 mm: 4 + 1 * 20/21 mm^2
    k = ref_k.clone()
    k[:, 1:, 0] += 0.001
    got = hand_supervision_loss(ref_v + torch.tensor([0.002, 0.0, 0.0], dtype=torch.float64), k, ref_v, ref_k)
    torch.testing.assert_close(got, torch.full((2,), 4.0 + 20.0 / 21.0, dtype=torch.float64))
    with pytest.raises(ShapeError, match="must match"):
        hand_supervision_loss(ref_v[:, :5], ref_k, ref_v, ref_k)

"""DiffContact (paper 000): capsule distances, contact maps, asymmetric loss, penetration."""

import math

import pytest
import torch

from contactkit.contact.diffcontact import (
    C_RAD,
    HandContactTerm,
    ObjectContactTerm,
    SDFPenetrationTerm,
    asymmetric_contact_loss,
    capsule_contact,
    capsule_distance,
    hand_contact_from_sdf,
    hand_contact_map,
    object_contact_map,
    penetration_along_normals,
    penetration_from_sdf,
)
from contactkit.contact.terms import HandObjectState, Objective
from contactkit.errors import ShapeError


def _plane(n: int = 21, size: float = 0.02, dtype=torch.float64):
    """Grid of points on z = 0 with normals +z, (1, n*n, 3)."""
    t = torch.linspace(-size / 2, size / 2, n, dtype=dtype)
    gx, gy = torch.meshgrid(t, t, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1), torch.zeros(n * n, dtype=dtype)], -1)[None]
    nrm = torch.zeros_like(pts)
    nrm[..., 2] = 1.0
    return pts, nrm


def _random_rigid(seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=dtype))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q, torch.randn(3, generator=g, dtype=dtype) * 0.1


def test_capsule_distance_analytic():
    c = torch.zeros(1, 3, dtype=torch.float64)
    n = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    # above the top end: distance to the top end point (0, 0, 0.5 mm)
    x = torch.tensor([[0.0, 0.0, 3e-3]], dtype=torch.float64)
    assert capsule_distance(x, c, n).item() == pytest.approx(2.5e-3, abs=1e-12)
    # beside the segment: pure radial distance
    x = torch.tensor([[2e-3, 0.0, -0.5e-3]], dtype=torch.float64)
    assert capsule_distance(x, c, n).item() == pytest.approx(2e-3, abs=1e-12)
    # below the bottom end (1 mm inside)
    x = torch.tensor([[0.0, 3e-3, -5e-3]], dtype=torch.float64)
    assert capsule_distance(x, c, n).item() == pytest.approx(math.hypot(3e-3, 4e-3), abs=1e-12)


def test_fingertip_1mm_from_plane_is_in_full_contact():
    pts, nrm = _plane()
    tip = torch.tensor([[[0.001, -0.002, 1e-3]]], dtype=torch.float64)  # 1 mm above the plane
    hand_c = hand_contact_map(tip, pts, nrm)
    assert hand_c.item() == 1.0
    assert hand_contact_from_sdf(torch.tensor([[1e-3]])).item() == 1.0
    obj_c = object_contact_map(tip, pts, nrm)
    # the object point right under the fingertip is in full contact
    under = ((pts[0, :, :2] - tip[0, 0, :2]).norm(dim=-1)).argmin()
    assert obj_c[0, under].item() == 1.0


def test_contact_falls_off_as_c_rad_over_phi():
    sdf = torch.tensor([[3e-3, -5e-3, 1.5e-3, -2e-3]], dtype=torch.float64)
    got = hand_contact_from_sdf(sdf)
    expected = torch.tensor([[C_RAD / 2.5e-3, C_RAD / 4e-3, 1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(got, expected)
    assert capsule_contact(torch.tensor([0.0])).item() == 1.0


def test_object_contact_map_matches_naive_reference():
    g = torch.Generator().manual_seed(0)
    hand = torch.randn(2, 30, 3, generator=g, dtype=torch.float64) * 0.01
    pts = torch.randn(2, 40, 3, generator=g, dtype=torch.float64) * 0.01
    nrm = torch.nn.functional.normalize(torch.randn(2, 40, 3, generator=g, dtype=torch.float64), dim=-1)
    got = object_contact_map(hand, pts, nrm)
    idx = torch.cdist(pts, hand).argmin(-1)
    naive = torch.empty(2, 40, dtype=torch.float64)
    for b in range(2):
        for i in range(40):
            x = hand[b, idx[b, i]]
            rel = x - pts[b, i]
            a = float((rel @ nrm[b, i]).clamp(-1e-3, 0.5e-3))
            phi = (rel - a * nrm[b, i]).norm()
            naive[b, i] = min(1.0, C_RAD / float(phi))
    torch.testing.assert_close(got, naive)


def test_asymmetric_loss_weights_missing_contact():
    pred = torch.tensor([[0.2, 0.9]])
    target = torch.tensor([[0.6, 0.5]])
    # missing contact 0.4 * 3, unexpected 0.4 * 1, mean over 2 points
    assert asymmetric_contact_loss(pred, target).item() == pytest.approx((1.2 + 0.4) / 2)
    mask = torch.tensor([[True, False]])
    assert asymmetric_contact_loss(pred, target, mask=mask).item() == pytest.approx(1.2)
    with pytest.raises(ShapeError, match=r"pred and target must both have shape \(B, N\)"):
        asymmetric_contact_loss(pred, target[:, :1])


def test_penetration_terms():
    sdf = torch.tensor([[-1e-3, -5e-3, 2e-3, -2e-3]])
    assert penetration_from_sdf(sdf).item() == pytest.approx(3e-3)
    pts, nrm = _plane(3)
    hand = pts.clone()
    hand[..., 2] = -4e-3  # 4 mm below each point
    assert penetration_along_normals(pts, nrm, hand).item() == pytest.approx(9 * 2e-3)


def test_gradcheck_contact_maps():
    g = torch.Generator().manual_seed(1)
    hand = (torch.randn(1, 6, 3, generator=g, dtype=torch.float64) * 3e-3).requires_grad_(True)
    pts = torch.randn(1, 5, 3, generator=g, dtype=torch.float64) * 3e-3
    nrm = torch.nn.functional.normalize(torch.randn(1, 5, 3, generator=g, dtype=torch.float64), dim=-1)
    idx_o = torch.cdist(pts, hand.detach()).argmin(-1)
    idx_h = torch.cdist(hand.detach(), pts).argmin(-1)
    assert torch.autograd.gradcheck(
        lambda h: object_contact_map(h, pts, nrm, nearest_idx=idx_o), (hand,), eps=1e-7, atol=1e-5
    )
    assert torch.autograd.gradcheck(
        lambda h: hand_contact_map(h, pts, nrm, nearest_idx=idx_h), (hand,), eps=1e-7, atol=1e-5
    )
    sdf = torch.tensor([[4e-3, -6e-3, 2.7e-3, -3.5e-3]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(hand_contact_from_sdf, (sdf,), eps=1e-8, atol=1e-5)
    assert torch.autograd.gradcheck(penetration_from_sdf, (sdf,), eps=1e-8, atol=1e-6)


def test_contact_maps_invariant_under_common_rigid_motion():
    g = torch.Generator().manual_seed(2)
    hand = torch.randn(1, 50, 3, generator=g, dtype=torch.float64) * 0.01
    pts = torch.randn(1, 60, 3, generator=g, dtype=torch.float64) * 0.01
    nrm = torch.nn.functional.normalize(torch.randn(1, 60, 3, generator=g, dtype=torch.float64), dim=-1)
    rot, t = _random_rigid(3)
    move = lambda x: x @ rot.T + t  # noqa: E731
    torch.testing.assert_close(
        object_contact_map(hand, pts, nrm), object_contact_map(move(hand), move(pts), nrm @ rot.T)
    )
    torch.testing.assert_close(
        hand_contact_map(hand, pts, nrm), hand_contact_map(move(hand), move(pts), nrm @ rot.T)
    )


def test_terms_in_objective():
    pts, nrm = _plane(5)
    hand = pts[:, :7].clone()
    hand[..., 2] = 1e-3
    sdf = hand[..., 2].clone()
    state = HandObjectState(
        hand_verts=hand, keypoints=hand[:, :1].expand(1, 21, 3).contiguous(), obj_points=pts, obj_normals=nrm,
        hand_sdf=sdf,
    )
    obj_target = object_contact_map(hand, pts, nrm)
    terms = [
        ObjectContactTerm(obj_target),
        HandContactTerm(torch.ones(1, 7, dtype=torch.float64)),
        SDFPenetrationTerm(weight=10.0),
    ]
    value = Objective(terms).evaluate(state)
    assert value.total.shape == (1,)
    assert value.total.item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ShapeError, match="hand contact target must have shape"):
        HandContactTerm(torch.ones(1, 3, dtype=torch.float64))(state)


def test_row_gather_equals_its_naive_twin():
    from contactkit.contact.diffcontact import _gather

    g = torch.Generator().manual_seed(5)
    for dtype in (torch.float32, torch.float64):
        pts = torch.randn(4, 30, 3, generator=g, dtype=torch.float64).to(dtype)
        idx = torch.randint(0, 30, (4, 50), generator=g)
        fast_in, ref_in = pts.clone().requires_grad_(), pts.clone().requires_grad_()
        fast = _gather(fast_in, idx)
        ref = torch.gather(ref_in, 1, idx.unsqueeze(-1).expand(-1, -1, 3))
        assert torch.equal(fast, ref)
        w = torch.randn(fast.shape, generator=g, dtype=torch.float64).to(dtype)
        (fast * w).sum().backward()
        (ref * w).sum().backward()
        torch.testing.assert_close(fast_in.grad, ref_in.grad, atol=1e-6, rtol=0)


def test_state_anchors_computed_on_first_use_only():
    verts = torch.randn(2, 40, 3, dtype=torch.float64)
    calls = []

    def anchor_fn(v):
        calls.append(1)
        return v[:, :32] * 2.0

    state = HandObjectState(hand_verts=verts, keypoints=verts[:, :21], obj_points=verts, obj_normals=verts,
                            anchor_fn=anchor_fn)
    assert state.anchors is None and not calls
    torch.testing.assert_close(state.require_anchors("t"), verts[:, :32] * 2.0, atol=0, rtol=0)
    state.require_anchors("t")
    assert len(calls) == 1
    with pytest.raises(ShapeError, match="anchors"):
        HandObjectState(hand_verts=verts, keypoints=verts[:, :21], obj_points=verts,
                        obj_normals=verts).require_anchors("t")


def _contact_case(seed: int, dtype, b: int = 6, v: int = 200, p: int = 300):
    """Hand vertices, object samples and normals, pairs and targets covering every branch of the contact loss:
    pairs inside the capsules (contact 1), on both sides of the segment, far away, and exactly on the surface."""
    g = torch.Generator().manual_seed(seed)
    pts = (torch.randn(b, p, 3, generator=g, dtype=torch.float64) * 0.03).to(dtype)
    nrm = torch.nn.functional.normalize(torch.randn(b, p, 3, generator=g, dtype=torch.float64), dim=-1).to(dtype)
    verts = (torch.randn(b, v, 3, generator=g, dtype=torch.float64) * 0.03).to(dtype)
    near = torch.rand(b, 60, 1, generator=g, dtype=torch.float64).to(dtype) * 4e-3 - 2e-3
    verts[:, :60] = pts[:, :60] + near * nrm[:, :60]
    verts[:, 60] = pts[:, 60]  # exactly on the surface
    idx = torch.randint(0, v, (b, p), generator=g)
    idx[:, :61] = torch.arange(61)
    target = (torch.rand(b, p, generator=g, dtype=torch.float64) > 0.6).to(dtype)
    target = target * torch.rand(b, p, generator=g, dtype=torch.float64).to(dtype)
    weights = torch.randn(b, generator=g, dtype=torch.float64).to(dtype)
    return verts, pts, nrm, idx, target, weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_object_contact_loss_equals_the_composition(dtype):
    """Values and gradients bitwise equal to object_contact_map + asymmetric_contact_loss (their naive twin)."""
    from contactkit.contact.diffcontact import object_contact_loss

    for seed in range(4):
        verts, pts, nrm, idx, target, w = _contact_case(seed, dtype)
        fast_in, ref_in = verts.clone().requires_grad_(), verts.clone().requires_grad_()
        fast = object_contact_loss(fast_in, pts, nrm, target, idx, missing_weight=2.5)
        ref = asymmetric_contact_loss(object_contact_map(ref_in, pts, nrm, nearest_idx=idx), target,
                                      missing_weight=2.5)
        assert torch.equal(fast, ref)
        (fast * w).sum().backward()
        (ref * w).sum().backward()
        assert torch.equal(fast_in.grad, ref_in.grad)
        assert fast_in.grad.is_contiguous()


def test_fused_object_contact_loss_composes_when_the_object_needs_a_gradient():
    from contactkit.contact.diffcontact import object_contact_loss

    verts, pts, nrm, idx, target, _ = _contact_case(7, torch.float64)
    pts.requires_grad_()
    object_contact_loss(verts, pts, nrm, target, idx).sum().backward()
    ref = torch.autograd.grad(asymmetric_contact_loss(object_contact_map(verts, pts, nrm, nearest_idx=idx),
                                                      target).sum(), pts)[0]
    assert torch.equal(pts.grad, ref)
    with pytest.raises(ShapeError, match="nearest_idx"):
        object_contact_loss(verts, pts, nrm, target, idx[:, :5])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_hand_contact_loss_equals_the_composition(dtype):
    """Values and gradients bitwise equal to hand_contact_from_sdf + asymmetric_contact_loss, also at the
    branch points (sdf = 0, c_top, -c_bot, c_top + c_rad)."""
    from contactkit.contact.diffcontact import C_BOT, C_TOP, hand_contact_loss

    g = torch.Generator().manual_seed(3)
    sdf = (torch.randn(5, 400, generator=g, dtype=torch.float64) * 3e-3).to(dtype)
    sdf[0, :6] = torch.tensor([0.0, C_TOP, -C_BOT, C_TOP + C_RAD, -C_BOT - C_RAD, -0.0], dtype=dtype)
    target = (torch.rand(5, 400, generator=g, dtype=torch.float64) > 0.5).to(dtype)
    target = target * torch.rand(5, 400, generator=g, dtype=torch.float64).to(dtype)
    w = torch.randn(5, generator=g, dtype=torch.float64).to(dtype)
    fast_in, ref_in = sdf.clone().requires_grad_(), sdf.clone().requires_grad_()
    fast = hand_contact_loss(fast_in, target)
    ref = asymmetric_contact_loss(hand_contact_from_sdf(ref_in), target)
    assert torch.equal(fast, ref)
    (fast * w).sum().backward()
    (ref * w).sum().backward()
    assert torch.equal(fast_in.grad, ref_in.grad)


def test_neighbour_cache_searches_in_a_kept_morton_order():
    """The object-to-hand search walks the object points in their Morton order, computed once per shape; the
    indices are those of the plain search."""
    from contactkit.contact.diffcontact import _cached_nearest, nearest_index
    from contactkit.contact.terms import NeighbourCache
    from contactkit.geometry.knn import spatial_order

    g = torch.Generator().manual_seed(9)
    obj = torch.randn(2, 3000, 3, generator=g, dtype=torch.float32) * 0.05
    hand = torch.randn(2, 200, 3, generator=g, dtype=torch.float32) * 0.05
    cache = NeighbourCache(refresh_every=1)
    idx = _cached_nearest(cache, "object_to_hand", obj, hand)
    assert torch.equal(idx, nearest_index(obj, hand))
    kept = cache.query_order("object_to_hand", obj)
    assert torch.equal(kept, spatial_order(obj))
    cache.step()
    moved = obj + 0.01  # the kept order serves moved points (any order gives the same indices)
    assert torch.equal(_cached_nearest(cache, "object_to_hand", moved, hand), nearest_index(moved, hand))
    assert cache.query_order("object_to_hand", moved) is kept
    cache.step()
    fewer = obj[:, :100]
    assert torch.equal(_cached_nearest(cache, "object_to_hand", fewer, hand), nearest_index(fewer, hand))
    assert cache.query_order("object_to_hand", fewer).shape == (2, 100)


def test_pair_gather_index_addresses_the_paired_coordinates():
    """Entry (c, b, i) of the gather index is coordinate c of hand vertex nearest_idx[b, i] in the flattened
    (B, V, 3) hand (the naive triple loop)."""
    from contactkit.contact.diffcontact import pair_gather_index

    verts, _, _, idx, _, _ = _contact_case(3, torch.float64, b=3, v=80, p=70)
    flat = pair_gather_index(idx, 80).view(3, 3, 70)
    for c in range(3):
        for b in range(3):
            for i in range(70):
                assert verts.reshape(-1)[flat[c, b, i]] == verts[b, idx[b, i], c]
                assert flat[c, b, i] == 3 * (80 * b + idx[b, i]) + c


def test_object_term_keeps_its_gather_index_between_refreshes():
    """The term's kept gather index follows the neighbour cache: each call equals the loss on the cache's pairs
    (values and gradients), before and after a refresh that changes them."""
    from contactkit.contact.diffcontact import object_contact_loss
    from contactkit.contact.terms import NeighbourCache

    verts, pts, nrm, _, target, _ = _contact_case(5, torch.float32)
    term = ObjectContactTerm(target)
    cache = NeighbourCache(refresh_every=2)
    kept = []
    for step in range(5):
        moved = (verts + 0.004 * step).requires_grad_()
        state = HandObjectState(hand_verts=moved, keypoints=moved[:, :21], obj_points=pts, obj_normals=nrm,
                                cache=cache)
        fast = term(state)
        idx = cache.get("object_to_hand", lambda: None)  # type: ignore[arg-type,return-value]
        kept.append(idx)
        ref_in = moved.detach().clone().requires_grad_()
        ref = object_contact_loss(ref_in, pts, nrm, target, idx)
        assert torch.equal(fast, ref)
        fast.sum().backward()
        ref.sum().backward()
        assert torch.equal(moved.grad, ref_in.grad)
        cache.step()
    assert kept[0] is kept[1] and kept[2] is not kept[1] and not torch.equal(kept[2], kept[1])

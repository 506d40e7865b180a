"""Synthesis's closing runs through the refiner: it equals a hand-written Adam loop of the same loss (the naive
reference), and the attraction distance follows its annealing schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contactkit.contact.obman import attraction_loss, repulsion_loss, zone_mask
from contactkit.geometry.rotations import axis_angle_to_rotmat
from contactkit.hands import load_hand
from contactkit.hands.anatomy import anatomy_cost, palm_normal
from contactkit.objects import load_object
from contactkit.synth.closing import (
    ClosingAttractionTerm,
    approach_init,
    close_hand,
    palmar_parts,
)
from contactkit.synth.synthesis import SynthesisConfig


def _reference_closing(hand, obj, cfg, rng, dtype):
    """The closing optimisation written out as its own Adam loop (synthesis before it became a preset), keeping
    each candidate's best iterate as the refiner does."""
    init, n0 = approach_init(hand, obj, cfg, rng, dtype)
    comps = hand.pca_components.to(dtype)[: cfg.n_pca]
    n_palm = palm_normal(hand.rest_joints.to(dtype), hand.side)
    zmask = zone_mask(dict(hand.annotations.contact_zones.items()), hand.num_verts)
    palmar = torch.as_tensor(np.asarray(hand.annotations.palmar_mask), dtype=torch.bool)
    grid = obj.sdf_grid(cfg.sdf_resolution).to(dtype=dtype)
    part = palmar_parts(hand)

    def balance(verts, sdf):  # ContactBalanceTerm, one part at a time
        net, total = 0.0, 0.0
        for r in range(6):
            sd, pts = sdf[:, part == r], verts[:, part == r]
            grad = torch.stack([grid.sample(pts + e) - grid.sample(pts - e) for e in torch.eye(3, dtype=dtype) * 0.002],
                               -1)
            nrm = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-9)
            w = torch.exp(-(sd + cfg.squeeze_m).clamp_min(0.0) / cfg.balance_sigma_m)
            c = torch.tanh(w.sum(1) / 5.0)
            net = net + c[:, None] * (w[..., None] * nrm).sum(1) / (w.sum(1)[:, None] + 1e-9)
            total = total + c
        net = net / (total[:, None] + 1e-9)
        return (net * net).sum(-1)

    orient = init["global_orient"].clone().requires_grad_(True)
    transl = init["transl"].clone().requires_grad_(True)
    coeffs = (init["hand_pose"] @ comps.T).clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [orient], "lr": cfg.lr_orient}, {"params": [transl], "lr": cfg.lr_transl},
                            {"params": [coeffs], "lr": cfg.lr_pose}])
    best_loss = torch.full((cfg.batch_size,), float("inf"), dtype=dtype)
    best = {}

    def loss_at(it):
        frac = min(1.0, it / max(1, cfg.iterations - 1))
        a_now = cfg.attraction_a_start_m * (cfg.attraction_a_end_m / cfg.attraction_a_start_m) ** frac
        pose = coeffs @ comps
        verts = hand(orient, pose, None, transl).vertices
        sdf = grid.sample(verts)
        palm_dir = torch.einsum("kij,j->ki", axis_angle_to_rotmat(orient), n_palm)
        gap = (sdf[:, palmar] + cfg.squeeze_m).clamp_min(0.0)
        loss = (cfg.w_attraction * attraction_loss(sdf + cfg.squeeze_m, zmask, a=a_now)
                + cfg.w_repulsion * repulsion_loss(sdf) + cfg.w_anatomy * anatomy_cost(hand, pose)
                + cfg.w_palm * (1.0 + (palm_dir * n0).sum(-1)) + cfg.w_reg * (coeffs * coeffs).sum(-1)
                + cfg.w_cover * (cfg.cover_a_m * torch.tanh(gap / cfg.cover_a_m)).mean(-1)
                + cfg.w_balance * balance(verts, sdf))
        # keep each candidate's best iterate
        better = loss.detach() < best_loss
        best_loss[better] = loss.detach()[better]
        for key, v in (("global_orient", orient), ("hand_pose", pose), ("transl", transl)):
            cur = v.detach().clone()
            best[key] = cur if key not in best else torch.where(better[:, None], cur, best[key])
        return loss

    for it in range(cfg.iterations):
        opt.zero_grad()
        loss_at(it).sum().backward()
        opt.step()
    with torch.no_grad():
        loss_at(cfg.iterations)
    return best


@pytest.mark.parametrize("obj_spec", ["box", "sphere:radius=0.04"])
def test_refiner_preset_equals_the_handwritten_loop(obj_spec):
    hand = load_hand("openhand", dtype=torch.float64)
    obj = load_object(obj_spec)
    cfg = SynthesisConfig(batch_size=3, iterations=12, sdf_resolution=32, w_balance=0.3)
    ref = _reference_closing(hand, obj, cfg, np.random.Generator(np.random.PCG64([0, 0])), torch.float64)
    got = close_hand(hand, obj, cfg, np.random.Generator(np.random.PCG64([0, 0])), torch.float64)
    for key in ("global_orient", "hand_pose", "transl"):
        np.testing.assert_allclose(got[key].numpy(), ref[key].numpy(), atol=1e-9)
    verts = hand(got["global_orient"], got["hand_pose"], None, got["transl"]).vertices
    np.testing.assert_allclose(got["vertices"].numpy(), verts.detach().numpy(), atol=1e-12)


def test_attraction_distance_is_annealed_geometrically():
    term = ClosingAttractionTerm(torch.zeros(1, 4, dtype=torch.bool), 11, 0.05, 0.01, 0.001)
    assert term.distance(0) == pytest.approx(0.05)
    assert term.distance(5) == pytest.approx((0.05 * 0.01) ** 0.5)
    assert term.distance(10) == pytest.approx(0.01)
    assert term.distance(50) == pytest.approx(0.01)  # held after the schedule (the refiner's final evaluation)


def _box_corners(extents):
    a = np.asarray(extents) / 2.0
    return np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * a


def test_tangent_widths_of_a_box_are_its_support_widths_and_match_a_naive_loop():
    """Analytic: across direction u a box of extents e is sum_i |u_i| e_i wide; naive twin: max - min of the
    projections of every surface sample, one direction at a time."""
    from contactkit.synth.closing import GRIP_ROLL_BINS, tangent_widths

    ext = np.array([0.21, 0.16, 0.06])
    normals = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    axis = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    w = tangent_widths(_box_corners(ext), normals, axis)
    step = 2 * np.pi / GRIP_ROLL_BINS
    theta = np.arange(GRIP_ROLL_BINS) * step + step / 2
    for k in range(2):
        u = np.cos(theta)[:, None] * axis[k] + np.sin(theta)[:, None] * np.cross(normals[k], axis[k])
        np.testing.assert_allclose(w[k], np.abs(u) @ ext, atol=1e-12)
    pts = load_object("box:extents=0.21/0.16/0.06").sample_surface(2000, seed=1)[0]
    naive = np.array([[(pts @ u).max() - (pts @ u).min() for u in (
        np.cos(t) * axis[k] + np.sin(t) * np.cross(normals[k], axis[k]) for t in theta)] for k in range(2)])
    np.testing.assert_allclose(tangent_widths(pts, normals, axis), naive, atol=1e-12)


def test_grip_width_prior_turns_the_fingers_across_a_box_and_leaves_a_sphere_uniform():
    """On the thin side of a 21 x 16 x 6 cm box the finger axis runs across the 6 cm thickness (the long edge
    across the palm), the large faces are almost never approached; on a sphere rolls and points stay uniform."""
    from contactkit.synth.closing import GRIP_ROLL_BINS, grip_width_prior, grip_width_rolls

    rng = np.random.default_rng(0)
    box = load_object("box:extents=0.21/0.16/0.06")
    pts, nrm = box.sample_surface(4096, seed=0)
    n = 4000
    side = np.tile([[0.0, 1.0, 0.0]], (n, 1))
    roll = grip_width_rolls(pts, side, np.tile([[1.0, 0.0, 0.0]], (n, 1)), 0.01, rng)
    finger = np.cos(roll)[:, None] * [1.0, 0.0, 0.0] + np.sin(roll)[:, None] * np.cross([0.0, 1.0, 0.0], [1, 0, 0])
    assert np.mean(np.abs(finger[:, 2]) > np.cos(np.radians(30))) > 0.9
    pick = grip_width_prior(pts, nrm, 300, 0.01, rng)
    assert np.mean(np.abs(nrm[pick, 2]) > 0.9) < 0.02  # the two 21 x 16 faces: 60 % of the area
    assert np.mean(np.abs(nrm[:, 2]) > 0.9) > 0.5

    sph_pts, sph_nrm = load_object("sphere").sample_surface(4096, seed=0)
    axis = np.cross(sph_nrm[:n], [0.3, 0.5, 0.8])
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    roll = grip_width_rolls(sph_pts, sph_nrm[:n] / np.linalg.norm(sph_nrm[:n], axis=-1, keepdims=True), axis, 0.01,
                            rng)
    counts = np.bincount((roll // (2 * np.pi / GRIP_ROLL_BINS)).astype(int), minlength=GRIP_ROLL_BINS)
    assert counts.min() > 0.7 * n / GRIP_ROLL_BINS and counts.max() < 1.3 * n / GRIP_ROLL_BINS
    picks = grip_width_prior(sph_pts, sph_nrm, 2000, 0.01, rng)
    octant = np.bincount((sph_pts[picks] > 0) @ [1, 2, 4], minlength=8)
    assert octant.min() > 0.75 * 2000 / 8  # the sphere's eight octants equally approached


def _box_sdf(half):
    """Exact signed distance of an axis-aligned box of half-extents ``half`` centred at 0 (torch, (B, N, 3))."""
    h = torch.as_tensor(half, dtype=torch.float64)

    def sdf(p):
        q = p.abs() - h
        return q.clamp_min(0.0).norm(dim=-1) + q.max(-1).values.clamp_max(0.0)

    return sdf


def _balance_state(points, sdf_fn):
    from contactkit.contact.terms import HandObjectState

    p = torch.as_tensor(points, dtype=torch.float64)
    b = p.shape[0]
    return HandObjectState(hand_verts=p, keypoints=torch.zeros(b, 21, 3, dtype=torch.float64),
                           obj_points=torch.zeros(b, 1, 3, dtype=torch.float64),
                           obj_normals=torch.ones(b, 1, 3, dtype=torch.float64), hand_sdf=sdf_fn(p))


def test_contact_balance_is_zero_for_opposing_contacts_and_one_for_a_push():
    """Analytic on a 6 x 4 x 10 cm box: two parts pressing on opposite faces cancel (0); both on one face push
    (1); on two perpendicular faces with equal strength |F|^2 = 1/2; a part far from the object does not count.
    Naive twin: per-part weighted means of the face normals written out with loops."""
    from contactkit.synth.closing import ContactBalanceTerm

    half = np.array([0.03, 0.02, 0.05])
    sdf_fn = _box_sdf(half)
    rng = np.random.default_rng(0)

    def patch(axis, sign, n, depth=0.0005):
        pts = rng.uniform(-0.6, 0.6, size=(n, 3)) * half
        pts[:, axis] = sign * (half[axis] - depth)
        return pts

    n = 12
    part = torch.as_tensor(np.repeat([0, 5, -1], n))  # thumb, palm, a vertex group of no part
    far = np.tile([0.3, 0.3, 0.3], (n, 1))
    layouts = {
        "opposite": np.concatenate([patch(0, 1, n), patch(0, -1, n), far]),
        "same": np.concatenate([patch(0, 1, n), patch(0, 1, n), far]),
        "perpendicular": np.concatenate([patch(0, 1, n), patch(1, 1, n), far]),
        "far part": np.concatenate([patch(2, -1, n), far, patch(2, 1, n)]),
    }
    term = ContactBalanceTerm(part, sdf_fn, n_parts=6, sigma_m=0.005, squeeze_m=0.001)
    got = term(_balance_state(np.stack(list(layouts.values())), sdf_fn)).numpy()
    np.testing.assert_allclose(got, [0.0, 1.0, 0.5, 1.0], atol=1e-6)

    # naive twin on random hand points near the box
    pts = rng.uniform(-1.3, 1.3, size=(2, 3 * n, 3)) * half
    state = _balance_state(pts, sdf_fn)
    got = term(state).numpy()
    for b in range(2):
        sd = state.hand_sdf[b].numpy()
        net, total = np.zeros(3), 0.0
        for r in range(6):
            ids = [i for i in range(3 * n) if int(part[i]) == r]
            if not ids:
                continue
            wsum, nsum = 0.0, np.zeros(3)
            for i in ids:
                w = np.exp(-max(sd[i] + 0.001, 0.0) / 0.005)
                g = np.array([float(sdf_fn(torch.as_tensor(pts[b, i] + e)[None, None]) -
                                    sdf_fn(torch.as_tensor(pts[b, i] - e)[None, None]))
                              for e in np.eye(3) * 0.002])
                wsum += w
                nsum += w * g / max(np.linalg.norm(g), 1e-9)
            c = np.tanh(wsum / 5.0)
            net += c * nsum / (wsum + 1e-9)
            total += c
        net /= total + 1e-9
        assert got[b] == pytest.approx(float(net @ net), rel=1e-9, abs=1e-12)


def test_palmar_parts_cover_the_palmar_vertices_of_each_finger_and_the_palm():
    from contactkit.synth.closing import PARTS, palmar_parts

    hand = load_hand("openhand")
    part = palmar_parts(hand).numpy()
    palmar = np.asarray(hand.annotations.palmar_mask, dtype=bool)
    assert np.array_equal(part >= 0, palmar)
    region = np.asarray(hand.annotations.region_of_vertex)
    names = hand.annotations.region_names
    for v in np.flatnonzero(palmar)[::17]:
        assert names[region[v]].startswith(PARTS[part[v]])
    assert set(part[palmar]) == set(range(len(PARTS)))


def test_grip_span_counts_only_the_excess_width():
    """Widths all above the span: the same draws as without it (only differences count); a 6 x 4 x 10 cm box
    within an 11 cm span is rolled uniformly on its 4 x 10 face, where without the span the fingers go across 4 cm."""
    from contactkit.synth.closing import GRIP_ROLL_BINS, grip_width_prior, grip_width_rolls

    big = load_object("box:extents=0.21/0.16/0.08")
    pts, nrm = big.sample_surface(4096, seed=0)
    a = grip_width_prior(pts, nrm, 500, 0.01, np.random.default_rng(3))
    b = grip_width_prior(pts, nrm, 500, 0.01, np.random.default_rng(3), span_m=0.06)
    assert np.array_equal(a, b)
    n = 6000
    side = np.tile([[1.0, 0.0, 0.0]], (n, 1))
    axis = np.tile([[0.0, 1.0, 0.0]], (n, 1))
    small = load_object("box").sample_surface(4096, seed=0)[0]  # 6 x 4 x 10 cm
    rng = np.random.default_rng(1)
    roll0 = grip_width_rolls(small, side, axis, 0.01, rng)
    finger0 = np.cos(roll0)[:, None] * axis[0] + np.sin(roll0)[:, None] * np.cross(side[0], axis[0])
    assert np.mean(np.abs(finger0[:, 1]) > np.cos(np.radians(30))) > 0.9  # across the 4 cm
    roll = grip_width_rolls(small, side, axis, 0.01, rng, span_m=0.11)  # > its 10.8 cm diagonal
    counts = np.bincount((roll // (2 * np.pi / GRIP_ROLL_BINS)).astype(int), minlength=GRIP_ROLL_BINS)
    assert counts.min() > 0.8 * n / GRIP_ROLL_BINS and counts.max() < 1.2 * n / GRIP_ROLL_BINS

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
from contactkit.synth.closing import ClosingAttractionTerm, approach_init, close_hand
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
        sdf = grid.sample(hand(orient, pose, None, transl).vertices)
        palm_dir = torch.einsum("kij,j->ki", axis_angle_to_rotmat(orient), n_palm)
        gap = (sdf[:, palmar] + cfg.squeeze_m).clamp_min(0.0)
        loss = (cfg.w_attraction * attraction_loss(sdf + cfg.squeeze_m, zmask, a=a_now)
                + cfg.w_repulsion * repulsion_loss(sdf) + cfg.w_anatomy * anatomy_cost(hand, pose)
                + cfg.w_palm * (1.0 + (palm_dir * n0).sum(-1)) + cfg.w_reg * (coeffs * coeffs).sum(-1)
                + cfg.w_cover * (cfg.cover_a_m * torch.tanh(gap / cfg.cover_a_m)).mean(-1))
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
    cfg = SynthesisConfig(batch_size=3, iterations=12, sdf_resolution=32)
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

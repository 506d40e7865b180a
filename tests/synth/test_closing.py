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

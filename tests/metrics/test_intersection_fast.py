"""The 1 mm grid fallback of the intersection volume against its naive twin (a winding number per centre)."""

import numpy as np
import pytest
import torch
import trimesh

from contactkit.metrics import intersection as inter


@pytest.fixture(scope="module")
def hand_mesh():
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    with torch.no_grad():
        out = hand(torch.zeros(1, 3), 0.3 * torch.ones(1, 45))
    return out.vertices[0].double().numpy(), hand.closed_faces.numpy()


def _naive(hv, hf, ov, of, pitch):
    lo, hi = np.maximum(hv.min(0), ov.min(0)), np.minimum(hv.max(0), ov.max(0))
    if np.any(lo > hi):
        return 0.0
    return inter._count_inside_both(inter._grid_centres(lo, hi, pitch), hv, hf, ov, of) * pitch**3


@pytest.mark.parametrize("hole", [False, True])
def test_grid_volume_equals_naive_winding_numbers(hand_mesh, hole):
    hv, hf = hand_mesh
    s = trimesh.creation.icosphere(subdivisions=3, radius=0.035)
    ov, of = np.asarray(s.vertices), np.asarray(s.faces)
    if hole:  # an open object: a hole facing the hand
        of = of[~(ov[of].mean(1)[:, 1] > 0.03)]
    palm = hv.mean(0)
    vols = []
    for k, offset in enumerate((0.01, 0.02, 0.03)):
        o = ov + palm + np.array([0.0, 0.0, offset]) + 1e-4 * k
        fast = inter._solid_grid_volume(hv, hf, o, of, 0.002, np.eye(3), np.zeros(3), try_exact=False)
        assert fast == _naive(hv, hf, o, of, 0.002)
        vols.append(fast)
    assert max(vols) > 1e-6  # the hand and the object overlap (cubic metres)

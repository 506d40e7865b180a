"""OpenHand: the bundled MIT hand converted from the WebXR generic hand."""

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from contactkit.hands import load_hand
from contactkit.hands.openhand import ASSET_DIR, OPENHAND_SHAPE_NAMES, openhand_arrays

FINGERS = ["thumb", "index", "middle", "ring", "little"]


@pytest.fixture(scope="module", params=["right", "left"])
def hand(request):
    return load_hand("openhand", request.param, dtype=torch.float64)


def test_rest_mesh_is_closed_genus0_and_outward(hand):
    v = hand.v_template.numpy()
    m = trimesh.Trimesh(v, hand.faces.numpy(), process=False)
    assert len(v) == 1159
    assert m.is_watertight and m.is_winding_consistent
    assert m.euler_number == 2
    assert 3.0e-4 < m.volume < 4.0e-4  # about 343 cm^3, positive = outward normals
    np.testing.assert_array_equal(hand.closed_faces.numpy(), hand.faces.numpy())


def test_wrist_at_origin_and_joint_regressor_exact(hand):
    a = openhand_arrays(hand.side)
    torch.testing.assert_close(hand.rest_joints[0], torch.zeros(3, dtype=torch.float64))
    np.testing.assert_allclose(a["j_regressor"] @ a["v_template"], a["rest_joints"], atol=1e-12)
    # affine regressor rows sum to one, so joints follow any affine deformation exactly
    np.testing.assert_allclose(a["j_regressor"].sum(1), np.ones(16), atol=1e-12)


def test_skinning_weights_and_finger_tree(hand):
    w = hand.lbs_weights.numpy()
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    assert (w >= 0).all()
    # every one of the 16 joints drives some vertices
    assert (w.max(0) > 0.5).all()
    # chain order along each finger: MCP -> PIP -> DIP -> tip moves away from the wrist
    j = hand.rest_joints.numpy()
    tips = openhand_arrays(hand.side)["rest_tips"]
    for f, ids in zip(FINGERS, [(13, 14, 15), (1, 2, 3), (4, 5, 6), (10, 11, 12), (7, 8, 9)], strict=True):
        pts = np.concatenate([j[list(ids)], tips[FINGERS.index(f)][None]])
        dist = np.linalg.norm(pts, axis=1)
        assert (np.diff(dist) > 0).all(), f


def test_fingertips_are_extreme_and_own_finger(hand):
    v = hand.v_template.numpy()
    tips = openhand_arrays(hand.side)["rest_tips"]
    ft = hand.fingertips.numpy()
    for i in range(5):
        d = np.linalg.norm(tips - v[ft[i]], axis=1)
        assert d.argmin() == i  # nearest tip joint is its own finger's
        assert d[i] < 0.015


def test_left_is_mirror_of_right():
    r = load_hand("openhand", "right", dtype=torch.float64)
    lf = load_hand("openhand", "left", dtype=torch.float64)
    mirror = np.array([-1.0, 1.0, 1.0])
    d, _ = cKDTree(lf.v_template.numpy()).query(r.v_template.numpy() * mirror)
    assert d.max() < 1e-5
    # the asset's skeletons mirror each other except the index MCP joint (3.45 mm apart in the assets)
    jd = np.linalg.norm(lf.rest_joints.numpy() - r.rest_joints.numpy() * mirror, axis=1)
    assert jd[1] < 4e-3 and np.delete(jd, 1).max() < 1e-5
    # the same pose mirrored (axis-angle (x, y, z) -> (x, -y, -z) under x -> -x) gives the mirrored hand
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(1, 45, generator=g, dtype=torch.float64) * 0.3
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64).repeat(15)
    out_r = r(torch.zeros(1, 3, dtype=torch.float64), pose)
    out_l = lf(torch.zeros(1, 3, dtype=torch.float64), pose * flip)
    torch.testing.assert_close(out_l.keypoints, out_r.keypoints * torch.as_tensor(mirror), atol=5e-3, rtol=0)
    kd = (out_l.keypoints - out_r.keypoints * torch.as_tensor(mirror)).norm(dim=-1)[0]
    assert kd[[0, 1, 2, 3, 4, 9, 10, 11, 12]].max() < 1e-5  # wrist, thumb and middle are exact mirrors


def test_shape_space(hand):
    assert hand.num_betas == 8 and hand.shape_names == OPENHAND_SHAPE_NAMES
    z3 = torch.zeros(1, 3, dtype=torch.float64)
    z45 = torch.zeros(1, 45, dtype=torch.float64)
    base = hand(z3, z45).vertices[0]
    # beta_scale = 1 scales the hand by 6 % about the wrist (origin), joints included
    be = torch.zeros(1, 8, dtype=torch.float64)
    be[0, 0] = 1.0
    out = hand(z3, z45, be)
    torch.testing.assert_close(out.vertices[0], base * 1.06)
    torch.testing.assert_close(out.joints[0], hand.rest_joints * 1.06)
    ext0 = np.ptp(base.numpy(), axis=0)
    for k, name in enumerate(OPENHAND_SHAPE_NAMES):
        be = torch.zeros(1, 8, dtype=torch.float64)
        be[0, k] = 1.0
        out = hand(z3, z45, be)
        moved = (out.vertices[0] - base).norm(dim=-1)
        assert moved.max() > 1e-3, name
        if name.endswith("_length"):
            f = FINGERS.index(name.split("_")[0])
            tip = hand.fingertips[f]
            assert moved[tip] == moved.max()  # the tip of that finger moves most
            other = hand.fingertips[(f + 1) % 5]
            assert moved[other] < 1e-9
    be = torch.zeros(1, 8, dtype=torch.float64)
    be[0, 2] = 1.0  # thickness: the extent across the palm grows, volume grows
    thick = hand(z3, z45, be).vertices[0].numpy()
    m0 = trimesh.Trimesh(base.numpy(), hand.faces.numpy(), process=False)
    m1 = trimesh.Trimesh(thick, hand.faces.numpy(), process=False)
    assert m1.volume > m0.volume * 1.05
    assert np.ptp(thick, axis=0).max() <= ext0.max() * 1.01


def test_flexion_curls_fingers_to_the_palm(hand):
    """Positive PCA mean pose (synthetic grasp prior) moves the fingertips to the palmar side."""
    a = openhand_arrays(hand.side)
    palmar = a["hand_axes"][2]
    z3 = torch.zeros(1, 3, dtype=torch.float64)
    flat = hand(z3, torch.zeros(1, 45, dtype=torch.float64)).keypoints[0].numpy()
    curled = hand(z3, torch.tensor(a["pca_mean"])[None]).keypoints[0].numpy()
    for tip in (8, 12, 16, 20):
        assert (curled[tip] - flat[tip]) @ palmar > 0.02


def test_assets_have_licence_and_no_pickle():
    lic = (ASSET_DIR / "LICENSE-webxr-generic-hand.md").read_text()
    assert "MIT License" in lic and "Copyright (c) 2019 Amazon" in lic
    for side in ("right", "left"):
        with np.load(ASSET_DIR / f"openhand_{side}.npz", allow_pickle=False) as z:
            assert "MIT" in str(z["source"])

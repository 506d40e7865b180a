"""Perturbation protocols: measured noise statistics, determinism, ground-truth linkage, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contactkit.errors import ContactkitError
from contactkit.geometry.rotations import axis_angle_to_rotmat, rotmat_to_axis_angle
from contactkit.hands import load_hand
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps
from contactkit.objects import load_object
from contactkit.synth.perturb import PROTOCOLS, pca_delta_basis, perturb


@pytest.fixture(scope="module")
def hand():
    return load_hand("openhand", "right")


@pytest.fixture(scope="module")
def grasps(hand):
    rng = np.random.default_rng(0)
    n = 10
    obj = load_object("sphere:radius=0.04")
    return GraspSet.from_arrays(
        hand_model="openhand", side="right",
        global_orient=rng.normal(0, 1.0, (n, 3)), hand_pose=rng.normal(0, 0.3, (n, 45)),
        transl=rng.normal(0, 0.1, (n, 3)), objects=obj, num_betas=hand.num_betas,
        object_points=np.zeros((n, 4, 3)), object_contact=np.full((n, 4), 0.5),
        metadata=[{"id": i} for i in range(n)],
    )


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_measured_noise_matches_protocol(grasps, hand, name):
    proto = PROTOCOLS[name]
    p = perturb(grasps, name, copies=100, seed=3, hand=hand)  # 1000 samples
    ref = p.reference_index
    assert len(p) == 1000 and np.array_equal(ref, np.repeat(np.arange(10), 100))
    dt = p.transl - grasps.transl[ref]
    assert np.std(dt) == pytest.approx(proto.sigma_transl_m, rel=0.05)
    assert np.abs(dt.mean()) < 0.1 * proto.sigma_transl_m
    r_new = axis_angle_to_rotmat(torch.as_tensor(p.global_orient))
    r_old = axis_angle_to_rotmat(torch.as_tensor(grasps.global_orient[ref]))
    w = rotmat_to_axis_angle(r_new @ r_old.transpose(1, 2)).numpy()
    assert np.std(w) == pytest.approx(proto.sigma_rot_rad, rel=0.05)
    basis = pca_delta_basis(hand, proto.n_pca)
    dc = (p.hand_pose - grasps.hand_pose[ref]) @ np.linalg.pinv(basis)
    assert np.std(dc) == pytest.approx(proto.sigma_pose_pca, rel=0.05)
    # the pose noise stays in the span of the first k components
    np.testing.assert_allclose(dc @ basis, p.hand_pose - grasps.hand_pose[ref], atol=1e-9)


def test_contactopt_numbers_are_the_papers():
    p = PROTOCOLS["contactopt"]
    assert (p.sigma_pose_pca, p.sigma_transl_m, p.sigma_rot_rad) == (0.5, 0.05, math.radians(15))
    assert PROTOCOLS["choir"].sigma_pose_pca == 0.05


def test_same_seed_same_output_and_different_seed_differs(grasps, hand):
    a = perturb(grasps, "choir", copies=3, seed=7, hand=hand)
    b = perturb(grasps, "choir", copies=3, seed=7, hand=hand)
    c = perturb(grasps, "choir", copies=3, seed=8, hand=hand)
    for k in ("global_orient", "hand_pose", "transl"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
        assert not np.allclose(getattr(a, k), getattr(c, k))


def test_reference_link_survives_save_and_load(tmp_path, grasps, hand):
    gt = tmp_path / "gt.npz"
    save_grasps(gt, grasps)
    p = perturb(grasps, "small", copies=2, seed=0, hand=hand, reference=gt)
    save_grasps(tmp_path / "p.npz", p)
    q = load_grasps(tmp_path / "p.npz")
    assert q.attrs["reference"] == str(gt)
    assert q.attrs["perturbation"]["protocol"]["name"] == "small"
    assert np.array_equal(q.reference_index, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9])
    assert q.metadata[3] == {"id": 1, "perturbation": {"protocol": "small", "seed": 0, "copy": 1}}
    # "small" keeps ground-truth object contact, the large protocols drop it
    assert q.object_contact is not None
    assert perturb(grasps, "contactopt", seed=0, hand=hand).object_contact is None


def test_bad_arguments(grasps, hand):
    with pytest.raises(ContactkitError, match=r"protocol must be one of \['choir', 'contactopt', 'small'\]"):
        perturb(grasps, "huge", hand=hand)
    with pytest.raises(ContactkitError, match="copies must be an integer >= 1"):
        perturb(grasps, "small", copies=0, hand=hand)

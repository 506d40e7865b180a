"""Ferrari–Canny epsilon: analytic cases, invariances, monotonicity, errors."""

from __future__ import annotations

import numpy as np
import pytest

from contactkit.errors import ShapeError
from contactkit.synth.quality import contact_wrenches, ferrari_canny_epsilon, select_contacts

FACES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)


def _box_contacts():
    """Off-centre contacts on the faces of a 6 x 4 x 10 cm box, inward normals (a generic, closed grasp)."""
    ext = np.array([0.03, 0.02, 0.05])
    offs = np.array([[0, 0.01, 0.02], [0, -0.005, -0.01], [0.01, 0, 0.03], [-0.01, 0, -0.02],
                     [0.005, 0.01, 0], [-0.01, -0.005, 0]])
    pts = FACES * ext + offs * (1 - np.abs(FACES))
    return pts, -FACES


def _random_rigid(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    return q, rng.normal(0, 0.2, 3)


def test_six_face_centres_need_friction_for_closure():
    # unit normal forces on the 6 faces, friction 0: the wrench hull is the cross-polytope in force space
    # extended by friction edges; at mu = 0 the torque directions vanish -> no closure
    assert ferrari_canny_epsilon(FACES * 0.03, -FACES, np.zeros(3), friction=0.0) == 0.0
    eps = ferrari_canny_epsilon(FACES * 0.03, -FACES, np.zeros(3), friction=0.5)
    assert eps > 0.0


def test_no_force_closure_cases():
    p, n = _box_contacts()
    assert ferrari_canny_epsilon(p[:2], n[:2], np.zeros(3)) == 0.0  # two contacts: rank-deficient wrenches
    one_side = np.array([[0.03, 0.0, 0.0], [0.03, 0.01, 0.0], [0.03, 0.0, 0.01]])
    assert ferrari_canny_epsilon(one_side, np.tile([-1.0, 0, 0], (3, 1)), np.zeros(3)) == 0.0


def test_invariant_under_rigid_motion_and_scale():
    p, n = _box_contacts()
    eps = ferrari_canny_epsilon(p, n, np.zeros(3))
    assert eps > 0
    rng = np.random.default_rng(0)
    for _ in range(3):
        r, t = _random_rigid(rng)
        assert ferrari_canny_epsilon(p @ r.T + t, n @ r.T, t) == pytest.approx(eps, rel=1e-9)
    assert ferrari_canny_epsilon(3.0 * p, n, np.zeros(3)) == pytest.approx(eps, rel=1e-9)


def test_more_friction_never_hurts():
    p, n = _box_contacts()
    vals = [ferrari_canny_epsilon(p, n, np.zeros(3), friction=mu) for mu in (0.2, 0.5, 1.0)]
    assert vals[0] <= vals[1] <= vals[2]


def test_wrenches_shape_and_force_normal_component():
    p, n = _box_contacts()
    w = contact_wrenches(p, n, np.zeros(3), friction=0.3, n_edges=6)
    assert w.shape == (36, 6)
    f = w[:, :3].reshape(6, 6, 3)
    np.testing.assert_allclose((f * n[:, None]).sum(-1), 1.0)  # unit normal component of every edge
    np.testing.assert_allclose(np.linalg.norm(f - n[:, None], axis=-1), 0.3)


def test_bad_input_messages():
    with pytest.raises(ShapeError, match=r"points must have shape \(C, 3\)"):
        ferrari_canny_epsilon(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ShapeError, match="normals must be non-zero"):
        ferrari_canny_epsilon(np.ones((3, 3)), np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ShapeError, match="n_edges must be >= 3"):
        contact_wrenches(np.ones((3, 3)), np.ones((3, 3)), np.zeros(3), n_edges=2)


def test_select_contacts_spreads_points():
    rng = np.random.default_rng(1)
    pts = np.concatenate([rng.normal(0, 1e-4, (50, 3)), [[1.0, 0, 0]], [[-1.0, 0, 0]]])
    sel, _ = select_contacts(pts, np.ones_like(pts), 3)
    assert len(sel) == 3
    assert {tuple(x) for x in sel[1:]} == {(1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)}

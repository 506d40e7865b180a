"""PCA pose conversions."""

import numpy as np
import pytest
import torch

from contactkit.errors import ShapeError
from contactkit.hands import load_hand
from contactkit.hands.pca import axis_angle_to_pca, pca_basis_from_samples, pca_to_axis_angle


@pytest.fixture(scope="module")
def hand():
    return load_hand("openhand", "right", dtype=torch.float64, ncomps=10)


def test_basis_orthonormal(hand):
    c = hand.pca_components
    torch.testing.assert_close(c @ c.T, torch.eye(45, dtype=torch.float64))


def test_round_trip(hand):
    g = torch.Generator().manual_seed(0)
    coeffs = torch.randn(4, 10, generator=g, dtype=torch.float64)
    pose = hand.pca_to_axis_angle(coeffs)
    assert pose.shape == (4, 45)
    torch.testing.assert_close(hand.axis_angle_to_pca(pose), coeffs)
    full = torch.randn(4, 45, generator=g, dtype=torch.float64)
    torch.testing.assert_close(hand.pca_to_axis_angle(hand.axis_angle_to_pca(full, 45)), full)
    # truncation is the orthogonal projection: the residual is orthogonal to the kept components
    resid = full - hand.pca_to_axis_angle(hand.axis_angle_to_pca(full, 10))
    torch.testing.assert_close(resid @ hand.pca_components[:10].T, torch.zeros(4, 10, dtype=torch.float64))


def test_forward_pca_equals_axis_angle(hand):
    g = torch.Generator().manual_seed(1)
    coeffs = torch.randn(2, 10, generator=g, dtype=torch.float64)
    go = torch.randn(2, 3, generator=g, dtype=torch.float64)
    a = hand(go, coeffs, pose_space="pca")
    b = hand(go, hand.pca_to_axis_angle(coeffs))
    torch.testing.assert_close(a.vertices, b.vertices)


def test_non_orthonormal_basis_round_trip():
    g = torch.Generator().manual_seed(2)
    comps = torch.randn(45, 45, generator=g, dtype=torch.float64)
    c = torch.randn(3, 7, generator=g, dtype=torch.float64)
    torch.testing.assert_close(axis_angle_to_pca(pca_to_axis_angle(c, comps), comps, 7), c)


def test_basis_from_samples_recovers_directions():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    scales = 3.0 * 0.85 ** np.arange(45)
    x = (rng.normal(size=(5000, 45)) * scales) @ q + 0.5
    comps, mean, std = pca_basis_from_samples(x)
    np.testing.assert_allclose(comps @ comps.T, np.eye(45), atol=1e-10)
    np.testing.assert_allclose(mean, 0.5, atol=0.05)
    assert abs(abs(comps[0] @ q[0]) - 1) < 1e-2
    np.testing.assert_allclose(std[:3], scales[:3], rtol=0.05)


def test_errors(hand):
    with pytest.raises(ShapeError, match=r"coeffs must have shape \(B, k\) with 1 <= k <= 45"):
        hand.pca_to_axis_angle(torch.zeros(2, 46, dtype=torch.float64))
    with pytest.raises(ShapeError, match=r"pose must have shape \(B, 45\)"):
        hand.axis_angle_to_pca(torch.zeros(2, 44, dtype=torch.float64))
    with pytest.raises(ShapeError, match=r"k must be in \[1, 45\]"):
        hand.axis_angle_to_pca(torch.zeros(2, 45, dtype=torch.float64), 0)
    with pytest.raises(ShapeError, match=r"hand_pose must have shape \(2, k\) with 1 <= k <= 45"):
        hand(
            torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 50, dtype=torch.float64), pose_space="pca"
        )
    with pytest.raises(ShapeError, match=r"ncomps must be in \[1, 45\]"):
        load_hand("openhand", ncomps=0)

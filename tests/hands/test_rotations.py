"""Tests of contactkit.geometry.rotations: round trips, known answers, stability and gradients near zero."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from contactkit.errors import ShapeError
from contactkit.geometry.rotations import (
    axis_angle_to_quat,
    axis_angle_to_rotmat,
    quat_to_axis_angle,
    quat_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quat,
    rotmat_to_rot6d,
    skew,
)


def _random_aa(n: int, seed: int = 0, max_angle: float = math.pi * 0.999) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    axis = torch.randn(n, 3, generator=g, dtype=torch.float64)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    angle = torch.rand(n, 1, generator=g, dtype=torch.float64) * max_angle
    return axis * angle


def test_axis_angle_to_rotmat_matches_scipy():
    aa = _random_aa(200)
    ref = torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix())
    torch.testing.assert_close(axis_angle_to_rotmat(aa), ref, atol=1e-12, rtol=0)


def test_known_rotation_about_z():
    r = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, math.pi / 2]))
    torch.testing.assert_close(r @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))


def test_quat_matches_scipy_and_scalar_first():
    aa = _random_aa(100, seed=1)
    q = axis_angle_to_quat(aa)
    ref = Rotation.from_rotvec(aa.numpy()).as_quat()  # x, y, z, w
    ref = np.concatenate([ref[:, 3:], ref[:, :3]], axis=1)
    ref = ref * np.sign(ref[:, :1])
    np.testing.assert_allclose(q.numpy(), ref, atol=1e-12)
    torch.testing.assert_close(quat_to_rotmat(q), axis_angle_to_rotmat(aa), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trips(dtype):
    aa = _random_aa(300, seed=2).to(dtype)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    r = axis_angle_to_rotmat(aa)
    assert r.dtype == dtype
    torch.testing.assert_close(rotmat_to_axis_angle(r), aa, atol=tol, rtol=0)
    torch.testing.assert_close(quat_to_axis_angle(axis_angle_to_quat(aa)), aa, atol=tol, rtol=0)
    torch.testing.assert_close(quat_to_rotmat(rotmat_to_quat(r)), r, atol=tol, rtol=0)
    torch.testing.assert_close(rot6d_to_rotmat(rotmat_to_rot6d(r)), r, atol=tol, rtol=0)


def test_near_pi_is_stable():
    axis = torch.tensor([[0.3, -0.5, 0.8]], dtype=torch.float64)
    axis = axis / axis.norm()
    for angle in [math.pi - 1e-9, math.pi - 1e-5, math.pi]:
        r = axis_angle_to_rotmat(axis * angle)
        back = rotmat_to_axis_angle(r)
        # at pi, aa and -aa are the same rotation
        torch.testing.assert_close(axis_angle_to_rotmat(back), r, atol=1e-9, rtol=0)
        assert abs(back.norm().item() - angle) < 1e-6


def test_near_zero_values_finite_and_accurate():
    for scale in [0.0, 1e-12, 1e-8, 1e-4, 1e-3]:
        aa = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64) * scale
        r = axis_angle_to_rotmat(aa)
        ref = torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix())
        torch.testing.assert_close(r, ref, atol=1e-15, rtol=0)
        torch.testing.assert_close(rotmat_to_axis_angle(r), aa, atol=1e-12, rtol=0)
        torch.testing.assert_close(quat_to_axis_angle(axis_angle_to_quat(aa)), aa, atol=1e-15, rtol=0)


def test_gradient_at_zero_is_exact_skew():
    aa = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(axis_angle_to_rotmat, aa)  # (3,3,3)
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = 1.0
        torch.testing.assert_close(jac[..., i], skew(e))


@pytest.mark.parametrize("scale", [0.0, 1e-5, 0.7])
def test_gradcheck_all(scale):
    g = torch.Generator().manual_seed(3)
    aa = (torch.randn(2, 3, generator=g, dtype=torch.float64) * scale).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_rotmat, (aa,))
    assert torch.autograd.gradcheck(axis_angle_to_quat, (aa,))
    assert torch.autograd.gradcheck(lambda x: rotmat_to_axis_angle(axis_angle_to_rotmat(x)), (aa,))
    assert torch.autograd.gradcheck(lambda x: quat_to_axis_angle(axis_angle_to_quat(x)), (aa,))
    assert torch.autograd.gradcheck(lambda x: rotmat_to_quat(axis_angle_to_rotmat(x)), (aa,))
    d6 = torch.randn(2, 6, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot6d_to_rotmat, (d6,))
    q = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(quat_to_rotmat, (q,))


def test_rot6d_orthonormal_and_first_column():
    d6 = torch.randn(50, 6, dtype=torch.float64)
    r = rot6d_to_rotmat(d6)
    torch.testing.assert_close(r.transpose(-1, -2) @ r, torch.eye(3, dtype=torch.float64).expand(50, 3, 3))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(50, dtype=torch.float64))
    torch.testing.assert_close(r[:, :, 0], d6[:, :3] / d6[:, :3].norm(dim=-1, keepdim=True))


def test_leading_shapes_and_errors():
    aa = torch.zeros(2, 5, 3)
    assert axis_angle_to_rotmat(aa).shape == (2, 5, 3, 3)
    assert rotmat_to_rot6d(axis_angle_to_rotmat(aa)).shape == (2, 5, 6)
    with pytest.raises(ShapeError, match=r"aa must have shape \(\.\.\., 3\)"):
        axis_angle_to_rotmat(torch.zeros(4, 4))
    with pytest.raises(ShapeError, match=r"r must have shape \(\.\.\., 3, 3\)"):
        rotmat_to_quat(torch.zeros(4, 3))

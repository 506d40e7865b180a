import numpy as np
import pytest
import torch
from metric_meshes import random_rigid

from contactkit.errors import ShapeError
from contactkit.metrics import pose


def _kp(seed=0, b=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 21, 3, generator=g, dtype=dtype) - 0.5) * 0.1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identical_sets_have_zero_error(dtype):
    kp = _kp(dtype=dtype)
    for fn in (pose.mpjpe, pose.root_aligned_mpjpe, pose.pa_mpjpe, pose.mpvpe, pose.chamfer_distance):
        out = fn(kp, kp.clone())
        assert out.dtype == dtype and out.shape == (3,)
        assert torch.all(out.abs() < (1e-6 if dtype == torch.float32 else 1e-12))


def test_mpjpe_known_value_and_root_alignment():
    kp = _kp()
    shifted = kp + torch.tensor([0.003, 0.004, 0.0], dtype=torch.float64)  # 5 mm everywhere
    torch.testing.assert_close(pose.mpjpe(shifted, kp), torch.full((3,), 0.005, dtype=torch.float64))
    torch.testing.assert_close(pose.root_aligned_mpjpe(shifted, kp), torch.zeros(3, dtype=torch.float64))
    # naive reference
    naive = torch.stack([torch.stack([(shifted[b, j] - kp[b, j]).norm() for j in range(21)]).mean() for b in range(3)])
    torch.testing.assert_close(pose.mpjpe(shifted, kp), naive)


def test_pa_mpjpe_of_scaled_rotated_copy_is_zero():
    kp = _kp()
    rot, t = random_rigid(3)
    moved = 1.7 * kp @ torch.from_numpy(rot).T + torch.from_numpy(t)
    assert torch.all(pose.pa_mpjpe(moved, kp) < 1e-10)
    assert torch.all(pose.mpjpe(moved, kp) > 1e-3)
    # without scale the residual stays
    assert torch.all(pose.pa_mpjpe(moved, kp, scale=False) > 1e-3)


def test_pa_mpjpe_excludes_reflections():
    kp = _kp()
    mirrored = kp * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert torch.all(pose.pa_mpjpe(mirrored, kp) > 1e-3)


def test_pck_curve_and_auc():
    target = torch.zeros(1, 4, 3, dtype=torch.float64)
    pred = target.clone()
    pred[0, :, 0] = torch.tensor([0.0, 0.01, 0.02, 0.06])  # 0, 10, 20, 60 mm
    curve = pose.pck_curve(pred, target)
    thr = pose.PCK_THRESHOLDS_M
    expected = torch.stack([(torch.tensor([0.0, 0.01, 0.02, 0.06]) <= t + 1e-12).double().mean() for t in thr])
    torch.testing.assert_close(curve[0], expected.to(curve.dtype))
    auc = pose.pck_auc(curve)
    torch.testing.assert_close(auc, torch.trapezoid(expected, thr)[None] / 0.05)
    pose_curve = pose.pck_curve(pred, target, per="pose")  # mean error 22.5 mm
    assert pose_curve[0, 22] == 0 and pose_curve[0, 23] == 1


def test_chamfer_known_value():
    a = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]], dtype=torch.float64)
    b = torch.tensor([[[0.0, 0.1, 0.0]]], dtype=torch.float64)
    # a->b: 0.1 and sqrt(1.01); b->a: 0.1
    expected = 0.5 * ((0.1 + np.sqrt(1.01)) / 2 + 0.1)
    torch.testing.assert_close(pose.chamfer_distance(a, b), torch.tensor([expected], dtype=torch.float64))


def test_pose_metrics_invariances():
    kp, ref = _kp(1), _kp(2)
    rot, t = random_rigid(5)
    r, tt = torch.from_numpy(rot), torch.from_numpy(t)
    for fn in (pose.mpjpe, pose.root_aligned_mpjpe, pose.pa_mpjpe, pose.chamfer_distance):
        torch.testing.assert_close(fn(kp @ r.T + tt, ref @ r.T + tt), fn(kp, ref))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ShapeError, match=r"Expected pred to be of shape \(B, N, 3\)"):
        pose.mpjpe(torch.zeros(21, 3), torch.zeros(21, 3))
    with pytest.raises(ShapeError, match="pred has shape"):
        pose.mpjpe(torch.zeros(1, 21, 3), torch.zeros(1, 20, 3))
    with pytest.raises(ShapeError, match="per must be one of"):
        pose.pck_curve(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), per="joint")
    with pytest.raises(ShapeError, match="torch.Tensor"):
        pose.mpjpe(np.zeros((1, 2, 3)), torch.zeros(1, 2, 3))

import numpy as np
import pytest
import torch
from metric_meshes import box

from contactkit.contact.affinity import physical_affinity_loss
from contactkit.errors import ShapeError
from contactkit.metrics import quality
from contactkit.objects.library import object_box_corners
from contactkit.objects.mesh import ObjectMesh

# a tall box: the central axis is z, the radius L = mean(0.06, 0.04) = 5 cm, contacts within eta * L = 1 cm;
# 21 samples per face side put a sample at every face centre and every 1 cm along z
OV, OF = box([0.06, 0.04, 0.2])


def _keypoints(points):
    far = np.full((21, 3), 1.0)  # keypoints far from the object (never valid contacts)
    far[: len(points)] = np.reshape(points, (-1, 3))
    return far[None]


def test_opposite_contacts_score_two():
    kp = _keypoints([[0.031, 0.0, 0.0], [-0.031, 0.0, 0.0]])
    assert quality.affinity_diversity(kp, OV, OF, face_samples=21)[0] == pytest.approx(2.0)


def test_contacts_on_one_side_score_zero_and_spread_contacts_score_between():
    one_side = _keypoints([[0.031, 0.0, z] for z in (-0.05, 0.0, 0.05)])
    assert quality.affinity_diversity(one_side, OV, OF, face_samples=21)[0] == pytest.approx(0.0, abs=1e-12)
    three = _keypoints([[0.031, 0.0, 0.0], [0.0, 0.021, 0.0], [-0.031, 0.0, 0.0]])
    # directions +x, +y, -x: cosines 0, -1, 0 -> mean -1/3
    assert quality.affinity_diversity(three, OV, OF, face_samples=21)[0] == pytest.approx(1 + 1 / 3)


def test_fewer_than_two_valid_contacts_score_zero():
    assert quality.affinity_diversity(_keypoints([[0.031, 0.0, 0.0]]), OV, OF)[0] == 0.0
    assert quality.affinity_diversity(_keypoints([]), OV, OF)[0] == 0.0


def test_object_box_is_the_one_object_box_with_z_as_central_axis():
    # a flat box lying along x: the one box keeps the object's own z as the central axis (not the longest side)
    ov, of = box([0.2, 0.06, 0.04])
    b = quality.object_box(ov + [0.01, 0.02, 0.03], of)
    corners, _ = object_box_corners(ObjectMesh("b", ov + [0.01, 0.02, 0.03], of, is_watertight=True))
    np.testing.assert_allclose(np.sort(b.corners(), axis=0), np.sort(corners, axis=0), atol=1e-12)
    np.testing.assert_allclose(b.axes[0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(b.extents, [0.04, 0.2, 0.06], atol=1e-12)
    np.testing.assert_allclose(b.centre, [0.01, 0.02, 0.03], atol=1e-12)
    # contacts above and below at the same x: one direction (+x) about z -> 0 (about the long x axis: +-z -> 2)
    same_side = _keypoints([[0.05, 0.0, 0.021], [0.05, 0.0, -0.021]])
    assert quality.affinity_diversity(same_side, ov, of, face_samples=21)[0] == pytest.approx(0.0, abs=1e-12)


def test_score_is_one_minus_the_affinity_loss_on_the_same_box():
    ov, of = box([0.2, 0.06, 0.04])  # long side along x: the central axis is still z
    rng = np.random.default_rng(1)
    kp = rng.uniform(-1, 1, size=(6, 21, 3)) * [0.12, 0.045, 0.035]
    corners, _ = object_box_corners(ObjectMesh("b", ov, of, is_watertight=True))
    loss = physical_affinity_loss(torch.as_tensor(kp), torch.as_tensor(corners).expand(6, 8, 3), face_samples=10)
    np.testing.assert_allclose(quality.affinity_diversity(kp, ov, of), 1.0 - loss.numpy(), atol=1e-9)


def test_invariant_under_common_translation_and_quarter_turns_about_z():
    rng = np.random.default_rng(0)
    kp = rng.normal(scale=0.04, size=(4, 21, 3))
    t = np.array([0.3, -0.1, 0.2])
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # the box stays axis-aligned
    a = quality.affinity_diversity(kp, OV, OF)
    b = quality.affinity_diversity(kp @ rot.T + t, OV @ rot.T + t, OF)
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert np.any(a > 0)


def test_bad_inputs():
    with pytest.raises(ShapeError, match="keypoints"):
        quality.affinity_diversity(np.zeros((21, 3)), OV, OF)
    with pytest.raises(ShapeError, match="n_candidates >= 2"):
        quality.affinity_diversity(np.zeros((1, 21, 3)), OV, OF, n_candidates=1)


def test_batched_supports_equal_the_per_grasp_score_exactly():
    """One object for the batch (supports of all grasps at once) against the naive twin, one grasp at a time
    (``affinity_diversity_single``), and against per-grasp object arrays: bitwise equal."""
    rng = np.random.default_rng(5)
    kp = rng.normal(size=(12, 21, 3)) * 0.05
    fast = quality.affinity_diversity(kp, OV, OF)
    box_ = quality.object_box(OV, OF)
    naive = np.array([quality.affinity_diversity_single(k, box_)[0] for k in kp])
    per_grasp = quality.affinity_diversity(kp, np.repeat(OV[None], 12, 0), OF)
    assert np.array_equal(fast, naive) and np.array_equal(fast, per_grasp)
    assert (fast > 0).sum() >= 4


def test_supports_equal_the_norm_of_the_difference_array_bitwise():
    """``_supports`` sums the squared coordinate differences plane by plane; the naive twin forms the
    ``(B, K, 6, n2, 3)`` difference array and takes ``np.linalg.norm`` over it: the same distances, arg-mins and
    support points, bit for bit (keypoints on and off the box, and exactly on face samples)."""
    rng = np.random.default_rng(8)
    box_ = quality.object_box(OV, OF)
    fp = quality._face_points(box_, quality.FACE_SAMPLES)
    kp = np.concatenate([rng.normal(size=(9, 21, 3)) * 0.05, fp.reshape(-1, 3)[rng.integers(0, 600, (1, 21))]])
    dist = np.linalg.norm(kp[:, :, None, None, :] - fp[None, None], axis=-1)
    arg = dist.argmin(axis=3)
    d_naive = np.take_along_axis(dist, arg[..., None], axis=3)[..., 0].reshape(len(kp), -1)
    supp_naive = fp[np.tile(np.arange(6), kp.shape[1]), arg.reshape(len(kp), -1)]
    d, supp = quality._supports(kp, fp)
    assert np.array_equal(d, d_naive) and np.array_equal(supp, supp_naive)
    assert (d[-1] == 0.0).sum() >= 21  # the keypoints placed on samples

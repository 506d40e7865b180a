import numpy as np
import pytest
from metric_meshes import box, random_rigid

from contactkit.errors import ShapeError
from contactkit.metrics import quality

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


def test_object_box_finds_the_long_axis():
    rot, t = random_rigid(2)
    b = quality.object_box(OV @ rot.T + t, OF)
    assert abs(b.axes[0] @ rot[:, 2]) == pytest.approx(1.0)
    np.testing.assert_allclose(b.extents, [0.2, 0.06, 0.04], atol=1e-9)
    np.testing.assert_allclose(b.centre, t, atol=1e-9)


def test_invariant_under_common_rigid_motion():
    rng = np.random.default_rng(0)
    kp = rng.normal(scale=0.04, size=(4, 21, 3))
    rot, t = random_rigid(4)
    a = quality.affinity_diversity(kp, OV, OF)
    b = quality.affinity_diversity(kp @ rot.T + t, OV @ rot.T + t, OF)
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert np.any(a > 0)


def test_bad_inputs():
    with pytest.raises(ShapeError, match="keypoints"):
        quality.affinity_diversity(np.zeros((21, 3)), OV, OF)
    with pytest.raises(ShapeError, match="n_candidates >= 2"):
        quality.affinity_diversity(np.zeros((1, 21, 3)), OV, OF, n_candidates=1)

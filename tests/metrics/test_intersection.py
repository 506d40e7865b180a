import numpy as np
import pytest
from metric_meshes import box, lens_volume, random_rigid, sphere

from contactkit.errors import ShapeError
from contactkit.metrics import intersection as inter

R_OBJ, R_HAND, DIST = 0.04, 0.03, 0.055


def _spheres():
    ov, of = sphere(R_OBJ)
    hv, hf = sphere(R_HAND, centre=(DIST, 0.0, 0.0))
    return hv, hf, ov, of


def _lens_boundary_area():
    x = (DIST**2 - R_HAND**2 + R_OBJ**2) / (2 * DIST)  # plane of the intersection circle
    return 2 * np.pi * R_OBJ * (R_OBJ - x) + 2 * np.pi * R_HAND * (R_HAND - (DIST - x))


def test_two_spheres_match_closed_form_lens_volume():
    hv, hf, ov, of = _spheres()
    res = inter.intersection_volume(hv[None], hf, ov, of)
    exact = lens_volume(R_OBJ, R_HAND, DIST)
    assert not res.fallback.any()
    assert res.volume_m3[0] == pytest.approx(exact, rel=0.01)


def test_box_pushed_5mm_into_box_has_exact_volume():
    ov, of = box([0.06, 0.06, 0.06])
    hv, hf = box([0.02, 0.02, 0.02], centre=(0.03 + 0.01 - 0.005, 0.0, 0.0))
    res = inter.intersection_volume(hv[None], hf, ov, of)
    assert res.volume_m3[0] == pytest.approx(0.005 * 0.02 * 0.02, rel=1e-9)
    # a solid grid aligned with the box faces counts it exactly too (centres on multiples of the pitch)
    vox = inter.voxel_intersection_volume(hv[None], hf, ov, of, pitch=0.001, grid_origin=(0.0005, 0.0005, 0.0005))
    assert vox[0] == pytest.approx(0.005 * 0.02 * 0.02, rel=1e-9)


def test_disjoint_meshes_have_zero_volume():
    ov, of = box([0.02, 0.02, 0.02])
    hv, hf = box([0.02, 0.02, 0.02], centre=(0.1, 0, 0))
    assert inter.intersection_volume(hv[None], hf, ov, of).volume_m3[0] == 0.0
    assert inter.voxel_intersection_volume(hv[None], hf, ov, of, pitch=0.002)[0] == 0.0
    assert inter.cpf_solid_intersection_volume(hv[None], hf, ov, of)[0] == 0.0


def test_solid_voxels_converge_within_their_bound():
    hv, hf, ov, of = _spheres()
    exact = lens_volume(R_OBJ, R_HAND, DIST)
    area = _lens_boundary_area()
    errors = []
    for pitch in (0.004, 0.002, 0.001):
        v = inter.voxel_intersection_volume(hv[None], hf, ov, of, pitch=pitch)[0]
        err = abs(v - exact)
        assert err <= np.sqrt(3) * pitch * area  # documented first-order bound
        errors.append(err)
    assert errors[-1] < 0.02 * exact
    assert errors[-1] < errors[0]


def test_cpf_grid_converges_within_its_bound():
    hv, hf, ov, of = _spheres()
    exact = lens_volume(R_OBJ, R_HAND, DIST)
    area = _lens_boundary_area()
    for res in (20, 40, 80):
        v = inter.cpf_solid_intersection_volume(hv[None], hf, ov, of, resolution=res)[0]
        assert abs(v - exact) <= np.sqrt(3) * (2 * R_OBJ / res) * area
    assert v == pytest.approx(exact, rel=0.02)


def test_obman_surface_voxels_stay_within_their_shell_bound():
    """Surface voxels count a shell of thickness ~pitch: bounded by sqrt(3) * pitch * (object area in the hand)."""
    hv, hf, ov, of = _spheres()
    x = (DIST**2 - R_HAND**2 + R_OBJ**2) / (2 * DIST)
    cap_area = 2 * np.pi * R_OBJ * (R_OBJ - x)
    values = []
    for pitch in (0.005, 0.0025):
        v = inter.voxel_intersection_volume(hv[None], hf, ov, of, pitch=pitch, mode="surface")[0]
        assert 0 < v <= np.sqrt(3) * pitch * cap_area * 1.1
        values.append(v)
    assert values[1] < values[0]  # it shrinks with the pitch: it does not converge to the exact volume


def test_open_object_falls_back_to_grid_with_flag():
    hv, hf, ov, of = _spheres()
    exact = lens_volume(R_OBJ, R_HAND, DIST)
    # remove the faces far from the hand: the object is no longer closed
    far = ov[of].mean(axis=1)[:, 0] < -0.035
    with pytest.warns(UserWarning, match="not a closed manifold"):
        res = inter.intersection_volume(hv[None], hf, ov, of[~far])
    assert res.fallback[0]
    assert abs(res.volume_m3[0] - exact) <= np.sqrt(3) * 0.001 * _lens_boundary_area()


def test_volumes_invariant_under_common_rigid_motion():
    hv, hf, ov, of = _spheres()
    rot, t = random_rigid(7)
    hv2, ov2 = hv @ rot.T + t, ov @ rot.T + t
    a = inter.intersection_volume(hv[None], hf, ov, of).volume_m3
    b = inter.intersection_volume(hv2[None], hf, ov2, of).volume_m3
    np.testing.assert_allclose(a, b, rtol=1e-9)
    for kw in ({"pitch": 0.002}, {"pitch": 0.005, "mode": "surface"}):
        a = inter.voxel_intersection_volume(hv[None], hf, ov, of, **kw)
        b = inter.voxel_intersection_volume(hv2[None], hf, ov2, of, grid_rotation=rot, grid_origin=t, **kw)
        np.testing.assert_allclose(a, b, rtol=0.01)
    a = inter.cpf_solid_intersection_volume(hv[None], hf, ov, of)
    b = inter.cpf_solid_intersection_volume(hv2[None], hf, ov2, of, grid_rotation=rot, grid_origin=t)
    np.testing.assert_allclose(a, b, rtol=0.01)


def test_batched_equals_per_sample():
    hv, hf, ov, of = _spheres()
    batch = np.stack([hv, hv + [0.005, 0, 0], hv + [0.1, 0, 0]])
    res = inter.intersection_volume(batch, hf, ov, of)
    for b in range(3):
        assert res.volume_m3[b] == pytest.approx(inter.intersection_volume(batch[b : b + 1], hf, ov, of).volume_m3[0])
    assert res.volume_m3[0] > res.volume_m3[1] > res.volume_m3[2] == 0.0


def test_bad_inputs_raise_clear_errors():
    hv, hf, ov, of = _spheres()
    with pytest.raises(ShapeError, match=r"Expected hand_verts to be of shape \(B, N, 3\)"):
        inter.intersection_volume(hv, hf, ov, of)
    with pytest.raises(ShapeError, match=r"Expected obj_faces to be of shape \(F, 3\)"):
        inter.intersection_volume(hv[None], hf, ov, of[:, :2])
    with pytest.raises(ValueError, match="obj_faces indexes vertices outside"):
        inter.intersection_volume(hv[None], hf, ov, of + 10_000)
    with pytest.raises(ShapeError, match="pitch must be > 0"):
        inter.voxel_intersection_volume(hv[None], hf, ov, of, pitch=0.0)
    with pytest.raises(ShapeError, match="mode must be one of"):
        inter.voxel_intersection_volume(hv[None], hf, ov, of, pitch=0.002, mode="hollow")

import numpy as np
import pytest
from metric_meshes import box, random_rigid, sphere

from contactkit.errors import ShapeError
from contactkit.metrics import contact, penetration


def test_box_pushed_5mm_has_penetration_depth_5mm():
    ov, of = box([0.06, 0.06, 0.06])
    hv, _ = box([0.02, 0.02, 0.02], centre=(0.03 + 0.01 - 0.005, 0.0, 0.0))
    assert penetration.penetration_depth(hv[None], ov, of)[0] == pytest.approx(0.005, abs=1e-8)
    hv_out = hv + [0.01, 0, 0]
    assert penetration.penetration_depth(hv_out[None], ov, of)[0] == 0.0


def test_signed_distances_to_a_sphere_are_analytic():
    ov, of = sphere(0.05, subdivisions=6)
    pts = np.array([[[0.0, 0.0, 0.03], [0.0, 0.06, 0.0], [0.049, 0.0, 0.0]]])
    sd = penetration.hand_signed_distances(pts, ov, of)
    np.testing.assert_allclose(sd[0], [-0.02, 0.01, -0.001], atol=5e-5)  # negative inside
    assert penetration.penetration_depth(pts, ov, of)[0] == pytest.approx(0.02, abs=5e-5)


def test_disjointedness_is_mean_of_region_minima():
    ov, of = box([0.1, 0.1, 0.1])
    # five "fingertip regions" of two points each at known gaps outside the +x face (one inside = 0)
    gaps = np.array([[0.001, 0.004], [0.010, 0.02], [0.003, 0.003], [-0.002, 0.01], [0.005, 0.006]])
    pts = np.zeros((10, 3))
    pts[:, 0] = 0.05 + gaps.reshape(-1)
    regions = [np.array([2 * k, 2 * k + 1]) for k in range(5)]
    d = penetration.disjointedness(pts[None], ov, of, regions)
    assert d[0] == pytest.approx(np.mean([0.001, 0.010, 0.003, 0.0, 0.005]), abs=1e-8)


def test_contact_mask_threshold_inside_and_outside():
    ov, of = box([0.1, 0.1, 0.1])
    x = 0.05 + np.array([-0.003, -0.0019, 0.0, 0.0019, 0.003, 0.02])
    pts = np.stack([x, np.zeros(6), np.zeros(6)], axis=1)[None]
    mask = contact.hand_contact_mask(pts, ov, of)
    np.testing.assert_array_equal(mask[0], [False, True, True, True, False, False])
    assert contact.contact_coverage(mask)[0] == pytest.approx(0.5)


def test_object_contact_mask_matches_brute_force():
    # a coarse closed mesh and points spread around its 2 mm shell, inside and outside the bounding-box prefilter
    from contactkit.metrics import _geom

    hv, hf = sphere(0.03, subdivisions=1)
    rng = np.random.default_rng(3)
    dirs = rng.normal(size=(3000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    pts = dirs * rng.uniform(0.02, 0.04, size=(3000, 1))
    brute = _geom.unsigned_distance(pts, hv, hf) <= contact.CONTACT_THRESHOLD_M
    got = contact.object_contact_mask(pts[None], hv[None], hf)[0]
    assert 50 < brute.sum() < 2950  # the case exercises both sides of the threshold
    np.testing.assert_array_equal(got, brute)


def test_object_contact_mask_uses_the_closed_hand_surface():
    hv, hf = box([0.02, 0.02, 0.02])
    pts = np.array([[[0.0, 0.0, 0.0], [0.0111, 0.0, 0.0], [0.0119, 0, 0], [0.009, 0, 0], [0.05, 0, 0]]])
    np.testing.assert_array_equal(contact.object_contact_mask(pts, hv[None], hf)[0], [False, True, True, True, False])


def test_precision_recall_f1_known_values_and_empty_cases():
    pred = np.array([[1, 1, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)
    ref = np.array([[1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=bool)
    prf = contact.precision_recall_f1(pred, ref)
    np.testing.assert_allclose(prf.precision, [2 / 3, 1, 1, 0])
    np.testing.assert_allclose(prf.recall, [2 / 3, 1, 0, 1])
    np.testing.assert_allclose(prf.f1, [2 / 3, 1, 0, 0])
    # a continuous reference map is binarised at 0.4
    prf2 = contact.precision_recall_f1(pred[:1], np.array([[0.9, 0.39, 0.4, 0.0, 1.0]]))
    np.testing.assert_allclose(prf2.f1, [2 / 3])
    self_prf = contact.precision_recall_f1(ref, ref)
    np.testing.assert_array_equal(self_prf.f1, 1.0)


def test_physics_metrics_invariant_under_common_rigid_motion():
    ov, of = sphere(0.04)
    hv, hf = sphere(0.02, centre=(0.05, 0.0, 0.0), subdivisions=3)
    rot, t = random_rigid(11)
    hv2, ov2 = hv @ rot.T + t, ov @ rot.T + t
    regions = [np.arange(k * 10, k * 10 + 10) for k in range(5)]
    for fn, args in (
        (penetration.penetration_depth, ()),
        (penetration.disjointedness, (regions,)),
        (lambda h, o, f: contact.contact_coverage(contact.hand_contact_mask(h, o, f)), ()),
    ):
        np.testing.assert_allclose(fn(hv[None], ov, of, *args), fn(hv2[None], ov2, of, *args), atol=1e-9)
    samples = ov[::7][None]
    np.testing.assert_array_equal(
        contact.object_contact_mask(samples, hv[None], hf),
        contact.object_contact_mask(samples @ rot.T + t, hv2[None], hf),
    )


def test_bad_inputs_raise_clear_errors():
    ov, of = box([0.1, 0.1, 0.1])
    with pytest.raises(ShapeError, match=r"Expected hand_verts to be of shape \(B, N, 3\)"):
        penetration.penetration_depth(np.zeros((5, 2)), ov, of)
    with pytest.raises(ShapeError, match="batch size 2"):
        penetration.penetration_depth(np.zeros((2, 5, 3)), np.stack([ov] * 3), of)
    with pytest.raises(ShapeError, match=r"fingertip_regions\[1\] is empty"):
        penetration.disjointedness(np.zeros((1, 5, 3)), ov, of, [np.array([0]), np.array([], dtype=int)])
    with pytest.raises(ShapeError, match="NaN"):
        penetration.penetration_depth(np.full((1, 5, 3), np.nan), ov, of)
    with pytest.raises(ShapeError, match="pred_mask has shape"):
        contact.precision_recall_f1(np.zeros((1, 3), bool), np.zeros((1, 4), bool))


def test_object_contact_mask_local_points_match_brute_force_at_the_threshold():
    # points clustered on one side of a finely meshed hand stand-in, at 2 mm +- 1 um and spread around it: only
    # the faces near the cluster are searched, the answer must not change
    from contactkit.geometry.mesh_distance import MeshIndex
    from contactkit.metrics import _geom

    hv, hf = sphere(0.03, subdivisions=3)
    rng = np.random.default_rng(5)
    dirs = rng.normal(size=(600, 3)) * [0.2, 0.2, 1.0] + [0.0, 0.0, 3.0]
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    base = dirs * 0.035
    _, _, closest = MeshIndex(hv, hf).query(base)  # convex mesh: moving along p - c keeps c the closest point
    normal = (base - closest) / np.linalg.norm(base - closest, axis=1, keepdims=True)
    gap = np.concatenate([np.full(200, 0.002 - 1e-6), np.full(200, 0.002 + 1e-6), rng.uniform(0.0, 0.01, 200)])
    pts = closest + normal * gap[:, None]
    brute = _geom.unsigned_distance(pts, hv, hf) <= contact.CONTACT_THRESHOLD_M
    got = contact.object_contact_mask(pts[None], hv[None], hf)[0]
    assert 100 < brute.sum() < len(pts) - 100
    np.testing.assert_array_equal(got, brute)


def test_object_contact_mask_face_groups_match_the_whole_mesh_at_the_threshold():
    # the posed hand (long thin faces, concave between the fingers) and points 2 mm +- 10 nm off its faces and
    # spread through its box: the face-box and face-group prefilters must not change a single decision of the
    # exact query against the whole mesh
    import torch

    from contactkit.geometry.mesh_distance import MeshIndex
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    with torch.no_grad():
        hv = hand(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 45, dtype=torch.float64)).vertices[0].numpy()
    hf = hand.closed_faces.numpy()
    rng = np.random.default_rng(23)
    face = rng.integers(0, len(hf), 3000)
    w = rng.dirichlet(np.ones(3), 3000)
    tri = hv[hf[face]]
    on = np.einsum("nk,nkd->nd", w, tri)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    gap = contact.CONTACT_THRESHOLD_M + rng.choice([-1e-8, 1e-8], 3000)
    lo, hi = hv.min(0) - 0.01, hv.max(0) + 0.01
    pts = np.concatenate([on + normal * gap[:, None], on - normal * gap[:, None], rng.uniform(lo, hi, (3000, 3))])
    sq, _, _ = MeshIndex(hv, hf).query(pts)
    naive = np.sqrt(np.maximum(sq, 0.0)) <= contact.CONTACT_THRESHOLD_M
    got = contact.object_contact_mask_one(pts, hv, hf)
    assert 1000 < naive.sum() < len(pts) - 1000
    np.testing.assert_array_equal(got, naive)
    for part in (slice(0, 3000), slice(3000, 6000), slice(6000, 9000), slice(0, 40)):  # other point boxes
        np.testing.assert_array_equal(contact.object_contact_mask_one(pts[part], hv, hf), naive[part])

"""The 1 mm grid fallback of the intersection volume against its naive twin (a winding number per centre)."""

import numpy as np
import pytest
import torch
import trimesh

from contactkit.metrics import intersection as inter


@pytest.fixture(scope="module")
def hand_mesh():
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    with torch.no_grad():
        out = hand(torch.zeros(1, 3), 0.3 * torch.ones(1, 45))
    return out.vertices[0].double().numpy(), hand.closed_faces.numpy()


def _naive(hv, hf, ov, of, pitch):
    lo, hi = np.maximum(hv.min(0), ov.min(0)), np.minimum(hv.max(0), ov.max(0))
    if np.any(lo > hi):
        return 0.0
    return inter._count_inside_both(inter._grid_centres(lo, hi, pitch), hv, hf, ov, of) * pitch**3


@pytest.mark.parametrize("hole", [False, True])
def test_grid_volume_equals_naive_winding_numbers(hand_mesh, hole):
    hv, hf = hand_mesh
    s = trimesh.creation.icosphere(subdivisions=3, radius=0.035)
    ov, of = np.asarray(s.vertices), np.asarray(s.faces)
    if hole:  # an open object: a hole facing the hand
        of = of[~(ov[of].mean(1)[:, 1] > 0.03)]
    palm = hv.mean(0)
    vols = []
    for k, offset in enumerate((0.01, 0.02, 0.03)):
        o = ov + palm + np.array([0.0, 0.0, offset]) + 1e-4 * k
        fast = inter._solid_grid_volume(hv, hf, o, of, 0.002, np.eye(3), np.zeros(3), try_exact=False)
        assert fast == _naive(hv, hf, o, of, 0.002)
        vols.append(fast)
    assert max(vols) > 1e-6  # the hand and the object overlap (cubic metres)


def test_block_certificates_leave_every_decision_unchanged(hand_mesh):
    """The blockwise certificates decide the same centres as one exact bound per centre (the previous path)."""
    from contactkit.geometry.inside import grid_ray_winding, ray_winding_error_bound

    hv, hf = hand_mesh
    s = trimesh.creation.icosphere(subdivisions=4, radius=0.04)
    ov, of = np.asarray(s.vertices) + hv.mean(0) + np.array([0.0, 0.0, 0.03]), np.asarray(s.faces)
    of = of[~(ov[of].mean(1)[:, 1] > hv.mean(0)[1] + 0.03)]  # a hole facing the hand
    mesh = inter._GridMesh(ov, of)
    lo, hi = np.maximum(hv.min(0), ov.min(0)), np.minimum(hv.max(0), ov.max(0))
    axes = inter._grid_axes(lo, hi, 0.002)
    wind, amb = grid_ray_winding(ov, of, *axes)
    todo = ~amb
    sure = inter._certified_blocks(todo, axes, ov, mesh)
    assert sure.sum() > 0.6 * todo.sum() and (todo & ~sure).sum() > 0  # most, not all, centres certified
    idx = np.nonzero(sure)
    pts = np.stack([axes[k][idx[k]] for k in range(3)], -1)
    assert (ray_winding_error_bound(pts, ov, mesh.edges, mesh.mult) < inter._RAY_BOUND).all()


def test_fast_winding_tree_equals_the_winding_number_bitwise(hand_mesh):
    from contactkit.metrics import _geom

    hv, hf = hand_mesh
    pts = hv.mean(0) + np.random.default_rng(0).uniform(-0.08, 0.08, (3000, 3))
    tree = _geom.FastWinding(hv, hf)
    np.testing.assert_array_equal(tree.winding_number(pts), _geom.winding_number(pts, hv, hf))
    np.testing.assert_array_equal(tree.winding_number(pts[:7]), _geom.winding_number(pts[:7], hv, hf))
    assert tree.winding_number(np.zeros((0, 3))).shape == (0,)


def test_open_mesh_signed_distance_equals_the_geometry_module_bitwise():
    from contactkit.geometry.inside import signed_distance
    from contactkit.geometry.mesh_distance import mesh_index
    from contactkit.metrics import _geom

    s = trimesh.creation.icosphere(subdivisions=4, radius=0.04)
    v, f = np.asarray(s.vertices), np.asarray(s.faces)
    f = f[~(v[f].mean(1)[:, 2] > 0.03)]
    pts = np.random.default_rng(0).uniform(-0.05, 0.05, (2000, 3))
    ref = signed_distance(torch.from_numpy(pts)[None], torch.from_numpy(v), f)[0].numpy()
    for _ in range(2):  # the second call reuses the index's winding-number tree
        got = _geom.signed_distance(pts, v, f, index=mesh_index(v, f))
        np.testing.assert_array_equal(got, ref)
    assert (ref < 0).sum() > 100


def test_bbox_equals_the_axis_reductions_and_the_cached_box_changes_no_volume(hand_mesh):
    """``bbox`` (one coordinate-major copy) against its naive twin ``min(0)`` / ``max(0)``; and the exact volume
    with the object's cached box equals the one computing the box itself, bitwise."""
    from contactkit.metrics._arrays import bbox

    rng = np.random.default_rng(4)
    for x in (rng.normal(size=(8194, 3)), rng.normal(size=(1, 3)), np.asfortranarray(rng.normal(size=(50, 3)))):
        lo, hi = bbox(x)
        assert np.array_equal(lo, x.min(0)) and np.array_equal(hi, x.max(0))
    hv, hf = hand_mesh
    ell = trimesh.creation.icosphere(subdivisions=3)
    ell.apply_scale([0.04, 0.03, 0.06])
    ov, of = np.asarray(ell.vertices) + hv.mean(0), np.asarray(ell.faces, dtype=np.int64)
    assert inter.exact_volume_pair(hv, hf, ov, of) > 0.0
    for shift in (0.0, 0.01, 0.5):
        h = hv + shift
        with_box = inter.exact_volume_pair(h, hf, ov, of, obj_box=bbox(ov))
        assert with_box == inter.exact_volume_pair(h, hf, ov, of)
    assert inter.exact_volume_pair(hv + 0.5, hf, ov, of, obj_box=bbox(ov)) == 0.0  # disjoint boxes


def test_closed_mesh_signed_distance_equals_the_geometry_module_bitwise(hand_mesh):
    """``_geom.signed_distance`` on a closed mesh (its own closest-point and sign steps, without the geometry
    module's per-call checks and copies) against ``contactkit.geometry.inside.signed_distance``: bit for bit, for
    points inside, outside, on vertices, edges and faces, for the hand and an ellipsoid (read-only arrays)."""
    from contactkit.geometry.inside import signed_distance
    from contactkit.geometry.mesh_distance import MeshIndex
    from contactkit.metrics import _geom

    ell = trimesh.creation.icosphere(subdivisions=4)
    ell.apply_scale([0.04, 0.03, 0.06])
    rng = np.random.default_rng(9)
    for v, f in (hand_mesh, (np.asarray(ell.vertices), np.asarray(ell.faces, dtype=np.int64))):
        v, f = v.copy(), f.copy()
        v.setflags(write=False)
        f.setflags(write=False)
        lo, hi = v.min(0) - 0.01, v.max(0) + 0.01
        w = rng.dirichlet(np.ones(3), 300)
        on_faces = np.einsum("nk,nkd->nd", w, v[f[rng.integers(0, len(f), 300)]])
        edge = v[f[:200, 0]] * 0.3 + v[f[:200, 1]] * 0.7
        pts = np.concatenate([rng.uniform(lo, hi, (3000, 3)), on_faces, edge, v[:100]])
        ref = signed_distance(torch.from_numpy(pts)[None], torch.from_numpy(v.copy()), f)[0].numpy()
        index = MeshIndex(v, f)
        for _ in range(2):  # the second call reuses the index's tensors
            np.testing.assert_array_equal(_geom.signed_distance(pts, v, f, index=index), ref)
        assert (ref < 0).sum() > 50 and (ref > 0).sum() > 50 and (ref == 0).sum() > 50

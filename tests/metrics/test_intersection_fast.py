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


@pytest.fixture(scope="module")
def posed_hands():
    """The OpenHand in six poses (flat to curled, two wrist turns), (6, V, 3) metres, its closed faces, and an
    ellipsoid (5k faces, 8 x 6 x 12 cm) pressed into the flat hand's palm."""
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    rng = np.random.default_rng(3)
    pose = torch.from_numpy(np.concatenate([np.zeros((2, 45)), rng.uniform(-0.1, 0.5, (4, 45))])).float()
    orient = torch.zeros(6, 3)
    orient[4:, 0] = torch.tensor([0.2, -0.3])
    with torch.no_grad():
        hv = hand(orient, pose).vertices.double().numpy()
    ell = trimesh.creation.icosphere(subdivisions=4)
    ell.apply_scale([0.04, 0.03, 0.06])
    normal = np.asarray(hand.annotations.palm_normal, dtype=np.float64)
    palm = hv[0][np.asarray(hand.annotations.contact_zones["palm"])].mean(0)
    ov = np.asarray(ell.vertices) + palm + normal * 0.039  # the flat palm about 1 mm into the ellipsoid
    return hv, hand.closed_faces.numpy(), ov, np.asarray(ell.faces, dtype=np.int64), normal


def _assert_volumes_close(got, ref):
    """The documented tolerance of the exact volume's fast path: 1e-9 relative, 1e-18 m^3 (1e-12 cm^3) absolute."""
    ref = np.asarray(ref)
    assert np.all(np.abs(got - ref) <= 1e-9 * np.abs(ref) + 1e-18), np.abs(got - ref) / np.maximum(ref, 1e-30)


def test_exact_volumes_with_trims_and_warped_hands_equal_the_whole_object_boolean(posed_hands, monkeypatch):
    """The batch path (object solid trimmed clear of each hand's box, hand solids warped from the first pose)
    against its naive twin: :func:`exact_volume_pair` per sample (the hand's solid built, the whole object's
    solid), to 1e-9 relative; disjoint boxes exactly 0; trims and warps are actually taken."""
    hv, hf, ov, of, normal = posed_hands
    # poses x offsets along the palm normal: 6 and 3 mm back, as placed, 2 mm further in, far away
    offsets = np.array([0.006, 0.003, 0.0, -0.002, 0.5])
    batch = (hv[:, None] - offsets[None, :, None, None] * normal).reshape(-1, hv.shape[1], 3)
    ref = np.array([inter.exact_volume_pair(h, hf, ov, of) for h in batch])
    assert (ref > 1e-7).sum() >= 8 and (ref == 0.0).sum() >= 6  # deep, shallow and disjoint samples
    monkeypatch.setattr(inter, "_TRIM_COST", 0.0)  # build every useful trim
    inter._OBJECTS.clear()
    built: list[int] = []
    warp = inter._HandSolids.solid

    def counting(self, verts):
        built.append(self._base is None)
        return warp(self, verts)

    monkeypatch.setattr(inter._HandSolids, "solid", counting)
    for _ in range(2):  # the second batch reuses the object's trims
        res = inter.intersection_volume(batch, hf, ov, of)
        assert not res.fallback.any()
        _assert_volumes_close(res.volume_m3, ref)
        assert np.all(res.volume_m3[ref == 0.0] == 0.0)
    obj = inter._shared_object(ov, of)
    boxes = [inter.bbox(h) for h in batch]
    used = [s is not obj.solid() for s in obj.solids_for(obj.solid(), boxes)]
    assert sum(used) >= 10 and 2 <= len(obj._trims) <= inter._MAX_TRIMS  # most samples meet a trimmed solid
    assert built.count(True) == 2 and built.count(False) > 20  # one hand built per batch, the others warped


def test_trimmed_object_solids_are_closed_and_their_halves_sum_to_the_object(posed_hands):
    """Each trim is a closed solid; the two sides of one plane add up to the object's volume (to rounding); every
    face of a trim that extends beyond its reach is an original face of the object, unchanged (so a hand clear of
    the reach meets the same faces), and every original face beyond the reach is kept."""
    _, _, ov, of, _ = posed_hands
    obj = inter._SharedObject(ov, of)
    whole = obj.solid()
    planes, kept, reach = obj._cuts()

    def faces(verts, tri):
        return {tuple(sorted(map(tuple, verts[t]))) for t in tri}

    original = faces(ov, of)
    for a, k in ((0, 9), (1, 16), (2, 27)):
        above, below = obj._trim((a, 0, k), whole), obj._trim((a, 1, k), whole)
        assert above is not None and below is not None
        assert above.status() == below.status() == inter.manifold3d.Error.NoError
        assert above.volume() + below.volume() == pytest.approx(whole.volume(), rel=1e-12)
        assert 0 < kept[a, 0, k] < len(of) and 0 < kept[a, 1, k] < len(of)
        lo, hi = (np.asarray(x) for x in np.split(np.asarray(above.bounding_box()), 2))
        assert lo[a] == pytest.approx(planes[a, k], abs=1e-12) and hi[a] == pytest.approx(ov[:, a].max(), abs=1e-12)
        for side, solid in ((0, above), (1, below)):
            mesh = solid.to_mesh64()
            mv, mt = np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts, dtype=np.int64)
            ext, orig = mv[mt][:, :, a], ov[of][:, :, a]
            r = reach[a, side, k]
            beyond = ext.max(1) > r if side == 0 else ext.min(1) < r  # faces reaching past the reach
            assert beyond.sum() > 100 and faces(mv, mt[beyond]) <= original
            far = orig.min(1) > r if side == 0 else orig.max(1) < r
            assert faces(ov, of[far]) <= faces(mv, mt)


def test_warped_hand_solids_have_each_poses_vertices_and_the_built_topology(posed_hands):
    """Vertex correspondence of :class:`_HandSolids`: a warped solid's vertices are exactly the pose's, its
    triangles the built solid's (as triples of input vertices), its volume the built one's to 1e-12."""
    hv, hf, _, _, _ = posed_hands

    def triangles(solid, verts):
        mesh = solid.to_mesh64()
        mv = np.asarray(mesh.vert_properties)[:, :3]
        rows = {tuple(v): i for i, v in enumerate(verts)}
        idx = np.array([rows[tuple(v)] for v in mv])  # KeyError: a vertex that is not the pose's
        tri = idx[np.asarray(mesh.tri_verts, dtype=np.int64)]
        return {tuple(np.roll(t, -int(np.argmin(t)))) for t in tri}

    hands = inter._HandSolids(hf)
    first = hands.solid(hv[0])
    assert hands._base is first
    for verts in hv[1:]:
        warped, built = hands.solid(verts), inter._manifold(verts, hf)
        assert warped is not built and warped.num_vert() == len(verts)
        assert triangles(warped, verts) == triangles(built, verts)
        assert warped.volume() == pytest.approx(built.volume(), rel=1e-12)
    dup = np.concatenate([hv[0][:-1], hv[0][:1]])  # duplicate rows: no one-to-one match
    assert inter._vertex_order(first, dup) is None


def test_cut_table_equals_its_naive_twin(posed_hands):
    """Faces kept and reach per plane (prefix maxima over sorted face extents) against a mask per plane."""
    _, _, ov, of, _ = posed_hands
    planes, kept, reach = inter._SharedObject(ov, of)._cuts()
    tri = ov[of]
    f_lo, f_hi = tri.min(1), tri.max(1)
    tol = 1e-6 * np.sqrt((np.diff(tri[:, [0, 1, 2, 0]], axis=1) ** 2).sum(-1)).max()
    for a in range(3):
        for k, c in enumerate(planes[a]):
            split = (f_lo[:, a] <= c + tol) & (f_hi[:, a] >= c - tol)
            assert reach[a, 0, k] == max(c, f_hi[split, a].max(initial=c)) + tol
            assert reach[a, 1, k] == min(c, f_lo[split, a].min(initial=c)) - tol
            assert kept[a, 0, k] == (f_hi[:, a] >= c).sum() and kept[a, 1, k] == (f_lo[:, a] <= c).sum()
    assert (reach[:, 0, 1:-1] > planes[:, 1:-1]).all() and (reach[:, 1, 1:-1] < planes[:, 1:-1]).all()

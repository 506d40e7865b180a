"""Ray-crossing winding numbers on a grid against libigl's generalised winding number (the naive twin)."""

import igl
import numpy as np
import pytest
import torch
import trimesh

from contactkit.geometry.inside import boundary_chain, grid_ray_winding, ray_winding_error_bound


def _nodes(axes):
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


@pytest.fixture(scope="module")
def posed_hand():
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a strongly curled pose: fingers may touch or overlap (winding number 2)
        out = hand(0.3 * torch.randn(1, 3, generator=g), 0.6 * torch.randn(1, 45, generator=g))
    return out.vertices[0].double().numpy(), hand.closed_faces.numpy()


def test_closed_hand_matches_winding_number(posed_hand):
    v, f = posed_hand
    lo, hi = v.min(0), v.max(0)
    axes = [np.arange(np.ceil(lo[k] / 0.002), np.floor(hi[k] / 0.002) + 1) * 0.002 + 3e-4 for k in range(3)]
    wind, amb = grid_ray_winding(v, f, *axes)
    ref = igl.fast_winding_number(v, f, _nodes(axes)) > 0.5
    got = (wind >= 1).reshape(-1)
    assert ref.sum() > 10_000
    assert not amb.any()
    np.testing.assert_array_equal(got, ref)
    assert len(boundary_chain(f)[0]) == 0


def test_grid_through_vertices_is_flagged_not_wrong():
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.05)  # vertices at (0, 0, +-r) lie on grid columns
    v, f = np.asarray(s.vertices), np.asarray(s.faces)
    axes = [np.arange(-30, 31) * 0.002] * 3
    wind, amb = grid_ray_winding(v, f, *axes)
    ref = (igl.fast_winding_number(v, f, _nodes(axes)) > 0.5).reshape(wind.shape)
    assert amb.any()
    np.testing.assert_array_equal((wind >= 1)[~amb], ref[~amb])


def test_open_mesh_bound_certifies_the_crossing_count():
    s = trimesh.creation.icosphere(subdivisions=3, radius=0.04)
    v, f = np.asarray(s.vertices), np.asarray(s.faces)
    centroids = v[f].mean(1)
    f = f[~((centroids[:, 2] > 0.033) & (centroids[:, 0] > 0.0))]  # a hole in the upper cap
    f = np.concatenate([f, f[:1]])  # and a doubled face: three faces on its edges (non-manifold)
    edges, mult = boundary_chain(f)
    assert len(edges) > 6 and mult.max() == 1
    axes = [np.arange(-24, 25) * 0.002 + 1e-4] * 3
    wind, amb = grid_ray_winding(v, f, *axes)
    nodes = _nodes(axes)
    w = igl.fast_winding_number(v, f, nodes)
    bound = ray_winding_error_bound(nodes, v, edges, mult)
    sure = (bound < 0.25) & ~amb.reshape(-1)
    assert sure.mean() > 0.5 and (~sure).sum() > 100  # the columns through the hole are not certified
    # the bound is the exact difference |w - X| (libigl's fast winding number is accurate to ~1e-3 here)
    diff = np.abs(w - wind.reshape(-1))
    assert np.abs(diff - bound)[~amb.reshape(-1) & np.isfinite(bound)].max() < 2e-2
    np.testing.assert_array_equal((wind.reshape(-1) >= 1)[sure], (w > 0.5)[sure])
    # the far-field shortcut is an upper bound of the exact value
    quick = ray_winding_error_bound(nodes, v, edges, mult, exact_above=0.25)
    finite = np.isfinite(bound)
    assert (quick[finite] >= bound[finite] - 1e-12).all() and (quick != bound).sum() > 1000


def _holed_sphere():
    s = trimesh.creation.icosphere(subdivisions=3, radius=0.04)
    v, f = np.asarray(s.vertices), np.asarray(s.faces)
    return v, f[~(v[f].mean(1)[:, 2] > 0.03)]  # a hole in the upper cap


def test_ribbon_winding_equals_its_naive_twin_bitwise():
    from contactkit.geometry.inside import _ribbon_winding, _ribbon_winding_naive

    v, f = _holed_sphere()
    edges, mult = boundary_chain(f)
    va, vb = v[edges[:, 0]], v[edges[:, 1]]
    pts = np.random.default_rng(0).uniform(-0.06, 0.06, (700, 3))
    pts[:3, :2] = va[:3, :2]  # on the ribbon: grazing, inf
    fast, naive = _ribbon_winding(pts, va, vb, mult), _ribbon_winding_naive(pts, va, vb, mult)
    assert np.isinf(fast[:3]).all()
    np.testing.assert_array_equal(fast, naive)


def test_ball_bound_holds_at_every_point_of_each_ball():
    from contactkit.geometry.inside import ray_winding_ball_bound

    v, f = _holed_sphere()
    edges, mult = boundary_chain(f)
    rng = np.random.default_rng(1)
    centres = rng.uniform(-0.08, 0.08, (400, 3))
    radius = rng.uniform(0.0, 0.01, 400)
    for exact_above in (0.0, 0.25):
        bound = ray_winding_ball_bound(centres, radius, v, edges, mult, exact_above=exact_above)
        finite = np.isfinite(bound)
        assert finite.sum() > 100 and (~finite).sum() > 10  # balls below the hole or at its rim: no bound
        # points all over each ball (its surface included) never exceed the ball's bound
        d = rng.normal(size=(finite.sum(), 20, 3))
        d *= (radius[finite, None] * rng.uniform(0.0, 1.0, (finite.sum(), 20)) ** (1 / 3))[..., None] / np.linalg.norm(
            d, axis=-1, keepdims=True
        )
        d[:, 0] *= radius[finite, None] / np.maximum(np.linalg.norm(d[:, 0], axis=-1, keepdims=True), 1e-300)
        pts = (centres[finite, None] + d).reshape(-1, 3)
        exact = ray_winding_error_bound(pts, v, edges, mult).reshape(-1, 20)
        assert (exact <= bound[finite, None] + 1e-12).all()
    # the bound of a ball of radius 0 is the exact value at its centre (clear of the ribbon)
    zero = ray_winding_ball_bound(centres, np.zeros(400), v, edges, mult)
    ok = np.isfinite(zero)
    np.testing.assert_allclose(zero[ok], ray_winding_error_bound(centres[ok], v, edges, mult), rtol=0, atol=1e-15)

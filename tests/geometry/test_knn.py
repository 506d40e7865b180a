"""Nearest neighbours: k-d tree and brute force against a naive reference, values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from geometry_meshes import random_rigid

from contactkit.errors import ShapeError
from contactkit.geometry import PointIndex, nearest_points
from contactkit.geometry import knn as knn_module
from contactkit.geometry.knn import nearest_indices, nearest_points_naive

D = torch.float64


def _clouds(b: int, n: int, m: int, seed: int, dtype: torch.dtype = D) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, n, 3, generator=g, dtype=D).to(dtype) * 0.05,
        torch.randn(b, m, 3, generator=g, dtype=D).to(dtype) * 0.05,
    )


@pytest.mark.parametrize("backend", ["kdtree", "brute", "auto"])
@pytest.mark.parametrize("sizes", [(1, 1, 1), (2, 7, 5), (3, 200, 500)])
def test_matches_naive_values_and_gradients(backend: str, sizes: tuple[int, int, int]) -> None:
    q, p = _clouds(*sizes, seed=sum(sizes))
    q1, p1 = q.clone().requires_grad_(), p.clone().requires_grad_()
    q2, p2 = q.clone().requires_grad_(), p.clone().requires_grad_()
    fast = nearest_points(q1, p1, backend=backend)  # type: ignore[arg-type]
    ref = nearest_points_naive(q2, p2)
    assert torch.equal(fast.idx, ref.idx)
    np.testing.assert_allclose(fast.dist.detach().numpy(), ref.dist.detach().numpy(), atol=1e-14)
    w = torch.linspace(0.5, 1.5, fast.dist.numel(), dtype=D).reshape(fast.dist.shape)
    (fast.dist * w).sum().backward()
    (ref.dist * w).sum().backward()
    assert q1.grad is not None and q2.grad is not None and p1.grad is not None and p2.grad is not None
    np.testing.assert_allclose(q1.grad.numpy(), q2.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(p1.grad.numpy(), p2.grad.numpy(), atol=1e-12)


def test_shared_points_single_tree_matches_per_batch() -> None:
    q, p = _clouds(4, 300, 400, seed=1)
    shared = nearest_points(q, p[0], backend="kdtree")  # (M, 3): the same targets for every element
    expanded = nearest_points(q, p[:1].expand(4, -1, -1), backend="kdtree")
    copies = nearest_points(q, p[:1].repeat(4, 1, 1), backend="kdtree")
    ref = nearest_points_naive(q, p[:1].repeat(4, 1, 1))
    for r in (shared, expanded, copies):
        assert torch.equal(r.idx, ref.idx)
        np.testing.assert_allclose(r.nearest.numpy(), ref.nearest.numpy(), atol=0)


def test_point_index_reuse() -> None:
    q, p = _clouds(3, 100, 300, seed=2)
    index = PointIndex(p[0])
    r = nearest_points(q, p[0], index=index)
    ref = nearest_points_naive(q, p[:1].expand(3, -1, -1))
    assert torch.equal(r.idx, ref.idx)
    with pytest.raises(ShapeError, match="index holds 300 points"):
        nearest_points(q, p[0, :10], index=index)


def test_gradcheck_float64() -> None:
    q, p = _clouds(2, 6, 9, seed=3)
    q.requires_grad_()
    p.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: nearest_points(a, b, backend="kdtree").dist, (q, p))
    assert torch.autograd.gradcheck(lambda a, b: nearest_points(a, b, backend="brute").nearest, (q, p))


def test_zero_distance_gradient_is_zero_not_nan() -> None:
    _, p = _clouds(1, 1, 20, seed=4)
    q = p[:, :5].clone().requires_grad_()
    r = nearest_points(q, p)
    r.dist.sum().backward()
    assert q.grad is not None
    assert torch.equal(q.grad, torch.zeros_like(q.grad))
    assert float(r.dist.detach().abs().max()) == 0.0


def test_float32_kept() -> None:
    q, p = _clouds(2, 50, 80, seed=5, dtype=torch.float32)
    r = nearest_points(q, p, backend="kdtree")
    assert r.dist.dtype == torch.float32 and r.nearest.dtype == torch.float32
    ref = nearest_points_naive(q.double(), p.double())
    np.testing.assert_allclose(r.dist.double().numpy(), ref.dist.numpy(), atol=1e-7)


def test_invariant_under_rigid_motion() -> None:
    q, p = _clouds(2, 100, 150, seed=6)
    rot, t = random_rigid(11)
    a = nearest_points(q, p)
    b = nearest_points(q @ rot.T + t, p @ rot.T + t)
    assert torch.equal(a.idx, b.idx)
    np.testing.assert_allclose(a.dist.numpy(), b.dist.numpy(), atol=1e-14)


def test_empty_query() -> None:
    _, p = _clouds(2, 1, 10, seed=7)
    r = nearest_points(torch.zeros(2, 0, 3, dtype=D), p)
    assert r.dist.shape == (2, 0) and r.idx.shape == (2, 0) and r.nearest.shape == (2, 0, 3)


def test_bad_inputs_raise_clear_errors() -> None:
    q, p = _clouds(2, 5, 6, seed=8)
    with pytest.raises(ShapeError, match=r"query must have shape \(B, N, 3\)"):
        nearest_points(q[0], p)
    with pytest.raises(ShapeError, match="batch sizes differ"):
        nearest_points(q, p[:1].repeat(3, 1, 1))
    with pytest.raises(ShapeError, match="points is empty"):
        nearest_points(q, p[:, :0])
    with pytest.raises(ShapeError, match=r"points must have shape \(B, M, 3\)"):
        nearest_points(q, p[..., :2])
    bad = q.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ShapeError, match="query contains NaN"):
        nearest_points(bad, p)
    with pytest.raises(ShapeError, match="dtype and device"):
        nearest_points(q.float(), p)
    with pytest.raises(ShapeError, match="must be a torch.Tensor"):
        nearest_points(q.numpy(), p)  # type: ignore[arg-type]


def test_scipy_fallback_without_pykdtree(monkeypatch: pytest.MonkeyPatch) -> None:
    from contactkit.geometry import knn

    monkeypatch.setattr(knn, "_PyKDTree", None)
    q, p = _clouds(2, 120, 90, seed=9)
    r = nearest_points(q, p, backend="kdtree")
    assert torch.equal(r.idx, nearest_points_naive(q, p).idx)


def test_distinct_batches_far_apart_use_their_own_targets() -> None:
    # one shared tree over shifted batch elements must never return another element's point
    q, p = _clouds(3, 150, 200, seed=10)
    offsets = torch.tensor([[0.0, 0.0, 0.0], [10.0, -5.0, 2.0], [0.001, 0.0, 0.0]], dtype=D)[:, None, :]
    q, p = q + offsets, p + offsets
    r = nearest_points(q, p, backend="kdtree")
    ref = nearest_points_naive(q, p)
    assert torch.equal(r.idx, ref.idx)
    assert int(r.idx.max()) < 200


def test_pairs_within_matches_brute_force():
    from contactkit.geometry.knn import PointIndex

    g = torch.Generator().manual_seed(11)
    pts = torch.rand(500, 3, generator=g, dtype=torch.float64) * 0.02
    query = torch.rand(80, 3, generator=g, dtype=torch.float64) * 0.02
    index = PointIndex(pts)
    rows, cols = index.pairs_within(query.numpy(), 0.004, k=2)  # k=2: most queries are saturated and redone
    got = sorted(zip(rows.tolist(), cols.tolist(), strict=True))
    d = torch.cdist(query, pts)
    want = sorted(map(tuple, (d < 0.004).nonzero().tolist()))
    assert len(want) > 2 * len(query)
    assert got == want


@pytest.mark.parametrize("backend", ["kdtree", "brute"])
def test_nearest_indices_equal_nearest_points_and_naive(backend: str) -> None:
    from contactkit.geometry.knn import nearest_indices

    for dtype in (torch.float32, torch.float64):
        q, p = _clouds(3, 300, 200, seed=11, dtype=dtype)
        idx = nearest_indices(q, p, backend=backend)  # type: ignore[arg-type]
        assert torch.equal(idx, nearest_points(q, p, backend=backend).idx)  # type: ignore[arg-type]
        assert torch.equal(idx, nearest_points_naive(q, p).idx)
    with pytest.raises(ShapeError):
        nearest_indices(q, p[:2])


def _morton_naive(cells: np.ndarray) -> np.ndarray:
    """Z-order code of integer cells (K, 3), bit by bit: bit ``i`` of axis ``a`` goes to bit ``3 i + a``."""
    code = np.zeros(len(cells), dtype=np.int64)
    for i in range(10):
        for a in range(3):
            code |= ((cells[:, a] >> i) & 1) << (3 * i + a)
    return code


def test_spatial_order_is_the_morton_order() -> None:
    from contactkit.geometry.knn import spatial_order

    g = np.random.default_rng(5)
    cells = g.integers(1, 1022, size=(2, 500, 3))
    pos = cells + 0.5  # cell centres, clear of rounding at the cell faces
    pos[:, 0], pos[:, 1] = 0.0, 1023.0  # the grid spans each element's box: two corners pin it to 0 .. 1023
    order = spatial_order(torch.as_tensor(pos * 1e-4 - 0.05, dtype=D))
    for b in range(2):
        got = order[b].numpy()
        want = np.argsort(_morton_naive(cells[b, 2:]), kind="stable") + 2
        assert got[0] == 0 and got[-1] == 1
        assert np.array_equal(got[1:-1], want)
    flat = spatial_order(torch.zeros(1, 4, 3, dtype=D))  # one cell: ties keep their order
    assert flat.tolist() == [[0, 1, 2, 3]]


@pytest.mark.parametrize("shared", [False, True])
def test_ordered_search_returns_the_plain_indices(shared: bool) -> None:
    """Walking the queries in any order (Morton or random) gives each query its own nearest point."""
    from contactkit.geometry.knn import nearest_indices, spatial_order

    for dtype in (torch.float32, torch.float64):
        q, p = _clouds(3, 400, 300, seed=12, dtype=dtype)
        if shared:
            p = p[:1].expand(3, -1, -1)
        plain = nearest_indices(q, p, backend="kdtree")
        assert torch.equal(plain, nearest_points_naive(q, p).idx)
        shuffled = torch.stack([torch.randperm(400, generator=torch.Generator().manual_seed(b)) for b in range(3)])
        for order in (spatial_order(q), shuffled):
            assert not torch.equal(order, torch.arange(400).expand(3, -1))
            assert torch.equal(nearest_indices(q, p, backend="kdtree", order=order), plain)
    with pytest.raises(ShapeError, match="order"):
        nearest_indices(q, p, order=torch.zeros(3, 5, dtype=torch.long))


def _per_element_query_twin(q_np: np.ndarray, p_np: np.ndarray) -> np.ndarray:
    """One :class:`PointIndex` per batch element (its checks, copies and precision rule)."""
    return np.stack([PointIndex(p_np[i]).query(q_np[i]) for i in range(len(p_np))])


@pytest.mark.skipif(knn_module._PyKDTree is None, reason="the per-element trees are pykdtree's")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_element_trees_equal_point_index_trees_with_ties(dtype: type) -> None:
    """The per-element search builds PointIndex's trees without its per-element checks: the same indices, exact
    ties included (lattice queries equidistant from 2-8 points, which the tree's own walk decides), for strided
    inputs too."""
    g = np.random.default_rng(3)
    lattice = np.stack(np.meshgrid(*[np.arange(6)] * 3, indexing="ij"), -1).reshape(-1, 3) * 0.125
    pts = np.stack([g.permutation(lattice) for _ in range(3)]).astype(dtype)  # (3, 216, 3)
    halves = g.integers(0, 11, size=(3, 500, 3)) * 0.0625  # on the lattice, edge/face/cell midpoints
    queries = np.concatenate([halves, g.normal(0.3, 0.2, size=(3, 300, 3))], 1).astype(dtype)
    want = _per_element_query_twin(queries, pts)
    got = knn_module._per_element_query(queries, pts, -1)
    assert np.array_equal(got, want)
    strided = np.asfortranarray(queries)  # a layout the search has to copy
    assert np.array_equal(knn_module._per_element_query(strided, np.asfortranarray(pts), -1), want)
    dist = np.linalg.norm(queries[:, :, None].astype(np.float64) - pts[:, None].astype(np.float64), axis=-1)
    ties = (dist <= dist.min(-1, keepdims=True) + 1e-12).sum(-1)
    assert (ties > 1).sum() > 300  # exact ties, where the tree's own order picks the index
    t = torch.from_numpy(queries)
    assert torch.equal(nearest_indices(t, torch.from_numpy(pts), backend="kdtree"), torch.from_numpy(want))
    # near ties that only the search precision decides: q - p1 and p2 - q have the same coordinates in another
    # order (exact on this dyadic grid), then p2 moves one ulp away along x
    q = g.integers(-(2**12), 2**12, size=(2000, 1, 3)) * 2.0**-14
    d = g.integers(-(2**12), 2**12, size=(2000, 1, 3)) * 2.0**-14
    p2 = (q + d[..., [1, 2, 0]]).astype(dtype)
    p2[..., 0] = np.nextafter(p2[..., 0], np.where(d[..., 1] < 0, -1.0, 1.0).astype(dtype) * np.inf)
    pairs, q = np.concatenate([(q - d).astype(dtype), p2], 1), q.astype(dtype)
    want = _per_element_query_twin(q, pairs)
    assert np.array_equal(knn_module._per_element_query(q, pairs, -1), want)
    if dtype == np.float32:  # the float64 search of the same float32 values decides some of them otherwise
        assert not np.array_equal(_per_element_query_twin(q.astype(np.float64), pairs.astype(np.float64)), want)

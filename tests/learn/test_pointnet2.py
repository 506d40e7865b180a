"""PointNet++ ops against naive references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contactkit.learn.pointnet2 import ball_query, farthest_point_sample, gather_points, three_nn_interpolate


def _fps_naive(points: np.ndarray, n: int) -> list[int]:
    chosen = [0]
    for _ in range(n - 1):
        d = np.array([min(np.sum((p - points[c]) ** 2) for c in chosen) for p in points])
        chosen.append(int(np.argmax(d)))
    return chosen


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fps_matches_naive(dtype):
    pts = torch.rand(2, 60, 3, generator=torch.Generator().manual_seed(0), dtype=dtype)
    idx = farthest_point_sample(pts, 12)
    assert idx.shape == (2, 12) and idx.dtype == torch.long
    for b in range(2):
        assert idx[b].tolist() == _fps_naive(pts[b].double().numpy(), 12)


def test_fps_start_and_bad_count():
    pts = torch.rand(1, 10, 3, generator=torch.Generator().manual_seed(1))
    assert farthest_point_sample(pts, 3, start=torch.tensor([4]))[0, 0] == 4
    with pytest.raises(ValueError, match=r"n_samples must be in \[1, 10\]"):
        farthest_point_sample(pts, 11)


def test_ball_query_matches_naive():
    gen = torch.Generator().manual_seed(2)
    pts = torch.rand(2, 80, 3, generator=gen)
    centres = torch.rand(2, 7, 3, generator=gen)
    radius, k = 0.25, 6
    idx = ball_query(pts, centres, radius, k)
    assert idx.shape == (2, 7, k)
    for b in range(2):
        for s in range(7):
            d = ((pts[b] - centres[b, s]) ** 2).sum(-1).sqrt().numpy()
            order = np.argsort(d)
            inside = [int(i) for i in order if d[i] <= radius][:k]
            expected = inside + [int(order[0])] * (k - len(inside))
            assert idx[b, s].tolist() == expected


def test_ball_query_pads_small_clouds():
    pts = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0]]])
    idx = ball_query(pts, torch.zeros(1, 1, 3), 0.5, 4)
    assert idx.tolist() == [[[0, 0, 0, 0]]]


def test_three_nn_interpolate_matches_naive():
    gen = torch.Generator().manual_seed(3)
    dense = torch.rand(2, 30, 3, generator=gen, dtype=torch.float64)
    coarse = torch.rand(2, 9, 3, generator=gen, dtype=torch.float64)
    feat = torch.randn(2, 9, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    out = three_nn_interpolate(dense, coarse, feat)
    for b in range(2):
        for n in range(30):
            d = ((coarse[b] - dense[b, n]) ** 2).sum(-1).sqrt()
            near = torch.argsort(d)[:3]
            w = 1.0 / (d[near] + 1e-8)
            ref = (feat[b, near] * (w / w.sum())[:, None]).sum(0)
            torch.testing.assert_close(out[b, n], ref)
    # A query on a coarse point takes that point's feature; gradients reach the features.
    on = three_nn_interpolate(coarse, coarse, feat)
    torch.testing.assert_close(on, feat, atol=1e-6, rtol=0)
    torch.autograd.gradcheck(lambda f: three_nn_interpolate(dense, coarse, f), (feat,))


def test_gather_points_shapes():
    vals = torch.arange(12.0).reshape(1, 4, 3)
    out = gather_points(vals, torch.tensor([[[3, 0], [1, 1]]]))
    assert out.shape == (1, 2, 2, 3)
    assert out[0, 0, 0].tolist() == [9.0, 10.0, 11.0]

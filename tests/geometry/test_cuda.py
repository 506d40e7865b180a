"""CUDA paths (chunked brute force searches) against the CPU ones; skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from geometry_meshes import holey_sphere, icosphere

from contactkit.geometry import SDFGrid, closest_points_on_mesh, contains, nearest_points, signed_distance

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
D = torch.float64
CUDA = torch.device("cuda")


def test_nearest_points_cuda_matches_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(4, 300, 3, generator=g, dtype=D) * 0.05
    p = torch.randn(4, 500, 3, generator=g, dtype=D) * 0.05
    cpu = nearest_points(q, p)
    qc = q.to(CUDA).requires_grad_()
    gpu = nearest_points(qc, p.to(CUDA))
    assert torch.equal(gpu.idx.cpu(), cpu.idx)
    np.testing.assert_allclose(gpu.dist.detach().cpu().numpy(), cpu.dist.numpy(), atol=1e-14)
    gpu.dist.sum().backward()
    assert qc.grad is not None and qc.grad.device.type == "cuda"


def test_mesh_queries_cuda_match_cpu() -> None:
    v, f = icosphere(2)
    pts = torch.randn(2, 200, 3, generator=torch.Generator().manual_seed(1), dtype=D) * 0.06
    cpu = closest_points_on_mesh(pts, v, f)
    gpu = closest_points_on_mesh(pts.to(CUDA), v.to(CUDA), f.to(CUDA))
    np.testing.assert_allclose(gpu.dist.cpu().numpy(), cpu.dist.numpy(), atol=1e-12)
    for closed in (True, False):
        sd_cpu = signed_distance(pts, v, f, closed=closed)
        sd_gpu = signed_distance(pts.to(CUDA), v.to(CUDA), f, closed=closed)
        np.testing.assert_allclose(sd_gpu.cpu().numpy(), sd_cpu.numpy(), atol=1e-12)
    hv, hf = holey_sphere()
    assert torch.equal(contains(pts.to(CUDA), hv.to(CUDA), hf).cpu(), contains(pts, hv, hf))


def test_sdf_grid_on_cuda() -> None:
    v, f = icosphere(2)
    grid = SDFGrid.build(v, f, resolution=16, dtype=D)
    pts = torch.randn(1, 100, 3, generator=torch.Generator().manual_seed(2), dtype=D) * 0.05
    np.testing.assert_allclose(
        grid.to(CUDA).sample(pts.to(CUDA)).cpu().numpy(), grid.sample(pts).numpy(), atol=1e-12
    )

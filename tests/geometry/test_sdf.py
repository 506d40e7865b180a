"""Signed distance grids: accuracy on a sphere, exact trilinear interpolation, gradients, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from geometry_meshes import SPHERE_RADIUS, box, box_sdf, icosphere

from contactkit.errors import MeshError, ShapeError
from contactkit.geometry import SDFGrid
from contactkit.geometry.sdf import trilinear_sample, trilinear_sample_stacked

D = torch.float64
R = SPHERE_RADIUS


@pytest.fixture(scope="module")
def sphere_grid() -> SDFGrid:
    v, f = icosphere(4)
    return SDFGrid.build(v, f, resolution=64, padding=0.02, dtype=D)


def test_sphere_grid_within_half_millimetre(sphere_grid: SDFGrid) -> None:
    lo, hi = sphere_grid.bounds
    g = torch.Generator().manual_seed(0)
    pts = lo + torch.rand(1, 5000, 3, generator=g, dtype=D) * (hi - lo)
    norm = pts.norm(dim=-1)
    # |p| - r has a kink at the centre (its medial axis), where trilinear interpolation is only O(spacing)
    keep = norm > 0.2 * R
    err = (sphere_grid.sample(pts) - (norm - R))[keep].abs()
    assert sphere_grid.resolution == 64
    assert float(err.max()) < 5e-4


def test_sphere_grid_nodes_are_exact_signed_distances(sphere_grid: SDFGrid) -> None:
    lo, _ = sphere_grid.bounds
    idx = torch.tensor([[0, 0, 0], [32, 31, 30], [10, 50, 20], [63, 63, 63]])
    nodes = lo + sphere_grid.spacing * idx.to(D)
    values = sphere_grid.values[idx[:, 0], idx[:, 1], idx[:, 2]]
    np.testing.assert_allclose(values.numpy(), (nodes.norm(dim=-1) - R).numpy(), atol=1e-4)
    np.testing.assert_allclose(sphere_grid.sample(nodes[None])[0].numpy(), values.numpy(), atol=1e-14)
    assert float(values[1]) < 0 < float(values[0])  # negative inside


def test_box_grid_outside_extension_and_sign() -> None:
    half = torch.tensor([0.03, 0.02, 0.01], dtype=D)
    v, f = box(tuple(half.tolist()))
    grid = SDFGrid.build(v, f, resolution=32, padding=0.01, dtype=D)
    far = torch.tensor([[[0.2, 0.0, 0.0], [0.0, -0.15, 0.0], [0.0, 0.0, 0.3]]], dtype=D)
    # along the box normals the extension is exact (the box sdf is linear there)
    np.testing.assert_allclose(grid.sample(far).numpy(), box_sdf(far, half).numpy(), atol=1e-9)
    inside = torch.tensor([[[0.0, 0.0, 0.0], [0.02, 0.01, 0.0]]], dtype=D)
    assert bool((grid.sample(inside) < 0).all())


def test_trilinear_reproduces_linear_fields() -> None:
    res = 5
    origin = torch.tensor([-0.1, 0.2, 0.0], dtype=D)
    spacing = 0.05
    axis = torch.arange(res, dtype=D) * spacing
    gx, gy, gz = torch.meshgrid(axis + origin[0], axis + origin[1], axis + origin[2], indexing="ij")
    coef = torch.tensor([0.3, -1.2, 2.0], dtype=D)
    values = coef[0] * gx + coef[1] * gy + coef[2] * gz + 0.7
    pts = origin + torch.rand(2, 50, 3, generator=torch.Generator().manual_seed(1), dtype=D) * spacing * (
        res - 1
    )
    out = trilinear_sample(values, origin, spacing, pts)
    np.testing.assert_allclose(out.numpy(), (pts @ coef + 0.7).numpy(), atol=1e-12)


def test_trilinear_gradcheck_inside_and_outside() -> None:
    g = torch.Generator().manual_seed(2)
    values = torch.randn(6, 6, 6, generator=g, dtype=D).requires_grad_()
    origin = torch.zeros(3, dtype=D)
    spacing = 0.1
    inside = torch.rand(1, 20, 3, generator=g, dtype=D) * 0.5
    outside = torch.tensor([[[0.73, 0.22, 0.31], [-0.2, -0.13, 0.26], [0.14, 0.93, -0.3]]], dtype=D)
    pts = torch.cat([inside, outside], dim=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, v: trilinear_sample(v, origin, spacing, p), (pts, values))


def _trilinear_autograd(values: torch.Tensor, origin: torch.Tensor, spacing: float, pts: torch.Tensor) -> torch.Tensor:
    """Naive reference: the 8 corner values weighted by their trilinear weights, differentiated by autograd."""
    res = values.shape[0]
    u = (pts - origin) / spacing
    uc = u.clamp(0.0, res - 1.0)
    i0 = uc.detach().floor().clamp(0, res - 2).long()
    f = uc - i0.to(uc.dtype)
    out = torch.zeros(pts.shape[:-1], dtype=pts.dtype)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (f[..., 0] if dx else 1 - f[..., 0]) * (f[..., 1] if dy else 1 - f[..., 1])
                w = w * (f[..., 2] if dz else 1 - f[..., 2])
                out = out + w * values[i0[..., 0] + dx, i0[..., 1] + dy, i0[..., 2] + dz]
    return out + ((u - uc) * spacing).norm(dim=-1)


def test_analytic_gradient_matches_autograd_reference() -> None:
    g = torch.Generator().manual_seed(3)
    values = torch.randn(7, 7, 7, generator=g, dtype=D)
    origin = torch.tensor([0.1, -0.2, 0.05], dtype=D)
    spacing = 0.04
    # inside, outside along one axis, outside across a corner
    pts = origin + (torch.rand(2, 300, 3, generator=g, dtype=D) * 1.6 - 0.3) * spacing * 6
    grads = []
    for fn in (trilinear_sample, _trilinear_autograd):
        v, p = values.clone().requires_grad_(), pts.clone().requires_grad_()
        out = fn(v, origin, spacing, p)
        (out * torch.linspace(0.5, 2.0, out.numel(), dtype=D).reshape(out.shape)).sum().backward()
        grads.append((out.detach(), p.grad, v.grad))
    for fast, ref in zip(grads[0], grads[1], strict=True):
        np.testing.assert_allclose(fast.numpy(), ref.numpy(), atol=1e-12)


def test_stacked_grids_match_single_grids() -> None:
    g = torch.Generator().manual_seed(4)
    values = torch.randn(3, 6, 6, 6, generator=g, dtype=D)
    origins = torch.randn(3, 3, generator=g, dtype=D) * 0.1
    spacings = torch.tensor([0.02, 0.05, 0.03], dtype=D)
    which = torch.tensor([2, 0, 2, 1])
    pts = origins[which, None] + torch.rand(4, 40, 3, generator=g, dtype=D) * 0.3 - 0.05
    out = trilinear_sample_stacked(values, origins, spacings, which, pts)
    for b, k in enumerate(which.tolist()):
        ref = trilinear_sample(values[k], origins[k], float(spacings[k]), pts[b])
        np.testing.assert_allclose(out[b].numpy(), ref.numpy(), atol=1e-14)
    pts.requires_grad_()
    vals = values.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p, v: trilinear_sample_stacked(v, origins, spacings, which, p), (pts, vals))
    with pytest.raises(ShapeError, match="grid_index"):
        trilinear_sample_stacked(values, origins, spacings, which[:2], pts)


def test_to_and_arrays_round_trip(sphere_grid: SDFGrid, tmp_path) -> None:  # type: ignore[no-untyped-def]
    g32 = sphere_grid.to(dtype=torch.float32)
    assert g32.values.dtype == torch.float32 and g32.origin.dtype == torch.float32
    pts = torch.randn(1, 10, 3, generator=torch.Generator().manual_seed(3), dtype=D) * 0.03
    np.testing.assert_allclose(
        g32.sample(pts.float()).double().numpy(), sphere_grid.sample(pts).numpy(), atol=1e-6
    )
    path = tmp_path / "grid.npz"
    np.savez(path, **sphere_grid.to_arrays())
    with np.load(path) as data:
        back = SDFGrid.from_arrays(data)
    assert torch.equal(back.values, sphere_grid.values) and back.spacing == sphere_grid.spacing
    assert torch.equal(back.origin, sphere_grid.origin)
    arrays = sphere_grid.to_arrays()
    arrays["version"] = np.asarray(99)
    with pytest.raises(ShapeError, match="version 99"):
        SDFGrid.from_arrays(arrays)
    del arrays["values"]
    with pytest.raises(ShapeError, match="missing the key 'values'"):
        SDFGrid.from_arrays(arrays)


def test_float32_build_and_sample() -> None:
    v, f = icosphere(2)
    grid = SDFGrid.build(v.float(), f, resolution=16)
    out = grid.sample(torch.zeros(1, 1, 3))
    assert out.dtype == torch.float32 and float(out) < -0.04


def test_bad_inputs_raise_clear_errors(sphere_grid: SDFGrid) -> None:
    v, f = icosphere(1)
    with pytest.raises(ShapeError, match="resolution must be an integer >= 2"):
        SDFGrid.build(v, f, resolution=1)
    with pytest.raises(ShapeError, match="padding"):
        SDFGrid.build(v, f, padding=-1.0)
    with pytest.raises(MeshError, match="faces is empty"):
        SDFGrid.build(v, f[:0])
    with pytest.raises(ShapeError, match="call grid.to"):
        sphere_grid.sample(torch.zeros(1, 2, 3))
    with pytest.raises(ShapeError, match=r"points must have shape \(B, N, 3\)"):
        sphere_grid.sample(torch.zeros(2, 3, dtype=D))
    with pytest.raises(ShapeError, match=r"\(R, R, R\)"):
        SDFGrid(origin=torch.zeros(3), spacing=0.1, values=torch.zeros(4, 4, 5))


def test_all_inside_and_float32_match_autograd_reference() -> None:
    """The forward skips the outside-the-box terms when every point is inside; float32 to 1e-6."""
    g = torch.Generator().manual_seed(8)
    values = torch.randn(9, 9, 9, generator=g, dtype=D)
    origin = torch.tensor([-0.1, 0.0, 0.2], dtype=D)
    spacing = 0.01
    for dtype, inside_only in ((D, True), (torch.float32, True), (torch.float32, False)):
        lo, hi = (0.0, 8.0) if inside_only else (-2.0, 10.0)
        pts = origin + (torch.rand(3, 200, 3, generator=g, dtype=D) * (hi - lo) + lo) * spacing
        outs = []
        for fn in (trilinear_sample, _trilinear_autograd):
            p = pts.to(dtype).requires_grad_()
            out = fn(values.to(dtype), origin.to(dtype), spacing, p)
            out.sum().backward()
            outs.append((out.detach().double(), p.grad.double()))
        (out_f, grad_f), (out_r, grad_r) = outs
        single = dtype == torch.float32
        np.testing.assert_allclose(out_f.numpy(), out_r.numpy(), atol=1e-6 if single else 1e-12)  # metres
        # gradients are values / spacing (~100-300 here): float32 rounding scales with them (1e-6 of the scale)
        np.testing.assert_allclose(grad_f.numpy(), grad_r.numpy(), rtol=1e-5 if single else 1e-12,
                                   atol=3e-4 if single else 1e-9)


class _TrilinearPointLayout(torch.autograd.Function):
    """Reference twin of ``sdf._Trilinear``: the same operations on the points' own ``(..., 3)`` layout (the
    sampler before it moved to coordinate planes); the fast sampler must match it bitwise."""

    @staticmethod
    def forward(ctx, values, points, origin, spacing, grid_start):  # type: ignore[no-untyped-def]
        res = values.shape[-1]
        u = (points - origin) / spacing
        uc = u.clamp(0.0, res - 1.0)
        i0f = uc.floor().clamp_(0, res - 2)
        f = uc - i0f
        i0 = i0f.to(torch.int32)
        base = (i0[..., 0] * res + i0[..., 1]) * res + i0[..., 2]
        if grid_start is not None:
            base = base + grid_start[..., 0].to(torch.int32)
        m = base.numel()
        r2 = res * res
        offsets = torch.tensor([0, 1, res, res + 1, r2, r2 + 1, r2 + res, r2 + res + 1], dtype=torch.int32)
        c = values.reshape(-1).index_select(0, (base.reshape(1, m) + offsets.view(8, 1)).view(-1)).view(8, m)
        fx, fy, fz = (a.reshape(-1) for a in f.unbind(-1))
        dz = c[1::2] - c[0::2]
        cz = c[0::2] + fz * dz
        dy = cz[1::2] - cz[0::2]
        cy = cz[0::2] + fy * dy
        dx = cy[1] - cy[0]
        out = (cy[0] + fx * dx).view(f.shape[:-1])
        dzy = dz[0::2] + fy * (dz[1::2] - dz[0::2])
        grad_f = torch.stack((dx, dy[0] + fx * (dy[1] - dy[0]), dzy[0] + fx * (dzy[1] - dzy[0])), -1).view(f.shape)
        grad_points = grad_f / spacing * (u == uc).to(u.dtype)
        offset = (u - uc) * spacing
        dist = offset.norm(dim=-1)
        out = out + dist
        grad_points = grad_points + offset / dist.clamp(min=torch.finfo(dist.dtype).tiny).unsqueeze(-1)
        ctx.save_for_backward(grad_points, f, base)
        ctx.values_shape = values.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[no-untyped-def]
        grad_points, f, base = ctx.saved_tensors
        res = ctx.values_shape[-1]
        r2 = res * res
        offsets = torch.tensor([0, 1, res, res + 1, r2, r2 + 1, r2 + res, r2 + res + 1])
        fx, fy, fz = (torch.stack((1.0 - a, a), -1) for a in f.unbind(-1))
        w = (fx[..., :, None, None] * fy[..., None, :, None] * fz[..., None, None, :]).flatten(-3)
        flat = torch.zeros(ctx.values_shape, dtype=grad_out.dtype).view(-1)
        grad_values = flat.index_add_(0, (base.long().unsqueeze(-1) + offsets).reshape(-1),
                                      (grad_out.unsqueeze(-1) * w).reshape(-1)).view(ctx.values_shape)
        return grad_values, grad_out.unsqueeze(-1) * grad_points, None, None, None


@pytest.mark.parametrize("dtype", [torch.float32, D])
@pytest.mark.parametrize("inside_only", [True, False])
def test_plane_layout_sampler_is_bitwise_the_point_layout(dtype: torch.dtype, inside_only: bool) -> None:
    """Values, point gradients (and their contiguous (..., 3) layout) and grid gradients equal the twin bitwise,
    one grid and stacked grids, inside the box only and across its faces and corners."""
    from contactkit.geometry.sdf import _Trilinear

    g = torch.Generator().manual_seed(21)
    values = torch.randn(3, 8, 8, 8, generator=g, dtype=D).to(dtype)
    origins = (torch.randn(3, 3, generator=g, dtype=D) * 0.1).to(dtype)
    spacings = torch.tensor([0.01, 0.02, 0.015], dtype=dtype)
    which = torch.tensor([2, 0, 1, 2])
    lo, hi = (0.0, 7.0) if inside_only else (-3.0, 10.0)
    u = torch.rand(4, 150, 3, generator=g, dtype=D) * (hi - lo) + lo
    u[0, :8] = torch.tensor([0.0, 7.0, 3.0]).to(D)  # on the box faces: clamped and unclamped ties
    pts = (origins[which, None].double() + u * spacings[which, None, None].double()).to(dtype)
    start = (which * 8**3).view(-1, 1, 1)
    cases = [  # (values, points, origin, spacing, grid_start)
        (values[1], pts[1], origins[1], float(spacings[1]), None),
        (values, pts, origins[which, None], spacings[which, None, None], start),
    ]
    for vals, p, o, s, st in cases:
        w = torch.linspace(0.5, 2.0, p[..., 0].numel(), dtype=dtype).reshape(p.shape[:-1])
        results = []
        for fn in (_Trilinear.apply, _TrilinearPointLayout.apply):
            v_, p_ = vals.clone().requires_grad_(), p.clone().requires_grad_()
            out = fn(v_, p_, o, s, st)
            (out * w).sum().backward()
            assert p_.grad is not None and v_.grad is not None
            results.append((out.detach(), p_.grad, v_.grad))
        (out_f, gp_f, gv_f), (out_r, gp_r, gv_r) = results
        assert torch.equal(out_f, out_r) and torch.equal(gp_f, gp_r) and torch.equal(gv_f, gv_r)
        assert gp_f.is_contiguous()

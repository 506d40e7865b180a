"""A signed distance grid per object with differentiable trilinear sampling.

Sign convention: **negative inside, positive outside** (metres).

The grid is cubic: ``values[i, j, k]`` is the exact signed distance of the node
``origin + spacing * (i, j, k)`` (x along ``i``, y along ``j``, z along ``k``), computed once from the mesh
(libigl closest points; sign from the pseudonormal test on closed meshes or the generalised winding number
otherwise, see :mod:`contactkit.geometry.inside`). Sampling interpolates trilinearly and is differentiable
w.r.t. the query points (and the values). The interpolation error is O(spacing^2 * curvature) on smooth
parts of the field and up to about one spacing near its kinks (medial axis, sharp edges).

Points outside the grid: the query is clamped to the grid box, the field is interpolated there, and the
distance from the point to the box is added. Since the padding keeps the object inside the box, this is an
upper bound of the true (positive) distance that is exact along the box normals, continuous, and keeps a
gradient pointing back towards the object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from contactkit.errors import MeshError, ShapeError
from contactkit.geometry._checks import check_faces, check_points, check_verts, verts_numpy
from contactkit.geometry.inside import signed_distance
from contactkit.geometry.mesh_distance import mesh_index

__all__ = ["SDFGrid", "trilinear_sample", "trilinear_sample_stacked"]

#: Version of the array layout written by :meth:`SDFGrid.to_arrays`.
SDF_ARRAYS_VERSION = 1


def _corner_offsets(res: int, device: torch.device) -> torch.Tensor:
    """Flat-index offsets of the 8 cell corners in (dx, dy, dz) binary order, dz fastest."""
    r2 = res * res
    return torch.tensor([0, 1, res, res + 1, r2, r2 + 1, r2 + res, r2 + res + 1], device=device)


class _Trilinear(torch.autograd.Function):
    """Trilinear interpolation whose forward pass also computes the analytic spatial gradient.

    The refiner samples the SDF at every hand vertex of a whole batch at every iteration; building an autograd
    graph through the 8-corner gather and the lerps costs about twice the forward pass, whereas the analytic
    gradient of a trilinear cell is a few more lerps of values already gathered. First derivatives only.
    """

    @staticmethod
    def forward(
        ctx: Any,
        values: torch.Tensor,
        points: torch.Tensor,
        origin: torch.Tensor,
        spacing: float | torch.Tensor,
        grid_start: torch.Tensor | None,
    ) -> torch.Tensor:
        """values (..., R, R, R); points (..., 3); origin broadcastable to points; spacing a float or a tensor
        broadcastable to ``points[..., :1]``; grid_start: None or the flat index of each point's grid in
        ``values`` (int64, broadcastable to ``points[..., :1]``).

        Runs on coordinate planes ``(3, ...)``: an elementwise op whose last dimension is the 3 coordinates (or a
        broadcast ``(..., 1)`` against it) runs several times slower on the CPU than the same arithmetic on long
        rows. Every element goes through the same floating-point operations as in ``(..., 3)`` layout, so values
        and gradients are bitwise those of that layout (tested against it).
        """
        res = values.shape[-1]
        lead = points.shape[:-1]
        org = origin.expand(points.shape).movedim(-1, 0)
        spc = spacing.expand(*lead, 1).movedim(-1, 0) if isinstance(spacing, torch.Tensor) else spacing
        # the first op reads the points' own layout (a transposing copy costs 5-8 elementwise ops): (3, ...) planes
        dtype = torch.promote_types(points.dtype, org.dtype)
        if isinstance(spc, torch.Tensor):
            dtype = torch.promote_types(dtype, spc.dtype)
        u = torch.sub(points.movedim(-1, 0), org, out=points.new_empty((3, *lead), dtype=dtype)).div_(spc)
        uc = u.clamp(0.0, res - 1.0)
        i0f = uc.floor().clamp_(0, res - 2)
        f = uc - i0f  # (3, ...) in [0, 1]
        # flat index of each point's (0, 0, 0) corner, int32 when it fits: a (3, ...) -> (...) step, not (8, ...)
        idx_dtype = torch.int32 if values.numel() < 2**31 - 1 else torch.int64
        i0 = i0f.to(idx_dtype)
        base = (i0[0] * res + i0[1]) * res + i0[2]
        if grid_start is not None:
            base = base + grid_start.expand(*lead, 1)[..., 0].to(idx_dtype)
        # one gather of the 8 corners, corner-major (8, M): every lerp below runs on contiguous rows
        m = base.numel()
        corner_idx = base.reshape(1, m) + _corner_offsets(res, values.device).to(idx_dtype).view(8, 1)
        c = values.reshape(-1).index_select(0, corner_idx.view(-1)).view(8, m)  # rows (dx, dy, dz), dz fastest
        fx, fy, fz = (a.reshape(-1) for a in f.unbind(0))
        dz = c[1::2] - c[0::2]  # (4, M) rows (dx, dy): d/dfz along each z edge
        cz = c[0::2] + fz * dz  # lerp along z
        dy = cz[1::2] - cz[0::2]  # (2, M) rows dx
        cy = cz[0::2] + fy * dy  # lerp along y
        dx = cy[1] - cy[0]
        out = (cy[0] + fx * dx).view(lead)  # lerp along x
        dzy = dz[0::2] + fy * (dz[1::2] - dz[0::2])  # (2, M) rows dx
        grad_f = torch.empty_like(u)
        grad_f[0].view(-1).copy_(dx)
        torch.add(dy[0], fx * (dy[1] - dy[0]), out=grad_f[1].view(-1))  # a product then a sum, as written (no
        torch.add(dzy[0], fx * (dzy[1] - dzy[0]), out=grad_f[2].view(-1))  # fused multiply-add: same rounding)
        # clamped axes carry no interpolation gradient: a product by the 0/1 mask (torch.where's values up to the
        # sign of a zero, several times faster on CPU)
        grad_points = grad_f / spc * torch.eq(u, uc, out=torch.empty_like(u))
        if not torch.equal(u, uc):
            # outside the box: + distance to the box, whose gradient is the unit offset (0 inside the box)
            offset = u.new_empty(points.shape)  # written plane by plane into the norm's own (..., 3) layout
            torch.mul(u - uc, spc, out=offset.movedim(-1, 0))
            dist = offset.norm(dim=-1)  # the norm's own kernel on (..., 3)
            out = out + dist
            grad_points = grad_points + offset.movedim(-1, 0) / dist.clamp(min=torch.finfo(dist.dtype).tiny)
        ctx.save_for_backward(grad_points, f if values.requires_grad else None, base)
        ctx.values_shape = values.shape
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_points, f, base = ctx.saved_tensors  # grad_points and f as coordinate planes (3, ...)
        grad_values = None
        if ctx.needs_input_grad[0]:
            res = ctx.values_shape[-1]
            corner_idx = base.long().unsqueeze(-1) + _corner_offsets(res, base.device)
            fx, fy, fz = (torch.stack((1.0 - a, a), -1) for a in f.unbind(0))  # (..., 2) weights per axis
            w = (fx[..., :, None, None] * fy[..., None, :, None] * fz[..., None, None, :]).flatten(-3)  # (..., 8)
            contrib = (grad_out.unsqueeze(-1) * w).reshape(-1)
            flat = torch.zeros(ctx.values_shape, dtype=grad_out.dtype, device=grad_out.device).view(-1)
            grad_values = flat.index_add_(0, corner_idx.reshape(-1), contrib).view(ctx.values_shape)
        grad_pts = None
        if ctx.needs_input_grad[1]:  # returned in the points' (..., 3) layout, contiguous, as a product gives it
            grad_pts = grad_out.new_empty((*grad_out.shape, 3), dtype=torch.promote_types(grad_points.dtype,
                                                                                        grad_out.dtype))
            torch.mul(grad_points, grad_out, out=grad_pts.movedim(-1, 0))  # written plane by plane, no copy
        return grad_values, grad_pts, None, None, None


def trilinear_sample(
    values: torch.Tensor, origin: torch.Tensor, spacing: float, points: torch.Tensor
) -> torch.Tensor:
    """Trilinear interpolation of a cubic grid, with the outside-the-box extension described in the module.

    Args:
        values: (R, R, R) float node values (R >= 2).
        origin: (3,) float position of node (0, 0, 0), metres.
        spacing: node spacing, metres.
        points: (..., 3) float query points, same dtype/device as ``values``.

    Returns:
        (...) float interpolated values, differentiable (first derivatives) w.r.t. ``points`` and ``values``.
    """
    return _Trilinear.apply(values, points, origin, spacing, None)


def trilinear_sample_stacked(
    values: torch.Tensor, origins: torch.Tensor, spacings: torch.Tensor, grid_index: torch.Tensor, points: torch.Tensor
) -> torch.Tensor:
    """:func:`trilinear_sample` of ``G`` same-resolution grids at once, each batch element in its own grid.

    Args:
        values: (G, R, R, R) float node values.
        origins: (G, 3) float node-(0, 0, 0) positions, metres.
        spacings: (G,) float node spacings, metres.
        grid_index: (B,) int64 grid of each batch element.
        points: (B, N, 3) float query points in the frame of their grid.

    Returns:
        (B, N) float, differentiable (first derivatives) w.r.t. ``points`` and ``values``.
    """
    g, res = values.shape[0], values.shape[-1]
    if values.dim() != 4 or tuple(values.shape[1:]) != (res, res, res):
        raise ShapeError(f"values must have shape (G, R, R, R), got {tuple(values.shape)}")
    if origins.shape != (g, 3) or spacings.shape != (g,):
        raise ShapeError(f"origins and spacings must have shapes ({g}, 3) and ({g},)")
    if points.dim() != 3 or points.shape[-1] != 3 or grid_index.shape != points.shape[:1]:
        raise ShapeError(f"points must have shape (B, N, 3) and grid_index (B,), got {tuple(points.shape)} "
                         f"and {tuple(grid_index.shape)}")
    start = (grid_index * res**3).view(-1, 1, 1)
    return _Trilinear.apply(values, points, origins[grid_index, None], spacings[grid_index, None, None], start)


@dataclass
class SDFGrid:
    """Signed distance values on a cubic grid of ``R^3`` nodes (negative inside).

    Attributes:
        origin: (3,) float tensor, metres, position of node ``(0, 0, 0)`` (the grid's minimum corner).
        spacing: node spacing, metres.
        values: (R, R, R) float tensor of signed distances, metres, same dtype/device as ``origin``.
    """

    origin: torch.Tensor
    spacing: float
    values: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.values, torch.Tensor) or self.values.dim() != 3:
            raise ShapeError("values must be a (R, R, R) tensor")
        r = self.values.shape[0]
        if r < 2 or tuple(self.values.shape) != (r, r, r):
            raise ShapeError(f"values must have shape (R, R, R) with R >= 2, got {tuple(self.values.shape)}")
        if not isinstance(self.origin, torch.Tensor) or tuple(self.origin.shape) != (3,):
            raise ShapeError("origin must be a (3,) tensor")
        if not (np.isfinite(self.spacing) and self.spacing > 0):
            raise ShapeError(f"spacing must be a positive finite number, got {self.spacing}")
        if not bool(torch.isfinite(self.values).all()) or not bool(torch.isfinite(self.origin).all()):
            raise ShapeError("values and origin must be finite")

    @property
    def resolution(self) -> int:
        """Number of nodes per axis ``R``."""
        return int(self.values.shape[0])

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(min corner (3,), max corner (3,)) of the grid box, metres."""
        return self.origin, self.origin + self.spacing * (self.resolution - 1)

    @classmethod
    def build(
        cls,
        verts: torch.Tensor | np.ndarray,
        faces: torch.Tensor | np.ndarray,
        resolution: int = 64,
        padding: float = 0.02,
        *,
        closed: bool | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> SDFGrid:
        """Compute exact signed distances at the nodes of a cube around a mesh.

        Args:
            verts: (V, 3) float mesh vertices, metres; faces: (F, 3) int64.
            resolution: nodes per axis ``R`` (>= 2); memory is ``R^3`` values.
            padding: margin around the mesh's bounding cube, metres (>= 0). The cube has side
                ``max extent + 2 * padding`` and is centred on the bounding box.
            closed: sign method, see :func:`contactkit.geometry.inside.contains` (``None`` detects).
            dtype: dtype of the stored values and origin (computation is float64 on the CPU).

        Returns:
            The :class:`SDFGrid` on the CPU.
        """
        v = verts_numpy(check_verts(verts, allow_batch=False))
        f = check_faces(faces, v.shape[0])
        if int(resolution) != resolution or resolution < 2:
            raise ShapeError(f"resolution must be an integer >= 2, got {resolution}")
        if not (np.isfinite(padding) and padding >= 0):
            raise ShapeError(f"padding must be a finite number >= 0, got {padding}")
        used = v[np.unique(f)]
        lo, hi = used.min(axis=0), used.max(axis=0)
        side = float((hi - lo).max()) + 2.0 * float(padding)
        if not side > 0:
            raise MeshError("the mesh is a single point and padding is 0: cannot build an SDF grid")
        spacing = side / (resolution - 1)
        origin = (lo + hi) / 2.0 - side / 2.0
        axis = np.arange(resolution, dtype=np.float64) * spacing
        gx, gy, gz = np.meshgrid(axis + origin[0], axis + origin[1], axis + origin[2], indexing="ij")
        nodes = torch.from_numpy(np.stack([gx, gy, gz], axis=-1).reshape(1, -1, 3))
        vt = torch.from_numpy(v)
        with torch.no_grad():
            sd = signed_distance(nodes, vt, f, closed=closed, index=mesh_index(v, f))
        values = sd.reshape(resolution, resolution, resolution).to(dtype)
        return cls(origin=torch.from_numpy(origin).to(dtype), spacing=spacing, values=values)

    def sample(self, points: torch.Tensor) -> torch.Tensor:
        """Signed distance at query points by trilinear interpolation (differentiable).

        Args:
            points: (B, N, 3) float, metres, in the grid's (object) frame; dtype/device must match the grid
                (see :meth:`to`).

        Returns:
            (B, N) float signed distances, metres, negative inside.
        """
        check_points(points, "points")
        if points.dtype != self.values.dtype or points.device != self.values.device:
            raise ShapeError(
                f"points ({points.dtype}, {points.device}) must match the grid "
                f"({self.values.dtype}, {self.values.device}); call grid.to(device, dtype) first"
            )
        return trilinear_sample(self.values, self.origin, self.spacing, points)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SDFGrid:
        """A copy of the grid on ``device`` with values and origin in ``dtype`` (``None`` keeps each)."""
        return SDFGrid(
            origin=self.origin.to(device=device, dtype=dtype),
            spacing=self.spacing,
            values=self.values.to(device=device, dtype=dtype),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Numpy arrays for ``numpy.savez`` caching: origin (3,), spacing (), values (R, R, R), version."""
        return {
            "origin": self.origin.detach().cpu().numpy(),
            "spacing": np.asarray(self.spacing, dtype=np.float64),
            "values": self.values.detach().cpu().numpy(),
            "version": np.asarray(SDF_ARRAYS_VERSION, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray] | np.lib.npyio.NpzFile) -> SDFGrid:
        """Inverse of :meth:`to_arrays`; validates keys, version and shapes."""
        for key in ("origin", "spacing", "values", "version"):
            if key not in arrays:
                raise ShapeError(f"SDF grid arrays are missing the key {key!r}")
        version = int(np.asarray(arrays["version"]))
        if version != SDF_ARRAYS_VERSION:
            raise ShapeError(f"SDF grid arrays have version {version}, expected {SDF_ARRAYS_VERSION}")
        values = np.asarray(arrays["values"])
        if values.dtype not in (np.float32, np.float64):
            raise ShapeError(f"SDF grid values must be float32 or float64, got {values.dtype}")
        origin = np.asarray(arrays["origin"], dtype=values.dtype)
        return cls(
            origin=torch.from_numpy(origin.copy()),
            spacing=float(np.asarray(arrays["spacing"])),
            values=torch.from_numpy(values.copy()),
        )

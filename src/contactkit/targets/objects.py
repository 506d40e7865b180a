"""Object batching: per-grasp surface samples, normals, poses and SDF lookups of a grasp set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.geometry.sdf import SDFGrid, trilinear_sample_stacked
from contactkit.targets.contract import ObjectBatch

__all__ = ["GroupedSDF", "objects_from_grasps", "subset_objects"]


class GroupedSDF:
    """Per-sample SDF lookup for a batch whose samples use a few distinct objects.

    Args:
        grids: one :class:`contactkit.geometry.sdf.SDFGrid` per distinct object.
        group: (N0,) int64 — index into ``grids`` of each sample.
    """

    def __init__(self, grids: list[Any], group: Tensor) -> None:
        self.grids = grids
        self.group = group
        self._stacked: tuple[Tensor, Tensor, Tensor] | None = None
        self._stackable = (
            all(isinstance(grid, SDFGrid) for grid in grids) and len({grid.resolution for grid in grids}) == 1
        )

    def __call__(self, points: Tensor, rows: Tensor) -> Tensor:
        """points (B, N, 3) in each sample's object frame, rows (B,) -> (B, N) signed distance, metres."""
        g = self.group.to(rows.device)[rows]
        keys = torch.unique(g).tolist()
        if len(keys) == 1:
            return self._grid(keys[0], points).sample(points)
        if self._stackable:  # one gather over all grids
            values, origins, spacings = self._stack(points)
            return trilinear_sample_stacked(values, origins, spacings, g, points)
        parts, order = [], []
        for k in keys:
            idx = (g == k).nonzero(as_tuple=True)[0]
            parts.append(self._grid(k, points).sample(points[idx]))
            order.append(idx)
        inverse = torch.empty_like(g)
        cat_idx = torch.cat(order)
        inverse[cat_idx] = torch.arange(cat_idx.shape[0], device=g.device)
        return torch.cat(parts)[inverse]

    def _stack(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The grids' values (G, R, R, R), origins (G, 3) and spacings (G,) in ``like``'s dtype and device."""
        if self._stacked is None or self._stacked[0].dtype != like.dtype or self._stacked[0].device != like.device:
            grids = [self._grid(k, like) for k in range(len(self.grids))]
            self._stacked = (
                torch.stack([grid.values for grid in grids]),
                torch.stack([grid.origin for grid in grids]),
                torch.tensor([grid.spacing for grid in grids], dtype=like.dtype, device=like.device),
            )
        return self._stacked

    def _grid(self, k: int, like: Tensor) -> Any:
        grid = self.grids[k]
        if grid.values.dtype != like.dtype or grid.values.device != like.device:
            grid = grid.to(like.device, like.dtype)
            self.grids[k] = grid
        return grid


def objects_from_grasps(
    grasps: Any,
    *,
    num_points: int = 2048,
    sdf_resolution: int = 64,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ObjectBatch:
    """Object samples, normals, poses and SDF lookup of every grasp of a :class:`GraspSet`."""
    ids = list(dict.fromkeys(grasps.object_ids))
    pts_by, nrm_by, grids = {}, {}, []
    for oid in ids:
        obj = grasps.objects[oid]
        p, n = obj.sample_surface(num_points, seed=seed)
        pts_by[oid] = torch.as_tensor(np.array(p), dtype=dtype, device=device)
        nrm_by[oid] = torch.as_tensor(np.array(n), dtype=dtype, device=device)
        grids.append(obj.sdf_grid(sdf_resolution).to(device, dtype))
    group = torch.as_tensor([ids.index(o) for o in grasps.object_ids], dtype=torch.long, device=device)
    return ObjectBatch(
        points=torch.stack([pts_by[o] for o in grasps.object_ids]),
        normals=torch.stack([nrm_by[o] for o in grasps.object_ids]),
        rotation=torch.as_tensor(np.array(grasps.object_rotation), dtype=dtype, device=device),
        translation=torch.as_tensor(np.array(grasps.object_translation), dtype=dtype, device=device),
        sdf=GroupedSDF(grids, group),
    )


def subset_objects(objects: ObjectBatch, idx: Tensor) -> ObjectBatch:
    """The rows ``idx`` ((k,) long) of ``objects``, their SDF lookup re-indexed."""
    sdf = objects.sdf
    if isinstance(sdf, GroupedSDF):
        sdf = GroupedSDF(sdf.grids, sdf.group[idx])
    elif sdf is not None:
        base = sdf

        def sdf(points: Tensor, rows: Tensor, _b: Callable[[Tensor, Tensor], Tensor] = base) -> Tensor:
            return _b(points, idx.to(rows.device)[rows])

    return ObjectBatch(objects.points[idx], objects.normals[idx], objects.rotation[idx], objects.translation[idx], sdf)

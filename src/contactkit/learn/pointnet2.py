"""PointNet++ building blocks in plain PyTorch (no custom kernels).

Qi et al., "PointNet++: Deep hierarchical feature learning on point sets in a metric space" (NeurIPS 2017):
farthest point sampling, ball query grouping, set abstraction with a shared MLP and max pooling, and feature
propagation by inverse-distance interpolation from the three nearest coarse points. Every function is batched
and device-agnostic; index selection runs without gradient, features carry it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contactkit.errors import ShapeError


def farthest_point_sample(points: Tensor, n_samples: int, *, start: Tensor | None = None) -> Tensor:
    """Iterative farthest point sampling.

    Args:
        points: (B, N, 3) float point clouds.
        n_samples: number of points to select, 1 <= n_samples <= N.
        start: optional (B,) long index of the first point per cloud; defaults to index 0 so the result is
            deterministic (PointNet++'s reference picks it at random; pass random indices for augmentation).

    Returns:
        (B, n_samples) long indices into ``points``.
    """
    batch, n_points, _ = points.shape
    if not 1 <= n_samples <= n_points:
        raise ShapeError(f"n_samples must be in [1, {n_points}], got {n_samples}")
    with torch.no_grad():
        idx = torch.empty(batch, n_samples, dtype=torch.long, device=points.device)
        min_sq_dist = torch.full((batch, n_points), float("inf"), dtype=points.dtype, device=points.device)
        current = (
            start.to(points.device)
            if start is not None
            else torch.zeros(batch, dtype=torch.long, device=points.device)
        )
        rows = torch.arange(batch, device=points.device)
        for i in range(n_samples):
            idx[:, i] = current
            centre = points[rows, current]  # (B, 3)
            sq_dist = ((points - centre[:, None, :]) ** 2).sum(-1)
            min_sq_dist = torch.minimum(min_sq_dist, sq_dist)
            current = min_sq_dist.argmax(dim=1)
    return idx


def gather_points(values: Tensor, idx: Tensor) -> Tensor:
    """Gather along the point axis.

    Args:
        values: (B, N, C) per-point values.
        idx: (B, ...) long indices into N.

    Returns:
        (B, ..., C) gathered values (differentiable w.r.t. ``values``).
    """
    batch = values.shape[0]
    flat = idx.reshape(batch, -1)
    out = values.gather(1, flat[..., None].expand(-1, -1, values.shape[-1]))
    return out.reshape(*idx.shape, values.shape[-1])


def ball_query(points: Tensor, centres: Tensor, radius: float, n_neighbours: int) -> Tensor:
    """Up to ``n_neighbours`` points within ``radius`` of each centre, padded with the nearest one.

    Unlike the CUDA reference (first k in index order), the k *closest* points within the ball are taken, so
    the grouping does not depend on point order.

    Args:
        points: (B, N, 3) float.
        centres: (B, S, 3) float.
        radius: ball radius, same unit as the points.
        n_neighbours: group size k (k <= N).

    Returns:
        (B, S, k) long indices into ``points``; slots without a neighbour in the ball repeat the closest point.
    """
    with torch.no_grad():
        sq_dist = torch.cdist(centres, points).square()  # (B, S, N)
        k = min(n_neighbours, points.shape[1])
        near_sq, near_idx = sq_dist.topk(k, dim=-1, largest=False)
        outside = near_sq > radius * radius
        near_idx = torch.where(outside, near_idx[..., :1].expand_as(near_idx), near_idx)
        if k < n_neighbours:
            pad = near_idx[..., :1].expand(*near_idx.shape[:-1], n_neighbours - k)
            near_idx = torch.cat([near_idx, pad], dim=-1)
    return near_idx


def three_nn_interpolate(xyz_dense: Tensor, xyz_coarse: Tensor, feat_coarse: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Inverse-distance interpolation of coarse features from the (up to) three nearest coarse points.

    Args:
        xyz_dense: (B, N, 3) query positions.
        xyz_coarse: (B, S, 3) positions carrying features.
        feat_coarse: (B, S, C) features.
        eps: added to the distances so a query on a coarse point takes its feature.

    Returns:
        (B, N, C) interpolated features, differentiable w.r.t. ``feat_coarse`` (weights carry no gradient).
    """
    if xyz_coarse.shape[1] == 1:
        return feat_coarse.expand(-1, xyz_dense.shape[1], -1)
    with torch.no_grad():
        k = min(3, xyz_coarse.shape[1])
        dist, idx = torch.cdist(xyz_dense, xyz_coarse).topk(k, dim=-1, largest=False)
        weight = 1.0 / (dist + eps)
        weight = weight / weight.sum(dim=-1, keepdim=True)
    return (gather_points(feat_coarse, idx) * weight[..., None]).sum(dim=2)


def shared_mlp(channels: list[int], *, dims: int = 2) -> nn.Sequential:
    """1x1 convolutions with batch norm and ReLU, as PointNet's shared MLP.

    Args:
        channels: [in, hidden..., out] channel counts.
        dims: 1 for (B, C, N) inputs, 2 for (B, C, S, k) grouped inputs.
    """
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
        layers += [conv(c_in, c_out, 1, bias=False), norm(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class SetAbstraction(nn.Module):
    """Sample centres by FPS, group neighbours by ball query, encode each group with a shared MLP + max pool.

    Multi-scale grouping (MSG) when several radii are given: one MLP per scale, outputs concatenated.
    """

    def __init__(
        self,
        n_centres: int | None,
        radii: list[float],
        n_neighbours: list[int],
        in_channels: int,
        mlps: list[list[int]],
    ) -> None:
        """Args:
        n_centres: number of FPS centres; ``None`` groups all points into one global feature.
        radii: ball radius per scale (ignored for the global group).
        n_neighbours: group size per scale.
        in_channels: per-point feature channels C (0 for xyz only).
        mlps: hidden/output channels per scale, without the input (xyz + C) channel.
        """
        super().__init__()
        if len(radii) != len(n_neighbours) or len(radii) != len(mlps):
            raise ShapeError("radii, n_neighbours and mlps must have one entry per scale")
        self.n_centres = n_centres
        self.radii = list(radii)
        self.n_neighbours = list(n_neighbours)
        self.mlps = nn.ModuleList(shared_mlp([in_channels + 3, *m]) for m in mlps)
        self.out_channels = sum(m[-1] for m in mlps)

    def forward(self, xyz: Tensor, features: Tensor | None) -> tuple[Tensor, Tensor]:
        """Args:
            xyz: (B, N, 3) point positions.
            features: (B, N, C) per-point features or None.

        Returns:
            centres (B, S, 3) and their features (B, S, out_channels).
        """
        if self.n_centres is None:
            centres = xyz.mean(dim=1, keepdim=True)
            grouped = xyz[:, None, :, :] - centres[:, :, None, :]  # (B, 1, N, 3)
            if features is not None:
                grouped = torch.cat([grouped, features[:, None]], dim=-1)
            out = self.mlps[0](grouped.permute(0, 3, 1, 2)).amax(dim=-1)  # (B, C', 1)
            return centres, out.transpose(1, 2)
        centre_idx = farthest_point_sample(xyz, self.n_centres)
        centres = gather_points(xyz, centre_idx)
        outs = []
        for radius, k, mlp in zip(self.radii, self.n_neighbours, self.mlps, strict=True):
            group_idx = ball_query(xyz, centres, radius, k)
            grouped = (gather_points(xyz, group_idx) - centres[:, :, None, :]) / radius
            if features is not None:
                grouped = torch.cat([grouped, gather_points(features, group_idx)], dim=-1)
            outs.append(mlp(grouped.permute(0, 3, 1, 2)).amax(dim=-1))  # (B, C', S)
        return centres, torch.cat(outs, dim=1).transpose(1, 2)


class FeaturePropagation(nn.Module):
    """Interpolate coarse features back onto denser points (3 nearest, inverse distance) and refine by MLP."""

    def __init__(self, in_channels: int, mlp: list[int]) -> None:
        """Args:
        in_channels: coarse feature channels + skip feature channels of the dense level.
        mlp: output channels of the shared MLP layers.
        """
        super().__init__()
        self.mlp = shared_mlp([in_channels, *mlp], dims=1)
        self.out_channels = mlp[-1]

    def forward(self, xyz_dense: Tensor, xyz_coarse: Tensor, feat_dense: Tensor | None, feat_coarse: Tensor) -> Tensor:
        """Args:
            xyz_dense: (B, N, 3); xyz_coarse: (B, S, 3); feat_dense: (B, N, C1) or None; feat_coarse: (B, S, C2).

        Returns:
            (B, N, out_channels) features on the dense points.
        """
        interpolated = three_nn_interpolate(xyz_dense, xyz_coarse, feat_coarse)
        if feat_dense is not None:
            interpolated = torch.cat([interpolated, feat_dense], dim=-1)
        return self.mlp(interpolated.transpose(1, 2)).transpose(1, 2)

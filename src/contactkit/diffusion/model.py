"""JointDiffusion's denoiser (paper 002, Sec. 3.2, Fig. 4): a 3D U-Net over the CHOIR hand distance volume and a
contact branch over the 32 x 9 contact-Gaussian parameters, conditioned on a context volume.

- **3D U-Net** (predicts ``eps_d``): residual blocks (GroupNorm, SiLU, 3x3x3 convolutions) with the timestep
  embedding added, stride-2 downsampling, nearest-neighbour upsampling with skip connections; at the resolutions
  listed in ``attn_resolutions`` each level ends with an attention block: multi-head self-attention over the
  voxels, then multi-head cross-attention to the context tokens.
- **Context encoder**: the U-Net encoder's architecture (its own weights, no timestep) followed by spatial pooling
  through a shallow fully connected network (the bottleneck's voxels -> ``context_tokens`` tokens).
- **Contact branch** (predicts ``eps_c``): a residual MLP on the noisy contact vector ``z_t`` (flattened 32 x 9)
  concatenated with the U-Net bottleneck features (reduced by a 1x1x1 convolution and flattened), timestep
  embedding added in every block.

The network never sees a noise schedule: it maps ``(x_t, t, context)`` to noise predictions; schedules and
samplers live in :mod:`contactkit.diffusion.schedule`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from contactkit.errors import ContactkitError, ShapeError

__all__ = ["JointDiffusion", "JointDiffusionConfig", "JointOutput", "timestep_embedding"]


@dataclass(frozen=True)
class JointDiffusionConfig:
    """Constructor arguments of :class:`JointDiffusion` (saved with every checkpoint).

    Attributes:
        resolution: voxels per axis of the CHOIR volume (16 in the paper).
        context_channels: channels of the context volume (2 for a noisy pair: object BPS and noisy hand
            distances; 1 for the object alone).
        base_channels: channels of the first U-Net level.
        channel_mult: channel multiplier per level; level ``k`` runs at ``resolution / 2**k``.
        num_res_blocks: residual blocks per level.
        attn_resolutions: resolutions (voxels per axis) whose levels end with self- and cross-attention.
        num_heads: attention heads.
        context_tokens: tokens the context encoder's spatial pooling produces.
        num_anchors, contact_dim: shape of the contact vector (32 x 9: mean + 6 Cholesky entries).
        contact_hidden: width of the contact branch's residual MLP.
        contact_blocks: residual blocks of the contact branch.
        bottleneck_channels: channels the bottleneck is reduced to before it is flattened for the contact branch.
        dropout: dropout inside residual blocks.
    """

    resolution: int = 16
    context_channels: int = 2
    base_channels: int = 16
    channel_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 1
    attn_resolutions: tuple[int, ...] = (8, 4)
    num_heads: int = 4
    context_tokens: int = 8
    num_anchors: int = 32
    contact_dim: int = 9
    contact_hidden: int = 256
    contact_blocks: int = 3
    bottleneck_channels: int = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        levels = len(self.channel_mult)
        if levels < 1 or self.resolution % (2 ** (levels - 1)) != 0:
            raise ContactkitError(
                f"resolution {self.resolution} must be divisible by 2**(len(channel_mult)-1) = {2 ** (levels - 1)}"
            )
        for c in self.channel_mult:
            if (self.base_channels * c) % self.num_heads or (self.base_channels * c) % 8:
                raise ContactkitError(
                    f"base_channels * channel_mult ({self.base_channels * c}) must be divisible by num_heads "
                    f"({self.num_heads}) and by 8 (GroupNorm groups)"
                )
        if self.context_channels < 1:
            raise ContactkitError(f"context_channels must be >= 1, got {self.context_channels}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JointDiffusionConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ContactkitError(f"unknown JointDiffusionConfig keys {unknown}; valid: {sorted(known)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @property
    def bottleneck_resolution(self) -> int:
        return self.resolution // 2 ** (len(self.channel_mult) - 1)


class JointOutput(NamedTuple):
    """Noise predictions: ``eps_d (B, 1, R, R, R)`` and ``eps_c (B, num_anchors, contact_dim)``."""

    eps_d: Tensor
    eps_c: Tensor


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding (B, dim) of timesteps ``t`` (B,) (integer or float)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float().unsqueeze(-1) * freqs.unsqueeze(0)
    emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], -1)
    return emb


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock3d(nn.Module):
    """GroupNorm-SiLU-Conv x2 with an optional additive embedding and a 1x1x1 shortcut when channels change."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int | None, dropout: float) -> None:
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv3d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out) if emb_dim else None
        self.norm2 = _norm(c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor | None) -> Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        if self.emb is not None and emb is not None:
            h = h + self.emb(nn.functional.silu(emb))[:, :, None, None, None]
        h = self.conv2(self.drop(nn.functional.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock3d(nn.Module):
    """Multi-head self-attention over the voxels, then (when ``context_dim``) multi-head cross-attention to the
    context tokens; pre-LayerNorm, residual."""

    def __init__(self, channels: int, num_heads: int, context_dim: int | None) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(channels)
        self.self_attn = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.norm_cross = nn.LayerNorm(channels) if context_dim else None
        self.cross_attn = (
            nn.MultiheadAttention(channels, num_heads, kdim=context_dim, vdim=context_dim, batch_first=True)
            if context_dim else None
        )

    def forward(self, x: Tensor, context: Tensor | None) -> Tensor:
        b, c, d, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, DHW, C)
        q = self.norm_self(tokens)
        tokens = tokens + self.self_attn(q, q, q, need_weights=False)[0]
        if self.cross_attn is not None and self.norm_cross is not None and context is not None:
            q = self.norm_cross(tokens)
            tokens = tokens + self.cross_attn(q, context, context, need_weights=False)[0]
        return tokens.transpose(1, 2).reshape(b, c, d, h, w)


class Level(nn.Module):
    """Residual blocks of one resolution, optionally followed by attention."""

    def __init__(self, c_in: int, c_out: int, n_blocks: int, emb_dim: int | None, dropout: float,
                 attn: bool, num_heads: int, context_dim: int | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [ResBlock3d(c_in if i == 0 else c_out, c_out, emb_dim, dropout) for i in range(n_blocks)]
        )
        self.attn = AttnBlock3d(c_out, num_heads, context_dim) if attn else None

    def forward(self, x: Tensor, emb: Tensor | None, context: Tensor | None) -> Tensor:
        for blk in self.blocks:
            x = blk(x, emb)
        if self.attn is not None:
            x = self.attn(x, context)
        return x


class Encoder3d(nn.Module):
    """The U-Net encoder: input convolution, one :class:`Level` per resolution, stride-2 convolutions between.

    ``forward(x (B, C_in, R, R, R), emb, context) -> list`` of each level's output (the last is the bottleneck
    at ``R / 2**(levels-1)``)."""

    def __init__(self, cfg: JointDiffusionConfig, c_in: int, emb_dim: int | None, context_dim: int | None) -> None:
        super().__init__()
        chans = [cfg.base_channels * m for m in cfg.channel_mult]
        self.conv_in = nn.Conv3d(c_in, chans[0], 3, padding=1)
        self.levels = nn.ModuleList()
        self.down = nn.ModuleList()
        res = cfg.resolution
        prev = chans[0]
        for k, c in enumerate(chans):
            self.levels.append(Level(prev, c, cfg.num_res_blocks, emb_dim, cfg.dropout,
                                     res in cfg.attn_resolutions, cfg.num_heads, context_dim))
            prev = c
            if k < len(chans) - 1:
                self.down.append(nn.Conv3d(c, c, 3, stride=2, padding=1))
                res //= 2

    def forward(self, x: Tensor, emb: Tensor | None, context: Tensor | None) -> list[Tensor]:
        h = self.conv_in(x)
        outs = []
        for k, level in enumerate(self.levels):
            h = level(h, emb, context)
            outs.append(h)
            if k < len(self.down):
                h = self.down[k](h)
        return outs


class ContextEncoder(nn.Module):
    """Context volume (B, C, R, R, R) -> tokens (B, context_tokens, C_bottleneck): the U-Net encoder's
    architecture, then spatial pooling by a shallow fully connected network over the bottleneck's voxels."""

    def __init__(self, cfg: JointDiffusionConfig) -> None:
        super().__init__()
        self.encoder = Encoder3d(cfg, cfg.context_channels, None, None)
        n_vox = cfg.bottleneck_resolution ** 3
        self.pool = nn.Sequential(nn.Linear(n_vox, n_vox), nn.SiLU(), nn.Linear(n_vox, cfg.context_tokens))
        c = cfg.base_channels * cfg.channel_mult[-1]
        self.norm = nn.LayerNorm(c)

    def forward(self, context: Tensor) -> Tensor:
        feats = self.encoder(context, None, None)[-1].flatten(2)  # (B, C, n_vox)
        return self.norm(self.pool(feats).transpose(1, 2))  # (B, tokens, C)


class ContactBranch(nn.Module):
    """Residual MLP: ``[z_t (B, A*D), bottleneck features (B, F)] -> eps_c (B, A*D)``, timestep added per block."""

    def __init__(self, in_dim: int, feat_dim: int, hidden: int, n_blocks: int, emb_dim: int) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim + feat_dim, hidden)
        self.blocks = nn.ModuleList(
            [nn.ModuleDict({"norm": nn.LayerNorm(hidden), "fc1": nn.Linear(hidden, hidden),
                            "emb": nn.Linear(emb_dim, hidden), "fc2": nn.Linear(hidden, hidden)})
             for _ in range(n_blocks)]
        )
        self.out = nn.Linear(hidden, in_dim)

    def forward(self, z: Tensor, feats: Tensor, emb: Tensor) -> Tensor:
        h = self.inp(torch.cat([z, feats], -1))
        e = nn.functional.silu(emb)
        for blk in self.blocks:
            assert isinstance(blk, nn.ModuleDict)
            r = blk["fc1"](nn.functional.silu(blk["norm"](h))) + blk["emb"](e)
            h = h + blk["fc2"](nn.functional.silu(r))
        return self.out(nn.functional.silu(h))


class JointDiffusion(nn.Module):
    """The denoiser. ``forward(x_d, x_c, t, context) -> JointOutput``.

    Args (of forward):
        x_d: (B, 1, R, R, R) float — noisy normalised hand distance volume.
        x_c: (B, num_anchors, contact_dim) float — noisy normalised contact vector ``z_t``.
        t: (B,) int64 — diffusion timesteps.
        context: (B, context_channels, R, R, R) float — the normalised context volume.
    """

    def __init__(self, config: JointDiffusionConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        chans = [cfg.base_channels * m for m in cfg.channel_mult]
        self.emb_dim = 4 * cfg.base_channels
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base_channels, self.emb_dim), nn.SiLU(), nn.Linear(self.emb_dim, self.emb_dim)
        )
        ctx_dim = chans[-1]
        self.context_encoder = ContextEncoder(cfg)
        self.encoder = Encoder3d(cfg, 1, self.emb_dim, ctx_dim)
        self.mid = Level(chans[-1], chans[-1], 1, self.emb_dim, cfg.dropout, True, cfg.num_heads, ctx_dim)
        self.up_levels = nn.ModuleList()
        res = cfg.bottleneck_resolution
        for k in range(len(chans) - 2, -1, -1):
            res *= 2
            self.up_levels.append(Level(chans[k + 1] + chans[k], chans[k], cfg.num_res_blocks, self.emb_dim,
                                        cfg.dropout, res in cfg.attn_resolutions, cfg.num_heads, ctx_dim))
        self.out_norm = _norm(chans[0])
        self.out_conv = nn.Conv3d(chans[0], 1, 3, padding=1)
        self.reduce = nn.Conv3d(chans[-1], cfg.bottleneck_channels, 1)
        feat_dim = cfg.bottleneck_channels * cfg.bottleneck_resolution ** 3
        self.contact = ContactBranch(cfg.num_anchors * cfg.contact_dim, feat_dim, cfg.contact_hidden,
                                     cfg.contact_blocks, self.emb_dim)

    def _check(self, x_d: Tensor, x_c: Tensor, t: Tensor, context: Tensor) -> None:
        cfg = self.config
        r = cfg.resolution
        b = x_d.shape[0]
        if x_d.shape != (b, 1, r, r, r):
            raise ShapeError(f"x_d must have shape (B, 1, {r}, {r}, {r}), got {tuple(x_d.shape)}")
        if x_c.shape != (b, cfg.num_anchors, cfg.contact_dim):
            raise ShapeError(f"x_c must have shape ({b}, {cfg.num_anchors}, {cfg.contact_dim}), got {tuple(x_c.shape)}")
        if t.shape != (b,):
            raise ShapeError(f"t must have shape ({b},), got {tuple(t.shape)}")
        if context.shape != (b, cfg.context_channels, r, r, r):
            raise ShapeError(
                f"context must have shape ({b}, {cfg.context_channels}, {r}, {r}, {r}), got {tuple(context.shape)}"
            )

    def encode_context(self, context: Tensor) -> Tensor:
        """Context tokens (B, context_tokens, C) — computed once per sample and reused over the sampling steps."""
        return self.context_encoder(context)

    def forward(self, x_d: Tensor, x_c: Tensor, t: Tensor, context: Tensor) -> JointOutput:
        self._check(x_d, x_c, t, context)
        return self.denoise(x_d, x_c, t, self.encode_context(context))

    def denoise(self, x_d: Tensor, x_c: Tensor, t: Tensor, tokens: Tensor) -> JointOutput:
        """As :meth:`forward` with the context already encoded (``tokens`` from :meth:`encode_context`)."""
        emb = self.time_mlp(timestep_embedding(t, self.config.base_channels))
        skips = self.encoder(x_d, emb, tokens)
        h = self.mid(skips[-1], emb, tokens)
        feats = self.reduce(h).flatten(1)  # the bottleneck features shared with the contact branch
        for k, level in enumerate(self.up_levels):
            skip = skips[-2 - k]
            h = nn.functional.interpolate(h, size=skip.shape[-3:], mode="nearest")
            h = level(torch.cat([h, skip], 1), emb, tokens)
        eps_d = self.out_conv(nn.functional.silu(self.out_norm(h)))
        eps_c = self.contact(x_c.flatten(1), feats, emb).view_as(x_c)
        return JointOutput(eps_d, eps_c)

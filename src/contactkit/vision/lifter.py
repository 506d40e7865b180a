"""The context-aware graph network of paper 003 (Sec. 3.2): 2D hand and object keypoints -> 3D.

Two sub-graph networks (3 graph convolutions each) lift the hand skeleton (21 nodes, its 20 bones) and the object
box (8 nodes, its 12 edges) separately to initial 3D coordinates; the two graphs are then merged into one 29-node
graph — the sub-graphs' own edges plus learned hand-object interaction edges — whose 6 graph convolutions refine
both. ``mode="hand"`` / ``"object"`` keep one sub-graph only (the paper's Table 2 ablations).

Inputs are normalised image coordinates ``(x/z, y/z)`` (pixels through ``K^-1``, :mod:`contactkit.vision.camera`).
Each sub-graph sees its points relative to its root (hand: the wrist; object: the mean of the corners) divided by
their RMS spread ``s``, plus the root and ``log s`` (3 numbers that place and size it in the image) and a one-hot
node identity (the graph convolutions themselves are equivariant to relabelling nodes; the one-hot tells the
lifter which keypoint is which). The merged graph additionally sees both sub-graphs' placement numbers, which is
what lets it reason about the pair's relative position. Outputs are root-relative (hand: wrist at 0; object:
corner mean at 0), metres; :func:`~contactkit.vision.camera.translation_from_projections` places them in the
camera frame from the same 2D inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from contactkit.errors import ContactkitError, ShapeError
from contactkit.settings import from_fields
from contactkit.vision.camera import translation_from_projections
from contactkit.vision.graph import GraphNet, edges_to_adjacency, normalized_adjacency
from contactkit.vision.keypoints import BOX_EDGES, HAND_EDGES, NUM_HAND_KEYPOINTS, NUM_KEYPOINTS, NUM_OBJECT_KEYPOINTS

__all__ = ["LIFTER_MODES", "ContextAwareLifter", "LifterConfig", "LifterOutput", "lift_geometry", "normalize_subgraph"]

LifterMode = Literal["full", "hand", "object"]
LIFTER_MODES: tuple[str, ...] = ("full", "hand", "object")
#: Network outputs are in this unit (decimetres), so that root-relative coordinates are O(1).
OUTPUT_UNIT_M = 0.1


@dataclass(frozen=True)
class LifterConfig:
    """Constructor settings of :class:`ContextAwareLifter` (saved with its weights).

    Attributes:
        mode: "full" (both sub-graphs + merged graph), "hand" or "object" (one sub-graph only).
        hidden: features per node.
        sub_layers: graph convolutions per sub-graph (paper: 3).
        merged_layers: graph convolutions of the merged graph (paper: 6).
        context_dim: size of a per-sample context vector appended to every node (the image feature of the full
            pipeline; 0 for lifting from 2D alone).
    """

    mode: LifterMode = "full"
    hidden: int = 128
    sub_layers: int = 3
    merged_layers: int = 6
    context_dim: int = 0

    def __post_init__(self) -> None:
        if self.mode not in LIFTER_MODES:
            raise ContactkitError(f"mode must be one of {LIFTER_MODES}, got {self.mode!r}")
        if self.hidden < 1 or self.sub_layers < 2 or self.merged_layers < 2 or self.context_dim < 0:
            raise ContactkitError(f"invalid lifter sizes {self}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LifterConfig:
        """Rebuild from :func:`dataclasses.asdict` output; unknown keys are refused."""
        return from_fields(cls, "lifter", data)


@dataclass
class LifterOutput:
    """Lifted keypoints (root-relative, metres); a part the mode does not estimate is None.

    Attributes:
        hand: (B, 21, 3) refined hand keypoints, wrist at the origin.
        object: (B, 8, 3) refined box corners, their mean at the origin.
        hand_initial, object_initial: the sub-graphs' initial estimates, same shapes.
    """

    hand: Tensor | None
    object: Tensor | None
    hand_initial: Tensor | None
    object_initial: Tensor | None


def normalize_subgraph(points: Tensor, root: Tensor) -> tuple[Tensor, Tensor]:
    """Scale-free node inputs of one sub-graph.

    Args:
        points: (B, N, 2) normalised image coordinates.
        root: (B, 2) the sub-graph's root in the same coordinates.

    Returns:
        ``(relative (B, N, 2), placement (B, 3))``: ``(points - root) / s`` with ``s`` the RMS distance to the
        root, and ``(root_x, root_y, log s)``.
    """
    rel = points - root.unsqueeze(1)
    s = rel.pow(2).sum(-1).mean(-1).clamp_min(1e-12).sqrt()
    return rel / s[:, None, None], torch.cat([root, s.log().unsqueeze(-1)], dim=-1)


def lift_geometry(points: Tensor, relative: Tensor, spread: Tensor, offsets: Tensor) -> Tensor:
    """Root-relative 3D of a sub-graph from its 2D points, a metric spread and per-node offsets.

    A point ``X_i = x_i Z_i`` (normalised coordinates ``x_i``) relative to the root ``X_0 = x_0 Z_0`` is
    ``(x_i - x_0) Z_0 + x_i (Z_i - Z_0)``. With ``x_i - x_0 = s r_i`` (``r_i`` the scale-free inputs of
    :func:`normalize_subgraph`), the sub-graph's metric spread ``m = s Z_0`` and depth offsets ``dZ_i``:
    ``X_i - X_0 = (r_i m + x_i dZ_i + e_i, dZ_i)`` — exact for the right ``m`` and ``dZ``, so the network only
    predicts one size per sub-graph and one depth offset per node (plus a small free correction ``e_i``).

    Args:
        points: (B, N, 2) normalised image coordinates ``x_i``.
        relative: (B, N, 2) scale-free inputs ``r_i``.
        spread: (B,) metric spread ``m``, metres.
        offsets: (B, N, 3) ``(dZ_i, e_i)``, metres.

    Returns:
        (B, N, 3) metres (not yet re-centred on the root).
    """
    dz = offsets[..., :1]
    xy = relative * spread[:, None, None] + points * dz + offsets[..., 1:]
    return torch.cat([xy, dz], dim=-1)


def _recentre(x: Tensor, root: Tensor) -> Tensor:
    return x - root.unsqueeze(1)


class ContextAwareLifter(nn.Module):
    """Paper 003's context-aware graph network (module docstring).

    Args:
        config: :class:`LifterConfig`.
    """

    adj_hand: Tensor
    adj_object: Tensor

    def __init__(self, config: LifterConfig | None = None) -> None:
        super().__init__()
        self.config = config or LifterConfig()
        c = self.config
        self.register_buffer("adj_hand", edges_to_adjacency(NUM_HAND_KEYPOINTS, HAND_EDGES))
        self.register_buffer("adj_object", edges_to_adjacency(NUM_OBJECT_KEYPOINTS, BOX_EDGES))
        in_hand = 2 + 3 + 3 * NUM_HAND_KEYPOINTS + c.context_dim
        in_obj = 2 + 3 + 3 * NUM_OBJECT_KEYPOINTS + c.context_dim
        self.hand_net = (GraphNet(in_hand, c.hidden, 4, c.sub_layers, NUM_HAND_KEYPOINTS)
                         if c.mode in ("full", "hand") else None)
        self.object_net = (GraphNet(in_obj, c.hidden, 4, c.sub_layers, NUM_OBJECT_KEYPOINTS)
                           if c.mode in ("full", "object") else None)
        if c.mode == "full":
            self.merged_net: GraphNet | None = GraphNet(c.hidden + 3 + 6 + c.context_dim, c.hidden, 3,
                                                        c.merged_layers, NUM_KEYPOINTS)
            # Learned interaction edges (hand node x object corner), as logits of weights in (0, 1).
            self.interaction_logits: nn.Parameter | None = nn.Parameter(
                torch.full((NUM_HAND_KEYPOINTS, NUM_OBJECT_KEYPOINTS), -2.0))
        else:
            self.merged_net = None
            self.interaction_logits = None

    def merged_adjacency(self) -> Tensor:
        """(29, 29) adjacency of the merged graph: both skeletons plus sigmoid-weighted interaction edges."""
        if self.interaction_logits is None:
            raise ContactkitError(f"a {self.config.mode!r} lifter has no merged graph")
        w = torch.sigmoid(self.interaction_logits)
        top = torch.cat([self.adj_hand.to(w), w], dim=1)
        bottom = torch.cat([w.T, self.adj_object.to(w)], dim=1)
        return torch.cat([top, bottom], dim=0)

    def _sub(self, net: GraphNet, pts: Tensor, root: Tensor, adj: Tensor, context: Tensor | None
             ) -> tuple[Tensor, Tensor, Tensor]:
        """Features, initial root-relative 3D (metres) and placement of one sub-graph (see :func:`lift_geometry`)."""
        b, n = pts.shape[:2]
        rel, place = normalize_subgraph(pts, root)
        whole = torch.cat([rel.flatten(1), place], dim=-1)  # the sub-graph's whole 2D configuration
        parts = [rel, whole.unsqueeze(1).expand(b, n, 2 * n + 3),
                 torch.eye(n, dtype=pts.dtype, device=pts.device).expand(b, n, n)]
        if context is not None:
            parts.append(context.unsqueeze(1).expand(b, n, -1))
        adj_n = normalized_adjacency(adj.to(pts))
        feats = net.features(torch.cat(parts, dim=-1), adj_n)
        raw = net.out(feats, adj_n)  # (B, N, 4): depth offset, xy correction, log spread
        spread = OUTPUT_UNIT_M * torch.exp(raw[..., 3].mean(1).clamp(-5.0, 5.0))
        return feats, lift_geometry(pts, rel, spread, raw[..., :3] * OUTPUT_UNIT_M), place

    def forward(self, keypoints_2d: Tensor, context: Tensor | None = None) -> LifterOutput:
        """Lift normalised 2D keypoints.

        Args:
            keypoints_2d: (B, 29, 2) float normalised image coordinates, 21 hand keypoints then 8 box corners
                (a sub-graph the mode ignores may hold anything finite).
            context: (B, context_dim) per-sample features, required iff ``config.context_dim > 0``.
        """
        c = self.config
        if keypoints_2d.ndim != 3 or keypoints_2d.shape[1:] != (NUM_KEYPOINTS, 2):
            raise ShapeError(f"keypoints_2d must have shape (B, {NUM_KEYPOINTS}, 2), got {tuple(keypoints_2d.shape)}")
        if (context is None) != (c.context_dim == 0) or (
                context is not None and context.shape != (keypoints_2d.shape[0], c.context_dim)):
            got = None if context is None else tuple(context.shape)
            raise ShapeError(f"context must be (B, {c.context_dim}) (None when context_dim is 0), got {got}")
        hand_2d = keypoints_2d[:, :NUM_HAND_KEYPOINTS]
        obj_2d = keypoints_2d[:, NUM_HAND_KEYPOINTS:]
        hand = obj = hand_feats = obj_feats = hand_place = obj_place = None
        if self.hand_net is not None:
            hand_feats, hand, hand_place = self._sub(self.hand_net, hand_2d, hand_2d[:, 0], self.adj_hand, context)
            hand = _recentre(hand, hand[:, 0])
        if self.object_net is not None:
            obj_feats, obj, obj_place = self._sub(self.object_net, obj_2d, obj_2d.mean(1), self.adj_object, context)
            obj = _recentre(obj, obj.mean(1))
        if self.merged_net is None:
            return LifterOutput(hand=hand, object=obj, hand_initial=hand, object_initial=obj)
        assert hand is not None and obj is not None and hand_feats is not None and obj_feats is not None
        assert hand_place is not None and obj_place is not None
        b = keypoints_2d.shape[0]
        initial = torch.cat([hand, obj], dim=1)
        place = torch.cat([hand_place, obj_place], dim=-1).unsqueeze(1).expand(b, NUM_KEYPOINTS, 6)
        parts = [torch.cat([hand_feats, obj_feats], dim=1), initial / OUTPUT_UNIT_M, place]
        if context is not None:
            parts.append(context.unsqueeze(1).expand(b, NUM_KEYPOINTS, -1))
        delta = self.merged_net(torch.cat(parts, dim=-1), normalized_adjacency(self.merged_adjacency()))
        refined = initial + delta * OUTPUT_UNIT_M
        hand_ref = _recentre(refined[:, :NUM_HAND_KEYPOINTS], refined[:, 0])
        obj_ref = refined[:, NUM_HAND_KEYPOINTS:]
        obj_ref = _recentre(obj_ref, obj_ref.mean(1))
        return LifterOutput(hand=hand_ref, object=obj_ref, hand_initial=hand, object_initial=obj)

    def camera_frame(self, out: LifterOutput, keypoints_2d: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Camera-frame hand keypoints (B, 21, 3) and box corners (B, 8, 3) of ``out`` (None where absent):
        each part is translated to fit its own 2D keypoints (:func:`translation_from_projections`)."""
        hand = obj = None
        if out.hand is not None:
            hand = out.hand + translation_from_projections(out.hand, keypoints_2d[:, :NUM_HAND_KEYPOINTS]
                                                           ).unsqueeze(1)
        if out.object is not None:
            obj = out.object + translation_from_projections(out.object, keypoints_2d[:, NUM_HAND_KEYPOINTS:]
                                                            ).unsqueeze(1)
        return hand, obj

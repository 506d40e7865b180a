"""Linear blend skinning for articulated hand models (MANO format), as pure tensor functions.

The model is ``v = sum_j w_vj * A_j @ (T + B_S(beta) + B_P(theta))`` (Loper et al. 2015, Romero et al. 2017):
shape blend shapes ``B_S``, pose correctives ``B_P`` linear in the entries of ``R_j - I`` of the non-root
joints, and world transforms ``A_j`` chained along a kinematic tree whose rest frames are axis-aligned with
the model frame (so a zero pose gives the template). All functions keep the input dtype and device and are
differentiable with respect to every floating argument.

Speed: the kinematic chain is evaluated level by level (all joints at one tree depth in one batched matmul),
never joint by joint; the shape and pose blend shapes are each a single matmul against a precomputed dense
matrix (``addmm``); joint locations are regressed from ``beta`` directly via the precomputed
``J_regressor @ shapedirs``; skinning blends the 3x4 joint transforms with one matrix product and has a
hand-written backward (the transposed product), so forward + backward costs four matrix products plus
element-wise work linear in the number of vertices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from contactkit.errors import ShapeError
from contactkit.geometry.rotations import axis_angle_to_rotmat

__all__ = [
    "LBSOutput",
    "KinematicLevels",
    "kintree_levels",
    "batch_rigid_transform",
    "skin_vertices",
    "lbs",
]


@dataclass(frozen=True)
class LBSOutput:
    """Result of :func:`lbs`.

    Attributes:
        vertices: (B, V, 3) posed vertices (before any global translation).
        joints: (B, J, 3) posed joint locations.
        joint_transforms: (B, J, 4, 4) world transform of each joint frame: rotation = accumulated joint
            rotation, translation = posed joint location; ``x_world = G[:3,:3] @ x_local + G[:3,3]`` where the
            local frame is the joint's rest frame (model-axis-aligned, origin at the rest joint).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    joint_transforms: torch.Tensor


@dataclass(frozen=True)
class KinematicLevels:
    """A kinematic tree grouped by depth, for level-by-level chaining.

    Attributes:
        joints: per level, (n_l,) long joint indices (level 0 = the root).
        parent_pos: per level (from level 1), (n_l,) long position of each joint's parent in the previous
            level's ``joints`` (level 0 gets an empty tensor).
        inverse: (J,) long, position of joint j in ``cat(joints)``.
    """

    joints: tuple[torch.Tensor, ...]
    parent_pos: tuple[torch.Tensor, ...]
    inverse: torch.Tensor

    def to(self, device: torch.device | str) -> KinematicLevels:
        """Copy of the index tensors on ``device``."""
        return KinematicLevels(
            tuple(t.to(device) for t in self.joints),
            tuple(t.to(device) for t in self.parent_pos),
            self.inverse.to(device),
        )


def kintree_levels(parents: np.ndarray | list[int] | tuple[int, ...]) -> KinematicLevels:
    """Group the joints of a kinematic tree by depth.

    Args:
        parents: (J,) int, -1 for the single root; acyclic.

    Returns:
        :class:`KinematicLevels` on the CPU.

    Raises:
        ShapeError: if ``parents`` is not a tree with exactly one root.
    """
    par = np.asarray(parents, dtype=np.int64)
    n = len(par)
    if (par < 0).sum() != 1 or par.max(initial=-1) >= n:
        raise ShapeError("parents must describe a tree with exactly one root (parent -1)")
    depth = np.full(n, -1, dtype=np.int64)
    depth[par < 0] = 0
    for _ in range(n):
        todo = (depth < 0) & (depth[np.maximum(par, 0)] >= 0) & (par >= 0)
        if not todo.any():
            break
        depth[todo] = depth[par[todo]] + 1
    if (depth < 0).any():
        raise ShapeError("parents must describe a tree with exactly one root (parent -1)")
    levels = [np.nonzero(depth == d)[0] for d in range(int(depth.max()) + 1)]
    parent_pos = [np.zeros(0, dtype=np.int64)]
    for d in range(1, len(levels)):
        where = {int(j): i for i, j in enumerate(levels[d - 1])}
        parent_pos.append(np.asarray([where[int(par[j])] for j in levels[d]], dtype=np.int64))
    order = np.concatenate(levels)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    return KinematicLevels(
        tuple(torch.as_tensor(x) for x in levels),
        tuple(torch.as_tensor(x) for x in parent_pos),
        torch.as_tensor(inverse),
    )


def batch_rigid_transform(
    rotmats: torch.Tensor,
    joints: torch.Tensor,
    parents: torch.Tensor,
    levels: KinematicLevels | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain local joint rotations along the tree, one batched product per tree depth.

    Args:
        rotmats: (B, J, 3, 3) local rotation of each joint relative to its parent's (rest-aligned) frame.
        joints: (B, J, 3) rest joint locations.
        parents: (J,) long, -1 for the root.
        levels: from :func:`kintree_levels` on ``rotmats.device``; computed from ``parents`` when None.

    Returns:
        ``(posed_joints (B, J, 3), world_rot (B, J, 3, 3))``: ``world_rot[:, j]`` and ``posed_joints[:, j]``
        map joint j's rest-aligned local frame (origin at the rest joint) to the model frame.
    """
    if levels is None:
        levels = kintree_levels(parents.cpu().numpy()).to(rotmats.device)
    par = parents.clamp_min(0)
    rel = joints - joints[:, par] * (parents >= 0).to(joints.dtype)[None, :, None]
    root = levels.joints[0]
    rot_l = rotmats[:, root]
    pos_l = rel[:, root]
    rots, poss = [rot_l], [pos_l]
    for lv, pp in zip(levels.joints[1:], levels.parent_pos[1:], strict=True):
        rp = rot_l[:, pp]
        pos_l = pos_l[:, pp] + (rp @ rel[:, lv, :, None]).squeeze(-1)
        rot_l = rp @ rotmats[:, lv]
        rots.append(rot_l)
        poss.append(pos_l)
    rot_w = torch.cat(rots, dim=1)[:, levels.inverse]
    pos_w = torch.cat(poss, dim=1)[:, levels.inverse]
    return pos_w, rot_w


class _Skin(torch.autograd.Function):
    """``out[b, v] = M[b, v] @ [x[b, v]; 1]`` with the blended 3x4 transforms ``M = A @ W^T`` (see
    :func:`skin_vertices`); forward and backward are one matrix product each plus O(B V) element-wise work."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, weights: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
        b, n_j = a.shape[0], a.shape[2]
        n_v = weights.shape[0]
        m = (a.reshape(b * 12, n_j) @ weights.transpose(0, 1)).view(b, 3, 4, n_v)
        vt = vertices.transpose(1, 2).contiguous()  # (B, 3, V)
        out = torch.addcmul(m[:, :, 3], m[:, :, 0], vt[:, None, 0])
        out.addcmul_(m[:, :, 1], vt[:, None, 1]).addcmul_(m[:, :, 2], vt[:, None, 2])
        ctx.save_for_backward(m, weights, vt)
        return out.transpose(1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, torch.Tensor | None]:
        m, weights, vt = ctx.saved_tensors
        b, _, _, n_v = m.shape
        gt = grad.transpose(1, 2).contiguous()  # (B, 3, V)
        grad_a = grad_v = None
        if ctx.needs_input_grad[0]:
            gm = torch.empty_like(m)
            torch.mul(gt[:, :, None], vt[:, None], out=gm[:, :, :3])
            gm[:, :, 3] = gt
            grad_a = (gm.view(b * 12, n_v) @ weights).view(b, 12, -1)
        if ctx.needs_input_grad[2]:
            grad_v = (m[:, :, :3] * gt[:, :, None]).sum(1).transpose(1, 2)
        return grad_a, None, grad_v


def skin_vertices(
    vertices: torch.Tensor,
    weights: torch.Tensor,
    rot_w: torch.Tensor,
    pos_w: torch.Tensor,
    rest_joints: torch.Tensor,
) -> torch.Tensor:
    """Apply skinning transforms ``A_j = [R_j, p_j - R_j J_j]`` blended by the weights.

    The per-vertex blend ``M_v = sum_j w_vj A_j`` is one matrix product ``(B*12, J) @ (J, V)``; its backward is
    the transposed product (a custom autograd function, first-order only).

    Args:
        vertices: (B, V, 3) rest-pose vertices (with shape and pose correctives).
        weights: (V, J) skinning weights (rows sum to 1); no gradient.
        rot_w: (B, J, 3, 3) world joint rotations.
        pos_w: (B, J, 3) posed joint locations.
        rest_joints: (B, J, 3) rest joint locations.

    Returns:
        (B, V, 3) skinned vertices.
    """
    t = pos_w - (rot_w @ rest_joints[..., None]).squeeze(-1)  # (B, J, 3)
    a = torch.cat([rot_w, t[..., None]], dim=-1)  # (B, J, 3, 4)
    a = a.reshape(a.shape[0], a.shape[1], 12).transpose(1, 2)  # (B, 12, J), rows (i, c)
    out: torch.Tensor = _Skin.apply(a, weights, vertices)
    return out


def lbs(
    pose: torch.Tensor,
    betas: torch.Tensor | None,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor | None,
    posedirs: torch.Tensor | None,
    j_template: torch.Tensor,
    j_shapedirs: torch.Tensor | None,
    parents: torch.Tensor,
    weights: torch.Tensor,
    levels: KinematicLevels | None = None,
) -> LBSOutput:
    """Full linear blend skinning from axis-angle pose and shape coefficients.

    Args:
        pose: (B, J, 3) axis-angle per joint (root first), radians; or (B, J, 3, 3) rotation matrices.
        betas: (B, n) shape coefficients, or None for the template shape.
        v_template: (V, 3) rest template, metres.
        shapedirs: (n, 3V) flattened shape basis (``shapedirs (V,3,n)`` reshaped and transposed), or None.
        posedirs: (9(J-1), 3V) pose-corrective basis over the entries of ``R_j - I`` (j >= 1), or None.
        j_template: (J, 3) rest joints of the template (``J_regressor @ v_template``).
        j_shapedirs: (n, 3J) joint displacement per shape coefficient (``J_regressor @ shapedirs``), or None.
        parents: (J,) long, -1 for the root.
        weights: (V, J) skinning weights.
        levels: :func:`kintree_levels` of ``parents`` on the input device (computed when None).

    Returns:
        :class:`LBSOutput` (no global translation applied).
    """
    b = pose.shape[0]
    n_j = j_template.shape[0]
    n_v = v_template.shape[0]
    rotmats = pose if pose.dim() == 4 else axis_angle_to_rotmat(pose)
    v_flat = v_template.reshape(1, n_v * 3)
    if betas is not None and shapedirs is not None:
        v_flat = torch.addmm(v_flat, betas, shapedirs)
    if betas is not None and j_shapedirs is not None:
        j_rest = torch.addmm(j_template.reshape(1, n_j * 3), betas, j_shapedirs).reshape(b, n_j, 3)
    else:
        j_rest = j_template.expand(b, n_j, 3)
    if posedirs is not None:
        eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        pose_feature = (rotmats[:, 1:] - eye).reshape(b, -1)
        v_flat = torch.addmm(v_flat, pose_feature, posedirs)
    v_posed = v_flat.expand(b, n_v * 3).reshape(b, n_v, 3)
    pos_w, rot_w = batch_rigid_transform(rotmats, j_rest, parents, levels)
    verts = skin_vertices(v_posed, weights, rot_w, pos_w, j_rest)
    bottom = pos_w.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(b, n_j, 1, 4)
    world = torch.cat([torch.cat([rot_w, pos_w[..., None]], dim=-1), bottom], dim=-2)
    return LBSOutput(vertices=verts, joints=pos_w, joint_transforms=world)

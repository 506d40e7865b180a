"""Linear blend skinning for articulated hand models (MANO format), as pure tensor functions.

The model is ``v = sum_j w_vj * A_j @ (T + B_S(beta) + B_P(theta))`` (Loper et al. 2015, Romero et al. 2017):
shape blend shapes ``B_S``, pose correctives ``B_P`` linear in the entries of ``R_j - I`` of the non-root
joints, and world transforms ``A_j`` chained along a kinematic tree whose rest frames are axis-aligned with
the model frame (so a zero pose gives the template). All functions keep the input dtype and device and are
differentiable with respect to every floating argument.

Speed: the kinematic chain is evaluated level by level (all joints at one tree depth in one batched matmul),
never joint by joint; the shape and pose blend shapes are each a single matmul against a precomputed dense
matrix; joint locations are regressed from ``beta`` directly via the precomputed ``J_regressor @ shapedirs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from contactkit.errors import ShapeError
from contactkit.geometry.rotations import axis_angle_to_rotmat

__all__ = [
    "LBSOutput",
    "blend_shapes",
    "vertices_to_joints",
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


def blend_shapes(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Per-vertex displacement of linear blend shapes.

    Args:
        betas: (B, n) float coefficients.
        shapedirs: (V, 3, n) float displacement basis, metres per unit coefficient.

    Returns:
        (B, V, 3) displacements, metres.
    """
    v = shapedirs.shape[0]
    flat = shapedirs.reshape(v * 3, -1)  # (3V, n)
    return (betas @ flat.transpose(0, 1)).reshape(betas.shape[0], v, 3)


def vertices_to_joints(j_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Regress joint locations from vertices.

    Args:
        j_regressor: (J, V) float (dense) regressor.
        vertices: (B, V, 3) float.

    Returns:
        (B, J, 3) joint locations.
    """
    return torch.einsum("jv,bvc->bjc", j_regressor, vertices)


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


def skin_vertices(
    vertices: torch.Tensor,
    weights: torch.Tensor,
    rot_w: torch.Tensor,
    pos_w: torch.Tensor,
    rest_joints: torch.Tensor,
) -> torch.Tensor:
    """Apply skinning transforms ``A_j = [R_j, p_j - R_j J_j]`` blended by the weights.

    Args:
        vertices: (B, V, 3) rest-pose vertices (with shape and pose correctives).
        weights: (V, J) skinning weights (rows sum to 1).
        rot_w: (B, J, 3, 3) world joint rotations.
        pos_w: (B, J, 3) posed joint locations.
        rest_joints: (B, J, 3) rest joint locations.

    Returns:
        (B, V, 3) skinned vertices.
    """
    b, n_j = pos_w.shape[:2]
    n_v = weights.shape[0]
    t = pos_w - (rot_w @ rest_joints[..., None]).squeeze(-1)  # (B, J, 3)
    wt = weights.transpose(0, 1)  # (J, V)
    # blend as (B*9, J) @ (J, V): one matmul, vertices last so the product below is contiguous
    r = (rot_w.reshape(b, n_j, 9).transpose(1, 2).reshape(b * 9, n_j) @ wt).reshape(b, 3, 3, n_v)
    tb = (t.transpose(1, 2).reshape(b * 3, n_j) @ wt).reshape(b, 3, n_v)
    vt = vertices.transpose(1, 2)  # (B, 3, V)
    out = (r * vt[:, None, :, :]).sum(dim=2) + tb  # (B, 3, V)
    return out.transpose(1, 2).contiguous()


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
    if betas is not None and shapedirs is not None:
        v_shaped = v_template + (betas @ shapedirs).reshape(b, n_v, 3)
    else:
        v_shaped = v_template.expand(b, n_v, 3)
    if betas is not None and j_shapedirs is not None:
        j_rest = j_template + (betas @ j_shapedirs).reshape(b, n_j, 3)
    else:
        j_rest = j_template.expand(b, n_j, 3)
    if posedirs is not None:
        eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        pose_feature = (rotmats[:, 1:] - eye).reshape(b, -1)
        v_posed = v_shaped + (pose_feature @ posedirs).reshape(b, n_v, 3)
    else:
        v_posed = v_shaped
    pos_w, rot_w = batch_rigid_transform(rotmats, j_rest, parents, levels)
    verts = skin_vertices(v_posed, weights, rot_w, pos_w, j_rest)
    bottom = pos_w.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(b, n_j, 1, 4)
    world = torch.cat([torch.cat([rot_w, pos_w[..., None]], dim=-1), bottom], dim=-2)
    return LBSOutput(vertices=verts, joints=pos_w, joint_transforms=world)

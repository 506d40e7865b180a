"""Linear blend skinning for articulated hand models (MANO format), as pure tensor functions.

The model is ``v = sum_j w_vj * A_j @ (T + B_S(beta) + B_P(theta))`` (Loper et al. 2015, Romero et al. 2017):
shape blend shapes ``B_S``, pose correctives ``B_P`` linear in the entries of ``R_j - I`` of the non-root
joints, and world transforms ``A_j`` chained along a kinematic tree whose rest frames are axis-aligned with
the model frame (so a zero pose gives the template). All functions keep the input dtype and device and are
differentiable with respect to every floating argument.

Speed (:func:`pack_lbs` precomputes everything that does not depend on the pose, once per model):

- joints are kept in *level order* (root, then every joint of depth 1, depth 2, ...) and, inside the layer
  node, joint-major (``(J, B, ...)``), so each tree depth is one contiguous block and the chain is one batched
  ``(3x4) @ (4x4)`` product per depth on views (no copies); a level whose parents are the previous level in
  the same order (or a single joint) needs no gather at all;
- the shape and pose blend shapes are one matrix product ``[beta, vec(R - I)] @ basis`` against a stacked,
  coordinate-major basis (rows of the pose correctives permuted to level order), whose ``(B, 3, V)`` result is
  the layout skinning reads, so no transposes or copies sit between them;
- rest joints and parent offsets are one product ``beta @ J_basis`` (they are linear in ``beta``);
- skinning blends the 3x4 joint transforms with one matrix product; the vertices are returned in that
  coordinate-major storage (strides ``(3V, 1, V)``), so neither pass transposes them;
- :func:`lbs_packed` is ONE autograd node (:class:`_LBS`) whose backward is written by hand: skinning (the
  transposed products), the chain level by level from the deepest, the blend and joint products transposed,
  Rodrigues as one batched product with the Jacobians its forward formed in closed form. Forward + backward is
  a few matrix products plus a few dozen small operations, with no autograd graph between the stages
  (first-order gradients only: no ``create_graph`` through it).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from contactkit.errors import ShapeError

__all__ = [
    "LBSOutput",
    "KinematicLevels",
    "PackedLBS",
    "kintree_levels",
    "batch_rigid_transform",
    "skin_vertices",
    "pack_lbs",
    "rodrigues",
    "lbs_packed",
    "lbs",
]


@dataclass(frozen=True)
class LBSOutput:
    """Result of :func:`lbs` / :func:`lbs_packed`.

    Attributes:
        vertices: (B, V, 3) posed vertices (plus ``transl`` when given), stored coordinate-major (strides
            ``(3V, 1, V)``; ``reshape`` rather than ``view`` them).
        joints: (B, J, 3) posed joint locations (plus ``transl`` when given).
        joint_transforms: (B, J, 4, 4) world transform of each joint frame: rotation = accumulated joint
            rotation, translation = posed joint location; ``x_world = G[:3,:3] @ x_local + G[:3,3]`` where the
            local frame is the joint's rest frame (model-axis-aligned, origin at the rest joint).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    joint_transforms: torch.Tensor


@dataclass(frozen=True)
class KinematicLevels:
    """A kinematic tree grouped by depth, for level-by-level chaining in *level order*.

    Attributes:
        joints: per level, (n_l,) long joint indices (level 0 = the root).
        order: (J,) long, ``cat(joints)``: joint index at each level-order position.
        inverse: (J,) long, level-order position of joint j (``order[inverse] = arange(J)``).
        spans: per level, ``(start, end)`` of its slice in level order.
        parent_pos: per level, (n_l,) long position of each joint's parent within the previous level, or None
            where no gather is needed (level 0; a previous level of one joint, broadcast; or parents in the
            previous level's order).
        parent_lvl: (J,) long, level-order position of each level-order joint's parent (-1 for the root).
    """

    joints: tuple[torch.Tensor, ...]
    order: torch.Tensor
    inverse: torch.Tensor
    spans: tuple[tuple[int, int], ...]
    parent_pos: tuple[torch.Tensor | None, ...]
    parent_lvl: torch.Tensor

    def to(self, device: torch.device | str) -> KinematicLevels:
        """Copy of the index tensors on ``device``."""
        return KinematicLevels(
            tuple(t.to(device) for t in self.joints),
            self.order.to(device),
            self.inverse.to(device),
            self.spans,
            tuple(None if t is None else t.to(device) for t in self.parent_pos),
            self.parent_lvl.to(device),
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
    order = np.concatenate(levels)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    parent_pos: list[torch.Tensor | None] = [None]
    spans, start = [], 0
    for d, lv in enumerate(levels):
        spans.append((start, start + len(lv)))
        start += len(lv)
        if d == 0:
            continue
        where = {int(j): i for i, j in enumerate(levels[d - 1])}
        pp = np.asarray([where[int(par[j])] for j in lv], dtype=np.int64)
        plain = len(levels[d - 1]) == 1 or (len(pp) == len(levels[d - 1]) and (pp == np.arange(len(pp))).all())
        parent_pos.append(None if plain else torch.as_tensor(pp))
    parent_lvl = np.where(par[order] >= 0, inverse[np.maximum(par[order], 0)], -1)
    return KinematicLevels(
        tuple(torch.as_tensor(x) for x in levels),
        torch.as_tensor(order),
        torch.as_tensor(inverse),
        tuple(spans),
        tuple(parent_pos),
        torch.as_tensor(parent_lvl),
    )


def _chain(local: torch.Tensor, levels: KinematicLevels) -> torch.Tensor:
    """World 3x4 transforms from local ones, both (B, J, 3, 4) in level order: ``W_j = W_parent @ L_j``."""
    bottom = local.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(local.shape[0], local.shape[1], 1, 4)
    local44 = torch.cat([local, bottom], dim=-2)
    s0, e0 = levels.spans[0]
    prev = local[:, s0:e0]
    out = [prev]
    for (s, e), pp in zip(levels.spans[1:], levels.parent_pos[1:], strict=True):
        par = prev if pp is None else prev[:, pp]
        prev = par @ local44[:, s:e]
        out.append(prev)
    return torch.cat(out, dim=1)


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
    local = torch.cat([rotmats, rel[..., None]], dim=-1)[:, levels.order]
    world = _chain(local, levels)[:, levels.inverse]
    return world[..., 3], world[..., :3]


# K = skew(w) as ``w @ _SKEW`` (3, 9), row-major entries; ``vee(G)_k = <G, skew(e_k)>`` is ``G.flatten @ _SKEW.T``.
_SKEW = ((0, 0, 0, 0, 0, -1, 0, 1, 0), (0, 0, 1, 0, 0, 0, -1, 0, 0), (0, -1, 0, 1, 0, 0, 0, 0, 0))
# Below this squared angle (rad^2) the coefficients and their derivatives come from their Taylor series
# (truncation error < 1e-12), which float32 needs: 1 - cos t loses all its digits as t -> 0.
_SERIES_SQ = 0.1


def _series_rows(degree: int = 5) -> tuple[tuple[float, ...], ...]:
    """Taylor series in s = t^2 of c, a, b and their derivatives dc/ds, da/ds, db/ds (columns), highest degree
    first (rows): ``c = sum (-s)^n / (2n)!``, ``a = sum (-s)^n / (2n+1)!``, ``b = sum (-s)^n / (2n+2)!``."""

    def f(n: int, off: int) -> float:
        return (-1) ** n / math.factorial(2 * n + off)

    return tuple(
        (f(n, 0), f(n, 1), f(n, 2), (n + 1) * f(n + 1, 0), (n + 1) * f(n + 1, 1), (n + 1) * f(n + 1, 2))
        for n in range(degree, -1, -1)
    )


_SERIES = _series_rows()


def _outer_jacobian() -> tuple[tuple[float, ...], ...]:
    """``d(w w^T)/dw`` as a (3, 27) matrix ``D``: ``(w @ D).view(3, 9)[k, 3i + j] = d_ik w_j + d_jk w_i``.

    Each column holds one non-zero entry (1, or 2 where ``i == j == k``) or none, so ``w @ D`` and ``w @ _SKEW``
    are exact gathers; one small matrix product is much faster than ``index_select`` along a row of 3."""
    d = [[0.0] * 27 for _ in range(3)]
    for k in range(3):
        for i in range(3):
            for j in range(3):
                if i == k:
                    d[j][9 * k + 3 * i + j] += 1.0
                if j == k:
                    d[i][9 * k + 3 * i + j] += 1.0
    return tuple(tuple(row) for row in d)


_OUTER_JAC = _outer_jacobian()


class _Consts(NamedTuple):
    skew: torch.Tensor  # (3, 9) _SKEW: the entries of [e_k]_x
    series: tuple[torch.Tensor, ...]  # _SERIES rows, (6,) each
    eye: torch.Tensor  # (1, 9) flattened identity
    outer_jac: torch.Tensor  # (3, 27) _OUTER_JAC
    bottom: torch.Tensor  # (1, 1, 1, 4) homogeneous bottom row


@functools.lru_cache(maxsize=16)
def _constants(dtype: torch.dtype, device: torch.device) -> _Consts:
    """The constant tensors of Rodrigues' formula and the chain, per dtype and device."""
    with torch.inference_mode(False):  # plain tensors even when first asked for in inference mode

        def t(x: object) -> torch.Tensor:
            return torch.tensor(x, dtype=dtype, device=device)

        return _Consts(
            skew=t(_SKEW),
            series=tuple(t(row) for row in _SERIES),
            eye=t([[1.0, 0, 0, 0, 1, 0, 0, 0, 1]]),
            outer_jac=t(_OUTER_JAC),
            bottom=t([0.0, 0.0, 0.0, 1.0]).view(1, 1, 1, 4),
        )


def _rodrigues_forward(w: torch.Tensor, need_grad: bool = True) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Rotation matrices (N, 3, 3) of axis-angle ``w`` (N, 3) and, when ``need_grad``, what
    :func:`_rodrigues_backward` needs: the Jacobian (N, 3, 9) of each matrix's entries.

    ``R = c I + a K + b w w^T`` and ``E = c' I + a' K + b' w w^T`` (primes: d/d(t^2)) are formed entry-wise on
    (N, 9) rows (batched 3x3 products are slow); ``K`` and ``d(w w^T)/dw`` are exact gathers written as one small
    matrix product each (``w @ _SKEW``, ``w @ _OUTER_JAC``: ``index_select`` along a row of 3 costs several times
    more); the Jacobian is
    ``dR/dw_k = 2 w_k E + a [e_k]_x + b d(w w^T)/dw_k``."""
    k = _constants(w.dtype, w.device)
    n = w.shape[0]
    s = (w * w).sum(-1, keepdim=True)
    ser = s < _SERIES_SQ
    coef = torch.addcmul(k.series[1], s, k.series[0])  # (N, 6): c, a, b, c', a', b'
    for row in k.series[2:]:
        coef = torch.addcmul(row, s, coef)
    safe = torch.where(ser, 1.0, s)
    t = safe.sqrt()
    inv = safe.reciprocal()
    c = t.cos()
    a = t.sin().div_(t)
    b = (1.0 - c).mul_(inv)
    if need_grad:
        da = (c - a).mul_(inv).mul_(0.5)
        db = torch.sub(a, b, alpha=2.0).mul_(inv).mul_(0.5)
        dc = torch.addcmul(b, safe, db).neg_()
        coef = torch.where(ser, coef, torch.cat([c, a, b, dc, da, db], 1))
    else:
        coef = torch.where(ser, coef[:, :3], torch.cat([c, a, b], 1))
    kw = w @ k.skew
    ww = (w[:, :, None] * w[:, None, :]).view(n, 9)
    r = torch.addcmul(k.eye * coef[:, 0:1], kw, coef[:, 1:2]).addcmul_(ww, coef[:, 2:3]).view(n, 3, 3)
    if not need_grad:
        return r, ()
    e = torch.addcmul(k.eye * coef[:, 3:4], kw, coef[:, 4:5]).addcmul_(ww, coef[:, 5:6])
    jac = (w @ k.outer_jac).mul_(coef[:, 2:3]).view(n, 3, 9)
    jac.addcmul_(k.skew, coef[:, 1:2, None]).addcmul_(w[:, :, None], e[:, None, :], value=2.0)
    return r, (jac,)


def _rodrigues_backward(g: torch.Tensor, saved: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Gradient (N, 3) of the axis-angle vectors from the gradient ``g`` (N, 3, 3) of their matrices: one batched
    product with the Jacobian saved by :func:`_rodrigues_forward`."""
    (jac,) = saved
    return torch.bmm(jac, g.reshape(-1, 9, 1)).view(-1, 3)


class _Rodrigues(torch.autograd.Function):
    """Axis-angle (N, 3) to rotation matrices (N, 3, 3), ``R = c I + a [w]_x + b w w^T`` with
    ``a = sin t / t``, ``b = (1 - cos t) / t^2``, ``c = cos t`` (the values of
    :func:`~contactkit.geometry.rotations.axis_angle_to_rotmat`), with the closed-form backward
    ``dL/dw_k = <G, 2 w_k (c' I + a' [w]_x + b' w w^T) + a [e_k]_x + b d(w w^T)/dw_k>`` (primes: d/d(t^2)): the
    forward forms that Jacobian (N, 3, 9) and the backward is one batched product, instead of the ~90 autograd
    nodes of the entry-wise formula."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        r, saved = _rodrigues_forward(w, ctx.needs_input_grad[0])
        ctx.save_for_backward(*saved)
        return r

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return _rodrigues_backward(g, ctx.saved_tensors)


def rodrigues(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3) to rotation matrices (..., 3, 3): the values of
    :func:`~contactkit.geometry.rotations.axis_angle_to_rotmat` (to rounding) with a closed-form backward
    (first-order only), for the hand layer's hot path."""
    out: torch.Tensor = _Rodrigues.apply(aa.reshape(-1, 3))
    return out.view(*aa.shape[:-1], 3, 3)


def _skin_forward(
    world: torch.Tensor,
    rest_joints: torch.Tensor,
    weights_t: torch.Tensor,
    vt: torch.Tensor,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Skinned vertices (B, 3, V) (written into ``out`` when given) and the blended transforms ``M``
    (B, 3, 4, V) (see :class:`_Skin`), from the world transforms (J, B, 3, 4) and rest joints (J, B, 3), both
    joint-major (contiguous joint blocks: the level-major layout of :class:`_LBS`)."""
    n_j, b = world.shape[0], world.shape[1]
    n_v = weights_t.shape[1]
    a = world.clone()
    w34 = world.view(n_j * b, 3, 4)
    a.view(n_j * b, 3, 4)[..., 3:].baddbmm_(w34[..., :3], rest_joints.reshape(n_j * b, 3, 1), alpha=-1.0)
    m = (a.view(n_j, b * 12).transpose(0, 1) @ weights_t).view(b, 3, 4, n_v)
    res = torch.addcmul(m[:, :, 3], m[:, :, 0], vt[:, None, 0], out=out)
    res.addcmul_(m[:, :, 1], vt[:, None, 1]).addcmul_(m[:, :, 2], vt[:, None, 2])
    return res, m


def _skin_backward(
    gt: torch.Tensor,
    rot: torch.Tensor,
    rest_joints: torch.Tensor,
    m: torch.Tensor,
    weights_t: torch.Tensor,
    vt: torch.Tensor,
    need: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of the world rotations (J, B, 3, 3) and positions (J, B, 3), the rest joints (J, B, 3) and the
    vertices (B, 3, V) from the gradient ``gt`` (B, 3, V, contiguous) of :func:`_skin_forward`'s output
    (joint-major like its inputs; ``rot`` is ``world[..., :3]``); ``need`` says which of (world, rest joints,
    vertices) to form."""
    b, _, _, n_v = m.shape
    n_j = weights_t.shape[0]
    grad_r = grad_p = grad_j = grad_v = None
    if need[0] or need[1]:
        # d/dA = sum_v w_vj g_v [x_v; 1]^T as two products (3B, V) @ (V, J) and (9B, V) @ (V, J): faster than
        # one (B, 3, 4, V) buffer (no copy of g into it), and with MKL on this CPU 35-40% faster than the
        # (J, V) @ (V, 9B) orientation; the positions' (3B, J) result is turned joint-major (a small copy), the
        # rotations' (9B, J) is read joint-major through a view
        grad_p = (gt.view(b * 3, n_v) @ weights_t.transpose(0, 1)).transpose(0, 1).contiguous().view(n_j, b, 3)
        if need[0]:
            outer = (gt[:, :, None] * vt[:, None]).view(b * 9, n_v)
            grad_r = (outer @ weights_t.transpose(0, 1)).transpose(0, 1).view(n_j, b, 3, 3)
            grad_r.addcmul_(grad_p[..., None], rest_joints[:, :, None, :], value=-1.0)
        if need[1]:
            grad_j = torch.bmm(grad_p.view(-1, 1, 3), rot.reshape(-1, 3, 3)).view(n_j, b, 3).neg_()
    if need[2]:
        grad_v = m[:, 0, :3] * gt[:, 0:1]
        grad_v.addcmul_(m[:, 1, :3], gt[:, 1:2]).addcmul_(m[:, 2, :3], gt[:, 2:3])
    return grad_r, grad_p, grad_j, grad_v


class _Skin(torch.autograd.Function):
    """``out[b, :, v] = M[b, v] @ [x[b, :, v]; 1]`` with the blended 3x4 transforms ``M = A @ W^T``, where
    ``A_j = [R_j, p_j - R_j J_j]`` comes from the world transforms ``[R_j, p_j]`` and rest joints ``J_j`` (see
    :func:`skin_vertices`; inputs batch-major, turned joint-major for :func:`_skin_forward`). Forward and
    backward are one matrix product each plus O(B V) element-wise work; the backward also maps the gradient of
    ``A`` back to ``[R, p]`` and ``J`` in closed form (``dR = dA_R - dA_t J^T``, ``dp = dA_t``,
    ``dJ = -R^T dA_t``)."""

    @staticmethod
    def forward(
        ctx: Any, world: torch.Tensor, rest_joints: torch.Tensor, weights_t: torch.Tensor, vt: torch.Tensor
    ) -> torch.Tensor:
        world_j = world.transpose(0, 1).contiguous()
        rest_j = rest_joints.transpose(0, 1)
        out, m = _skin_forward(world_j, rest_j, weights_t, vt)
        ctx.save_for_backward(world_j, rest_j, m, weights_t, vt)
        return out

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, torch.Tensor | None]:
        world_j, rest_j, m, weights_t, vt = ctx.saved_tensors
        need = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[3])
        g_r, g_p, g_j, g_v = _skin_backward(grad.contiguous(), world_j[..., :3], rest_j, m, weights_t, vt, need)
        g_w = None if g_r is None or g_p is None else torch.cat([g_r, g_p[..., None]], -1).transpose(0, 1)
        return g_w, None if g_j is None else g_j.transpose(0, 1), None, g_v


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
    world = torch.cat([rot_w, pos_w[..., None]], dim=-1)
    vt = vertices.transpose(1, 2).contiguous()
    out: torch.Tensor = _Skin.apply(world, rest_joints, weights.transpose(0, 1).contiguous(), vt)
    return out.transpose(1, 2)


@dataclass(frozen=True)
class PackedLBS:
    """Pose-independent tensors of one model, in level order and coordinate-major layout (:func:`pack_lbs`).

    Attributes:
        levels: :class:`KinematicLevels` of the tree.
        template: (1, 3V) rest template, coordinate-major (all x, then all y, then all z).
        template_posed: (1, 3V) ``template`` minus the pose correctives of the identity rotations, so that the
            pose blend reads ``vec(R)`` directly: ``T + P vec(R - I) = (T - P vec(I)) + P vec(R)``.
        basis: (n + 9(J-1), 3V) stacked shape basis (n rows) and pose-corrective basis (level-order joints
            1.., entries of ``R - I`` row-major), coordinate-major; either part may be empty. The forward reads
            it as ``coef @ basis``, the backward as ``(basis @ g.T).T``, the faster orientations with MKL on this
            project's CPU (session 10; see ``benchmarks/README.md``).
        n_shape: n, shape rows in ``basis``.
        j_template: (1, 6J) rest joints then parent offsets (``J_j - J_parent``, the root's own location), level
            order, flattened.
        j_basis: (n, 6J) the same per shape coefficient.
        weights_t: (J, V) skinning weights, rows in level order.
    """

    levels: KinematicLevels
    template: torch.Tensor
    template_posed: torch.Tensor
    basis: torch.Tensor
    n_shape: int
    j_template: torch.Tensor
    j_basis: torch.Tensor
    weights_t: torch.Tensor

    @property
    def has_pose_blend(self) -> bool:
        """Whether the model has pose correctives."""
        return self.basis.shape[0] > self.n_shape


def pack_lbs(
    v_template: torch.Tensor,
    shapedirs: torch.Tensor | None,
    posedirs: torch.Tensor | None,
    j_template: torch.Tensor,
    j_shapedirs: torch.Tensor | None,
    parents: torch.Tensor | np.ndarray | list[int] | tuple[int, ...],
    weights: torch.Tensor,
) -> PackedLBS:
    """Precompute the pose-independent tensors of :func:`lbs_packed` (arguments as in :func:`lbs`)."""
    par = np.asarray(parents.cpu().numpy() if isinstance(parents, torch.Tensor) else parents, dtype=np.int64)
    dev, dt = v_template.device, v_template.dtype
    levels = kintree_levels(par).to(dev)
    order = levels.order
    n_v, n_j = v_template.shape[0], j_template.shape[0]

    def cmajor(flat: torch.Tensor) -> torch.Tensor:  # (k, 3V) vertex-major -> coordinate-major
        return flat.reshape(-1, n_v, 3).transpose(1, 2).reshape(-1, 3 * n_v)

    parts = []
    n_shape = 0
    template = cmajor(v_template.reshape(1, -1))
    template_posed = template
    if shapedirs is not None:
        parts.append(cmajor(shapedirs))
        n_shape = shapedirs.shape[0]
    if posedirs is not None:
        rows = posedirs.reshape(n_j - 1, 9, 3 * n_v)[order[1:] - 1].reshape(-1, 3 * n_v)
        parts.append(cmajor(rows))
        diag = rows.reshape(n_j - 1, 9, 3 * n_v)[:, [0, 4, 8]].double().sum((0, 1))
        template_posed = template - cmajor(diag[None]).to(dt)
    basis = torch.cat(parts, 0).contiguous() if parts else v_template.new_zeros(0, 3 * n_v)
    pl = levels.parent_lvl.clamp_min(0)
    is_child = (levels.parent_lvl >= 0).to(dt)[:, None]

    def joints_rel(j: torch.Tensor) -> torch.Tensor:  # (k, J, 3) -> (k, 6J) level order
        jl = j[:, order]
        return torch.cat([jl, jl - jl[:, pl] * is_child], dim=1).reshape(j.shape[0], 6 * n_j)

    jsd = j_shapedirs if j_shapedirs is not None else v_template.new_zeros(0, 3 * n_j)
    return PackedLBS(
        levels=levels,
        template=template.contiguous(),
        template_posed=template_posed.contiguous(),
        basis=basis,
        n_shape=n_shape,
        j_template=joints_rel(j_template[None]).contiguous(),
        j_basis=joints_rel(jsd.reshape(-1, n_j, 3)).contiguous(),
        weights_t=weights[:, order].transpose(0, 1).contiguous(),
    )


class _LBS(torch.autograd.Function):
    """The whole layer as one autograd node: Rodrigues -> blend shapes -> rest joints -> chain -> skinning.

    Forward is :func:`lbs_packed`'s computation; backward runs the same stages in reverse with hand-written
    gradients (no autograd graph in between): skinning (:func:`_skin_backward`), the chain level by level
    from the deepest (``W_l = W_p L_l``: ``dL_l = R_p^T dW_l``, ``dW_p += dW_l L_l^T``, one batched product each
    per depth, summed into the parents), the blend-shape and joint products transposed, then Rodrigues
    (:func:`_rodrigues_backward`). First-order only (``once_differentiable``).

    Inputs: pose (B, J, 3) axis-angle or (B, J, 3, 3) matrices (model joint order), betas (B, n) or None,
    transl (B, 3) or None, the :class:`PackedLBS`. Outputs: vertices (B, V, 3), joints (B, J, 3) and joint
    transforms (B, J, 4, 4), translated, model joint order.
    """

    @staticmethod
    def forward(
        ctx: Any, pose: torch.Tensor, betas: torch.Tensor | None, transl: torch.Tensor | None, p: PackedLBS
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lv = p.levels
        b, n_j = pose.shape[0], lv.order.shape[0]
        n_v, n_s = p.weights_t.shape[1], p.n_shape
        shape = betas if betas is not None and n_s > 0 else None
        # per-joint tensors are level-major (J, B, ...): each tree level is one contiguous block, so the chain's
        # products run on views (a (B, J, ...) level slice would be copied by every batched product)
        rod: tuple[torch.Tensor, ...] = ()
        if pose.dim() == 4:
            rot = pose.transpose(0, 1).index_select(0, lv.order)
        else:
            r, rod = _rodrigues_forward(
                pose.transpose(0, 1).index_select(0, lv.order).view(-1, 3), ctx.needs_input_grad[0]
            )
            rot = r.view(n_j, b, 3, 3)
        # blend shapes: [beta, vec(R_1..)] @ basis (coordinate-major (B, 3V))
        if p.has_pose_blend or shape is not None:
            k0 = 0 if shape is not None else n_s
            k1 = p.basis.shape[0] if p.has_pose_blend else n_s
            coef = pose.new_empty(b, k1 - k0)
            if shape is not None:
                coef[:, :n_s] = shape
            if p.has_pose_blend:
                coef[:, n_s - k0 :].view(b, n_j - 1, 3, 3).copy_(rot[1:].transpose(0, 1))
            template = p.template_posed if p.has_pose_blend else p.template
            vt = torch.addmm(template, coef, p.basis[k0:k1]).view(b, 3, n_v)
        else:
            vt = p.template.view(1, 3, n_v).expand(b, 3, n_v)
        # rest joints and parent offsets, linear in beta ((B, 2, J, 3); turned (J, B, 3) below)
        if shape is not None:
            jj = torch.addmm(p.j_template, shape, p.j_basis).view(b, 2, n_j, 3)
        else:
            jj = p.j_template.view(1, 2, n_j, 3).expand(b, 2, n_j, 3)
        j_rest = jj[:, 0].transpose(0, 1).contiguous()
        # chain, one (3x4) @ (4x4) product per depth, written into the level blocks of ``world``
        bottom = _constants(pose.dtype, pose.device).bottom
        local34 = torch.cat([rot, jj[:, 1].transpose(0, 1)[..., None]], -1)
        local = torch.cat([local34, bottom.expand(n_j, b, 1, 4)], -2)
        world = torch.empty_like(local34)
        s0, e0 = lv.spans[0]
        world[s0:e0] = local34[s0:e0]
        for (s, e), (ps, pe), pp in zip(lv.spans[1:], lv.spans[:-1], lv.parent_pos[1:], strict=True):
            par = world[ps:pe] if pp is None else world[ps:pe].index_select(0, pp)
            torch.bmm(par.expand(e - s, b, 3, 4).reshape(-1, 3, 4), local[s:e].view(-1, 4, 4),
                      out=world[s:e].view(-1, 3, 4))  # fmt: skip
        # vertices (B, V, 3) stored coordinate-major (strides (3V, 1, V)): skinning writes them without a
        # transposing copy, and the gradients that come back have the same layout
        verts = torch.empty_strided((b, n_v, 3), (3 * n_v, 1, n_v), dtype=pose.dtype, device=pose.device)
        _, m = _skin_forward(world, j_rest, p.weights_t, vt, out=verts.transpose(1, 2))
        transforms = torch.cat([world.index_select(0, lv.inverse).transpose(0, 1), bottom.expand(b, n_j, 1, 4)], -2)
        if transl is not None:
            verts.transpose(1, 2).add_(transl[:, :, None])
            transforms[..., :3, 3].add_(transl[:, None])
        joints = transforms[..., :3, 3].clone()
        ctx.packed = p
        ctx.rot_input = pose.dim() == 4
        ctx.has_shape = shape is not None
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(local, world, j_rest, m, vt, *rod)
        return verts, joints, transforms

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, g_verts: torch.Tensor | None, g_joints: torch.Tensor | None, g_transforms: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, None]:
        p: PackedLBS = ctx.packed
        lv = p.levels
        local, world, j_rest, m, vt, *rod = ctx.saved_tensors
        need_pose, need_betas, need_transl = ctx.needs_input_grad[:3]
        need_betas = need_betas and ctx.has_shape
        n_j, b = world.shape[0], world.shape[1]
        n_v, n_s = p.weights_t.shape[1], p.n_shape
        # gradient of the world transforms (J, B, 3, 4), level-major, from the joint outputs
        if g_transforms is not None:
            g_world = g_transforms[..., :3, :].transpose(0, 1).index_select(0, lv.order)
            if g_joints is not None:
                g_world[..., 3].add_(g_joints.transpose(0, 1).index_select(0, lv.order))
        else:
            g_world = world.new_zeros(n_j, b, 3, 4)
            if g_joints is not None:
                g_world[..., 3] = g_joints.transpose(0, 1).index_select(0, lv.order)
        g_transl = g_world[..., 3].sum(0) if need_transl else None
        if g_verts is not None and g_transl is not None:
            g_transl += g_verts.sum(1)
        if not (need_pose or need_betas):
            return None, None, g_transl, None
        g_rest: torch.Tensor | None = None
        g_vt: torch.Tensor | None = None
        if g_verts is not None:
            gt = g_verts.transpose(1, 2).contiguous()  # a no-op for gradients in the vertices' own layout
            need = (True, need_betas, need_betas or (need_pose and p.has_pose_blend))
            g_r, g_p, g_rest, g_vt = _skin_backward(gt, world[..., :3], j_rest, m, p.weights_t, vt, need)
            assert g_r is not None and g_p is not None
            g_world[..., :3].add_(g_r)
            g_world[..., 3].add_(g_p)
        # chain backward, deepest level first: W_l = W_p @ L_l (transposed operands are views)
        g_local = torch.empty_like(world)
        rot_t = world[..., :3].transpose(2, 3)
        local_t = local.transpose(2, 3)
        spans = lv.spans
        for d in range(len(spans) - 1, 0, -1):
            (s, e), (ps, pe), pp = spans[d], spans[d - 1], lv.parent_pos[d]
            g_l = g_world[s:e]
            par_t = rot_t[ps:pe] if pp is None else rot_t[ps:pe].index_select(0, pp)
            torch.matmul(par_t, g_l, out=g_local[s:e])
            to_par = torch.matmul(g_l, local_t[s:e])
            if pp is not None:
                g_world[ps:pe].index_add_(0, pp, to_par)
            elif pe - ps == 1 and e - s > 1:
                g_world[ps:pe].add_(to_par.sum(0, keepdim=True))
            else:
                g_world[ps:pe].add_(to_par)
        s0, e0 = spans[0]
        g_local[s0:e0] = g_world[s0:e0]
        # rest joints and parent offsets
        g_rot = g_local[..., :3]
        g_betas: torch.Tensor | None = None
        if need_betas:
            g_jj = torch.stack([torch.zeros_like(j_rest) if g_rest is None else g_rest, g_local[..., 3]], 0)
            g_betas = g_jj.permute(2, 0, 1, 3).reshape(b, 6 * n_j) @ p.j_basis.transpose(0, 1)
        # blend shapes
        if g_vt is not None:
            k0 = 0 if need_betas else n_s
            k1 = p.basis.shape[0] if need_pose and p.has_pose_blend else n_s
            # (K, 3V) @ (3V, B), read transposed: faster than (B, 3V) @ (3V, K) with MKL at batch 64
            g_coef = (p.basis[k0:k1] @ g_vt.view(b, 3 * n_v).transpose(0, 1)).transpose(0, 1)
            if need_betas:
                assert g_betas is not None
                g_betas += g_coef[:, :n_s]
            if need_pose and p.has_pose_blend:
                g_rot[1:].add_(g_coef[:, n_s - k0 :].view(b, n_j - 1, 3, 3).transpose(0, 1))
        g_pose: torch.Tensor | None = None
        if need_pose:
            if ctx.rot_input:
                g_pose = g_rot.index_select(0, lv.inverse).transpose(0, 1)
            else:
                g_aa = _rodrigues_backward(g_rot.reshape(-1, 3, 3), tuple(rod))
                g_pose = g_aa.view(n_j, b, 3).index_select(0, lv.inverse).transpose(0, 1)
        return g_pose, g_betas, g_transl, None


def lbs_packed(
    pose: torch.Tensor, betas: torch.Tensor | None, transl: torch.Tensor | None, packed: PackedLBS
) -> LBSOutput:
    """Full linear blend skinning from axis-angle pose and shape coefficients, on a :class:`PackedLBS`, as one
    autograd node with a hand-written backward (first-order only; :class:`_LBS`).

    Args:
        pose: (B, J, 3) axis-angle per joint (root first, model joint order), radians; or (B, J, 3, 3)
            rotation matrices.
        betas: (B, n) shape coefficients, or None for the template shape.
        transl: (B, 3) translation added to vertices, joints and joint transforms, metres, or None.
        packed: from :func:`pack_lbs`, same dtype and device.

    Returns:
        :class:`LBSOutput`.
    """
    verts, joints, transforms = _LBS.apply(pose, betas, transl, packed)
    return LBSOutput(vertices=verts, joints=joints, joint_transforms=transforms)


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
) -> LBSOutput:
    """Full linear blend skinning from axis-angle pose and shape coefficients (packs the model per call; a
    layer calls :func:`pack_lbs` once and :func:`lbs_packed` per batch).

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

    Returns:
        :class:`LBSOutput` (no global translation applied).
    """
    packed = pack_lbs(v_template, shapedirs, posedirs, j_template, j_shapedirs, parents, weights)
    return lbs_packed(pose, betas, None, packed)

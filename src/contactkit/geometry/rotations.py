"""Rotation conversions between axis-angle, rotation matrices, unit quaternions and the 6D representation.

All functions are pure torch, batch-agnostic (any leading shape ``...``), keep the input dtype and device,
and give finite values *and* finite gradients at the zero rotation (small-angle Taylor branches), which is
where hand poses start during fitting.

Conventions:
- axis-angle ``aa (..., 3)``: unit axis times angle in radians (a rotation vector).
- rotation matrices ``R (..., 3, 3)`` act on column vectors: ``x' = R @ x``.
- quaternions ``q (..., 4)`` are ``(w, x, y, z)``, scalar first; ``rotmat_to_quat`` returns ``w >= 0``.
- 6D (Zhou et al. 2019): the first two *columns* of ``R``, concatenated: ``(..., 6) = [R[:, 0], R[:, 1]]``.
"""

from __future__ import annotations

import torch

from contactkit.errors import ShapeError

__all__ = [
    "axis_angle_to_rotmat",
    "rotmat_to_axis_angle",
    "axis_angle_to_quat",
    "quat_to_axis_angle",
    "quat_to_rotmat",
    "rotmat_to_quat",
    "rot6d_to_rotmat",
    "rotmat_to_rot6d",
    "skew",
]

# Below this squared angle (rad^2) the Taylor branches are used. With the series truncated after the
# theta^4 term the relative error is O(theta^6) < 1e-18 here, below float64 resolution.
_SMALL_SQ = 1e-6


def _check_last(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor of shape (..., {', '.join(map(str, shape))})")
    if tuple(x.shape[x.dim() - len(shape) :]) != shape or x.dim() < len(shape):
        raise ShapeError(f"{name} must have shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}")


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrix ``[v]_x`` with ``[v]_x @ u = v x u``.

    Args:
        v: (..., 3) float.

    Returns:
        (..., 3, 3) float, same dtype/device.
    """
    _check_last(v, (3,), "v")
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*v.shape[:-1], 3, 3)


def _sinc_terms(theta_sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a = sin(t)/t`` and ``b = (1 - cos t)/t^2`` as functions of ``t^2``, safe at ``t = 0``."""
    small = theta_sq < _SMALL_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = safe_sq.sqrt()
    a_big = torch.sin(theta) / theta
    b_big = (1.0 - torch.cos(theta)) / safe_sq
    a_small = 1.0 - theta_sq / 6.0 + theta_sq * theta_sq / 120.0
    b_small = 0.5 - theta_sq / 24.0 + theta_sq * theta_sq / 720.0
    return torch.where(small, a_small, a_big), torch.where(small, b_small, b_big)


def axis_angle_to_rotmat(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula ``R = I + a [w]_x + b [w]_x^2`` with ``a = sin t / t``, ``b = (1 - cos t)/t^2``.

    Evaluated entry-wise as ``R = (1 - b t^2) I + a [w]_x + b w w^T`` (no batched 3x3 products).

    Args:
        aa: (..., 3) float axis-angle (rotation vector), radians.

    Returns:
        (..., 3, 3) rotation matrices, same dtype/device. Value and gradient are finite at ``aa = 0``
        (the gradient there is exact: ``dR/dw = [e_i]_x``).
    """
    _check_last(aa, (3,), "aa")
    theta_sq = (aa * aa).sum(-1)
    a, b = _sinc_terms(theta_sq)
    c = 1.0 - b * theta_sq
    x, y, z = aa.unbind(-1)
    ax, ay, az = a * x, a * y, a * z
    bxy, bxz, byz = b * x * y, b * x * z, b * y * z
    r = torch.stack(
        [
            c + b * x * x, bxy - az, bxz + ay,
            bxy + az, c + b * y * y, byz - ax,
            bxz - ay, byz + ax, c + b * z * z,
        ],
        dim=-1,
    )  # fmt: skip
    return r.reshape(*aa.shape[:-1], 3, 3)


def axis_angle_to_quat(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle to unit quaternion ``(w, x, y, z) = (cos(t/2), sin(t/2)/t * aa)``.

    Args:
        aa: (..., 3) float, radians.

    Returns:
        (..., 4) float unit quaternions, ``w >= 0`` for angles up to pi.
    """
    _check_last(aa, (3,), "aa")
    theta_sq = (aa * aa).sum(-1)
    small = theta_sq < _SMALL_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = safe_sq.sqrt()
    half = 0.5 * theta
    # sin(t/2)/t ~ 1/2 - t^2/48 + t^4/3840
    s_big = torch.sin(half) / theta
    s_small = 0.5 - theta_sq / 48.0 + theta_sq * theta_sq / 3840.0
    s = torch.where(small, s_small, s_big)
    w = torch.where(small, 1.0 - theta_sq / 8.0 + theta_sq * theta_sq / 384.0, torch.cos(half))
    return torch.cat([w[..., None], s[..., None] * aa], dim=-1)


def quat_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternion ``(w, x, y, z)`` to axis-angle with angle in [0, pi].

    Args:
        q: (..., 4) float; normalised internally; ``q`` and ``-q`` give the same result.

    Returns:
        (..., 3) float axis-angle, radians. Finite value and gradient at the identity.
    """
    _check_last(q, (4,), "q")
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    # pick the hemisphere w >= 0 so the angle is in [0, pi]
    sign = torch.where(q[..., :1] < 0, -torch.ones_like(q[..., :1]), torch.ones_like(q[..., :1]))
    q = q * sign
    w = q[..., 0]
    v = q[..., 1:]
    s_sq = (v * v).sum(-1)
    small = s_sq < _SMALL_SQ
    s = torch.where(small, torch.ones_like(s_sq), s_sq).sqrt()
    angle = 2.0 * torch.atan2(s, w)
    factor_big = angle / s
    # for a unit quaternion with w >= 0, angle = 2 asin(s), and 2 asin(s)/s = 2 (1 + s^2/6 + 3 s^4/40 + ...)
    factor_small = 2.0 * (1.0 + s_sq / 6.0 + 3.0 * s_sq * s_sq / 40.0)
    factor = torch.where(small, factor_small, factor_big)
    return factor[..., None] * v


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Quaternion ``(w, x, y, z)`` to rotation matrix; ``q`` is normalised first.

    Args:
        q: (..., 4) float, non-zero.

    Returns:
        (..., 3, 3) float rotation matrices.
    """
    _check_last(q, (4,), "q")
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    w, x, y, z = q.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    r = torch.stack(
        [
            1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
        ],
        dim=-1,
    )  # fmt: skip
    return r.reshape(*q.shape[:-1], 3, 3)


def rotmat_to_quat(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to unit quaternion ``(w, x, y, z)`` with ``w >= 0``.

    Uses the numerically best of the four Shepperd candidates per element (the one with the largest
    diagonal term), so it is stable near 0 and near pi.

    Args:
        r: (..., 3, 3) float rotation matrices.

    Returns:
        (..., 4) float unit quaternions.
    """
    _check_last(r, (3, 3), "r")
    m00, m01, m02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    m10, m11, m12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    m20, m21, m22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    # 4 * q_i^2 for each component
    four_sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
    )
    # candidates: each row is 4*q_k*q for k = argmax component
    cand = torch.stack(
        [
            torch.stack([four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]], dim=-1),
        ],
        dim=-2,
    )  # (..., 4, 4)
    best = four_sq.argmax(dim=-1)  # (...)
    denom = 2.0 * four_sq.clamp_min(0.1).sqrt()  # the chosen one is >= 1, clamp only guards the others
    cand = cand / denom[..., None]
    idx = best[..., None, None].expand(*best.shape, 1, 4)
    q = cand.gather(-2, idx).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def rotmat_to_axis_angle(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to axis-angle, angle in [0, pi]; robust near 0 and near pi (via quaternions).

    Args:
        r: (..., 3, 3) float rotation matrices.

    Returns:
        (..., 3) float axis-angle, radians.
    """
    _check_last(r, (3, 3), "r")
    return quat_to_axis_angle(rotmat_to_quat(r))


def rot6d_to_rotmat(d6: torch.Tensor) -> torch.Tensor:
    """6D representation to rotation matrix by Gram-Schmidt (Zhou et al., CVPR 2019).

    Args:
        d6: (..., 6) float, the first two columns of a matrix ``[c1, c2]`` (need not be orthonormal; the
            two 3-vectors must be linearly independent).

    Returns:
        (..., 3, 3) float rotation matrices whose first column is ``c1 / |c1|``.
    """
    _check_last(d6, (6,), "d6")
    a1, a2 = d6[..., :3], d6[..., 3:]
    eps = torch.finfo(d6.dtype).eps
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(eps)
    a2p = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2p / a2p.norm(dim=-1, keepdim=True).clamp_min(eps)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def rotmat_to_rot6d(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to the 6D representation: its first two columns, concatenated.

    Args:
        r: (..., 3, 3) float.

    Returns:
        (..., 6) float ``[R[..., :, 0], R[..., :, 1]]``.
    """
    _check_last(r, (3, 3), "r")
    return torch.cat([r[..., :, 0], r[..., :, 1]], dim=-1)

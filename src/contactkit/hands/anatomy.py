"""A-MANO anatomy (CPF, paper 004 §3, §5.3, appendix A.1): twist–splay–bend joint frames, anatomy cost.

Joint order is MANO's 16 (wrist; index1-3; middle1-3; little1-3; ring1-3; thumb1-3); ``hand_pose (B,45)``
holds the 15 non-root joints' axis-angles in that order, each expressed in the rest (world-aligned) frame as
MANO does.

Frames (A.1, per joint ``j`` with child ``c``; all unit vectors, right-handed, columns of ``joint_frames``):

- **twist** ``t = normalize(x_c - x_j)``: along the bone, pointing distally (CPF writes child→joint; we flip
  it so that the frame stays right-handed with a positive-is-flexion bend axis). The last joint of a finger
  uses the fingertip as its child when ``rest_tips`` is given, otherwise the direction of its parent bone.
- **palmar reference** ``r``: the palm normal (see :func:`palm_normal`) — CPF uses MANO's y axis, the same
  direction up to sign. For the three thumb joints ``r`` is tilted 45° from the palm normal toward the palm
  centre, because the thumb pad faces the fingers rather than the palm normal (our deviation, documented in
  ``docs/hand_annotations.md``).
- **bend** ``b = normalize(t × r)``: rotating by a positive angle about ``b`` moves the child toward the palm
  (flexion); **splay** ``s = b × t``: the palmar direction of the bone (rotation about it spreads the finger).

The rotation ``θ_j`` (axis-angle, rad) of a joint decomposes linearly into ``(twist, splay, bend) = F_jᵀ θ_j``
(CPF projects the rotation axis on the frame axes; we project the axis-angle vector, which is the same
direction scaled by the angle and keeps the cost smooth at the zero pose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from contactkit.errors import ContactkitError, ShapeError

Side = Literal["right", "left"]

#: Per finger (thumb, index, middle, ring, little): its three MANO joints, proximal to distal.
FINGER_JOINTS: tuple[tuple[int, int, int], ...] = (
    (13, 14, 15),
    (1, 2, 3),
    (4, 5, 6),
    (10, 11, 12),
    (7, 8, 9),
)
FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")
#: The five knuckles (first joint of each finger), in MANO order: splay is free there (CPF eq. 10).
KNUCKLES: tuple[int, ...] = (1, 4, 7, 10, 13)
#: Axis names of the last dimension of :func:`pose_to_twist_splay_bend` and of :class:`AnatomyLimits`.
AXES: tuple[str, str, str] = ("twist", "splay", "bend")


def _child_tables() -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Bone end indices: into joints+tips (21 rows) and, without tips, (child, base) into the 16 joints."""
    with_tips = [4] * 16  # the wrist's bone: wrist -> middle1
    child = [4] * 16
    base = [0] * 16
    for f, (j1, j2, j3) in enumerate(FINGER_JOINTS):
        with_tips[j1], with_tips[j2], with_tips[j3] = j2, j3, 16 + f
        child[j1], child[j2], child[j3] = j2, j3, j3
        base[j1], base[j2], base[j3] = j1, j2, j2  # distal joint: its parent bone's direction
    return tuple(with_tips), tuple(child), tuple(base)


_CHILD_WITH_TIPS, _CHILD_NO_TIPS, _BASE_NO_TIPS = _child_tables()


def _check_side(side: str) -> None:
    if side not in ("right", "left"):
        raise ContactkitError(f"side must be 'right' or 'left', got {side!r}")


def _check_joints(rest_joints: torch.Tensor) -> None:
    if not isinstance(rest_joints, torch.Tensor) or rest_joints.shape != (16, 3):
        shape = (
            tuple(rest_joints.shape) if isinstance(rest_joints, torch.Tensor) else type(rest_joints).__name__
        )
        raise ShapeError(f"rest_joints must be a (16, 3) tensor in MANO joint order, got {shape}")


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def palm_normal(rest_joints: torch.Tensor, side: str) -> torch.Tensor:
    """Unit palm normal pointing out of the palm (the palmar direction).

    ``n = ±normalize((index1 - wrist) × (little1 - wrist))``, ``+`` for a right hand, ``-`` for a left one (a
    mirror image flips the cross product).

    Args:
        rest_joints: (16, 3) float, metres, MANO joint order, rest pose.
        side: "right" or "left".

    Returns:
        (3,) float, same dtype/device as ``rest_joints``.
    """
    _check_joints(rest_joints)
    _check_side(side)
    wrist = rest_joints[0]
    n = torch.linalg.cross(rest_joints[1] - wrist, rest_joints[7] - wrist)
    return _unit(n if side == "right" else -n)


def joint_frames(
    rest_joints: torch.Tensor, side: str, *, rest_tips: torch.Tensor | None = None
) -> torch.Tensor:
    """Twist–splay–bend frames of the 16 joints (CPF A.1).

    Args:
        rest_joints: (16, 3) float, metres, MANO joint order, rest pose.
        side: "right" or "left".
        rest_tips: optional (5, 3) float, metres, fingertips (thumb, index, middle, ring, little), used as the
            children of the distal joints; without it their bone direction is the parent bone's.

    Returns:
        (16, 3, 3) float: rotation matrices whose columns are the twist, splay and bend axes (right-handed).
        The wrist's frame uses the wrist → middle1 direction as its twist axis.
    """
    _check_joints(rest_joints)
    _check_side(side)
    if rest_tips is not None and (not isinstance(rest_tips, torch.Tensor) or rest_tips.shape != (5, 3)):
        raise ShapeError("rest_tips must be a (5, 3) tensor (thumb, index, middle, ring, little)")
    n = palm_normal(rest_joints, side)
    if rest_tips is not None:
        points = torch.cat([rest_joints, rest_tips], dim=0)  # (21, 3): joints then tips thumb..little
        bone = points[list(_CHILD_WITH_TIPS)] - rest_joints
    else:
        bone = rest_joints[list(_CHILD_NO_TIPS)] - rest_joints[list(_BASE_NO_TIPS)]
    t = _unit(bone)
    centre = rest_joints[[0, 1, 4, 7, 10]].mean(0)
    toward = centre - rest_joints
    toward = _unit(toward - (toward @ n)[:, None] * n)
    is_thumb = torch.zeros(16, 1, dtype=torch.bool, device=rest_joints.device)
    is_thumb[list(FINGER_JOINTS[0])] = True
    ref = torch.where(is_thumb, _unit(n + toward), n.expand(16, 3))
    b = _unit(torch.linalg.cross(t, ref, dim=-1))
    s = torch.linalg.cross(b, t, dim=-1)
    return torch.stack([t, s, b], dim=-1)


def pose_to_twist_splay_bend(hand_pose: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Components of each joint's axis-angle on its twist, splay and bend axes.

    Args:
        hand_pose: (B, 45) float, radians, axis-angles of MANO's 15 non-root joints.
        frames: (16, 3, 3) from :func:`joint_frames`.

    Returns:
        (B, 15, 3) float, radians: (twist, splay, bend) per joint; positive bend is flexion.
    """
    if hand_pose.ndim != 2 or hand_pose.shape[1] != 45:
        raise ShapeError(f"hand_pose must be (B, 45) axis-angle, got {tuple(hand_pose.shape)}")
    aa = hand_pose.reshape(-1, 15, 3)
    return torch.einsum("jik,bji->bjk", frames[1:].to(aa), aa)


def twist_splay_bend_to_pose(components: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pose_to_twist_splay_bend`: (B, 15, 3) radians → (B, 45) axis-angle."""
    if components.ndim != 3 or components.shape[1:] != (15, 3):
        raise ShapeError(f"components must be (B, 15, 3), got {tuple(components.shape)}")
    return torch.einsum("jik,bjk->bji", frames[1:].to(components), components).reshape(-1, 45)


@dataclass(frozen=True)
class AnatomyLimits:
    """Allowed ranges of each joint's (twist, splay, bend) components, radians.

    ``lower``/``upper``: (15, 3) float64 tensors, rows in MANO's non-root joint order, columns twist, splay,
    bend; ``±inf`` for an unbounded side. ``name`` says where the numbers come from.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    name: str

    def __post_init__(self) -> None:
        if self.lower.shape != (15, 3) or self.upper.shape != (15, 3):
            raise ShapeError("AnatomyLimits.lower and .upper must be (15, 3) (joints × twist/splay/bend)")
        if bool((self.lower > self.upper).any()):
            raise ContactkitError("AnatomyLimits.lower must not exceed .upper")


def cpf_limits() -> AnatomyLimits:
    """CPF eq. 10 as ranges: no twist anywhere, no splay except at the five knuckles, bend ≤ π/2."""
    inf = math.inf
    lower = torch.zeros(15, 3, dtype=torch.float64)
    upper = torch.zeros(15, 3, dtype=torch.float64)
    lower[:, 2], upper[:, 2] = -inf, math.pi / 2
    for j in KNUCKLES:
        lower[j - 1, 1], upper[j - 1, 1] = -inf, inf
    return AnatomyLimits(lower, upper, "cpf")


def natural_limits() -> AnatomyLimits:
    """Default ranges: CPF's structure with anatomical tolerances (degrees below, stored in radians).

    Flexion is capped at CPF's π/2 for every joint. Extension (negative bend), abduction (splay) and the small
    twist tolerances follow the usual clinical active ranges of motion (e.g. the AAOS tables: finger MCP
    hyperextension up to ~30°, abduction ~20–25°; PIP extension 0°; DIP hyperextension ~10–20°; thumb CMC
    ~±40° in both planes; thumb MCP/IP extension ~15–20°). Twist tolerance 8° (thumb CMC 30°: opposition
    rotates the thumb about its axis); splay tolerance of non-knuckles 8°.
    """
    d = math.radians
    lower = torch.empty(15, 3, dtype=torch.float64)
    upper = torch.empty(15, 3, dtype=torch.float64)

    def put(j: int, twist: float, splay: tuple[float, float], bend: tuple[float, float]) -> None:
        lower[j - 1] = torch.tensor([-d(twist), d(splay[0]), d(bend[0])], dtype=torch.float64)
        upper[j - 1] = torch.tensor([d(twist), d(splay[1]), d(bend[1])], dtype=torch.float64)

    for j1, j2, j3 in FINGER_JOINTS[1:]:
        put(j1, 8.0, (-25.0, 25.0), (-30.0, 90.0))
        put(j2, 8.0, (-8.0, 8.0), (-5.0, 90.0))
        put(j3, 8.0, (-8.0, 8.0), (-15.0, 90.0))
    put(13, 30.0, (-40.0, 40.0), (-40.0, 70.0))
    put(14, 8.0, (-10.0, 10.0), (-15.0, 70.0))
    put(15, 8.0, (-8.0, 8.0), (-20.0, 90.0))
    return AnatomyLimits(lower, upper, "natural")


def anatomy_cost_from_frames(
    hand_pose: torch.Tensor,
    frames: torch.Tensor,
    *,
    limits: AnatomyLimits | None = None,
    power: Literal[1, 2] = 2,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> torch.Tensor:
    """A-MANO anatomy cost given precomputed frames: sum of out-of-range excesses of twist, splay and bend.

    ``cost = Σ_j Σ_k w_k · (relu(lo_jk − c_jk) + relu(c_jk − hi_jk)) ** power`` with ``c = F_jᵀ θ_j``.
    With ``limits=cpf_limits()`` and ``power=1`` this is CPF's eq. 10 (|twist| + |splay| off the knuckles +
    max(φ_bend − π/2, 0)); the default ``power=2`` is smooth everywhere (finite gradient at the zero pose).

    Args:
        hand_pose: (B, 45) float, radians, axis-angle, MANO joint order.
        frames: (16, 3, 3) from :func:`joint_frames`.
        limits: ranges, default :func:`natural_limits`.
        power: 1 (CPF's linear hinge) or 2 (squared hinge).
        weights: weights of the twist, splay and bend terms.

    Returns:
        (B,) float, radians**power, same dtype/device as ``hand_pose``.
    """
    if power not in (1, 2):
        raise ContactkitError(f"power must be 1 or 2, got {power!r}")
    lim = limits if limits is not None else natural_limits()
    c = pose_to_twist_splay_bend(hand_pose, frames)
    lo = lim.lower.to(device=c.device, dtype=c.dtype)
    hi = lim.upper.to(device=c.device, dtype=c.dtype)
    excess = torch.relu(lo - c) + torch.relu(c - hi)
    if power == 2:
        excess = excess * excess
    w = torch.tensor(weights, dtype=c.dtype, device=c.device)
    return (excess * w).sum(dim=(1, 2))


def anatomy_cost(
    rest_joints: Any,
    hand_pose: torch.Tensor,
    side: str | None = None,
    *,
    rest_tips: torch.Tensor | None = None,
    limits: AnatomyLimits | None = None,
    power: Literal[1, 2] = 2,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> torch.Tensor:
    """A-MANO anatomy cost of a batch of poses (differentiable w.r.t. ``hand_pose`` and ``rest_joints``).

    Args:
        rest_joints: (16, 3) float tensor, metres, rest joints in MANO order — or a hand model with attributes
            ``rest_joints`` (16, 3) and ``side`` (then ``side`` may be omitted, and the fingertips of the
            model's annotations are used as ``rest_tips`` when it exposes rest vertices, and its
            ``pose_offset`` (MANO's mean pose when ``flat_hand_mean`` is False) is added to ``hand_pose``, as
            ``forward`` does).
        hand_pose: (B, 45) float, radians, axis-angle (the model's input with a hand model).
        side: "right" or "left" (required with a tensor).
        rest_tips, limits, power, weights: see :func:`joint_frames` and :func:`anatomy_cost_from_frames`.

    Returns:
        (B,) float, zero when every joint lies inside its limits.
    """
    if not isinstance(rest_joints, torch.Tensor):
        hand = rest_joints
        if not hasattr(hand, "rest_joints"):
            raise ContactkitError("rest_joints must be a (16, 3) tensor or a hand model with .rest_joints")
        hand_side = getattr(hand, "side", side)
        if side is not None and side != hand_side:
            raise ContactkitError(f"side={side!r} disagrees with the hand model's side {hand_side!r}")
        side = hand_side
        if rest_tips is None:
            rest_tips = _hand_rest_tips(hand)
        rest_joints = hand.rest_joints
        offset = getattr(hand, "pose_offset", None)  # MANO's hands_mean when flat_hand_mean is False
        if isinstance(offset, torch.Tensor) and hand_pose.ndim == 2 and hand_pose.shape[1] == 45:
            hand_pose = hand_pose + offset.to(hand_pose)
    if side is None:
        raise ContactkitError("side must be given ('right' or 'left') when rest_joints is a tensor")
    if hand_pose.ndim != 2 or hand_pose.shape[1] != 45:
        raise ShapeError(f"hand_pose must be (B, 45) axis-angle, got {tuple(hand_pose.shape)}")
    joints = rest_joints.to(device=hand_pose.device, dtype=hand_pose.dtype)
    tips = rest_tips.to(joints) if rest_tips is not None else None
    frames = joint_frames(joints, side, rest_tips=tips)
    return anatomy_cost_from_frames(hand_pose, frames, limits=limits, power=power, weights=weights)


def _hand_rest_tips(hand: Any) -> torch.Tensor | None:
    """Rest fingertip positions of a hand model, from its annotations and rest vertices when it has both."""
    ann = getattr(hand, "annotations", None)
    for name in ("rest_vertices", "v_template"):
        verts = getattr(hand, name, None)
        if isinstance(verts, torch.Tensor) and verts.ndim == 2 and ann is not None:
            idx = torch.as_tensor(ann.fingertip_vertices, dtype=torch.long, device=verts.device)
            return verts[idx]
    return None

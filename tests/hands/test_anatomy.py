"""Tests of contactkit.hands.anatomy: twist–splay–bend frames and the A-MANO anatomy cost."""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import hand_fixtures as hf  # noqa: E402

from contactkit.errors import ContactkitError, ShapeError  # noqa: E402
from contactkit.geometry.rotations import axis_angle_to_rotmat  # noqa: E402
from contactkit.hands.anatomy import (  # noqa: E402
    FINGER_JOINTS,
    KNUCKLES,
    AnatomyLimits,
    anatomy_cost,
    anatomy_cost_from_frames,
    cpf_limits,
    joint_frames,
    natural_limits,
    palm_normal,
    pose_to_twist_splay_bend,
    twist_splay_bend_to_pose,
)

HANDS = ["openhand", "synthetic778", "openhand_left", "synthetic778_left"]


@functools.cache
def rest(name: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(rest joints (16,3), rest tips (5,3), side), float64."""
    if name.startswith("openhand"):
        h = hf.openhand_rest("left" if name.endswith("left") else "right")
    else:
        h = hf.synthetic_rest()
        if name.endswith("left"):
            h = hf.mirrored(h)
    return torch.tensor(h.joints), torch.tensor(h.vertices[h.tips]), h.side


def _frames(name: str) -> torch.Tensor:
    j, t, side = rest(name)
    return joint_frames(j, side, rest_tips=t)  # type: ignore[arg-type]


def _pose(components: dict[tuple[int, int], float], frames: torch.Tensor) -> torch.Tensor:
    """Axis-angle pose (1,45) from {(MANO joint 1..15, axis 0 twist / 1 splay / 2 bend): radians}."""
    comp = torch.zeros(1, 15, 3, dtype=frames.dtype)
    for (j, k), val in components.items():
        comp[0, j - 1, k] = val
    return twist_splay_bend_to_pose(comp, frames)


def _relaxed(frames: torch.Tensor) -> torch.Tensor:
    """Mild flexion everywhere: 0.3 rad at finger joints, 0.2 rad at the thumb, no twist or splay."""
    comps = {(j, 2): 0.3 for f in FINGER_JOINTS[1:] for j in f}
    comps.update({(j, 2): 0.2 for j in FINGER_JOINTS[0]})
    return _pose(comps, frames)


@pytest.mark.parametrize("name", HANDS)
def test_frames_orthonormal_and_aligned(name: str) -> None:
    j, t, side = rest(name)
    f = _frames(name)
    eye = torch.eye(3, dtype=f.dtype).expand(16, 3, 3)
    torch.testing.assert_close(f.transpose(1, 2) @ f, eye)
    torch.testing.assert_close(torch.linalg.det(f), torch.ones(16, dtype=f.dtype))
    n = palm_normal(j, side)  # type: ignore[arg-type]
    for fi, (j1, j2, j3) in enumerate(FINGER_JOINTS):
        for a, b in ((j1, j2), (j2, j3), (j3, None)):
            child = j[b] if b is not None else t[fi]
            bone = (child - j[a]) / (child - j[a]).norm()
            torch.testing.assert_close(f[a][:, 0], bone)  # twist along the bone, distal
            assert f[a][:, 1] @ n > 0.3  # splay axis: the palmar side
            if fi > 0:
                assert abs(float(f[a][:, 2] @ n)) < 1e-9  # bend axis lies in the palm plane


@pytest.mark.parametrize("name", HANDS)
def test_positive_bend_is_flexion_toward_palm(name: str) -> None:
    j, t, side = rest(name)
    f = _frames(name)
    n = palm_normal(j, side)  # type: ignore[arg-type]
    for fi, (j1, j2, j3) in enumerate(FINGER_JOINTS):
        for a, b in ((j1, j2), (j2, j3), (j3, None)):
            child = j[b] if b is not None else t[fi]
            rot = axis_angle_to_rotmat(0.4 * f[a][:, 2])
            moved = j[a] + rot @ (child - j[a])
            ref = f[a][:, 1]
            assert (moved - child) @ ref > 0  # toward the bone's palmar side
            if fi > 0:
                assert (moved - child) @ n > 0  # ... which for fingers is the palm normal's side


def test_palm_normal_sign_and_mirror() -> None:
    j, _, _ = rest("synthetic778")
    torch.testing.assert_close(palm_normal(j, "right"), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    jl, _, _ = rest("synthetic778_left")
    torch.testing.assert_close(palm_normal(jl, "left"), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    # the thumb lies on the palm side on both real hands
    for name in ("openhand", "openhand_left"):
        jj, _, side = rest(name)
        n = palm_normal(jj, side)  # type: ignore[arg-type]
        assert ((jj[14:] - jj[0]) @ n).min() > 0


@pytest.mark.parametrize("name", HANDS)
def test_cost_zero_at_rest_and_relaxed_pose(name: str) -> None:
    j, t, side = rest(name)
    f = _frames(name)
    zero = torch.zeros(2, 45, dtype=torch.float64)
    assert torch.equal(anatomy_cost(j, zero, side, rest_tips=t), torch.zeros(2, dtype=torch.float64))  # type: ignore[arg-type]
    relaxed = _relaxed(f)
    assert anatomy_cost(j, relaxed, side, rest_tips=t).item() == 0.0  # type: ignore[arg-type]
    cpf = anatomy_cost(j, relaxed, side, rest_tips=t, limits=cpf_limits(), power=1)  # type: ignore[arg-type]
    assert cpf.item() < 1e-12  # zero-width twist/splay ranges: round-off only


@pytest.mark.parametrize("name", ["openhand", "synthetic778"])
def test_cost_grows_for_twist_hyperextension_and_splay(name: str) -> None:
    j, t, side = rest(name)
    f = _frames(name)

    def cost(pose: torch.Tensor) -> float:
        return float(anatomy_cost(j, pose, side, rest_tips=t))  # type: ignore[arg-type]

    index_pip = FINGER_JOINTS[1][1]
    twisted = [cost(_pose({(index_pip, 0): a}, f)) for a in (0.3, 0.6, 0.9)]
    assert 0 < twisted[0] < twisted[1] < twisted[2]
    hyper = [cost(_pose({(index_pip, 2): -a}, f)) for a in (0.3, 0.6, 0.9)]
    assert 0 < hyper[0] < hyper[1] < hyper[2]
    over = [cost(_pose({(index_pip, 2): a}, f)) for a in (1.2, 1.4, 1.6, 2.0)]
    assert over[0] == 0.0 and 0 < over[2] < over[3]  # flexion beyond pi/2 only
    # splay: free-ish at the knuckle (MCP), penalised at the PIP
    index_mcp = FINGER_JOINTS[1][0]
    assert cost(_pose({(index_mcp, 1): 0.3}, f)) == 0.0
    assert cost(_pose({(index_pip, 1): 0.3}, f)) > 0.0
    # relaxed pose plus a twist of one finger: the cost grows with the twist
    relaxed = _relaxed(f)
    assert cost(relaxed + _pose({(FINGER_JOINTS[3][0], 0): 0.5}, f)) > cost(relaxed) == 0.0


def test_cpf_cost_matches_equation_10() -> None:
    """power=1 with CPF's limits equals eq. 10 evaluated naively joint by joint."""
    j, t, side = rest("openhand")
    f = _frames("openhand")
    g = torch.Generator().manual_seed(0)
    pose = 0.8 * torch.randn(5, 45, generator=g, dtype=torch.float64)
    got = anatomy_cost(j, pose, side, rest_tips=t, limits=cpf_limits(), power=1)  # type: ignore[arg-type]
    want = torch.zeros(5, dtype=torch.float64)
    for b in range(5):
        for jj in range(1, 16):
            aa = pose[b, 3 * (jj - 1) : 3 * jj]
            want[b] += abs(float(aa @ f[jj][:, 0]))
            if jj not in KNUCKLES:
                want[b] += abs(float(aa @ f[jj][:, 1]))
            want[b] += max(float(aa @ f[jj][:, 2]) - math.pi / 2, 0.0)
    torch.testing.assert_close(got, want)


def test_natural_cost_matches_naive_reference() -> None:
    j, t, side = rest("synthetic778")
    f = _frames("synthetic778")
    lim = natural_limits()
    pose = 0.7 * torch.randn(4, 45, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = anatomy_cost(j, pose, side, rest_tips=t)  # type: ignore[arg-type]
    want = torch.zeros(4, dtype=torch.float64)
    for b in range(4):
        for jj in range(15):
            for k in range(3):
                c = float(pose[b, 3 * jj : 3 * jj + 3] @ f[jj + 1][:, k])
                lo, hi = float(lim.lower[jj, k]), float(lim.upper[jj, k])
                want[b] += max(lo - c, 0.0, c - hi) ** 2
    torch.testing.assert_close(got, want)


def test_components_round_trip() -> None:
    f = _frames("openhand")
    pose = torch.randn(3, 45, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(twist_splay_bend_to_pose(pose_to_twist_splay_bend(pose, f), f), pose)


def test_cost_invariant_under_rigid_motion_and_mirror() -> None:
    j, t, side = rest("openhand")
    pose = 0.6 * torch.randn(3, 45, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    base = anatomy_cost(j, pose, side, rest_tips=t)  # type: ignore[arg-type]
    rot = axis_angle_to_rotmat(torch.tensor([0.3, -1.2, 0.8], dtype=torch.float64))
    shift = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    pose_r = (pose.reshape(3, 15, 3) @ rot.T).reshape(3, 45)  # axis-angles rotate with the hand
    moved = anatomy_cost(j @ rot.T + shift, pose_r, side, rest_tips=t @ rot.T + shift)  # type: ignore[arg-type]
    torch.testing.assert_close(moved, base)
    # mirror x -> -x: a left hand; axis-angles are pseudo-vectors, so aa' = -M aa
    m = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    pose_m = -(pose.reshape(3, 15, 3) @ m).reshape(3, 45)
    mirrored = anatomy_cost(j @ m, pose_m, "left", rest_tips=t @ m)
    torch.testing.assert_close(mirrored, base)


@pytest.mark.parametrize("at_zero", [True, False])
def test_gradcheck_float64(at_zero: bool) -> None:
    j, t, side = rest("synthetic778")
    g = torch.Generator().manual_seed(4)
    pose = (
        torch.zeros(2, 45, dtype=torch.float64)
        if at_zero
        else 0.9 * torch.randn(2, 45, generator=g, dtype=torch.float64)
    )
    pose.requires_grad_(True)
    joints = j.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, jj: anatomy_cost(jj, p, side, rest_tips=t), (pose, joints))  # type: ignore[arg-type]
    grad = torch.autograd.grad(anatomy_cost(j, pose, side).sum(), pose)[0]  # type: ignore[arg-type]
    assert torch.isfinite(grad).all()
    if at_zero:
        assert torch.equal(grad, torch.zeros_like(grad))


def test_gradcheck_cpf_linear_away_from_kinks() -> None:
    j, t, side = rest("openhand")
    pose = (
        0.9 * torch.randn(2, 45, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    ).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: anatomy_cost(j, p, side, rest_tips=t, limits=cpf_limits(), power=1),
        (pose,),  # type: ignore[arg-type]
    )


def test_float32_and_dtype_kept() -> None:
    j, t, side = rest("openhand")
    pose = 0.5 * torch.randn(3, 45, generator=torch.Generator().manual_seed(7))
    out = anatomy_cost(j.float(), pose, side, rest_tips=t.float())  # type: ignore[arg-type]
    ref = anatomy_cost(j, pose.double(), side, rest_tips=t)  # type: ignore[arg-type]
    assert out.dtype == torch.float32 and out.shape == (3,)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-6)


def test_hand_model_overload() -> None:
    """anatomy_cost(hand, pose) reads rest joints, side and fingertips from a HandModel."""
    h = hf.synthetic_rest()
    model = hf.as_hand_model(h)
    pose = 0.6 * torch.randn(3, 45, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    via_model = anatomy_cost(model, pose)
    direct = anatomy_cost(torch.tensor(h.joints), pose, "right", rest_tips=torch.tensor(h.vertices[h.tips]))
    torch.testing.assert_close(via_model, direct)
    with pytest.raises(ContactkitError, match="disagrees"):
        anatomy_cost(model, pose, "left")


def test_bad_input() -> None:
    j, _, _ = rest("openhand")
    pose = torch.zeros(1, 45, dtype=torch.float64)
    with pytest.raises(ShapeError, match=r"rest_joints must be a \(16, 3\)"):
        anatomy_cost(j[:15], pose, "right")
    with pytest.raises(ShapeError, match=r"hand_pose must be \(B, 45\)"):
        anatomy_cost(j, pose[:, :44], "right")
    with pytest.raises(ContactkitError, match="side must be"):
        anatomy_cost(j, pose, "up")  # type: ignore[arg-type]
    with pytest.raises(ContactkitError, match="side must be given"):
        anatomy_cost(j, pose)
    with pytest.raises(ContactkitError, match="power must be 1 or 2"):
        anatomy_cost(j, pose, "right", power=3)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="rest_tips"):
        joint_frames(j, "right", rest_tips=torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ShapeError, match=r"\(15, 3\)"):
        AnatomyLimits(torch.zeros(14, 3), torch.zeros(14, 3), "bad")
    with pytest.raises(ContactkitError, match="lower must not exceed"):
        AnatomyLimits(torch.ones(15, 3), torch.zeros(15, 3), "bad")


def test_limits_presets_documented_values() -> None:
    cpf = cpf_limits()
    assert torch.all(cpf.upper[:, 2] == math.pi / 2) and torch.all(cpf.lower[:, 0] == 0)
    assert torch.isinf(cpf.lower[np.array(KNUCKLES) - 1, 1]).all()
    nat = natural_limits()
    assert torch.all(nat.upper[:, 2] <= math.pi / 2 + 1e-12)
    assert torch.all(nat.lower <= 0) and torch.all(nat.upper >= 0)  # the rest pose is always allowed
    _ = anatomy_cost_from_frames(torch.zeros(1, 45), _frames("openhand").float())


def test_openhand_model_cost_and_pose_offset() -> None:
    """Real HandModel: zero at its rest pose; with flat_hand_mean=False the mean pose is added first."""
    try:
        from contactkit.hands import load_hand  # type: ignore[attr-defined]

        flat = load_hand("openhand", dtype=torch.float64)
        mean = load_hand("openhand", flat_hand_mean=False, dtype=torch.float64)
    except Exception as exc:
        pytest.skip(f"OpenHand model not loadable: {exc}")
    pose = 0.5 * torch.randn(3, 45, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert anatomy_cost(flat, torch.zeros(1, 45, dtype=torch.float64)).item() == 0.0
    torch.testing.assert_close(anatomy_cost(mean, pose - mean.pose_offset), anatomy_cost(flat, pose))

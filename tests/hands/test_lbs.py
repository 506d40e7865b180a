"""LBS functional core and the HandModel layer: naive reference, gradients, rigid behaviour, input errors."""

import numpy as np
import pytest
import torch

from contactkit.errors import ShapeError
from contactkit.geometry.rotations import axis_angle_to_rotmat
from contactkit.hands import load_hand
from contactkit.hands.base import MANO_PARENTS
from contactkit.hands.lbs import batch_rigid_transform, kintree_levels, lbs


@pytest.fixture(scope="module")
def hand64():
    return load_hand("openhand", "right", dtype=torch.float64)


def _naive_chain(rotmats, joints, parents):
    """Per-joint homogeneous chain (reference)."""
    b, n = joints.shape[:2]
    world = [None] * n
    for j in range(n):
        local = torch.eye(4, dtype=joints.dtype).repeat(b, 1, 1)
        local[:, :3, :3] = rotmats[:, j]
        p = parents[j]
        local[:, :3, 3] = joints[:, j] - (joints[:, p] if p >= 0 else 0.0)
        world[j] = local if p < 0 else world[p] @ local
    return torch.stack(world, 1)


def test_kintree_levels_mano():
    lv = kintree_levels(MANO_PARENTS)
    assert [x.tolist() for x in lv.joints] == [[0], [1, 4, 7, 10, 13], [2, 5, 8, 11, 14], [3, 6, 9, 12, 15]]
    with pytest.raises(ValueError, match="exactly one root"):
        kintree_levels([-1, -1, 0])


def test_rigid_transform_matches_naive_on_random_tree():
    g = torch.Generator().manual_seed(0)
    parents = [-1, 0, 1, 0, 3, 4, 2, 0]  # unbalanced tree, children listed before deeper joints
    b = 3
    rot = axis_angle_to_rotmat(torch.randn(b, 8, 3, generator=g, dtype=torch.float64))
    joints = torch.randn(b, 8, 3, generator=g, dtype=torch.float64)
    pos, rw = batch_rigid_transform(rot, joints, torch.tensor(parents))
    ref = _naive_chain(rot, joints, parents)
    torch.testing.assert_close(rw, ref[:, :, :3, :3])
    torch.testing.assert_close(pos, ref[:, :, :3, 3])


def test_lbs_matches_naive_vertex_loop():
    g = torch.Generator().manual_seed(1)
    v, j, n = 40, 16, 4
    dt = torch.float64
    vt = torch.randn(v, 3, generator=g, dtype=dt)
    sd = torch.randn(v, 3, n, generator=g, dtype=dt) * 0.1
    pd = torch.randn(v, 3, 135, generator=g, dtype=dt) * 0.01
    jreg = torch.rand(j, v, generator=g, dtype=dt)
    jreg = jreg / jreg.sum(1, keepdim=True)
    w = torch.rand(v, j, generator=g, dtype=dt) ** 4
    w = w / w.sum(1, keepdim=True)
    pose = torch.randn(2, j, 3, generator=g, dtype=dt) * 0.5
    betas = torch.randn(2, n, generator=g, dtype=dt)
    parents = torch.tensor(MANO_PARENTS)
    out = lbs(pose, betas, vt, sd.reshape(v * 3, n).T, pd.reshape(v * 3, 135).T, jreg @ vt,
              torch.einsum("jv,vcn->jcn", jreg, sd).reshape(j * 3, n).T, parents, w)  # fmt: skip
    for bi in range(2):
        vs = vt + sd @ betas[bi]
        jr = jreg @ vs
        rot = axis_angle_to_rotmat(pose[bi])
        vp = vs + pd @ (rot[1:] - torch.eye(3, dtype=dt)).reshape(-1)
        world = _naive_chain(rot[None], jr[None], MANO_PARENTS)[0]
        for vi in range(v):
            t = sum(
                w[vi, k]
                * (
                    world[k]
                    @ torch.cat(
                        [torch.eye(4, 3, dtype=dt), torch.cat([-jr[k], torch.ones(1, dtype=dt)])[:, None]], 1
                    )
                )
                for k in range(j)
            )  # noqa: E501
            ref = t[:3, :3] @ vp[vi] + t[:3, 3]
            torch.testing.assert_close(out.vertices[bi, vi], ref)
        torch.testing.assert_close(out.joint_transforms[bi], world)


def test_zero_params_give_template(hand64):
    p = hand64.zero_params(2)
    out = hand64(p.global_orient, p.hand_pose, p.betas, p.transl)
    torch.testing.assert_close(out.vertices, hand64.v_template.expand(2, -1, -1))
    torch.testing.assert_close(out.joints, hand64.rest_joints.expand(2, -1, -1))
    assert out.keypoints.shape == (2, 21, 3)
    torch.testing.assert_close(out.keypoints[:, [4, 8, 12, 16, 20]], out.vertices[:, hand64.fingertips])


def test_global_rigid_motion(hand64):
    """global_orient rotates about the rest wrist joint, transl adds: x = R (x0 - J0) + J0 + t."""
    g = torch.Generator().manual_seed(2)
    hp = torch.randn(3, 45, generator=g, dtype=torch.float64) * 0.3
    be = torch.randn(3, hand64.num_betas, generator=g, dtype=torch.float64)
    go = torch.randn(3, 3, generator=g, dtype=torch.float64)
    tr = torch.randn(3, 3, generator=g, dtype=torch.float64) * 0.1
    base = hand64(torch.zeros_like(go), hp, be)
    moved = hand64(go, hp, be, tr)
    r = axis_angle_to_rotmat(go)
    j0 = base.joints[:, :1]
    expect = (base.vertices - j0) @ r.transpose(1, 2) + j0 + tr[:, None]
    torch.testing.assert_close(moved.vertices, expect)
    torch.testing.assert_close(moved.joint_transforms[:, :, :3, 3], moved.joints)
    torch.testing.assert_close(
        moved.joint_transforms[:, :, :3, :3], r[:, None] @ base.joint_transforms[:, :, :3, :3]
    )


def test_gradcheck_vertices(hand64):
    g = torch.Generator().manual_seed(3)
    sub = torch.arange(0, hand64.num_verts, 97)

    def f(go, hp, be, tr):
        out = hand64(go, hp, be, tr)
        return out.vertices[:, sub], out.keypoints

    args = (
        torch.randn(1, 3, generator=g, dtype=torch.float64) * 0.5,
        torch.randn(1, 45, generator=g, dtype=torch.float64) * 0.3,
        torch.randn(1, hand64.num_betas, generator=g, dtype=torch.float64),
        torch.randn(1, 3, generator=g, dtype=torch.float64) * 0.1,
    )
    assert torch.autograd.gradcheck(f, tuple(a.requires_grad_(True) for a in args))
    zero = tuple(torch.zeros_like(a).requires_grad_(True) for a in args)
    assert torch.autograd.gradcheck(f, zero)


def test_float32_and_dtype_of_outputs():
    hand = load_hand("openhand")
    p = hand.zero_params(1)
    out = hand(p.global_orient, p.hand_pose)
    assert out.vertices.dtype == torch.float32 and hand.faces.dtype == torch.int64


def test_input_errors(hand64):
    z = torch.zeros(2, 3, dtype=torch.float64)
    pose = torch.zeros(2, 45, dtype=torch.float64)
    with pytest.raises(ShapeError, match=r"global_orient must have shape \(B, 3\), got \(2, 4\)"):
        hand64(torch.zeros(2, 4), pose)
    with pytest.raises(ShapeError, match=r"hand_pose must have shape \(2, 45\)"):
        hand64(z, torch.zeros(2, 44))
    with pytest.raises(ShapeError, match="hand_pose contains NaN"):
        hand64(z, torch.full((2, 45), float("nan")))
    with pytest.raises(ShapeError, match=r"transl must have shape \(2, 3\)"):
        hand64(z, pose, None, torch.zeros(3, 3))
    with pytest.raises(ShapeError, match="betas contains NaN"):
        hand64(z, pose, torch.full((2, 8), float("nan")))
    with pytest.raises(ShapeError, match="pose_space must be one of"):
        hand64(z, pose, pose_space="quat")  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="global_orient must be a torch.Tensor"):
        hand64(np.zeros((2, 3)), pose)


def test_anchors_barycentric_and_differentiable(hand64):
    ann = hand64.annotations
    g = torch.Generator().manual_seed(4)
    hp = torch.randn(2, 45, generator=g, dtype=torch.float64) * 0.3
    verts = hand64(torch.zeros(2, 3, dtype=torch.float64), hp).vertices
    anchors = hand64.anchors(verts)
    assert anchors.shape == (2, 32, 3)
    tri = verts[:, hand64.faces[torch.as_tensor(ann.anchor_faces)]]  # (2, 32, 3, 3)
    bary = torch.as_tensor(ann.anchor_bary, dtype=torch.float64)
    torch.testing.assert_close(anchors, torch.einsum("bakc,ak->bac", tri, bary))
    # on the triangle's plane (posed), within 0.1 mm
    n = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    n = n / n.norm(dim=-1, keepdim=True)
    assert ((anchors - tri[:, :, 0]) * n).sum(-1).abs().max() < 1e-4
    v = verts[:1].detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: hand64.anchors(x)[:, :4], (v,), fast_mode=True)
    with pytest.raises(ShapeError, match=r"vertices must have shape \(B, 1159, 3\)"):
        hand64.anchors(verts[:, :100])


def test_config_round_trip():
    import json

    hand = load_hand("openhand", "left", ncomps=12, flat_hand_mean=False)
    cfg = json.loads(json.dumps(hand.config))
    again = load_hand(**cfg)
    assert again.config == hand.config
    torch.testing.assert_close(again.pose_offset, hand.pca_mean)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(hand64):
    g = torch.Generator().manual_seed(5)
    args = [torch.randn(2, n, generator=g, dtype=torch.float64) * 0.3 for n in (3, 45, hand64.num_betas, 3)]
    cpu = hand64(*args)
    gpu_hand = load_hand("openhand", "right", dtype=torch.float64).to("cuda")
    gpu = gpu_hand(*(a.cuda() for a in args))
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices)
    torch.testing.assert_close(gpu.keypoints.cpu(), cpu.keypoints)

"""The fast hand layer (packed blend shapes, level-order chain, hand-written Rodrigues and skinning backwards)
against naive per-joint chains and the entry-wise Rodrigues formula, float32 and float64."""

import pytest
import torch

from contactkit.geometry.rotations import axis_angle_to_rotmat
from contactkit.hands.base import MANO_PARENTS
from contactkit.hands.lbs import lbs, lbs_packed, pack_lbs, rodrigues, skin_vertices


def naive_lbs(pose, betas, vt, sd, pd, jreg, w):
    """Per-joint 4x4 chain and per-vertex 4x4 blend, float64, one batch element at a time."""
    out = []
    for bi in range(pose.shape[0]):
        vs = vt + sd @ betas[bi]
        jr = jreg @ vs
        rot = axis_angle_to_rotmat(pose[bi])
        vp = vs + pd @ (rot[1:] - torch.eye(3, dtype=vt.dtype)).reshape(-1)
        world = []
        for j, p in enumerate(MANO_PARENTS):
            local = torch.eye(4, dtype=vt.dtype)
            local[:3, :3] = rot[j]
            local[:3, 3] = jr[j] - (jr[p] if p >= 0 else 0.0)
            world.append(local if p < 0 else world[p] @ local)
        a = torch.stack(world)
        shift = torch.zeros_like(a)  # out of place, so that autograd can run through this twin
        shift[:, :3, 3] = (a[:, :3, :3] @ jr[..., None])[..., 0]
        t = torch.einsum("vj,jrc->vrc", w, a - shift)
        out.append((t[:, :3, :3] @ vp[..., None])[..., 0] + t[:, :3, 3])
    return torch.stack(out)


def _model(dtype, seed=0, v=120, n=10):
    g = torch.Generator().manual_seed(seed)
    vt = torch.randn(v, 3, generator=g, dtype=torch.float64) * 0.04
    sd = torch.randn(v, 3, n, generator=g, dtype=torch.float64) * 5e-3
    pd = torch.randn(v, 3, 135, generator=g, dtype=torch.float64) * 2e-3
    jreg = torch.rand(16, v, generator=g, dtype=torch.float64)
    jreg = jreg / jreg.sum(1, keepdim=True)
    w = torch.rand(v, 16, generator=g, dtype=torch.float64) ** 3
    w = w / w.sum(1, keepdim=True)
    f64 = (vt, sd, pd, jreg, w)
    args = (vt, sd.reshape(v * 3, n).T, pd.reshape(v * 3, 135).T, jreg @ vt,
            torch.einsum("jv,vcn->jcn", jreg, sd).reshape(48, n).T)
    return f64, tuple(a.to(dtype).contiguous() for a in args), w.to(dtype)


@pytest.mark.parametrize("batch", [5, 9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lbs_equals_naive_chain_to_a_micrometre(dtype, batch):
    f64, (vt, sd, pd, jt, jsd), w = _model(dtype)
    g = torch.Generator().manual_seed(1)
    pose = torch.randn(batch, 16, 3, generator=g, dtype=torch.float64) * 0.6
    betas = torch.randn(batch, 10, generator=g, dtype=torch.float64)
    out = lbs(pose.to(dtype), betas.to(dtype), vt, sd, pd, jt, jsd, torch.tensor(MANO_PARENTS), w)
    ref = naive_lbs(pose, betas, *f64)
    assert (out.vertices.double() - ref).abs().max() < 1e-6  # metres


def test_skin_backward_gradcheck():
    g = torch.Generator().manual_seed(2)
    b, v = 2, 9
    verts = torch.randn(b, v, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(v, 16, generator=g, dtype=torch.float64)
    w = w / w.sum(1, keepdim=True)
    rot = axis_angle_to_rotmat(torch.randn(b, 16, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    pos = torch.randn(b, 16, 3, generator=g, dtype=torch.float64, requires_grad=True)
    rest = torch.randn(b, 16, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *x: skin_vertices(x[0], w, *x[1:]), (verts, rot, pos, rest))
    # only some inputs needing a gradient
    v2 = verts.detach().requires_grad_(True)
    out = skin_vertices(v2, w, rot.detach(), pos.detach(), rest.detach())
    (gv,) = torch.autograd.grad(out.sum(), v2)
    assert torch.isfinite(gv).all()


def test_rodrigues_equals_entrywise_formula_values_and_gradients():
    """The closed-form backward against autograd through geometry.rotations' entry-wise formula, all angle
    ranges (series below 0.1 rad^2, closed form above, exactly zero)."""
    g = torch.Generator().manual_seed(3)
    for scale in (0.0, 1e-5, 1e-3, 0.05, 0.3, 1.0, 3.0):
        w = (torch.randn(12, 3, generator=g, dtype=torch.float64) * scale).requires_grad_(True)
        gout = torch.randn(12, 3, 3, generator=g, dtype=torch.float64)
        fast, ref = rodrigues(w), axis_angle_to_rotmat(w)
        torch.testing.assert_close(fast, ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(rodrigues(w.detach()), fast.detach(), rtol=0, atol=0)  # no-Jacobian path
        (g_fast,) = torch.autograd.grad((fast * gout).sum(), w)
        (g_ref,) = torch.autograd.grad((ref * gout).sum(), w)
        torch.testing.assert_close(g_fast, g_ref, rtol=0, atol=1e-12)
        assert torch.autograd.gradcheck(rodrigues, (w,))
    # float32 stays within float32 rounding of the float64 values and gradients
    w64 = torch.randn(64, 3, generator=g, dtype=torch.float64) * 0.02
    w32 = w64.float().requires_grad_(True)
    gout = torch.randn(64, 3, 3, generator=g, dtype=torch.float64)
    (g32,) = torch.autograd.grad((rodrigues(w32) * gout.float()).sum(), w32)
    w64.requires_grad_(True)
    (g64,) = torch.autograd.grad((axis_angle_to_rotmat(w64) * gout).sum(), w64)
    assert (g32.double() - g64).abs().max() < 2e-6


def naive_tree_lbs(pose, vt, jt, w, parents, transl):
    """No blend shapes, any tree: per-joint 4x4 chain, per-vertex blend, then the translation."""
    rot = axis_angle_to_rotmat(pose)
    out = []
    for bi in range(pose.shape[0]):
        world = [None] * len(parents)
        for j in range(len(parents)):  # parents listed before children in this test's trees
            local = torch.eye(4, dtype=vt.dtype)
            local[:3, :3] = rot[bi, j]
            p = parents[j]
            local[:3, 3] = jt[j] - (jt[p] if p >= 0 else 0.0)
            world[j] = local if p < 0 else world[p] @ local
        a = torch.stack(world).clone()
        a[:, :3, 3] -= (a[:, :3, :3] @ jt[..., None])[..., 0]
        t = torch.einsum("vj,jrc->vrc", w, a)
        out.append((t[:, :3, :3] @ vt[..., None])[..., 0] + t[:, :3, 3] + transl[bi])
    return torch.stack(out), torch.stack([torch.stack(world)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_packed_lbs_on_an_unbalanced_tree_with_translation(dtype):
    """Levels that need a parent gather (not MANO's identity order), translation folded into every output."""
    parents = [-1, 0, 1, 0, 3, 4, 2, 0, 7, 3]
    g = torch.Generator().manual_seed(4)
    v, j = 50, len(parents)
    vt = torch.randn(v, 3, generator=g, dtype=torch.float64) * 0.04
    jt = torch.randn(j, 3, generator=g, dtype=torch.float64) * 0.03
    w = torch.rand(v, j, generator=g, dtype=torch.float64) ** 3
    w = w / w.sum(1, keepdim=True)
    pose = torch.randn(3, j, 3, generator=g, dtype=torch.float64) * 0.7
    transl = torch.randn(3, 3, generator=g, dtype=torch.float64) * 0.1
    packed = pack_lbs(vt.to(dtype), None, None, jt.to(dtype), None, torch.tensor(parents), w.to(dtype))
    out = lbs_packed(pose.to(dtype), None, transl.to(dtype), packed)
    ref_v, _ = naive_tree_lbs(pose, vt, jt, w, parents, transl)
    assert (out.vertices.double() - ref_v).abs().max() < 1e-6
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.joint_transforms[..., :3, 3], out.joints)
    bottom = torch.tensor([0.0, 0, 0, 1], dtype=dtype).expand(3, j, 4)
    torch.testing.assert_close(out.joint_transforms[..., 3, :], bottom)
    # joints: the rest joints moved by the chain, plus the translation
    _, world0 = naive_tree_lbs(pose[:1], vt, jt, w, parents, transl[:1])
    assert (out.joints[0].double() - (world0[0, :, :3, 3] + transl[0])).abs().max() < tol * 10


def test_full_layer_gradients_float32_match_float64():
    """The hand-written backwards in float32 (Rodrigues, skinning) against float64 of the same layer."""
    f64, (vt, sd, pd, jt, jsd), w = _model(torch.float64)
    packed64 = pack_lbs(vt, sd, pd, jt, jsd, torch.tensor(MANO_PARENTS), w)
    packed32 = pack_lbs(*(a.float() for a in (vt, sd, pd, jt, jsd)), torch.tensor(MANO_PARENTS), w.float())
    g = torch.Generator().manual_seed(5)
    pose = torch.randn(4, 16, 3, generator=g, dtype=torch.float64) * 0.5
    betas = torch.randn(4, 10, generator=g, dtype=torch.float64)
    transl = torch.randn(4, 3, generator=g, dtype=torch.float64) * 0.1
    grads = []
    for packed, dt in ((packed64, torch.float64), (packed32, torch.float32)):
        xs = [t.detach().to(dt).requires_grad_(True) for t in (pose, betas, transl)]
        out = lbs_packed(xs[0], xs[1], xs[2], packed)
        (out.vertices.square().sum() + out.joints.sum()).backward()
        grads.append([x.grad.double() for x in xs])
    for a, b in zip(*grads, strict=True):
        assert (a - b).abs().max() <= 1e-4 * (1.0 + a.abs().max())


def test_packed_model_follows_buffer_changes():
    """The layer's packed tensors are rebuilt after a dtype cast and after load_state_dict."""
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    g = torch.Generator().manual_seed(6)
    hp = torch.randn(2, 45, generator=g) * 0.3
    go = torch.zeros(2, 3)
    v32 = hand(go, hp).vertices
    hand64 = hand.to(torch.float64)
    v64 = hand64(go.double(), hp.double()).vertices
    assert v64.dtype == torch.float64 and (v64 - v32.double()).abs().max() < 1e-6
    state = {k: v.clone() for k, v in hand64.state_dict().items()}
    state["v_template"] = state["v_template"] + 0.01
    hand64.load_state_dict(state)
    flat = hand64(go.double(), torch.zeros(2, 45, dtype=torch.float64)).vertices  # flat pose: the template
    torch.testing.assert_close(flat, state["v_template"].expand(2, -1, -1))


def _packings(dtype=torch.float64, v=20):
    """The layer's three model kinds: blend shapes and pose correctives, neither (OpenHand-like), shape only."""
    _, (vt, sd, pd, jt, jsd), w = _model(dtype, v=v)
    par = torch.tensor(MANO_PARENTS)
    return {
        "full": pack_lbs(vt, sd, pd, jt, jsd, par, w),
        "plain": pack_lbs(vt, None, None, jt, None, par, w),
        "shape_only": pack_lbs(vt, sd, None, jt, jsd, par, w),
    }


@pytest.mark.parametrize("kind", ["full", "plain", "shape_only"])
def test_fused_layer_gradcheck_every_input_and_output(kind):
    """The one-node layer's hand-written backward (chain by level in reverse, blend and joint products
    transposed, skinning, Rodrigues) against finite differences: pose, betas and translation into vertices,
    joints and joint transforms; also only some inputs needing a gradient, and rotation-matrix poses."""
    packed = _packings()[kind]
    g = torch.Generator().manual_seed(7)
    pose = (torch.randn(2, 16, 3, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)
    pose.data[0, 3] = 0.0  # one joint at exactly the flat pose (the Taylor branch)
    betas = torch.randn(2, 10, generator=g, dtype=torch.float64).requires_grad_(True)
    transl = (torch.randn(2, 3, generator=g, dtype=torch.float64) * 0.1).requires_grad_(True)

    def layer(p, b, t):
        out = lbs_packed(p, b, t, packed)
        return out.vertices, out.joints, out.joint_transforms

    assert torch.autograd.gradcheck(layer, (pose, betas, transl))
    assert torch.autograd.gradcheck(lambda p: layer(p, betas.detach(), None)[0], (pose,))
    assert torch.autograd.gradcheck(lambda b: layer(pose.detach(), b, transl.detach())[1], (betas,))
    assert torch.autograd.gradcheck(lambda t: layer(pose.detach(), None, t)[2], (transl,))
    rot = axis_angle_to_rotmat(pose.detach()).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda r: layer(r, betas, None), (rot,))


@pytest.mark.parametrize("batch", [3, 9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_layer_gradients_equal_autograd_through_the_naive_chain(dtype, batch):
    """Gradients of a loss on the vertices, pose and betas, against autograd through the naive per-joint chain
    (float64); float32 within float32 rounding."""
    f64, (vt, sd, pd, jt, jsd), w = _model(dtype, v=40)
    packed = pack_lbs(vt, sd, pd, jt, jsd, torch.tensor(MANO_PARENTS), w)
    g = torch.Generator().manual_seed(8)
    pose = torch.randn(batch, 16, 3, generator=g, dtype=torch.float64) * 0.6
    pose[1, 5] = 1e-4  # near the flat pose
    betas = torch.randn(batch, 10, generator=g, dtype=torch.float64)
    gout = torch.randn(batch, 40, 3, generator=g, dtype=torch.float64)
    p_ref, b_ref = pose.clone().requires_grad_(True), betas.clone().requires_grad_(True)
    (naive_lbs(p_ref, b_ref, *f64) * gout).sum().backward()
    p, b = pose.to(dtype).requires_grad_(True), betas.to(dtype).requires_grad_(True)
    (lbs_packed(p, b, None, packed).vertices * gout.to(dtype)).sum().backward()
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    for fast, ref in ((p.grad, p_ref.grad), (b.grad, b_ref.grad)):
        assert (fast.double() - ref).abs().max() <= tol * (1.0 + ref.abs().max())


def test_layer_first_called_in_inference_mode_still_gives_gradients():
    """The packed model built inside torch.inference_mode holds plain tensors: a later call with gradients can
    save them (the layer's one autograd node saves packed tensors when there are no blend shapes)."""
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    with torch.inference_mode():
        hand(torch.zeros(2, 3), torch.zeros(2, 45))
    go = torch.zeros(2, 3, requires_grad=True)
    hand(go, torch.zeros(2, 45)).vertices.square().sum().backward()
    assert go.grad is not None and torch.isfinite(go.grad).all()


@pytest.mark.parametrize("rot_input", [False, True])
def test_fused_layer_gradcheck_on_an_unbalanced_tree(rot_input):
    """The level-major chain where levels need a parent gather (``index_select`` forward, ``index_add_``
    backward) and one level hangs from a single joint (broadcast forward, summed backward), against finite
    differences, axis-angle and rotation-matrix poses, with blend shapes, and betas not needing a gradient."""
    parents = [-1, 0, 1, 0, 3, 4, 2, 0, 7, 3]
    g = torch.Generator().manual_seed(9)
    v, j, n = 12, len(parents), 4
    vt = torch.randn(v, 3, generator=g, dtype=torch.float64) * 0.04
    sd = torch.randn(n, 3 * v, generator=g, dtype=torch.float64) * 5e-3
    pd = torch.randn(9 * (j - 1), 3 * v, generator=g, dtype=torch.float64) * 2e-3
    jt = torch.randn(j, 3, generator=g, dtype=torch.float64) * 0.03
    jsd = torch.randn(n, 3 * j, generator=g, dtype=torch.float64) * 2e-3
    w = torch.rand(v, j, generator=g, dtype=torch.float64) ** 3
    packed = pack_lbs(vt, sd, pd, jt, jsd, torch.tensor(parents), w / w.sum(1, keepdim=True))
    pose = torch.randn(2, j, 3, generator=g, dtype=torch.float64) * 0.6
    if rot_input:
        pose = axis_angle_to_rotmat(pose)
    pose.requires_grad_(True)
    betas = torch.randn(2, n, generator=g, dtype=torch.float64).requires_grad_(True)
    transl = (torch.randn(2, 3, generator=g, dtype=torch.float64) * 0.1).requires_grad_(True)

    def layer(p, b, t):
        out = lbs_packed(p, b, t, packed)
        return out.vertices, out.joints, out.joint_transforms

    assert torch.autograd.gradcheck(layer, (pose, betas, transl))
    assert torch.autograd.gradcheck(lambda p: layer(p, betas.detach(), transl.detach()), (pose,))


def test_input_finite_check_passes_huge_finite_values_and_catches_infinities():
    """The wrapper's finite test sums the inputs first: a sum that overflows must fall through to the exact
    per-tensor test (no error for finite inputs), and an infinity anywhere must still raise."""
    from contactkit.errors import ShapeError
    from contactkit.hands import load_hand

    hand = load_hand("openhand")
    go, hp = torch.zeros(2, 3), torch.zeros(2, 45)
    big = torch.full((2, 3), 3e38)  # float32: the sum of these overflows to inf
    hand(go, hp, None, big)
    for name, args in (("transl", (go, hp, None, big.clone().fill_(float("inf")))),
                       ("global_orient", (torch.tensor([[0.0, float("-inf"), 0.0]] * 2), hp))):  # fmt: skip
        with pytest.raises(ShapeError, match=f"{name} contains NaN or infinite"):
            hand(*args)

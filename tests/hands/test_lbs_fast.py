"""The fast skinning (one blend product, hand-written backward) against a naive per-joint chain, f32 and f64."""

import pytest
import torch

from contactkit.geometry.rotations import axis_angle_to_rotmat
from contactkit.hands.base import MANO_PARENTS
from contactkit.hands.lbs import lbs, skin_vertices


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
        a = torch.stack(world).clone()
        a[:, :3, 3] -= (a[:, :3, :3] @ jr[..., None])[..., 0]
        t = torch.einsum("vj,jrc->vrc", w, a)
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lbs_equals_naive_chain_to_a_micrometre(dtype):
    f64, (vt, sd, pd, jt, jsd), w = _model(dtype)
    g = torch.Generator().manual_seed(1)
    pose = torch.randn(5, 16, 3, generator=g, dtype=torch.float64) * 0.6
    betas = torch.randn(5, 10, generator=g, dtype=torch.float64)
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

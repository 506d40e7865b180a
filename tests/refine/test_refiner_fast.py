"""The refiner's fixed-object fast path (object posed once) against posing it at every iteration."""

import numpy as np
import torch

from contactkit.contact.terms import FunctionTerm
from contactkit.refine.refiner import HandParamsInit, ObjectBatch, Refiner, RefinerSettings


def test_fixed_object_posed_once_matches_posing_every_iteration(toy_hand):
    n = 3
    g = torch.Generator().manual_seed(7)
    pts = torch.randn(n, 20, 3, generator=g, dtype=torch.float64) * 0.03
    nrm = torch.nn.functional.normalize(torch.randn(n, 20, 3, generator=g, dtype=torch.float64), dim=-1)
    rot = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=torch.float64)).Q
    objects = ObjectBatch(pts, nrm, rot, torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.01)
    init = HandParamsInit(torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.3,
                          torch.zeros(n, 45, dtype=torch.float64), torch.zeros(n, 0, dtype=torch.float64),
                          torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.05)

    def pull(state):  # reads the posed object points and normals, so a wrong pose changes the result
        d = state.hand_verts[:, :20] - state.obj_points
        return (d * d).sum((-1, -2)) + (d * state.obj_normals).sum((-1, -2)) ** 2

    settings = RefinerSettings(iterations=30, lr=0.01, dtype=torch.float64, restarts=2)
    fast = Refiner(toy_hand, [FunctionTerm("pull", pull)], settings).run(init, objects, seed=1)
    # the object pose is an optimisation variable with a zero learning rate: posed afresh at each iteration
    slow_settings = settings.replace(optimize=(*settings.optimize, "object_translation"),
                                     lr_scale={"object_translation": 0.0})
    slow = Refiner(toy_hand, [FunctionTerm("pull", pull)], slow_settings).run(init, objects, seed=1)
    assert fast.loss_trace[:, -1].lt(fast.loss_trace[:, 0]).all()
    for name in ("global_orient", "hand_pose", "transl", "loss_trace", "best_loss"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), atol=0, rtol=0)


def test_identity_object_pose_skips_the_transform_bitwise(openhand):
    """With the object pose exactly R = I, t = 0 the hand vertices are used as they are in the object frame: the
    SDF values and the gradients reaching the hand parameters equal the product path's bitwise."""
    from contactkit.geometry.sdf import SDFGrid
    from contactkit.objects.primitives import make_primitive
    from contactkit.refine.refiner import build_state
    from contactkit.targets.objects import GroupedSDF

    n = 4
    g = torch.Generator().manual_seed(3)
    mesh = make_primitive("sphere", radius=0.04)
    grid = SDFGrid.build(np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces),
                         resolution=24)
    pts = torch.randn(n, 10, 3, generator=g) * 0.03
    eye = torch.eye(3).expand(n, 3, 3).clone()
    objects = ObjectBatch(pts, pts, eye, torch.zeros(n, 3), sdf=GroupedSDF([grid, grid], torch.arange(n) % 2))
    w = torch.randn(n, openhand.num_verts, generator=g)
    grads = []
    for rot in (None, eye.clone().requires_grad_()):  # a pose that needs a gradient takes the product path
        pose = (torch.randn(n, 45, generator=torch.Generator().manual_seed(1)) * 0.2).requires_grad_()
        transl = torch.full((n, 3), -0.05).requires_grad_()
        state = build_state(openhand, torch.zeros(n, 3), pose, None, transl, objects, torch.arange(n),
                            obj_rotation=rot)
        (state.hand_sdf * w).sum().backward()
        grads.append((state.hand_sdf.detach(), pose.grad, transl.grad))
    for fast, ref in zip(*grads, strict=True):
        assert torch.equal(fast, ref)

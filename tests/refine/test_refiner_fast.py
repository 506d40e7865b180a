"""The refiner's fixed-object fast path (object posed once) against posing it at every iteration."""

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

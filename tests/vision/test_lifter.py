"""The context-aware graph network: shapes, sub-graph separation, geometry, affinity gradient, overfit, save/load."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tests.vision.conftest import rendered_samples

from contactkit.errors import ContactkitError, ShapeError
from contactkit.learn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from contactkit.vision.camera import pixels_to_normalized
from contactkit.vision.data import views_from_samples
from contactkit.vision.lifter import ContextAwareLifter, LifterConfig, lift_geometry, normalize_subgraph
from contactkit.vision.losses import affinity_of_prediction, lifter_losses, root_relative_targets


@pytest.fixture(scope="module")
def views(hand):
    return views_from_samples(rendered_samples(hand, 8, seed=0))


def _inputs(views):
    return pixels_to_normalized(views.keypoints_2d, views.k)


@pytest.mark.parametrize("mode", ["full", "hand", "object"])
def test_output_shapes_and_roots(mode, views):
    torch.manual_seed(0)
    net = ContextAwareLifter(LifterConfig(mode=mode, hidden=16))
    x = _inputs(views)
    out = net(x)
    hand_cam, obj_cam = net.camera_frame(out, x)
    if mode in ("full", "hand"):
        assert out.hand is not None and out.hand.shape == (8, 21, 3) and hand_cam is not None
        torch.testing.assert_close(out.hand[:, 0], torch.zeros(8, 3))  # wrist at the origin
    else:
        assert out.hand is None and hand_cam is None
    if mode in ("full", "object"):
        assert out.object is not None and out.object.shape == (8, 8, 3) and obj_cam is not None
        torch.testing.assert_close(out.object.mean(1), torch.zeros(8, 3), atol=1e-7, rtol=0)
    else:
        assert out.object is None and obj_cam is None


def test_sub_graphs_are_separate_and_the_merged_graph_joins_them(views):
    torch.manual_seed(0)
    net = ContextAwareLifter(LifterConfig(hidden=16)).eval()
    with torch.no_grad():
        net.interaction_logits.fill_(0.0)  # type: ignore[union-attr]
    x = _inputs(views)
    moved = x.clone()
    moved[:, 21:] += 0.05  # move the object's 2D keypoints only
    a, b = net(x), net(moved)
    # initial estimates: the hand sub-graph never sees the object
    torch.testing.assert_close(a.hand_initial, b.hand_initial)
    # the merged graph passes interaction messages: the refined hand depends on the object
    assert not torch.allclose(a.hand, b.hand)


def test_object_sub_graph_relabels_with_box_symmetries(views):
    # relabelling corners by a symmetry of the box graph (mirror x: k -> k ^ 1) and moving the one-hot rows
    # alike relabels the object sub-graph's initial estimate the same way
    torch.manual_seed(0)
    net = ContextAwareLifter(LifterConfig(mode="object", hidden=16)).eval()
    perm = [k ^ 1 for k in range(8)]
    x = _inputs(views)
    obj_net = net.object_net
    assert obj_net is not None
    out = net(x).object
    with torch.no_grad():
        first = obj_net.inp.linear.weight  # columns: 2 rel + 2*8 + 3 whole + 8 one-hot
        one_hot = first[:, -8:].clone()
        first[:, -8:] = one_hot[:, perm]
        for layer in [obj_net.inp, *obj_net.hidden, obj_net.out]:
            assert layer.modulation is not None
            layer.modulation.copy_(layer.modulation[perm])
        whole = first[:, 2:18].clone().view(-1, 8, 2)
        first[:, 2:18] = whole[:, perm].reshape(-1, 16)
    x_perm = x.clone()
    x_perm[:, 21:] = x[:, 21:][:, perm]
    out_perm = net(x_perm).object
    torch.testing.assert_close(out_perm, out[:, perm], atol=1e-5, rtol=1e-5)


def test_lift_geometry_is_exact_with_true_spread_and_depths(views):
    x = _inputs(views)[:, :21].double()
    pts = views.keypoints_3d[:, :21].double()
    rel, place = normalize_subgraph(x, x[:, 0])
    spread = place[:, 2].exp() * pts[:, 0, 2]
    dz = pts[..., 2:] - pts[:, :1, 2:]
    lifted = lift_geometry(x, rel, spread, torch.cat([dz, torch.zeros_like(dz), torch.zeros_like(dz)], -1))
    torch.testing.assert_close(lifted - lifted[:, :1], pts - pts[:, :1])


def test_affinity_gradient_reaches_the_lifter(views):
    torch.manual_seed(0)
    net = ContextAwareLifter(LifterConfig(hidden=16))
    x = _inputs(views)
    out = net(x)
    # an untrained lifter puts the hand far from the box (no valid contact, zero loss); a huge eta makes every
    # candidate valid, which exercises the whole gradient path
    assert affinity_of_prediction(net, out, x).item() == 0.0
    loss = affinity_of_prediction(net, out, x, eta=1e3)
    loss.backward()
    for name in ("merged_net.out.linear.weight", "hand_net.inp.linear.weight", "object_net.inp.linear.weight",
                 "interaction_logits"):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    with pytest.raises(ContactkitError, match="full"):
        hand_only = ContextAwareLifter(LifterConfig(mode="hand", hidden=16))
        affinity_of_prediction(hand_only, hand_only(x), x)


def test_overfits_a_handful_of_views(views):
    torch.manual_seed(0)
    few = views.subset([0, 1, 2, 3])
    net = ContextAwareLifter(LifterConfig(hidden=32, merged_layers=3))
    x = _inputs(few)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    hand_t, obj_t = root_relative_targets(few.keypoints_3d)
    with torch.no_grad():
        untrained = (net(x).hand - hand_t).norm(dim=-1).mean() * 1000
    for _ in range(150):
        loss = lifter_losses(net, net(x), few.keypoints_3d, x, 0.0)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = net.eval()(x)
    hand_mm = (out.hand - hand_t).norm(dim=-1).mean() * 1000
    obj_mm = (out.object - obj_t).norm(dim=-1).mean() * 1000
    assert untrained > 20.0
    assert hand_mm < 5.0 and obj_mm < 5.0


def test_save_load_round_trip(tmp_path, views):
    torch.manual_seed(0)
    config = LifterConfig(hidden=16, merged_layers=3)
    net = ContextAwareLifter(config).eval()
    save_checkpoint(tmp_path / "l.pt", Checkpoint(kind="lifter", config=dataclasses.asdict(config),
                                                  state_dict=net.state_dict(), training={}))
    ckpt = load_checkpoint(tmp_path / "l.pt", expected_kind="lifter")
    again = ContextAwareLifter(LifterConfig.from_dict(ckpt.config)).eval()
    again.load_state_dict(ckpt.state_dict)
    x = _inputs(views)
    torch.testing.assert_close(again(x).hand, net(x).hand, rtol=0, atol=0)
    with pytest.raises(ContactkitError, match="unknown lifter settings"):
        LifterConfig.from_dict({"mode": "full", "depth": 3})


def test_bad_inputs_raise(views):
    net = ContextAwareLifter(LifterConfig(hidden=8))
    with pytest.raises(ShapeError, match="keypoints_2d"):
        net(torch.zeros(2, 21, 2))
    with pytest.raises(ShapeError, match="context"):
        net(torch.zeros(2, 29, 2), torch.zeros(2, 4))
    with pytest.raises(ContactkitError, match="mode"):
        LifterConfig(mode="both")  # type: ignore[arg-type]

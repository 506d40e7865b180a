"""DeepContact's contact prior: analytic bin frequencies, zero residual = prior, size term, checkpoint round trip."""

from __future__ import annotations

import math

import pytest
import torch

from contactkit.errors import ContactkitError
from contactkit.geometry.transforms import random_rotations
from contactkit.learn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from contactkit.learn.estimators import DeepContactEstimator, build_network, network_config
from contactkit.learn.losses import bins_to_contact
from contactkit.learn.networks import object_descriptor, object_extents
from contactkit.learn.prior import contact_bin_prior, pose_axes
from contactkit.learn.train import TrainConfig, train

from .conftest import posed_scene, toy_tensors


def test_contact_bin_prior_analytic():
    # 4 grasps, 2 hand vertices, 3 object points, 4 bins of width 0.25.
    contact = torch.tensor([
        [0.0, 0.9, 0.0, 0.0, 0.3],
        [0.1, 1.0, 0.0, 0.6, 0.0],
        [0.0, 0.6, 0.0, 0.0, 0.0],
        [0.3, 0.1, 0.0, 0.0, 0.0],
    ])
    hand, obj = contact_bin_prior(contact, n_hand=2, n_bins=4, pseudocount=0.5)
    assert hand.shape == (2, 4) and obj.shape == (4,) and hand.dtype == torch.float32
    # Vertex 0: bins [0, 0, 0, 1]; vertex 1: bins [3, 3, 2, 0]; each row normalised over 4 + 4 * 0.5 = 6 counts.
    expected_hand = torch.tensor([[3.5, 1.5, 0.5, 0.5], [1.5, 0.5, 1.5, 2.5]]) / 6.0
    torch.testing.assert_close(hand.exp(), expected_hand)
    # Object points: 12 values, 10 in bin 0, one in bin 1 (0.3), one in bin 2 (0.6); 12 + 2 counts.
    torch.testing.assert_close(obj.exp(), torch.tensor([10.5, 1.5, 1.5, 0.5]) / 14.0)
    assert math.isclose(float(hand.exp().sum(-1)[0]), 1.0, rel_tol=1e-6)


def test_contact_bin_prior_rejects_bad_input():
    with pytest.raises(ContactkitError, match=r"contact must have shape \(N >= 1, V \+ P\)"):
        contact_bin_prior(torch.zeros(5), n_hand=2, n_bins=4)
    with pytest.raises(ContactkitError, match="n_hand = 5"):
        contact_bin_prior(torch.zeros(3, 5), n_hand=5, n_bins=4)
    with pytest.raises(ContactkitError, match="pseudocount > 0"):
        contact_bin_prior(torch.zeros(3, 5), n_hand=2, n_bins=4, pseudocount=0.0)


@pytest.fixture(scope="module")
def toy(hand):
    return toy_tensors(hand, 4, seed=21, n_points=64)


def _prior_net(hand, toy):
    config = network_config("deepcontact", small=True, prior_hand_vertices=hand.num_verts)
    torch.manual_seed(3)
    net = build_network("deepcontact", config)
    net.set_prior(*contact_bin_prior(toy.contact, toy.n_hand, 10))
    return config, net.eval()


def test_zero_residual_predicts_the_prior_mean_map(hand, toy):
    config, net = _prior_net(hand, toy)
    assert config["prior_hand_vertices"] == hand.num_verts
    hand_prior, obj_prior = contact_bin_prior(toy.contact, toy.n_hand, 10)
    with torch.no_grad():
        logits = net(toy.xyz, toy.features)
    n = toy.n_hand
    # The head's last layer starts at zero: the logits are exactly the prior, for every grasp and point.
    torch.testing.assert_close(logits[:, :n], hand_prior.expand(len(toy), -1, -1), rtol=0, atol=1e-6)
    torch.testing.assert_close(logits[:, n:], obj_prior.expand(len(toy), logits.shape[1] - n, -1), rtol=0, atol=1e-6)
    contact = bins_to_contact(logits)
    # Without pseudocounts the expected contact of the prior is the binned training mean map; the pseudocount
    # pulls it towards the uniform mean 0.5 by at most pseudo * n_bins / (N + pseudo * n_bins).
    binned_mean = ((toy.contact[:, :n] * 10).floor().clamp_max(9) + 0.5).mean(0) / 10
    shrink = 0.5 * 10 / (len(toy) + 0.5 * 10)
    expected = (1 - shrink) * binned_mean + shrink * 0.5
    torch.testing.assert_close(contact[0, :n], expected, rtol=0, atol=1e-5)
    assert torch.equal(contact[0, :n], contact[1, :n])


def test_prior_round_trips_through_a_checkpoint(tmp_path, hand, toy):
    config, net = _prior_net(hand, toy)
    with torch.no_grad():  # a non-zero residual, so the comparison is not trivial
        net.head[-1].weight.normal_(0.0, 0.1)
    path = tmp_path / "dc.pt"
    save_checkpoint(path, Checkpoint(kind="deepcontact", config=config, state_dict=net.state_dict(),
                                     training={"hand_model": "openhand"}))
    ckpt = load_checkpoint(path, expected_kind="deepcontact")
    assert ckpt.config["prior_hand_vertices"] == hand.num_verts
    assert torch.equal(ckpt.state_dict["hand_prior"], net.hand_prior)
    assert torch.equal(ckpt.state_dict["object_prior"], net.object_prior)
    est = DeepContactEstimator(hand, ckpt)
    assert torch.equal(est.network.hand_prior, net.hand_prior)
    verts, pts, nrm = posed_scene(hand, 2, seed=4, n_points=64)
    targets = est.predict(verts, pts, nrm)
    from contactkit.learn.estimators import inputs_for

    inputs = inputs_for(hand, verts, pts, nrm)
    with torch.no_grad():
        direct = bins_to_contact(net(inputs.xyz, inputs.features))
    assert targets.hand_contact is not None
    torch.testing.assert_close(targets.hand_contact, direct[:, : hand.num_verts])
    # A checkpoint without a prior (as written before it existed) still loads, with no prior buffers.
    plain = network_config("deepcontact", small=True)
    assert "prior_hand_vertices" not in plain
    assert build_network("deepcontact", plain).hand_prior is None


def test_prior_network_checks_its_input(hand, toy):
    _, net = _prior_net(hand, toy)
    with pytest.raises(ContactkitError, match=f"needs the {hand.num_verts} hand vertices first"):
        net(toy.xyz[:, : hand.num_verts], toy.features[:, : hand.num_verts])
    with pytest.raises(ContactkitError, match="prior shapes must be"):
        net.set_prior(torch.zeros(3, 10), torch.zeros(10))
    with pytest.raises(ContactkitError, match="has no prior"):
        build_network("deepcontact", network_config("deepcontact")).set_prior(torch.zeros(3, 10), torch.zeros(10))


def test_train_stores_the_training_set_prior(tmp_path, toy):
    config = TrainConfig(epochs=1, batch_size=2, seed=0, small=True)
    assert config.contact_prior
    train("deepcontact", toy, toy, tmp_path / "run", config, progress=False)
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt", expected_kind="deepcontact")
    hand_prior, obj_prior = contact_bin_prior(toy.contact, toy.n_hand, 10)
    assert torch.equal(ckpt.state_dict["hand_prior"], hand_prior)
    assert torch.equal(ckpt.state_dict["object_prior"], obj_prior)
    desc = object_descriptor(toy.xyz[:, toy.n_hand:])
    torch.testing.assert_close(ckpt.state_dict["shape_centre"], desc.mean(0))
    torch.testing.assert_close(ckpt.state_dict["shape_scale"], desc.std(0))
    assert ckpt.config["prior_shape"] is True and ckpt.state_dict["shape_weight"].any()  # it learnt something
    off = TrainConfig(epochs=1, batch_size=2, seed=0, small=True, contact_prior=False)
    train("deepcontact", toy, toy, tmp_path / "plain", off, progress=False)
    assert "hand_prior" not in load_checkpoint(tmp_path / "plain" / "last.pt").state_dict


def test_object_extents_analytic_and_rigid_invariant():
    # Six points at +-1, +-2, +-3 along the axes: variances 1/3, 4/3, 9/3.
    pts = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 3], [0, 0, -3]], dtype=torch.float64)
    ext = object_extents(pts[None])
    torch.testing.assert_close(ext[0], torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) / math.sqrt(3.0))
    rot = random_rotations(2, 3.0, torch.Generator().manual_seed(0)).to(torch.float64)
    moved = pts @ rot.transpose(1, 2) + torch.tensor([[[0.3, -1.0, 2.0]]], dtype=torch.float64)
    torch.testing.assert_close(object_extents(moved), ext.expand(2, -1))
    torch.testing.assert_close(object_extents(moved[:, torch.randperm(6)]), ext.expand(2, -1))


def test_object_descriptor_is_extents_then_centroid():
    pts = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(1))
    desc = object_descriptor(pts)
    assert desc.shape == (2, 6)
    torch.testing.assert_close(desc[:, :3], object_extents(pts))
    torch.testing.assert_close(desc[:, 3:], pts.mean(1))


def test_shape_prior_starts_at_zero_and_round_trips(tmp_path, hand, toy):
    config = network_config("deepcontact", prior_hand_vertices=hand.num_verts, prior_shape=True)
    assert config["prior_shape"] is True
    net = build_network("deepcontact", config).eval()
    hand_prior, obj_prior = contact_bin_prior(toy.contact, toy.n_hand, 10)
    with pytest.raises(ContactkitError, match=r"pass shape_centre \(6,\) and shape_scale \(6,\) > 0"):
        net.set_prior(hand_prior, obj_prior)
    desc = object_descriptor(toy.xyz[:, toy.n_hand:])
    centre, scale = desc.mean(0), desc.std(0)
    with pytest.raises(ContactkitError, match="shape_scale"):
        net.set_prior(hand_prior, obj_prior, centre, -scale)
    net.set_prior(hand_prior, obj_prior, centre, scale)
    assert net.shape_weight is not None and not net.shape_weight.any()
    weight = torch.tensor([1.0, -2.0, 0.5, 0.3, 0.0, -1.0])
    with torch.no_grad():
        logits = net(toy.xyz, toy.features)
        torch.testing.assert_close(logits[:, : toy.n_hand], hand_prior.expand(len(toy), -1, -1), rtol=0, atol=1e-6)
        # A learnt object dependence: vertex 0's bin-3 logit moves by weight @ standardised descriptor, nothing else.
        net.shape_weight[0, 3] = weight
        moved = net(toy.xyz, toy.features)
    shift = ((desc - centre) / scale) @ weight
    torch.testing.assert_close(moved[:, 0, 3] - logits[:, 0, 3], shift, rtol=0, atol=1e-5)
    torch.testing.assert_close(moved[:, 1:], logits[:, 1:])
    path = tmp_path / "shape.pt"
    save_checkpoint(path, Checkpoint(kind="deepcontact", config=config, state_dict=net.state_dict(), training={}))
    est = DeepContactEstimator(hand, load_checkpoint(path, expected_kind="deepcontact"))
    net_loaded = est.network
    assert torch.equal(net_loaded.shape_centre, centre) and torch.equal(net_loaded.shape_scale, scale)
    assert torch.equal(net_loaded.shape_weight, net.shape_weight)


def test_pose_axes_recover_a_known_posture_direction():
    # Hands of 3 vertices whose postures vary along one direction (weight 3) and a weaker one (weight 1).
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    d1 = torch.nn.functional.normalize(torch.randn(9, generator=gen, dtype=torch.float64), dim=0)
    d2 = torch.randn(9, generator=gen, dtype=torch.float64)
    d2 = torch.nn.functional.normalize(d2 - (d2 @ d1) * d1, dim=0)
    a, b = torch.randn(200, generator=gen, dtype=torch.float64), torch.randn(200, generator=gen, dtype=torch.float64)
    a, b = a - a.mean(), b - b.mean()
    b = b - (b @ a) / (a @ a) * a  # uncorrelated coefficients: the principal axes are exactly d1, d2
    hands = (base.reshape(-1) + 3 * a[:, None] * d1 + b[:, None] * d2).reshape(200, 3, 3)
    mean, axes = pose_axes(hands, 2)
    assert mean.shape == (9,) and axes.shape == (9, 2) and axes.dtype == torch.float32
    torch.testing.assert_close(mean.double(), base.reshape(-1), rtol=0, atol=1e-6)
    torch.testing.assert_close(axes.T.double() @ axes.double(), torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-6)
    assert abs(float(axes[:, 0].double() @ d1)) > 1 - 1e-6 and abs(float(axes[:, 1].double() @ d2)) > 1 - 1e-6
    with pytest.raises(ContactkitError, match="n_axes"):
        pose_axes(hands, 10)


def test_pose_prior_moves_logits_by_the_posture_and_round_trips(tmp_path, hand, toy):
    config = network_config("deepcontact", prior_hand_vertices=hand.num_verts, prior_shape=True, prior_pose=2)
    assert config["prior_pose"] == 2
    net = build_network("deepcontact", config).eval()
    assert net.descriptor_width == 8
    hand_prior, obj_prior = contact_bin_prior(toy.contact, toy.n_hand, 10)
    mean, axes = pose_axes(toy.xyz[:, : toy.n_hand], 2)
    centre, scale = torch.zeros(8), torch.ones(8)
    with pytest.raises(ContactkitError, match="depends on the hand's posture"):
        net.set_prior(hand_prior, obj_prior, centre, scale)
    net.set_prior(hand_prior, obj_prior, centre, scale, mean, axes)
    desc = net.descriptor(toy.xyz)
    assert desc.shape == (len(toy), 8)
    torch.testing.assert_close(desc[:, :6], object_descriptor(toy.xyz[:, toy.n_hand:]))
    # Naive reference of the posture coordinates: a loop over grasps and vertices.
    for g in range(len(toy)):
        ref = sum((toy.xyz[g, v] - mean.reshape(-1, 3)[v]) @ axes.reshape(-1, 3, 2)[v] for v in range(toy.n_hand))
        torch.testing.assert_close(desc[g, 6:], ref, rtol=0, atol=1e-4)
    with torch.no_grad():
        logits = net(toy.xyz, toy.features)
        net.shape_weight[5, 2, 7] = 1.5  # vertex 5, bin 2 depends on the second posture axis only
        moved = net(toy.xyz, toy.features)
    torch.testing.assert_close(moved[:, 5, 2] - logits[:, 5, 2], 1.5 * desc[:, 7], rtol=0, atol=1e-5)
    torch.testing.assert_close(moved[:, 6:], logits[:, 6:])
    path = tmp_path / "pose.pt"
    save_checkpoint(path, Checkpoint(kind="deepcontact", config=config, state_dict=net.state_dict(), training={}))
    loaded = DeepContactEstimator(hand, load_checkpoint(path, expected_kind="deepcontact")).network
    assert torch.equal(loaded.pose_basis, axes) and torch.equal(loaded.pose_mean, mean)
    with pytest.raises(ContactkitError, match="needs prior_shape"):
        build_network("deepcontact", {**config, "prior_shape": False})


def test_train_sets_the_posture_axes_from_the_training_set(tmp_path, toy):
    config = TrainConfig(epochs=1, batch_size=2, seed=0, small=True, pose_components=3)
    train("deepcontact", toy, toy, tmp_path / "run", config, progress=False)
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt", expected_kind="deepcontact")
    mean, axes = pose_axes(toy.xyz[:, : toy.n_hand], 3)
    assert ckpt.config["prior_pose"] == 3
    torch.testing.assert_close(ckpt.state_dict["pose_mean"], mean)
    torch.testing.assert_close(ckpt.state_dict["pose_basis"], axes)
    assert ckpt.state_dict["shape_weight"].shape[-1] == 9 and ckpt.state_dict["shape_weight"][..., 6:].any()

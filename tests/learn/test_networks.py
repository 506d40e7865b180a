"""Networks, features and estimators: shapes, rigid invariance, Kabsch, PiCR springs."""

from __future__ import annotations

import pytest
import torch

from contactkit.errors import ContactkitError
from contactkit.geometry.transforms import random_rotations
from contactkit.learn.checkpoint import Checkpoint
from contactkit.learn.estimators import (
    DeepContactEstimator,
    PiCREstimator,
    build_network,
    hand_geometry_from_vertices,
    inputs_for,
    kabsch_rotation,
    network_config,
)
from contactkit.learn.features import N_FEATURES
from contactkit.learn.networks import BackboneConfig

from .conftest import posed_scene


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kabsch_recovers_known_rotation(dtype):
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(40, 3, generator=gen, dtype=dtype)
    rot = random_rotations(3, 3.0, gen).to(dtype)
    tgt = src @ rot.transpose(1, 2) + torch.randn(3, 1, 3, generator=gen, dtype=dtype)
    est = kabsch_rotation(src, tgt)
    torch.testing.assert_close(est, rot, atol=1e-5 if dtype == torch.float32 else 1e-6, rtol=0)
    # A reflected target still gives a proper rotation.
    refl = kabsch_rotation(src, tgt * torch.tensor([-1.0, 1.0, 1.0], dtype=dtype))
    torch.testing.assert_close(torch.det(refl), torch.ones(3, dtype=dtype))


def test_wrist_frame_follows_global_rotation(hand):
    rot = random_rotations(2, 3.0, torch.Generator().manual_seed(1))
    from contactkit.geometry.rotations import rotmat_to_axis_angle

    out = hand(rotmat_to_axis_angle(rot), torch.zeros(2, 45), None, torch.zeros(2, 3))
    geo = hand_geometry_from_vertices(hand, out.vertices)
    torch.testing.assert_close(geo.wrist_rotation, rot, atol=1e-4, rtol=0)
    torch.testing.assert_close(geo.keypoints[:, 0], out.keypoints[:, 0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["deepcontact", "picr"])
def test_forward_invariant_to_common_rigid_motion(hand, kind):
    verts, pts, nrm = posed_scene(hand, 2, seed=3)
    rot = random_rotations(2, 3.0, torch.Generator().manual_seed(4))
    shift = torch.tensor([[0.3, -0.2, 0.5], [-1.0, 0.4, 0.1]])
    moved = [x @ rot.transpose(1, 2) + shift[:, None] for x in (verts, pts)]
    a = inputs_for(hand, verts, pts, nrm)
    b = inputs_for(hand, moved[0], moved[1], nrm @ rot.transpose(1, 2))
    assert a.features.shape == (2, hand.num_verts + 256, N_FEATURES)
    torch.testing.assert_close(a.xyz, b.xyz, atol=2e-4, rtol=0)
    torch.testing.assert_close(a.features, b.features, atol=2e-4, rtol=0)
    torch.manual_seed(0)
    net = build_network(kind, network_config(kind, small=True)).eval()
    with torch.no_grad():
        out_a, out_b = net(a.xyz, a.features), net(b.xyz, b.features)
    if kind == "deepcontact":
        assert out_a.shape == (2, hand.num_verts + 256, 10)
        torch.testing.assert_close(out_a, out_b, atol=1e-3, rtol=1e-3)
    else:
        for name in ("vc", "cr", "ae"):
            torch.testing.assert_close(getattr(out_a, name), getattr(out_b, name), atol=1e-3, rtol=1e-3)
        assert out_a.cr.shape == (2, hand.num_verts + 256, 17)


def test_features_distance_channel_is_nearest_distance(hand):
    verts, pts, nrm = posed_scene(hand, 1, seed=5)
    inputs = inputs_for(hand, verts, pts, nrm)
    expected = torch.cdist(verts.double(), pts.double()).amin(-1).float() / 0.1
    torch.testing.assert_close(inputs.features[0, : hand.num_verts, 1], expected[0], atol=1e-5, rtol=1e-5)
    assert torch.all(inputs.features[0, : hand.num_verts, 0] == 1)
    assert torch.all(inputs.features[0, hand.num_verts :, 0] == 0)


def test_contact_inputs_rejects_bad_shape(hand):
    from contactkit.learn.features import contact_inputs

    with pytest.raises(ValueError, match=r"object_points must have shape \(B, N, 3\)"):
        z = torch.zeros(1, 5, 3)
        contact_inputs(z, z, torch.zeros(1, 21, 3), torch.eye(3)[None], torch.zeros(1, 4, 2), torch.zeros(1, 4, 2))


def _estimator(hand, kind):
    torch.manual_seed(0)
    config = network_config(kind, small=True)
    net = build_network(kind, config)
    ckpt = Checkpoint(kind=kind, config=config, state_dict=net.state_dict(), training={"hand_model": "openhand"})
    return DeepContactEstimator(hand, ckpt) if kind == "deepcontact" else PiCREstimator(hand, ckpt)


def test_estimators_predict_contact_targets(hand):
    verts, pts, nrm = posed_scene(hand, 2, seed=6)
    t = _estimator(hand, "deepcontact").predict(verts, pts, nrm)
    assert t.hand_contact.shape == (2, hand.num_verts) and t.object_contact.shape == (2, 256)
    assert float(t.hand_contact.min()) >= 0 and float(t.hand_contact.max()) <= 1
    # Deterministic inference.
    torch.testing.assert_close(_estimator(hand, "deepcontact").predict(verts, pts, nrm).hand_contact, t.hand_contact)
    p = _estimator(hand, "picr").predict(verts, pts, nrm)
    assert p.object_contact.shape == (2, 256) and p.hand_contact is None


def test_picr_springs_follow_algorithm_1(hand):
    est = _estimator(hand, "picr")
    assert est.vc_threshold == 0.8  # paper 004's t_vc when the checkpoint records none
    est.vc_threshold = 0.5
    verts, pts, nrm = posed_scene(hand, 2, seed=7)
    fields = est.predict_fields(verts, pts, nrm)
    regions = torch.as_tensor(hand.annotations.anchor_region, dtype=torch.long)
    k = est.springs(verts, pts, nrm, regions)
    assert k.shape == (2, 32, 256)
    for b in range(2):
        for j in range(0, 256, 17):
            for i in range(32):
                on = bool(fields.vc[b, j] > est.vc_threshold) and int(fields.region[b, j]) == int(regions[i])
                assert float(k[b, i, j]) == (float(fields.elasticity[b, j]) if on else 0.0)
    with pytest.raises(ContactkitError, match=r"anchor_region must have shape \(A,\)"):
        est.springs(verts, pts, nrm, regions[None])


def test_estimator_refuses_other_hand_checkpoint(hand):
    config = network_config("deepcontact", small=True)
    net = build_network("deepcontact", config)
    ckpt = Checkpoint(kind="deepcontact", config=config, state_dict=net.state_dict(), training={"hand_model": "mano"})
    with pytest.raises(ContactkitError, match="trained on the 'mano' hand"):
        DeepContactEstimator(hand, ckpt)
    with pytest.raises(ContactkitError, match="expected picr"):
        PiCREstimator(hand, ckpt)


def test_backbone_config_legacy_embedding_keys():
    config = network_config("deepcontact")["backbone"]
    assert "vertex_embedding" not in config and "hand_vertices" not in config
    # Checkpoints written before the per-vertex embedding was removed carry both keys as 0: still loadable.
    assert BackboneConfig.from_dict({**config, "hand_vertices": 0, "vertex_embedding": 0}) == \
        BackboneConfig.from_dict(config)
    with pytest.raises(ContactkitError, match="hand_vertices=1159: checkpoints with a learned per-vertex embedding"):
        BackboneConfig.from_dict({**config, "hand_vertices": 1159, "vertex_embedding": 8})
    with pytest.raises(ContactkitError, match="unknown backbone config keys"):
        BackboneConfig.from_dict({**config, "bogus": 1})

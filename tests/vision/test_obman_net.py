"""ObMan's hand + object network (paper 001 §3): AtlasNet decoding and regularisers, branch shapes, the contact
loss's gradient, overfitting, checkpoints, training resume and the estimate output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from contactkit.errors import ContactkitError, ShapeError
from contactkit.hands import load_hand
from contactkit.io.grasps import GraspSet
from contactkit.learn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from contactkit.objects.primitives import box, sphere
from contactkit.vision.atlasnet import (
    AtlasNetDecoder,
    edge_loss,
    face_adjacency,
    icosphere,
    laplacian_loss,
    mesh_edges,
    normal_consistency,
    overlap_fraction,
    uniform_laplacian,
)
from contactkit.vision.camera import random_cameras
from contactkit.vision.obman_net import (
    ObManLossWeights,
    ObManNet,
    ObManNetConfig,
    hand_object_sdf,
    obman_losses,
)
from contactkit.vision.train_obman import ObjectSamples, ObManTrainConfig, obman_batch, train_obman

TINY = ObManNetConfig(backbone={"name": "resnet", "width": 8, "blocks": [1, 1]}, image_size=32, encoding_dim=16,
                      atlas_hidden=32, sphere_level=1, ncomps=10)


@pytest.fixture(scope="module")
def hand():
    return load_hand("openhand")


def grasp_samples(hand, n: int, seed: int = 0, size: int = 48) -> tuple[list[dict], GraspSet]:
    """n grasps (a box or a sphere near a mildly bent hand's palm), one random camera each, random images."""
    gen = torch.Generator().manual_seed(seed)
    go, pose = 0.5 * torch.randn(n, 3, generator=gen), 0.2 * torch.randn(n, 45, generator=gen)
    with torch.no_grad():
        out = hand(go, pose)
    palm = out.keypoints[:, [0, 5, 9, 13, 17]].mean(1).double()
    meshes = [box((0.04, 0.05, 0.08)), sphere(0.035, subdivisions=2)]
    ids = [meshes[i % 2].content_hash for i in range(n)]
    grasps = GraspSet(hand_model=hand.name, side=hand.side, global_orient=go.double().numpy(),
                      hand_pose=pose.double().numpy(), betas=np.zeros((n, hand.num_betas)),
                      transl=np.zeros((n, 3)), object_ids=ids, objects={m.content_hash: m for m in meshes},
                      object_rotation=np.tile(np.eye(3), (n, 1, 1)), object_translation=palm.numpy())
    k, ext = random_cameras(palm, gen, distance=(0.5, 0.7), focal=(60.0, 70.0), image_size=size)
    rng = np.random.default_rng(seed)
    samples = [{"rgb": rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "K": k[i].numpy().astype(np.float32),
                "cam_from_world": ext[i].numpy().astype(np.float32), "grasp_index": i, "object_id": ids[i],
                "view_index": 0} for i in range(n)]
    return samples, grasps


# ------------------------------------------------------------------------------------------------ AtlasNet


def test_icosphere_counts_and_closed_outward_faces():
    for level in range(4):
        v, f = icosphere(level)
        assert v.shape == (10 * 4 ** level + 2, 3) and f.shape == (20 * 4 ** level, 3)
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)
        centres = v[f].mean(1)
        normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        assert (np.einsum("ij,ij->i", normals, centres) > 0).all()  # outward
        edges = mesh_edges(torch.tensor(f))
        assert edges.shape[0] == 3 * f.shape[0] // 2  # Euler: every edge shared by two faces
    assert icosphere(3)[0].shape[0] == 642  # ObMan's template


def test_atlasnet_decoding_is_deterministic_and_starts_at_the_sphere():
    torch.manual_seed(0)
    dec = AtlasNetDecoder(8, hidden=32, level=2)
    z = torch.randn(3, 8)
    torch.testing.assert_close(dec(z), dec.template.expand(3, -1, -1))  # zero-initialised last layer
    torch.nn.init.normal_(dec.out.weight)
    a, b = dec(z), dec(z)
    assert torch.equal(a, b) and a.shape == (3, 162, 3)
    assert not torch.allclose(a[0], a[1])  # the latent matters
    dec2 = AtlasNetDecoder(8, hidden=32, level=2)
    dec2.load_state_dict(dec.state_dict())
    assert torch.equal(dec2(z), a)


def test_edge_loss_known_values():
    v, f = icosphere(0)  # regular icosahedron: all edges equal
    edges = mesh_edges(torch.tensor(f))
    verts = torch.tensor(v).unsqueeze(0)
    assert float(edge_loss(verts, edges)[0]) == pytest.approx(0.0, abs=1e-14)
    v3, f3 = icosphere(3)
    e3 = mesh_edges(torch.tensor(f3))
    x = torch.tensor(v3).unsqueeze(0)
    lengths = np.array([np.linalg.norm(v3[i] - v3[j]) for i, j in e3.tolist()])  # naive reference
    ref = float(((lengths - lengths.mean()) ** 2).mean())
    assert float(edge_loss(x, e3)[0]) == pytest.approx(ref, rel=1e-10)
    # scale s: s^2 times; translation: unchanged
    assert float(edge_loss(2.5 * x + 1.0, e3)[0]) == pytest.approx(6.25 * ref, rel=1e-10)


def test_laplacian_matches_naive_and_vanishes_on_scaled_spheres():
    v, f = icosphere(2)
    edges = mesh_edges(torch.tensor(f))
    x = torch.tensor(v).unsqueeze(0)
    lap = uniform_laplacian(x, edges)[0]
    nbrs: dict[int, set[int]] = {i: set() for i in range(len(v))}
    for i, j in edges.tolist():
        nbrs[i].add(j)
        nbrs[j].add(i)
    naive = np.stack([v[i] - v[sorted(nbrs[i])].mean(0) for i in range(len(v))])
    np.testing.assert_allclose(lap.numpy(), naive, atol=1e-14)
    # the uniform Laplacian of a sphere points inwards (towards the centre)
    assert ((lap * x[0]).sum(-1) > 0).all()
    tpl = x[0]
    assert float(laplacian_loss(3.0 * x + 0.2, tpl, edges, 3.0)[0]) == pytest.approx(0.0, abs=1e-20)
    # a sphere of radius s compared with radius 1: (s - 1)^2 mean |lap|^2
    expected = 4.0 * float(lap.pow(2).sum(-1).mean())
    assert float(laplacian_loss(3.0 * x, tpl, edges, 1.0)[0]) == pytest.approx(expected, rel=1e-10)


def _normal_consistency_naive(v: np.ndarray, f: np.ndarray) -> float:
    """Per-edge loop: 1 - cos of the unit normals of the two faces sharing each edge, averaged over edges."""
    owners: dict[tuple[int, int], list[int]] = {}
    for fi, tri in enumerate(f.tolist()):
        for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])):
            owners.setdefault((min(a, b), max(a, b)), []).append(fi)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return float(np.mean([1.0 - n[i] @ n[j] for i, j in owners.values()]))


def test_face_adjacency_pairs_the_two_faces_of_every_edge():
    v, f = icosphere(2)
    faces = torch.tensor(f)
    pairs = face_adjacency(faces)
    assert pairs.shape == (len(mesh_edges(faces)), 2)
    shared = [len(set(f[i]) & set(f[j])) for i, j in pairs.tolist()]
    assert set(shared) == {2}
    assert len({tuple(sorted(p)) for p in pairs.tolist()}) == len(pairs)
    with pytest.raises(ShapeError, match="closed manifold"):
        face_adjacency(faces[:-1])  # a hole: three edges with one face
    with pytest.raises(ShapeError, match="closed manifold"):
        face_adjacency(torch.cat([faces, faces]))  # every edge in four faces


def test_normal_consistency_known_values_on_the_sphere():
    v0, f0 = icosphere(0)  # regular icosahedron: adjacent normals at arccos(sqrt(5)/3)
    f0t = torch.tensor(f0)
    x0 = torch.tensor(v0).unsqueeze(0)
    assert float(normal_consistency(x0, f0t, face_adjacency(f0t))[0]) == pytest.approx(1 - 5 ** 0.5 / 3, abs=1e-14)
    v3, f3 = icosphere(3)
    f3t = torch.tensor(f3)
    x3 = torch.tensor(v3).unsqueeze(0)
    ref = _normal_consistency_naive(v3, f3)
    got = normal_consistency(x3, f3t, face_adjacency(f3t))[0]
    assert float(got) == pytest.approx(ref, rel=1e-12) and 0 < ref < 0.005
    # unitless and rigid-invariant: scale, translation and rotation leave it unchanged
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    moved = 0.07 * x3 @ rot.T + torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    assert float(normal_consistency(moved, f3t, face_adjacency(f3t))[0]) == pytest.approx(ref, rel=1e-10)
    # a plane: 0; a face folded flat back onto its neighbour: 2
    quad = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]]], dtype=torch.float64)
    two = torch.tensor([[0, 1, 2], [2, 1, 3]])
    pair = torch.tensor([[0, 1]])
    assert float(normal_consistency(quad, two, pair)[0]) == pytest.approx(0.0, abs=1e-15)
    folded = quad.clone()
    folded[0, 3] = torch.tensor([0.0, -1.0, 0.0]) + 1e-9  # vertex 3 rotated onto the first face's side
    assert float(normal_consistency(folded, two, pair)[0]) == pytest.approx(2.0, abs=1e-6)


def test_normal_consistency_is_positive_on_a_folded_sphere():
    v, f = icosphere(2)
    ft = torch.tensor(f)
    pairs = face_adjacency(ft)
    sphere_value = float(normal_consistency(torch.tensor(v).unsqueeze(0), ft, pairs)[0])
    dented = v.copy()
    dented[0] *= -2.0  # one vertex pushed through the centre and out of the far side: an inside-out spike
    got = float(normal_consistency(torch.tensor(dented).unsqueeze(0), ft, pairs)[0])
    assert got == pytest.approx(_normal_consistency_naive(dented, f), rel=1e-12)
    assert got > sphere_value + 0.01
    assert overlap_fraction(dented, f, resolution=24) > 0.0  # the same mesh is folded by the winding test


def test_normal_consistency_gradient():
    v, f = icosphere(1)
    ft = torch.tensor(f)
    pairs = face_adjacency(ft)
    x = (torch.tensor(v) + 0.05 * torch.randn(len(v), 3, generator=torch.Generator().manual_seed(0),
                                               dtype=torch.float64)).unsqueeze(0).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda y: normal_consistency(y, ft, pairs), (x,))


# ------------------------------------------------------------------------------------------------ the network


def test_branch_output_shapes(hand):
    net = ObManNet(TINY, hand)
    samples, grasps = grasp_samples(hand, 3)
    images, k, _ = obman_batch(samples, grasps, hand, ObjectSamples(grasps), TINY.image_size)
    out = net.eval()(images, k)
    assert out.global_orient.shape == (3, 3) and out.hand_pca.shape == (3, 10) and out.betas.shape == (3, 8)
    assert out.hand_verts.shape == (3, hand.num_verts, 3) and out.hand_keypoints.shape == (3, 21, 3)
    torch.testing.assert_close(out.hand_keypoints[:, 0], torch.zeros(3, 3))  # root-relative
    assert out.root.shape == (3, 3) and bool((out.root[:, 2] > 0).all())
    assert out.object_normalized.shape == (3, 42, 3) and out.object_verts.shape == (3, 42, 3)
    assert out.object_translation.shape == (3, 3) and out.object_scale.shape == (3,)
    torch.testing.assert_close(out.object_verts, out.object_scale[:, None, None] * out.object_normalized
                               + out.object_translation[:, None])
    assert net.object_faces.shape == (80, 3)
    with pytest.raises(ContactkitError):
        net(torch.zeros(1, 3, 16, 16), k[:1])


def test_targets_match_the_hand_and_object_geometry(hand):
    samples, grasps = grasp_samples(hand, 4)
    _, _, tgt = obman_batch(samples, grasps, hand, ObjectSamples(grasps), 32)
    torch.testing.assert_close(tgt.hand_keypoints[:, 0], torch.zeros(4, 3))
    # box 4 x 5 x 8 cm centred at the origin: radius = half its diagonal; the sphere: its radius (centroid from
    # 600 surface samples: within a few mm)
    assert float(tgt.object_radius[0]) == pytest.approx(0.5 * np.linalg.norm([0.04, 0.05, 0.08]), abs=3e-3)
    assert float(tgt.object_radius[1]) == pytest.approx(0.035, abs=3e-3)
    dist = (tgt.object_points - tgt.object_centroid[:, None]).norm(dim=-1)
    assert bool((dist <= tgt.object_radius[:, None] + 1e-5).all())


def test_hand_object_sdf_signs_and_distances():
    v, f = icosphere(3)
    obj = 0.05 * torch.tensor(v, dtype=torch.float32).unsqueeze(0)
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.08], [0.03, 0.0, 0.0]]])
    sdf = hand_object_sdf(pts, obj, torch.tensor(f))
    assert float(sdf[0, 0]) == pytest.approx(-0.05, abs=1e-6)
    assert float(sdf[0, 1]) == pytest.approx(0.03, abs=1e-3)
    assert -0.021 < float(sdf[0, 2]) < -0.019


def test_hand_object_sdf_counts_inside_out_pockets_as_inside():
    # a folded prediction's inside-out pocket has winding number -1: with the old w > 0.5 rule the contact loss saw
    # no penetration there and the fine-tune learned to wrap such pockets around the hand (docs/obman_net.md)
    v, f = icosphere(3)
    obj = 0.05 * torch.tensor(v, dtype=torch.float32).unsqueeze(0)
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.08]]])
    sdf = hand_object_sdf(pts, obj, torch.tensor(f[:, ::-1].copy()))
    assert float(sdf[0, 0]) == pytest.approx(-0.05, abs=1e-6)
    assert float(sdf[0, 1]) > 0.0


def test_overlap_fraction_flags_folded_meshes():
    v, f = icosphere(3)
    assert overlap_fraction(0.05 * v, f) == 0.0
    assert overlap_fraction(0.05 * v + 0.3, f) == 0.0  # box interior mostly inside: w = 1 is fine
    # naive reference: the grid's nodes (16 interior nodes per axis of the box [-r, r]^3) within radius r' of 0
    lo, hi = (0.05 * v).min(0), (0.05 * v).max(0)
    axes = [np.linspace(lo[a], hi[a], 18)[1:-1] for a in range(3)]
    radius = np.linalg.norm(np.stack(np.meshgrid(*axes, indexing="ij"), -1), axis=-1)
    inverted = overlap_fraction(0.05 * v, f[:, ::-1])  # inside-out: w = -1 inside
    assert inverted == pytest.approx(float((radius < 0.05).mean()), abs=0.01)
    doubled = overlap_fraction(np.concatenate([0.05 * v, 0.03 * v]), np.concatenate([f, f + len(v)]))
    assert doubled == pytest.approx(float((radius < 0.03).mean()), abs=0.01)  # w = 2 inside the inner sphere


def test_reconstructions_are_flagged_watertight_only_when_embedded():
    from contactkit.fit.obman import is_embedded_closed

    v, f = icosphere(3)
    assert is_embedded_closed(0.05 * v, f)
    assert is_embedded_closed(0.05 * v * np.array([1.0, 0.5, 2.0]) + 0.3, f)  # any closed, outward ellipsoid
    assert not is_embedded_closed(0.05 * v, f[:, ::-1].copy())  # inside-out: negative volume
    assert not is_embedded_closed(0.05 * v, f[1:])  # open
    cap = v[:, 2] > 0.5
    dented = v.copy()
    dented[cap, 2] = -0.9 * v[cap, 2]  # the top cap pushed in, still inside the sphere: a deep dent, embedded
    assert is_embedded_closed(0.05 * dented, f)
    folded = v.copy()
    folded[cap, 2] = -1.5 * v[cap, 2]  # the top cap pushed through the inside and out of the bottom: it crosses
    assert overlap_fraction(folded, f) > 0.0 and not is_embedded_closed(0.05 * folded, f)


def test_normal_term_weighs_s_squared_l_n_and_is_off_by_default(hand):
    torch.manual_seed(0)
    net = ObManNet(TINY, hand)
    torch.nn.init.normal_(net.decoder.out.weight, std=0.1)  # a crumpled sphere
    samples, grasps = grasp_samples(hand, 2)
    images, k, tgt = obman_batch(samples, grasps, hand, ObjectSamples(grasps), TINY.image_size)
    with torch.no_grad():
        out = net.eval()(images, k)
        paper = obman_losses(net, out, tgt, ObManLossWeights())
        with_n = obman_losses(net, out, tgt, ObManLossWeights(normal=10.0))
        l_n = normal_consistency(out.object_normalized, net.decoder.faces, face_adjacency(net.decoder.faces))
    expected = float(((out.object_scale * 1000.0) ** 2 * l_n).mean())
    assert float(paper["normal"]) == pytest.approx(expected, rel=1e-5) and expected > 0
    assert float(with_n["total"] - paper["total"]) == pytest.approx(10.0 * expected, rel=1e-4)
    with pytest.raises(ContactkitError, match="normal_weight"):
        ObManTrainConfig(normal_weight=-1.0)


def test_contact_loss_gradient_reaches_the_encoder(hand):
    torch.manual_seed(0)
    net = ObManNet(TINY, hand)
    samples, grasps = grasp_samples(hand, 2)
    images, k, tgt = obman_batch(samples, grasps, hand, ObjectSamples(grasps), TINY.image_size)
    out = net.train()(images, k)
    # put the object on the hand so that both repulsion and attraction are active
    out.object_translation = out.object_translation * 0 + out.hand_verts.mean(1)
    out.object_verts = out.object_scale[:, None, None] * out.object_normalized + out.object_translation[:, None]
    terms = obman_losses(net, out, tgt, ObManLossWeights(contact=10.0))
    assert float(terms["contact"].detach()) > 0
    terms["contact"].backward()
    first = net.backbone.stem[0].weight.grad
    assert first is not None and float(first.abs().sum()) > 0
    assert float(net.hand_branch.params[0].weight.grad.abs().sum()) > 0
    assert float(sum(p.grad.abs().sum() for p in net.scale_head.parameters())) > 0  # the object is scaled...
    # ... but not reshaped: the contact term does not reach the AtlasNet decoder (paper 001 freezes it; reshaping
    # folded the predicted meshes around the hands)
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in net.decoder.parameters())


def test_overfits_a_few_samples(hand):
    torch.manual_seed(0)
    net = ObManNet(TINY, hand)
    samples, grasps = grasp_samples(hand, 4)
    images, k, tgt = obman_batch(samples, grasps, hand, ObjectSamples(grasps), TINY.image_size)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    w = ObManLossWeights()
    net.train()
    first = None
    for _ in range(100):
        terms = obman_losses(net, net(images, k), tgt, w)
        first = first if first is not None else {n: float(v.detach()) for n, v in terms.items()}
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        last = obman_losses(net, net(images, k), tgt, w)
    assert float(last["total"]) < 0.05 * first["total"]
    for name in ("chamfer", "translation", "root"):
        assert float(last[name]) < 0.1 * first[name], name
    for name in ("hand_verts", "joints"):  # the shape is held near the mean (mu_beta): pose alone must fit
        assert float(last[name]) < 0.2 * first[name], name
    assert float(last["scale"]) < 0.5 * first["scale"]
    # the shape regulariser keeps the hand a hand (weight 1 against mm^2 terms let it shrink to a point)
    out = net(images, k)
    assert float(out.betas.abs().max()) < 0.5
    extent = out.hand_verts.amax(1) - out.hand_verts.amin(1)
    assert float(extent.amax(-1).min()) > 0.1


def test_checkpoint_round_trip(hand, tmp_path):
    torch.manual_seed(1)
    net = ObManNet(TINY, hand).eval()
    torch.nn.init.normal_(net.decoder.out.weight, std=0.1)
    # the hand layer is rebuilt from the config, not stored
    assert not any(k.startswith(("hand.", "_hand")) or "v_template" in k for k in net.state_dict())
    save_checkpoint(tmp_path / "n.pt", Checkpoint("obman-net", json.loads(json.dumps(TINY.__dict__)),
                                                   net.state_dict(), {}))
    ckpt = load_checkpoint(tmp_path / "n.pt", expected_kind="obman-net")
    net2 = ObManNet(ObManNetConfig.from_dict(ckpt.config)).eval()
    net2.load_state_dict(ckpt.state_dict)
    samples, grasps = grasp_samples(hand, 2)
    images, k, _ = obman_batch(samples, grasps, hand, ObjectSamples(grasps), TINY.image_size)
    a, b = net(images, k), net2(images, k)
    assert torch.equal(a.object_verts, b.object_verts) and torch.equal(a.hand_verts, b.hand_verts)
    with pytest.raises(ContactkitError, match="unknown"):
        ObManNetConfig.from_dict({"depth": 3})


def test_training_resumes_and_finetunes_with_the_contact_loss(hand, tmp_path):
    samples, grasps = grasp_samples(hand, 6)
    cfg = ObManTrainConfig(epochs=1, finetune_epochs=1, batch_size=3, contact_weight=10.0)
    rec = train_obman(samples, grasps, samples[:2], grasps, tmp_path / "run", TINY, cfg, progress=False)
    assert rec["epoch"] == 1 and rec["stage"] == "contact" and "contact" in rec["train"]
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == ["base", "contact"] and "contact" not in log[0]["train"]
    # same settings: nothing left to run; different settings: refused
    again = train_obman(samples, grasps, samples[:2], grasps, tmp_path / "run", TINY, cfg, progress=False)
    assert again["epoch"] == 1
    with pytest.raises(ContactkitError, match="different settings"):
        train_obman(samples, grasps, samples[:2], grasps, tmp_path / "run", TINY,
                    ObManTrainConfig(epochs=2, batch_size=3), progress=False)


def test_steps_per_epoch_caps_the_optimiser_steps(hand, tmp_path):
    samples, grasps = grasp_samples(hand, 6)  # batch 3: two steps per whole epoch
    for cap, steps in ((0, 4), (1, 2)):
        cfg = ObManTrainConfig(epochs=2, batch_size=3, steps_per_epoch=cap)
        train_obman(samples, grasps, samples[:2], grasps, tmp_path / f"cap{cap}", TINY, cfg, progress=False)
        opt = load_checkpoint(tmp_path / f"cap{cap}" / "last.pt").optimizer
        assert opt is not None and {int(st["step"]) for st in opt["state"].values()} == {steps}
    with pytest.raises(ContactkitError, match="steps_per_epoch"):
        ObManTrainConfig(steps_per_epoch=-1)


def test_estimate_rows_reproduce_the_network_in_the_world_frame(hand):
    from contactkit.fit.obman import grasps_from_obman, run_obman

    torch.manual_seed(2)
    net = ObManNet(TINY, hand).eval()
    torch.nn.init.normal_(net.hand_branch.params[2].weight, std=0.05)
    samples, _ = grasp_samples(hand, 3)
    rgb = torch.as_tensor(np.stack([s["rgb"] for s in samples]))
    k = torch.as_tensor(np.stack([s["K"] for s in samples]))
    ext = torch.as_tensor(np.stack([s["cam_from_world"] for s in samples])).double()
    out = run_obman(net, rgb, k)
    g = grasps_from_obman(net, out, ext, reference_index=np.arange(3))
    t = g.hand_tensors(dtype=torch.float64)
    hand64 = load_hand("openhand", dtype=torch.float64)
    world = hand64(t["global_orient"], t["hand_pose"], t["betas"], t["transl"]).keypoints
    cam = world @ ext[:, :3, :3].transpose(1, 2) + ext[:, None, :3, 3]
    torch.testing.assert_close(cam, (out.hand_keypoints + out.root[:, None]).double(), atol=1e-5, rtol=0)
    obj_world = [g.objects[g.object_ids[i]].vertices @ g.object_rotation[i].T + g.object_translation[i]
                 for i in range(3)]
    obj_cam = torch.as_tensor(np.stack(obj_world)) @ ext[:, :3, :3].transpose(1, 2) + ext[:, None, :3, 3]
    torch.testing.assert_close(obj_cam, (out.object_verts + out.root[:, None]).double(), atol=1e-5, rtol=0)
    assert g.attrs["objects"] == "reconstructed" and len(g.objects) == 3
    assert all(m.is_watertight for m in g.objects.values())  # the untrained decoder's spheres are embedded


# ------------------------------------------------------------------------------------------------ CPF image path


def test_honet_shapes_pose_and_loss(hand):
    from contactkit.vision.honet import HoNet, HoNetConfig, honet_losses, posed_object_points

    cfg = HoNetConfig(backbone={"name": "resnet", "width": 8, "blocks": [1, 1]}, image_size=32, encoding_dim=16,
                      ncomps=10)
    net = HoNet(cfg, hand)
    samples, grasps = grasp_samples(hand, 3)
    images, k, tgt = obman_batch(samples, grasps, hand, ObjectSamples(grasps), 32)
    out = net.eval()(images, k)
    rot = out.object_rotation
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-5, rtol=0)
    assert out.object_translation.shape == (3, 3) and out.hand_verts.shape == (3, hand.num_verts, 3)
    # the target pose reproduces the target points
    torch.testing.assert_close(tgt.object_local_points @ tgt.object_rotation.transpose(1, 2)
                               + tgt.object_translation[:, None], tgt.object_points, atol=1e-6, rtol=0)
    out.object_rotation, out.object_translation = tgt.object_rotation, tgt.object_translation
    torch.testing.assert_close(posed_object_points(out, tgt.object_local_points), tgt.object_points)
    assert float(honet_losses(net, out, tgt)["object"]) < 1e-6


def test_image_features_are_sampled_at_the_projections():
    from contactkit.vision.picr_image import sample_image_features

    fmap = torch.zeros(1, 2, 4, 4)
    fmap[0, 0, 1, 2] = 1.0  # feature pixel (x=2, y=1) covers image pixels x 16..23, y 8..15 of a 32-px image
    fmap[0, 1] = 5.0
    k = torch.tensor([[[10.0, 0.0, 15.5], [0.0, 10.0, 15.5], [0.0, 0.0, 1.0]]])
    # a point projecting onto the centre of that feature cell: pixel (19.5, 11.5)
    p = torch.tensor([[[(19.5 - 15.5) / 10.0, (11.5 - 15.5) / 10.0, 1.0], [0.0, 0.0, -1.0]]])
    f = sample_image_features(fmap, p, k, 32)
    torch.testing.assert_close(f[0, 0], torch.tensor([1.0, 5.0]))
    torch.testing.assert_close(f[0, 1], torch.zeros(2))  # behind the camera


def test_miho_pipeline_runs_end_to_end(hand):
    from contactkit.fit.miho import miho
    from contactkit.learn.data import picr_targets
    from contactkit.vision.honet import HoNet, HoNetConfig
    from contactkit.vision.picr_image import ImagePiCR, ImagePiCRConfig, image_picr_loss

    torch.manual_seed(0)
    honet = HoNet(HoNetConfig(backbone={"name": "resnet", "width": 8, "blocks": [1, 1]}, image_size=32,
                              encoding_dim=16, ncomps=10), hand)
    torch.nn.init.zeros_(honet.hand_branch.params[2].weight)  # a plausible (flat) hand
    picr = ImagePiCR(ImagePiCRConfig(backbone={"name": "resnet", "width": 8, "blocks": [1, 1]}, image_size=32,
                                     image_channels=4), hand)
    samples, grasps = grasp_samples(hand, 2)
    rgb = torch.as_tensor(np.stack([s["rgb"] for s in samples]))
    k = torch.as_tensor(np.stack([s["K"] for s in samples]))
    ext = torch.as_tensor(np.stack([s["cam_from_world"] for s in samples]))
    meshes = [grasps.objects[o] for o in grasps.object_ids]
    plain = miho(honet, rgb, k, meshes, contact="none", cam_from_world=ext)
    assert len(plain) == 2 and plain.attrs["estimated_by"] == "honet"
    fitted = miho(honet, rgb, k, meshes, contact="image", picr=picr, cam_from_world=ext, iterations=3,
                  restarts=1, num_points=256)
    assert len(fitted) == 2 and fitted.attrs["targets"].startswith("given") and fitted.loss_traces is not None
    assert not np.allclose(fitted.transl, plain.transl) or not np.allclose(fitted.hand_pose, plain.hand_pose)
    with pytest.raises(ContactkitError):
        miho(honet, rgb, k, meshes, contact="image", cam_from_world=ext)
    # the springs use the image PiCR's t_vc (validation-tuned on loading; 0.8 by default): every point above it,
    # none at 1, and an explicit threshold overrides it
    from contactkit.fit.miho import image_picr_targets
    from contactkit.vision.backbone import normalize_images
    from contactkit.vision.heads import resize_to_square

    img, kp = resize_to_square(rgb, k.float(), 32)
    args = (picr, normalize_images(img), kp, plain, ext)
    assert picr.vc_threshold == 0.8
    picr.vc_threshold = 1.0
    assert float(image_picr_targets(*args, num_points=64).object_contact.abs().sum()) == 0.0
    picr.vc_threshold = 0.0
    every = image_picr_targets(*args, num_points=64)
    assert bool((every.object_contact > 0).all()) and bool((every.k_atr > 0).any(dim=1).all())
    assert float(image_picr_targets(*args, num_points=64, vc_threshold=1.0).object_contact.abs().sum()) == 0.0
    # the image PiCR trains: its loss has a gradient reaching the image backbone
    images, kk, tgt = obman_batch(samples, grasps, hand, ObjectSamples(grasps), 32)
    verts = tgt.hand_verts + tgt.root[:, None]
    pts = tgt.object_points + tgt.root[:, None]
    ann = hand.annotations
    vc, region, el = picr_targets(verts, hand.anchors(verts), pts, torch.as_tensor(ann.region_of_vertex),
                                  torch.as_tensor(ann.anchor_region))
    loss = image_picr_loss(picr.train(), images, kk, verts, pts, torch.nn.functional.normalize(pts, dim=-1),
                           vc, region, el)
    loss.backward()
    assert float(picr.backbone.stem[0].weight.grad.abs().sum()) > 0


def _ddp_worker(rank: int, world: int, init_file: str, run_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        hand = load_hand("openhand")
        samples, grasps = grasp_samples(hand, 8)
        train_obman(samples, grasps, samples[:2], grasps, run_dir, TINY,
                    ObManTrainConfig(epochs=1, finetune_epochs=1, batch_size=2), progress=False)
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_ranks_with_the_contact_stage(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "run")), nprocs=2, join=True)
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["stage"] for x in log] == ["base", "contact"]  # one writer, one line per epoch
    assert load_checkpoint(tmp_path / "run" / "last.pt", expected_kind="obman-net").training["epoch"] == 1



def _picr_ddp_worker(rank: int, world: int, port: int, run_dir: str, out: str) -> None:
    import torch.distributed as dist
    from tests.vision.test_ddp import torchrun_environment

    from contactkit.vision import train_picr_image
    from contactkit.vision.picr_image import ImagePiCRConfig

    torch.set_num_threads(1)
    torchrun_environment(rank, world, port)
    opened = []

    def spy(*args, **kwargs):
        opened.append(open_run(*args, **kwargs))
        return opened[-1]

    open_run = train_picr_image.open_run
    train_picr_image.open_run = spy
    try:
        hand = load_hand("openhand")
        samples, grasps = grasp_samples(hand, 4)
        config = ImagePiCRConfig(backbone={"name": "resnet", "width": 8, "blocks": [1, 1]}, image_size=32,
                                 image_channels=4)
        train_picr_image.train_image_picr(samples, grasps, samples[:2], grasps, run_dir, config,
                                          train_picr_image.ImagePiCRTrainConfig(epochs=1, batch_size=2,
                                                                                num_points=64), progress=False)
        if rank == 1:  # writes no checkpoint; keep its weights for the comparison
            torch.save({name: p.detach() for name, p in opened[0].net.named_parameters()}, out)
        dist.barrier()
    finally:
        train_picr_image.open_run = open_run
        dist.destroy_process_group()


@pytest.mark.slow
def test_image_picr_ddp_keeps_the_ranks_in_step(tmp_path):
    """Each rank trains on its own half of the samples; DDP averages the gradients, so both ranks end with the
    same parameters (batch-norm statistics stay per rank)."""
    import torch.multiprocessing as mp
    from tests.vision.test_ddp import free_port

    mp.spawn(_picr_ddp_worker, args=(2, free_port(), str(tmp_path / "run"), str(tmp_path / "rank1.pt")), nprocs=2,
             join=True)
    rank0 = load_checkpoint(tmp_path / "run" / "last.pt", expected_kind="picr-image").state_dict
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    moved = load_checkpoint(tmp_path / "run" / "last.pt").training["last"]["train"]["total"] > 0
    assert moved and len(rank1) > 0 and set(rank1) <= set(rank0)
    for name in rank1:
        torch.testing.assert_close(rank0[name], rank1[name], msg=name)

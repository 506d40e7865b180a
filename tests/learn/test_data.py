"""Training data from perturbed grasps linked to their ground truth, and the ``contactkit train`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from contactkit.cli.main import main as cli_main
from contactkit.contact.cpf import spring_elasticity
from contactkit.errors import ContactkitError
from contactkit.geometry.normals import vertex_normals
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps
from contactkit.learn.checkpoint import load_checkpoint
from contactkit.learn.data import ContactTensors, build_contact_tensors, cached_contact_tensors, picr_targets
from contactkit.objects.primitives import make_primitive
from contactkit.synth.perturb import perturb


@pytest.fixture(scope="module")
def sphere_grasps(hand, tmp_path_factory):
    """Two flat hands whose palm touches a 4 cm sphere, and 2 perturbed copies of each linked to them."""
    folder = tmp_path_factory.mktemp("grasps")
    radius = 0.04
    sphere = make_primitive("sphere", radius=radius)
    out = hand(torch.zeros(2, 3), torch.zeros(2, 45), None, torch.tensor([[0.0, 0, 0], [0.01, 0, 0]]))
    palm = torch.as_tensor(hand.annotations.contact_zones["palm"], dtype=torch.long)
    normals = vertex_normals(out.vertices, hand.faces)
    centre = out.vertices[:, palm].mean(1) + radius * torch.nn.functional.normalize(normals[:, palm].mean(1), dim=-1)
    gt = GraspSet.from_arrays(hand_model="openhand", side="right", global_orient=np.zeros((2, 3)),
                              hand_pose=np.zeros((2, 45)), objects=sphere, num_betas=hand.num_betas,
                              transl=np.array([[0.0, 0, 0], [0.01, 0, 0]]),
                              object_translation=centre.double().numpy())
    gt_path = folder / "gt.npz"
    save_grasps(gt_path, gt)
    noisy_path = folder / "noisy.npz"
    save_grasps(noisy_path, perturb(gt, "small", copies=2, seed=0, hand=hand, reference=gt_path))
    return gt_path, noisy_path


def test_build_contact_tensors_targets_and_cache(hand, sphere_grasps, tmp_path):
    gt_path, noisy_path = sphere_grasps
    noisy = load_grasps(noisy_path)
    data = build_contact_tensors(noisy, load_grasps(gt_path), hand, num_points=256)
    n = hand.num_verts
    assert len(data) == 4 and data.xyz.shape == (4, n + 256, 3) and data.n_hand == n
    assert data.contact.shape == (4, n + 256) and float(data.contact.min()) >= 0 and float(data.contact.max()) <= 1
    # The palm touches the sphere in the ground truth: some contact on both sides, and regions only where VC.
    assert float(data.contact[:, :n].max()) > 0.5 and float(data.object_vc.sum()) > 0
    assert torch.all(data.object_region[data.object_vc == 0] == 0)
    assert torch.all(data.object_elasticity[data.object_vc == 0] == 0)
    # Copies of one ground-truth grasp share the targets on the hand (they are measured on the ground truth).
    torch.testing.assert_close(data.contact[0, :n], data.contact[1, :n])
    cached = cached_contact_tensors(noisy_path, hand, tmp_path / "c.npz", num_points=256)
    again = ContactTensors.load(tmp_path / "c.npz")
    for name in ("xyz", "features", "contact", "object_vc", "object_region", "object_elasticity"):
        assert torch.equal(getattr(cached, name), getattr(again, name)), name
    assert torch.equal(cached.contact, data.contact)


def test_picr_targets_analytic():
    ref_verts = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0]]])
    anchors = torch.zeros(1, 32, 3)
    anchors[0, 1] = torch.tensor([0.1, 0.0, 0.0])
    pts = torch.tensor([[[0.003, 0, 0], [0.1, 0.004, 0], [0.05, 0, 0]]])
    region_of_vertex = torch.tensor([2, 7])
    anchor_region = torch.zeros(32, dtype=torch.long)
    anchor_region[1] = 7
    vc, region, elast = picr_targets(ref_verts, anchors, pts, region_of_vertex, anchor_region)
    assert vc.tolist() == [[1.0, 1.0, 0.0]]
    assert region.tolist() == [[2, 7, 0]]
    # Point 0 touches region 2, which has no anchor; point 1 is 4 mm from its region's anchor.
    torch.testing.assert_close(elast, torch.stack([torch.tensor(0.0), spring_elasticity(torch.tensor(0.004)),
                                                   torch.tensor(0.0)])[None])


def test_data_refuses_sets_without_reference(hand, sphere_grasps, tmp_path):
    gt_path, _ = sphere_grasps
    with pytest.raises(ContactkitError, match=r"linked to their ground truth \(attrs\['reference'\]"):
        cached_contact_tensors(gt_path, hand, tmp_path / "x.npz")


def test_train_command_runs_and_resumes(hand, sphere_grasps, tmp_path, capsys):
    _, noisy_path = sphere_grasps
    argv = ["train", "deepcontact", "--data", str(noisy_path), "--val", str(noisy_path), "--out", str(tmp_path),
            "--epochs", "1", "--batch-size", "2", "--backbone", "small", "--num-points", "128", "--quiet"]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    assert "epoch 1/1: loss" in text and "hand_f1_pct" in text
    assert (tmp_path / "train_tensors.npz").is_file() and (tmp_path / "best.pt").is_file()
    ckpt = load_checkpoint(tmp_path / "best.pt", expected_kind="deepcontact")
    assert ckpt.training["hand_model"] == "openhand" and ckpt.training["train_grasps"] == 4
    argv[argv.index("--epochs") + 1] = "2"
    assert cli_main(argv) == 2  # other settings than the saved run: refused (ContactkitError -> exit 2)
    assert "different settings" in capsys.readouterr().err
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0]


@pytest.mark.parametrize(("flags", "contact_prior", "shape_prior"), [
    ([], True, True),
    (["--no-shape-prior"], True, False),
    (["--no-contact-prior"], False, False),
    (["--no-contact-prior", "--no-shape-prior"], False, False),
])
def test_train_prior_flags_reach_the_config(flags, contact_prior, shape_prior):
    from contactkit.cli.main import build_parser
    from contactkit.cli.train import train_config

    args = build_parser().parse_args(["train", "deepcontact", "--data", "a.npz", "--val", "b.npz", "--out", "r",
                                      "--epochs", "3", "--lr", "0.003", *flags])
    config = train_config(args)
    assert (config.contact_prior, config.shape_prior) == (contact_prior, shape_prior)
    assert (config.epochs, config.lr, config.small) == (3, 0.003, True)


def test_train_command_without_contact_prior(hand, sphere_grasps, tmp_path):
    _, noisy_path = sphere_grasps
    argv = ["train", "deepcontact", "--data", str(noisy_path), "--val", str(noisy_path), "--out", str(tmp_path),
            "--epochs", "1", "--batch-size", "2", "--num-points", "128", "--quiet", "--no-contact-prior"]
    assert cli_main(argv) == 0
    ckpt = load_checkpoint(tmp_path / "best.pt", expected_kind="deepcontact")
    assert ckpt.training["config"]["contact_prior"] is False and ckpt.training["config"]["shape_prior"] is False
    assert "prior_hand_vertices" not in ckpt.config and "prior_shape" not in ckpt.config
    assert "hand_prior" not in ckpt.state_dict and "object_prior" not in ckpt.state_dict

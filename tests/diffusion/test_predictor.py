"""CHOIR predictor (contract B), the paper's stage-2 term, refinement in the wild, and serving a MANO-format hand
through its own anchors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from contactkit.contact.choir import ChoirField, encode
from contactkit.contact.choir_fit import gaussian_weighted_knn_loss
from contactkit.diffusion.checkpoint import DiffusionCheckpoint, DiffusionSpec, save_diffusion
from contactkit.diffusion.model import JointDiffusion, JointDiffusionConfig
from contactkit.diffusion.representation import (
    ChoirScaler,
    build_examples,
    decode_contacts,
    encode_contacts,
    grasp_geometry,
)
from contactkit.errors import ContactkitError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hands"))

TINY = dict(base_channels=8, channel_mult=(1, 2, 4), attn_resolutions=(4,), num_heads=2, context_tokens=4,
            contact_hidden=64, contact_blocks=2, bottleneck_channels=4)


def _field_one_gaussian(mean, chol_diag, active=True):
    grid = torch.zeros(1, 4096, 3)
    m = torch.zeros(1, 32, 3)
    m[0, :] = torch.as_tensor(mean)
    c = torch.diag_embed(torch.full((1, 32, 3), chol_diag))
    return ChoirField(grid, torch.zeros(1, 4096), torch.zeros(1, 4096), torch.arange(4096) % 32, m, c,
                      torch.full((1, 32), active))


def test_stage2_term_analytic_value_and_gradient():
    """One vertex at the Gaussian's mean, 1 cm above a plane of object points: density 1, loss = sum of the 5
    nearest squared distances (mm^2) / 1e3; an inactive Gaussian gives 0."""
    pts = torch.tensor([[[0.0, 0.0, 0.0], [1e-3, 0, 0], [-1e-3, 0, 0], [0, 1e-3, 0], [0, -1e-3, 0], [5e-2, 0, 0]]],
                       dtype=torch.float64)
    vert = torch.tensor([[[0.0, 0.0, 1e-2]]], dtype=torch.float64, requires_grad=True)
    anchors = torch.zeros(1, 32, 3, dtype=torch.float64)
    fld = _field_one_gaussian([0.0, 0.0, 1e-2], 5e-3)
    loss = gaussian_weighted_knn_loss(vert, pts, anchors, fld, k=5)
    expected = (100.0 + 4 * 101.0) / 1e3
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    loss.backward()
    # d/dz sum_k (z^2 + r_k^2) in mm units: 5 * 2 * 10 mm / 1e3 per mm -> per metre x 1e3; density gradient is 0 at
    # the mean
    assert vert.grad[0, 0, 2].item() == pytest.approx(5 * 2 * 10.0 / 1e3 * 1e3, rel=1e-6)
    off = _field_one_gaussian([0.0, 0.0, 1e-2], 5e-3, active=False)
    assert gaussian_weighted_knn_loss(vert.detach(), pts, anchors, off, k=5).item() == 0.0


def test_contact_vector_round_trip(openhand, gt_grasps):
    geo = grasp_geometry(gt_grasps, openhand, num_points=512)
    from contactkit.geometry.normals import vertex_normals

    fld = encode(geo["obj_points"], geo["verts"], vertex_normals(geo["verts"], openhand.faces), geo["anchors"])
    assert fld.gauss_active.any() and not fld.gauss_active.all()
    mean, chol, active = decode_contacts(encode_contacts(fld), fld.grid)
    assert torch.equal(active, fld.gauss_active)
    assert torch.allclose(mean[active], fld.gauss_mean[active], atol=1e-7)
    assert torch.allclose(chol[active], fld.gauss_chol[active], atol=1e-7)


def _save_tiny(path, context, examples):
    cfg = JointDiffusionConfig(context_channels=2 if context == "noisy" else 1, **TINY)
    torch.manual_seed(0)
    spec = DiffusionSpec(cfg, context, ChoirScaler.fit(examples.volume, examples.context, examples.contact),
                         num_points=512)
    save_diffusion(path, DiffusionCheckpoint(spec, JointDiffusion(cfg).state_dict(), {}))


@pytest.fixture(scope="module")
def noisy_weights(tmp_path_factory, openhand, gt_grasps):
    path = tmp_path_factory.mktemp("jd") / "noisy.pt"
    _save_tiny(path, "noisy", build_examples(gt_grasps, openhand, "noisy", copies=1, num_points=512))
    return path


def test_load_choir_predictor_errors(openhand, tmp_path, noisy_weights):
    from contactkit.diffusion.predictor import load_choir_predictor

    with pytest.raises(ContactkitError, match="no learned CHOIR predictor is installed for hand 'openhand'"):
        load_choir_predictor(openhand, weights=tmp_path / "missing.pt")
    with pytest.raises(ContactkitError, match="expected 'object'"):
        load_choir_predictor(openhand, weights=noisy_weights, context="object")


def test_predict_is_seeded_and_refinement_reads_no_ground_truth(openhand, gt_grasps, noisy_weights):
    from contactkit.diffusion.fitting import refine_in_the_wild
    from contactkit.diffusion.predictor import load_choir_predictor
    from contactkit.synth.perturb import perturb

    noisy = perturb(gt_grasps, "contactopt", copies=1, seed=3, hand=openhand)
    assert "reference" not in noisy.attrs  # nothing to read a ground truth from
    pred = load_choir_predictor(openhand, weights=noisy_weights, steps=3)
    a, b = pred.predict(noisy, openhand), pred.predict(noisy, openhand)
    assert len(a) == 3 and a.field.anchor_sq_dist.shape == (3, 4096) and a.field.gauss_chol.shape == (3, 32, 3, 3)
    assert torch.equal(a.field.anchor_sq_dist, b.field.anchor_sq_dist)
    out = refine_in_the_wild(noisy, pred, hand=openhand, iterations=4)
    assert len(out) == 3 and np.isfinite(out.transl).all()
    assert not np.allclose(out.transl, noisy.transl)
    assert "JointDiffusion" in out.attrs["refine"]["targets"]


def test_openhand_trained_model_serves_a_mano_format_hand_through_its_anchors(noisy_weights):
    import hand_fixtures as hf

    from contactkit.diffusion.fitting import refine_in_the_wild
    from contactkit.diffusion.predictor import load_choir_predictor
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.primitives import make_primitive

    mano = hf.as_hand_model(hf.synthetic_rest(), "mano")
    assert mano.num_verts == 778
    grasps = GraspSet.from_arrays(
        hand_model="mano", side="right", global_orient=np.zeros((2, 3)), hand_pose=np.zeros((2, 45)),
        betas=np.zeros((2, 0)), transl=np.array([[0.0, -0.06, 0.0], [0.01, -0.06, 0.0]]),
        objects=make_primitive("sphere", radius=0.04), num_betas=0,
    )
    geo = grasp_geometry(grasps, mano, num_points=512, dtype=torch.float64)
    assert torch.allclose(geo["anchors"], mano.anchors(geo["verts"]))  # MANO's own anchors, not OpenHand's
    pred = load_choir_predictor(mano, weights=noisy_weights, steps=2)
    targets = pred.predict(grasps, mano)
    assert targets.field.anchor_sq_dist.shape == (2, 4096) and torch.isfinite(targets.field.anchor_sq_dist).all()
    out = refine_in_the_wild(grasps, pred, hand=mano, iterations=2)
    assert out.hand_model == "mano" and out.hand_vertices.shape == (2, 778, 3)


def test_noisy_examples_pair_each_copy_with_its_ground_truth(openhand, gt_grasps):
    """Copies of one grasp share the target and the object channel; the hand channel is the noisy hand's CHOIR
    distances (recomputed here from the perturbed grasps with the same seed)."""
    from contactkit.contact.choir import anchor_assignment, anchor_sq_distances
    from contactkit.diffusion.representation import grid_frame
    from contactkit.synth.perturb import perturb

    ex = build_examples(gt_grasps, openhand, "noisy", copies=2, seed=4, num_points=256)
    assert len(ex) == 6 and ex.context.shape == (6, 2, 16, 16, 16)
    obj = build_examples(gt_grasps, openhand, "object", seed=4, num_points=256)
    reused = build_examples(gt_grasps, openhand, "noisy", copies=2, seed=4, num_points=256, encoded=obj)
    assert torch.equal(reused.volume, ex.volume) and torch.allclose(reused.context, ex.context)
    assert torch.equal(ex.volume[0], ex.volume[1]) and not torch.equal(ex.volume[1], ex.volume[2])
    assert torch.equal(ex.context[0, 0], ex.context[1, 0]) and not torch.equal(ex.context[0, 1], ex.context[1, 1])
    noisy = perturb(gt_grasps, "contactopt", copies=2, seed=5, hand=openhand)
    geo = grasp_geometry(noisy, openhand, num_points=256, seed=4)
    from contactkit.contact.choir import bps_grid

    grid = bps_grid(geo["obj_points"])
    d = anchor_sq_distances(grid, geo["anchors"], anchor_assignment(4096)).sqrt() / grid_frame(grid)[1].view(-1, 1)
    assert torch.allclose(ex.context[:, 1].flatten(1), d, atol=1e-5)


def test_shipped_models_load_for_both_uses(openhand):
    """Contract B's default path (no weights argument) and the synthesiser's default object model."""
    from contactkit.diffusion.predictor import load_choir_predictor, shipped_weights
    from contactkit.diffusion.synthesis import diffusion_candidates

    if not shipped_weights("noisy").is_file():
        pytest.skip("no shipped JointDiffusion weights in this checkout")
    pred = load_choir_predictor(openhand)
    assert pred.context == "noisy" and pred.spec.hand_model == "openhand"
    cand = diffusion_candidates("openhand", "right")
    assert cand.predictor.context == "object" and "diffusion" in cand.name


def test_diffusion_candidates_match_the_synthesiser_interface(openhand, tmp_path, gt_grasps):
    from contactkit.cli.main import build_parser
    from contactkit.diffusion.predictor import load_choir_predictor
    from contactkit.diffusion.synthesis import DiffusionCandidates
    from contactkit.objects.primitives import make_primitive
    from contactkit.synth.synthesis import SynthesisConfig

    _save_tiny(tmp_path / "obj.pt", "object", build_examples(gt_grasps, openhand, "object", num_points=512))
    cand = DiffusionCandidates(load_choir_predictor(openhand, weights=tmp_path / "obj.pt", context="object",
                                                    steps=2), iterations=2)
    out = cand(openhand, make_primitive("sphere", radius=0.04), SynthesisConfig(batch_size=2, sdf_resolution=32),
               np.random.default_rng(0), torch.float32)
    assert out["vertices"].shape == (2, openhand.num_verts, 3) and out["hand_pose"].shape == (2, 45)
    assert out["loss"].shape == (2,) and torch.isfinite(out["vertices"]).all()
    args = build_parser().parse_args(["synth", "--object", "mug", "--n", "2", "--out", "x.npz", "--method",
                                      "diffusion"])
    assert args.method == "diffusion"
    assert build_parser().parse_args(["synth", "--object", "mug", "--n", "2", "--out", "x.npz"]).method == "optimize"

"""Quality floors of the shipped estimators on small fixed held-out fixtures.

DeepContact: ``data/heldout_v4_openhand.npz``, 8 OpenHand grasps of data v4 (the synthesis the shipped DeepContact
is trained on): grasps 0 and 1 of the v4 test-split objects ``random_urdf_260``, ``299``, ``345``, ``442`` (sorted
v4 test objects outside the 23 of the held-out evaluation, taken at positions 0, 6, 12, 18; stored without their
contact maps). Each is perturbed 4 times with ContactOpt's protocol (seed 0) and the predictions are scored
against DiffContact maps measured on the ground truth (contact > 0.5; the shipped network's thresholds chosen on v4
validation: hand > 0.35, object > 0.2, docs/model_card.md). Measured when the floor was set (2026-12-03, weights of
2026-12-03): hand F1 37.5 %, object F1 13.6 %; the network's own training-set mean map (its prior, > 0.35) 36.6 %;
proximity 2.0 / 0.6 %. The floors sit 3.5 points below, and the hand F1 must beat the network's own mean map.

PiCR: ``data/heldout_openhand.npz``: 6 synthesised OpenHand grasps (2 each of ``box``, ``sphere`` r = 4.25 cm and
``cylinder`` 1.5 x 16 cm — objects of the estimators' test split, never used in training), made by
``benchmarks/bm_refine_quality.py --build-gt DIR --set tuning`` (seed 0). Each is perturbed 4 times with
ContactOpt's protocol (seed 0) and the predictions are scored against DiffContact maps measured on the ground
truth (contact > 0.5; DeepContact's object threshold 0.3 and PiCR's t_vc as validated, docs/model_card.md).

Measured when the floor was set (2026-12-02, weights of 2026-11-21): PiCR object F1 4.9 %; the proximity baseline
(within 2 mm of the noisy hand) 1.0 %. The floor sits a few points below, so a retrained model that regresses fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contactkit.io.grasps import load_grasps
from contactkit.learn.estimators import load_estimator
from contactkit.learn.losses import bins_to_contact
from contactkit.synth.perturb import perturb
from contactkit.targets import objects_from_grasps, reference_targets

FIXTURE = Path(__file__).parent / "data" / "heldout_openhand.npz"
FIXTURE_V4 = Path(__file__).parent / "data" / "heldout_v4_openhand.npz"


def _f1(pred: torch.Tensor, truth: torch.Tensor) -> float:
    tp = float((pred & truth).sum())
    return 2.0 * tp / max(1.0, float(pred.sum()) + float(truth.sum()))


def _scene(hand, path):
    gt = load_grasps(path)
    noisy = perturb(gt, "contactopt", 4, 0, hand=hand)
    objects = objects_from_grasps(noisy)
    truth = reference_targets(hand, gt, noisy, objects, "cpu", torch.float32)
    t = noisy.hand_tensors()
    with torch.no_grad():
        verts = hand(t["global_orient"], t["hand_pose"], t["betas"], t["transl"]).vertices
    pts, nrm = objects.world_points()
    return verts, pts, nrm, truth


@pytest.fixture(scope="module")
def scene(hand):
    return _scene(hand, FIXTURE)


def test_deepcontact_quality_floor(hand):
    verts, pts, nrm, truth = _scene(hand, FIXTURE_V4)
    estimator = load_estimator("deepcontact", hand)
    pred = estimator.predict(verts, pts, nrm)
    hand_f1 = _f1(pred.hand_contact > 0.35, truth.hand_contact > 0.5)
    obj_f1 = _f1(pred.object_contact > 0.2, truth.object_contact > 0.5)
    proximity = _f1(torch.cdist(verts, pts).amin(-1) < 0.002, truth.hand_contact > 0.5)
    obj_proximity = _f1(torch.cdist(pts, verts).amin(-1) < 0.002, truth.object_contact > 0.5)
    # The training set's mean map, as the network holds it (its per-vertex prior), predicted for every grasp.
    hand_prior = estimator.network.hand_prior
    assert hand_prior is not None
    mean_map = bins_to_contact(hand_prior) > 0.35
    mean_map_f1 = _f1(mean_map.expand_as(truth.hand_contact), truth.hand_contact > 0.5)
    assert hand_f1 >= 0.34 and hand_f1 > max(proximity, mean_map_f1), (hand_f1, proximity, mean_map_f1)
    assert obj_f1 >= 0.10 and obj_f1 > obj_proximity, (obj_f1, obj_proximity)


def test_picr_quality_floor(hand, scene):
    verts, pts, nrm, truth = scene
    pred = load_estimator("picr", hand).predict(verts, pts, nrm)
    obj_f1 = _f1(pred.object_contact > 0, truth.object_contact > 0.5)
    proximity = _f1(torch.cdist(pts, verts).amin(-1) < 0.002, truth.object_contact > 0.5)
    assert obj_f1 >= 0.03 and obj_f1 > proximity, (obj_f1, proximity)

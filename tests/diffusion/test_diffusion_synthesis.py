"""Diffusion synthesis: the placement of a hand on a sampled CHOIR field (``diffusion/synthesis.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.grasp_fixtures import posed_sphere_grasps

from contactkit.contact.choir import encode
from contactkit.diffusion.fitting import anchors_of
from contactkit.diffusion.representation import grasp_geometry
from contactkit.errors import ContactkitError
from contactkit.geometry.normals import vertex_normals
from contactkit.geometry.rotations import axis_angle_to_rotmat, rotmat_to_axis_angle
from contactkit.refine.refiner import HandParamsInit
from contactkit.targets import objects_from_grasps


def _turned_flat_grasps(hand):
    """Flat hands (zero finger pose) on spheres of 4 and 3 cm at the origin, the whole hand turned about the
    sphere's centre (a valid grasp of the same sphere in another orientation); parameters and CHOIR fields."""
    grasps = posed_sphere_grasps(hand, radii=(0.04, 0.03), bend=0.0)
    t = grasps.hand_tensors()
    p0 = HandParamsInit(t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    rot = axis_angle_to_rotmat(torch.tensor([[0.5, -0.9, 0.4], [-1.2, 0.3, 0.8]]))
    orient = rotmat_to_axis_angle(rot @ axis_angle_to_rotmat(p0.global_orient))
    want = anchors_of(hand, p0) @ rot.transpose(1, 2)  # anchors turned about the origin
    moved = anchors_of(hand, HandParamsInit(orient, p0.hand_pose, p0.betas, p0.transl))
    truth = HandParamsInit(orient, p0.hand_pose, p0.betas, p0.transl + (want - moved).mean(1))
    grasps = grasps.replace(global_orient=truth.global_orient.double().numpy(),
                            transl=truth.transl.double().numpy())
    geo = grasp_geometry(grasps, hand)
    field = encode(geo["obj_points"], geo["verts"], vertex_normals(geo["verts"], hand.faces), geo["anchors"])
    return grasps, truth, field


def test_placement_recovers_a_flat_hand_from_its_own_field(openhand):
    """The CHOIR of a flat hand turned about a sphere: ``place_on_field`` (mirror sides chosen jointly, several
    hypotheses ranked by the field loss) must put the anchors back within 0.5 mm of the truth; the closed-form
    placement it replaces (each anchor's side picked alone) ends more than 10 mm off on the same fields."""
    from contactkit.diffusion.fitting import initial_params_from_field
    from contactkit.diffusion.synthesis import place_on_field

    grasps, truth, field = _turned_flat_grasps(openhand)
    objects = objects_from_grasps(grasps)
    want = anchors_of(openhand, truth)
    placed = place_on_field(openhand, field, objects)
    err = (anchors_of(openhand, placed) - want).norm(dim=-1).mean(-1) * 1e3
    old = (anchors_of(openhand, initial_params_from_field(openhand, field)) - want).norm(dim=-1).mean(-1) * 1e3
    assert (err < 0.5).all(), err
    assert (old > 10.0).all(), old
    assert torch.equal(placed.betas, torch.zeros_like(placed.betas))


def test_placement_is_seeded_and_checks_its_arguments(openhand):
    from contactkit.diffusion.synthesis import place_on_field

    grasps, _, field = _turned_flat_grasps(openhand)
    objects = objects_from_grasps(grasps)
    a = place_on_field(openhand, field, objects, rotations=2, seed=3)
    b = place_on_field(openhand, field, objects, rotations=2, seed=3)
    assert torch.equal(a.global_orient, b.global_orient) and torch.equal(a.transl, b.transl)
    with pytest.raises(ContactkitError, match="rotations"):
        place_on_field(openhand, field, objects, rotations=-1)
    assert np.isfinite(a.transl.numpy()).all()

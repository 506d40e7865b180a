"""Named refinement methods: each is a list of stages, a stage = weighted energy terms + optimiser settings.

- ``contactopt`` — ContactOpt (paper 000, Sec. 3.2-3.3): hand and object DiffContact losses (missing contact
  x3), penetration beyond 2 mm; Adam lr 0.01, 250 iterations, PCA(15) pose update, 4 restarts.
- ``obman`` — ObMan contact loss (paper 001, Sec. 3.3): repulsion (r = 2 cm) + attraction of the contact zones
  (a = 1 cm), lambda_R = 0.5; with a reference grasp (oracle) plus ObMan's supervised hand loss L_V + L_J on
  root-relative vertices and keypoints (its fine-tuning objective L_Hand + mu_C L_contact, Sec. 3.1 and 3.3),
  otherwise plus a small offset prior (contactkit); Adam lr 0.01, 200 iterations.
- ``cpf`` — CPF / GeO (paper 004, Sec. 4, 5.3, Supp. D.1): attractive springs (cosine elasticity, s = 20 mm),
  repulsive springs (k = 1e-3), A-MANO anatomy, offset, and (contactkit) ContactOpt's penetration beyond 2 mm on
  the energy's scale plus the object's points inside the hand (``contact.hand_interior``, for objects thinner
  than a finger); Adam lr 1e-2 (the finger articulation at 0.3 of it, contactkit), 400 iterations, plateau of
  20, hand only; then (contactkit) a "settle" stage of 100 iterations at lr 2e-3 on the same energy with
  penetration tolerated to 0.5 mm instead of 2 mm.
- ``cpf_object`` — as ``cpf``'s GeO stage with the object's pose optimised too (GeO's hand + object setting).
- ``choir`` — CHOIR two-stage TTO (paper 002, Sec. 3.3): stage 1 anchor distances (1000), ||beta|| (1e-4),
  ||theta - theta0|| (1e-8); stage 2 Gaussian-weighted contact (10), penetration (1000), rigid prior (0.5),
  ||beta|| (1e-4); Adam, 300 + 100 iterations.
- ``affinity`` — physical affinity (paper 003, Sec. 3.3): diversity of contact directions (N_c = 10, eta = 0.2)
  + penetration; in the wild + a pull of the keypoints onto the object + A-MANO anatomy + an offset prior to the
  input (paper 003 uses the loss as a regulariser of an estimator's output), with a reference + supervised
  keypoints instead; Adam lr 0.01, 200 iterations.

Targets (:class:`contactkit.targets.ContactTargets`, resolved by :func:`contactkit.refine.targets.resolve_targets`):
in the wild, ``contactopt`` gets DeepContact's two contact maps, ``cpf`` PiCR's springs, ``obman`` the contact
zones from grasp statistics (``targets.contact_zones``), ``affinity`` nothing, ``choir`` a learned CHOIR field
(``targets.choir``). With a reference grasp (oracle), ``contactopt`` gets the contact maps measured on it, ``cpf``
the springs measured on its anchors and vertices, ``choir`` the CHOIR field encoded from it, ``affinity`` its
keypoints (the supervised part of paper 003's objective), and ``obman`` its zones restricted to those touching the
reference plus its root-relative vertices and keypoints (the supervised part of paper 001's objective;
root-relative, so the hand's placement comes from the contact loss alone).

Weights that the papers do not give (ContactOpt's lambda_O and lambda_pen, the offset weights, the gradient
scales per parameter group) are contactkit's and are marked "contactkit" below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from contactkit.contact.affinity import AffinityTerm, KeypointContactTerm, KeypointTerm, box_corners
from contactkit.contact.choir import (
    ChoirAnchorTerm,
    ChoirContactTerm,
    ParamPriorTerm,
    RigidPriorTerm,
    encode,
)
from contactkit.contact.cpf import (
    AnatomyTerm,
    AttractiveSpringTerm,
    OffsetTerm,
    RepulsiveSpringTerm,
    oracle_springs,
)
from contactkit.contact.diffcontact import C_PEN, HandContactTerm, ObjectContactTerm, SDFPenetrationTerm
from contactkit.contact.hand_interior import ObjectInHandTerm
from contactkit.contact.obman import (
    ATTRACTION_DISTANCE,
    AttractionTerm,
    HandSupervisionTerm,
    RepulsionTerm,
    zone_mask,
)
from contactkit.contact.terms import EnergyTerm
from contactkit.errors import ContactkitError
from contactkit.refine.refiner import HandLike, RefinerSettings
from contactkit.targets import ContactTargets, HandParamsInit, ObjectBatch

__all__ = ["METHODS", "MethodContext", "MethodSpec", "StageSpec", "get_method", "list_methods"]


@dataclass
class MethodContext:
    """Everything a stage needs to build its terms.

    Attributes:
        hand: the hand model.
        init: the parameters the stage starts from (N0 samples).
        init_verts: (N0, V, 3) hand vertices at ``init``, world frame.
        objects: the objects of the batch.
        targets: the targets.
        first_init: the parameters before the first stage (the noisy input).
    """

    hand: HandLike
    init: HandParamsInit
    init_verts: Tensor
    objects: ObjectBatch
    targets: ContactTargets
    first_init: HandParamsInit


@dataclass
class StageSpec:
    """One optimisation stage: ``build(ctx) -> terms`` and its settings."""

    name: str
    build: Callable[[MethodContext], list[EnergyTerm]]
    settings: RefinerSettings


@dataclass
class MethodSpec:
    """A named method: stages run in order, each starting where the previous stopped."""

    name: str
    source: str
    stages: list[StageSpec]
    needs_sdf: bool = True
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def with_settings(self, **changes: Any) -> MethodSpec:
        """A copy whose every stage's settings get ``changes`` (``iterations`` scales each stage's count
        proportionally to the first stage's)."""
        stages = []
        base_iters = self.stages[0].settings.iterations or 1
        for st in self.stages:
            ch = dict(changes)
            if "iterations" in ch and len(self.stages) > 1:
                ch["iterations"] = max(1, round(ch["iterations"] * st.settings.iterations / base_iters))
            stages.append(StageSpec(st.name, st.build, st.settings.replace(**ch)))
        return MethodSpec(self.name, self.source, stages, self.needs_sdf, self.description, dict(self.extra))


# ---------------------------------------------------------------------------------------------------------------
# term builders


def _contactopt_terms(ctx: MethodContext) -> list[EnergyTerm]:
    t = ctx.targets
    return [
        HandContactTerm(t.require("hand_contact", "contactopt"), weight=1.0),
        ObjectContactTerm(t.require("object_contact", "contactopt"), weight=1.0),  # lambda_O: contactkit
        SDFPenetrationTerm(weight=2.0),  # lambda_pen: contactkit (sum of metres)
    ]


def _obman_zones(ctx: MethodContext) -> Tensor:
    ann = getattr(ctx.hand, "annotations", None)
    if ann is None and ctx.targets.contact_zones is None:
        raise ContactkitError("method 'obman' needs contact zones (targets.contact_zones or hand annotations)")
    num_verts = ctx.init_verts.shape[1]
    zones = ctx.targets.contact_zones
    if zones is None:
        zones = zone_mask(getattr(ann, "contact_zones", {}), num_verts)
    zones = zones.to(ctx.init_verts.device)
    if ctx.targets.uses_reference and ctx.targets.hand_contact is not None:
        touching = ctx.targets.hand_contact >= 0.5  # (N0, V)
        per_sample = zones.unsqueeze(0) & touching.unsqueeze(1)
        active = per_sample.any(-1, keepdim=True)
        zones = torch.where(active, zones.unsqueeze(0).expand_as(per_sample), per_sample)
    return zones


def _obman_build(ctx: MethodContext, attraction_m: float) -> list[EnergyTerm]:
    zones = _obman_zones(ctx)
    lambda_r = 0.5
    t = ctx.targets
    if t.ref_verts is None or t.ref_keypoints is None:
        # in the wild: the input's own root-relative pose holds the articulation (ObMan's L_V + L_J with the
        # input as reference, contactkit) and a weak offset the placement, which is left mostly to the contact
        # loss, whose attraction reaches ``attraction_m`` (contactkit's capture stage: 5 cm, then the paper's 1 cm)
        with torch.no_grad():
            p = ctx.first_init
            first = ctx.hand(p.global_orient, p.hand_pose, p.betas if ctx.hand.num_betas > 0 else None, p.transl)
        return [
            RepulsionTerm(weight=lambda_r), AttractionTerm(zones, weight=1.0 - lambda_r, a=attraction_m),
            HandSupervisionTerm(first.vertices.detach(), first.keypoints.detach(), weight=OBMAN_INPUT_POSE_WEIGHT,
                                name="input_pose"),
            OffsetTerm(first.vertices.detach(), weight=OBMAN_OFFSET_WEIGHT),
        ]
    # oracle: ObMan's fine-tuning objective L_Hand + mu_C L_contact, the reference supervising L_Hand (no offset
    # prior: it would hold the hand's placement, which only the contact loss can correct); the paper's a = 1 cm
    return [
        RepulsionTerm(weight=lambda_r), AttractionTerm(zones, weight=1.0 - lambda_r),
        HandSupervisionTerm(t.ref_verts, t.ref_keypoints, weight=OBMAN_SUPERVISION_WEIGHT),
    ]


def _obman_capture(ctx: MethodContext) -> list[EnergyTerm]:
    return _obman_build(ctx, OBMAN_CAPTURE_DISTANCE_M)


def _obman_terms(ctx: MethodContext) -> list[EnergyTerm]:
    return _obman_build(ctx, ATTRACTION_DISTANCE)


def _cpf_terms(ctx: MethodContext) -> list[EnergyTerm]:
    return _cpf_build(ctx, C_PEN, CPF_OFFSET_WEIGHT)


def _cpf_settle_terms(ctx: MethodContext) -> list[EnergyTerm]:
    return _cpf_build(ctx, CPF_SETTLE_DEPTH_M, CPF_OFFSET_WEIGHT)


def _cpf_object_terms(ctx: MethodContext) -> list[EnergyTerm]:
    return _cpf_build(ctx, C_PEN, CPF_OBJECT_OFFSET_WEIGHT)


def _cpf_build(ctx: MethodContext, depth: float, offset_weight: float) -> list[EnergyTerm]:
    """GeO's energy; ``depth`` (metres) is the penetration both penetration terms tolerate, ``offset_weight`` the
    weight of the mean squared vertex offset (mm^2) from the stage's start."""
    from contactkit.hands.anatomy import anatomy_cost

    t = ctx.targets
    k_atr = t.k_atr
    if k_atr is None:
        ref_anchors = t.require("ref_anchors", "cpf")
        ref_verts = t.require("ref_verts", "cpf")
        ann = getattr(ctx.hand, "annotations", None)
        if ann is None:
            raise ContactkitError("method 'cpf' needs a hand model with annotations (anchor_region, region_of_vertex)")
        obj = ctx.objects
        dtype = ref_verts.dtype
        pts = obj.points.to(dtype) @ obj.rotation.to(dtype).transpose(1, 2) + obj.translation.to(dtype).unsqueeze(1)
        k_atr = oracle_springs(
            ref_anchors, ref_verts, pts,
            torch.as_tensor(ann.anchor_region, dtype=torch.long),
            torch.as_tensor(ann.region_of_vertex, dtype=torch.long),
        )
    hand = ctx.hand

    def anatomy(pose: Tensor) -> Tensor:
        return anatomy_cost(hand, pose)

    return [
        AttractiveSpringTerm(k_atr, weight=1.0),
        RepulsiveSpringTerm(weight=1.0),
        AnatomyTerm(anatomy, weight=1.0),
        OffsetTerm(ctx.init_verts, weight=offset_weight),  # contactkit weight
        # contactkit: the springs alone leave deep penetration; thin objects can sit inside the hand
        SDFPenetrationTerm(weight=CPF_PENETRATION_WEIGHT, depth=depth),
        ObjectInHandTerm(hand.faces, weight=CPF_OBJECT_IN_HAND_WEIGHT, depth=depth),
    ]


def _choir_field(ctx: MethodContext) -> Any:
    from contactkit.geometry.normals import vertex_normals

    t = ctx.targets
    if t.choir is not None:  # a learned CHOIR field (contract B), already in the object frames
        return t.choir
    ref_verts = t.require("ref_verts", "choir")
    ref_anchors = t.require("ref_anchors", "choir")
    obj = ctx.objects
    dtype = ref_verts.dtype
    rot, tr = obj.rotation.to(dtype), obj.translation.to(dtype)
    to_obj = lambda x: (x - tr.unsqueeze(1)) @ rot  # noqa: E731
    verts_o = to_obj(ref_verts)
    normals = vertex_normals(verts_o, ctx.hand.faces)
    return encode(obj.points.to(dtype), verts_o, normals, to_obj(ref_anchors))


def _choir_stage1(ctx: MethodContext) -> list[EnergyTerm]:
    fld = _choir_field(ctx)
    return [
        ChoirAnchorTerm(fld, weight=1000.0),
        ParamPriorTerm("betas", weight=1e-4, to_zero=True, name="shape_prior"),
        ParamPriorTerm("hand_pose", weight=1e-8, name="pose_prior"),
    ]


def _choir_stage2(ctx: MethodContext) -> list[EnergyTerm]:
    fld = _choir_field(ctx)
    return [
        ChoirContactTerm(fld, weight=10.0),
        SDFPenetrationTerm(weight=1000.0, name="penetration"),  # ContactOpt's c_pen = 2 mm ("following [16]")
        RigidPriorTerm(weight=0.5),
        ParamPriorTerm("betas", weight=1e-4, to_zero=True, name="shape_prior"),
    ]


def _affinity_terms(ctx: MethodContext) -> list[EnergyTerm]:
    t = ctx.targets
    corners = box_corners(ctx.objects.points)
    if t.ref_keypoints is not None:  # oracle: paper 003's supervised 3D keypoint loss beside the affinity loss
        return [
            AffinityTerm(corners, weight=1.0),
            KeypointTerm(t.ref_keypoints, weight=1e-2),  # contactkit: mm^2 scale
            SDFPenetrationTerm(weight=2.0),
        ]
    # in the wild: the affinity loss regularises the estimator's output (paper 003), with penetration, A-MANO
    # anatomy and a prior holding the hand near its input in place of the keypoint supervision, and a pull of the
    # keypoints onto the object (the affinity loss alone has no gradient for a hand centimetres off)
    from contactkit.hands.anatomy import anatomy_cost

    hand = ctx.hand

    def anatomy(pose: Tensor) -> Tensor:
        return anatomy_cost(hand, pose)

    return [
        AffinityTerm(corners, weight=AFFINITY_WEIGHT),
        KeypointContactTerm(weight=AFFINITY_CONTACT_WEIGHT),
        SDFPenetrationTerm(weight=AFFINITY_PENETRATION_WEIGHT),
        AnatomyTerm(anatomy, weight=1.0),
        OffsetTerm(ctx.init_verts, weight=AFFINITY_OFFSET_WEIGHT),  # contactkit: stay near the input
    ]


#: in-the-wild obman (contactkit): weights of the input's root-relative pose and of its vertex offsets (both mm^2;
#: the offset is kept weak so the contact loss can move the hand's placement) and the capture stage's attraction
#: distance (metres)
OBMAN_INPUT_POSE_WEIGHT = 1e-4
OBMAN_OFFSET_WEIGHT = 2e-6
OBMAN_CAPTURE_DISTANCE_M = 0.05
#: weight of L_Hand (mm^2) against L_contact (metres); ObMan's mu_C = 10 weighs its own units (contactkit)
OBMAN_SUPERVISION_WEIGHT = 1e-2
#: offset weights (contactkit; mm^2): cpf's was swept on the tuning grasps with its settle stage (0.3 / 0.1 / 0.03 /
#: 0.01 / 0.003, docs/refinement.md); cpf_object keeps the 0.1 it was run with before (not re-tuned)
CPF_OFFSET_WEIGHT = 0.01
CPF_OBJECT_OFFSET_WEIGHT = 0.1
#: cpf's GeO stage moves the finger articulation at this fraction of the learning rate (contactkit): PiCR's springs
#: place the hand better than they articulate it; swept on the tuning grasps (0 / 0.1 / 0.3 / 1, docs/refinement.md)
CPF_HAND_POSE_LR_SCALE = 0.3
#: cpf's penetration weight (contactkit): the penetration beyond 2 mm is a sum of metres, the springs' energy a sum
#: of mm^2 over hundreds of object points (~1e5 at convergence), so a weight of ContactOpt's scale (2) is ~1e-5 of
#: the objective and moves nothing; at 1e6 the intersection volume falls to ~2 cm^3 (docs/refinement.md)
CPF_PENETRATION_WEIGHT = 1e6
#: cpf's object-in-hand weight (contactkit; a sum of metres like the penetration): swept on the tuning grasps only
#: (bm_refine_quality.py OBJECT_SETS["tuning"]; docs/refinement.md)
CPF_OBJECT_IN_HAND_WEIGHT = 1e5
#: penetration (metres) cpf's closing "settle" stage tolerates (contactkit): GeO runs with ContactOpt's 2 mm, then
#: 100 iterations at lr 2e-3 continue the same energy with 0.5 mm, which takes out most of the intersection
#: volume the 2 mm leave in wide contact patches; chosen on the tuning grasps only (docs/refinement.md)
CPF_SETTLE_DEPTH_M = 5e-4
#: in-the-wild affinity weights (contactkit): affinity is in [-1, 1], the keypoint contact a mean of metres,
#: penetration a sum of metres
AFFINITY_WEIGHT = 1e-2
AFFINITY_CONTACT_WEIGHT = 300.0
AFFINITY_PENETRATION_WEIGHT = 300.0
AFFINITY_OFFSET_WEIGHT = 1e-3

_POSE_SCALE = {"global_orient": 1.0, "hand_pose": 1.0, "betas": 1.0, "transl": 0.1,
               "object_rotation": 1.0, "object_translation": 0.1}
_GEO_SETTINGS = RefinerSettings(
    iterations=400, lr=1e-2, lr_scale=dict(_POSE_SCALE), plateau_patience=20, plateau_factor=0.5,
    early_stop_patience=60,
)

METHODS: dict[str, MethodSpec] = {
    "contactopt": MethodSpec(
        "contactopt",
        "Grady et al., ContactOpt, CVPR 2021 (paper 000), Sec. 3.2-3.3: Adam lr 0.01, 250 iterations, restarts",
        [StageSpec("contact", _contactopt_terms, RefinerSettings(
            iterations=250, lr=0.01, lr_scale=dict(_POSE_SCALE), pose_space="pca", pca_components=15,
            restarts=4, restart_transl_sigma=0.01, restart_rot_sigma=math.radians(10.0), knn_refresh=5,
        ))],
        description="DiffContact capsules, asymmetric contact loss (x3 for missing contact), penetration > 2 mm",
    ),
    "obman": MethodSpec(
        "obman",
        "Hasson et al., ObMan, CVPR 2019 (paper 001), Sec. 3.3, lambda_R = 0.5 (Table 3)",
        [
            StageSpec("capture", _obman_capture, RefinerSettings(
                iterations=100, lr=0.01, lr_scale=dict(_POSE_SCALE), early_stop_patience=40,
            )),
            StageSpec("contact", _obman_terms, RefinerSettings(
                iterations=200, lr=0.01, lr_scale=dict(_POSE_SCALE), early_stop_patience=40,
            )),
        ],
        description="repulsion r tanh(d/r), r = 2 cm; attraction of contact zones a tanh(d/a), a = 1 cm (in the "
        "wild: a = 5 cm in a first capture stage)",
    ),
    "cpf": MethodSpec(
        "cpf",
        "Yang et al., CPF, ICCV 2021 (paper 004), Sec. 4, 5.3 and Supp. D.1: GeO, 400 it, lr 1e-2, plateau 20",
        [
            StageSpec("geo", _cpf_terms, _GEO_SETTINGS.replace(
                lr_scale={**_POSE_SCALE, "hand_pose": CPF_HAND_POSE_LR_SCALE},
            )),
            StageSpec("settle", _cpf_settle_terms, _GEO_SETTINGS.replace(iterations=100, lr=2e-3)),
        ],
        description="attractive springs (cosine elasticity, s = 20 mm), repulsive springs (k = 1e-3), A-MANO; "
        "then the same energy with penetration tolerated to 0.5 mm only (settle, contactkit)",
    ),
    "cpf_object": MethodSpec(
        "cpf_object",
        "Yang et al., CPF (paper 004), GeO hand + object setting",
        [StageSpec("geo", _cpf_object_terms, _GEO_SETTINGS.replace(
            optimize=("global_orient", "hand_pose", "transl", "object_rotation", "object_translation"),
        ))],
        description="as cpf's GeO stage (no settle stage), with the object's 6D pose optimised too",
    ),
    "choir": MethodSpec(
        "choir",
        "Morales et al., CHOIR / JointDiffusion (paper 002), Sec. 3.3: two-stage TTO",
        [
            StageSpec("pose_shape", _choir_stage1, RefinerSettings(
                iterations=300, lr=2e-2, lr_scale=dict(_POSE_SCALE), plateau_patience=10,
                optimize=("global_orient", "hand_pose", "betas", "transl"),
            )),
            StageSpec("contact", _choir_stage2, RefinerSettings(
                iterations=100, lr=2e-3, lr_scale=dict(_POSE_SCALE),
                optimize=("global_orient", "hand_pose", "betas", "transl"),
            )),
        ],
        description="stage 1: anchor distances to the CHOIR field; stage 2: Gaussian-weighted contact fitting",
    ),
    "affinity": MethodSpec(
        "affinity",
        "Zhuang & Mu, ICMR 2021 (paper 003), Sec. 3.3: N_c = 10, eta = 0.2",
        [StageSpec("affinity", _affinity_terms, RefinerSettings(
            iterations=200, lr=0.01, lr_scale=dict(_POSE_SCALE), early_stop_patience=40,
        ))],
        description="diversity of contact directions around the box's central axis + supervised keypoints",
    ),
}


def list_methods() -> list[str]:
    """Names of the registered methods."""
    return sorted(METHODS)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` called ``name``; unknown names raise listing the valid ones."""
    if name not in METHODS:
        raise ContactkitError(f"unknown refinement method {name!r}; valid: {', '.join(list_methods())}")
    return METHODS[name]

"""Fit hands to sampled CHOIR fields: paper 002's two-stage test-time optimisation (Sec. 3.3).

- Stage 1 (pose and shape): ``1000 L_rec(anchors vs d_H) + 1e-4 ||beta|| + 1e-8 ||theta - theta_init||``
  (:class:`~contactkit.contact.choir.ChoirAnchorTerm`), the ``choir`` preset's stage-1 settings.
- Stage 2 (dense contact): ``10 L_rec`` of Eq. 10 — Gaussian-weighted squared distances of every vertex to its 5
  nearest object points (:class:`~contactkit.contact.choir_fit.ChoirNearestPointsTerm`) — ``+ 1000`` penetration
  (ContactOpt's, as in the preset) ``+ 0.5`` rigid pose prior to the stage-1 result (Eq. 11) ``+ 1e-4 ||beta||``;
  the preset's stage-2 settings.

:func:`refine_in_the_wild` refines a noisy grasp set with a refinement model (no ground truth is read), with
contactkit's additions: an input-anchor prior and the penetration term in stage 1, and exact per-stage iteration
counts (:data:`FIT_ITERATIONS`). Under Adam, stage 2's penetration weight alone changes nothing once the term
dominates the gradient (it does by two to three orders of magnitude on a penetrating hand): the step size and the
number of steps decide how far the hand can move out;
:func:`initial_params_from_field` places a hand for synthesis, where no noisy hand exists: the anchors decoded in
closed form from ``d_H`` (:func:`~contactkit.contact.choir.anchors_from_distances`) give the wrist's rotation and
translation (Kabsch alignment of the flat hand's anchors); :func:`rigid_init_from_field` places a given hand
rigidly on a field, choosing each anchor's mirror side jointly (synthesis's placement, the benchmark's ORACLE
rows).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.choir import (
    ChoirAnchorTerm,
    ChoirField,
    ParamPriorTerm,
    RigidPriorTerm,
    anchor_distance_loss,
    anchors_from_distances,
)
from contactkit.contact.choir_fit import ChoirNearestPointsTerm, ContactAnchorSurfaceTerm, InputAnchorPriorTerm
from contactkit.contact.diffcontact import C_PEN, SDFPenetrationTerm
from contactkit.contact.hand_interior import ObjectInHandTerm
from contactkit.errors import ContactkitError
from contactkit.geometry.rotations import axis_angle_to_rotmat, rotmat_to_axis_angle
from contactkit.refine.methods import MethodContext, MethodSpec, StageSpec, get_method
from contactkit.refine.refiner import HandParamsInit, ObjectBatch, RefineResult

__all__ = ["anchors_of", "choir_field_method", "fit_fields", "initial_params_from_field", "refine_in_the_wild",
           "rigid_init_from_field"]


def choir_field_method(field: ChoirField, *, input_weight: float = 0.0, stage1_penetration: float = 0.0,
                       iterations: tuple[int, ...] | None = None, penetration_depth: float = C_PEN,
                       contact_anchor_weight: float = 0.0, stage2_lr: float | None = None,
                       object_in_hand: tuple[float, float] = (0.0, 0.0)) -> MethodSpec:
    """The two-stage CHOIR fit bound to ``field`` (object frame, one row per sample), with the ``choir`` preset's
    optimiser settings; ``input_weight > 0`` adds :class:`InputAnchorPriorTerm` (anchors of the parameters the
    fit starts from, i.e. the input hand) to stage 1 with that weight, ``stage1_penetration > 0`` stage 2's
    penetration term (:class:`~contactkit.contact.diffcontact.SDFPenetrationTerm`) with that weight. ``iterations``
    sets the (stage 1, stage 2) Adam steps exactly (None: the preset's 300 + 100). ``penetration_depth`` (metres)
    is the depth both stages' penetration terms tolerate (ContactOpt's 2 mm, the paper's, by default);
    ``contact_anchor_weight > 0`` adds :class:`ContactAnchorSurfaceTerm` (the regions
    of the field's in-contact anchors brought to the surface) to stage 2. Both are contactkit's options.
    ``stage2_lr`` replaces stage 2's base Adam learning rate (None: the preset's 2e-3; the per-parameter scales
    stay), so that stage 2 can move a penetrating hand further in the same steps. ``object_in_hand`` are the
    (stage 1, stage 2) weights of :class:`~contactkit.contact.hand_interior.ObjectInHandTerm` (object points
    inside the hand, the intersection the vertex penetration term cannot see; 0 leaves the term out), with the
    penetration terms' tolerance ``penetration_depth``."""
    if penetration_depth < 0 or contact_anchor_weight < 0 or len(object_in_hand) != 2 or min(object_in_hand) < 0:
        raise ContactkitError(f"penetration_depth, contact_anchor_weight and both object_in_hand weights must be "
                              f">= 0, got {penetration_depth}, {contact_anchor_weight}, {object_in_hand}")
    if stage2_lr is not None and not stage2_lr > 0:
        raise ContactkitError(f"stage2_lr must be > 0 (or None for the preset's), got {stage2_lr}")
    preset = get_method("choir")
    s1, s2 = preset.stages[0].settings, preset.stages[1].settings
    if iterations is not None:
        if len(iterations) != 2 or min(iterations) < 0:
            raise ContactkitError(f"iterations must be two counts >= 0 (stage 1, stage 2), got {iterations}")
        s1, s2 = s1.replace(iterations=int(iterations[0])), s2.replace(iterations=int(iterations[1]))
    if stage2_lr is not None:
        s2 = s2.replace(lr=float(stage2_lr))

    def stage1(ctx: MethodContext) -> list[Any]:
        terms = [ChoirAnchorTerm(field, weight=1000.0),
                 ParamPriorTerm("betas", weight=1e-4, to_zero=True, name="shape_prior"),
                 ParamPriorTerm("hand_pose", weight=1e-8, name="pose_prior")]
        if input_weight > 0:
            terms.append(InputAnchorPriorTerm(anchors_of(ctx.hand, ctx.first_init), weight=input_weight))
        if stage1_penetration > 0:
            terms.append(SDFPenetrationTerm(weight=stage1_penetration, depth=penetration_depth, name="penetration"))
        if object_in_hand[0] > 0:
            terms.append(ObjectInHandTerm(ctx.hand.faces, weight=object_in_hand[0], depth=penetration_depth))
        return terms

    def stage2(ctx: MethodContext) -> list[Any]:
        terms = [ChoirNearestPointsTerm(field, weight=10.0, k=5),
                 SDFPenetrationTerm(weight=1000.0, depth=penetration_depth, name="penetration"),
                 RigidPriorTerm(weight=0.5),
                 ParamPriorTerm("betas", weight=1e-4, to_zero=True, name="shape_prior")]
        if contact_anchor_weight > 0:
            terms.append(ContactAnchorSurfaceTerm(field, weight=contact_anchor_weight))
        if object_in_hand[1] > 0:
            terms.append(ObjectInHandTerm(ctx.hand.faces, weight=object_in_hand[1], depth=penetration_depth))
        return terms

    return MethodSpec(
        "choir", "Morales et al., CHOIR / JointDiffusion (paper 002), Sec. 3.3: two-stage TTO on a sampled CHOIR",
        [StageSpec("pose_shape", stage1, s1), StageSpec("contact", stage2, s2)],
        description="stage 1: anchor distances to the sampled CHOIR; stage 2: Eq. 10 Gaussian-weighted 5-NN distances",
    )


def anchors_of(hand: Any, p: HandParamsInit) -> Tensor:
    """(B, 32, 3) anchors of the hand with parameters ``p`` (world frame, metres), without gradient."""
    with torch.no_grad():
        out = hand(p.global_orient, p.hand_pose, p.betas if hand.num_betas else None, p.transl)
        return hand.anchors(out.vertices).detach()


def fit_fields(hand: Any, init: HandParamsInit, objects: ObjectBatch, field: ChoirField, *, seed: int = 0,
               input_weight: float = 0.0, stage1_penetration: float = 0.0,
               iterations: int | tuple[int, int] | None = None, penetration_depth: float = C_PEN,
               contact_anchor_weight: float = 0.0, stage2_lr: float | None = None,
               object_in_hand: tuple[float, float] = (0.0, 0.0), **settings: Any) -> RefineResult:
    """Run the two-stage fit of ``field`` from ``init`` (one batch); ``input_weight``, ``stage1_penetration``,
    ``penetration_depth``, ``contact_anchor_weight``, ``stage2_lr`` and ``object_in_hand`` as in
    :func:`choir_field_method`;
    ``iterations``: Adam steps of
    each stage (one count for both, or a (stage 1, stage 2) pair; None: the preset's 300 + 100); ``settings``
    override both stages' other :class:`~contactkit.refine.refiner.RefinerSettings`."""
    from contactkit.refine.api import run_method
    from contactkit.refine.targets import ContactTargets

    pair = (None if iterations is None else tuple(int(i) for i in iterations)
            if isinstance(iterations, tuple | list) else (int(iterations), int(iterations)))
    spec = choir_field_method(field, input_weight=input_weight, stage1_penetration=stage1_penetration,
                              iterations=pair, penetration_depth=penetration_depth,
                              contact_anchor_weight=contact_anchor_weight, stage2_lr=stage2_lr,
                              object_in_hand=object_in_hand)
    return run_method(hand, init, objects, spec, ContactTargets(), seed=seed, **settings)


def _kabsch(src: Tensor, dst: Tensor) -> Tensor:
    """Rotations (B, 3, 3) minimising ``||R (src - mean) - (dst - mean)||`` for point sets (B, N, 3)."""
    a = src - src.mean(1, keepdim=True)
    b = dst - dst.mean(1, keepdim=True)
    u, _, vh = torch.linalg.svd(a.transpose(1, 2) @ b)
    d = torch.sign(torch.linalg.det(vh.transpose(1, 2) @ u.transpose(1, 2)))
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return vh.transpose(1, 2) @ fix @ u.transpose(1, 2)


def initial_params_from_field(hand: Any, field: ChoirField) -> HandParamsInit:
    """Flat-hand parameters whose anchors best match (rigidly) the anchors decoded from ``field``'s ``d_H``
    (object frame = world frame here, as synthesis places the object at the origin)."""
    b = field.grid.shape[0]
    dtype = field.grid.dtype
    target = anchors_from_distances(field.grid, field.anchor_sq_dist, field.assignment)
    pose = torch.zeros(b, 45, dtype=dtype)
    betas = torch.zeros(b, hand.num_betas, dtype=dtype)
    with torch.no_grad():
        zero = torch.zeros(b, 3, dtype=dtype)
        rest = hand.anchors(hand(zero, pose, betas if hand.num_betas else None, zero).vertices)
        rot = _kabsch(rest.to(dtype), target)
        orient = rotmat_to_axis_angle(rot)
        posed = hand.anchors(hand(orient, pose, betas if hand.num_betas else None, zero).vertices)
        transl = target.mean(1) - posed.mean(1)
    return HandParamsInit(orient, pose, betas, transl)


def rigid_init_from_field(hand: Any, init: HandParamsInit, objects: ObjectBatch, field: ChoirField, *,
                          rounds: int = 10, offsets_m: tuple[float, ...] = (-0.06, -0.03, 0.0, 0.03, 0.06)
                          ) -> HandParamsInit:
    """Move the hand of ``init`` rigidly (finger pose and shape kept) so that its anchors agree with ``field``.

    ``d_H`` fixes each anchor only up to a mirror image: the ordered assignment on the regular grid puts an
    anchor's basis points in one plane, so its distances cannot tell the two sides of that plane apart
    (:func:`~contactkit.contact.choir.anchors_from_distances`). A fit that starts tens of millimetres off can
    settle with some anchors on the wrong side. Here the sides are chosen jointly for the rigid hand, ICP-style:
    decode every anchor on the side nearer the current hand's anchor, align the hand's anchors to the decoded ones
    (Kabsch), repeat ``rounds`` times; the start is the input hand shifted by each of ``offsets_m`` along the
    planes' common normal (the grid's first axis), and the hypothesis whose anchors best reproduce ``d_H``
    (:func:`~contactkit.contact.choir.anchor_distance_loss`) is kept per grasp. With the shuffled assignment
    (``field.assignment`` of a model trained with ``--assignment shuffled``) the decode is unique: every round and
    start then aligns the hand to the same decoded anchors (the search is redundant, its result the same).

    Used by synthesis (:func:`~contactkit.diffusion.synthesis.place_on_field`, from several starts per sampled
    field) and by the benchmark's ORACLE rows (the CHOIR encoded from the ground truth: stage 1 from this
    placement recovers the pose the fit from the noisy start misses). Not used by refinement in the wild: on the
    sampled (mean-of-16)
    fields, whose decoded anchors are 57-68 mm from the truth (the input's: 91 mm), the fit from this placement
    ended 17-29 mm (MPJPE) behind the fit from the input on validation, and so did a trimmed placement, a
    per-draw medoid placement and a per-grasp choice of the start (docs/jointdiffusion.md, "Session 10"; the
    ``rigid_init`` option of ``fit_fields`` and ``refine_in_the_wild`` is in commit 753df20, the round-2
    ``placement`` options in commit 467089b).

    Args:
        init: (B) hand parameters; world frame, radians and metres.
        objects: the grasps' objects (their poses map the world frame to ``field``'s object frame).
        field: (B) CHOIR fields, object frame.

    Returns:
        the parameters of ``init`` with ``global_orient`` and ``transl`` replaced.
    """
    dtype = init.transl.dtype
    rot_o = objects.rotation.to(dtype)
    t_o = objects.translation.to(dtype)
    grid = field.grid.to(dtype)
    sq = field.anchor_sq_dist.to(dtype)
    with torch.no_grad():
        start = anchors_of(hand, init).to(dtype)  # (B, 32, 3) world frame
        src = (start - t_o.unsqueeze(1)) @ rot_o  # object frame
        normal = torch.zeros(3, dtype=dtype)
        normal[0] = 1.0
        best_loss = torch.full((src.shape[0],), float("inf"), dtype=dtype)
        best_r = torch.eye(3, dtype=dtype).expand(src.shape[0], 3, 3).clone()
        best_t = torch.zeros(src.shape[0], 3, dtype=dtype)
        for off in offsets_m:
            r = torch.eye(3, dtype=dtype).expand(src.shape[0], 3, 3).clone()
            t = off * normal.expand(src.shape[0], 3).clone()
            for _ in range(rounds):
                cur = src @ r.transpose(1, 2) + t.unsqueeze(1)
                target = anchors_from_distances(grid, sq, field.assignment, hint=cur)
                r = _kabsch(src, target)
                t = target.mean(1) - (src.mean(1, keepdim=True) @ r.transpose(1, 2)).squeeze(1)
            cur = src @ r.transpose(1, 2) + t.unsqueeze(1)
            loss = anchor_distance_loss(cur, grid, sq, field.assignment)
            better = loss < best_loss
            best_loss = torch.where(better, loss, best_loss)
            best_r = torch.where(better.view(-1, 1, 1), r, best_r)
            best_t = torch.where(better.view(-1, 1), t, best_t)
        # object-frame rigid motion (x -> R x + t) expressed in the world frame, applied to the wrist
        r_w = rot_o @ best_r @ rot_o.transpose(1, 2)
        t_w = (t_o - (t_o.unsqueeze(1) @ r_w.transpose(1, 2)).squeeze(1)
               + (best_t.unsqueeze(1) @ rot_o.transpose(1, 2)).squeeze(1))
        orient_r = r_w @ axis_angle_to_rotmat(init.global_orient)
        orient = rotmat_to_axis_angle(orient_r)
        # the wrist rotates about the hand's root joint, not the origin: match the moved anchors' centroid
        moved = anchors_of(hand, HandParamsInit(orient, init.hand_pose, init.betas, init.transl)).to(dtype)
        want = start @ r_w.transpose(1, 2) + t_w.unsqueeze(1)
        transl = init.transl + (want - moved).mean(1)
    return HandParamsInit(orient, init.hand_pose, init.betas, transl)


#: Stage-1 weight of :class:`InputAnchorPriorTerm` in refinement in the wild (chosen on validation objects; see
#: docs/jointdiffusion.md). The stage-1 data term is ~50 e^2 for a mean anchor error of e mm, so 3 trusts the input
#: hand's anchors about a sixteenth as much as the sampled CHOIR's. With the mean of 16 samples (session 6) 3 gave a
#: lower MPJPE than 0 or 10 (44 vs 48 and 49 mm); for a single sample 10 had been best.
INPUT_WEIGHT = 3.0
#: Largest mean anchor displacement (metres) from the input that a refinement may make: beyond it the sampled CHOIR
#: is rejected and the input kept. The ContactOpt protocol the refinement model is trained on (5 cm per axis, 15
#: degrees, 0.5 PCA units) displaces OpenHand's anchors by 91 mm on average, and 99 % of perturbations by less than
#: 0.18 m (1128 perturbed training grasps): a larger move cannot be undoing such noise.
MAX_SHIFT_M = 0.18
#: Adam iterations of (stage 1, stage 2) in refinement in the wild (the ``choir`` preset's are 300 + 100). The fit
#: starts from the input hand and is tied to it, so a short stage 1 suffices; the refiner's plateau stop ends most
#: stage 1s before 100 steps. 100 + 50 since session 14 (version-4 model, 148 validation inputs: hand contact F1 13.9
#: vs 11.1 % for 50 + 50, paired interval [+1.9, +3.9] points, at the same MPJPE and IV and CPU time; 50 + 100 gained
#: 1.1 points at twice the fit's time, 25 + 75 nothing; docs/jointdiffusion.md, "Session 14"). Until session 7 a
#: single count was scaled by the preset's 300 : 100, so "50 + 50" ran 50 + 17 and stage 2 (Adam at lr 2e-3, wrist
#: translation at a tenth of it) could move the wrist by 3.4 mm at most.
FIT_ITERATIONS = (100, 50)
#: Weight of the penetration term (stage 2's) added to stage 1 in refinement in the wild (contactkit's addition; 0 =
#: the paper's stage 1): the mean of 16 sampled CHOIRs places the hand inside the object (stage 1 alone: 43 cm3 of
#: intersection on validation objects), and stage 2's short push-out costs pose accuracy, so the fit is kept outside
#: while it follows the field. 1e4 in session 7, 1e5 (with no tolerance) since session 8; chosen on validation
#: objects (docs/jointdiffusion.md).
STAGE1_PENETRATION = 1e5
#: Penetration depth (metres) both stages' penetration terms tolerate in refinement in the wild: 0 since session 8
#: (contactkit's choice; ContactOpt's and the paper's is 2 mm, ``C_PEN``, which lets a hand the sampled field pulls
#: in rest 2 mm deep over its whole contact area). Chosen on validation objects (docs/jointdiffusion.md).
PENETRATION_DEPTH = 0.0
#: Stage-2 weight of :class:`ContactAnchorSurfaceTerm` in refinement in the wild (contactkit's addition; 0 = the
#: paper's stage 2): the sampled CHOIR's contact activity is right for 70 % of the anchors while its Gaussians are
#: 47 mm off and 1 mm wide, so Eq. 10 alone pulls nothing. Chosen on validation objects (docs/jointdiffusion.md).
CONTACT_ANCHOR_WEIGHT = 0.1


def refine_in_the_wild(
    grasps: Any,
    predictor: Any,
    *,
    hand: Any = None,
    seed: int = 0,
    batch_size: int = 64,
    num_points: int = 2048,
    input_weight: float = INPUT_WEIGHT,
    stage1_penetration: float = STAGE1_PENETRATION,
    max_shift_m: float | None = MAX_SHIFT_M,
    iterations: int | tuple[int, int] | None = FIT_ITERATIONS,
    penetration_depth: float = PENETRATION_DEPTH,
    contact_anchor_weight: float = CONTACT_ANCHOR_WEIGHT,
    **settings: Any,
) -> Any:
    """Refine noisy grasps without ground truth: one CHOIR sampled per grasp by ``predictor`` (a "noisy"-context
    :class:`~contactkit.diffusion.predictor.ChoirPredictor`), then the two-stage fit, starting from the noisy
    parameters. Returns a new ``GraspSet`` (refined parameters, hand vertices, loss traces, ``metadata[i]["refine"]``
    and ``attrs["refine"]`` naming the predictor).

    The input anchors the fit twice (no ground truth is read): stage 1 adds :class:`InputAnchorPriorTerm` with
    ``input_weight`` (0 = the paper's stage 1 alone), and a grasp whose fitted anchors moved more than
    ``max_shift_m`` on average from the input's (None = no check) keeps its input parameters, flagged
    ``metadata[i]["refine"]["choir_rejected"]`` with the shift in ``anchor_shift_mm``. ``stage1_penetration`` adds
    the penetration term to stage 1 (0 = the paper's stage 1). ``iterations``: Adam steps of each stage (one count
    for both, or a (stage 1, stage 2) pair; None: the ``choir`` preset's 300 + 100); ``penetration_depth`` and
    ``contact_anchor_weight`` as in :func:`choir_field_method`; ``settings`` go to :func:`fit_fields` (its
    ``stage2_lr`` and ``object_in_hand``, then other optimiser settings). ``object_in_hand=(3e3, 30)`` trades
    intersection for time: on 148 validation inputs it lowered IV from 9.9 to 5.3 cm³ at the same MPJPE and F1
    (paired intervals [−6.9, −2.5] cm³, [−0.5, +0.7] mm, [−1.0, +0.3] points) but took the fit from about 1.0 to
    1.45 CPU s per grasp, past the 2 s budget with sampling; ``(1e4, 100)``: 1.8 cm³, F1 −1.3 points
    (docs/jointdiffusion.md, "Session 14").
    """
    from contactkit.hands import load_hand
    from contactkit.targets import objects_from_grasps, subset_objects

    if hand is None:
        hand = load_hand(grasps.hand_model, grasps.side)
    n = len(grasps)
    if n == 0:
        raise ContactkitError("grasps is empty")
    if input_weight < 0 or stage1_penetration < 0 or (max_shift_m is not None and not max_shift_m > 0):
        raise ContactkitError(f"input_weight and stage1_penetration must be >= 0 and max_shift_m > 0 (or None), got "
                              f"{input_weight}, {stage1_penetration}, {max_shift_m}")
    t0 = time.perf_counter()
    targets = predictor.predict(grasps, hand)
    sample_s = time.perf_counter() - t0
    dtype = getattr(hand, "dtype", torch.float32)
    objects = objects_from_grasps(grasps, num_points=num_points, seed=seed, dtype=dtype)
    t = grasps.hand_tensors(dtype=dtype)
    init = HandParamsInit(t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    results: list[RefineResult] = []
    for s in range(0, n, batch_size):
        idx = torch.arange(s, min(n, s + batch_size))
        results.append(fit_fields(hand, init.subset(idx), subset_objects(objects, idx), targets.field.index(idx),
                                  seed=seed + s, input_weight=input_weight,
                                  stage1_penetration=stage1_penetration, iterations=iterations,
                                  penetration_depth=penetration_depth,
                                  contact_anchor_weight=contact_anchor_weight, **settings))
    cat = lambda name: torch.cat([getattr(r, name).detach() for r in results]).to(dtype)  # noqa: E731
    fitted = HandParamsInit(cat("global_orient"), cat("hand_pose"), cat("betas"), cat("transl"))
    shift = (anchors_of(hand, fitted) - anchors_of(hand, init)).norm(dim=-1).mean(-1).double().numpy()
    rejected = shift > max_shift_m if max_shift_m is not None else np.zeros(n, dtype=bool)
    return _assemble(grasps, hand, results, targets.source, sample_s, seed, dtype, shift * 1e3, rejected)


def _assemble(grasps: Any, hand: Any, results: list[RefineResult], source: str, sample_s: float, seed: int,
              dtype: torch.dtype, shift_mm: np.ndarray, rejected: np.ndarray) -> Any:
    cat = lambda name: torch.cat([getattr(r, name).detach() for r in results]).double().numpy()  # noqa: E731
    go, hp, be, tl = cat("global_orient"), cat("hand_pose"), cat("betas"), cat("transl")
    if rejected.any():
        t = grasps.hand_tensors(dtype=torch.float64)
        for arr, name in ((go, "global_orient"), (hp, "hand_pose"), (be, "betas"), (tl, "transl")):
            arr[rejected] = t[name].numpy()[rejected]
    width = max(r.loss_trace.shape[1] for r in results)
    traces = np.full((len(grasps), width), np.nan)
    row = 0
    for r in results:
        tr = r.loss_trace.detach().double().numpy()
        traces[row:row + len(tr), :tr.shape[1]] = tr
        row += len(tr)
    with torch.no_grad():
        f = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
        verts = hand(f(go), f(hp), f(be) if hand.num_betas else None, f(tl)).vertices.double().numpy()
    fit_s = sum(r.time_s for r in results)
    per = (sample_s + fit_s) / len(grasps)
    md = [{**(dict(grasps.metadata[i]) if grasps.metadata else {}),
           "refine": {"method": "choir", "targets": source, "time_s": per, "choir_rejected": bool(rejected[i]),
                      "anchor_shift_mm": float(shift_mm[i])}} for i in range(len(grasps))]
    attrs = {**dict(grasps.attrs), "refine": {
        "method": "choir", "source": "Morales et al., CHOIR / JointDiffusion (paper 002)",
        "targets": f"learned ({source}); no ground truth read", "seed": int(seed),
        "sample_time_s": sample_s, "fit_time_s": fit_s, "rejected": int(rejected.sum())}}
    return grasps.replace(global_orient=go, hand_pose=hp, betas=be, transl=tl, hand_vertices=verts,
                          loss_traces=traces, metadata=md, attrs=attrs, hand_contact=None)

"""ObMan-style automatic grasp synthesis on any object mesh, with either hand model.

ObMan (Hasson et al. 2019, §4) generated its ground truth with GraspIt: many initialisations around each
object, grasps ranked by a grasp metric, the best kept. contactkit replaces GraspIt's eigengrasp planner with
batched gradient-based closing of the hand, using the same contact terms the refiners use. One *batch* of
``K`` candidates runs as follows (all candidates optimised together, torch):

1. **Approach.** ``K`` surface points ``p`` with outward normals ``n`` are drawn (area-weighted, seeded); the
   wrist is rotated so the rest palm normal points along ``-n`` (palm facing the surface), with a uniform
   random roll about ``n``, and translated so the palm zone's centre sits ``standoff_m`` above ``p``.
2. **Pre-shape.** The fingers start open: a fraction ``preshape_mean`` of the hand's PCA mean pose plus small
   PCA noise.
3. **Closing by optimisation**, a preset of contactkit's one refiner (:mod:`contactkit.synth.closing`, run by
   :func:`contactkit.refine.api.run_method`; the refiner keeps each candidate's best iterate). Adam over wrist
   orientation, translation and the first ``n_pca`` PCA pose coefficients minimises
   ``w_att L_A + w_rep L_R + w_anat A + w_palm P + w_reg |c|^2`` where ``L_A`` / ``L_R`` are ObMan's
   attraction of the hand's six contact zones and repulsion of penetrating vertices
   (:mod:`contactkit.contact.obman`, on the object's SDF grid), ``A`` the A-MANO anatomy cost
   (:func:`contactkit.hands.anatomy.anatomy_cost`) and ``P = 1 - <R n_palm, -n>`` the palm-facing prior, plus
   ``w_cover`` times the mean palmar-surface attraction, which brings the whole inner hand onto the object,
   and ``w_balance`` times the contact balance (the net direction of the thumb's, fingers' and palm's contact
   normals; zero when they press from opposing sides, so that the closed hand squeezes instead of pushing).
4. **Re-measure and filter** with the metrics code on the exact meshes: penetration depth ``<= 2 mm``,
   the thumb and at least one other finger within ``contact_threshold_m`` (2 mm) of the surface, opposition
   (the thumb against at least two other fingers or the palm), contact coverage (``>= 3.5 %`` of hand vertices
   within 2 mm), intersection volume ``<= 2 cm^3`` and (for those) simulation displacement ``<= 1 cm``
   (MuJoCo, :mod:`contactkit.metrics.simulation`).
5. **Rank** accepted grasps by the Ferrari–Canny epsilon of their contacts (:mod:`contactkit.synth.quality`).
6. **Ground truth**: each accepted grasp carries its hand vertices, hand contact map (DiffContact's surface
   capsule model on the exact signed distances) and object contact map on ``n_object_points`` surface samples.

:func:`synthesize` runs batches until ``n`` grasps are accepted. With ``out`` it is resumable: every batch's
accepted grasps are written atomically to ``<out>.parts/batch_XXXXXX.npz`` (an empty batch to a ``.json``
marker); a restart skips finished batches, so a killed run loses no accepted grasp and duplicates none (batch
``b`` is fully determined by ``(seed, b)``). Batches can run in parallel worker processes.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from contactkit.errors import ContactkitError, MeshError
from contactkit.geometry.rotations import axis_angle_to_rotmat
from contactkit.io.atomic import atomic_write_json, json_safe
from contactkit.settings import updated
from contactkit.synth.closing import close_hand
from contactkit.synth.quality import ferrari_canny_epsilon, select_contacts

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.mesh import ObjectMesh

__all__ = [
    "SynthesisConfig",
    "SynthesisResult",
    "diversity",
    "ground_truth_contact_maps",
    "synthesize",
    "synthesize_batch",
    "with_contact_maps",
]

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")


@dataclass(frozen=True)
class SynthesisConfig:
    """Settings of grasp synthesis (SI units). ``with_updates`` rejects unknown keys.

    Attributes:
        batch_size: candidates optimised together per batch.
        iterations: Adam iterations of the closing optimisation.
        n_pca: PCA pose coefficients optimised.
        lr_orient: learning rate of the wrist axis-angle, radians.
        lr_transl: learning rate of the translation, metres.
        lr_pose: learning rate of the PCA coefficients.
        standoff_m: initial distance of the palm centre from the surface.
        squeeze_m: the contact zones are attracted to this depth inside the surface (attraction applied to
            ``sdf + squeeze_m``), so the closed hand presses on the object as a real grip does; a hand that
            merely touches holds nothing in simulation.
        centre_bias: weight of the direction from the object's centre added to the surface normal when
            choosing the approach (0: along the local normal; 1: halfway to the radial direction).
        grip_width_m: temperature of the roll prior that turns the fingers across the object's narrow side
            (:func:`contactkit.synth.closing.grip_width_rolls`); 0: uniform rolls.
        grip_span_m: widths the hand closes around with any approach and roll (6 cm: about OpenHand's width
            between the index and little knuckles, 6.1 cm): the grip-width prior counts only the width in excess
            of it (0: the narrowest side is preferred however small the object).
        preshape_mean: fraction of the PCA mean pose in the open pre-shape.
        preshape_noise: std of the PCA noise of the pre-shape.
        w_attraction, w_repulsion, w_anatomy, w_palm, w_reg: loss weights.
        w_cover, cover_a_m: weight of the palmar-surface attraction ``mean_v a tanh(max(sdf_v + squeeze, 0) / a)``
            over the hand's palmar vertices (``annotations.palmar_mask``), which pulls the whole inner surface
            of fingers and palm, not one vertex per zone, towards the object (0 disables). With 10 and 3 cm
            the accepted grasps' coverage rose from 3.1–3.6 % to 4.3–9.1 % and the yield from 5–8 % to 44–69 %
            (``docs/synthesis.md``).
        w_balance, balance_sigma_m: weight of the contact balance ``|F|^2``
            (:class:`contactkit.synth.closing.ContactBalanceTerm`: the net direction of the thumb's, fingers' and
            palm's contact normals, zero when they press from opposing sides) and its contact decay length. With
            0.3 the cracker box's yield rose from 18 to 37 of 96 candidates (``docs/synthesis.md``); 1 pulls
            the hand off the object (16 of 96).
        attraction_a_start_m, attraction_a_end_m: ObMan's attraction distance ``a``, decreased geometrically
            over the iterations (a large ``a`` first acts like a linear pull that closes the fingers from
            afar; the paper's 1 cm at the end).
        sdf_resolution: nodes per axis of the object's SDF grid.
        max_penetration_m: acceptance: penetration depth (2 mm).
        max_intersection_m3: acceptance: intersection volume (2 cm^3).
        max_displacement_m: acceptance: simulation displacement (1 cm).
        contact_threshold_m: a finger is in contact when a vertex is within this distance (2 mm).
        min_fingers: fingers in contact, the thumb among them (2: thumb + one opposing finger; 0 disables).
        require_opposition: acceptance asks for opposition: the thumb in contact against at least two other
            fingers or against the palm (a grip, not a pinch of two fingertips or a hand laid on the object).
        min_coverage: acceptance: fraction of hand vertices within ``contact_threshold_m`` of the surface
            (captured grasps: ContactPose 6.9 %, HO-3D 2.5 %, paper 000 Table 1); 0 disables.
        simulate: run the simulation check (turn off only for tests of the optimisation itself).
        stop_after_accepted: a batch simulates its candidates that passed the cheaper checks in descending
            epsilon order and stops once this many passed (0: simulates them all). The first ``k`` grasps
            accepted are then the ``k`` of highest epsilon that the full check accepts, so ``synthesize(n)``
            with ``stop_after_accepted = n`` returns the grasps it returns without, while simulating only what
            it keeps (a dataset keeping 3 of ~8 accepted grasps per object spends most of its simulation time on
            grasps it drops); the statistics then count the candidates left unsimulated (``not_simulated``) and
            the yield is over the candidates evaluated.
        simulation_protocol: protocol name of :func:`contactkit.metrics.simulation.simulation_displacement`.
        friction: friction coefficient of the epsilon quality measure.
        n_object_points: object surface samples carrying the object contact map.
    """

    batch_size: int = 32
    iterations: int = 200
    n_pca: int = 20
    lr_orient: float = 0.02
    lr_transl: float = 0.002
    lr_pose: float = 0.05
    standoff_m: float = 0.015
    centre_bias: float = 0.0
    squeeze_m: float = 0.001
    grip_width_m: float = 0.01
    grip_span_m: float = 0.06
    preshape_mean: float = 0.3
    preshape_noise: float = 0.2
    w_attraction: float = 1.0
    attraction_a_start_m: float = 0.05
    attraction_a_end_m: float = 0.01
    w_repulsion: float = 2.0
    w_anatomy: float = 0.05
    w_palm: float = 0.01
    w_reg: float = 1e-4
    w_cover: float = 10.0
    cover_a_m: float = 0.03
    w_balance: float = 0.3
    balance_sigma_m: float = 0.005
    sdf_resolution: int = 64
    max_penetration_m: float = 0.002
    max_intersection_m3: float = 2e-6
    max_displacement_m: float = 0.01
    contact_threshold_m: float = 0.002
    min_fingers: int = 2
    require_opposition: bool = True
    min_coverage: float = 0.035
    simulate: bool = True
    stop_after_accepted: int = 0
    simulation_protocol: str = "default"
    friction: float = 0.5
    n_object_points: int = 2048

    def with_updates(self, **changes: Any) -> SynthesisConfig:
        """A copy with some fields changed; unknown names raise :class:`ContactkitError`."""
        return updated(self, "synthesis setting", **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SynthesisResult:
    """Accepted grasps and run statistics.

    Attributes:
        grasps: the accepted grasps (ranked by epsilon within each batch, batches in order).
        stats: ``candidates``, ``accepted``, ``not_simulated`` (see ``stop_after_accepted``), ``yield`` (accepted
            over the candidates evaluated), ``seconds_this_run``, ``seconds_per_accepted_this_run``,
            ``batches``, ``cpu_seconds_by_stage`` (CPU seconds of the process that ran each batch, summed over
            batches, by stage: ``closing``, ``checks``, ``simulation``, ``quality``; a measure of the work that
            other jobs' load does not inflate), ``cpu_seconds_per_accepted``, per-reason rejection counts, means
            of the acceptance measures, and :func:`diversity`.
    """

    grasps: GraspSet
    stats: dict[str, Any] = field(default_factory=dict)


# -------------------------------------------------------------------------------- helpers
def _finger_vertex_groups(hand: HandModel) -> dict[str, np.ndarray]:
    """Vertex indices of each finger (all three phalanx regions) and of the palm (``palm_*`` regions), from the
    hand's region annotation; keys ``thumb, index, middle, ring, little, palm``."""
    ann = hand.annotations
    region = np.asarray(ann.region_of_vertex)
    names = list(ann.region_names)
    out = {}
    for f in (*FINGERS, "palm"):
        ids = [i for i, nm in enumerate(names) if nm.split("_")[0] == f]
        out[f] = np.flatnonzero(np.isin(region, ids))
    return out


# --------------------------------------------------------------------------------------- one batch
def synthesize_batch(
    hand: HandModel,
    obj: ObjectMesh,
    cfg: SynthesisConfig,
    seed: int,
    batch_index: int,
    candidates: Callable[..., dict[str, torch.Tensor]] | None = None,
) -> tuple[GraspSet | None, dict[str, Any]]:
    """Run one batch of candidates (see the module docstring); returns the accepted grasps (or ``None``) and
    the batch statistics. Fully determined by ``(seed, batch_index)`` and the inputs. ``candidates`` replaces the
    closing optimisation (steps 1-3) with another generator of the same signature and output as
    :func:`contactkit.synth.closing.close_hand`
    (e.g. :class:`contactkit.diffusion.synthesis.DiffusionCandidates`); acceptance and output are unchanged."""
    from contactkit.geometry.mesh_distance import closest_points_on_mesh
    from contactkit.geometry.normals import face_normals
    from contactkit.metrics.intersection import intersection_volume
    from contactkit.metrics.penetration import hand_signed_distances, penetration_depth_from_sd

    rng = np.random.Generator(np.random.PCG64([int(seed), int(batch_index)]))
    dtype = torch.float64 if hand.dtype == torch.float64 else torch.float32
    torch.manual_seed(int(seed) * 1_000_003 + int(batch_index))
    clock = [time.process_time()]
    cpu: dict[str, float] = {}

    def lap(stage: str) -> None:  # CPU seconds of this process per stage (independent of other jobs' load)
        now = time.process_time()
        cpu[stage] = cpu.get(stage, 0.0) + now - clock[0]
        clock[0] = now

    res = (candidates or close_hand)(hand, obj, cfg, rng, dtype)
    lap("closing")
    verts = res["vertices"].double().numpy()
    k = verts.shape[0]
    ov, of = obj.vertices, obj.faces
    sd = hand_signed_distances(verts, ov, of)  # (K, V) exact, negative inside
    pen = penetration_depth_from_sd(sd)
    groups = _finger_vertex_groups(hand)
    near = np.abs(sd) <= cfg.contact_threshold_m
    touching = np.stack(
        [near[:, g].any(1) if g.size else np.zeros(k, bool) for g in groups.values()], axis=1
    )  # (K, 6): thumb, index, middle, ring, little, palm
    in_contact = touching[:, :5]
    n_fingers = in_contact.sum(1)
    coverage = near.mean(1)
    fingers_ok = (in_contact[:, 0] | (cfg.min_fingers == 0)) & (n_fingers >= cfg.min_fingers)
    opposed = in_contact[:, 0] & ((in_contact[:, 1:].sum(1) >= 2) | touching[:, 5])
    reasons = {"penetration": 0, "fingers": 0, "opposition": 0, "coverage": 0, "intersection": 0,
               "displacement": 0}
    ok = pen <= cfg.max_penetration_m
    reasons["penetration"] = int((~ok).sum())
    reasons["fingers"] = int((ok & ~fingers_ok).sum())
    ok &= fingers_ok
    if cfg.require_opposition:
        reasons["opposition"] = int((ok & ~opposed).sum())
        ok &= opposed
    reasons["coverage"] = int((ok & (coverage < cfg.min_coverage)).sum())
    ok &= coverage >= cfg.min_coverage
    inter = np.full(k, np.nan)
    disp = np.full(k, np.nan)
    idx = np.flatnonzero(ok)
    closed = hand.closed_faces.detach().cpu().numpy()
    if idx.size:
        inter[idx] = intersection_volume(verts[idx], closed, ov, of).volume_m3
        bad = inter[idx] > cfg.max_intersection_m3
        reasons["intersection"] = int(bad.sum())
        ok[idx[bad]] = False
    idx = np.flatnonzero(ok)
    lap("checks")
    # quality: epsilon of the contacts of the candidates that passed the cheap checks
    eps = np.zeros(k)
    fn = face_normals(torch.as_tensor(np.array(ov))[None], torch.as_tensor(np.array(of)))[0].numpy()
    centre = ov.mean(0) if obj.is_watertight is False else obj.to_trimesh().center_mass
    for i in idx:
        cmask = np.abs(sd[i]) <= cfg.contact_threshold_m
        if cmask.sum() < 3:
            continue
        mc = closest_points_on_mesh(
            torch.as_tensor(verts[i][cmask])[None],
            torch.as_tensor(np.array(ov)),
            torch.as_tensor(np.array(of)),
        )
        cp = mc.closest[0].numpy()
        cn = -fn[mc.face_idx[0].numpy()]
        cp, cn = select_contacts(cp, cn, 16)
        eps[i] = ferrari_canny_epsilon(cp, cn, centre, friction=cfg.friction)
    lap("quality")
    # simulation, best epsilon first; with stop_after_accepted, only until that many passed
    pending = idx[np.argsort(-eps[idx], kind="stable")]
    cap = cfg.stop_after_accepted
    if pending.size and cfg.simulate:
        from contactkit.metrics.simulation import simulation_displacement

        passed = 0
        while pending.size and (cap == 0 or passed < cap):
            chunk, pending = (pending, pending[:0]) if cap == 0 else (pending[: cap - passed], pending[cap - passed:])
            disp[chunk] = simulation_displacement(
                verts[chunk], closed, ov, of, hand_labels=np.asarray(hand.annotations.region_of_vertex),
                protocol=cfg.simulation_protocol,
            )
            bad = ~(disp[chunk] <= cfg.max_displacement_m)  # NaN: not simulable (hand too deep in the object)
            reasons["displacement"] += int(bad.sum())
            ok[chunk[bad]] = False
            passed += int((~bad).sum())
    else:
        pending = pending[:0]
    ok[pending] = False  # not simulated: the batch already holds stop_after_accepted grasps
    idx = np.flatnonzero(ok)
    lap("simulation")
    stats = {
        "candidates": k,
        "cpu_seconds": cpu,
        "accepted": int(idx.size),
        "not_simulated": int(pending.size),
        "rejected": reasons,
        "penetration_m": pen[idx].tolist(),
        "intersection_m3": inter[idx].tolist(),
        "displacement_m": disp[idx].tolist(),
        "epsilon": eps[idx].tolist(),
        "fingers_in_contact": n_fingers[idx].tolist(),
        "palm_in_contact": touching[idx, 5].astype(int).tolist(),
        "coverage": coverage[idx].tolist(),
    }
    if idx.size == 0:
        return None, stats
    order = idx[np.argsort(-eps[idx], kind="stable")]
    m = len(order)
    hand_contact, opts, obj_contact = ground_truth_contact_maps(verts[order], sd[order], obj, cfg.n_object_points)
    from contactkit.io.grasps import GraspSet

    n_shape = int(getattr(hand, "num_betas", 0))
    meta = [
        {
            "synthesis": {
                "seed": int(seed), "batch": int(batch_index), "candidate": int(i),
                "epsilon": float(eps[i]), "penetration_mm": float(pen[i] * 1e3),
                "intersection_cm3": float(inter[i] * 1e6),
                "displacement_cm": float(disp[i] * 100) if np.isfinite(disp[i]) else None,
                "fingers_in_contact": [f for f, c in zip(FINGERS, in_contact[i], strict=True) if c],
                "palm_in_contact": bool(touching[i, 5]), "coverage_percent": float(coverage[i] * 100),
                "loss": float(res["loss"][i]),
            }
        }
        for i in order
    ]
    grasps = GraspSet(
        hand_model=hand.name,
        side=hand.side,
        global_orient=res["global_orient"].double().numpy()[order],
        hand_pose=res["hand_pose"].double().numpy()[order],
        betas=np.zeros((m, n_shape)),
        transl=res["transl"].double().numpy()[order],
        object_ids=[obj.content_hash] * m,
        objects={obj.content_hash: obj},
        object_rotation=np.repeat(np.eye(3)[None], m, axis=0),
        object_translation=np.zeros((m, 3)),
        hand_vertices=verts[order],
        hand_contact=hand_contact,
        object_points=opts,
        object_contact=obj_contact,
        metadata=meta,
        attrs={},
    )
    return grasps, stats


# --------------------------------------------------------------------------------------- contact maps
def ground_truth_contact_maps(
    hand_vertices: np.ndarray, hand_sd: np.ndarray, obj: ObjectMesh, n_object_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ground-truth contact maps the synthesiser stores with its grasps.

    Args:
        hand_vertices: (M, V, 3) float64 posed hand vertices in the object's frame, metres.
        hand_sd: (M, V) float64 exact signed distances of those vertices to ``obj``, metres, negative inside.
        obj: the object.
        n_object_points: number of object surface samples (seed 0) carrying the object contact map.

    Returns:
        ``hand_contact (M, V)`` in [0, 1] (:func:`~contactkit.contact.diffcontact.hand_contact_from_sdf`),
        ``object_points (M, P, 3)`` (the same P samples for every grasp, object frame, metres) and
        ``object_contact (M, P)`` in [0, 1] (:func:`~contactkit.contact.diffcontact.object_contact_map`).
    """
    from contactkit.contact.diffcontact import hand_contact_from_sdf, object_contact_map

    m = hand_vertices.shape[0]
    hand_contact = hand_contact_from_sdf(torch.as_tensor(hand_sd)).numpy()
    opts, onrm = obj.sample_surface(n_object_points, seed=0)
    obj_contact = object_contact_map(
        torch.as_tensor(hand_vertices),
        torch.as_tensor(opts)[None].expand(m, -1, -1),
        torch.as_tensor(onrm)[None].expand(m, -1, -1),
    ).numpy()
    return hand_contact, np.repeat(np.asarray(opts)[None], m, axis=0), obj_contact


def with_contact_maps(grasps: GraspSet, hand: HandModel, n_object_points: int) -> GraspSet:
    """``grasps`` with the hand vertices and ground-truth contact maps the synthesiser stores, recomputed.

    The hand is posed in its own dtype (float32 unless it is a float64 model) as :func:`synthesize_batch` poses
    it, so grasps read back from parameters (:func:`contactkit.io.grasp_params.load_grasp_params`) regain the
    synthesiser's ``hand_vertices``, ``hand_contact``, ``object_points`` and ``object_contact``, value for value.

    Args:
        grasps: N grasps (their hand model and side are ``hand``'s).
        hand: the hand model.
        n_object_points: object surface samples per grasp (``SynthesisConfig.n_object_points`` of the build).

    Returns:
        The set with ``hand_vertices (N, V, 3)`` (world frame), ``hand_contact (N, V)``,
        ``object_points (N, P, 3)`` (object frame) and ``object_contact (N, P)``.
    """
    from contactkit.metrics.penetration import hand_signed_distances

    grasps.check_hand(hand)
    dtype = torch.float64 if hand.dtype == torch.float64 else torch.float32
    n, v = len(grasps), hand.num_verts
    out = {"hand_vertices": np.zeros((n, v, 3)), "hand_contact": np.zeros((n, v)),
           "object_points": np.zeros((n, n_object_points, 3)), "object_contact": np.zeros((n, n_object_points))}
    for oid, idx in grasps.object_groups().items():
        obj = grasps.objects[oid]
        with torch.no_grad():
            posed = hand(torch.as_tensor(grasps.global_orient[idx], dtype=dtype),
                         torch.as_tensor(grasps.hand_pose[idx], dtype=dtype),
                         torch.as_tensor(grasps.betas[idx], dtype=dtype) if grasps.num_betas else None,
                         torch.as_tensor(grasps.transl[idx], dtype=dtype))
        world = posed.vertices.double().numpy()
        local = np.einsum("mvj,mji->mvi", world - grasps.object_translation[idx, None, :],
                          grasps.object_rotation[idx])  # R^T (x - t)
        sd = hand_signed_distances(local, obj.vertices, obj.faces)
        maps = ground_truth_contact_maps(local, sd, obj, n_object_points)
        out["hand_vertices"][idx] = world
        for name, arr in zip(("hand_contact", "object_points", "object_contact"), maps, strict=True):
            out[name][idx] = arr
    return grasps.replace(**out)


# --------------------------------------------------------------------------------------- diversity
def diversity(grasps: GraspSet) -> dict[str, float]:
    """Diversity of a grasp set: mean pairwise wrist rotation angle (degrees), mean pairwise wrist distance
    (cm, root translation) and mean pairwise finger-pose distance (RMS axis-angle difference, radians)."""
    n = len(grasps)
    if n < 2:
        return {"rotation_deg": 0.0, "translation_cm": 0.0, "pose_rad": 0.0}
    rot = axis_angle_to_rotmat(torch.as_tensor(np.array(grasps.global_orient, dtype=np.float64)))
    rel = torch.einsum("aji,bjk->abik", rot, rot)
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0)
    ang = torch.rad2deg(torch.arccos(cos)).numpy()
    t = np.asarray(grasps.transl, dtype=np.float64)
    p = np.asarray(grasps.hand_pose, dtype=np.float64)
    iu = np.triu_indices(n, 1)
    dt = np.linalg.norm(t[:, None] - t[None], axis=-1)[iu]
    dp = np.sqrt(((p[:, None] - p[None]) ** 2).mean(-1))[iu]
    return {
        "rotation_deg": float(ang[iu].mean()),
        "translation_cm": float(dt.mean() * 100),
        "pose_rad": float(dp.mean()),
    }


# ------------------------------------------------------------------------------------------ driver
def _quantiles(vals: list[float]) -> dict[str, float | None]:
    """10/50/90 % quantiles of a list (``None`` when empty)."""
    if not vals:
        return {"p10": None, "p50": None, "p90": None}
    q = np.quantile(np.asarray(vals, dtype=np.float64), [0.1, 0.5, 0.9])
    return {"p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2])}


def _histogram(vals: list[int], n: int) -> list[int]:
    """Counts of the integers ``0 .. n - 1`` in ``vals``."""
    return np.bincount(np.asarray(vals, dtype=np.int64), minlength=n)[:n].tolist() if vals else [0] * n


_WORKER: dict[str, Any] = {}


def _worker_init(hand_name: str, side: str, obj: ObjectMesh, threads: int) -> None:
    from contactkit.hands import load_hand

    torch.set_num_threads(threads)
    _WORKER["hand"] = load_hand(hand_name, side)
    _WORKER["obj"] = obj


def _worker_run(cfg: SynthesisConfig, seed: int, batch: int, parts: str) -> dict[str, Any]:
    grasps, stats = synthesize_batch(_WORKER["hand"], _WORKER["obj"], cfg, seed, batch)
    _write_batch(Path(parts), batch, grasps, stats)
    return stats


def _batch_paths(parts: Path, batch: int) -> tuple[Path, Path]:
    return parts / f"batch_{batch:06d}.npz", parts / f"batch_{batch:06d}.json"


def _write_batch(parts: Path, batch: int, grasps: GraspSet | None, stats: dict[str, Any]) -> None:
    """Atomically record a finished batch: its grasps (if any) first, then the stats marker."""
    from contactkit.io.grasps import save_grasps

    npz, js = _batch_paths(parts, batch)
    if grasps is not None:
        save_grasps(npz, grasps)
    atomic_write_json(js, json_safe(stats))


def _read_done(parts: Path) -> dict[int, dict[str, Any]]:
    done = {}
    for js in sorted(parts.glob("batch_*.json")):
        b = int(js.stem.split("_")[1])
        stats = json.loads(js.read_text())
        npz, _ = _batch_paths(parts, b)
        if stats.get("accepted", 0) > 0 and not npz.is_file():
            continue  # inconsistent (should not happen: npz is written first); redo the batch
        done[b] = stats
    return done


def _ray_batch(hand_name: str, side: str, obj: ObjectMesh, cfg: SynthesisConfig, seed: int,
               batch: int) -> tuple[GraspSet | None, dict[str, Any]]:
    """One batch as a Ray task (single-threaded torch, as the serial run's batches are reproducible)."""
    from contactkit.hands import load_hand

    torch.set_num_threads(1)
    return synthesize_batch(load_hand(hand_name, side), obj, cfg, seed, batch)


def _ray_batches(
    next_batch: Callable[[], int | None],
    more: Callable[[], bool],
    hand: str,
    side: str,
    obj: ObjectMesh,
    cfg: SynthesisConfig,
    seed: int,
    address: str,
    cpus: int,
) -> Any:
    """Yield ``(batch, (grasps, stats))`` of batches run as Ray tasks, ``cpus`` in flight, while ``more()``."""
    from contactkit.raytasks import ray_session

    with ray_session(address, cpus) as ray:
        remote = ray.remote(num_cpus=1)(_ray_batch)
        obj_ref = ray.put(obj)
        running: dict[Any, int] = {}
        while True:
            while more() and len(running) < cpus:
                b = next_batch()
                if b is None:
                    break
                running[remote.remote(hand, side, obj_ref, cfg, seed, b)] = b
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                yield running.pop(ref), ray.get(ref)


def synthesize(
    obj: ObjectMesh | str,
    n: int,
    *,
    hand: str = "openhand",
    side: str = "right",
    seed: int = 0,
    config: SynthesisConfig | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    ray: str | None = None,
    max_batches: int | None = None,
    progress: bool = False,
    on_batch: Callable[[int, dict[str, Any]], None] | None = None,
    candidates: Callable[..., dict[str, torch.Tensor]] | None = None,
) -> SynthesisResult:
    """Synthesise ``n`` accepted grasps of ``obj`` (see the module docstring).

    Args:
        obj: an :class:`~contactkit.objects.mesh.ObjectMesh` or an object spec for
            :func:`~contactkit.objects.load_object`.
        n: number of accepted grasps wanted (>= 1).
        hand: hand model name (``openhand`` or ``mano``); ``side``: ``right`` or ``left``.
        seed: run seed; batch ``b`` uses the generator seeded with ``(seed, b)``.
        config: synthesis settings.
        out: output grasp file; enables resuming (finished batches are kept in ``<out>.parts/``). The final
            set is written to ``out`` when ``n`` grasps are accepted.
        workers: worker processes (1: in this process); with ``ray``, the CPUs of a local Ray.
        ray: run batches as Ray tasks: ``""`` starts a local Ray in this process (``workers`` CPUs), an address
            (``HOST:PORT``) connects to a running cluster. Tasks return their batch; this process writes it, so
            the output needs no shared filesystem. The batches (and the result) are those of a serial run.
        max_batches: stop after this many batches (default ``max(50, 20 * n / batch_size)``) even if fewer
            than ``n`` grasps were accepted (warned).
        progress: show a tqdm progress bar of accepted grasps.
        on_batch: called as ``on_batch(batch_index, stats)`` after each batch finished in this run.
        candidates: a candidate generator replacing the closing optimisation (see :func:`synthesize_batch`);
            its ``name`` is recorded in the run settings; needs ``workers == 1``.

    Returns:
        :class:`SynthesisResult` with the first ``n`` accepted grasps (in batch order) and statistics.
    """
    from contactkit.hands import load_hand
    from contactkit.io.grasps import GraspSet, save_grasps
    from contactkit.objects import load_object

    if not isinstance(n, int) or n < 1:
        raise ContactkitError(f"n must be an integer >= 1, got {n!r}")
    if workers < 1:
        raise ContactkitError(f"workers must be >= 1, got {workers}")
    cfg = config or SynthesisConfig()
    mesh: ObjectMesh = load_object(obj)
    extents = np.linalg.svd(mesh.vertices - mesh.vertices.mean(0), compute_uv=False)
    if extents[2] <= 1e-6 * extents[0]:  # no volume: nothing to grasp or simulate (fail before any work)
        raise MeshError(f"{mesh.name}: the object is flat (its vertices span no volume); it cannot be grasped")
    limit = max_batches if max_batches is not None else max(50, math.ceil(20 * n / cfg.batch_size))
    run_info = {"object": mesh.content_hash, "object_name": mesh.name, "hand": hand, "side": side,
                "seed": int(seed), "config": cfg.to_dict()}
    if candidates is not None:
        if workers != 1:
            raise ContactkitError("a custom candidate generator runs in this process only (workers=1)")
        run_info["candidates"] = str(getattr(candidates, "name", type(candidates).__name__))
    parts: Path | None = None
    done: dict[int, dict[str, Any]] = {}
    if out is not None:

        parts = Path(str(out) + ".parts")
        parts.mkdir(parents=True, exist_ok=True)
        info_path = parts / "run.json"
        if info_path.is_file():
            old = json.loads(info_path.read_text())
            if old != json.loads(json.dumps(run_info)):
                raise ContactkitError(
                    f"{parts} holds a run with different settings; remove it or use another --out"
                )
        else:
            atomic_write_json(info_path, run_info)
        done = _read_done(parts)
    start = time.perf_counter()
    accepted = sum(s["accepted"] for s in done.values())
    accepted_start = accepted
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=min(accepted, n), desc=f"synth {mesh.name}", unit="grasp")
    in_memory: dict[int, GraspSet] = {}
    next_batch = 0

    def _next() -> int | None:
        nonlocal next_batch
        while next_batch in done:
            next_batch += 1
        if next_batch >= limit:
            return None
        b = next_batch
        next_batch += 1
        return b

    def _finish(b: int, stats: dict[str, Any], grasps: GraspSet | None) -> None:
        nonlocal accepted
        done[b] = stats
        if grasps is not None and parts is None:
            in_memory[b] = grasps
        accepted += stats["accepted"]
        if bar is not None:
            bar.update(max(0, min(n, accepted) - bar.n))
        if on_batch is not None:
            on_batch(b, stats)

    if ray is not None:
        for b, (grasps, stats) in _ray_batches(_next, lambda: accepted < n, hand, side, mesh, cfg, seed,
                                               ray, workers):
            if parts is not None:
                _write_batch(parts, b, grasps, stats)
            _finish(b, stats, grasps)
    elif workers == 1:
        hand_model = load_hand(hand, side)
        while accepted < n:
            b = _next()
            if b is None:
                break
            grasps, stats = synthesize_batch(hand_model, mesh, cfg, seed, b, candidates)
            if parts is not None:
                _write_batch(parts, b, grasps, stats)
            _finish(b, stats, grasps)
    else:
        if parts is None:
            raise ContactkitError("workers > 1 needs an output path (batches are exchanged through files)")
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // workers)
        pool_args: dict[str, Any] = {"initializer": _worker_init, "initargs": (hand, side, mesh, threads)}
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), **pool_args) as pool:
            running: dict[Future[dict[str, Any]], int] = {}
            while True:
                while accepted < n and len(running) < workers:
                    b = _next()
                    if b is None:
                        break
                    running[pool.submit(_worker_run, cfg, seed, b, str(parts))] = b
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    b = running.pop(fut)
                    _finish(b, fut.result(), None)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - start
    # gather in batch order
    sets: list[GraspSet] = []
    for b in sorted(done):
        if done[b]["accepted"] == 0:
            continue
        if parts is not None:
            from contactkit.io.grasps import load_grasps

            sets.append(load_grasps(_batch_paths(parts, b)[0]))
        elif b in in_memory:
            sets.append(in_memory[b])
    acc = [s for s in done.values()]
    rej: dict[str, int] = {}
    for s in acc:
        for key, v in s["rejected"].items():
            rej[key] = rej.get(key, 0) + v
    if not sets:
        first_failed = ", ".join(f"{key} {v}" for key, v in rej.items() if v) or "none"
        raise ContactkitError(
            f"no grasp of {mesh.name!r} passed the acceptance thresholds in {len(done)} batches "
            f"(candidates rejected by their first failed check: {first_failed}); "
            "try more batches (max_batches) or another object scale"
        )
    allg = GraspSet.concat(sets) if len(sets) > 1 else sets[0]
    if len(allg) < n:
        warnings.warn(f"only {len(allg)} of {n} grasps accepted within {limit} batches", stacklevel=2)
    final = allg.subset(np.arange(min(n, len(allg))))
    cand = sum(s["candidates"] for s in done.values())

    def _mean(key: str) -> float:
        vals = [v for s in acc for v in s.get(key, []) if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    total_acc = sum(s["accepted"] for s in acc)
    skipped = sum(s.get("not_simulated", 0) for s in acc)
    cpu: dict[str, float] = {}
    for s in acc:
        for key, v in s.get("cpu_seconds", {}).items():
            cpu[key] = cpu.get(key, 0.0) + v
    stats = {
        "object": mesh.name,
        "candidates": cand,
        "accepted": total_acc,
        "not_simulated": skipped,
        "yield": total_acc / (cand - skipped) if cand > skipped else 0.0,
        "batches": len(done),
        "seconds_this_run": elapsed,
        "seconds_per_accepted_this_run": (elapsed / (accepted - accepted_start)
                                          if accepted > accepted_start else float("nan")),
        "cpu_seconds_by_stage": cpu,
        "cpu_seconds_per_accepted": sum(cpu.values()) / total_acc if total_acc else float("nan"),
        "rejected": rej,
        "mean_penetration_mm": _mean("penetration_m") * 1e3,
        "mean_intersection_cm3": _mean("intersection_m3") * 1e6,
        "mean_displacement_cm": _mean("displacement_m") * 100,
        "mean_epsilon": _mean("epsilon"),
        "mean_coverage_percent": _mean("coverage") * 100,
        "coverage_percent_quantiles": _quantiles([v * 100 for s in acc for v in s.get("coverage", [])]),
        "fingers_in_contact_histogram": _histogram([v for s in acc for v in s["fingers_in_contact"]], 6),
        "palm_in_contact_fraction": _mean("palm_in_contact"),
        "diversity": diversity(final),
    }
    final = final.replace(attrs={**dict(final.attrs), "synthesis": {**run_info, "stats": json_safe(stats)}})
    if out is not None and len(final) >= n:
        save_grasps(out, final)
    return SynthesisResult(grasps=final, stats=stats)

"""How each registered metric is computed from a posed batch: one kernel per :class:`MetricSpec`.

:meth:`contactkit.metrics.registry.MetricSpec.compute` looks its kernel up here by name (lazily, so the registry
stays cheap to import), and :func:`contactkit.metrics.evaluate.evaluate_posed` is a loop over the requested specs.
A kernel takes a :class:`MetricRun` (the posed grasps, the paired reference and their lazily computed shared
quantities) and returns a :class:`Computed` in SI units; kernels that produce several metrics at once (contact
precision / recall / F1) memoise their shared work on the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from contactkit.errors import ContactkitError, ShapeError
from contactkit.metrics import contact as _contact
from contactkit.metrics import intersection as _inter
from contactkit.metrics import penetration as _pen
from contactkit.metrics import pose as _pose
from contactkit.metrics import quality as _quality
from contactkit.metrics._arrays import points_batch


@dataclass
class Computed:
    """One metric's per-sample values (SI units), fallback flags and extra JSON-able data."""

    values: np.ndarray
    fallback: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricRun:
    """Everything a kernel reads: the posed grasps (``PosedGrasps``), their context, the paired reference and
    its context (or None), the simulation's worker count and Ray address (None: no Ray), and a memo for work
    shared by several metrics."""

    grasps: Any
    ctx: Any
    reference: Any = None
    rctx: Any = None
    workers: int = 1
    ray: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.grasps)

    def need_reference(self) -> tuple[Any, Any]:
        if self.reference is None or self.rctx is None:  # resolve_metrics never lets this happen
            raise ContactkitError("this metric needs a reference grasp set")
        return self.reference, self.rctx

    def memoised(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.require(a, requirements=["C", "W"]))  # GraspSet arrays are read-only


def _per_group(run: MetricRun, fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn(idx, obj_verts, obj_faces)`` for each object's samples, assembled into ``(N,)``."""
    out = np.full(len(run), np.nan)
    for key, idx in run.ctx.groups.items():
        ov, of = run.grasps.objects[key]
        out[idx] = fn(idx, ov, of)
    return out


# ------------------------------------------------------------------------------------------------ pose


def _keypoint_pair(run: MetricRun) -> tuple[torch.Tensor, torch.Tensor]:
    reference, _ = run.need_reference()
    return _tensor(run.grasps.keypoints), _tensor(reference.keypoints)


def mpjpe(run: MetricRun) -> Computed:
    return Computed(_pose.mpjpe(*_keypoint_pair(run)).numpy())


def r_mpjpe(run: MetricRun) -> Computed:
    return Computed(_pose.root_aligned_mpjpe(*_keypoint_pair(run)).numpy())


def pa_mpjpe(run: MetricRun) -> Computed:
    return Computed(_pose.pa_mpjpe(*_keypoint_pair(run)).numpy())


def _pck(run: MetricRun, per: str) -> Computed:
    curve = _pose.pck_curve(*_keypoint_pair(run), per=per)
    extra = {
        "thresholds_mm": [float(x) * 1e3 for x in _pose.PCK_THRESHOLDS_M],
        "mean_curve": [float(x) for x in curve.mean(0)],
    }
    return Computed(_pose.pck_auc(curve).numpy(), extra=extra)


def pck_auc(run: MetricRun) -> Computed:
    return _pck(run, "keypoint")


def pck_auc_pose(run: MetricRun) -> Computed:
    return _pck(run, "pose")


def mpvpe(run: MetricRun) -> Computed:
    reference, _ = run.need_reference()
    if run.grasps.hand_verts.shape != reference.hand_verts.shape:
        return Computed(np.full(len(run), np.nan))
    return Computed(_pose.mpvpe(_tensor(run.grasps.hand_verts), _tensor(reference.hand_verts)).numpy())


def _same_object_pose(a: Any, b: Any, i: int, same_mesh: dict[tuple[str, str], bool]) -> bool:
    """True when sample ``i`` of both sets holds the same object mesh in the same pose; ``same_mesh`` memoises
    the mesh comparison per pair of object ids (a few per batch, where every sample compared the arrays)."""
    ka, kb = a.object_ids[i], b.object_ids[i]
    if (ka, kb) not in same_mesh:
        (av, af), (bv, bf) = a.objects[ka], b.objects[kb]
        same_mesh[ka, kb] = (av is bv and af is bf) or (
            av.shape == bv.shape and af.shape == bf.shape and np.array_equal(av, bv) and np.array_equal(af, bf)
        )
    return (
        same_mesh[ka, kb]
        and np.array_equal(a.object_rotation[i], b.object_rotation[i])
        and np.array_equal(a.object_translation[i], b.object_translation[i])
    )


def object_mpvpe(run: MetricRun) -> Computed:
    reference, _ = run.need_reference()
    g = run.grasps
    out = np.full(len(run), np.nan)
    same_mesh: dict[tuple[str, str], bool] = {}
    for i in range(len(run)):
        if _same_object_pose(g, reference, i, same_mesh):  # exactly 0 (hand-only refinement)
            out[i] = 0.0
            continue
        pv = g.object_world_verts(i)
        ref_key = reference.object_ids[i]
        if g.object_ids[i] == ref_key or pv.shape == reference.objects[ref_key][0].shape:
            rv = reference.object_world_verts(i)
            if rv.shape == pv.shape:
                out[i] = float(np.linalg.norm(pv - rv, axis=1).mean())
    return Computed(out)


def chamfer(run: MetricRun) -> Computed:
    reference, rctx = run.need_reference()
    g = run.grasps
    out = np.full(len(run), np.nan)
    same_mesh: dict[tuple[str, str], bool] = {}
    for i in range(len(run)):
        if _same_object_pose(g, reference, i, same_mesh):  # exactly 0 (hand-only refinement)
            out[i] = 0.0
            continue
        ps = run.ctx.samples(g.object_ids[i]) @ g.object_rotation[i].T + g.object_translation[i]
        rs = rctx.samples(reference.object_ids[i]) @ reference.object_rotation[i].T + reference.object_translation[i]
        out[i] = float(_pose.chamfer_distance(_tensor(ps[None]), _tensor(rs[None]))[0])
    return Computed(out)


# ------------------------------------------------------------------------------------------------ physics


def penetration_depth(run: MetricRun) -> Computed:
    return Computed(_pen.penetration_depth_from_sd(run.ctx.hand_sd))


def disjointedness(run: MetricRun) -> Computed:
    if run.grasps.fingertip_regions is None:
        raise ContactkitError("disjointedness_mm needs fingertip_regions (the hand's annotations)")
    return Computed(_pen.disjointedness_from_sd(run.ctx.hand_sd, run.grasps.fingertip_regions))


def intersection_volume(run: MetricRun) -> Computed:
    n = len(run)
    vol, fb = np.zeros(n), np.zeros(n, dtype=bool)
    for key, idx in run.ctx.groups.items():
        ov, of = run.grasps.objects[key]
        res = _inter.intersection_volume(
            run.ctx.hv_obj[idx], run.grasps.hand_faces, ov, of, object_key=run.grasps.object_key(key)
        )
        vol[idx], fb[idx] = res.volume_m3, res.fallback
    return Computed(vol, fallback=fb)


def _voxel(run: MetricRun, pitch: float, mode: Literal["solid", "surface"]) -> Computed:
    faces = run.grasps.hand_faces
    return Computed(
        _per_group(
            run,
            lambda idx, ov, of: _inter.voxel_intersection_volume(
                run.ctx.hv_obj[idx], faces, ov, of, pitch=pitch, mode=mode
            ),
        )
    )


def intersection_voxel5mm_obman(run: MetricRun) -> Computed:
    return _voxel(run, 0.005, "surface")


def intersection_voxel2mm_choir(run: MetricRun) -> Computed:
    return _voxel(run, 0.002, "solid")


def solid_intersection_cpf(run: MetricRun) -> Computed:
    faces = run.grasps.hand_faces
    return Computed(
        _per_group(
            run,
            lambda idx, ov, of: _inter.cpf_solid_intersection_volume(run.ctx.hv_obj[idx], faces, ov, of, resolution=80),
        )
    )


# ------------------------------------------------------------------------------------------------ contact


def contact_coverage(run: MetricRun) -> Computed:
    return Computed(_contact.contact_coverage(_contact.contact_mask_from_sd(run.ctx.hand_sd)))


def _hand_prf(run: MetricRun) -> Any:
    def make() -> Any:
        reference, rctx = run.need_reference()
        pred = _contact.contact_mask_from_sd(run.ctx.hand_sd)
        if reference.hand_contact is not None:
            ref = _contact.binarize_contact_map(reference.hand_contact)
        else:
            ref = _contact.contact_mask_from_sd(rctx.hand_sd)
        if ref.shape != pred.shape:
            raise ShapeError(f"reference hand contact {ref.shape} does not match the hand {pred.shape}")
        return _contact.precision_recall_f1(pred, ref)

    return run.memoised("hand_prf", make)


def contact_precision(run: MetricRun) -> Computed:
    return Computed(_hand_prf(run).precision)


def contact_recall(run: MetricRun) -> Computed:
    return Computed(_hand_prf(run).recall)


def contact_f1(run: MetricRun) -> Computed:
    return Computed(_hand_prf(run).f1)


def _object_prf(run: MetricRun) -> dict[str, np.ndarray]:
    """Object-side precision / recall / F1 over common object points: the reference's stored ``object_points`` +
    ``object_contact`` when present, else the reference context's (seeded, cached) surface samples."""

    def make() -> dict[str, np.ndarray]:
        reference, rctx = run.need_reference()
        g, n = run.grasps, len(run)
        cols = {k: np.full(n, np.nan) for k in ("precision", "recall", "f1")}
        for i in range(n):
            key = g.object_ids[i]
            if reference.object_ids[i] != key:
                continue
            if reference.object_points is not None and reference.object_contact is not None:
                pts = points_batch(reference.object_points[i], "object_points", allow_unbatched=True)[0]
                m_r = _contact.binarize_contact_map(reference.object_contact[i])
            else:
                pts = rctx.samples(key)  # the reference's samples, so its cached masks are reused
                m_r = rctx.object_mask(i, pts)
            prf = _contact.precision_recall_f1(run.ctx.object_mask(i, pts)[None], m_r[None])
            cols["precision"][i], cols["recall"][i], cols["f1"][i] = prf.precision[0], prf.recall[0], prf.f1[0]
        return cols

    out: dict[str, np.ndarray] = run.memoised("object_prf", make)
    return out


def object_contact_precision(run: MetricRun) -> Computed:
    return Computed(_object_prf(run)["precision"])


def object_contact_recall(run: MetricRun) -> Computed:
    return Computed(_object_prf(run)["recall"])


def object_contact_f1(run: MetricRun) -> Computed:
    return Computed(_object_prf(run)["f1"])


# ------------------------------------------------------------------------------------------------ stability


def _simulation(run: MetricRun, protocol: Any) -> Computed:
    from contactkit.metrics import simulation as _sim

    g = run.grasps
    disp = np.full(len(run), np.nan)
    reasons: dict[str, str] = {}
    for key, idx in run.ctx.groups.items():
        ov, of = g.objects[key]
        res = _sim.simulate(
            g.hand_verts[idx],
            g.hand_faces,
            ov,
            of,
            g.object_rotation[idx],
            g.object_translation[idx],
            hand_labels=g.hand_labels,
            protocol=protocol,
            workers=run.workers,
            ray=run.ray,
        )
        disp[idx] = res.displacement
        reasons.update({str(int(i)): r for i, r in zip(idx, res.reasons, strict=True) if r is not None})
    extra = {
        "protocol": {k: (list(v) if isinstance(v, tuple) else v) for k, v in protocol.__dict__.items()},
        "not_simulable": len(reasons),
        "not_simulable_reasons": reasons,
    }
    return Computed(disp, extra=extra)


def simulation_default(run: MetricRun) -> Computed:
    from contactkit.metrics.simulation import get_protocol

    return _simulation(run, get_protocol("default"))


def simulation_obman(run: MetricRun) -> Computed:
    from contactkit.metrics.simulation import get_protocol

    return _simulation(run, get_protocol("obman"))


def simulation_six(run: MetricRun) -> Computed:
    from contactkit.metrics.simulation import get_protocol

    return _simulation(run, get_protocol("default", name="six", gravity_directions="six"))


# ------------------------------------------------------------------------------------------------ quality


def affinity_diversity(run: MetricRun) -> Computed:
    out = np.full(len(run), np.nan)
    for key, idx in run.ctx.groups.items():
        ov, of = run.grasps.objects[key]
        out[idx] = _quality.affinity_diversity(run.ctx.kp_obj[idx], ov, of, object_key=run.grasps.object_key(key))
    return Computed(out)

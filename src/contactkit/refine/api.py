"""Library entry points: refine tensors with a named method, or a whole :class:`GraspSet`.

``refine(grasps, "contactopt")`` takes a grasp set, builds per-object surface samples (2048 points, seeded)
and SDF grids once, derives the targets, runs the method's stages in batches and returns a new grasp set with the
refined parameters, ``loss_traces`` and a ``metadata[i]["refine"]`` record per grasp.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.diffcontact import hand_contact_from_sdf
from contactkit.errors import ContactkitError, ShapeError
from contactkit.geometry.sdf import SDFGrid, trilinear_sample_stacked
from contactkit.refine.methods import MethodContext, MethodSpec, get_method
from contactkit.refine.refiner import HandLike, HandParamsInit, ObjectBatch, Refiner, RefineResult
from contactkit.refine.targets import ContactEstimator, ContactTargets, oracle_targets

__all__ = ["LEARNED_ESTIMATORS", "GroupedSDF", "objects_from_grasps", "reference_targets", "refine", "run_method"]


class GroupedSDF:
    """Per-sample SDF lookup for a batch whose samples use a few distinct objects.

    Args:
        grids: one :class:`contactkit.geometry.sdf.SDFGrid` per distinct object.
        group: (N0,) int64 — index into ``grids`` of each sample.
    """

    def __init__(self, grids: list[Any], group: Tensor) -> None:
        self.grids = grids
        self.group = group
        self._stacked: tuple[Tensor, Tensor, Tensor] | None = None
        self._stackable = (
            all(isinstance(grid, SDFGrid) for grid in grids) and len({grid.resolution for grid in grids}) == 1
        )

    def __call__(self, points: Tensor, rows: Tensor) -> Tensor:
        """points (B, N, 3) in each sample's object frame, rows (B,) -> (B, N) signed distance, metres."""
        g = self.group.to(rows.device)[rows]
        keys = torch.unique(g).tolist()
        if len(keys) == 1:
            return self._grid(keys[0], points).sample(points)
        if self._stackable:  # one gather over all grids
            values, origins, spacings = self._stack(points)
            return trilinear_sample_stacked(values, origins, spacings, g, points)
        parts, order = [], []
        for k in keys:
            idx = (g == k).nonzero(as_tuple=True)[0]
            parts.append(self._grid(k, points).sample(points[idx]))
            order.append(idx)
        inverse = torch.empty_like(g)
        cat_idx = torch.cat(order)
        inverse[cat_idx] = torch.arange(cat_idx.shape[0], device=g.device)
        return torch.cat(parts)[inverse]

    def _stack(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The grids' values (G, R, R, R), origins (G, 3) and spacings (G,) in ``like``'s dtype and device."""
        if self._stacked is None or self._stacked[0].dtype != like.dtype or self._stacked[0].device != like.device:
            grids = [self._grid(k, like) for k in range(len(self.grids))]
            self._stacked = (
                torch.stack([grid.values for grid in grids]),
                torch.stack([grid.origin for grid in grids]),
                torch.tensor([grid.spacing for grid in grids], dtype=like.dtype, device=like.device),
            )
        return self._stacked

    def _grid(self, k: int, like: Tensor) -> Any:
        grid = self.grids[k]
        if grid.values.dtype != like.dtype or grid.values.device != like.device:
            grid = grid.to(like.device, like.dtype)
            self.grids[k] = grid
        return grid


def objects_from_grasps(
    grasps: Any,
    *,
    num_points: int = 2048,
    sdf_resolution: int = 64,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ObjectBatch:
    """Object samples, normals, poses and SDF lookup of every grasp of a :class:`GraspSet`."""
    ids = list(dict.fromkeys(grasps.object_ids))
    pts_by, nrm_by, grids = {}, {}, []
    for oid in ids:
        obj = grasps.objects[oid]
        p, n = obj.sample_surface(num_points, seed=seed)
        pts_by[oid] = torch.as_tensor(np.array(p), dtype=dtype, device=device)
        nrm_by[oid] = torch.as_tensor(np.array(n), dtype=dtype, device=device)
        grids.append(obj.sdf_grid(sdf_resolution).to(device, dtype))
    group = torch.as_tensor([ids.index(o) for o in grasps.object_ids], dtype=torch.long, device=device)
    return ObjectBatch(
        points=torch.stack([pts_by[o] for o in grasps.object_ids]),
        normals=torch.stack([nrm_by[o] for o in grasps.object_ids]),
        rotation=torch.as_tensor(np.array(grasps.object_rotation), dtype=dtype, device=device),
        translation=torch.as_tensor(np.array(grasps.object_translation), dtype=dtype, device=device),
        sdf=GroupedSDF(grids, group),
    )


def _subset_objects(objects: ObjectBatch, idx: Tensor) -> ObjectBatch:
    sdf = objects.sdf
    if isinstance(sdf, GroupedSDF):
        sdf = GroupedSDF(sdf.grids, sdf.group[idx])
    elif sdf is not None:
        base = sdf

        def sdf(points: Tensor, rows: Tensor, _b: Callable[[Tensor, Tensor], Tensor] = base) -> Tensor:
            return _b(points, idx.to(rows.device)[rows])

    return ObjectBatch(objects.points[idx], objects.normals[idx], objects.rotation[idx], objects.translation[idx], sdf)


def _subset_targets(t: ContactTargets, idx: Tensor) -> ContactTargets:
    def pick(x: Tensor | None) -> Tensor | None:
        return None if x is None else x[idx]

    ref = None
    if t.ref_params is not None:
        p = t.ref_params
        ref = HandParamsInit(p.global_orient[idx], p.hand_pose[idx], p.betas[idx], p.transl[idx])
    return ContactTargets(
        pick(t.hand_contact), pick(t.object_contact), pick(t.ref_verts), pick(t.ref_anchors),
        pick(t.ref_keypoints), ref, pick(t.k_atr),
    )


def run_method(
    hand: HandLike,
    init: HandParamsInit,
    objects: ObjectBatch,
    method: str | MethodSpec,
    targets: ContactTargets,
    *,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    **settings: Any,
) -> RefineResult:
    """Run every stage of ``method`` on one batch; ``settings`` override each stage's :class:`RefinerSettings`.

    Returns one :class:`RefineResult` whose ``loss_trace`` concatenates the stages' traces (each stage's loss is
    its own objective) and whose ``time_s`` sums them.
    """
    spec = get_method(method) if isinstance(method, str) else method
    if settings:
        spec = spec.with_settings(**settings)
    current = init
    first = init
    traces: list[Tensor] = []
    total_time = 0.0
    result: RefineResult | None = None
    done = 0
    grand_total = sum(st.settings.iterations for st in spec.stages)
    for k, stage in enumerate(spec.stages):
        with torch.no_grad():
            out = hand(current.global_orient, current.hand_pose,
                       current.betas if hand.num_betas > 0 else None, current.transl)
        ctx = MethodContext(hand, current, out.vertices.detach(), objects, targets, first)
        terms = stage.build(ctx)
        stage_settings = stage.settings.replace(dtype=current.global_orient.dtype)
        refiner = Refiner(hand, terms, stage_settings)
        offset = done

        def stage_progress(step: int, total: int, loss: float, _o: int = offset) -> None:
            if progress is not None:
                progress(_o + step, grand_total, loss)

        result = refiner.run(current, objects, seed=seed + 7919 * k, progress=stage_progress)
        done += stage.settings.iterations
        traces.append(result.loss_trace)
        total_time += result.time_s
        current = result.hand_params()
        objects = ObjectBatch(objects.points, objects.normals, result.object_rotation, result.object_translation,
                              objects.sdf)
    assert result is not None
    result.loss_trace = torch.cat(traces, 1)
    result.time_s = total_time
    return result


def reference_targets(
    hand: HandLike, reference: Any, grasps: Any, objects: ObjectBatch, device: Any, dtype: torch.dtype
) -> ContactTargets:
    if grasps.reference_index is not None and len(reference) != len(grasps):
        idx = np.asarray(grasps.reference_index, dtype=np.int64)
    elif len(reference) == len(grasps):
        idx = np.arange(len(grasps))
    elif grasps.reference_index is not None:
        idx = np.asarray(grasps.reference_index, dtype=np.int64)
    else:
        raise ContactkitError(
            f"targets holds {len(reference)} grasps but the set to refine holds {len(grasps)} and has no "
            "reference_index"
        )
    if idx.min(initial=0) < 0 or idx.max(initial=0) >= len(reference):
        raise ContactkitError(f"reference_index out of range for a reference set of {len(reference)} grasps")
    ref = reference.subset(idx)
    for i in range(len(grasps)):
        if ref.object_ids[i] != grasps.object_ids[i]:
            raise ContactkitError(
                f"grasp {i} uses object {grasps.object_ids[i]} but its reference uses {ref.object_ids[i]}"
            )
    t = ref.hand_tensors(device=device, dtype=dtype)
    params = HandParamsInit(t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    return oracle_targets(
        hand, params, objects, ref_rotation=t["object_rotation"], ref_translation=t["object_translation"]
    )


def _targets_from_maps(grasps: Any, objects: ObjectBatch, device: Any, dtype: torch.dtype) -> ContactTargets:
    from contactkit.geometry.knn import nearest_points

    hand_c = None
    if grasps.hand_contact is not None:
        hand_c = torch.as_tensor(np.array(grasps.hand_contact), dtype=dtype, device=device)
    obj_c = None
    if grasps.object_contact is not None and grasps.object_points is not None:
        src_pts = torch.as_tensor(np.array(grasps.object_points), dtype=dtype, device=device)
        src_c = torch.as_tensor(np.array(grasps.object_contact), dtype=dtype, device=device)
        idx = nearest_points(objects.points, src_pts).idx
        obj_c = torch.gather(src_c, 1, idx)
    if hand_c is None and obj_c is None:
        raise ContactkitError("the targets set holds neither hand_contact nor object_points/object_contact")
    return ContactTargets(hand_contact=hand_c, object_contact=obj_c)


#: The learned contact estimator each method uses when it is given no targets (paper 000: DeepContact drives
#: ContactOpt; paper 004: PiCR recovers the springs CPF's GeO fits).
LEARNED_ESTIMATORS: dict[str, Literal["deepcontact", "picr"]] = {
    "contactopt": "deepcontact",
    "cpf": "picr",
    "cpf_object": "picr",
}


def _default_targets(method: str, grasps: Any, hand: HandLike, device: torch.device | str) -> Any:
    """Targets used when none are given: the method's learned estimator, else the linked ground truth."""
    kind = LEARNED_ESTIMATORS.get(method)
    if kind is not None:
        # Imported here: contactkit.learn builds its training data with this module.
        from contactkit.learn.estimators import load_estimator, shipped_weights_exist

        name = getattr(hand, "name", "")
        if shipped_weights_exist(kind, name):
            return load_estimator(kind, hand, device=device)  # type: ignore[arg-type]
        if "reference" not in grasps.attrs:
            raise ContactkitError(
                f"method {method!r} has no shipped {kind} weights for the {name!r} hand and the grasps are not "
                f"linked to a ground truth: pass targets (a reference grasp file, contact maps, or a checkpoint "
                f"trained with `contactkit train {kind}`)"
            )
        warnings.warn(
            f"no shipped {kind} weights for the {name!r} hand: refining toward the linked ground truth (oracle)",
            stacklevel=3,
        )
    return grasps.attrs.get("reference")


@dataclass
class _Progress:
    callback: Callable[[int, int, float], None] | None
    offset: int = 0
    total: int = 0

    def __call__(self, step: int, total: int, loss: float) -> None:
        if self.callback is not None:
            self.callback(self.offset + step, self.total, loss)


def refine(
    grasps: Any,
    method: str,
    *,
    targets: Any = None,
    hand: HandLike | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    batch_size: int = 64,
    num_points: int = 2048,
    sdf_resolution: int = 64,
    progress: Callable[[int, int, float], None] | None = None,
    **settings: Any,
) -> Any:
    """Refine every grasp of ``grasps`` with the named method.

    Args:
        grasps: the :class:`contactkit.io.grasps.GraspSet` to refine.
        method: a name from :func:`contactkit.refine.methods.list_methods`.
        targets: None (the default: the learned estimator of :data:`LEARNED_ESTIMATORS` for ``contactopt`` and
            ``cpf``/``cpf_object``, shipped for OpenHand; for the other methods, or a hand without shipped weights,
            the linked ground truth ``grasps.attrs["reference"]`` as oracle, else the set's own
            ``hand_contact``/``object_contact``), ``"oracle"`` (the linked ground truth), a reference ``GraspSet``
            or path (oracle targets, matched 1:1 or through ``grasps.reference_index``), a
            :class:`ContactTargets` for all N grasps, or a :class:`ContactEstimator`.
        hand: hand model (default: ``load_hand(grasps.hand_model, grasps.side)``).
        seed: seed of the restarts' perturbations (and of the object sampling).
        device, dtype: where and in which precision to optimise.
        batch_size: grasps optimised together.
        progress: ``progress(step, total_steps, batch_loss)`` after every optimiser step.
        settings: overrides of the method's :class:`RefinerSettings` (e.g. ``iterations=50``, ``restarts=1``).

    Returns:
        A new ``GraspSet`` with refined parameters, ``hand_vertices``, ``loss_traces`` ``(N, T)`` (NaN after an
        early stop), ``metadata[i]["refine"]`` and ``attrs["refine"]``.
    """
    from contactkit.io.grasps import GraspSet, load_grasps

    if not isinstance(grasps, GraspSet):
        raise ShapeError(f"grasps must be a GraspSet, got {type(grasps).__name__}")
    spec = get_method(method)
    if len(grasps) == 0:
        raise ContactkitError("the grasp set is empty: there is nothing to refine")
    if batch_size < 1:
        raise ContactkitError(f"batch_size must be >= 1, got {batch_size}")
    if hand is None:
        from contactkit.hands import load_hand

        hand = load_hand(grasps.hand_model, grasps.side, dtype=dtype)
    to = getattr(hand, "to", None)
    if callable(to):
        hand = to(device=device, dtype=dtype)
    assert hand is not None
    n = len(grasps)
    objects = objects_from_grasps(
        grasps, num_points=num_points, sdf_resolution=sdf_resolution, seed=seed, device=device, dtype=dtype
    )
    if targets is None:
        targets = _default_targets(spec.name, grasps, hand, device)
    elif isinstance(targets, str) and targets == "oracle":
        if "reference" not in grasps.attrs:
            raise ContactkitError("targets='oracle' needs a grasp set linked to its ground truth (attrs['reference'])")
        targets = grasps.attrs["reference"]
    if isinstance(targets, str | os.PathLike):
        targets = load_grasps(targets)
    if targets is None:
        tg = _targets_from_maps(grasps, objects, device, dtype)
        targets_source = "stored contact maps"
    elif isinstance(targets, GraspSet):
        tg = reference_targets(hand, targets, grasps, objects, device, dtype)
        targets_source = "oracle (reference grasps)"
    elif isinstance(targets, ContactTargets):
        tg = targets
        targets_source = "given contact targets"
    elif isinstance(targets, ContactEstimator):
        targets_source = f"learned ({type(targets).__name__})"
        t = grasps.hand_tensors(device=device, dtype=dtype)
        with torch.no_grad():
            out = hand(t["global_orient"], t["hand_pose"], t["betas"] if hand.num_betas > 0 else None, t["transl"])
        rot, tr = objects.rotation, objects.translation
        tg = targets.predict(
            out.vertices, objects.points @ rot.transpose(1, 2) + tr.unsqueeze(1), objects.normals @ rot.transpose(1, 2)
        )
    else:
        raise ContactkitError(
            "targets must be None, a GraspSet or path (oracle), ContactTargets or a ContactEstimator, "
            f"got {type(targets).__name__}"
        )

    t = grasps.hand_tensors(device=device, dtype=dtype)
    init = HandParamsInit(t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    stage_iters = spec.with_settings(**settings).stages if settings else spec.stages
    per_batch = sum(st.settings.iterations for st in stage_iters)
    tracker = _Progress(progress, 0, per_batch * math.ceil(n / batch_size))
    results: list[RefineResult] = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size), device=device)
        sub_init = HandParamsInit(init.global_orient[idx], init.hand_pose[idx], init.betas[idx], init.transl[idx])
        tracker.offset = (start // batch_size) * per_batch
        res = run_method(
            hand, sub_init, _subset_objects(objects, idx), spec, _subset_targets(tg, idx),
            seed=seed + start, progress=tracker, **settings,
        )
        results.append(res)

    def cat(name: str) -> np.ndarray:
        return torch.cat([getattr(r, name).detach() for r in results]).cpu().double().numpy()

    width = max(r.loss_trace.shape[1] for r in results)
    traces = np.full((n, width), np.nan)
    row = 0
    for r in results:
        tr_np = r.loss_trace.detach().cpu().double().numpy()
        traces[row: row + tr_np.shape[0], : tr_np.shape[1]] = tr_np
        row += tr_np.shape[0]
    go, hp, be, tl = cat("global_orient"), cat("hand_pose"), cat("betas"), cat("transl")
    orot, otr = cat("object_rotation"), cat("object_translation")
    with torch.no_grad():
        tt = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
        out = hand(tt(go), tt(hp), tt(be) if hand.num_betas > 0 else None, tt(tl))
        verts = out.vertices
        hand_contact: np.ndarray | None = None
        if grasps.hand_contact is not None and objects.sdf is not None:
            local = (verts - tt(otr).unsqueeze(1)) @ tt(orot)
            contact = hand_contact_from_sdf(objects.sdf(local, torch.arange(n, device=device)))
            hand_contact = contact.cpu().double().numpy()
    best = cat("best_loss")
    initial = cat("initial_loss")
    metadata = []
    for i in range(n):
        md = dict(grasps.metadata[i]) if grasps.metadata else {}
        b = i // batch_size
        md["refine"] = {
            "method": spec.name,
            "initial_loss": float(initial[i]),
            "best_loss": float(best[i]),
            "restart": int(results[b].restart_index[i - b * batch_size]),
            "status": results[b].status,
            "time_s": results[b].time_s / max(1, results[b].best_loss.shape[0]),
        }
        metadata.append(md)
    attrs = dict(grasps.attrs)
    attrs["refine"] = {
        "method": spec.name,
        "source": spec.source,
        "targets": targets_source,
        "seed": int(seed),
        "batch_size": int(batch_size),
        "settings": {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in settings.items()},
        "time_s": float(sum(r.time_s for r in results)),
    }
    changes: dict[str, Any] = {
        "global_orient": go, "hand_pose": hp, "betas": be, "transl": tl,
        "object_rotation": orot, "object_translation": otr,
        "hand_vertices": verts.detach().cpu().double().numpy(),
        "loss_traces": traces, "metadata": metadata, "attrs": attrs,
    }
    if hand_contact is not None:
        changes["hand_contact"] = hand_contact
    return grasps.replace(**changes)

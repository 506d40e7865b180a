"""Library entry points: refine tensors with a named method, or a whole :class:`GraspSet`.

``refine(grasps, "contactopt")`` takes a grasp set, builds per-object surface samples (2048 points, seeded)
and SDF grids once, derives the targets, runs the method's stages in batches and returns a new grasp set with the
refined parameters, ``loss_traces`` and a ``metadata[i]["refine"]`` record per grasp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.diffcontact import hand_contact_from_sdf
from contactkit.errors import ContactkitError, ShapeError
from contactkit.refine.methods import MethodContext, MethodSpec, get_method
from contactkit.refine.refiner import HandLike, Refiner, RefineResult
from contactkit.refine.targets import LEARNED_ESTIMATORS, resolve_targets
from contactkit.targets import (
    ContactTargets,
    HandParamsInit,
    ObjectBatch,
    is_oracle_source,
    objects_from_grasps,
    subset_objects,
)

__all__ = ["LEARNED_ESTIMATORS", "refine", "run_method"]


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


def _run_batch(hand: HandLike, init: HandParamsInit, objects: ObjectBatch, spec: MethodSpec,
               targets: ContactTargets, seed: int, settings: dict[str, Any]) -> RefineResult:
    """One batch of :func:`refine` (a Ray task)."""
    return run_method(hand, init, objects, spec, targets, seed=seed, **settings)


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
    ray: str | None = None,
    ray_cpus: int = 2,
    **settings: Any,
) -> Any:
    """Refine every grasp of ``grasps`` with the named method.

    Args:
        grasps: the :class:`contactkit.io.grasps.GraspSet` to refine.
        method: a name from :func:`contactkit.refine.methods.list_methods`.
        targets: None (the default): the method's in-the-wild targets, never the ground truth
            (:func:`contactkit.refine.targets.resolve_targets`: DeepContact for ``contactopt``, PiCR for ``cpf``,
            statistical contact zones for ``obman``, none for ``affinity``, a learned CHOIR predictor for
            ``choir``); ``"oracle"`` (the linked ground truth), a reference ``GraspSet`` or path (oracle targets,
            paired through ``grasps.reference_index``, else 1:1), a :class:`ContactTargets` for all N grasps, or a
            :class:`ContactEstimator`. The source is recorded as ``attrs["targets"]`` (see
            :mod:`contactkit.targets.contract`; label rows with :func:`contactkit.targets.method_label`).
        hand: hand model (default: ``load_hand(grasps.hand_model, grasps.side)``).
        seed: seed of the restarts' perturbations (and of the object sampling).
        device, dtype: where and in which precision to optimise.
        batch_size: grasps optimised together.
        progress: ``progress(step, total_steps, batch_loss)`` after every optimiser step (with ``ray``: after
            every batch, with its mean best loss).
        ray: run the batches as Ray tasks (:mod:`contactkit.raytasks`): ``""`` starts a local Ray with
            ``ray_cpus`` CPUs in this process, ``HOST:PORT`` joins a cluster. Objects and targets are prepared
            here once; each task refines one batch exactly as the serial loop does (same seeds), so the
            result is the serial one.
        settings: overrides of the method's :class:`RefinerSettings` (e.g. ``iterations=50``, ``restarts=1``).

    Returns:
        A new ``GraspSet`` with refined parameters, ``hand_vertices``, ``loss_traces`` ``(N, T)`` (NaN after an
        early stop), ``metadata[i]["refine"]``, ``attrs["refine"]`` and ``attrs["targets"]``.

    Raises:
        ContactkitError: the method has no in-the-wild targets for this hand and none were given.
    """
    from contactkit.io.grasps import GraspSet

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
    if spec.name == "choir" and targets is None:
        return _choir_in_the_wild(grasps, hand, seed=seed, batch_size=batch_size, num_points=num_points, **settings)
    n = len(grasps)
    objects = objects_from_grasps(
        grasps, num_points=num_points, sdf_resolution=sdf_resolution, seed=seed, device=device, dtype=dtype
    )
    resolved = resolve_targets(spec.name, grasps, hand, objects, targets, device=device, dtype=dtype)
    tg = resolved.targets
    targets_source = resolved.source

    t = grasps.hand_tensors(device=device, dtype=dtype)
    init = HandParamsInit(t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    stage_iters = spec.with_settings(**settings).stages if settings else spec.stages
    per_batch = sum(st.settings.iterations for st in stage_iters)
    tracker = _Progress(progress, 0, per_batch * math.ceil(n / batch_size))
    jobs = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size), device=device)
        jobs.append((hand, init.subset(idx), subset_objects(objects, idx), spec, tg.subset(idx), seed + start,
                     settings))
    results: list[RefineResult] = []
    if ray is None:
        for b, job in enumerate(jobs):
            tracker.offset = b * per_batch
            results.append(run_method(*job[:5], seed=job[5], progress=tracker, **settings))
    else:
        from contactkit.raytasks import ray_map

        finished = 0

        def on_done(b: int, res: RefineResult) -> None:
            nonlocal finished
            finished += 1
            if progress is not None:
                progress(finished * per_batch, tracker.total, float(res.best_loss.sum()))

        results = ray_map(_run_batch, jobs, address=ray, cpus=ray_cpus, on_done=on_done)

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
            "targets": targets_source,
        }
        metadata.append(md)
    attrs = dict(grasps.attrs)
    attrs["targets"] = targets_source
    attrs["refine"] = {
        "method": spec.name,
        "source": spec.source,
        "targets": targets_source,
        "oracle": is_oracle_source(targets_source),
        **resolved.details,
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


def _choir_in_the_wild(grasps: Any, hand: Any, **kwargs: Any) -> Any:
    """``choir`` without targets: JointDiffusion's sample and the input-anchored two-stage fit
    (:func:`contactkit.diffusion.fitting.refine_in_the_wild`, the one implementation; serial, no ``ray``)."""
    from contactkit.diffusion.fitting import refine_in_the_wild
    from contactkit.refine.targets import IN_THE_WILD, learned_choir_predictor

    out = refine_in_the_wild(grasps, learned_choir_predictor(hand), hand=hand, **kwargs)
    return out.replace(attrs={**out.attrs, "targets": IN_THE_WILD["choir"]})

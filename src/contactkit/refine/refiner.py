"""Test-time grasp refiner: minimise a weighted sum of energy terms over hand (and object) parameters.

The refiner is model-agnostic: it takes any ``HandLike`` (a callable with the :class:`contactkit.hands.HandModel`
interface) and never imports a concrete hand model. It optimises, per sample,

- the hand's global rotation (axis-angle or the continuous 6D representation),
- the finger pose (axis-angle, or a PCA update ``hand_pose = init + pca_to_axis_angle(c) - pca_to_axis_angle(0)``
  which starts exactly at the initial pose and moves within the first ``k`` components),
- shape coefficients and translation,
- optionally the object's rigid pose (a rotation update ``exp(delta) R0`` and translation ``t0 + dt``),

with Adam and a learning-rate multiplier per parameter group (ContactOpt's gradient scaling), a
ReduceLROnPlateau-style schedule (CPF/GeO), early stopping, and random restarts that run in the same batch and
keep each sample's best iterate. Runs are deterministic for a given seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from contactkit.contact.terms import EnergyTerm, HandObjectState, NeighbourCache, Objective
from contactkit.errors import ContactkitError, ShapeError
from contactkit.geometry.rotations import (
    axis_angle_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_rot6d,
)
from contactkit.settings import updated
from contactkit.targets.contract import HandParamsInit, ObjectBatch

__all__ = [
    "PARAM_GROUPS",
    "HandLike",
    "HandParamsInit",
    "ObjectBatch",
    "RefineResult",
    "Refiner",
    "RefinerSettings",
    "build_state",
]

#: Names of the optimisable parameter groups.
PARAM_GROUPS = ("global_orient", "hand_pose", "betas", "transl", "object_rotation", "object_translation")


class HandLike(Protocol):
    """What the refiner needs from a hand model (see :class:`contactkit.hands.HandModel`)."""

    num_betas: int
    faces: Tensor

    def __call__(
        self,
        global_orient: Tensor,
        hand_pose: Tensor,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
        *,
        pose_space: Literal["axis_angle", "pca"] = "axis_angle",
    ) -> Any: ...

    def anchors(self, vertices: Tensor) -> Tensor: ...

    def pca_to_axis_angle(self, coeffs: Tensor) -> Tensor: ...


@dataclass
class RefinerSettings:
    """Optimiser settings (a preset's second half). ``replace(**kw)`` rejects unknown keys.

    Attributes:
        iterations: maximum number of Adam steps.
        lr: base learning rate.
        lr_scale: learning-rate multiplier per parameter group (:data:`PARAM_GROUPS`).
        optimize: parameter groups that move; the others stay at their initial values.
        pose_space: "axis_angle" (45 values) or "pca" (``pca_components`` coefficients of an update).
        pca_components: k for ``pose_space="pca"``.
        rotation: "axis_angle" or "6d" parameterisation of the hand's global rotation.
        plateau_patience: iterations without a relative improvement of ``plateau_threshold`` of the batch loss
            before the learning rate is multiplied by ``plateau_factor`` (None: constant learning rate).
        early_stop_patience: stop after this many iterations without improvement (None: never), or when every
            learning rate fell below ``min_lr``.
        restarts: copies of each sample optimised together; copy 0 starts at the given pose, the others at
            perturbations (``restart_transl_sigma`` metres per axis, ``restart_rot_sigma`` radians about a random
            axis); the copy with the lowest final best loss is kept.
        knn_refresh: nearest-neighbour indices are recomputed every this many iterations.
        dtype: torch dtype of the optimisation.
    """

    iterations: int = 250
    lr: float = 1e-2
    lr_scale: dict[str, float] = field(default_factory=dict)
    optimize: tuple[str, ...] = ("global_orient", "hand_pose", "transl")
    pose_space: Literal["axis_angle", "pca"] = "axis_angle"
    pca_components: int = 45
    rotation: Literal["axis_angle", "6d"] = "axis_angle"
    plateau_patience: int | None = None
    plateau_factor: float = 0.5
    plateau_threshold: float = 1e-4
    min_lr: float = 1e-6
    early_stop_patience: int | None = None
    restarts: int = 1
    restart_transl_sigma: float = 0.01
    restart_rot_sigma: float = math.radians(10.0)
    knn_refresh: int = 1
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ContactkitError(f"iterations must be >= 0, got {self.iterations}")
        if self.lr <= 0:
            raise ContactkitError(f"lr must be > 0, got {self.lr}")
        if self.restarts < 1:
            raise ContactkitError(f"restarts must be >= 1, got {self.restarts}")
        if self.pose_space not in ("axis_angle", "pca"):
            raise ContactkitError(f"pose_space must be one of ('axis_angle', 'pca'), got {self.pose_space!r}")
        if self.rotation not in ("axis_angle", "6d"):
            raise ContactkitError(f"rotation must be one of ('axis_angle', '6d'), got {self.rotation!r}")
        if not 1 <= self.pca_components <= 45:
            raise ContactkitError(f"pca_components must lie in [1, 45], got {self.pca_components}")
        unknown = [g for g in (*self.optimize, *self.lr_scale) if g not in PARAM_GROUPS]
        if unknown:
            raise ContactkitError(f"unknown parameter group(s) {unknown}; valid: {PARAM_GROUPS}")

    def replace(self, **changes: Any) -> RefinerSettings:
        """A copy with ``changes``; unknown keys raise :class:`ContactkitError` listing the valid ones."""
        return updated(self, "refiner setting", **changes)


@dataclass
class RefineResult:
    """Output of :meth:`Refiner.run` for ``N0`` samples (the best restart of each).

    Attributes:
        global_orient: (N0, 3) axis-angle, radians.
        hand_pose: (N0, 45) axis-angle, radians.
        betas: (N0, n_shape).
        transl: (N0, 3) metres.
        object_rotation: (N0, 3, 3).
        object_translation: (N0, 3) metres.
        loss_trace: (N0, T) weighted total loss at each evaluated iterate (T = iterations run + 1; the last
            entry is the final iterate).
        best_loss: (N0,) the lowest loss reached (the returned parameters reach it).
        initial_loss: (N0,) loss at the initial pose.
        restart_index: (N0,) int64 — which restart produced the result.
        term_values: weighted term values (N0,) at the returned parameters, by term name.
        status: "max_iterations" | "converged" (early stop) | "no_iterations".
        iterations: number of optimiser steps run.
        time_s: wall time, seconds.
    """

    global_orient: Tensor
    hand_pose: Tensor
    betas: Tensor
    transl: Tensor
    object_rotation: Tensor
    object_translation: Tensor
    loss_trace: Tensor
    best_loss: Tensor
    initial_loss: Tensor
    restart_index: Tensor
    term_values: dict[str, Tensor]
    status: str
    iterations: int
    time_s: float

    def hand_params(self) -> HandParamsInit:
        return HandParamsInit(self.global_orient, self.hand_pose, self.betas, self.transl)


def build_state(
    hand: HandLike,
    global_orient: Tensor,
    hand_pose: Tensor,
    betas: Tensor | None,
    transl: Tensor,
    objects: ObjectBatch,
    rows: Tensor,
    *,
    obj_rotation: Tensor | None = None,
    obj_translation: Tensor | None = None,
    cache: NeighbourCache | None = None,
    params: dict[str, Tensor] | None = None,
    init_params: dict[str, Tensor] | None = None,
    posed_object: tuple[Tensor, Tensor] | None = None,
) -> HandObjectState:
    """Pose the hand and the objects of ``rows`` and assemble a :class:`HandObjectState` (world frame).

    Args:
        global_orient: (B, 3) axis-angle; hand_pose: (B, 45) axis-angle; betas: (B, n) or None; transl: (B, 3).
        rows: (B,) int64 — sample of ``objects`` each row belongs to.
        obj_rotation, obj_translation: (B, 3, 3), (B, 3) object pose (default ``objects``' pose of ``rows``).
        posed_object: the world-frame ``(obj_points (B, P, 3), obj_normals (B, P, 3))`` of an earlier state with
            the same rows and object pose, reused instead of transforming the object points again.
    """
    out = hand(global_orient, hand_pose, betas, transl)
    verts = out.vertices
    dtype = verts.dtype
    rot = (objects.rotation[rows] if obj_rotation is None else obj_rotation).to(dtype)
    tr = (objects.translation[rows] if obj_translation is None else obj_translation).to(dtype)
    if posed_object is None:
        pts = objects.points[rows].to(dtype)
        nrm = objects.normals[rows].to(dtype)
        pts_w = pts @ rot.transpose(1, 2) + tr.unsqueeze(1)
        nrm_w = nrm @ rot.transpose(1, 2)
    else:
        pts_w, nrm_w = posed_object
    sdf = None
    if objects.sdf is not None:
        local = _Contiguous.apply(verts) if _identity_pose(rot, tr) else (verts - tr.unsqueeze(1)) @ rot
        sdf = objects.sdf(local, rows)
    return HandObjectState(
        hand_verts=verts,
        keypoints=out.keypoints,
        anchor_fn=hand.anchors,
        obj_points=pts_w,
        obj_normals=nrm_w,
        hand_sdf=sdf,
        obj_rotation=rot,
        obj_translation=tr,
        params=params or {},
        init_params=init_params or {},
        sample_index=rows,
        cache=cache or NeighbourCache(),
    )


def _identity_pose(rot: Tensor, tr: Tensor) -> bool:
    """True when the object pose is exactly ``R = I, t = 0`` and carries no gradient (grasps given in the object
    frame, the usual case): then ``(verts - t) @ R`` is ``verts`` itself, bitwise (every product by 0 or 1 is
    exact), values and gradients, and the refiner skips the two (B, V, 3) x (B, 3, 3) products per iteration
    (through :class:`_Contiguous`, which keeps the memory layout those products give)."""
    if rot.requires_grad or tr.requires_grad:
        return False
    eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
    return bool((rot == eye).all()) and not bool(tr.any())


class _Contiguous(torch.autograd.Function):
    """``x.contiguous()`` whose gradient is made contiguous too, as a product's output and gradient are: the hand
    layer's backward products round according to the memory layout of the gradient they receive."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.contiguous() if not x.is_contiguous() else x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad.contiguous()


class _Plateau:
    """ReduceLROnPlateau on the batch loss (mode min, relative threshold)."""

    def __init__(self, opt: torch.optim.Optimizer, patience: int, factor: float, threshold: float, min_lr: float):
        self.opt, self.patience, self.factor = opt, patience, factor
        self.threshold, self.min_lr = threshold, min_lr
        self.best = math.inf
        self.bad = 0

    def step(self, value: float) -> None:
        if value < self.best * (1.0 - self.threshold) if self.best > 0 else value < self.best - 1e-12:
            self.best = value
            self.bad = 0
            return
        self.bad += 1
        if self.bad > self.patience:
            for g in self.opt.param_groups:
                g["lr"] = max(g["lr"] * self.factor, self.min_lr)
            self.bad = 0


class Refiner:
    """Minimise an :class:`Objective` over hand/object parameters (see module docstring).

    Args:
        hand: a ``HandLike`` model (its dtype/device set the optimisation's).
        terms: energy terms; per-sample data inside them is indexed by the original sample index.
        settings: :class:`RefinerSettings`.
    """

    def __init__(self, hand: HandLike, terms: Sequence[EnergyTerm], settings: RefinerSettings | None = None):
        self.hand = hand
        self.objective = Objective(terms)
        self.settings = settings or RefinerSettings()

    # -------------------------------------------------------------------------------------------------------
    def run(
        self,
        init: HandParamsInit,
        objects: ObjectBatch,
        *,
        seed: int = 0,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> RefineResult:
        """Refine ``init`` (N0 samples) against ``objects``; ``progress(step, total, batch_loss)`` per step."""
        s = self.settings
        t0 = time.perf_counter()
        n0 = init.batch_size
        if objects.points.shape[0] != n0:
            raise ShapeError(f"objects hold {objects.points.shape[0]} samples, init holds {n0}")
        device = init.global_orient.device
        dtype = s.dtype
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        reps = s.restarts
        rows = torch.arange(n0, device=device).repeat(reps)
        bsz = n0 * reps

        def rep(x: Tensor) -> Tensor:
            return x.to(device=device, dtype=dtype).repeat(reps, *([1] * (x.ndim - 1)))

        go0, hp0, be0, tr0 = rep(init.global_orient), rep(init.hand_pose), rep(init.betas), rep(init.transl)
        orot0 = rep(objects.rotation)
        otr0 = rep(objects.translation)
        if reps > 1:
            dt = torch.randn(bsz, 3, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
            axis = torch.randn(bsz, 3, generator=gen, dtype=torch.float64)
            axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-12)
            ang = torch.randn(bsz, 1, generator=gen, dtype=torch.float64) * s.restart_rot_sigma
            drot = axis_angle_to_rotmat((axis * ang).to(device=device, dtype=dtype))
            first = torch.arange(bsz, device=device) < n0
            dt = torch.where(first.unsqueeze(-1), torch.zeros_like(dt), dt * s.restart_transl_sigma)
            eye = torch.eye(3, dtype=dtype, device=device).expand(bsz, 3, 3)
            drot = torch.where(first.view(-1, 1, 1), eye, drot)
            # rotate the hand about its own translation origin and shift it
            go0 = rotmat_to_axis_angle(drot @ axis_angle_to_rotmat(go0))
            tr0 = tr0 + dt
        init_params = {"global_orient": go0, "hand_pose": hp0, "betas": be0, "transl": tr0}

        # ---- variables
        opt_groups = set(s.optimize)
        variables: dict[str, Tensor] = {}
        if s.rotation == "6d":
            variables["global_orient"] = rotmat_to_rot6d(axis_angle_to_rotmat(go0)).clone()
        else:
            variables["global_orient"] = go0.clone()
        if s.pose_space == "pca":
            variables["hand_pose"] = torch.zeros(bsz, s.pca_components, dtype=dtype, device=device)
        else:
            variables["hand_pose"] = hp0.clone()
        variables["betas"] = be0.clone()
        variables["transl"] = tr0.clone()
        variables["object_rotation"] = torch.zeros(bsz, 3, dtype=dtype, device=device)
        variables["object_translation"] = torch.zeros(bsz, 3, dtype=dtype, device=device)
        groups = []
        for name in PARAM_GROUPS:
            if name in opt_groups:
                variables[name].requires_grad_(True)
                groups.append({"params": [variables[name]], "lr": s.lr * s.lr_scale.get(name, 1.0), "name": name})
        pca_zero = None
        if s.pose_space == "pca":
            pca_zero = self.hand.pca_to_axis_angle(torch.zeros_like(variables["hand_pose"][:1])).to(dtype)

        def decode() -> tuple[dict[str, Tensor], Tensor, Tensor]:
            if s.rotation == "6d":
                go = rotmat_to_axis_angle(rot6d_to_rotmat(variables["global_orient"]))
            else:
                go = variables["global_orient"]
            if s.pose_space == "pca":
                assert pca_zero is not None
                hp = hp0 + self.hand.pca_to_axis_angle(variables["hand_pose"]).to(dtype) - pca_zero
            else:
                hp = variables["hand_pose"]
            orot = axis_angle_to_rotmat(variables["object_rotation"]) @ orot0
            otr = otr0 + variables["object_translation"]
            params = {"global_orient": go, "hand_pose": hp, "betas": variables["betas"], "transl": variables["transl"]}
            return params, orot, otr

        cache = NeighbourCache(s.knn_refresh)
        betas_used = self.hand.num_betas > 0
        # a fixed object is posed once: its world-frame points and normals are the same at every iteration
        fixed_object = not ({"object_rotation", "object_translation"} & opt_groups)
        posed: tuple[Tensor, Tensor] | None = None

        def evaluate() -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor], Tensor, Tensor]:
            nonlocal posed
            params, orot, otr = decode()
            state = build_state(
                self.hand, params["global_orient"], params["hand_pose"],
                params["betas"] if betas_used else None, params["transl"], objects, rows,
                obj_rotation=orot, obj_translation=otr, cache=cache, params=params, init_params=init_params,
                posed_object=posed,
            )
            if fixed_object and posed is None:
                posed = (state.obj_points, state.obj_normals)
            value = self.objective.evaluate(state)
            return value.total, value.terms, params, orot, otr

        optimizer = torch.optim.Adam(groups) if groups else None
        plateau = (
            _Plateau(optimizer, s.plateau_patience, s.plateau_factor, s.plateau_threshold, s.min_lr)
            if optimizer is not None and s.plateau_patience is not None
            else None
        )
        best_loss = torch.full((bsz,), math.inf, dtype=dtype, device=device)
        best: dict[str, Tensor] = {}
        trace: list[Tensor] = []
        status = "max_iterations" if s.iterations > 0 and optimizer is not None else "no_iterations"
        since_best = 0
        best_batch = math.inf
        steps = 0

        def record(total: Tensor, params: dict[str, Tensor], orot: Tensor, otr: Tensor) -> None:
            nonlocal best_loss
            total = total.detach()
            better = total < best_loss
            best_loss = torch.where(better, total, best_loss)
            cur = {k: v.detach() for k, v in params.items()}
            cur["object_rotation"] = orot.detach()
            cur["object_translation"] = otr.detach()
            for k, v in cur.items():
                if k not in best:
                    best[k] = v.clone()
                else:
                    mask = better.view(-1, *([1] * (v.ndim - 1)))
                    best[k] = torch.where(mask, v, best[k])
            trace.append(total)

        iters = s.iterations if optimizer is not None else 0
        for it in range(iters):
            assert optimizer is not None
            optimizer.zero_grad(set_to_none=True)
            total, _, params, orot, otr = evaluate()
            record(total, params, orot, otr)
            batch_loss = float(total.detach().sum())
            total.sum().backward()
            optimizer.step()
            cache.step()
            steps = it + 1
            if progress is not None:
                progress(steps, iters, batch_loss)
            if plateau is not None:
                plateau.step(batch_loss)
            if batch_loss < best_batch * (1.0 - 1e-5) if best_batch > 0 else batch_loss < best_batch:
                best_batch = batch_loss
                since_best = 0
            else:
                since_best += 1
            if s.early_stop_patience is not None and since_best >= s.early_stop_patience:
                status = "converged"
                break
            if all(g["lr"] <= s.min_lr for g in optimizer.param_groups):
                status = "converged"
                break
        with torch.no_grad():
            total, _, params, orot, otr = evaluate()
            record(total, params, orot, otr)

        # ---- pick each sample's best restart
        trace_t = torch.stack(trace, 1)  # (bsz, T)
        per = best_loss.view(reps, n0)
        pick = per.argmin(0)  # (n0,)
        sel = pick * n0 + torch.arange(n0, device=device)
        out = {k: v[sel] for k, v in best.items()}
        # term values at the chosen parameters
        with torch.no_grad():
            state = build_state(
                self.hand, out["global_orient"], out["hand_pose"], out["betas"] if betas_used else None,
                out["transl"], objects, torch.arange(n0, device=device),
                obj_rotation=out["object_rotation"], obj_translation=out["object_translation"],
                params={k: out[k] for k in ("global_orient", "hand_pose", "betas", "transl")},
                init_params={k: v[sel] for k, v in init_params.items()},
            )
            value = self.objective.evaluate(state)
        return RefineResult(
            global_orient=out["global_orient"],
            hand_pose=out["hand_pose"],
            betas=out["betas"],
            transl=out["transl"],
            object_rotation=out["object_rotation"],
            object_translation=out["object_translation"],
            loss_trace=trace_t[sel],
            best_loss=best_loss[sel],
            initial_loss=trace_t[:n0, 0],
            restart_index=pick,
            term_values={k: v.detach() for k, v in value.terms.items()},
            status=status,
            iterations=steps,
            time_s=time.perf_counter() - t0,
        )

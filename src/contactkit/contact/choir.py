"""CHOIR: the coarse hand-object interaction representation (Morales et al., paper 002, Sec. 3.1 and 3.3).

A CHOIR of a hand-object pair, in the object's frame, is:

- a basis point set ``B = {b^1..b^M}``: a regular ``R x R x R`` grid (``R = 16``, ``M = 4096``) centred on the
  object's centroid and covering it;
- ``X_BPS^m = min_k ||b^m - x_k||^2``: squared distances to the object points (Eq. 1);
- ``d_H^m = ||b^m - a_{delta(m)}||^2``: squared distances to the 32 anchors with a fixed assignment ``delta``
  (Eq. 2): the repeating ordered pattern ``delta(m) = m mod 32`` (default) or a fixed shuffle of it (paper 002 App.
  B.1's second scheme; :func:`anchor_assignment`);
- contact: per hand vertex, the count of object points within ``lambda = 4 mm`` inside the cone of tolerance
  along the vertex normal (Eqs. 3-5); then one 3D Gaussian per anchor, fitted by weighted maximum likelihood
  to the vertices whose nearest anchor it is, stored as mean + Cholesky factor (Eq. 7).

Decoding: the anchors follow in closed form from ``d_H`` by linear least squares (multilateration), and a hand is
fitted with the two-stage test-time optimisation (stage 1: ``lambda1 * L_rec + lambda2 * ||beta|| + lambda3 *
||theta - theta_init||`` with 1000, 1e-4, 1e-8; stage 2: Gaussian-weighted distances to the object plus
penetration, pose and shape regularisers with ``lambda4 = 10``, ``lambda5 = 1000``, ``lambda6 = 0.5``).

Documented choices: the paper's cone half-angle is printed as ``4/3 pi``, which exceeds the range of arccos and
would accept every point; we default to ``pi / 4`` (a parameter). Contact densities in stage 2 are the
Gaussians' unnormalised densities ``exp(-m^2 / 2)`` (peak 1) so the weights do not depend on the Gaussian's size,
and the distance to the nearest object points is the distance to the object surface (|SDF|).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.terms import HandObjectState, check_points
from contactkit.errors import ContactkitError, ShapeError
from contactkit.geometry.knn import PointIndex

__all__ = [
    "ASSIGNMENT_SCHEMES",
    "CONE_ANGLE",
    "CONE_RADIUS",
    "NUM_ANCHORS",
    "ChoirField",
    "ChoirAnchorTerm",
    "ChoirContactTerm",
    "ParamPriorTerm",
    "RigidPriorTerm",
    "anchor_assignment",
    "anchor_distance_loss",
    "anchors_from_distances",
    "bps_grid",
    "cone_contact_weights",
    "contact_density",
    "encode",
    "fit_contact_gaussians",
    "nearest_anchor",
]

NUM_ANCHORS = 32
CONE_RADIUS = 4e-3
CONE_ANGLE = math.pi / 4
_COV_FLOOR = (0.5e-3) ** 2
#: Anchor-assignment schemes of ``d_H`` (:func:`anchor_assignment`).
ASSIGNMENT_SCHEMES: tuple[str, ...] = ("ordered", "shuffled")
#: Seed of the shuffled assignment's permutation, drawn with NumPy's legacy ``RandomState`` (whose stream NumPy
#: keeps frozen across versions, NEP 19), so the permutation is the same on every machine and version. Never change
#: it: models trained with the shuffled scheme depend on it (pinned by a regression test).
_SHUFFLE_SEED = 0


def bps_grid(obj_points: Tensor, *, resolution: int = 16, padding: float = 0.04) -> Tensor:
    """Regular basis-point grid around each object.

    Args:
        obj_points: (B, P, 3) float, metres — object points (object frame).
        resolution: points per axis (M = resolution^3).
        padding: metres added to the object's half-extent on every side.

    Returns:
        (B, M, 3) float, metres: a cube centred on the points' centroid, half-size
        ``max |x - centroid|_inf + padding``.
    """
    check_points("obj_points", obj_points)
    if resolution < 2:
        raise ShapeError(f"resolution must be >= 2, got {resolution}")
    centre = obj_points.mean(1, keepdim=True)
    half = (obj_points - centre).abs().amax(dim=(1, 2)) + padding  # (B,)
    lin = torch.linspace(-1.0, 1.0, resolution, dtype=obj_points.dtype, device=obj_points.device)
    gz, gy, gx = torch.meshgrid(lin, lin, lin, indexing="ij")
    unit = torch.stack([gx, gy, gz], -1).reshape(-1, 3)
    return centre + half.view(-1, 1, 1) * unit.unsqueeze(0)


def anchor_assignment(num_basis: int, num_anchors: int = NUM_ANCHORS, *, scheme: str = "ordered",
                      device: torch.device | None = None) -> Tensor:
    """(M,) int64 anchor index ``delta(m)`` of each basis point ``m`` (paper 002 App. B.1's two schemes).

    - ``"ordered"``: the repeating pattern ``delta(m) = m mod num_anchors``. On the regular grid (x fastest) each
      anchor's basis points lie in one plane ``x = const``, so ``d_H`` fixes each anchor only up to its mirror image
      across that plane (:func:`anchors_from_distances` needs a hint to choose).
    - ``"shuffled"``: the same pattern permuted by a fixed permutation of the ``num_basis`` indices
      (``np.random.RandomState(0).permutation(num_basis)``, frozen): each anchor keeps as many points, spread over the
      volume, so the decode is unique.

    Raises:
        ContactkitError: an unknown ``scheme``.
    """
    if scheme not in ASSIGNMENT_SCHEMES:
        raise ContactkitError(f"scheme must be one of {ASSIGNMENT_SCHEMES}, got {scheme!r}")
    delta = torch.arange(num_basis) % num_anchors
    if scheme == "shuffled":
        delta = delta[torch.from_numpy(np.random.RandomState(_SHUFFLE_SEED).permutation(num_basis))]
    return delta.to(device)


def anchor_sq_distances(grid: Tensor, anchors: Tensor, assignment: Tensor) -> Tensor:
    """``d_H^m = ||b^m - a_{delta(m)}||^2``: (B, M) from grid (B, M, 3), anchors (B, A, 3), assignment (M,)."""
    picked = anchors[:, assignment]
    return ((grid - picked) ** 2).sum(-1)


def _unique_objects(obj_points: Tensor) -> tuple[list[int], Tensor]:
    """Batch elements with identical object points share one search tree (perturbed copies of a grasp).

    Args:
        obj_points: (B, P, 3) float.

    Returns:
        ``(first, group)``: the first element of each distinct point set (U,), and each element's group (B,)
        int64 in ``[0, U)``.
    """
    bsz = obj_points.shape[0]
    if bsz == 1 or obj_points.stride(0) == 0:
        return [0], torch.zeros(bsz, dtype=torch.long)
    flat = obj_points.detach().reshape(bsz, -1).cpu()
    _, group = torch.unique(flat, dim=0, return_inverse=True)
    first: dict[int, int] = {}
    for i, gid in enumerate(group.tolist()):
        first.setdefault(gid, i)
    order = sorted(first, key=first.__getitem__)
    relabel = torch.empty(len(order), dtype=torch.long)
    relabel[torch.tensor(order)] = torch.arange(len(order))
    return [first[g] for g in order], relabel[group]


def _object_trees(obj_points: Tensor) -> tuple[list[PointIndex], Tensor]:
    """One k-d tree per distinct object point set: ``(trees (U,), group (B,) int64)``."""
    first, group = _unique_objects(obj_points)
    pts = obj_points.detach().cpu()
    return [PointIndex(pts[i]) for i in first], group


def _cone_weights_from_trees(
    hand_verts: Tensor, hand_normals: Tensor, obj_points: Tensor, trees: list[PointIndex], group: Tensor,
    radius: float, angle: float,
) -> Tensor:
    """Cone counts from a radius search (candidate pairs), each pair then tested exactly as the dense test."""
    bsz, num_v, _ = hand_verts.shape
    # the tree measures distances in its own precision: search a little wider, re-test every candidate below
    search = radius * (1.0 + 1e-4) + 1e-9
    verts_np = hand_verts.detach().cpu().numpy()
    elem, vert, point = [], [], []
    for b in range(bsz):
        rows, cols = trees[int(group[b])].pairs_within(verts_np[b], search)
        elem.append(np.full(rows.shape, b, dtype=np.int64))
        vert.append(rows)
        point.append(cols)
    dev = hand_verts.device
    e = torch.from_numpy(np.concatenate(elem)).to(dev)
    v = torch.from_numpy(np.concatenate(vert)).to(dev)
    p = torch.from_numpy(np.concatenate(point)).to(dev)
    rel = obj_points[e, p] - hand_verts[e, v]  # (N, 3)
    dist = rel.norm(dim=-1)
    cos = (rel * hand_normals[e, v]).sum(-1) / dist.clamp(min=1e-12)
    inside = (dist <= radius) & (cos >= math.cos(angle))
    counts = torch.zeros(bsz * num_v, dtype=hand_verts.dtype, device=dev)
    counts.index_add_(0, (e * num_v + v)[inside], torch.ones_like(dist[inside]))
    return counts.view(bsz, num_v)


def cone_contact_weights(
    hand_verts: Tensor,
    hand_normals: Tensor,
    obj_points: Tensor,
    *,
    radius: float = CONE_RADIUS,
    angle: float = CONE_ANGLE,
) -> Tensor:
    """Raw contact weight of each hand vertex: number of object points in its cone of tolerance (Eqs. 3-5).

    The object points within ``radius`` of each vertex come from a k-d tree radius search (one tree per
    distinct object point set in the batch); each such pair is then tested with the dense definition
    (``||x - v|| <= radius`` and ``cos(x - v, n) >= cos(angle)``), so the counts equal the dense count.

    Args:
        hand_verts: (B, V, 3) float, metres.
        hand_normals: (B, V, 3) float, unit outward hand normals.
        obj_points: (B, P, 3) float, metres.
        radius: the cone's length lambda, metres (> 0).
        angle: the cone's half-angle, radians.

    Returns:
        (B, V) float (integer counts), no gradient.
    """
    check_points("hand_verts", hand_verts)
    check_points("hand_normals", hand_normals, batch=hand_verts.shape[0], count=hand_verts.shape[1])
    check_points("obj_points", obj_points, batch=hand_verts.shape[0])
    if not radius > 0:
        raise ShapeError(f"radius must be > 0, got {radius}")
    with torch.no_grad():
        trees, group = _object_trees(obj_points)
        return _cone_weights_from_trees(hand_verts, hand_normals, obj_points, trees, group, radius, angle)


def nearest_anchor(verts: Tensor, anchors: Tensor) -> Tensor:
    """(B, V) int64 index of each vertex's nearest anchor (``verts (B, V, 3)``, ``anchors (B, A, 3)``, one
    frame): the anchor whose contact Gaussian a vertex belongs to. No gradient (an index)."""
    return torch.cdist(verts.detach(), anchors.detach()).argmin(-1)


def fit_contact_gaussians(
    hand_verts: Tensor, weights: Tensor, anchors: Tensor, *, cov_floor: float = _COV_FLOOR
) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted maximum-likelihood 3D Gaussian per anchor over the vertices whose nearest anchor it is.

    Args:
        hand_verts: (B, V, 3) float, metres.
        weights: (B, V) float >= 0 — raw contact weights (multiplicities of Eq. 6).
        anchors: (B, A, 3) float, metres.
        cov_floor: variance (m^2) added to the diagonal so a Gaussian on few vertices stays definite.

    Returns:
        ``(mean (B, A, 3), chol (B, A, 3, 3) lower-triangular, active (B, A) bool)``; an anchor without
        weight is inactive (mean at the anchor, identity-scaled factor, zero density).
    """
    bsz, num_v, _ = hand_verts.shape
    num_a = anchors.shape[1]
    owner = nearest_anchor(hand_verts, anchors)
    slot = (owner + num_a * torch.arange(bsz, device=owner.device).unsqueeze(1)).reshape(-1)  # (B*V,)
    w = weights.reshape(-1)
    x = hand_verts.reshape(-1, 3)
    total = hand_verts.new_zeros(bsz * num_a).index_add_(0, slot, w)
    active = (total > 0).view(bsz, num_a)
    safe = total.clamp(min=1e-12)
    mean = hand_verts.new_zeros(bsz * num_a, 3).index_add_(0, slot, w.unsqueeze(-1) * x) / safe.unsqueeze(-1)
    mean = torch.where(active.view(-1, 1), mean, anchors.reshape(-1, 3))
    centred = x - mean[slot]  # (B*V, 3)
    outer = (w.view(-1, 1, 1) * centred.unsqueeze(-1) * centred.unsqueeze(-2)).reshape(-1, 9)
    cov = hand_verts.new_zeros(bsz * num_a, 9).index_add_(0, slot, outer) / safe.unsqueeze(-1)
    cov = cov.view(bsz, num_a, 3, 3)
    eye = torch.eye(3, dtype=hand_verts.dtype, device=hand_verts.device)
    cov = cov + cov_floor * eye
    cov = torch.where(active.view(bsz, num_a, 1, 1), cov, cov_floor * eye.expand_as(cov))
    chol = torch.linalg.cholesky(cov)
    return mean.view(bsz, num_a, 3), chol, active


def contact_density(points: Tensor, mean: Tensor, chol: Tensor, active: Tensor) -> Tensor:
    """Unnormalised Gaussian density ``exp(-0.5 (x-mu)^T Sigma^-1 (x-mu))`` (peak 1) of paired Gaussians.

    Args:
        points: (B, N, 3) float, metres.
        mean: (B, N, 3) float, metres — the Gaussian paired with each point.
        chol: (B, N, 3, 3) float — lower Cholesky factor of its covariance.
        active: (B, N) bool — False gives density 0.

    Returns:
        (B, N) float in [0, 1].
    """
    diff = (points - mean).unsqueeze(-1)
    sol = torch.linalg.solve_triangular(chol, diff, upper=False).squeeze(-1)
    dens = torch.exp(-0.5 * (sol * sol).sum(-1))
    return torch.where(active, dens, torch.zeros_like(dens))


@dataclass
class ChoirField:
    """An encoded CHOIR (object frame), batch-first.

    Attributes:
        grid: (B, M, 3) float, metres — basis points.
        object_sq_dist: (B, M) float, m^2 — ``X_BPS``.
        anchor_sq_dist: (B, M) float, m^2 — ``d_H``.
        assignment: (M,) int64 — anchor index of each basis point.
        gauss_mean: (B, 32, 3) float, metres.
        gauss_chol: (B, 32, 3, 3) float — lower Cholesky factors.
        gauss_active: (B, 32) bool.
    """

    grid: Tensor
    object_sq_dist: Tensor
    anchor_sq_dist: Tensor
    assignment: Tensor
    gauss_mean: Tensor
    gauss_chol: Tensor
    gauss_active: Tensor

    def contact_vector(self) -> Tensor:
        """The paper's ``c_H`` (B, 32, 9): mean and the 6 lower-triangular entries of each factor."""
        rows, cols = torch.tril_indices(3, 3, device=self.gauss_chol.device)
        return torch.cat([self.gauss_mean, self.gauss_chol[..., rows, cols]], -1)

    def index(self, rows: Tensor) -> ChoirField:
        return ChoirField(
            self.grid[rows], self.object_sq_dist[rows], self.anchor_sq_dist[rows], self.assignment,
            self.gauss_mean[rows], self.gauss_chol[rows], self.gauss_active[rows],
        )


def _nearest_object_points(grid: Tensor, trees: list[PointIndex], group: Tensor) -> Tensor:
    """(B, M) int64 index of the nearest object point of each basis point (elements sharing a tree share
    their grid, which depends on the object points only, so each distinct object is searched once)."""
    grid_np = grid.detach().cpu().numpy()
    first: dict[int, int] = {}
    for b, gid in enumerate(group.tolist()):
        first.setdefault(gid, b)
    found = {gid: trees[gid].query(grid_np[b]) for gid, b in first.items()}
    idx = np.stack([found[gid] for gid in group.tolist()])
    return torch.from_numpy(idx).to(grid.device)


def encode(
    obj_points: Tensor,
    hand_verts: Tensor,
    hand_normals: Tensor,
    anchors: Tensor,
    *,
    resolution: int = 16,
    padding: float = 0.04,
    cone_radius: float = CONE_RADIUS,
    cone_angle: float = CONE_ANGLE,
    assignment: str = "ordered",
) -> ChoirField:
    """Encode hand-object pairs as CHOIR fields (all inputs in the object frame, metres).

    The nearest object point of each basis point and the object points in each vertex's cone come from k-d
    trees (one per distinct object point set in the batch, shared by both searches); ``X_BPS`` is then
    recomputed from the selected points, so it is exact and differentiable with respect to ``obj_points``.

    Args:
        obj_points: (B, P, 3) float — object surface points.
        hand_verts: (B, V, 3) float — hand vertices.
        hand_normals: (B, V, 3) float — unit hand vertex normals.
        anchors: (B, 32, 3) float — hand anchors.
        assignment: the anchor-assignment scheme of ``d_H`` (:func:`anchor_assignment`: "ordered" or "shuffled").
    """
    check_points("obj_points", obj_points)
    batch = obj_points.shape[0]
    check_points("hand_verts", hand_verts, batch=batch)
    check_points("anchors", anchors, batch=batch)
    grid = bps_grid(obj_points, resolution=resolution, padding=padding)
    delta = anchor_assignment(grid.shape[1], anchors.shape[1], scheme=assignment, device=grid.device)
    check_points("hand_normals", hand_normals, batch=batch, count=hand_verts.shape[1])
    if not cone_radius > 0:
        raise ShapeError(f"cone_radius must be > 0, got {cone_radius}")
    with torch.no_grad():
        trees, group = _object_trees(obj_points)
        obj_sq_idx = _nearest_object_points(grid, trees, group)
        weights = _cone_weights_from_trees(
            hand_verts, hand_normals, obj_points, trees, group, cone_radius, cone_angle
        )
    nearest = torch.gather(obj_points, 1, obj_sq_idx.unsqueeze(-1).expand(-1, -1, 3))
    obj_sq = ((grid - nearest) ** 2).sum(-1)
    anchor_sq = anchor_sq_distances(grid, anchors, delta)
    mean, chol, active = fit_contact_gaussians(hand_verts.detach(), weights, anchors.detach())
    return ChoirField(grid, obj_sq, anchor_sq, delta, mean, chol, active)


#: Relative singular-value threshold below which an anchor's basis points count as coplanar in
#: :func:`anchors_from_distances`. Until session 10 it was 1e-9, below float32's rounding (~1e-7 relative): the
#: exactly coplanar sets of the regular grid were then solved as if 3D, and the out-of-plane coordinate came from
#: rounding noise (the ground truth's own anchors decoded 40-55 mm off). Grid-point sets that are not coplanar have
#: singular values of the order of the grid spacing, far above it.
_PLANAR_RTOL = 1e-4


def anchors_from_distances(
    grid: Tensor,
    anchor_sq_dist: Tensor,
    assignment: Tensor,
    num_anchors: int = NUM_ANCHORS,
    *,
    hint: Tensor | None = None,
) -> Tensor:
    """Closed-form anchor decode by linear least squares (multilateration).

    For the basis points ``b`` of one anchor ``a``: ``||b||^2 - 2 b.a + ||a||^2 = d``. Subtracting the mean
    equation removes ``||a||^2`` and leaves ``-2 (b - b_mean) . a = (d - d_mean) - (||b||^2 - mean)``.
    When an anchor's basis points are coplanar (the ordered assignment on a regular grid puts them in one
    plane), the linear system fixes the in-plane coordinates and the quadratic equation gives two mirror
    solutions across the plane; the one closer to ``hint`` (or the one on the plane normal's positive side when
    no hint is given) is returned. The shuffled assignment spreads every anchor's points over the volume: the
    solution is unique and ``hint`` is not used.

    Args:
        grid: (B, M, 3) float, metres.
        anchor_sq_dist: (B, M) float, m^2.
        assignment: (M,) int64.
        hint: optional (B, num_anchors, 3) approximate anchors choosing between mirror solutions.

    Returns:
        (B, num_anchors, 3) float, metres.
    """
    out = []
    for j in range(num_anchors):
        sel = assignment == j
        b = grid[:, sel]  # (B, m, 3)
        d = anchor_sq_dist[:, sel]
        bn = (b * b).sum(-1)
        bc = b - b.mean(1, keepdim=True)
        rhs = (d - d.mean(1, keepdim=True)) - (bn - bn.mean(1, keepdim=True))
        mat = -2.0 * bc
        u_, sv, vh = torch.linalg.svd(mat, full_matrices=False)
        tol = sv[:, :1] * _PLANAR_RTOL
        inv = torch.where(sv > tol, 1.0 / sv.clamp(min=1e-300), torch.zeros_like(sv))
        sol = (vh.transpose(1, 2) @ (inv.unsqueeze(-1) * (u_.transpose(1, 2) @ rhs.unsqueeze(-1)))).squeeze(-1)
        planar = sv[:, -1] <= tol[:, 0]
        if bool(planar.any()):
            normal = vh[:, -1]  # (B, 3) null direction
            rel = b - sol.unsqueeze(1)
            u = (rel * normal.unsqueeze(1)).sum(-1).mean(1)  # constant over coplanar points
            c0 = ((rel * rel).sum(-1) - d).mean(1)
            disc = (u * u - c0).clamp(min=0.0).sqrt()
            s_plus, s_minus = u + disc, u - disc
            if hint is not None:
                h = ((hint[:, j] - sol) * normal).sum(-1)
                s_pick = torch.where((s_plus - h).abs() <= (s_minus - h).abs(), s_plus, s_minus)
            else:
                s_pick = torch.where(s_plus.abs() >= s_minus.abs(), s_plus, s_minus)
            sol = torch.where(planar.unsqueeze(-1), sol + s_pick.unsqueeze(-1) * normal, sol)
        out.append(sol)
    return torch.stack(out, 1)


def anchor_distance_loss(anchors: Tensor, grid: Tensor, target_sq_dist: Tensor, assignment: Tensor) -> Tensor:
    """Stage-1 reconstruction loss: mean squared error of anchor distances (the paper's Source Code 1).

    Args:
        anchors: (B, 32, 3) float, metres — current anchors.
        grid: (B, M, 3) float, metres.
        target_sq_dist: (B, M) float, m^2 — the CHOIR's ``d_H``.
        assignment: (M,) int64.

    Returns:
        (B,) float, m^4.
    """
    pred = anchor_sq_distances(grid, anchors, assignment)
    return ((pred - target_sq_dist) ** 2).mean(-1)


def _to_object_frame(state: HandObjectState, points: Tensor) -> Tensor:
    if state.obj_rotation is None or state.obj_translation is None:
        return points
    return (points - state.obj_translation.unsqueeze(1)) @ state.obj_rotation


@dataclass
class ChoirAnchorTerm:
    """Stage 1 ``L_rec``: anchors of the state against the field's anchor distances (object frame).

    Distances are measured in millimetres squared so that ``lambda1 = 1000`` brings the loss to a useful scale.
    """

    field: ChoirField
    weight: float = 1000.0
    name: str = "choir_anchors"
    length_unit: float = 1e-3

    def __call__(self, state: HandObjectState) -> Tensor:
        anchors = _to_object_frame(state, state.require_anchors(self.name))
        f = self.field.index(state.rows)
        u = self.length_unit
        return anchor_distance_loss(
            anchors / u, f.grid.to(anchors.dtype) / u, f.anchor_sq_dist.to(anchors.dtype) / (u * u), f.assignment
        ) / 1e6


@dataclass
class ChoirContactTerm:
    """Stage 2 ``L_rec`` (Eq. 10): sum over vertices of the nearest anchor's density times the squared distance
    to the object surface (``sdf^2``), in millimetres squared."""

    field: ChoirField
    weight: float = 10.0
    name: str = "choir_contact"
    length_unit: float = 1e-3

    def __call__(self, state: HandObjectState) -> Tensor:
        sdf = state.require_sdf(self.name)
        anchors = _to_object_frame(state, state.require_anchors(self.name))
        verts = _to_object_frame(state, state.hand_verts)
        f = self.field.index(state.rows)
        owner = nearest_anchor(verts, anchors)
        mean = torch.gather(f.gauss_mean.to(verts.dtype), 1, owner.unsqueeze(-1).expand(-1, -1, 3))
        chol = torch.gather(
            f.gauss_chol.to(verts.dtype), 1, owner.view(*owner.shape, 1, 1).expand(-1, -1, 3, 3)
        )
        active = torch.gather(f.gauss_active, 1, owner)
        dens = contact_density(verts, mean, chol, active)
        return (dens * (sdf / self.length_unit) ** 2).sum(-1) / 1e3


@dataclass
class ParamPriorTerm:
    """``||p - p_ref||_2`` of one optimisation variable (``p_ref`` = initial value, or 0 when ``to_zero``).

    CHOIR's shape prior is ``||beta||`` (``to_zero=True``), its stage-1 pose prior ``||theta - theta_init||``.
    """

    param: str
    weight: float = 1.0
    name: str = ""
    to_zero: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{self.param}_prior"

    def __call__(self, state: HandObjectState) -> Tensor:
        if self.param not in state.params:
            return state.hand_verts.new_zeros(state.batch_size)
        value = state.params[self.param]
        ref = torch.zeros_like(value) if self.to_zero else state.init_params[self.param]
        return torch.sqrt(((value - ref) ** 2).sum(-1) + 1e-12)


@dataclass
class RigidPriorTerm:
    """Stage-2 pose prior (Eq. 11): ``eta1 ||R - R_init||_F + eta2 ||t - t_init||`` of the wrist's global pose."""

    weight: float = 0.5
    name: str = "rigid_prior"
    eta_rot: float = 1e-2
    eta_transl: float = 1e-1

    def __call__(self, state: HandObjectState) -> Tensor:
        from contactkit.geometry.rotations import axis_angle_to_rotmat

        rot = axis_angle_to_rotmat(state.params["global_orient"])
        rot0 = axis_angle_to_rotmat(state.init_params["global_orient"])
        dr = torch.sqrt(((rot - rot0) ** 2).sum((-1, -2)) + 1e-12)
        dt = torch.sqrt(((state.params["transl"] - state.init_params["transl"]) ** 2).sum(-1) + 1e-12)
        return self.eta_rot * dr + self.eta_transl * dt

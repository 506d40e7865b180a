"""CHOIR fields <-> JointDiffusion's normalised tensors, and the training examples built from grasp sets.

Everything is in the object's frame (the grid is :func:`contactkit.contact.choir.bps_grid` of the object's surface
samples: centred on their centroid, half-size ``h`` = half-extent + 4 cm padding).

- **Hand volume** ``x_d`` (1, R, R, R): ``sqrt(d_H) / h`` (unsigned anchor distance in grid half-sizes; the
  network diffuses distances rather than squared distances, which keeps the values O(1)), then standardised with
  the training set's mean and standard deviation. ``d_H`` uses the model's anchor-assignment scheme
  (:func:`contactkit.contact.choir.anchor_assignment`, "ordered" or "shuffled"; recorded in the checkpoint's spec),
  for the ground truth and the noisy hand alike.
- **Context** (C, R, R, R): channel 0 ``sqrt(X_BPS) / h`` (object); for the noisy-pair context, channel 1 the noisy
  hand's ``sqrt(d_H) / h`` (a CHOIR without contacts). Standardised per channel.
- **Contacts** ``x_c`` (32, 9): per anchor, ``(mu - centre) / h`` and the 6 lower-triangular Cholesky entries
  ``/ h`` of its contact Gaussian; **an inactive anchor's Cholesky entries are 0** (the encoder's placeholder factor
  is dropped), so activity is part of the diffused vector: decoding calls an anchor active when its factor's
  smallest diagonal entry exceeds half the encoder's floor (0.25 mm). Standardised per entry.

The grid index ``m`` runs x fastest (``bps_grid``'s order), so the volume is ``values.view(R, R, R)`` indexed
``[z, y, x]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.choir import (
    NUM_ANCHORS,
    ChoirField,
    anchor_assignment,
    anchor_sq_distances,
    bps_grid,
    encode,
)
from contactkit.errors import ContactkitError, ShapeError

__all__ = [
    "ACTIVE_DIAG_M",
    "ChoirExamples",
    "ChoirScaler",
    "ContextKind",
    "build_examples",
    "context_channels",
    "decode_contacts",
    "encode_contacts",
    "field_from_raw",
    "grasp_geometry",
    "grid_frame",
    "hand_vertices_object_frame",
    "noisy_context_raw",
    "noisy_hand_channel",
    "object_context_raw",
    "volume_to_sq_dist",
]

ContextKind = Literal["noisy", "object"]
CONTEXT_KINDS: tuple[str, ...] = ("noisy", "object")
#: Cholesky diagonal (metres) above which a decoded anchor counts as active (half the encoder's 0.5 mm floor).
ACTIVE_DIAG_M = 0.25e-3
_TRIL = torch.tril_indices(3, 3)


def context_channels(kind: str) -> int:
    """Channels of the context volume of ``kind`` ("noisy": 2, "object": 1)."""
    if kind not in CONTEXT_KINDS:
        raise ContactkitError(f"context must be one of {CONTEXT_KINDS}, got {kind!r}")
    return 2 if kind == "noisy" else 1


def grid_frame(grid: Tensor) -> tuple[Tensor, Tensor]:
    """Centre (B, 3) and half-size (B,) of regular basis grids (B, M, 3)."""
    lo, hi = grid.amin(1), grid.amax(1)
    return 0.5 * (lo + hi), 0.5 * (hi - lo).amax(-1)


def encode_contacts(field: ChoirField) -> Tensor:
    """Raw (unstandardised) contact vector (B, 32, 9) of a field: ``(mu - centre) / h``, Cholesky entries ``/ h``
    (0 for inactive anchors)."""
    centre, half = grid_frame(field.grid)
    h = half.view(-1, 1, 1)
    mean = (field.gauss_mean - centre.unsqueeze(1)) / h
    chol = field.gauss_chol[..., _TRIL[0], _TRIL[1]] / h
    chol = torch.where(field.gauss_active.unsqueeze(-1), chol, torch.zeros_like(chol))
    return torch.cat([mean, chol], -1)


def decode_contacts(raw: Tensor, grid: Tensor, *, cov_floor_m: float = 0.5e-3) -> tuple[Tensor, Tensor, Tensor]:
    """Inverse of :func:`encode_contacts`: ``(mean (B,32,3), chol (B,32,3,3), active (B,32))`` in metres.

    The factor's diagonal is made positive (absolute value, at least ``cov_floor_m``) so it stays a valid Cholesky
    factor; inactive anchors get ``cov_floor_m * I``.
    """
    centre, half = grid_frame(grid)
    h = half.view(-1, 1, 1)
    mean = centre.unsqueeze(1) + raw[..., :3] * h
    entries = raw[..., 3:] * h
    chol = raw.new_zeros(*raw.shape[:-1], 3, 3)
    chol[..., _TRIL[0], _TRIL[1]] = entries
    diag = torch.diagonal(chol, dim1=-2, dim2=-1)
    active = diag.abs().amin(-1) > ACTIVE_DIAG_M
    eye = torch.eye(3, dtype=raw.dtype, device=raw.device)
    fixed = chol - torch.diag_embed(diag) + torch.diag_embed(diag.abs().clamp(min=cov_floor_m))
    chol = torch.where(active[..., None, None], fixed, cov_floor_m * eye.expand_as(chol))
    return mean, chol, active


@dataclass
class ChoirScaler:
    """Standardisation statistics of one model's tensors (fitted on its training set, saved in its config).

    Attributes:
        volume_mean, volume_std: scalars of ``x_d``.
        context_mean, context_std: per context channel.
        contact_mean, contact_std: (32, 9) per entry.
    """

    volume_mean: float
    volume_std: float
    context_mean: list[float]
    context_std: list[float]
    contact_mean: list[list[float]]
    contact_std: list[list[float]]

    @classmethod
    def fit(cls, volume: Tensor, context: Tensor, contact: Tensor) -> ChoirScaler:
        """Statistics of raw ``volume (N, 1, R, R, R)``, ``context (N, C, R, R, R)``, ``contact (N, 32, 9)``."""
        cdims = (0, 2, 3, 4)
        return cls(
            float(volume.mean()), float(volume.std().clamp(min=1e-6)),
            context.mean(cdims).tolist(), context.std(cdims).clamp(min=1e-6).tolist(),
            contact.mean(0).tolist(), contact.std(0).clamp(min=1e-3).tolist(),
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChoirScaler:
        known = set(cls.__dataclass_fields__)
        if set(data) != known:
            raise ContactkitError(f"scaler keys must be {sorted(known)}, got {sorted(data)}")
        return cls(**data)

    def _t(self, values: Any, like: Tensor) -> Tensor:
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)

    def norm_volume(self, v: Tensor) -> Tensor:
        return (v - self.volume_mean) / self.volume_std

    def denorm_volume(self, v: Tensor) -> Tensor:
        return v * self.volume_std + self.volume_mean

    def norm_context(self, c: Tensor) -> Tensor:
        return (c - self._t(self.context_mean, c).view(1, -1, 1, 1, 1)) / self._t(self.context_std, c).view(
            1, -1, 1, 1, 1)

    def norm_contact(self, c: Tensor) -> Tensor:
        return (c - self._t(self.contact_mean, c)) / self._t(self.contact_std, c)

    def denorm_contact(self, c: Tensor) -> Tensor:
        return c * self._t(self.contact_std, c) + self._t(self.contact_mean, c)


def grasp_geometry(
    grasps: Any, hand: Any, *, num_points: int = 2048, seed: int = 0, dtype: torch.dtype = torch.float32
) -> dict[str, Tensor]:
    """Object-frame geometry of every grasp: ``verts (N, V, 3)``, ``anchors (N, 32, 3)``, ``obj_points (N, P, 3)``
    (the object's seeded surface samples, as the refiner uses them), metres."""
    from contactkit.refine.api import objects_from_grasps

    objects = objects_from_grasps(grasps, num_points=num_points, seed=seed, dtype=dtype)
    verts = hand_vertices_object_frame(grasps, hand, dtype=dtype)
    return {"verts": verts, "anchors": hand.anchors(verts), "obj_points": objects.points}


def hand_vertices_object_frame(grasps: Any, hand: Any, *, dtype: torch.dtype = torch.float32, chunk: int = 256
                               ) -> Tensor:
    """Hand vertices (N, V, 3) of every grasp in its object's frame, metres (posed in chunks of ``chunk``)."""
    t = grasps.hand_tensors(dtype=dtype)
    rot = torch.as_tensor(np.array(grasps.object_rotation), dtype=dtype)
    tr = torch.as_tensor(np.array(grasps.object_translation), dtype=dtype)
    parts = []
    with torch.no_grad():
        for s in range(0, len(grasps), chunk):
            sl = slice(s, s + chunk)
            out = hand(t["global_orient"][sl], t["hand_pose"][sl], t["betas"][sl] if hand.num_betas > 0 else None,
                       t["transl"][sl])
            parts.append((out.vertices.to(dtype) - tr[sl].unsqueeze(1)) @ rot[sl])
    return torch.cat(parts)


def noisy_hand_channel(grid: Tensor, anchors: Tensor, assignment: str = "ordered") -> Tensor:
    """The noisy hand's context channel (B, 1, R, R, R), ``sqrt(d_H) / h``, on grids (B, M, 3) for anchors
    (B, 32, 3), with the anchor-assignment scheme ``assignment``."""
    r = round(grid.shape[1] ** (1 / 3))
    _, half = grid_frame(grid)
    delta = anchor_assignment(grid.shape[1], scheme=assignment, device=grid.device)
    hand = anchor_sq_distances(grid, anchors, delta).sqrt()
    return (hand / half.view(-1, 1)).view(-1, 1, r, r, r)


def noisy_context_raw(obj_points: Tensor, anchors: Tensor, assignment: str = "ordered") -> tuple[Tensor, Tensor]:
    """Raw noisy-pair context (B, 2, R, R, R) of object points and (noisy) anchors (``assignment``: the scheme of
    :func:`noisy_hand_channel`), and the grid (B, M, 3)."""
    obj, grid = object_context_raw(obj_points)
    return torch.cat([obj, noisy_hand_channel(grid, anchors, assignment)], 1), grid


def object_context_raw(obj_points: Tensor) -> tuple[Tensor, Tensor]:
    """Raw object context (B, 1, R, R, R) (``sqrt(X_BPS) / h``) and the grid (B, M, 3)."""
    grid = bps_grid(obj_points)
    r = round(grid.shape[1] ** (1 / 3))
    _, half = grid_frame(grid)
    sq = torch.cat([torch.cdist(grid[s:s + 16], obj_points[s:s + 16]).amin(-1) for s in range(0, len(grid), 16)])
    return (sq / half.view(-1, 1)).view(-1, 1, r, r, r), grid


@dataclass
class ChoirExamples:
    """Raw (unstandardised) training examples.

    Attributes:
        volume: (N, 1, R, R, R) ground-truth ``sqrt(d_H) / h``.
        contact: (N, 32, 9) ground-truth contact vector (:func:`encode_contacts`).
        context: (N, C, R, R, R) context volume.
        object_ids: (N,) object id of each example (for object splits and reports).
        assignment: the anchor-assignment scheme of the volumes and the noisy hand's context channel
            (:func:`contactkit.contact.choir.anchor_assignment`); a file saved without it reads as "ordered".
    """

    volume: Tensor
    contact: Tensor
    context: Tensor
    object_ids: list[str]
    assignment: str = "ordered"

    def __len__(self) -> int:
        return self.volume.shape[0]

    def save(self, path: Any) -> None:
        from contactkit.io.atomic import atomic_savez

        atomic_savez(path, volume=self.volume.numpy(), contact=self.contact.numpy(), context=self.context.numpy(),
                     object_ids=np.array(self.object_ids), assignment=np.array(self.assignment))

    @classmethod
    def load(cls, path: Any) -> ChoirExamples:
        with np.load(path, allow_pickle=False) as z:
            return cls(torch.from_numpy(z["volume"]), torch.from_numpy(z["contact"]),
                       torch.from_numpy(z["context"]), [str(s) for s in z["object_ids"]],
                       str(z["assignment"]) if "assignment" in z.files else "ordered")


def build_examples(
    ground_truth: Any,
    hand: Any,
    context: str,
    *,
    copies: int = 16,
    seed: int = 0,
    num_points: int = 2048,
    chunk: int = 8,
    encoded: ChoirExamples | None = None,
    assignment: str = "ordered",
) -> ChoirExamples:
    """Training examples from a ground-truth grasp set.

    ``context="noisy"``: ``copies`` ContactOpt-protocol perturbations of every grasp
    (:func:`contactkit.synth.perturb.perturb`, seeded), each paired with its ground-truth CHOIR (paper 002 Sec. 4.1:
    16 per training grasp, 4 for validation and test). ``context="object"``: one example per grasp, the context
    being the object's BPS distances. ``encoded``: the object-context examples of the same grasps (built with the same
    ``num_points``, ``seed`` and ``assignment``), reused instead of encoding the ground truth again. ``assignment``:
    the anchor-assignment scheme of ``d_H`` (:func:`contactkit.contact.choir.anchor_assignment`), used for the
    ground truth's volume and the noisy hand's context channel alike.
    """
    nctx = context_channels(context)
    if copies < 1:
        raise ContactkitError(f"copies must be >= 1, got {copies}")
    if len(ground_truth) == 0:
        raise ShapeError("the ground-truth grasp set is empty")
    if encoded is not None:
        if len(encoded) != len(ground_truth) or encoded.context.shape[1] != 1:
            raise ShapeError(f"encoded must hold the {len(ground_truth)} grasps' object-context examples")
        if encoded.assignment != assignment:
            raise ContactkitError(f"encoded examples use the {encoded.assignment!r} assignment, not {assignment!r}")
        obj_points = grasp_geometry(ground_truth, hand, num_points=num_points, seed=seed)["obj_points"]
        return _with_noisy_context(encoded, ground_truth, hand, bps_grid(obj_points), copies, seed)
    from contactkit.geometry.normals import vertex_normals

    geo = grasp_geometry(ground_truth, hand, num_points=num_points, seed=seed)
    vols, cons = [], []
    for s in range(0, len(ground_truth), chunk):
        sl = slice(s, s + chunk)
        verts = geo["verts"][sl]
        fld = encode(geo["obj_points"][sl], verts, vertex_normals(verts, hand.faces), geo["anchors"][sl],
                     assignment=assignment)
        _, half = grid_frame(fld.grid)
        r = round(fld.grid.shape[1] ** (1 / 3))
        vols.append((fld.anchor_sq_dist.sqrt() / half.view(-1, 1)).view(-1, 1, r, r, r))
        cons.append(encode_contacts(fld))
    obj_ctx, grid = object_context_raw(geo["obj_points"])  # (N, 1, R, R, R), (N, M, 3): shared by a grasp's copies
    gt_examples = ChoirExamples(torch.cat(vols), torch.cat(cons), obj_ctx, list(ground_truth.object_ids), assignment)
    if nctx == 1:
        return gt_examples
    return _with_noisy_context(gt_examples, ground_truth, hand, grid, copies, seed)


def _with_noisy_context(gt: ChoirExamples, ground_truth: Any, hand: Any, grid: Tensor, copies: int, seed: int
                        ) -> ChoirExamples:
    """Object-context examples -> noisy-pair examples: ``copies`` perturbed hands per grasp (seed ``seed + 1``)."""
    from contactkit.synth.perturb import perturb

    noisy = perturb(ground_truth, "contactopt", copies=copies, seed=seed + 1, hand=hand)
    anchors = hand.anchors(hand_vertices_object_frame(noisy, hand))
    ref = torch.as_tensor(np.array(noisy.reference_index), dtype=torch.long)
    # In chunks: the grids of all copies at once would take N x M x 3 floats (3.5 GB for 72k examples).
    hand_ctx = torch.cat([noisy_hand_channel(grid[ref[s:s + 1024]], anchors[s:s + 1024], gt.assignment)
                          for s in range(0, len(ref), 1024)])
    return ChoirExamples(gt.volume[ref], gt.contact[ref], torch.cat([gt.context[ref], hand_ctx], 1),
                         [gt.object_ids[int(i)] for i in ref], gt.assignment)


def volume_to_sq_dist(volume: Tensor, grid: Tensor) -> Tensor:
    """Raw hand volume (B, 1, R, R, R) (``sqrt(d_H) / h``) -> ``d_H`` (B, M), m^2 (negative distances clamp to 0)."""
    _, half = grid_frame(grid)
    return (volume.flatten(1).clamp(min=0.0) * half.view(-1, 1)) ** 2


def field_from_raw(volume: Tensor, contact: Tensor, grid: Tensor, obj_points: Tensor, assignment: str = "ordered"
                   ) -> ChoirField:
    """A :class:`ChoirField` from raw sampled tensors: volume (B, 1, R, R, R), contact (B, 32, 9), grid (B, M, 3),
    object points (B, P, 3) metres; ``assignment``: the model's anchor-assignment scheme (the field carries its
    (M,) index tensor)."""
    mean, chol, active = decode_contacts(contact, grid)
    obj_sq = torch.cdist(grid, obj_points).amin(-1) ** 2
    delta = anchor_assignment(grid.shape[1], NUM_ANCHORS, scheme=assignment, device=grid.device)
    return ChoirField(grid, obj_sq, volume_to_sq_dist(volume, grid), delta, mean, chol, active)

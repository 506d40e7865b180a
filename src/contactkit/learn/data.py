"""Training data of the contact estimators: network inputs on noisy grasps, targets from their ground truth.

For each noisy grasp (a perturbed copy whose ground truth is linked through ``reference_index``), inputs are the
features of the noisy hand against the object's 2048 seeded surface samples, and targets are measured on the
ground-truth grasp, exactly as the refiner's oracle mode measures them (so a perfect estimator reproduces
oracle refinement):

- DeepContact: DiffContact hand contact (per hand vertex) and object contact (per object point), in [0, 1];
- PiCR (paper 004 §4): vertex contact = the nearest ground-truth hand vertex lies within 5 mm; contact region =
  that vertex's subregion; anchor elasticity = the cosine elasticity of the nearest anchor of that region
  (s = 20 mm, zero beyond).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from contactkit.contact.cpf import spring_elasticity
from contactkit.errors import ContactkitError
from contactkit.hands.base import HandModel
from contactkit.io.atomic import atomic_savez
from contactkit.io.grasps import GraspSet
from contactkit.learn.estimators import inputs_for
from contactkit.targets import objects_from_grasps, reference_targets

#: A ground-truth hand vertex this close to an object point puts the point in contact (PiCR's VC), metres.
PICR_CONTACT_DISTANCE_M = 0.005


@dataclass
class ContactTensors:
    """Precomputed inputs and targets for ``N`` grasps (float32, CPU).

    Attributes:
        xyz: (N, V + P, 3) normalised positions; features: (N, V + P, C).
        contact: (N, V + P) DeepContact targets in [0, 1].
        object_vc: (N, P) {0, 1} PiCR vertex contact.
        object_region: (N, P) long subregion (0 where not in contact).
        object_elasticity: (N, P) anchor elasticity in [0, 1].
        n_hand: V.
    """

    xyz: Tensor
    features: Tensor
    contact: Tensor
    object_vc: Tensor
    object_region: Tensor
    object_elasticity: Tensor
    n_hand: int

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    def batch(self, idx: Sequence[int] | range, device: torch.device | str) -> dict[str, Tensor | int]:
        """Rows ``idx`` as a dict of tensors on ``device`` (plus ``n_hand``)."""
        rows = torch.as_tensor(list(idx), dtype=torch.long)
        out: dict[str, Tensor | int] = {
            name: getattr(self, name)[rows].to(device)
            for name in ("xyz", "features", "contact", "object_vc", "object_region", "object_elasticity")
        }
        out["n_hand"] = self.n_hand
        return out

    def save(self, path: str | Path) -> None:
        """Write as npz (atomic)."""
        arrays = {
            name: getattr(self, name).numpy()
            for name in ("xyz", "features", "contact", "object_vc", "object_region", "object_elasticity")
        }
        atomic_savez(path, n_hand=np.asarray(self.n_hand), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> ContactTensors:
        """Read what :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as data:
            tensors = {k: torch.from_numpy(data[k]) for k in data.files if k != "n_hand"}
            return cls(n_hand=int(data["n_hand"]), **tensors)


def picr_targets(
    ref_verts: Tensor, ref_anchors: Tensor, obj_points: Tensor, region_of_vertex: Tensor, anchor_region: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """PiCR ground truth per object point.

    Args:
        ref_verts: (B, V, 3) ground-truth hand vertices, metres; ref_anchors: (B, 32, 3).
        obj_points: (B, P, 3) object points, same frame.
        region_of_vertex: (V,) long; anchor_region: (32,) long.

    Returns:
        ``(vc (B, P) float {0,1}, region (B, P) long, elasticity (B, P) float in [0, 1])``.
    """
    dmin, vidx = torch.cdist(obj_points, ref_verts).min(dim=-1)
    vc = dmin <= PICR_CONTACT_DISTANCE_M
    region = region_of_vertex[vidx]
    same = anchor_region.view(1, -1, 1) == region.unsqueeze(1)  # (B, 32, P)
    k = spring_elasticity(torch.cdist(ref_anchors, obj_points))
    elasticity = torch.where(same, k, torch.zeros_like(k)).amax(dim=1)
    return vc.float(), torch.where(vc, region, torch.zeros_like(region)), torch.where(vc, elasticity, 0.0 * elasticity)


@torch.no_grad()
def build_contact_tensors(
    noisy: GraspSet,
    reference: GraspSet,
    hand: HandModel,
    *,
    num_points: int = 2048,
    seed: int = 0,
    batch_size: int = 32,
) -> ContactTensors:
    """Inputs on ``noisy`` grasps and targets from their ground truth ``reference``.

    Args:
        noisy: grasps to learn from (e.g. perturbed copies); rows map to ``reference`` through
            ``noisy.reference_index`` (or 1:1 when it is absent and the sizes match).
        reference: the ground-truth grasps.
        hand: the hand model both sets use.
        num_points: object surface samples per grasp (2048 in paper 000).
        seed: seed of the object sampling.
        batch_size: grasps processed together.
    """
    if noisy.hand_model != hand.name or reference.hand_model != hand.name:
        raise ContactkitError(
            f"grasps use the {noisy.hand_model!r}/{reference.hand_model!r} hands but the model is {hand.name!r}"
        )
    dtype = torch.float32
    ann = hand.annotations
    region_of_vertex = torch.as_tensor(ann.region_of_vertex, dtype=torch.long)
    anchor_region = torch.as_tensor(ann.anchor_region, dtype=torch.long)
    parts: dict[str, list[Tensor]] = {k: [] for k in ("xyz", "features", "contact", "vc", "region", "elast")}
    n_hand = hand.num_verts
    for start in range(0, len(noisy), batch_size):
        chunk = noisy.subset(np.arange(start, min(start + batch_size, len(noisy))))
        objects = objects_from_grasps(chunk, num_points=num_points, seed=seed, dtype=dtype)
        targets = reference_targets(hand, reference, chunk, objects, "cpu", dtype)
        t = chunk.hand_tensors(dtype=dtype)
        out = hand(t["global_orient"], t["hand_pose"], t["betas"] if hand.num_betas > 0 else None, t["transl"])
        rot, tr = objects.rotation, objects.translation
        pts = objects.points @ rot.transpose(1, 2) + tr.unsqueeze(1)
        nrm = objects.normals @ rot.transpose(1, 2)
        inputs = inputs_for(hand, out.vertices, pts, nrm)
        hand_c = targets.require("hand_contact", "deepcontact training")
        obj_c = targets.require("object_contact", "deepcontact training")
        vc, region, elast = picr_targets(
            targets.require("ref_verts", "picr training"), targets.require("ref_anchors", "picr training"),
            pts, region_of_vertex, anchor_region,
        )
        parts["xyz"].append(inputs.xyz)
        parts["features"].append(inputs.features)
        parts["contact"].append(torch.cat([hand_c, obj_c], dim=1).float())
        parts["vc"].append(vc)
        parts["region"].append(region)
        parts["elast"].append(elast.float())
    return ContactTensors(
        xyz=torch.cat(parts["xyz"]),
        features=torch.cat(parts["features"]),
        contact=torch.cat(parts["contact"]),
        object_vc=torch.cat(parts["vc"]),
        object_region=torch.cat(parts["region"]),
        object_elasticity=torch.cat(parts["elast"]),
        n_hand=n_hand,
    )


def reference_of(noisy: GraspSet) -> GraspSet:
    """The ground-truth set linked by ``noisy.attrs["reference"]`` (a path, as ``contactkit perturb`` writes it).

    Raises:
        ContactkitError: the set names no reference or the file is missing.
    """
    from contactkit.io.grasps import load_grasps

    ref = noisy.attrs.get("reference")
    if not ref:
        raise ContactkitError(
            "training grasps must be perturbed copies linked to their ground truth (attrs['reference'] and "
            "reference_index, as `contactkit perturb` writes them)"
        )
    if not Path(ref).is_file():
        raise ContactkitError(f"the reference grasp file {ref} named by the training set does not exist")
    return load_grasps(ref)


def cached_contact_tensors(
    grasps_path: str | Path,
    hand: HandModel,
    cache_path: str | Path,
    *,
    num_points: int = 2048,
    seed: int = 0,
) -> ContactTensors:
    """:func:`build_contact_tensors` for a perturbed grasp file, cached as npz at ``cache_path``.

    The cache is reused only when its sidecar ``<cache_path>.source.json`` records the same grasp file content
    (sha256), hand, ``num_points`` and ``seed``; another file under the same name or run folder rebuilds it.
    """
    import hashlib
    import json

    from contactkit.io.atomic import atomic_write_json
    from contactkit.io.grasps import load_grasps

    noisy = load_grasps(grasps_path)
    cache_path = Path(cache_path)
    source = {
        "sha256": hashlib.sha256(Path(grasps_path).read_bytes()).hexdigest(),
        "hand": f"{hand.name}/{hand.side}/{hand.num_verts}",
        "num_points": int(num_points),
        "seed": int(seed),
    }
    sidecar = cache_path.with_name(cache_path.name + ".source.json")
    if cache_path.is_file() and sidecar.is_file():
        try:
            recorded = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded == source:
            cached = ContactTensors.load(cache_path)
            if len(cached) == len(noisy) and cached.xyz.shape[1] == hand.num_verts + num_points:
                return cached
    tensors = build_contact_tensors(noisy, reference_of(noisy), hand, num_points=num_points, seed=seed)
    tensors.save(cache_path)
    atomic_write_json(sidecar, source)
    return tensors

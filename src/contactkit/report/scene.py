"""Build report samples (:class:`~contactkit.report.data.ReportSample`) from grasp sets.

For each grasp, the object mesh is placed in the world frame (``x_world = R @ x_object + t``), the hands are
posed with the hand model, and per-vertex quantities are measured for display:

- hand contact: DiffContact's capsule model on the exact signed distance of each hand vertex
  (:func:`contactkit.contact.diffcontact.hand_contact_from_sdf`);
- object contact: DiffContact's object contact map at the object's mesh vertices
  (:func:`contactkit.contact.diffcontact.object_contact_map`);
- penetrating vertices: hand vertices with negative signed distance (inside the object).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from contactkit.errors import ShapeError
from contactkit.report.colors import row_colors
from contactkit.report.data import MeshLayer, ReportSample

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.io.grasps import GraspSet


def posed_hand_vertices(grasps: GraspSet, hand: HandModel, batch_size: int = 256) -> np.ndarray:
    """World-frame hand vertices of every grasp.

    Args:
        grasps: N grasps (axis-angle pose).
        hand: the hand model named by ``grasps.hand_model``.

    Returns:
        (N, V, 3) float64, metres.
    """
    outs = []
    dt, dev = hand.dtype, hand.device
    n = len(grasps)
    for s in range(0, n, batch_size):
        sl = slice(s, min(n, s + batch_size))

        def t(a: np.ndarray, sl: slice = sl) -> torch.Tensor:
            return torch.as_tensor(np.require(np.asarray(a)[sl], requirements=["W"]), dtype=dt, device=dev)

        betas = None if grasps.betas is None or np.asarray(grasps.betas).shape[1] == 0 else t(grasps.betas)
        with torch.no_grad():
            out = hand(t(grasps.global_orient), t(grasps.hand_pose), betas, t(grasps.transl))
        outs.append(out.vertices.detach().cpu().to(torch.float64).numpy())
    if not outs:
        return np.zeros((0, hand.num_verts, 3))
    return np.concatenate(outs, axis=0)


@dataclass
class SceneGeometry:
    """One grasp's object in the world frame and the measured per-vertex maps of one hand."""

    object_vertices: np.ndarray  # (Vo, 3) world
    object_faces: np.ndarray  # (Fo, 3)
    hand_contact: np.ndarray  # (V,) in [0, 1]
    object_contact: np.ndarray  # (Vo,) in [0, 1]
    penetrating: np.ndarray  # (V,) bool


def measure_hand(grasps: GraspSet, index: int, hand_vertices: np.ndarray) -> SceneGeometry:
    """Object placement, contact maps and penetration mask of one posed hand against grasp ``index``'s object.

    Args:
        grasps: the grasp set holding the object and its pose.
        index: grasp index.
        hand_vertices: (V, 3) float, world frame, metres.
    """
    from contactkit.contact.diffcontact import hand_contact_from_sdf, object_contact_map

    obj = grasps.objects[grasps.object_ids[index]]
    rot = np.asarray(grasps.object_rotation[index], dtype=np.float64)
    transl = np.asarray(grasps.object_translation[index], dtype=np.float64)
    hv = np.asarray(hand_vertices, dtype=np.float64)
    if hv.ndim != 2 or hv.shape[1] != 3:
        raise ShapeError(f"hand_vertices: expected shape (V, 3), got {hv.shape}")
    local = (hv - transl) @ rot  # R^T (x - t), row vectors
    sd = np.asarray(obj.signed_distance(local), dtype=np.float64).reshape(-1)
    hand_contact = hand_contact_from_sdf(torch.as_tensor(sd)[None]).numpy()[0]
    ov = np.asarray(obj.vertices, dtype=np.float64) @ rot.T + transl
    on = np.asarray(obj.vertex_normals(), dtype=np.float64) @ rot.T
    obj_contact = object_contact_map(torch.as_tensor(hv)[None], torch.as_tensor(ov)[None],
                                     torch.as_tensor(on)[None]).numpy()[0]
    return SceneGeometry(ov, np.asarray(obj.faces, dtype=np.int64), hand_contact, obj_contact, sd < 0)


def build_samples(
    reference: GraspSet | None,
    perturbed: GraspSet | None,
    refined: Mapping[str, GraspSet],
    hand: HandModel,
    indices: Sequence[int],
    *,
    reference_index: np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    metrics: Mapping[int, dict[str, dict[str, float]]] | None = None,
    units: Mapping[str, str] | None = None,
    colors: Mapping[str, tuple[float, float, float]] | None = None,
    sources: Mapping[str, str] | None = None,
) -> list[ReportSample]:
    """Report samples for grasps ``indices`` of the perturbed (or reference) set.

    Args:
        reference: ground-truth grasps (M), or ``None``.
        perturbed: the noisy grasps (N) the methods started from, or ``None``.
        refined: method name -> refined grasps (N, aligned with ``perturbed``).
        hand: the hand model of every set.
        indices: which grasps (indices into ``perturbed``; without it into the refined sets, and without those
            into ``reference``).
        reference_index: (N,) int, the reference grasp of each shown grasp (default: identity).
        titles: selector labels (default ``"<object> #<i>"``).
        metrics: grasp index -> {layer name: {metric: value}} shown beside the view.
        units: metric name -> unit.
        colors: refined set name -> RGB in [0, 1] (default: :func:`~contactkit.report.colors.row_colors` of the
            refined names), so the view matches the report's tables and plots.
        sources: refined set name -> where its targets came from (shown beside the layer).

    The object layer carries the object contact map of the first refined method (or of the ground truth).
    """
    base = perturbed if perturbed is not None else next(iter(refined.values()), reference)
    if base is None:
        raise ShapeError("perturbed, refined, reference: expected at least one grasp set to show")
    cache: dict[tuple[str, int], np.ndarray] = {}

    def verts_of(key: str, gs: GraspSet, i: int) -> np.ndarray:
        if (key, i) not in cache:
            cache[(key, i)] = posed_hand_vertices(gs.subset(np.array([i], dtype=np.int64)), hand)[0]
        return cache[(key, i)]

    faces = hand.faces.detach().cpu().numpy().astype(np.int64)
    palette = {**row_colors(list(refined)), **dict(colors or {})}
    src = dict(sources or {})
    samples = []
    for k, i in enumerate(indices):
        layers: list[MeshLayer] = []
        hand_layers: list[MeshLayer] = []
        object_geometry: SceneGeometry | None = None
        if perturbed is not None:
            hv = verts_of("perturbed", perturbed, i)
            geo = measure_hand(perturbed, i, hv)
            hand_layers.append(MeshLayer("noisy", "noisy", hv, faces, geo.hand_contact, geo.penetrating,
                                         visible=not refined, detail="the input of every method"))
            object_geometry = object_geometry or geo
        for m, (name, gs) in enumerate(refined.items()):
            hv = verts_of(name, gs, i)
            geo = measure_hand(gs, i, hv)
            hand_layers.append(MeshLayer(name, "refined", hv, faces, geo.hand_contact, geo.penetrating,
                                         color=palette[name], visible=m == 0,
                                         detail=f"targets: {src[name]}" if name in src else None))
            if m == 0:
                object_geometry = geo
        if reference is not None:
            j = int(reference_index[i]) if reference_index is not None and base is not reference else i
            hv = verts_of("reference", reference, j)
            geo = measure_hand(reference, j, hv)
            # listed first, before the noisy input and the methods (in the wild, then the oracle rows)
            hand_layers.insert(0, MeshLayer("ground truth", "ground_truth", hv, faces, geo.hand_contact,
                                            geo.penetrating, visible=True,
                                            detail="what the metrics compare against"))
            if object_geometry is None:
                object_geometry = geo
        if object_geometry is None:  # unreachable: base is one of the sets above
            raise ShapeError("no grasp set to measure")
        layers.append(MeshLayer("object", "object", object_geometry.object_vertices,
                                object_geometry.object_faces, contact=object_geometry.object_contact))
        layers.extend(hand_layers)
        obj_name = base.objects[base.object_ids[i]].name
        title = titles[k] if titles is not None else f"{obj_name} #{i}"
        samples.append(ReportSample(title, layers, metrics=dict((metrics or {}).get(i, {})),
                                    units=dict(units or {})))
    return samples

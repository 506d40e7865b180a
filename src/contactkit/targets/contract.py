"""The target contract: hand parameters, object batches, targets, the estimator protocol and target sources.

A *target source* is a short string recorded with every refined grasp set (``attrs["targets"]``,
``attrs["refine"]["targets"]`` and each ``metadata[i]["refine"]["targets"]``):

- ``"oracle"`` — the ground truth linked to the set (``attrs["reference"]`` through ``reference_index``);
- ``"file:PATH"`` — a reference grasp file given by the user (oracle: targets measured on a reference grasp);
- ``"reference"`` — an in-memory reference :class:`~contactkit.io.grasps.GraspSet` (oracle);
- ``"given"`` / ``"given:reference"`` — a :class:`ContactTargets` built by the caller, without / with reference
  geometry (``ref_*`` fields; the latter is oracle);
- ``"learned:<kind>"`` — a learned estimator (``deepcontact``, ``picr``, ``choir``), in the wild;
- ``"statistics:contact-zones"`` — ObMan's contact zones from grasp statistics, in the wild;
- ``"none"`` — a method that needs no targets (physical affinity in the wild).

:func:`method_label` appends ``" (oracle)"`` to a method's name for every oracle source; tables, JSON, CSV and
reports label rows with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from contactkit.errors import ShapeError

__all__ = [
    "ORACLE_SUFFIX",
    "ContactEstimator",
    "ContactTargets",
    "HandParamsInit",
    "ObjectBatch",
    "is_oracle_source",
    "method_label",
    "target_source_of",
]

#: Appended to the label of every row whose targets came from a reference grasp.
ORACLE_SUFFIX = " (oracle)"


@dataclass
class HandParamsInit:
    """Hand parameters of a batch: ``global_orient (B,3)``, ``hand_pose (B,45)`` axis-angle, ``betas (B,n)``,
    ``transl (B,3)``; radians and metres."""

    global_orient: Tensor
    hand_pose: Tensor
    betas: Tensor
    transl: Tensor

    def __post_init__(self) -> None:
        b = self.global_orient.shape[0]
        for name, value, width in (
            ("global_orient", self.global_orient, 3),
            ("hand_pose", self.hand_pose, 45),
            ("transl", self.transl, 3),
        ):
            if value.ndim != 2 or value.shape != (b, width):
                raise ShapeError(f"{name} must have shape ({b}, {width}), got {tuple(value.shape)}")
        if self.betas.ndim != 2 or self.betas.shape[0] != b:
            raise ShapeError(f"betas must have shape ({b}, n_shape), got {tuple(self.betas.shape)}")

    @property
    def batch_size(self) -> int:
        return int(self.global_orient.shape[0])

    def subset(self, idx: Tensor) -> HandParamsInit:
        """The rows ``idx`` ((k,) long)."""
        return HandParamsInit(self.global_orient[idx], self.hand_pose[idx], self.betas[idx], self.transl[idx])


@dataclass
class ObjectBatch:
    """Per-sample object data (object frame) for a batch of ``N0`` grasps.

    Attributes:
        points: (N0, P, 3) float, metres — surface samples in the object frame.
        normals: (N0, P, 3) float — unit outward normals.
        rotation: (N0, 3, 3) float — object pose, ``x_world = R x + t``.
        translation: (N0, 3) float, metres.
        sdf: ``sdf(points_object (B, N, 3), rows (B,)) -> (B, N)`` signed distance (negative inside) of points in
            the object frame of sample ``rows``; None when no term needs it.
    """

    points: Tensor
    normals: Tensor
    rotation: Tensor
    translation: Tensor
    sdf: Callable[[Tensor, Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        n0 = self.points.shape[0]
        if self.points.ndim != 3 or self.points.shape[-1] != 3:
            raise ShapeError(f"points must have shape (N0, P, 3), got {tuple(self.points.shape)}")
        if self.normals.shape != self.points.shape:
            raise ShapeError(f"normals must have shape {tuple(self.points.shape)}, got {tuple(self.normals.shape)}")
        if self.rotation.shape != (n0, 3, 3):
            raise ShapeError(f"rotation must have shape ({n0}, 3, 3), got {tuple(self.rotation.shape)}")
        if self.translation.shape != (n0, 3):
            raise ShapeError(f"translation must have shape ({n0}, 3), got {tuple(self.translation.shape)}")

    def world_points(self) -> tuple[Tensor, Tensor]:
        """``(points (N0, P, 3), normals (N0, P, 3))`` in the world frame."""
        rot = self.rotation.to(self.points.dtype)
        pts = self.points @ rot.transpose(1, 2) + self.translation.to(self.points.dtype).unsqueeze(1)
        return pts, self.normals @ rot.transpose(1, 2)


@dataclass
class ContactTargets:
    """Targets for ``N0`` samples; every field is optional, each method states which it needs.

    Fields that come from a reference grasp (``ref_*``) make refinement an oracle run (:attr:`uses_reference`).

    Attributes:
        hand_contact: (N0, V) float in [0, 1] — target contact per hand vertex.
        object_contact: (N0, P) float in [0, 1] — target contact per object point (the ``ObjectBatch`` points).
        ref_verts: (N0, V, 3) float, metres — reference hand vertices, world frame of the refined grasp.
        ref_anchors: (N0, 32, 3) float, metres — reference anchors, same frame.
        ref_keypoints: (N0, 21, 3) float, metres — reference keypoints, same frame.
        ref_params: reference hand parameters (oracle mode), or None.
        k_atr: (N0, 32, P) float in [0, 1] — CPF attractive-spring elasticities between the anchors and the
            object points (as PiCR predicts them); when None, ``cpf`` measures them on ``ref_anchors``/``ref_verts``.
        contact_zones: (Z, V) bool shared by all samples, or (N0, Z, V) — ObMan's contact zones of the hand (from
            grasp statistics), or None for the hand annotations' zones.
        choir: a :class:`contactkit.contact.choir.ChoirField` (anything with its ``index(rows)``) for the N0
            samples in their object frames (as a learned CHOIR predictor gives it), or None to encode one from
            ``ref_verts``/``ref_anchors``.
    """

    hand_contact: Tensor | None = None
    object_contact: Tensor | None = None
    ref_verts: Tensor | None = None
    ref_anchors: Tensor | None = None
    ref_keypoints: Tensor | None = None
    ref_params: HandParamsInit | None = None
    k_atr: Tensor | None = None
    contact_zones: Tensor | None = None
    choir: Any = None

    def require(self, name: str, method: str) -> Any:
        """The field ``name``; raises naming how to provide it when it is None."""
        value = getattr(self, name)
        if value is None:
            raise ShapeError(
                f"method {method!r} needs targets.{name}; give a reference grasp (--targets oracle or a grasp "
                f"file) or a ContactTargets with {name}"
            )
        return value

    @property
    def uses_reference(self) -> bool:
        """Whether any field was measured on a reference grasp (an oracle run)."""
        return any(x is not None for x in (self.ref_verts, self.ref_anchors, self.ref_keypoints, self.ref_params))

    def subset(self, idx: Tensor) -> ContactTargets:
        """The targets of rows ``idx`` ((k,) long); ``contact_zones`` of shape (Z, V) are shared by every row and
        kept whole, a CHOIR field is indexed with its own ``index``."""

        def rows(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[idx]

        zones = self.contact_zones
        return ContactTargets(
            hand_contact=rows(self.hand_contact), object_contact=rows(self.object_contact),
            ref_verts=rows(self.ref_verts), ref_anchors=rows(self.ref_anchors), ref_keypoints=rows(self.ref_keypoints),
            ref_params=None if self.ref_params is None else self.ref_params.subset(idx), k_atr=rows(self.k_atr),
            contact_zones=zones[idx] if zones is not None and zones.ndim == 3 else zones,
            choir=None if self.choir is None else self.choir.index(idx),
        )


@runtime_checkable
class ContactEstimator(Protocol):
    """A learned contact estimator: predicts target maps from a (noisy) grasp, never from a reference.

    ``predict(hand_verts (N0, V, 3), obj_points (N0, P, 3), obj_normals (N0, P, 3)) -> ContactTargets`` with
    ``object_contact`` and ``hand_contact`` or ``k_atr`` (world frame, metres). ``kind`` names it in the target
    source (``"learned:<kind>"``).
    """

    kind: str

    def predict(self, hand_verts: Tensor, obj_points: Tensor, obj_normals: Tensor) -> ContactTargets: ...


def is_oracle_source(source: str | None) -> bool:
    """Whether a target source (see the module docstring) used a reference grasp."""
    if source is None:
        return False
    return source in ("oracle", "reference", "given:reference") or source.startswith("file:")


def method_label(method: str, source: str | None) -> str:
    """A row label: the method's name, with ``" (oracle)"`` appended when ``source`` used a reference grasp.

    >>> method_label("contactopt", "oracle"), method_label("contactopt", "learned:deepcontact")
    ('contactopt (oracle)', 'contactopt')
    """
    return method + ORACLE_SUFFIX if is_oracle_source(source) else method


def target_source_of(grasps: Any) -> str | None:
    """The target source a refined :class:`~contactkit.io.grasps.GraspSet` records, or None (not refined)."""
    attrs = getattr(grasps, "attrs", {}) or {}
    source = attrs.get("targets")
    if source is None and isinstance(attrs.get("refine"), dict):
        source = attrs["refine"].get("targets")
    return None if source is None else str(source)

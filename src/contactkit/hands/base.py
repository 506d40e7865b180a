"""The hand-model interface shared by OpenHand and MANO: a batched, differentiable LBS layer.

Parameters use the names of the MANO layers (``global_orient``, ``hand_pose``, ``betas``, ``transl``);
joint order is MANO's (wrist; index 1-3; middle 1-3; little 1-3; ring 1-3; thumb 1-3), keypoint order is
wrist; thumb 1-4; index 1-4; middle 1-4; ring 1-4; little 1-4 (tips last). Units: metres and radians.

``global_orient`` rotates the hand about its rest wrist joint, then ``transl`` is added (the MANO/smplx
convention): ``x = R_global (x_rest - J_0) + J_0 + ...posed... + transl``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn

from contactkit.errors import HandModelError, ShapeError
from contactkit.hands import pca as _pca
from contactkit.hands.lbs import PackedLBS, lbs_packed, pack_lbs

if TYPE_CHECKING:  # pragma: no cover
    from contactkit.hands.annotations import HandAnnotations

__all__ = [
    "HandModel",
    "HandModelData",
    "HandOutput",
    "HandParams",
    "KEYPOINT_ORDER",
    "KEYPOINT_NAMES",
    "MANO_JOINT_NAMES",
    "MANO_PARENTS",
]

#: MANO's 16 joints in order.
MANO_JOINT_NAMES = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "little1", "little2", "little3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)  # fmt: skip
#: Parent of each MANO joint (-1 for the wrist).
MANO_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
#: Index into ``cat([joints (16), fingertips (5: thumb, index, middle, ring, little)])`` of each keypoint.
KEYPOINT_ORDER = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
KEYPOINT_NAMES = (
    "wrist",
    "thumb1", "thumb2", "thumb3", "thumb4",
    "index1", "index2", "index3", "index4",
    "middle1", "middle2", "middle3", "middle4",
    "ring1", "ring2", "ring3", "ring4",
    "little1", "little2", "little3", "little4",
)  # fmt: skip

PoseSpace = Literal["axis_angle", "pca"]
_SIDES = ("right", "left")


@dataclass
class HandModelData:
    """Arrays defining a MANO-format hand (numpy, float64 / int64).

    Attributes:
        name: model name ("openhand" | "mano").
        side: "right" | "left".
        v_template: (V, 3) rest vertices, metres.
        faces: (F, 3) triangles, outward (counter-clockwise) winding.
        closed_faces: (F', 3) watertight face set over the same V vertices.
        j_regressor: (16, V) dense joint regressor; ``j_regressor @ v_template`` are the rest joints.
        weights: (V, 16) skinning weights, rows summing to 1.
        posedirs: (V, 3, 135) pose correctives, or None (none).
        shapedirs: (V, 3, n) shape blend shapes, metres per unit coefficient.
        parents: (16,) parent of each joint, -1 for the root (MANO order).
        fingertips: (5,) vertex index of each fingertip: thumb, index, middle, ring, little.
        pca_components: (45, 45) orthonormal rows, pose principal directions.
        pca_mean: (45,) mean pose of the PCA (MANO's ``hands_mean``).
        shape_names: names of the shape coefficients (len n).
        info: free-form provenance strings.
    """

    name: str
    side: str
    v_template: np.ndarray
    faces: np.ndarray
    closed_faces: np.ndarray
    j_regressor: np.ndarray
    weights: np.ndarray
    posedirs: np.ndarray | None
    shapedirs: np.ndarray
    parents: np.ndarray
    fingertips: np.ndarray
    pca_components: np.ndarray
    pca_mean: np.ndarray
    shape_names: tuple[str, ...] = ()
    info: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Check shapes and finiteness; raise :class:`HandModelError` on any problem."""
        v = self.v_template.shape[0] if self.v_template.ndim == 2 else -1
        checks = {
            "v_template": (self.v_template, (v, 3)),
            "j_regressor": (self.j_regressor, (16, v)),
            "weights": (self.weights, (v, 16)),
            "parents": (self.parents, (16,)),
            "fingertips": (self.fingertips, (5,)),
            "pca_components": (self.pca_components, (45, 45)),
            "pca_mean": (self.pca_mean, (45,)),
        }
        if self.side not in _SIDES:
            raise HandModelError(f"side must be one of {_SIDES}, got {self.side!r}")
        for key, (arr, shape) in checks.items():
            if arr.shape != shape:
                raise HandModelError(f"{self.name} {key} must have shape {shape}, got {arr.shape}")
            if not np.isfinite(arr).all():
                raise HandModelError(f"{self.name} {key} contains non-finite values")
        if self.shapedirs.ndim != 3 or self.shapedirs.shape[:2] != (v, 3):
            raise HandModelError(
                f"{self.name} shapedirs must have shape ({v}, 3, n), got {self.shapedirs.shape}"
            )
        if self.posedirs is not None and self.posedirs.shape != (v, 3, 135):
            raise HandModelError(
                f"{self.name} posedirs must have shape ({v}, 3, 135), got {self.posedirs.shape}"
            )
        for key, f in (("faces", self.faces), ("closed_faces", self.closed_faces)):
            if f.ndim != 2 or f.shape[1] != 3 or f.min() < 0 or f.max() >= v:
                raise HandModelError(f"{self.name} {key} must be (F, 3) indices into {v} vertices")


@dataclass
class HandParams:
    """A batch of hand parameters (tensors, batch-first).

    Attributes:
        global_orient: (B, 3) axis-angle of the wrist, radians.
        hand_pose: (B, 45) axis-angle (MANO joint order) or (B, k) PCA coefficients.
        betas: (B, n_shape) shape coefficients.
        transl: (B, 3) translation, metres.
    """

    global_orient: torch.Tensor
    hand_pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor


@dataclass
class HandOutput:
    """Posed hand.

    Attributes:
        vertices: (B, V, 3) metres.
        keypoints: (B, 21, 3) wrist; thumb 1-4; index 1-4; middle 1-4; ring 1-4; little 1-4 (tips last).
        joints: (B, 16, 3) MANO joint order.
        joint_transforms: (B, 16, 4, 4) world transform of each joint frame (rotation = accumulated joint
            rotation incl. ``global_orient``; translation = posed joint location incl. ``transl``). The local
            frame is the joint's rest frame: model-axis-aligned with its origin at the rest joint.
    """

    vertices: torch.Tensor
    keypoints: torch.Tensor
    joints: torch.Tensor
    joint_transforms: torch.Tensor


def _validate_tensor(
    x: object, name: str, shape: tuple[int | None, ...], desc: str, *, finite: bool = True
) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor of shape {desc}, got {type(x).__name__}")
    if x.dim() != len(shape) or any(s is not None and x.shape[i] != s for i, s in enumerate(shape)):
        raise ShapeError(f"{name} must have shape {desc}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if finite:
        _check_finite([(name, x)])
    return x


def _check_finite(named: list[tuple[str, torch.Tensor]]) -> None:
    """Raise for the first tensor holding NaN or infinity; one sum over all of them when they are finite (a
    finite sum means finite entries: NaN and infinities propagate; an overflow falls through to the exact test)."""
    with torch.no_grad():
        flat = torch.cat([x.reshape(-1) for _, x in named]) if len(named) > 1 else named[0][1]
        if math.isfinite(float(flat.sum())):
            return
    for name, x in named:
        if not bool(torch.isfinite(x).all()):
            raise ShapeError(f"{name} contains NaN or infinite values")


class HandModel(nn.Module):
    """Batched differentiable hand layer (MANO format) for OpenHand and MANO.

    Attributes:
        name: "openhand" | "mano".
        side: "right" | "left".
        num_verts: V.
        num_betas: number of shape coefficients.
        ncomps: default number of PCA pose coefficients.
        flat_hand_mean: if False, ``pca_mean`` is added to every axis-angle pose (MANO layers' convention),
            so a zero pose is the mean hand; if True a zero pose is the flat rest hand.
        faces: (F, 3) long buffer.
        closed_faces: (F', 3) long buffer, watertight face set (OpenHand: its own faces; MANO: wrist capped).
        pca_components: (45, 45) buffer, orthonormal rows.
        pca_mean: (45,) buffer.
        pose_offset: (45,) buffer added to every axis-angle ``hand_pose`` (``pca_mean`` or zero).
        fingertips: (5,) long buffer, fingertip vertices (thumb, index, middle, ring, little).
        keypoint_index: (21,) long buffer (not saved), ``KEYPOINT_ORDER``.
    """

    faces: torch.Tensor
    closed_faces: torch.Tensor
    pca_components: torch.Tensor
    pca_mean: torch.Tensor
    pose_offset: torch.Tensor
    fingertips: torch.Tensor
    keypoint_index: torch.Tensor
    v_template: torch.Tensor
    shapedirs_flat: torch.Tensor
    posedirs_flat: torch.Tensor
    j_template: torch.Tensor
    j_shapedirs: torch.Tensor
    j_regressor: torch.Tensor
    lbs_weights: torch.Tensor
    parents: torch.Tensor

    def __init__(
        self,
        data: HandModelData,
        *,
        ncomps: int = 45,
        flat_hand_mean: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        data.validate()
        if not 1 <= int(ncomps) <= 45:
            raise ShapeError(f"ncomps must be in [1, 45], got {ncomps}")
        self.name = data.name
        self.side = data.side
        self.ncomps = int(ncomps)
        self.flat_hand_mean = bool(flat_hand_mean)
        self.shape_names = tuple(data.shape_names)
        self.info = dict(data.info)
        self._data = data
        self._annotations: HandAnnotations | None = None
        v = data.v_template.shape[0]
        n = data.shapedirs.shape[2]
        self.num_verts = v
        self.num_betas = n

        def f(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.array(a, dtype=np.float64)).to(dtype)

        jreg = np.asarray(data.j_regressor, dtype=np.float64)
        self.register_buffer("v_template", f(data.v_template))
        self.register_buffer("shapedirs_flat", f(data.shapedirs.reshape(v * 3, n).T.copy()))
        self.register_buffer("j_template", f(jreg @ data.v_template))
        j_sd = np.einsum("jv,vcn->jcn", jreg, data.shapedirs).reshape(16 * 3, n).T.copy()
        self.register_buffer("j_shapedirs", f(j_sd))
        self.register_buffer("j_regressor", f(jreg))
        self.has_posedirs = data.posedirs is not None and bool(np.any(data.posedirs != 0))
        pd = data.posedirs if (self.has_posedirs and data.posedirs is not None) else np.zeros((v, 3, 0))
        self.register_buffer("posedirs_flat", f(pd.reshape(v * 3, -1).T.copy()))
        self.register_buffer("lbs_weights", f(data.weights))
        self.register_buffer("parents", torch.as_tensor(np.array(data.parents, dtype=np.int64)))
        self.register_buffer("faces", torch.as_tensor(np.array(data.faces, dtype=np.int64)))
        self.register_buffer("closed_faces", torch.as_tensor(np.array(data.closed_faces, dtype=np.int64)))
        self.register_buffer("pca_components", f(data.pca_components))
        self.register_buffer("pca_mean", f(data.pca_mean))
        offset = np.zeros(45) if self.flat_hand_mean else data.pca_mean
        self.register_buffer("pose_offset", f(offset))
        self.register_buffer("fingertips", torch.as_tensor(np.array(data.fingertips, dtype=np.int64)))
        self.register_buffer("keypoint_index", torch.as_tensor(KEYPOINT_ORDER, dtype=torch.int64), persistent=False)
        self._packed: PackedLBS | None = None
        self.register_load_state_dict_post_hook(_drop_packed)

    # ------------------------------------------------------------------ helpers
    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the model buffers."""
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        """Device of the model buffers."""
        return self.v_template.device

    def _get_packed(self) -> PackedLBS:
        """The model in :func:`~contactkit.hands.lbs.pack_lbs` form, rebuilt from the buffers after a move or cast
        (packed as plain tensors even when first asked for inside ``torch.inference_mode``, so that later calls
        with gradients can save them)."""
        pk = self._packed
        if pk is None or pk.template.device != self.device or pk.template.dtype != self.dtype:
            with torch.inference_mode(False):
                pk = pack_lbs(
                    self.v_template,
                    self.shapedirs_flat if self.num_betas > 0 else None,
                    self.posedirs_flat if self.has_posedirs else None,
                    self.j_template,
                    self.j_shapedirs if self.num_betas > 0 else None,
                    self.parents,
                    self.lbs_weights,
                )
            self._packed = pk
        return pk

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, side={self.side!r}, num_verts={self.num_verts}, "
            f"num_betas={self.num_betas}, ncomps={self.ncomps}, flat_hand_mean={self.flat_hand_mean}"
        )

    @property
    def config(self) -> dict[str, object]:
        """Constructor arguments of :func:`contactkit.hands.load_hand` that rebuild this model (JSON-able)."""
        return {
            "name": self.name,
            "side": self.side,
            "ncomps": self.ncomps,
            "flat_hand_mean": self.flat_hand_mean,
        }

    @property
    def rest_joints(self) -> torch.Tensor:
        """(16, 3) rest joint locations at ``betas = 0``, metres."""
        return self.j_template

    @property
    def data(self) -> HandModelData:
        """The numpy arrays the model was built from (float64)."""
        return self._data

    # ------------------------------------------------------------------ annotations
    @property
    def annotations(self) -> HandAnnotations:
        """Anchors, regions, contact zones and palmar mask derived by code for this hand (cached)."""
        if self._annotations is None:
            from contactkit.hands.annotations import derive_annotations

            d = self._data
            rest_joints = np.asarray(d.j_regressor, dtype=np.float64) @ d.v_template
            self._annotations = derive_annotations(
                np.asarray(d.v_template, dtype=np.float64),
                np.asarray(d.faces, dtype=np.int64),
                rest_joints,
                np.asarray(d.weights, dtype=np.float64),
                np.asarray(d.fingertips, dtype=np.int64),
                d.side,
            )
        return self._annotations

    def anchors(self, vertices: torch.Tensor) -> torch.Tensor:
        """The 32 CPF anchors on a posed hand, by barycentric interpolation (differentiable).

        Args:
            vertices: (B, V, 3) posed hand vertices, metres.

        Returns:
            (B, 32, 3) anchor positions, same dtype/device as ``vertices``.
        """
        _validate_tensor(vertices, "vertices", (None, self.num_verts, 3), f"(B, {self.num_verts}, 3)")
        return self.annotations.anchors(vertices, self.faces)

    # ------------------------------------------------------------------ PCA
    def pca_to_axis_angle(self, coeffs: torch.Tensor) -> torch.Tensor:
        """PCA coefficients (B, k) to axis-angle ``hand_pose`` (B, 45) (same space as ``forward``'s input)."""
        return _pca.pca_to_axis_angle(coeffs, self.pca_components)

    def axis_angle_to_pca(self, pose: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Axis-angle ``hand_pose`` (B, 45) to least-squares PCA coefficients (B, k); k defaults to ncomps."""
        return _pca.axis_angle_to_pca(pose, self.pca_components, self.ncomps if k is None else k)

    # ------------------------------------------------------------------ params
    def zero_params(
        self,
        batch: int,
        *,
        pose_space: PoseSpace = "axis_angle",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> HandParams:
        """All-zero parameters for a batch (a flat or mean hand at the origin, see ``flat_hand_mean``)."""
        dev = self.device if device is None else torch.device(device)
        dt = self.dtype if dtype is None else dtype
        k = 45 if pose_space == "axis_angle" else self.ncomps
        if pose_space not in ("axis_angle", "pca"):
            raise ShapeError(f"pose_space must be one of ('axis_angle', 'pca'), got {pose_space!r}")

        def z(*s: int) -> torch.Tensor:
            return torch.zeros(*s, device=dev, dtype=dt)

        return HandParams(z(batch, 3), z(batch, k), z(batch, self.num_betas), z(batch, 3))

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        global_orient: torch.Tensor,
        hand_pose: torch.Tensor,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
        *,
        pose_space: PoseSpace = "axis_angle",
    ) -> HandOutput:
        """Pose the hand.

        Args:
            global_orient: (B, 3) axis-angle of the wrist, radians.
            hand_pose: (B, 45) axis-angle of the 15 finger joints in MANO order (``pose_space="axis_angle"``),
                or (B, k) PCA coefficients, 1 <= k <= 45 (``pose_space="pca"``).
            betas: (B, num_betas) shape coefficients, or None for the template shape.
            transl: (B, 3) translation, metres, or None.
            pose_space: "axis_angle" | "pca".

        Returns:
            :class:`HandOutput` in the dtype/device of the model buffers (cast the model with ``.to``).
        """
        go = _validate_tensor(global_orient, "global_orient", (None, 3), "(B, 3)", finite=False)
        b = go.shape[0]
        if pose_space == "axis_angle":
            hp = _validate_tensor(
                hand_pose, "hand_pose", (b, 45), f"({b}, 45) for pose_space='axis_angle'", finite=False
            )
        elif pose_space == "pca":
            hp = _validate_tensor(
                hand_pose, "hand_pose", (b, None), f"({b}, k), 1 <= k <= 45, for pose_space='pca'", finite=False
            )
            if not 1 <= hp.shape[1] <= 45:
                raise ShapeError(
                    f"hand_pose must have shape ({b}, k) with 1 <= k <= 45, got {tuple(hp.shape)}"
                )
        else:
            raise ShapeError(f"pose_space must be one of ('axis_angle', 'pca'), got {pose_space!r}")
        dt, dev = self.dtype, self.device
        if betas is not None:
            betas = _validate_tensor(betas, "betas", (b, self.num_betas), f"({b}, {self.num_betas})", finite=False)
        if transl is not None:
            transl = _validate_tensor(transl, "transl", (b, 3), f"({b}, 3)", finite=False)
        for arg, x in (("global_orient", go), ("hand_pose", hp), ("betas", betas), ("transl", transl)):
            if x is not None and x.device != dev:
                raise ShapeError(f"{arg} is on {x.device} but the hand model is on {dev}")
        _check_finite([(k, x) for k, x in (("global_orient", go), ("hand_pose", hp), ("betas", betas),
                                            ("transl", transl)) if x is not None])
        betas = betas.to(dt) if betas is not None else None
        transl = transl.to(dt) if transl is not None else None
        if pose_space == "pca":
            hp = self.pca_to_axis_angle(hp.to(dt))
        hp = hp.to(dt) if self.flat_hand_mean else hp.to(dt) + self.pose_offset
        full = torch.cat([go.to(dt), hp], dim=1).reshape(b, 16, 3)
        out = lbs_packed(full, betas, transl, self._get_packed())
        verts, joints = out.vertices, out.joints
        # the vertices are stored coordinate-major: a gather along their last storage axis is the fast one
        tips = verts.transpose(1, 2).index_select(2, self.fingertips).transpose(1, 2)
        keypoints = torch.cat([joints, tips], dim=1).index_select(1, self.keypoint_index)
        return HandOutput(vertices=verts, keypoints=keypoints, joints=joints, joint_transforms=out.joint_transforms)


def _drop_packed(module: HandModel, incompatible_keys: object) -> None:
    """After ``load_state_dict`` the buffers may hold other values: repack on the next forward."""
    module._packed = None


def check_side(side: object) -> str:
    """Validate a side name; returns it."""
    if side not in _SIDES:
        raise HandModelError(f"side must be one of {_SIDES}, got {side!r}")
    return str(side)

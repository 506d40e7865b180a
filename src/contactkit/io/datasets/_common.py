"""Shared helpers of the dataset readers: safe loading of pickled annotations, MANO conversions, assembly.

Some public datasets ship their annotations as Python pickles (HO-3D ``meta/*.pkl``, OakInk-Shape
``hand_param.pkl``, GRAB's ``.npz`` with object arrays). Unpickling can execute code, so these are read with
contactkit's one restricted unpickler (:class:`contactkit.hands.unpickle.RestrictedUnpickler`), which only
rebuilds numpy arrays, dtypes and scalars plus plain Python containers (and MANO's chumpy/sparse values); any
other global in the stream raises :class:`DatasetFormatError`.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contactkit.errors import GraspFileError

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.mesh import ObjectMesh

__all__ = [
    "DatasetFormatError",
    "GraspRecords",
    "load_restricted_pickle",
    "mano_pca_to_axis_angle",
    "mano_root_joint",
    "read_npz_safely",
]


class DatasetFormatError(GraspFileError):
    """A dataset file is missing, unsafe to load, or does not follow the documented layout."""


def load_restricted_pickle(data: bytes | Path | str, *, what: str = "pickle") -> Any:
    """Load a pickle (Python 2 or 3) through contactkit's one restricted unpickler
    (:class:`contactkit.hands.unpickle.RestrictedUnpickler`), raising :class:`DatasetFormatError`.

    Args:
        data: the pickle bytes or a path to the file.
        what: description used in error messages.
    """
    from contactkit.hands.unpickle import restricted_load

    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise DatasetFormatError(f"{what}: file not found: {path}")
        data = path.read_bytes()
    return restricted_load(data, error=DatasetFormatError, what=what)


def read_npz_safely(path: Path | str) -> dict[str, Any]:
    """Read every array of an ``.npz``; object arrays are unpickled with :func:`load_restricted_pickle`.

    ``np.load(allow_pickle=True)`` would run arbitrary pickles; here each member's ``.npy`` header is parsed
    and only the object-dtype payloads go through the restricted unpickler. 0-d object arrays are unwrapped to
    the object they hold (GRAB stores its parameter dicts that way).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"npz file not found: {path}")
    out: dict[str, Any] = {}
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise DatasetFormatError(f"{path}: not an npz archive ({err})") from err
    with zf:
        for member in zf.namelist():
            key = member[:-4] if member.endswith(".npy") else member
            with zf.open(member) as fh:
                raw = fh.read()
            buf = io.BytesIO(raw)
            try:
                version = np.lib.format.read_magic(buf)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
            except ValueError as err:
                raise DatasetFormatError(f"{path}:{member}: bad .npy header ({err})") from err
            if dtype.hasobject:
                obj = load_restricted_pickle(buf.read(), what=f"{path}:{member}")
                arr = np.asarray(obj, dtype=object) if not isinstance(obj, np.ndarray) else obj
                out[key] = arr.item() if arr.shape == () else arr
            else:
                buf.seek(0)
                out[key] = np.load(buf, allow_pickle=False)
    return out


def mano_pca_to_axis_angle(
    hand: HandModel, coeffs: np.ndarray, *, add_mean: bool
) -> np.ndarray:
    """Convert MANO PCA pose coefficients to the 45 finger axis-angles (flat-hand convention).

    Args:
        hand: a MANO :class:`~contactkit.hands.base.HandModel` (its ``pca_components (45, 45)`` rows are the
            PCA basis in axis-angle space; ``pca_mean (45,)`` is MANO's ``hands_mean``).
        coeffs: (N, k) float PCA coefficients, ``k <= 45``.
        add_mean: add MANO's mean pose (datasets fitted with ``flat_hand_mean=False``, e.g. ContactPose).

    Returns: (N, 45) float64 axis-angles, radians.
    """
    coeffs = np.asarray(coeffs, dtype=np.float64)
    if coeffs.ndim != 2 or not 1 <= coeffs.shape[1] <= 45:
        raise DatasetFormatError(f"PCA pose coefficients must have shape (N, k<=45), got {coeffs.shape}")
    comps = np.asarray(_to_numpy(hand.pca_components), dtype=np.float64)
    if comps.shape != (45, 45):
        raise DatasetFormatError(f"hand.pca_components must have shape (45, 45), got {comps.shape}")
    pose = coeffs @ comps[: coeffs.shape[1]]
    if add_mean:
        pose = pose + np.asarray(_to_numpy(hand.pca_mean), dtype=np.float64).reshape(1, 45)
    return pose


def mano_root_joint(hand: HandModel, betas: np.ndarray) -> np.ndarray:
    """(N, 3) float64 rest position of MANO's root joint for shape ``betas (N, n_shape)``, metres.

    ``betas`` are cut or zero-padded to the model's ``num_betas``.
    """
    import torch

    b = np.asarray(betas, dtype=np.float64)
    width = int(hand.num_betas)
    fitted = np.zeros((b.shape[0], width))
    fitted[:, : min(width, b.shape[1])] = b[:, :width]
    betas_t = torch.as_tensor(fitted)
    n = betas_t.shape[0]
    with torch.no_grad():
        ref = next(iter(hand.buffers()), None)
        dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
        zeros3 = torch.zeros(n, 3, dtype=dtype)
        out = hand(zeros3, torch.zeros(n, 45, dtype=dtype), betas_t.to(dtype), zeros3)
    return out.joints[:, 0].double().numpy()


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


@dataclass
class GraspRecords:
    """A dataset reader's grasps, one :meth:`add` each, stacked into a MANO grasp set by :meth:`grasp_set`.

    Attributes (one entry per grasp): global_orient (3,), hand_pose (45,) axis-angle, betas (any length; zero-padded
    to the longest), transl (3,) m, objects (the mesh; identical meshes are stored once), object_rotation (3, 3),
    object_translation (3,) m, metadata; object_points (P, 3) m and object_contact (P,) when the dataset has
    per-point contact (every grasp or none).
    """

    global_orient: list[np.ndarray] = field(default_factory=list)
    hand_pose: list[np.ndarray] = field(default_factory=list)
    betas: list[np.ndarray] = field(default_factory=list)
    transl: list[np.ndarray] = field(default_factory=list)
    objects: list[ObjectMesh] = field(default_factory=list)
    object_rotation: list[np.ndarray] = field(default_factory=list)
    object_translation: list[np.ndarray] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    object_points: list[np.ndarray] = field(default_factory=list)
    object_contact: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.global_orient)

    def add(self, *, global_orient: np.ndarray, hand_pose: np.ndarray, betas: np.ndarray, transl: np.ndarray,
            mesh: ObjectMesh, metadata: dict[str, Any], object_rotation: np.ndarray | None = None,
            object_translation: np.ndarray | None = None, object_points: np.ndarray | None = None,
            object_contact: np.ndarray | None = None) -> None:
        """Add one grasp; the object pose defaults to the identity (object in the world frame)."""
        self.global_orient.append(global_orient)
        self.hand_pose.append(hand_pose)
        self.betas.append(betas)
        self.transl.append(transl)
        self.objects.append(mesh)
        self.object_rotation.append(np.eye(3) if object_rotation is None else object_rotation)
        self.object_translation.append(np.zeros(3) if object_translation is None else object_translation)
        self.metadata.append(metadata)
        if object_points is not None and object_contact is not None:
            self.object_points.append(object_points)
            self.object_contact.append(object_contact)

    def grasp_set(self, side: str, attrs: dict[str, Any]) -> GraspSet:
        """Stack the records into a MANO :class:`~contactkit.io.grasps.GraspSet` (float64 arrays)."""
        from contactkit.io.grasps import GraspSet

        if len(self) == 0:
            raise DatasetFormatError("no grasp found in the given dataset path")
        if len(self.object_points) not in (0, len(self)):
            raise DatasetFormatError("object contact given for some grasps only")
        meshes: dict[str, ObjectMesh] = {}
        ids = []
        for mesh in self.objects:
            meshes.setdefault(mesh.content_hash, mesh)
            ids.append(mesh.content_hash)
        n_shape = max(len(b) for b in self.betas)
        betas_arr = np.zeros((len(self), n_shape))
        for i, b in enumerate(self.betas):
            betas_arr[i, : len(b)] = b
        kwargs: dict[str, Any] = dict(
            hand_model="mano",
            side=side,
            global_orient=np.stack(self.global_orient).astype(np.float64).reshape(-1, 3),
            hand_pose=np.stack(self.hand_pose).astype(np.float64).reshape(-1, 45),
            betas=betas_arr,
            transl=np.stack(self.transl).astype(np.float64).reshape(-1, 3),
            object_ids=ids,
            objects=meshes,
            object_rotation=np.stack(self.object_rotation).astype(np.float64).reshape(-1, 3, 3),
            object_translation=np.stack(self.object_translation).astype(np.float64).reshape(-1, 3),
            metadata=list(self.metadata),
            attrs=dict(attrs),
        )
        if self.object_points:
            kwargs["object_points"] = np.stack(self.object_points).astype(np.float64)
            kwargs["object_contact"] = np.stack(self.object_contact).astype(np.float64)
        return GraspSet(**kwargs)


def load_mesh_keep_order(path: Path | str, name: str) -> tuple[ObjectMesh, np.ndarray, np.ndarray | None]:
    """Load a mesh file, keeping the file's raw vertex order beside the (cleaned) object mesh.

    :meth:`ObjectMesh.from_arrays` merges duplicate vertices, so per-vertex data of the file (contact maps) is
    aligned with the returned raw vertices, not with ``mesh.vertices``.

    Returns: ``(mesh, raw_vertices (V, 3) float64, colours (V, 4) uint8 or None)``.
    """
    import trimesh

    from contactkit.objects.mesh import ObjectMesh

    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"mesh file not found: {path}")
    try:
        tm = trimesh.load(path, process=False, force="mesh")
    except Exception as err:
        raise DatasetFormatError(f"{path}: cannot read mesh ({err})") from err
    if not isinstance(tm, trimesh.Trimesh):
        raise DatasetFormatError(f"{path}: no triangle mesh in the file")
    colors = None
    visual = getattr(tm, "visual", None)
    if visual is not None and getattr(visual, "kind", None) == "vertex":
        c = np.asarray(visual.vertex_colors)
        if c.ndim == 2 and c.shape[0] == len(tm.vertices):
            colors = c
    raw = np.asarray(tm.vertices, dtype=np.float64)
    mesh = ObjectMesh.from_arrays(raw, np.asarray(tm.faces, dtype=np.int64), name=name, source=str(path))
    return mesh, raw, colors


def subsample_indices(n: int, k: int, seed: int) -> np.ndarray:
    """``k`` vertex indices out of ``n``: all of them in order when ``k >= n`` (then repeated cyclically to
    reach ``k``), else a seeded sample without replacement, sorted."""
    if k >= n:
        return np.resize(np.arange(n), k).astype(np.int64)
    rng = np.random.Generator(np.random.PCG64(seed))
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)

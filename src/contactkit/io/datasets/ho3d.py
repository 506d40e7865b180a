"""Reader of HO-3D v2 / v3 (Hampali et al., CVPR 2020) hand-object annotations.

Expected layout (public releases ``HO3D_v2`` and ``HO3D_v3``; the per-frame annotation files are identical in
the fields used here)::

    HO3D_v2/ or HO3D_v3/
        train/ (or evaluation/)
            {SEQ}/                        e.g. ABF10, MC1, SM2
                meta/{NNNN}.pkl           one pickled dict per frame
    YCB models ("models" download)        models_dir/{objName}/textured_simple.obj

Fields read from each ``meta/*.pkl`` (all in the camera frame, metres):

- ``handPose (48,)``: MANO global orientation (3) then the 15 finger axis-angles (45), flat-hand convention;
- ``handTrans (3,)``, ``handBeta (10,)``;
- ``objRot (3,)`` or ``(3, 1)`` axis-angle, ``objTrans (3,)``, ``objName`` (YCB name, e.g.
  ``003_cracker_box``).

HO-3D is right-handed only. Frames whose ``handPose`` is missing or ``None`` (the evaluation split only
publishes the root joint) are skipped with a warning. The pickles are read through a restricted unpickler that
only rebuilds numpy arrays and plain containers (see :mod:`contactkit.io.datasets._common`).

``path`` may be the dataset root, a split, a sequence, its ``meta`` folder or one ``.pkl`` file. Object meshes
are looked up as ``models_dir/{objName}/textured_simple.obj``, then ``models_dir/{objName}.obj`` / ``.ply``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contactkit.io.datasets._common import DatasetFormatError, GraspRecords, load_restricted_pickle

if TYPE_CHECKING:
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.mesh import ObjectMesh

__all__ = ["find_ho3d_frames", "read_ho3d", "rodrigues"]


def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """(3, 3) float64 rotation matrix of a rotation vector (radians)."""
    import torch

    from contactkit.geometry.rotations import axis_angle_to_rotmat

    return axis_angle_to_rotmat(torch.as_tensor(np.asarray(rotvec, dtype=np.float64).reshape(3))).numpy()


def find_ho3d_frames(path: str | Path) -> list[Path]:
    """All ``meta/*.pkl`` annotation files under ``path`` (or ``path`` itself), sorted."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.exists():
        raise DatasetFormatError(f"HO-3D path not found: {root}")
    if root.name == "meta":
        return sorted(root.glob("*.pkl"))
    return sorted(p for p in root.glob("**/meta/*.pkl"))


def _find_model(models_dir: Path | None, name: str) -> Path:
    candidates = []
    if models_dir is not None:
        candidates += [
            models_dir / name / "textured_simple.obj",
            models_dir / name / "textured.obj",
            models_dir / f"{name}.obj",
            models_dir / f"{name}.ply",
        ]
    for c in candidates:
        if c.is_file():
            return c
    raise DatasetFormatError(
        f"HO-3D object model {name!r} not found (looked for {[str(c) for c in candidates]}); pass models_dir"
    )


def _field(meta: dict[str, Any], key: str, size: int, src: Path) -> np.ndarray:
    if key not in meta or meta[key] is None:
        raise DatasetFormatError(f"{src}: missing field {key!r}")
    arr = np.asarray(meta[key], dtype=np.float64).reshape(-1)
    if arr.size != size:
        raise DatasetFormatError(f"{src}: field {key!r} must have {size} values, got {arr.size}")
    return arr


def read_ho3d(
    path: str | Path,
    *,
    models_dir: str | Path | None = None,
    stride: int = 1,
) -> GraspSet:
    """Read HO-3D annotations into a MANO :class:`~contactkit.io.grasps.GraspSet` (see the module docstring).

    Args:
        path: dataset root, split, sequence, ``meta`` folder or a single ``.pkl``.
        models_dir: folder of the YCB models (``{objName}/textured_simple.obj``).
        stride: keep every ``stride``-th annotated frame of each sequence (consecutive frames are near
            duplicates).
    """
    from contactkit.objects.mesh import ObjectMesh

    if stride < 1:
        raise DatasetFormatError(f"stride must be >= 1, got {stride}")
    mdir = Path(models_dir) if models_dir is not None else None
    meshes: dict[str, ObjectMesh] = {}
    recs = GraspRecords()
    skipped = 0
    frames = find_ho3d_frames(path)
    by_seq: dict[Path, list[Path]] = {}
    for f in frames:
        by_seq.setdefault(f.parent, []).append(f)
    for seq_meta, files in sorted(by_seq.items()):
        for f in files[::stride]:
            meta = load_restricted_pickle(f, what=f"HO-3D annotation {f}")
            if not isinstance(meta, dict):
                raise DatasetFormatError(f"{f}: expected a pickled dict, got {type(meta).__name__}")
            if meta.get("handPose") is None:
                skipped += 1
                continue
            hand_pose = _field(meta, "handPose", 48, f)
            name = meta.get("objName")
            if not isinstance(name, str):
                raise DatasetFormatError(f"{f}: field 'objName' must be a string")
            if name not in meshes:
                meshes[name] = ObjectMesh.from_file(_find_model(mdir, name), name=name)
            recs.add(global_orient=hand_pose[:3], hand_pose=hand_pose[3:], betas=_field(meta, "handBeta", 10, f),
                     transl=_field(meta, "handTrans", 3, f), mesh=meshes[name],
                     object_rotation=rodrigues(_field(meta, "objRot", 3, f)),
                     object_translation=_field(meta, "objTrans", 3, f),
                     metadata={"dataset": "ho3d", "source": str(f), "sequence": seq_meta.parent.name,
                               "frame": f.stem, "object": name})
    if skipped:
        warnings.warn(f"skipped {skipped} HO-3D frames without a hand pose", stacklevel=2)
    return recs.grasp_set("right", {"source": "ho3d", "stride": stride})

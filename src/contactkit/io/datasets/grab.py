"""Reader of GRAB (Taheri et al., ECCV 2020) whole-body grasp sequences, one hand at a time.

Expected layout (the public GRAB release after ``grab/unzip_grab.py``)::

    GRAB_ROOT/
        grab/s{1..10}/{object}_{action}_{k}.npz       one sequence each
        tools/object_meshes/contact_meshes/{object}.ply
        tools/subject_meshes/{male,female}/s{N}_{rhand,lhand}.ply

Each sequence ``.npz`` holds plain arrays (``n_frames``, ``n_comps``, ``obj_name``, ``sbj_id``,
``motion_intent``, ``gender``, ``framerate``) and 0-d object arrays wrapping dicts (hence ``allow_pickle`` in
GRAB's own loader):

- ``rhand`` / ``lhand``: ``{"params": {"global_orient" (T,3), "hand_pose" (T, n_comps) PCA, "transl" (T,3),
  "fullpose" (T,45)}, "vtemp": personal hand template path}``;
- ``object``: ``{"params": {"global_orient" (T,3), "transl" (T,3)}, "object_mesh": mesh path}``;
- ``contact``: ``{"object": (T, V_object) int body-part label in contact (0 = none), "body": ...}``.

Those dicts are read with the restricted unpickler (numpy arrays and containers only), never ``np.load``'s
``allow_pickle``. Mesh paths are relative to ``GRAB_ROOT``.

Conversion: GRAB's MANO uses ``flat_hand_mean=True``, so ``fullpose`` is already the flat-hand axis-angle
(``hand_pose`` PCA coefficients are used only when ``fullpose`` is absent, which needs the MANO model). GRAB
shapes its hands with a personal template mesh (``vtemp``) instead of ``betas``: the reader sets ``betas = 0``
and records the template path in each grasp's metadata (a known approximation of the subject's hand). World
frame = GRAB's; object pose ``R = rodrigues(global_orient)``, ``t = transl``. ``object_contact`` is
``contact.object > 0`` on ``n_object_points`` subsampled vertices of the contact mesh.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from contactkit.io.datasets._common import (
    DatasetFormatError,
    GraspRecords,
    load_mesh_keep_order,
    mano_pca_to_axis_angle,
    read_npz_safely,
    subsample_indices,
)
from contactkit.io.datasets.ho3d import rodrigues

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.mesh import ObjectMesh

__all__ = ["find_grab_sequences", "read_grab"]


def find_grab_sequences(path: str | Path) -> list[Path]:
    """Sequence ``.npz`` files under ``path`` (or ``path`` itself), sorted."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.exists():
        raise DatasetFormatError(f"GRAB path not found: {root}")
    return sorted(p for p in root.glob("**/*.npz") if not p.stem.endswith(("_verts_body", "_verts_object")))


def _grab_root(seq: Path, root: Path | None) -> Path:
    if root is not None:
        return root
    for parent in seq.parents:
        if (parent / "tools").is_dir():
            return parent
    raise DatasetFormatError(f"{seq}: cannot find GRAB_ROOT (a parent folder holding tools/); pass grab_root")


def _dict(d: Any, key: str, src: Path) -> dict[str, Any]:
    val = d.get(key) if isinstance(d, dict) else None
    if not isinstance(val, dict):
        raise DatasetFormatError(f"{src}: expected {key!r} to be a dict")
    return val


def _param(params: dict[str, Any], key: str, width: int, n: int, src: Path) -> np.ndarray:
    if key not in params:
        raise DatasetFormatError(f"{src}: missing parameter {key!r}")
    arr = np.asarray(params[key], dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n or (width > 0 and arr.shape[1] != width):
        want = f"({n}, {width})" if width > 0 else f"({n}, k)"
        raise DatasetFormatError(f"{src}: parameter {key!r} must have shape {want}, got {arr.shape}")
    return arr


def read_grab(
    path: str | Path,
    *,
    side: Literal["left", "right"] = "right",
    stride: int = 10,
    contact_only: bool = True,
    grab_root: str | Path | None = None,
    hand: HandModel | None = None,
    n_object_points: int = 2048,
    seed: int = 0,
) -> GraspSet:
    """Read GRAB sequences into a MANO :class:`~contactkit.io.grasps.GraspSet` (see the module docstring).

    Args:
        path: a sequence ``.npz``, a subject folder or the ``grab`` folder.
        side: which hand's parameters to read.
        stride: keep every ``stride``-th frame (GRAB is captured at 120 fps).
        contact_only: keep only frames where some object vertex is in contact.
        grab_root: the folder holding ``tools/``; found among ``path``'s parents when omitted.
        hand: MANO model, only needed for sequences without ``fullpose``.
        n_object_points: object vertices sampled per grasp for ``object_points`` / ``object_contact``.
        seed: seed of that vertex subsample.
    """
    if side not in ("left", "right"):
        raise DatasetFormatError(f"side must be 'left' or 'right', got {side!r}")
    if stride < 1:
        raise DatasetFormatError(f"stride must be >= 1, got {stride}")
    key = "rhand" if side == "right" else "lhand"
    root = Path(grab_root) if grab_root is not None else None
    meshes: dict[str, tuple[ObjectMesh, np.ndarray, np.ndarray]] = {}
    recs = GraspRecords()
    for seq in find_grab_sequences(path):
        data = read_npz_safely(seq)
        if "n_frames" not in data:
            raise DatasetFormatError(f"{seq}: missing 'n_frames' (not a GRAB sequence?)")
        n = int(np.asarray(data["n_frames"]).reshape(()))
        hand_d = _dict(data, key, seq)
        hparams = _dict(hand_d, "params", seq)
        obj_d = _dict(data, "object", seq)
        oparams = _dict(obj_d, "params", seq)
        go = _param(hparams, "global_orient", 3, n, seq)
        tr = _param(hparams, "transl", 3, n, seq)
        if "fullpose" in hparams:
            pose = _param(hparams, "fullpose", 45, n, seq)
        else:
            if hand is None:
                from contactkit.hands import load_hand

                hand = load_hand("mano", side)
            pose = mano_pca_to_axis_angle(hand, _param(hparams, "hand_pose", 0, n, seq), add_mean=False)
        ogo = _param(oparams, "global_orient", 3, n, seq)
        otr = _param(oparams, "transl", 3, n, seq)
        mesh_rel = str(obj_d.get("object_mesh", ""))
        if not mesh_rel:
            raise DatasetFormatError(f"{seq}: missing object['object_mesh']")
        mesh_path = _grab_root(seq, root) / mesh_rel
        obj_name = str(np.asarray(data.get("obj_name", mesh_path.stem)).reshape(()))
        if str(mesh_path) not in meshes:
            mesh, raw, _ = load_mesh_keep_order(mesh_path, obj_name)
            meshes[str(mesh_path)] = (mesh, raw, subsample_indices(len(raw), n_object_points, seed))
        mesh, raw, idx = meshes[str(mesh_path)]
        contact = None
        cdict = data.get("contact")
        if isinstance(cdict, dict) and "object" in cdict:
            c = np.asarray(cdict["object"])
            if c.shape == (n, len(raw)):
                contact = c > 0
            else:
                warnings.warn(f"{seq}: contact['object'] shape {c.shape} does not match the mesh; ignored",
                              stacklevel=2)
        frames = np.arange(0, n, stride)
        if contact_only and contact is not None:
            frames = frames[contact[frames].any(axis=1)]
        for f in frames:
            recs.add(global_orient=go[f], hand_pose=pose[f], betas=np.zeros(10), transl=tr[f], mesh=mesh,
                     object_rotation=rodrigues(ogo[f]), object_translation=otr[f], object_points=raw[idx],
                     object_contact=contact[f, idx].astype(np.float64) if contact is not None
                     else np.zeros(len(idx)), metadata={
                         "dataset": "grab", "source": str(seq), "frame": int(f), "object": obj_name,
                         "subject": str(np.asarray(data.get("sbj_id", "")).reshape(())),
                         "intent": str(np.asarray(data.get("motion_intent", "")).reshape(())),
                         "vtemp": str(hand_d.get("vtemp", "")),
                     })
    return recs.grasp_set(side, {"source": "grab", "stride": stride, "contact_only": contact_only})

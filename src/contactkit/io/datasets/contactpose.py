"""Reader of ContactPose (Brahmbhatt et al., ECCV 2020) grasps: MANO fits, object meshes and contact maps.

Expected layout (the "grasps" and "contact_maps" downloads of the public release, as arranged by ContactPose's
``startup.py`` / ``scripts/download_data.py`` under ``data/contactpose_data``)::

    contactpose_data/
        full{P}_{intent}/            P = participant 1..50, intent = use | handoff
            {object}/
                annotations.json     hands[2] (left, right): valid, moving, joints;
                                     frames[]: hTo (hand -> object, for moving hands)
                mano_fits_{K}.json   [left, right]: valid, pose (3 + K), betas (10),
                                     mTc {rotation (w, x, y, z), translation}
                {object}.ply         object mesh (metres, object frame) with the thermal contact map
                                     as vertex colour (the red channel, 0..255 -> 0..1)

``path`` may be the ``contactpose_data`` folder, one ``full{P}_{intent}`` session folder or one grasp folder.
The ``palm_print`` and ``hands`` pseudo-objects (no object pose / contact) are skipped.

Conversion:

- ContactPose fits MANO with ``flat_hand_mean=False``: the finger pose is ``hands_mean + c @ components[:K]``;
  it is stored as flat-hand axis-angle (what :class:`~contactkit.io.grasps.GraspSet` holds).
- The hand's MANO frame is the world frame: ``global_orient = pose[:3]``, ``transl = 0``, and the object pose
  is ``mTo = inv(oTh @ hTm)`` with ``hTm = inv(mTc)`` (ContactPose's transform tree). ``oTh`` is the identity
  for a static hand, and ``inv(frames[frame].hTo[hand])`` for a hand marked ``moving``.
- ``object_points`` are ``n_object_points`` vertices of the contact-map mesh (seeded subsample) and
  ``object_contact`` their red-channel contact value.

This needs the MANO model (``hand`` or ``mano_dir``) for the PCA basis.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from contactkit.io.datasets._common import (
    DatasetFormatError,
    GraspRecords,
    load_mesh_keep_order,
    mano_pca_to_axis_angle,
    subsample_indices,
)

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.io.grasps import GraspSet

__all__ = ["find_contactpose_grasps", "pose_matrix", "read_contactpose"]

_SKIP_OBJECTS = frozenset({"palm_print", "hands"})
_HAND_INDEX = {"left": 0, "right": 1}


def pose_matrix(pose: dict[str, Any]) -> np.ndarray:
    """4x4 float64 rigid transform from ContactPose's ``{"rotation": [w, x, y, z], "translation": [...]}``."""
    try:
        q = np.asarray(pose["rotation"], dtype=np.float64).reshape(4)
        t = np.asarray(pose["translation"], dtype=np.float64).reshape(3)
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetFormatError(f"bad ContactPose pose record {pose!r}: {err}") from err
    w, x, y, z = q / np.linalg.norm(q)
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = t
    return out


def find_contactpose_grasps(path: str | Path) -> list[Path]:
    """Grasp folders (those holding ``annotations.json``) under ``path``, sorted."""
    root = Path(path)
    if not root.exists():
        raise DatasetFormatError(f"ContactPose path not found: {root}")
    if (root / "annotations.json").is_file():
        return [root]
    found = sorted(p.parent for p in root.glob("**/annotations.json"))
    return [p for p in found if p.name not in _SKIP_OBJECTS]


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise DatasetFormatError(f"ContactPose file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DatasetFormatError(f"{path}: invalid JSON ({err})") from err


def _load_contact_mesh(path: Path, name: str) -> tuple[Any, np.ndarray, np.ndarray]:
    mesh, raw, colors = load_mesh_keep_order(path, name)
    if colors is None:
        raise DatasetFormatError(f"{path}: expected one colour per vertex (the contact map)")
    return mesh, raw, colors[:, 0].astype(np.float64) / 255.0


def read_contactpose(
    path: str | Path,
    *,
    hand: HandModel | None = None,
    mano_dir: str | Path | None = None,
    side: Literal["left", "right"] = "right",
    ncomps: int = 15,
    frame: int = 0,
    n_object_points: int = 2048,
    seed: int = 0,
) -> GraspSet:
    """Read ContactPose grasps into a MANO :class:`~contactkit.io.grasps.GraspSet` (see the module docstring).

    Args:
        path: ``contactpose_data`` folder, a session folder or a grasp folder.
        hand: MANO hand model of ``side`` supplying the PCA basis; loaded from ``mano_dir`` when omitted.
        mano_dir: folder with ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``.
        side: which hand to read; grasps where that hand is not valid are skipped.
        ncomps: which MANO fit file to read, ``mano_fits_{ncomps}.json`` (15 is the ContactPose API's
            default).
        frame: frame whose hand-object transform is used for hands marked ``moving``.
        n_object_points: object vertices sampled per grasp for ``object_points`` / ``object_contact``.
        seed: seed of that vertex subsample.
    """
    if side not in _HAND_INDEX:
        raise DatasetFormatError(f"side must be 'left' or 'right', got {side!r}")
    if hand is None:
        from contactkit.hands import load_hand

        hand = load_hand("mano", side, mano_dir=mano_dir)
    hand_idx = _HAND_INDEX[side]
    recs = GraspRecords()
    for gdir in find_contactpose_grasps(path):
        object_name = gdir.name
        fits = _load_json(gdir / f"mano_fits_{ncomps}.json")
        ann = _load_json(gdir / "annotations.json")
        if not isinstance(fits, list) or len(fits) != 2:
            raise DatasetFormatError(f"{gdir}/mano_fits_{ncomps}.json: expected a list [left, right]")
        fit = fits[hand_idx]
        hands = ann.get("hands", [])
        if not fit.get("valid", False) or len(hands) != 2 or not hands[hand_idx].get("valid", False):
            continue
        pose = np.asarray(fit["pose"], dtype=np.float64)
        if pose.shape != (3 + ncomps,):
            raise DatasetFormatError(f"{gdir}: MANO 'pose' must have {3 + ncomps} values, got {pose.shape}")
        h_t_m = np.linalg.inv(pose_matrix(fit["mTc"]))
        o_t_h = np.eye(4)
        if hands[hand_idx].get("moving", False):
            frames = ann.get("frames", [])
            if not 0 <= frame < len(frames):
                raise DatasetFormatError(f"{gdir}: frame {frame} out of range for {len(frames)} frames")
            o_t_h = np.linalg.inv(pose_matrix(frames[frame]["hTo"][hand_idx]))
        m_t_o = np.linalg.inv(o_t_h @ h_t_m)
        mesh, raw, contact = _load_contact_mesh(gdir / f"{object_name}.ply", object_name)
        idx = subsample_indices(len(raw), n_object_points, seed)
        finger_pose = mano_pca_to_axis_angle(hand, pose[None, 3:], add_mean=True)[0]
        parts = gdir.parent.name.split("_", 1)
        recs.add(global_orient=pose[:3], hand_pose=finger_pose, betas=np.asarray(fit["betas"], dtype=np.float64),
                 transl=np.zeros(3), mesh=mesh, object_rotation=m_t_o[:3, :3], object_translation=m_t_o[:3, 3],
                 object_points=raw[idx], object_contact=contact[idx], metadata={
                     "dataset": "contactpose",
                     "source": str(gdir),
                     "object": object_name,
                     "participant": parts[0].removeprefix("full") if parts else "",
                     "intent": parts[1] if len(parts) > 1 else "",
                 })
    if not len(recs):
        warnings.warn(f"no valid {side}-hand ContactPose grasp under {path}", stacklevel=2)
    return recs.grasp_set(side, {"source": "contactpose", "mano_fits": f"mano_fits_{ncomps}.json"})

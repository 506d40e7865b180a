"""Reader of OakInk-Shape (Yang et al., CVPR 2022) grasps: release ``oakink_shape_v2`` with ``metaV2``.

Expected layout (``$OAKINK_DIR/shape`` after the release's ``scripts/unzip_all.py``)::

    shape/
        metaV2/object_id.json               {obj_id: {"name": ...}} for real objects
        metaV2/virtual_object_id.json       same for virtual objects (``virtual_obj_id.json`` accepted)
        oakink_shape_v2/{category}/{obj_id}/{grasp_id}/
            hand_param.pkl                  grasp on a real object
            source.txt                      its OakInk-Image sequence
            {target_id}/hand_param.pkl      the grasp transferred to a virtual object
        OakInkObjectsV2/{name}/align/*.obj|*.ply
        OakInkVirtualObjectsV2/{name}/align/*.obj|*.ply

``hand_param.pkl`` is a pickled dict read with the restricted unpickler: ``pose`` (48,) axis-angle (global
then 15 finger joints, flat-hand convention) or (16, 4) quaternions (w, x, y, z) as the release notes
describe, ``shape`` (10,) betas, ``tsl`` (3,) translation, in the object's canonical frame, metres.

Conversion: OakInk poses MANO with ``center_idx = 0`` (vertices relative to the root joint, then ``+ tsl``),
and centres each object mesh on its bounding-box centre. The reader centres the mesh the same way (object pose
= identity) and sets ``transl = tsl - J_root(betas)``, the MANO rest root joint of the grasp's shape, which
needs the MANO model (``hand`` or ``mano_dir``). The split follows OakInk-Shape: ``md5(obj_id) % 10`` < 8
train, 8 val, 9 test. The intent (use 0001, hold 0002, liftup 0003, handover 0004) is parsed from
``source.txt``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from contactkit.io.datasets._common import (
    DatasetFormatError,
    GraspRecords,
    load_mesh_keep_order,
    load_restricted_pickle,
    mano_root_joint,
)

if TYPE_CHECKING:
    from contactkit.hands.base import HandModel
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.mesh import ObjectMesh

__all__ = ["INTENTS", "oakink_split", "read_oakink_shape"]

INTENTS: dict[str, str] = {"0001": "use", "0002": "hold", "0003": "liftup", "0004": "handover"}
_SOURCE_RE = re.compile(r"(.+)/(.{6})_(.{4})_([_0-9]+)/([\-0-9]+)")


def oakink_split(obj_id: str) -> Literal["train", "val", "test"]:
    """OakInk-Shape's split of an object id: ``md5(obj_id) % 10`` < 8 train, == 8 val, == 9 test."""
    r = int(hashlib.md5(obj_id.encode("utf-8")).hexdigest(), 16) % 10
    return "train" if r < 8 else ("val" if r == 8 else "test")


def _shape_root(path: Path) -> Path:
    for cand in (path, path / "shape"):
        if (cand / "oakink_shape_v2").is_dir():
            return cand
    raise DatasetFormatError(f"{path}: expected an OakInk 'shape' folder holding oakink_shape_v2/")


def _load_meta(meta_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    real_p = meta_dir / "object_id.json"
    virt_p = next((p for p in (meta_dir / "virtual_object_id.json", meta_dir / "virtual_obj_id.json")
                   if p.is_file()), None)
    if not real_p.is_file():
        raise DatasetFormatError(f"OakInk meta file not found: {real_p}")
    real = json.loads(real_p.read_text())
    virt = json.loads(virt_p.read_text()) if virt_p is not None else {}
    return real, virt


def _object_path(root: Path, oid: str, real: dict[str, Any], virt: dict[str, Any]) -> Path:
    if oid in real:
        base = root / "OakInkObjectsV2" / str(real[oid]["name"]) / "align"
    elif oid in virt:
        base = root / "OakInkVirtualObjectsV2" / str(virt[oid]["name"]) / "align"
    else:
        raise DatasetFormatError(f"OakInk object id {oid!r} is in neither metaV2 mapping")
    files = sorted(list(base.glob("*.obj")) + list(base.glob("*.ply")))
    if len(files) > 1:
        files = [f for f in files if "align" in f.name] or files[:1]
    if not files:
        raise DatasetFormatError(f"no object model in {base}")
    return files[0]


def _pose48(pose: Any, src: Path) -> np.ndarray:
    import torch

    from contactkit.geometry.rotations import quat_to_axis_angle

    arr = np.asarray(pose, dtype=np.float64)
    if arr.size == 48:
        return arr.reshape(48)
    if arr.size == 64:
        q = torch.as_tensor(arr.reshape(16, 4))
        q = q / q.norm(dim=-1, keepdim=True)
        return quat_to_axis_angle(q).reshape(48).numpy()
    raise DatasetFormatError(
        f"{src}: 'pose' must be (48,) axis-angle or (16, 4) quaternions, got {arr.shape}"
    )


def read_oakink_shape(
    path: str | Path,
    *,
    categories: list[str] | None = None,
    intents: list[str] | None = None,
    split: Literal["train", "val", "test", "all"] = "all",
    include_virtual: bool = True,
    hand: HandModel | None = None,
    mano_dir: str | Path | None = None,
) -> GraspSet:
    """Read OakInk-Shape grasps into a MANO :class:`~contactkit.io.grasps.GraspSet` (see the module
    docstring).

    Args:
        path: ``$OAKINK_DIR`` or ``$OAKINK_DIR/shape``.
        categories: category folders to read (all when omitted), e.g. ``["mug", "bottle"]``.
        intents: intent names to keep (``use``, ``hold``, ``liftup``, ``handover``); all when omitted.
        split: OakInk-Shape's object split to keep.
        include_virtual: also read grasps transferred to virtual objects.
        hand: right MANO hand model (for the root joint); loaded from ``mano_dir`` when omitted.
        mano_dir: folder with ``MANO_RIGHT.pkl``.
    """
    if split not in ("train", "val", "test", "all"):
        raise DatasetFormatError(f"split must be train, val, test or all, got {split!r}")
    if intents is not None:
        bad = sorted(set(intents) - set(INTENTS.values()))
        if bad:
            raise DatasetFormatError(f"intents must be among {sorted(INTENTS.values())}, got {bad}")
    root = _shape_root(Path(path))
    real, virt = _load_meta(root / "metaV2")
    shape_dir = root / "oakink_shape_v2"
    cats = categories if categories is not None else sorted(p.name for p in shape_dir.iterdir() if p.is_dir())
    meshes: dict[str, ObjectMesh] = {}
    recs = GraspRecords()
    for cat in cats:
        cdir = shape_dir / cat
        if not cdir.is_dir():
            raise DatasetFormatError(f"OakInk category folder not found: {cdir}")
        for f in sorted(cdir.glob("**/hand_param.pkl")):
            parts = f.relative_to(cdir).parts[:-1]
            if len(parts) == 2:
                oid, virtual = parts[0], False
            elif len(parts) == 3:
                oid, virtual = parts[2], True
            else:
                continue
            if virtual and not include_virtual:
                continue
            if split != "all" and oakink_split(oid) != split:
                continue
            src_file = cdir / parts[0] / parts[1] / "source.txt"
            source = src_file.read_text().strip() if src_file.is_file() else ""
            m = _SOURCE_RE.findall(source)
            intent = INTENTS.get(m[0][2], "") if m else ""
            if intents is not None and intent not in intents:
                continue
            params = load_restricted_pickle(f, what=f"OakInk hand_param {f}")
            if not isinstance(params, dict) or not {"pose", "shape", "tsl"} <= set(params):
                raise DatasetFormatError(f"{f}: expected a dict with 'pose', 'shape' and 'tsl'")
            pose = _pose48(params["pose"], f)
            if oid not in meshes:
                mesh, raw, _ = load_mesh_keep_order(_object_path(root, oid, real, virt), oid)
                center = (raw.min(0) + raw.max(0)) / 2.0
                meshes[oid] = mesh.transformed(np.eye(3), -center)
            recs.add(global_orient=pose[:3], hand_pose=pose[3:],
                     betas=np.asarray(params["shape"], dtype=np.float64).reshape(-1),
                     transl=np.asarray(params["tsl"], dtype=np.float64).reshape(3), mesh=meshes[oid], metadata={
                         "dataset": "oakink_shape", "source": str(f), "category": cat, "object": oid,
                         "virtual": virtual, "intent": intent, "split": oakink_split(oid), "grasp_id": parts[1],
                     })
    if len(recs):  # OakInk's ``tsl`` is the root joint's position; MANO's translation excludes the rest root
        if hand is None:
            from contactkit.hands import load_hand

            hand = load_hand("mano", "right", mano_dir=mano_dir)
        recs.transl = list(np.stack(recs.transl) - mano_root_joint(hand, np.stack(recs.betas)))
    return recs.grasp_set("right", {"source": "oakink_shape_v2", "split": split})

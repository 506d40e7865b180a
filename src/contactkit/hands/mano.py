"""Load the official MANO model files (``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``) without chumpy.

contactkit never ships or downloads MANO: users who have accepted its licence point contactkit at the folder
holding the files, with ``load_hand("mano", mano_dir=...)`` or the environment variable
``CONTACTKIT_MANO_DIR``. The files are read with :mod:`contactkit.hands.unpickle`'s restricted unpickler.

Details handled here:
- ``hands_components`` / ``hands_mean`` are the pose PCA (``flat_hand_mean`` chooses whether a zero pose is
  the flat hand or the mean hand, as in the MANO layers);
- fingertip vertices (thumb, index, middle, ring, little) complete the 21 keypoints, following manopth (the
  MANO layer the papers' code uses): 745, 317, 444, 556, 673 for the right hand and 745, 317, **445**, 556, 673
  for the left (the left mesh's middle fingertip is vertex 445, 5 mm from 444);
- the known left-hand bug: in the released ``MANO_LEFT.pkl`` the x component of ``shapedirs`` has the same
  sign as the right hand's instead of the mirrored sign. When the right file sits beside the left one the bug
  is detected as in the widely used fix (``|left[:,0,:] - right[:,0,:]|`` summed is < 1) and
  ``shapedirs[:, 0, :]`` is negated; without the right file the fix is applied with a warning;
- ``closed_faces`` caps the open wrist by fan-triangulating every boundary loop (no new vertex), so inside
  tests and booleans see a watertight mesh.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from contactkit.errors import HandModelError
from contactkit.hands.base import HandModelData, check_side
from contactkit.hands.unpickle import safe_load_pickle, to_array

__all__ = [
    "MANO_FINGERTIPS",
    "MANO_ENV_VAR",
    "boundary_loops",
    "cap_boundary_loops",
    "find_mano_file",
    "read_mano_arrays",
    "mano_data",
]

#: Fingertip vertices of MANO per side (thumb, index, middle, ring, little), manopth's convention.
MANO_FINGERTIPS: dict[str, tuple[int, int, int, int, int]] = {
    "right": (745, 317, 444, 556, 673),
    "left": (745, 317, 445, 556, 673),
}
#: Environment variable naming the folder with the MANO pickles.
MANO_ENV_VAR = "CONTACTKIT_MANO_DIR"
_FILE = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Boundary loops of a triangle mesh, each ordered along its faces' half-edge direction.

    Args:
        faces: (F, 3) int triangles.

    Returns:
        list of (L,) int64 vertex loops; empty for a closed mesh.

    Raises:
        HandModelError: if the boundary is not a disjoint union of simple loops (non-manifold mesh).
    """
    f = np.asarray(faces, dtype=np.int64)
    half = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    key = {(int(a), int(b)) for a, b in half}
    boundary = [(a, b) for a, b in key if (b, a) not in key]
    nxt: dict[int, int] = {}
    for a, b in boundary:
        if a in nxt:
            raise HandModelError(
                "mesh boundary is not a set of simple loops (vertex with two outgoing edges)"
            )
        nxt[a] = b
    loops: list[np.ndarray] = []
    seen: set[int] = set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        cur = nxt[start]
        while cur != start:
            if cur in seen or cur not in nxt:
                raise HandModelError("mesh boundary is not a set of simple loops")
            loop.append(cur)
            seen.add(cur)
            cur = nxt[cur]
        loops.append(np.asarray(loop, dtype=np.int64))
    return loops


def cap_boundary_loops(faces: np.ndarray) -> np.ndarray:
    """Close every boundary loop with a triangle fan from its first vertex (no new vertices).

    The cap triangles are wound opposite to the loop's half-edges, so the result is consistently oriented.
    Suits convex-ish planar holes such as MANO's wrist (one loop of 16 vertices).

    Args:
        faces: (F, 3) int triangles of an open, consistently wound, manifold mesh.

    Returns:
        (F + sum(L - 2), 3) int64 faces.
    """
    f = np.asarray(faces, dtype=np.int64)
    caps = []
    for loop in boundary_loops(f):
        for i in range(1, len(loop) - 1):
            caps.append((loop[0], loop[i + 1], loop[i]))
    if not caps:
        return f.copy()
    return np.concatenate([f, np.asarray(caps, dtype=np.int64)])


def find_mano_file(side: str, mano_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` in ``mano_dir`` or ``$CONTACTKIT_MANO_DIR``.

    Raises:
        HandModelError: if no folder is given, or the file is not in it.
    """
    side = check_side(side)
    where = mano_dir if mano_dir is not None else os.environ.get(MANO_ENV_VAR)
    if not where:
        raise HandModelError(
            f"MANO files not configured: pass mano_dir=... or set {MANO_ENV_VAR} to the folder holding "
            f"{_FILE[side]} (download it from https://mano.is.tue.mpg.de after accepting its licence)"
        )
    path = Path(where).expanduser() / _FILE[side]
    if not path.is_file():
        raise HandModelError(
            f"{_FILE[side]} not found in {Path(where).expanduser()} (mano_dir / {MANO_ENV_VAR})"
        )
    return path


def read_mano_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a MANO pickle into plain arrays (keys as in the file; sparse and chumpy values densified).

    Raises:
        HandModelError: unsafe content, missing keys or wrong shapes.
    """
    raw = safe_load_pickle(Path(path).read_bytes())
    if not isinstance(raw, dict):
        raise HandModelError(f"{path}: expected a dict of arrays, got {type(raw).__name__}")
    needed = {
        "v_template": (778, 3),
        "f": (1538, 3),
        "J_regressor": (16, 778),
        "weights": (778, 16),
        "posedirs": (778, 3, 135),
        "shapedirs": (778, 3, 10),
        "hands_components": (45, 45),
        "hands_mean": (45,),
        "kintree_table": (2, 16),
    }
    out: dict[str, np.ndarray] = {}
    for key, shape in needed.items():
        if key not in raw:
            raise HandModelError(f"{path}: missing key {key!r}")
        arr = to_array(raw[key])
        if arr.shape != shape:
            raise HandModelError(f"{path}: {key} has shape {arr.shape}, expected {shape}")
        out[key] = arr
    return out


def _parents_from_kintree(kintree: np.ndarray) -> np.ndarray:
    kt = np.asarray(kintree).astype(np.int64)
    ids = kt[1]
    id_to_col = {int(i): c for c, i in enumerate(ids)}
    parents = np.full(16, -1, dtype=np.int64)
    for c in range(1, 16):
        p = int(kt[0, c])
        if p not in id_to_col:
            raise HandModelError("kintree_table has a parent that is not a joint")
        parents[c] = id_to_col[p]
    return parents


def _left_shapedirs_fixed(left: np.ndarray, right_path: Path | None) -> np.ndarray:
    fixed = left.copy()
    if right_path is not None:
        right = read_mano_arrays(right_path)["shapedirs"]
        if np.abs(left[:, 0, :] - right[:, 0, :]).sum() < 1.0:
            fixed[:, 0, :] *= -1.0
        return fixed
    warnings.warn(
        "MANO_RIGHT.pkl not found beside MANO_LEFT.pkl: applying the known left-hand shapedirs sign fix "
        "(shapedirs[:, 0, :] *= -1) without checking",
        stacklevel=3,
    )
    fixed[:, 0, :] *= -1.0
    return fixed


def mano_data(side: str = "right", mano_dir: str | os.PathLike[str] | None = None) -> HandModelData:
    """Arrays of the MANO model for one side, ready for :class:`~contactkit.hands.base.HandModel`."""
    side = check_side(side)
    path = find_mano_file(side, mano_dir)
    a = read_mano_arrays(path)
    faces = a["f"].astype(np.int64)
    shapedirs = a["shapedirs"].astype(np.float64)
    if side == "left":
        right_path = path.parent / _FILE["right"]
        shapedirs = _left_shapedirs_fixed(shapedirs, right_path if right_path.is_file() else None)
    try:
        closed = cap_boundary_loops(faces)
    except HandModelError as exc:
        warnings.warn(f"could not cap the MANO wrist ({exc}); closed_faces = faces", stacklevel=2)
        closed = faces.copy()
    return HandModelData(
        name="mano",
        side=side,
        v_template=a["v_template"].astype(np.float64),
        faces=faces,
        closed_faces=closed,
        j_regressor=a["J_regressor"].astype(np.float64),
        weights=a["weights"].astype(np.float64),
        posedirs=a["posedirs"].astype(np.float64),
        shapedirs=shapedirs,
        parents=_parents_from_kintree(a["kintree_table"]),
        fingertips=np.asarray(MANO_FINGERTIPS[side], dtype=np.int64),
        pca_components=a["hands_components"].astype(np.float64),
        pca_mean=a["hands_mean"].astype(np.float64),
        shape_names=tuple(f"beta{i}" for i in range(10)),
        info={"source": str(path)},
    )

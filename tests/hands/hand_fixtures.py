"""Test hands for the annotation and anatomy tests: OpenHand's rest mesh and a synthetic 778-vertex hand.

Both are returned as a :class:`RestHand` of plain numpy arrays in MANO's 16-joint order (wrist; index1-3;
middle1-3; little1-3; ring1-3; thumb1-3), so that the annotation code sees the same inputs it gets from a
hand model. ``openhand_rest()`` prefers ``contactkit.hands.load_hand("openhand")`` and falls back to reading
the bundled glTF asset directly; ``synthetic_rest()`` builds a closed genus-0 surface by marching cubes on a
smooth union of capsules around a skeleton and decimates it to exactly 778 vertices (MANO's count).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

ASSET = Path("/work/shared/assets/hands/webxr-generic-hand")
KINTREE_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])


@dataclass(frozen=True)
class RestHand:
    vertices: np.ndarray  # (V,3) float64, metres
    faces: np.ndarray  # (F,3) int64
    joints: np.ndarray  # (16,3) float64
    weights: np.ndarray  # (V,16) float64
    tips: np.ndarray  # (5,) int64 thumb..little
    side: Literal["right", "left"]


def _accessor(g, idx: int) -> np.ndarray:
    import pygltflib

    acc = g.accessors[idx]
    view = g.bufferViews[acc.bufferView]
    blob = g.binary_blob()
    dtype = {
        5120: np.int8,
        5121: np.uint8,
        5122: np.int16,
        5123: np.uint16,
        5125: np.uint32,
        5126: np.float32,
    }[acc.componentType]
    ncomp = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    itemsize = np.dtype(dtype).itemsize * ncomp
    stride = view.byteStride or itemsize
    raw = np.frombuffer(blob, dtype=np.uint8, count=stride * (acc.count - 1) + itemsize, offset=start)
    rows = np.lib.stride_tricks.as_strided(raw, shape=(acc.count, itemsize), strides=(stride, 1))
    out = np.ascontiguousarray(rows).view(dtype).reshape(acc.count, ncomp)
    del pygltflib
    return out


def _openhand_from_glb(side: Literal["right", "left"]) -> RestHand:
    import pygltflib

    g = pygltflib.GLTF2().load(str(ASSET / f"{side}.glb"))
    prim = g.meshes[0].primitives[0]
    pos = _accessor(g, prim.attributes.POSITION).astype(np.float64)
    jnt = _accessor(g, prim.attributes.JOINTS_0).astype(np.int64)
    wts = _accessor(g, prim.attributes.WEIGHTS_0).astype(np.float64)
    idx = _accessor(g, prim.indices).reshape(-1, 3).astype(np.int64)
    skin = g.skins[0]
    ibm = _accessor(g, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    names = [g.nodes[j].name for j in skin.joints]
    joint_world = np.linalg.inv(ibm.astype(np.float64))[:, :3, 3]
    # weld seams by position
    key = np.round(pos / 1e-7).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    verts = pos[first]
    faces = inverse[idx]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    used = np.unique(faces)
    remap = -np.ones(len(verts), dtype=np.int64)
    remap[used] = np.arange(len(used))
    faces = remap[faces]
    mano_names = ["wrist"]
    for f in ("index-finger", "middle-finger", "pinky-finger", "ring-finger"):
        mano_names += [f"{f}-phalanx-proximal", f"{f}-phalanx-intermediate", f"{f}-phalanx-distal"]
    mano_names += ["thumb-metacarpal", "thumb-phalanx-proximal", "thumb-phalanx-distal"]
    gl_to_mano = np.zeros(len(names), dtype=np.int64)  # metacarpals and tips ride with their parent
    for gi, n in enumerate(names):
        if n in mano_names:
            gl_to_mano[gi] = mano_names.index(n)
        elif n.endswith("-tip"):
            gl_to_mano[gi] = mano_names.index(n.replace("-tip", "-phalanx-distal"))
        else:
            gl_to_mano[gi] = 0
    w16 = np.zeros((len(pos), 16))
    for k in range(4):
        np.add.at(w16, (np.arange(len(pos)), gl_to_mano[jnt[:, k]]), wts[:, k])
    w16 = w16[first][used]
    verts = verts[used]
    joints = np.stack([joint_world[names.index(n)] for n in mano_names])
    tip_pos = np.stack(
        [
            joint_world[names.index(f"{f}-tip")]
            for f in ("thumb", "index-finger", "middle-finger", "ring-finger", "pinky-finger")
        ]
    )
    tips = np.array([np.argmin(np.linalg.norm(verts - t, axis=1)) for t in tip_pos], dtype=np.int64)
    return RestHand(verts, faces, joints, w16 / w16.sum(1, keepdims=True), tips, side)


@functools.lru_cache(maxsize=2)
def openhand_rest(side: Literal["right", "left"] = "right") -> RestHand:
    """OpenHand at rest: from the library's hand model data when it loads, else from the glTF asset."""
    try:
        from contactkit.hands import load_hand  # type: ignore[attr-defined]

        data = load_hand("openhand", side=side).data
    except Exception:
        return _openhand_from_glb(side)
    verts = np.asarray(data.v_template, dtype=np.float64)
    joints = np.asarray(data.j_regressor, dtype=np.float64) @ verts
    return RestHand(
        verts,
        np.asarray(data.faces, dtype=np.int64),
        joints,
        np.asarray(data.weights, dtype=np.float64),
        np.asarray(data.fingertips, dtype=np.int64),
        side,
    )


def regressor_for(vertices: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """A (16, V) joint regressor with ``regressor @ vertices == joints`` (affine weights, nearby vertices)."""
    reg = np.zeros((len(joints), len(vertices)))
    for j, p in enumerate(joints):
        near = np.argsort(np.linalg.norm(vertices - p, axis=1))[:12]
        a = np.vstack([vertices[near].T, np.ones(len(near))])  # (4, 12)
        w = np.linalg.lstsq(a, np.append(p, 1.0), rcond=None)[0]  # minimum-norm exact solution
        reg[j, near] = w
    return reg


# --------------------------------------------------------------------------------------------- synthetic hand
def _synthetic_skeleton() -> tuple[np.ndarray, np.ndarray]:
    """Right hand, palm facing +y, fingers along +x, thumb toward +z and palmar.

    Returns (16, 3) joints and (5, 3) fingertips, metres."""
    wrist = np.zeros(3)
    fingers = {  # MCP position, finger direction, phalanx lengths (m)
        "index": (np.array([0.085, 0.0, 0.027]), [0.040, 0.024, 0.020]),
        "middle": (np.array([0.090, 0.0, 0.008]), [0.044, 0.027, 0.021]),
        "little": (np.array([0.075, 0.0, -0.030]), [0.030, 0.019, 0.017]),
        "ring": (np.array([0.085, 0.0, -0.011]), [0.040, 0.026, 0.020]),
    }
    joints = [wrist]
    tips = {}
    for name, (mcp, lengths) in fingers.items():
        d = mcp / np.linalg.norm(mcp)
        d = d * np.array([1.0, 0.0, 0.35])
        d = d / np.linalg.norm(d)
        p = mcp.copy()
        joints.append(p.copy())
        for i, ln in enumerate(lengths):
            p = p + ln * d
            if i < 2:
                joints.append(p.copy())
        tips[name] = p
    th1 = np.array([0.025, 0.010, 0.025])
    d = np.array([0.6, 0.25, 0.75])
    d /= np.linalg.norm(d)
    th2 = th1 + 0.035 * d
    th3 = th2 + 0.030 * d
    tip = th3 + 0.025 * d
    joints += [th1, th2, th3]
    tips["thumb"] = tip
    return np.stack(joints), np.stack([tips[k] for k in ("thumb", "index", "middle", "ring", "little")])


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _bones(joints: np.ndarray, tips: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, int, float]]:
    """(start, end, skinning joint, radius) per bone; palm bones are skinned to the wrist."""
    tip_of = {3: 1, 6: 2, 9: 4, 12: 3, 15: 0}  # last joint -> tips index (thumb..little)
    bones = []
    for j in range(1, 16):
        parent = int(KINTREE_PARENTS[j])
        radius = 0.0085 if j < 13 else 0.010
        if parent == 0:
            bones.append((joints[0], joints[j], 0, 0.012 if j < 13 else 0.013))
        child = j + 1 if j not in tip_of else None
        end = joints[child] if child is not None else tips[tip_of[j]]
        bones.append((joints[j], end, j, radius * (0.9 if child is None else 1.0)))
    return bones


@functools.lru_cache(maxsize=1)
def synthetic_rest() -> RestHand:
    """A closed genus-0 778-vertex right hand built from capsules around a 16-joint skeleton."""
    import igl

    joints, tips = _synthetic_skeleton()
    bones = _bones(joints, tips)
    lo = np.minimum(joints.min(0), tips.min(0)) - 0.02
    hi = np.maximum(joints.max(0), tips.max(0)) + 0.02
    h = 0.0022
    n = np.ceil((hi - lo) / h).astype(int) + 1
    axes = [lo[i] + h * np.arange(n[i]) for i in range(3)]
    gz, gy, gx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
    k = 0.004  # smooth-min blend width
    field = np.full(len(grid), 1.0)
    for a, b, j, r in bones:
        d = _seg_dist(grid, a, b) - r
        if j == 0:  # flatten palm bones along y into slabs
            d = (
                _seg_dist(
                    grid * np.array([1.0, 1.8, 1.0]),
                    a * np.array([1.0, 1.8, 1.0]),
                    b * np.array([1.0, 1.8, 1.0]),
                )
                - r
            )
            hh = np.clip(0.5 + 0.5 * (d - field) / k, 0.0, 1.0)
            field = d * (1 - hh) + field * hh - k * hh * (1 - hh)
        else:
            field = np.minimum(field, d) if j % 3 != 1 or j == 13 else _smin(field, d, 0.002)
    v, f, _ = igl.marching_cubes(field, grid, int(n[0]), int(n[1]), int(n[2]), 0.0)
    v, f = _largest_component(v, f)
    target_faces = 2 * 778 - 4
    u, g, _, _ = igl.decimate(np.asfortranarray(v), np.asfortranarray(f.astype(np.int32)), target_faces)
    u = np.ascontiguousarray(u)
    g = np.ascontiguousarray(g, dtype=np.int64)
    used = np.unique(g)
    remap = -np.ones(len(u), dtype=np.int64)
    remap[used] = np.arange(len(used))
    u, g = u[used], remap[g]
    # orient faces outward (positive signed volume)
    vol = np.einsum("ij,ij->i", u[g[:, 0]], np.cross(u[g[:, 1]], u[g[:, 2]])).sum()
    if vol < 0:
        g = g[:, ::-1].copy()
    dists = np.stack([_seg_dist(u, a, b) for a, b, _, _ in bones], axis=1)
    owner = np.array([j for _, _, j, _ in bones])
    soft = np.exp(-(((dists - dists.min(1, keepdims=True)) / 0.004) ** 2))
    weights = np.zeros((len(u), 16))
    for c in range(len(bones)):
        weights[:, owner[c]] += soft[:, c]
    weights /= weights.sum(1, keepdims=True)
    tip_idx = np.array([np.argmin(np.linalg.norm(u - t, axis=1)) for t in tips], dtype=np.int64)
    return RestHand(u, g, joints, weights, tip_idx, "right")


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    hh = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - hh) + a * hh - k * hh * (1 - hh)


def _largest_component(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(v), len(v)))
    _, lab = connected_components(adj, directed=False)
    keep = np.bincount(lab[f[:, 0]]).argmax()
    fk = f[lab[f[:, 0]] == keep]
    used = np.unique(fk)
    remap = -np.ones(len(v), dtype=np.int64)
    remap[used] = np.arange(len(used))
    return v[used], remap[fk]


def mirrored(hand: RestHand) -> RestHand:
    """The same hand mirrored through x = 0 (a left hand), faces re-wound to stay outward."""
    flip = np.array([-1.0, 1.0, 1.0])
    return RestHand(
        hand.vertices * flip, hand.faces[:, ::-1].copy(), hand.joints * flip, hand.weights, hand.tips, "left"
    )


def as_hand_model(hand: RestHand, name: str = "mano"):  # noqa: ANN201 (HandModel, imported lazily)
    """A contactkit ``HandModel`` (MANO format, no shape space or pose correctives) from a test hand."""
    import torch

    from contactkit.hands.base import HandModel, HandModelData

    data = HandModelData(
        name=name,
        side=hand.side,
        v_template=hand.vertices,
        faces=hand.faces,
        closed_faces=hand.faces,
        j_regressor=regressor_for(hand.vertices, hand.joints),
        weights=hand.weights,
        posedirs=None,
        shapedirs=np.zeros((len(hand.vertices), 3, 0)),
        parents=KINTREE_PARENTS.copy(),
        fingertips=hand.tips,
        pca_components=np.eye(45),
        pca_mean=np.zeros(45),
    )
    return HandModel(data, dtype=torch.float64)

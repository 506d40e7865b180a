"""Convert the WebXR "generic-hand" glTF assets (MIT, (c) 2019 Amazon) into contactkit's OpenHand npz files.

Usage (from the repository root)::

    PYTHONPATH=src python scripts/make_openhand.py [--src /work/shared/assets/hands/webxr-generic-hand] \
        [--out src/contactkit/hands/assets]

Steps (documented in docs/hands.md):
1. read the skinned mesh, the 25-joint skeleton, inverse bind matrices and JOINTS_0/WEIGHTS_0 with pygltflib;
   the bind pose equals the node pose, so the stored mesh is the rest mesh (a flat open hand);
2. weld the UV-seam duplicates by position into a closed genus-0 surface (1159 vertices), check that it is
   watertight and consistently wound (trimesh);
3. map the skeleton onto MANO's 16-joint tree (finger metacarpals fold into the wrist; tips are keypoints
   only) and translate so the wrist joint is the origin (axes as stored: metres, +y from fingers to wrist);
4. build an affine joint regressor (minimum-norm affine weights of the 32 vertices nearest each joint, so
   ``J_regressor @ v_template`` reproduces the joints exactly and joints follow any affine deformation);
5. build 8 linear shape blend shapes (overall scale, palm width, thickness, 5 finger lengths);
6. build a pose PCA basis from a synthetic prior of correlated finger flexions (no grasp data is used);
7. save ``openhand_{right,left}.npz`` (no pickle) beside the licence notice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import trimesh
from pygltflib import GLTF2
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from contactkit.hands.base import MANO_JOINT_NAMES, MANO_PARENTS
from contactkit.hands.pca import pca_basis_from_samples

_WEBXR_FINGER = {
    "index": "index-finger",
    "middle": "middle-finger",
    "ring": "ring-finger",
    "little": "pinky-finger",
}
# WebXR joint name -> MANO joint name (the 4 finger metacarpals ride with the wrist; tips are keypoints)
WEBXR_TO_MANO: dict[str, str] = {
    "wrist": "wrist",
    "thumb-metacarpal": "thumb1",
    "thumb-phalanx-proximal": "thumb2",
    "thumb-phalanx-distal": "thumb3",
    "thumb-tip": "thumb3",
}
for _m, _w in _WEBXR_FINGER.items():
    WEBXR_TO_MANO[f"{_w}-metacarpal"] = "wrist"
    WEBXR_TO_MANO[f"{_w}-phalanx-proximal"] = f"{_m}1"
    WEBXR_TO_MANO[f"{_w}-phalanx-intermediate"] = f"{_m}2"
    WEBXR_TO_MANO[f"{_w}-phalanx-distal"] = f"{_m}3"
    WEBXR_TO_MANO[f"{_w}-tip"] = f"{_m}3"
FINGERS = ["thumb", "index", "middle", "ring", "little"]
TIP_NODE = {"thumb": "thumb-tip", **{m: f"{w}-tip" for m, w in _WEBXR_FINGER.items()}}

# Shape coefficient = one approximate standard deviation of adult hand anthropometry (relative change).
SHAPE_STEP = {"scale": 0.06, "palm_width": 0.05, "thickness": 0.08, "finger_length": 0.06}
SHAPE_NAMES = ["scale", "palm_width", "thickness"] + [f"{f}_length" for f in FINGERS]
REGRESSOR_K = 32


def _accessor(g: GLTF2, index: int) -> np.ndarray:
    a = g.accessors[index]
    bv = g.bufferViews[a.bufferView]
    comp = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}[a.componentType]
    n = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a.type]
    item = np.dtype(comp).itemsize * n
    stride = bv.byteStride or item
    off = (bv.byteOffset or 0) + (a.byteOffset or 0)
    blob = g.binary_blob()
    rows = [np.frombuffer(blob, comp, count=n, offset=off + i * stride) for i in range(a.count)]
    return np.stack(rows).reshape(a.count, n)


def _node_local(node) -> np.ndarray:
    if node.matrix is not None:
        return np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T
    m = np.eye(4)
    if node.rotation is not None:
        m[:3, :3] = Rotation.from_quat(node.rotation).as_matrix()
    if node.scale is not None:
        m[:3, :3] = m[:3, :3] * np.asarray(node.scale)[None, :]
    if node.translation is not None:
        m[:3, 3] = node.translation
    return m


def _world_matrices(g: GLTF2) -> dict[int, np.ndarray]:
    world: dict[int, np.ndarray] = {}

    def visit(i: int, parent: np.ndarray) -> None:
        world[i] = parent @ _node_local(g.nodes[i])
        for c in g.nodes[i].children or []:
            visit(c, world[i])

    for root in g.scenes[g.scene or 0].nodes:
        visit(root, np.eye(4))
    return world


def read_glb(path: Path) -> dict:
    """Rest vertices (bind pose), faces, per-vertex weights over WebXR joints, joint world positions."""
    g = GLTF2().load(str(path))
    world = _world_matrices(g)
    mesh_node = next(i for i, n in enumerate(g.nodes) if n.mesh is not None and n.skin is not None)
    skin = g.skins[g.nodes[mesh_node].skin]
    prim = g.meshes[g.nodes[mesh_node].mesh].primitives[0]
    pos = _accessor(g, prim.attributes.POSITION).astype(np.float64)
    faces = _accessor(g, prim.indices).reshape(-1, 3).astype(np.int64)
    jidx = _accessor(g, prim.attributes.JOINTS_0).astype(np.int64)
    wts = _accessor(g, prim.attributes.WEIGHTS_0).astype(np.float64)
    ibm = _accessor(g, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1).astype(np.float64)
    names = [g.nodes[j].name for j in skin.joints]
    joint_world = np.stack([world[j] for j in skin.joints])
    bind_err = float(np.abs(np.linalg.inv(ibm) - joint_world).max())
    # rest vertices: skinning with the node pose (identity here up to float noise since bind == node pose)
    skin_m = joint_world @ ibm  # (25, 4, 4)
    ph = np.concatenate([pos, np.ones((len(pos), 1))], axis=1)
    m = np.einsum("vk,vkij->vij", wts, skin_m[jidx])
    rest = np.einsum("vij,vj->vi", m, ph)[:, :3]
    dense_w = np.zeros((len(pos), len(names)))
    np.add.at(dense_w, (np.arange(len(pos))[:, None].repeat(4, 1), jidx), wts)
    return {
        "vertices": rest,
        "faces": faces,
        "weights": dense_w,
        "names": names,
        "joint_pos": joint_world[:, :3, 3],
        "bind_error": bind_err,
        "stored_vs_rest": float(np.abs(rest - pos).max()),
    }


def weld(vertices: np.ndarray, faces: np.ndarray, weights: np.ndarray, tol: float = 1e-7):
    """Merge vertices closer than ``tol`` (UV-seam duplicates); drop degenerate faces."""
    tree = cKDTree(vertices)
    groups = tree.query_ball_point(vertices, r=tol)
    rep = np.array([min(gr) for gr in groups])
    uniq, inv = np.unique(rep, return_inverse=True)
    new_v = vertices[uniq]
    new_w = weights[uniq]
    wdiff = float(np.abs(weights - new_w[inv]).max())
    new_f = inv[faces]
    keep = (new_f[:, 0] != new_f[:, 1]) & (new_f[:, 1] != new_f[:, 2]) & (new_f[:, 2] != new_f[:, 0])
    return new_v, new_f[keep], new_w, wdiff


def affine_regressor(vertices: np.ndarray, joints: np.ndarray, k: int = REGRESSOR_K) -> np.ndarray:
    """(J, V) minimum-norm affine weights of the k nearest vertices reproducing each joint exactly."""
    reg = np.zeros((len(joints), len(vertices)))
    tree = cKDTree(vertices)
    for j, p in enumerate(joints):
        _, nn = tree.query(p, k=k)
        a = np.concatenate([vertices[nn].T, np.ones((1, k))])  # (4, k)
        b = np.concatenate([p, [1.0]])
        w = a.T @ np.linalg.solve(a @ a.T, b)
        reg[j, nn] = w
    return reg


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def hand_frame(joints: dict[str, np.ndarray], side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit axes: u wrist->middle MCP, a little MCP->index MCP (radial), n palmar normal."""
    u = _unit(joints["middle1"] - joints["wrist"])
    a = joints["index1"] - joints["little1"]
    a = _unit(a - (a @ u) * u)
    n = np.cross(a, u) if side == "right" else -np.cross(a, u)
    return u, a, n


def shape_space(v: np.ndarray, w16: np.ndarray, joints: dict[str, np.ndarray], tips: dict[str, np.ndarray],
                side: str) -> np.ndarray:  # fmt: skip
    """(V, 3, 8) blend shapes: scale, palm width, thickness, thumb..little length."""
    u, a, n = hand_frame(joints, side)
    wrist = joints["wrist"]
    mcps = np.stack([joints[f"{f}1"] for f in ["index", "middle", "ring", "little"]])
    palm_c = mcps.mean(0)
    dirs = []
    dirs.append((v - wrist) * SHAPE_STEP["scale"])
    dirs.append(((v - palm_c) @ a)[:, None] * a[None] * SHAPE_STEP["palm_width"])
    # thickness: about the skin-weighted bone centre; the wrist bone's centre is the palm's mid-plane
    centres = np.stack([joints[nm] for nm in MANO_JOINT_NAMES])
    palm_verts = v[w16.argmax(1) == 0]
    centres[0] = palm_verts.mean(0)
    c = w16 @ centres
    dirs.append(((v - c) @ n)[:, None] * n[None] * SHAPE_STEP["thickness"])
    for f in FINGERS:
        ids = [MANO_JOINT_NAMES.index(f"{f}{i}") for i in (1, 2, 3)]
        base = joints[f"{f}1"]
        axis = _unit(tips[f] - base)
        s = w16[:, ids].sum(1)
        along = np.clip((v - base) @ axis, 0.0, None)
        dirs.append((s * along)[:, None] * axis[None] * SHAPE_STEP["finger_length"])
    return np.stack(dirs, axis=-1)


def synthetic_pose_samples(joints: dict[str, np.ndarray], tips: dict[str, np.ndarray], side: str,
                           n: int = 20000, seed: int = 0) -> np.ndarray:  # fmt: skip
    """(n, 45) axis-angle samples of a synthetic grasp prior (MANO joint order, rest-aligned frames).

    One shared closure c ~ Beta(2, 2) per sample, each finger's closure c_f = clip(c + N(0, 0.15), 0, 1);
    MCP flexion 1.4 c_f, PIP 1.6 c_f, DIP 0.67 PIP (+ N(0, 0.08) each); finger spread about the palm normal
    N(0, 0.12) shared (fanned index +1, middle +0.3, ring -0.5, little -1) + N(0, 0.04); thumb: CMC flexion
    0.7 c_t and abduction N(0.2 c_t, 0.15) about the radial axis, MCP 0.5 c_t, IP 0.8 c_t.
    """
    rng = np.random.default_rng(seed)
    u, a, nrm = hand_frame(joints, side)
    c = rng.beta(2.0, 2.0, size=n)
    spread = rng.normal(0.0, 0.12, size=n)
    fan = {"index": 1.0, "middle": 0.3, "ring": -0.5, "little": -1.0}
    pose = np.zeros((n, 15, 3))
    for f in ["index", "middle", "little", "ring", "thumb"]:
        cf = np.clip(c + rng.normal(0, 0.15, size=n), 0.0, 1.0)
        chain = [joints[f"{f}{i}"] for i in (1, 2, 3)] + [tips[f]]
        j0 = MANO_JOINT_NAMES.index(f"{f}1") - 1
        if f == "thumb":
            angles = [0.7 * cf, 0.5 * cf, 0.8 * cf]
        else:
            pip = 1.6 * cf + rng.normal(0, 0.08, size=n)
            angles = [1.4 * cf + rng.normal(0, 0.08, size=n), pip, 0.67 * pip + rng.normal(0, 0.08, size=n)]
        for k in range(3):
            bone = _unit(chain[k + 1] - chain[k])
            flex_axis = _unit(np.cross(bone, nrm))
            rot = Rotation.from_rotvec(angles[k][:, None] * flex_axis[None])
            if k == 0 and f != "thumb":
                sp = (spread * fan[f] + rng.normal(0, 0.04, size=n))[:, None] * nrm[None]
                rot = Rotation.from_rotvec(sp) * rot
            if k == 0 and f == "thumb":
                ab = rng.normal(0.2 * cf, 0.15)[:, None] * a[None]
                rot = Rotation.from_rotvec(ab) * rot
            pose[:, j0 + k] = rot.as_rotvec()
    return pose.reshape(n, 45)


def convert(src: Path, side: str) -> dict[str, np.ndarray]:
    raw = read_glb(src / f"{side}.glb")
    v, f, w25, wdiff = weld(raw["vertices"], raw["faces"], raw["weights"])
    mesh = trimesh.Trimesh(v, f, process=False)
    checks = {
        "num_vertices": len(v),
        "watertight": bool(mesh.is_watertight),
        "winding_consistent": bool(mesh.is_winding_consistent),
        "euler_number": int(mesh.euler_number),
        "volume_m3": float(mesh.volume),
        "bind_error": raw["bind_error"],
        "weld_weight_mismatch": wdiff,
    }
    if not (checks["watertight"] and checks["winding_consistent"] and checks["euler_number"] == 2):
        raise SystemExit(f"{side}: welded mesh is not a closed genus-0 surface: {checks}")
    if mesh.volume < 0:
        f = f[:, ::-1].copy()
    names = raw["names"]
    pos = {nm: raw["joint_pos"][i] for i, nm in enumerate(names)}
    # joints (MANO order) and tips, wrist at the origin
    origin = pos["wrist"].copy()
    inv_map = {"wrist": "wrist", "thumb1": "thumb-metacarpal", "thumb2": "thumb-phalanx-proximal",
               "thumb3": "thumb-phalanx-distal"}  # fmt: skip
    for m, wx in _WEBXR_FINGER.items():
        for i, part in enumerate(["phalanx-proximal", "phalanx-intermediate", "phalanx-distal"], start=1):
            inv_map[f"{m}{i}"] = f"{wx}-{part}"
    joints = {m: pos[inv_map[m]] - origin for m in MANO_JOINT_NAMES}
    tips = {fg: pos[TIP_NODE[fg]] - origin for fg in FINGERS}
    v = v - origin
    # weights onto the 16 MANO joints
    w16 = np.zeros((len(v), 16))
    for i, nm in enumerate(names):
        w16[:, MANO_JOINT_NAMES.index(WEBXR_TO_MANO[nm])] += w25[:, i]
    w16 /= w16.sum(1, keepdims=True)
    j_rest = np.stack([joints[m] for m in MANO_JOINT_NAMES])
    reg = affine_regressor(v, j_rest)
    # fingertip vertex: most distal vertex along the distal bone among the vertices skinned to it
    fingertips = []
    for fg in FINGERS:
        jd = MANO_JOINT_NAMES.index(f"{fg}3")
        axis = _unit(tips[fg] - joints[f"{fg}3"])
        cand = np.nonzero(w16.argmax(1) == jd)[0]
        fingertips.append(int(cand[np.argmax((v[cand] - joints[f"{fg}3"]) @ axis)]))
    shapedirs = shape_space(v, w16, joints, tips, side)
    samples = synthetic_pose_samples(joints, tips, side)
    comps, mean, std = pca_basis_from_samples(samples)
    u, a, n = hand_frame(joints, side)
    return {
        "v_template": v,
        "faces": f.astype(np.int64),
        "j_regressor": reg,
        "weights": w16,
        "shapedirs": shapedirs,
        "parents": np.asarray(MANO_PARENTS, dtype=np.int64),
        "fingertips": np.asarray(fingertips, dtype=np.int64),
        "pca_components": comps,
        "pca_mean": mean,
        "pca_std": std,
        "rest_joints": j_rest,
        "rest_tips": np.stack([tips[fg] for fg in FINGERS]),
        "asset_wrist_position": origin,
        "hand_axes": np.stack([u, a, n]),
        "shape_names": np.asarray(SHAPE_NAMES),
        "joint_names": np.asarray(MANO_JOINT_NAMES),
        "checks_json": np.asarray(json.dumps(checks)),
        "source": np.asarray(
            f"webxr-generic-hand {side}.glb (@webxr-input-profiles/assets 1.0.20, MIT, "
            "(c) 2019 Amazon); converted by scripts/make_openhand.py"
        ),  # fmt: skip
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path("/work/shared/assets/hands/webxr-generic-hand"))
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/contactkit/hands/assets"
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for side in ("right", "left"):
        arrays = convert(args.src, side)
        results[side] = arrays
        np.savez_compressed(args.out / f"openhand_{side}.npz", **arrays)
        print(side, json.loads(str(arrays["checks_json"])), "fingertips", arrays["fingertips"].tolist())
    # the left asset should be the mirror image of the right one (x -> -x)
    r, lf = results["right"]["v_template"], results["left"]["v_template"]
    d, _ = cKDTree(lf).query(r * np.array([-1.0, 1.0, 1.0]))
    print(f"left vs mirrored right: max vertex distance {d.max() * 1000:.3f} mm")
    (args.out / "LICENSE-webxr-generic-hand.md").write_text((args.src / "LICENSE.md").read_text())


if __name__ == "__main__":
    main()

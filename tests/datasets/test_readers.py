"""Dataset readers on tiny fixtures written in each dataset's documented layout.

The MANO model cannot be shipped, so the PCA basis / root joint come from the bundled OpenHand model (same
45-dim pose space and interface); the readers only need ``pca_components``, ``pca_mean`` and ``forward``.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from contactkit.geometry.rotations import axis_angle_to_rotmat, quat_to_axis_angle, quat_to_rotmat
from contactkit.hands import load_hand
from contactkit.io.datasets import (
    DatasetFormatError,
    load_restricted_pickle,
    read_contactpose,
    read_dataset,
    read_grab,
    read_ho3d,
    read_oakink_shape,
)
from contactkit.io.datasets._common import read_npz_safely
from contactkit.io.datasets.contactpose import pose_matrix
from contactkit.io.datasets.oakink import oakink_split
from contactkit.io.grasps import load_grasps, save_grasps


@pytest.fixture(scope="module")
def hand():
    return load_hand("openhand", "right", dtype=torch.float64)


def _box(path: Path, extents=(0.06, 0.04, 0.1), colors: np.ndarray | None = None) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=extents)
    if colors is not None:
        mesh.visual.vertex_colors = colors
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    return mesh


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/contactkit_evil_marker"),))


# ----------------------------------------------------------------------------------------------- safe loading
def test_restricted_pickle_loads_numpy_and_refuses_code(tmp_path):
    data = {"a": np.arange(3.0), "b": "name", "c": [np.float64(2.0)], "d": np.eye(2, dtype=np.float32)}
    out = load_restricted_pickle(pickle.dumps(data, protocol=2))
    np.testing.assert_array_equal(out["a"], data["a"])
    assert out["b"] == "name" and float(out["c"][0]) == 2.0 and out["d"].dtype == np.float32
    marker = Path("/tmp/contactkit_evil_marker")
    marker.unlink(missing_ok=True)
    with pytest.raises(DatasetFormatError, match="refusing to load"):
        load_restricted_pickle(pickle.dumps({"x": _Evil()}))
    assert not marker.exists()
    with pytest.raises(DatasetFormatError, match="file not found"):
        load_restricted_pickle(tmp_path / "missing.pkl")


def test_npz_object_arrays_go_through_restricted_unpickler(tmp_path):
    p = tmp_path / "seq.npz"
    np.savez(p, n=np.array(3), d=np.array({"k": np.ones(2)}, dtype=object))
    out = read_npz_safely(p)
    assert int(out["n"]) == 3 and np.allclose(out["d"]["k"], 1.0)
    bad = tmp_path / "bad.npz"
    np.savez(bad, d=np.array({"k": _Evil()}, dtype=object))
    with pytest.raises(DatasetFormatError, match="refusing"):
        read_npz_safely(bad)


# ----------------------------------------------------------------------------------------------- ContactPose
def _quat(rng):
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


def test_pose_matrix_matches_wxyz_quaternion():
    rng = np.random.default_rng(0)
    q = _quat(rng)
    m = pose_matrix({"rotation": list(q), "translation": [0.1, 0.2, 0.3]})
    ref = quat_to_rotmat(torch.as_tensor(q)).numpy()
    np.testing.assert_allclose(m[:3, :3], ref, atol=1e-12)
    np.testing.assert_allclose(m[:3, 3], [0.1, 0.2, 0.3])


def _write_contactpose(root: Path, rng, *, moving=False, right_valid=True):
    gdir = root / "full3_use" / "mug"
    gdir.mkdir(parents=True)
    mesh = trimesh.creation.box(extents=(0.05, 0.05, 0.08))
    nv = len(mesh.vertices)
    red = (np.arange(nv) * 255 // (nv - 1)).astype(np.uint8)
    colors = np.stack([red, red, red, np.full(nv, 255, np.uint8)], 1)
    _box(gdir / "mug.ply", (0.05, 0.05, 0.08), colors)
    m_t_c = {"rotation": list(_quat(rng)), "translation": list(rng.normal(0, 0.1, 3))}
    pose = list(rng.normal(0, 0.5, 3 + 15))
    fits = [{"valid": False}, {"valid": right_valid, "pose": pose, "betas": list(rng.normal(0, 1, 10)),
                                "mTc": m_t_c}]
    (gdir / "mano_fits_15.json").write_text(json.dumps(fits))
    h_t_o = {"rotation": list(_quat(rng)), "translation": list(rng.normal(0, 0.1, 3))}
    ann = {"hands": [{"valid": False}, {"valid": True, "moving": moving, "joints": [[0, 0, 0]] * 21}],
           "frames": [{"hTo": [None, h_t_o]}]}
    (gdir / "annotations.json").write_text(json.dumps(ann))
    return gdir, fits[1], h_t_o, red


@pytest.mark.parametrize("moving", [False, True])
def test_contactpose_reader(tmp_path, hand, moving):
    rng = np.random.default_rng(1)
    gdir, fit, h_t_o, red = _write_contactpose(tmp_path, rng, moving=moving)
    g = read_contactpose(tmp_path, hand=hand, n_object_points=64)
    assert len(g) == 1 and g.hand_model == "mano" and g.side == "right"
    pose = np.asarray(fit["pose"])
    np.testing.assert_allclose(g.global_orient[0], pose[:3])
    comps, mean = hand.pca_components.numpy(), hand.pca_mean.numpy()
    np.testing.assert_allclose(g.hand_pose[0], pose[3:] @ comps[:15] + mean, atol=1e-9)
    np.testing.assert_allclose(g.betas[0], fit["betas"])
    np.testing.assert_allclose(g.transl[0], 0.0)
    # object pose is inv(oTh @ hTm): mapping an object point into the MANO frame and back
    o_t_h = np.linalg.inv(pose_matrix(h_t_o)) if moving else np.eye(4)
    o_t_m = o_t_h @ np.linalg.inv(pose_matrix(fit["mTc"]))
    np.testing.assert_allclose(g.object_rotation[0], o_t_m[:3, :3].T, atol=1e-9)
    np.testing.assert_allclose(g.object_rotation[0] @ o_t_m[:3, 3] + g.object_translation[0], 0.0, atol=1e-9)
    # contact = red channel / 255 at the sampled raw vertices
    tm = trimesh.load(gdir / "mug.ply", process=False)
    raw = np.asarray(tm.vertices)
    for p, c in zip(g.object_points[0], g.object_contact[0], strict=True):
        j = int(np.argmin(np.linalg.norm(raw - p, axis=1)))
        assert c == pytest.approx(tm.visual.vertex_colors[j, 0] / 255.0)
    assert g.metadata[0]["participant"] == "3" and g.metadata[0]["intent"] == "use"
    # round trip through the grasp format
    save_grasps(tmp_path / "cp.npz", g)
    assert len(load_grasps(tmp_path / "cp.npz")) == 1


def test_contactpose_errors(tmp_path, hand):
    rng = np.random.default_rng(2)
    gdir, *_ = _write_contactpose(tmp_path, rng)
    (gdir / "mano_fits_15.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match="invalid JSON"):
        read_contactpose(tmp_path, hand=hand)
    with pytest.raises(DatasetFormatError, match="not found"):
        read_contactpose(tmp_path / "nowhere", hand=hand)


# ----------------------------------------------------------------------------------------------- HO-3D
def _write_ho3d(root: Path, rng, n=4):
    seq = root / "HO3D_v3" / "train" / "ABF10" / "meta"
    seq.mkdir(parents=True)
    _box(root / "models" / "003_cracker_box" / "textured_simple.obj")
    metas = []
    for i in range(n):
        meta = {"handPose": rng.normal(0, 0.3, 48).astype(np.float32), "handTrans": rng.normal(0, 0.1, 3),
                "handBeta": rng.normal(0, 1, 10), "objRot": rng.normal(0, 1, (3, 1)),
                "objTrans": rng.normal(0, 0.1, 3), "objName": "003_cracker_box", "camMat": np.eye(3)}
        if i == n - 1:
            meta["handPose"] = None  # evaluation-split style frame
        (seq / f"{i:04d}.pkl").write_bytes(pickle.dumps(meta, protocol=2))
        metas.append(meta)
    return metas


def test_ho3d_reader(tmp_path):
    rng = np.random.default_rng(3)
    metas = _write_ho3d(tmp_path, rng)
    with pytest.warns(UserWarning, match="without a hand pose"):
        g = read_ho3d(tmp_path / "HO3D_v3", models_dir=tmp_path / "models")
    assert len(g) == 3 and len(g.objects) == 1
    for i in range(3):
        np.testing.assert_allclose(g.global_orient[i], metas[i]["handPose"][:3], rtol=1e-6)
        np.testing.assert_allclose(g.hand_pose[i], metas[i]["handPose"][3:], rtol=1e-6)
        np.testing.assert_allclose(g.transl[i], metas[i]["handTrans"])
        np.testing.assert_allclose(g.betas[i], metas[i]["handBeta"])
        ref = axis_angle_to_rotmat(torch.as_tensor(metas[i]["objRot"].reshape(3))).numpy()
        np.testing.assert_allclose(g.object_rotation[i], ref, atol=1e-12)
    assert g.metadata[0]["sequence"] == "ABF10" and g.metadata[1]["frame"] == "0001"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(read_dataset("ho3d", tmp_path / "HO3D_v3", models_dir=tmp_path / "models", stride=2)) == 2


def test_ho3d_errors(tmp_path):
    rng = np.random.default_rng(4)
    _write_ho3d(tmp_path, rng, n=2)
    with pytest.raises(DatasetFormatError, match="object model '003_cracker_box' not found"):
        read_ho3d(tmp_path / "HO3D_v3", models_dir=tmp_path / "elsewhere")
    bad = tmp_path / "bad" / "meta"
    bad.mkdir(parents=True)
    (bad / "0000.pkl").write_bytes(pickle.dumps({"handPose": np.zeros(10), "objName": "x"}, protocol=2))
    with pytest.raises(DatasetFormatError, match="'handPose' must have 48 values"):
        read_ho3d(bad, models_dir=tmp_path / "models")
    with pytest.raises(DatasetFormatError, match="format must be one of"):
        read_dataset("obman", tmp_path)


# ----------------------------------------------------------------------------------------------- GRAB
def _write_grab(root: Path, rng, t=30, fullpose=True):
    mesh = _box(root / "tools" / "object_meshes" / "contact_meshes" / "mug.ply")
    nv = len(mesh.vertices)
    contact = np.zeros((t, nv), dtype=np.int32)
    contact[10:20, :3] = 43
    hparams = {"global_orient": rng.normal(0, 0.3, (t, 3)), "transl": rng.normal(0, 0.1, (t, 3)),
               "hand_pose": rng.normal(0, 0.5, (t, 24))}
    if fullpose:
        hparams["fullpose"] = rng.normal(0, 0.3, (t, 45))
    seq = root / "grab" / "s1" / "mug_drink_1.npz"
    seq.parent.mkdir(parents=True)
    np.savez(
        seq, n_frames=np.array(t), n_comps=np.array(24), obj_name=np.array("mug"), sbj_id=np.array("s1"),
        motion_intent=np.array("drink"), gender=np.array("male"), framerate=np.array(120.0),
        rhand=np.array({"params": hparams, "vtemp": "tools/subject_meshes/male/s1_rhand.ply"}, dtype=object),
        object=np.array({"params": {"global_orient": rng.normal(0, 1, (t, 3)),
                                    "transl": rng.normal(0, 0.1, (t, 3))},
                         "object_mesh": "tools/object_meshes/contact_meshes/mug.ply"}, dtype=object),
        contact=np.array({"object": contact, "body": np.zeros((t, 5))}, dtype=object),
    )
    return seq, hparams


def test_grab_reader(tmp_path, hand):
    rng = np.random.default_rng(5)
    seq, hp = _write_grab(tmp_path, rng)
    g = read_grab(tmp_path / "grab", stride=5, n_object_points=16)
    assert [m["frame"] for m in g.metadata] == [10, 15]  # contact frames on the stride
    np.testing.assert_allclose(g.hand_pose[0], hp["fullpose"][10])
    np.testing.assert_allclose(g.global_orient[1], hp["global_orient"][15])
    np.testing.assert_allclose(g.betas, 0.0)
    assert g.object_contact.max() == 1.0 and g.metadata[0]["vtemp"].endswith("s1_rhand.ply")
    g_all = read_grab(seq, stride=10, contact_only=False)
    assert len(g_all) == 3


def test_grab_pca_fallback_uses_flat_mean(tmp_path, hand):
    rng = np.random.default_rng(6)
    _, hp = _write_grab(tmp_path, rng, fullpose=False)
    g = read_grab(tmp_path, stride=10, hand=hand)
    comps = hand.pca_components.numpy()
    np.testing.assert_allclose(g.hand_pose[0], hp["hand_pose"][10] @ comps[:24], atol=1e-9)


# ----------------------------------------------------------------------------------------------- OakInk-Shape
def _write_oakink(root: Path, rng, quat=False):
    shape = root / "shape"
    (shape / "metaV2").mkdir(parents=True)
    (shape / "metaV2" / "object_id.json").write_text(json.dumps({"A16012": {"name": "006_mustard_bottle"}}))
    (shape / "metaV2" / "virtual_object_id.json").write_text(json.dumps({"s16101": {"name": "bottle_0"}}))
    _box(shape / "OakInkObjectsV2" / "006_mustard_bottle" / "align" / "mustard.obj")
    m = trimesh.creation.box(extents=(0.03, 0.03, 0.12))
    m.apply_translation([0.2, 0.0, 0.0])  # off-centre: the reader must centre it on its bounding box
    (shape / "OakInkVirtualObjectsV2" / "bottle_0" / "align").mkdir(parents=True)
    m.export(shape / "OakInkVirtualObjectsV2" / "bottle_0" / "align" / "bottle.obj")
    gdir = shape / "oakink_shape_v2" / "bottle" / "A16012" / "0cc013118e"
    (gdir / "s16101").mkdir(parents=True)
    (gdir / "source.txt").write_text("pass1/A16012_0002_0000/2021-10-04-15-40-55")
    params = []
    for target in (gdir, gdir / "s16101"):
        aa = rng.normal(0, 0.3, (16, 3))
        ang = np.linalg.norm(aa, axis=1, keepdims=True)
        quats = np.concatenate([np.cos(ang / 2), np.sin(ang / 2) * aa / ang], 1)
        pose = quats if quat else aa.reshape(48)
        p = {"pose": pose, "shape": rng.normal(0, 1, 10).astype(np.float32), "tsl": rng.normal(0, 0.05, 3)}
        (target / "hand_param.pkl").write_bytes(pickle.dumps(p, protocol=2))
        params.append((p, aa))
    return params


@pytest.mark.parametrize("quat", [False, True])
def test_oakink_reader(tmp_path, hand, quat):
    rng = np.random.default_rng(7)
    params = _write_oakink(tmp_path, rng, quat=quat)
    g = read_oakink_shape(tmp_path, hand=hand)
    assert len(g) == 2
    assert [m["virtual"] for m in g.metadata] == [False, True]
    assert g.metadata[0]["intent"] == "hold" and g.metadata[1]["object"] == "s16101"
    for i, (p, aa) in enumerate(params):
        pose = np.concatenate([g.global_orient[i], g.hand_pose[i]]).reshape(16, 3)
        if quat:
            aa = quat_to_axis_angle(torch.as_tensor(p["pose"])).numpy()
        np.testing.assert_allclose(pose, aa.reshape(16, 3), atol=1e-9)
        # center_idx = 0: the posed root joint lands on tsl
        t = g.subset([i]).hand_tensors(dtype=torch.float64)
        out = hand(t["global_orient"], t["hand_pose"], t["betas"][:, : hand.num_betas], t["transl"])
        np.testing.assert_allclose(out.joints[0, 0].numpy(), p["tsl"], atol=1e-9)
    virt = g.objects[g.object_ids[1]]
    np.testing.assert_allclose((virt.vertices.min(0) + virt.vertices.max(0)) / 2, 0.0, atol=1e-12)
    only_real = read_oakink_shape(tmp_path / "shape", hand=hand, include_virtual=False)
    assert len(only_real) == 1
    assert oakink_split("A16012") in ("train", "val", "test")
    with pytest.raises(DatasetFormatError, match="intents must be among"):
        read_oakink_shape(tmp_path, hand=hand, intents=["grab"])

"""MANO loading from small fake MANO-format pickles (random arrays of the real shapes); no real MANO file."""

import os
import pickle
import sys
import types
import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
import trimesh
from scipy.spatial.transform import Rotation

from contactkit.errors import HandModelError, ShapeError
from contactkit.hands import load_hand
from contactkit.hands.mano import MANO_ENV_VAR, boundary_loops, cap_boundary_loops, read_mano_arrays
from contactkit.hands.unpickle import safe_load_pickle

PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]


@pytest.fixture()
def fake_chumpy(monkeypatch):
    """A module ``chumpy.ch`` with a class ``Ch`` so pickles reference ``chumpy.ch Ch`` like MANO's files."""
    pkg = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()
            self.dterms = ("x",)

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    ch.Ch = Ch
    pkg.ch = ch
    monkeypatch.setitem(sys.modules, "chumpy", pkg)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    return Ch


def _fake_arrays(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    v = 778
    jreg = np.zeros((16, v))
    for j in range(16):
        idx = rng.choice(v, 12, replace=False)
        jreg[j, idx] = rng.random(12)
    jreg /= jreg.sum(1, keepdims=True)
    w = rng.random((v, 16)) ** 3
    w /= w.sum(1, keepdims=True)
    q, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    kintree = np.array([[4294967295] + PARENTS[1:], list(range(16))], dtype=np.int64)
    return {
        "v_template": rng.normal(size=(v, 3)) * 0.04,
        "f": rng.integers(0, v, size=(1538, 3)).astype(np.uint32),
        "J_regressor": scipy.sparse.csc_matrix(jreg),
        "weights": w,
        "posedirs": rng.normal(size=(v, 3, 135)) * 2e-3,
        "shapedirs": rng.normal(size=(v, 3, 10)) * 5e-3,
        "hands_components": q,
        "hands_mean": rng.normal(size=45) * 0.1,
        "kintree_table": kintree,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def _write(folder, name, arrays, ch_cls):
    d = dict(arrays)
    d["shapedirs"] = ch_cls(d["shapedirs"])
    d["v_template"] = ch_cls(d["v_template"])
    (folder / name).write_bytes(pickle.dumps(d, protocol=2))


@pytest.fixture()
def mano_dir(tmp_path, fake_chumpy):
    right = _fake_arrays(0)
    left = _fake_arrays(1)
    # the released left file's bug: the x rows of shapedirs equal the right hand's instead of their negation
    left["shapedirs"][:, 0, :] = right["shapedirs"][:, 0, :]
    _write(tmp_path, "MANO_RIGHT.pkl", right, fake_chumpy)
    _write(tmp_path, "MANO_LEFT.pkl", left, fake_chumpy)
    return tmp_path, right, left


def _load(name, side, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="could not cap the MANO wrist")
        return load_hand(name, side, dtype=torch.float64, **kw)


def plain_lbs(a: dict, global_orient, hand_pose, betas, transl, shapedirs=None):
    """Textbook MANO forward, one joint and one vertex-array operation at a time (float64 numpy)."""
    sd = a["shapedirs"] if shapedirs is None else shapedirs
    jreg = a["J_regressor"].toarray()
    v_shaped = a["v_template"] + sd @ betas
    joints = jreg @ v_shaped
    pose = np.concatenate([global_orient, hand_pose]).reshape(16, 3)
    rots = Rotation.from_rotvec(pose).as_matrix()
    feat = (rots[1:] - np.eye(3)).reshape(-1)
    v_posed = v_shaped + a["posedirs"] @ feat
    g = np.zeros((16, 4, 4))
    for j in range(16):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        p = PARENTS[j]
        local[:3, 3] = joints[j] - (joints[p] if p >= 0 else 0.0)
        g[j] = local if p < 0 else g[p] @ local
    a_mats = g.copy()
    for j in range(16):
        a_mats[j, :3, 3] -= g[j, :3, :3] @ joints[j]
    out = np.zeros_like(v_posed)
    for i in range(len(v_posed)):
        t = np.einsum("j,jab->ab", a["weights"][i], a_mats)
        out[i] = t[:3, :3] @ v_posed[i] + t[:3, 3]
    return out + transl, g[:, :3, 3] + transl


def test_fake_mano_matches_plain_lbs(mano_dir):
    folder, right, _ = mano_dir
    hand = _load("mano", "right", mano_dir=folder)
    assert hand.name == "mano" and hand.num_verts == 778 and hand.num_betas == 10
    rng = np.random.default_rng(5)
    go, hp = rng.normal(size=3) * 0.7, rng.normal(size=45) * 0.4
    be, tr = rng.normal(size=10), rng.normal(size=3) * 0.1
    out = hand(*(torch.as_tensor(x)[None] for x in (go, hp, be, tr)))
    ref_v, ref_j = plain_lbs(right, go, hp, be, tr)
    np.testing.assert_allclose(out.vertices[0].numpy(), ref_v, atol=1e-10)
    np.testing.assert_allclose(out.joints[0].numpy(), ref_j, atol=1e-10)
    # keypoints: wrist, thumb 1-3 (MANO 13-15), thumb tip vertex 745, ..., little tip vertex 673
    kp = out.keypoints[0].numpy()
    np.testing.assert_allclose(kp[0], ref_j[0], atol=1e-10)
    np.testing.assert_allclose(kp[1:4], ref_j[13:16], atol=1e-10)
    np.testing.assert_allclose(kp[[4, 8, 12, 16, 20]], ref_v[[745, 317, 444, 556, 673]], atol=1e-10)
    np.testing.assert_allclose(kp[17:20], ref_j[7:10], atol=1e-10)


def test_flat_hand_mean_and_pca(mano_dir):
    folder, right, _ = mano_dir
    hand = _load("mano", "right", mano_dir=folder, flat_hand_mean=False, ncomps=12)
    rng = np.random.default_rng(6)
    coeffs = rng.normal(size=12)
    hp = coeffs @ right["hands_components"][:12] + right["hands_mean"]
    out = hand(torch.zeros(1, 3, dtype=torch.float64), torch.as_tensor(coeffs)[None], pose_space="pca")
    ref_v, _ = plain_lbs(right, np.zeros(3), hp, np.zeros(10), np.zeros(3))
    np.testing.assert_allclose(out.vertices[0].numpy(), ref_v, atol=1e-10)
    # a zero axis-angle pose is the mean hand when flat_hand_mean=False
    out0 = hand(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 45, dtype=torch.float64))
    ref0, _ = plain_lbs(right, np.zeros(3), right["hands_mean"], np.zeros(10), np.zeros(3))
    np.testing.assert_allclose(out0.vertices[0].numpy(), ref0, atol=1e-10)


def test_left_shapedirs_sign_fix(mano_dir):
    folder, right, left = mano_dir
    hand = _load("mano", "left", mano_dir=folder)
    sd = hand.shapedirs_flat.T.reshape(778, 3, 10).numpy()
    np.testing.assert_allclose(sd[:, 0], -right["shapedirs"][:, 0])
    np.testing.assert_allclose(sd[:, 1:], left["shapedirs"][:, 1:])
    rng = np.random.default_rng(7)
    be = rng.normal(size=10)
    out = hand(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 45, dtype=torch.float64),
               torch.as_tensor(be)[None])  # fmt: skip
    fixed = left["shapedirs"].copy()
    fixed[:, 0] *= -1
    ref, _ = plain_lbs(left, np.zeros(3), np.zeros(45), be, np.zeros(3), shapedirs=fixed)
    np.testing.assert_allclose(out.vertices[0].numpy(), ref, atol=1e-10)


def test_left_fix_not_applied_to_a_correct_file(tmp_path, fake_chumpy):
    right, left = _fake_arrays(0), _fake_arrays(1)  # left x rows unrelated to right: no bug
    _write(tmp_path, "MANO_RIGHT.pkl", right, fake_chumpy)
    _write(tmp_path, "MANO_LEFT.pkl", left, fake_chumpy)
    hand = _load("mano", "left", mano_dir=tmp_path)
    np.testing.assert_allclose(hand.shapedirs_flat.T.reshape(778, 3, 10).numpy(), left["shapedirs"])


def test_env_var_and_missing_dir(mano_dir, monkeypatch, tmp_path_factory):
    folder, _, _ = mano_dir
    monkeypatch.setenv(MANO_ENV_VAR, str(folder))
    assert _load("mano", "right").num_verts == 778
    monkeypatch.delenv(MANO_ENV_VAR)
    with pytest.raises(HandModelError, match="CONTACTKIT_MANO_DIR"):
        load_hand("mano", "right")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(HandModelError, match="MANO_RIGHT.pkl not found"):
        load_hand("mano", "right", mano_dir=empty)


def test_bad_names():
    with pytest.raises(HandModelError, match="side must be one of"):
        load_hand("openhand", "middle")
    with pytest.raises(HandModelError, match="name must be one of"):
        load_hand("smplx", "right")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_refuses_os_system(tmp_path):
    data = pickle.dumps({"v_template": _Evil()}, protocol=2)
    with pytest.raises(HandModelError, match=r"refusing to load (posix|os|nt)\.system"):
        safe_load_pickle(data)
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(data)
    with pytest.raises(HandModelError, match="refusing"):
        load_hand("mano", "right", mano_dir=tmp_path)


def test_refuses_other_globals_and_garbage(tmp_path):
    with pytest.raises(HandModelError, match=r"refusing to load (__builtin__|builtins)\.eval"):
        safe_load_pickle(pickle.dumps({"a": eval}, protocol=2))
    with pytest.raises(HandModelError, match="could not read"):
        safe_load_pickle(b"not a pickle")


def test_wrong_shape_in_file(tmp_path, fake_chumpy):
    arrays = _fake_arrays(0)
    arrays["weights"] = arrays["weights"][:, :15]
    _write(tmp_path, "MANO_RIGHT.pkl", arrays, fake_chumpy)
    with pytest.raises(HandModelError, match=r"weights has shape \(778, 15\), expected \(778, 16\)"):
        read_mano_arrays(tmp_path / "MANO_RIGHT.pkl")


def _open_cylinder(n: int = 16, rings: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Cylinder closed at the top by a fan to an apex, open at the bottom (one boundary loop of n)."""
    ang = np.arange(n) * 2 * np.pi / n
    verts = [np.stack([np.cos(ang), np.sin(ang), np.full(n, z)], 1) for z in np.linspace(0, 1, rings)]
    v = np.concatenate(verts + [np.array([[0.0, 0.0, 1.2]])])
    faces = []
    for r in range(rings - 1):
        for i in range(n):
            a, b = r * n + i, r * n + (i + 1) % n
            c, d = a + n, b + n
            faces += [(a, b, d), (a, d, c)]
    apex = len(v) - 1
    top = (rings - 1) * n
    faces += [(top + i, top + (i + 1) % n, apex) for i in range(n)]
    return v, np.asarray(faces)


def test_cap_boundary_loops_makes_watertight():
    v, f = _open_cylinder()
    m = trimesh.Trimesh(v, f, process=False)
    assert not m.is_watertight and m.is_winding_consistent
    loops = boundary_loops(f)
    assert len(loops) == 1 and len(loops[0]) == 16
    closed = cap_boundary_loops(f)
    assert len(closed) == len(f) + 14
    mc = trimesh.Trimesh(v, closed, process=False)
    assert mc.is_watertight and mc.is_winding_consistent
    assert mc.volume > 0
    assert len(boundary_loops(closed)) == 0


def test_cap_rejects_non_manifold_boundary():
    f = np.array([[0, 1, 2], [0, 3, 4]])  # vertex 0 has two outgoing boundary edges
    with pytest.raises(HandModelError, match="not a set of simple loops"):
        boundary_loops(f)


def test_forward_errors_on_mano(mano_dir):
    folder, _, _ = mano_dir
    hand = _load("mano", "right", mano_dir=folder)
    z3 = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ShapeError, match=r"betas must have shape \(2, 10\)"):
        hand(z3, torch.zeros(2, 45, dtype=torch.float64), torch.zeros(2, 8, dtype=torch.float64))


@pytest.mark.parametrize(("side", "tips"), [("right", [745, 317, 444, 556, 673]), ("left", [745, 317, 445, 556, 673])])
def test_fingertip_keypoints_follow_manopth_per_side(mano_dir, side, tips):
    # manopth (ManoLayer.forward): right tips verts[:, [745, 317, 444, 556, 673]], left [745, 317, 445, 556, 673]
    folder, _, _ = mano_dir
    hand = _load("mano", side, mano_dir=folder)
    assert hand.annotations.fingertip_vertices.tolist() == tips
    rng = np.random.default_rng(3)
    out = hand(*(torch.as_tensor(x)[None] for x in (rng.normal(size=3), rng.normal(size=45) * 0.3,
                                                     rng.normal(size=10), rng.normal(size=3) * 0.1)))
    np.testing.assert_allclose(out.keypoints[0, [4, 8, 12, 16, 20]].numpy(), out.vertices[0, tips].numpy(), atol=1e-12)

"""The contactkit.grasps file format: round trip, validation and errors that name the record."""

import json
import zipfile

import numpy as np
import pytest
import torch

from contactkit.errors import GraspFileError, OutputError, ShapeError, UnitsError
from contactkit.io import GRASP_FORMAT_VERSION, GraspSet, load_grasps, save_grasps
from contactkit.objects import make_primitive

N, V, P, T = 6, 50, 40, 7


@pytest.fixture(scope="module")
def objects():
    return make_primitive("sphere", radius=0.03, subdivisions=2), make_primitive(
        "box", extents=[0.04, 0.05, 0.1]
    )


def _rotations(n, rng):
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    return q * np.sign(np.linalg.det(q))[:, None, None]


def _full_set(objects, n=N):
    rng = np.random.default_rng(0)
    sphere, box = objects
    objs = [sphere if i % 2 == 0 else box for i in range(n)]
    return GraspSet(
        hand_model="mano",
        side="left",
        global_orient=rng.normal(size=(n, 3)),
        hand_pose=rng.normal(size=(n, 45)) * 0.3,
        betas=rng.normal(size=(n, 10)),
        transl=rng.normal(size=(n, 3)) * 0.1,
        object_ids=[o.content_hash for o in objs],
        objects={o.content_hash: o for o in objs},
        object_rotation=_rotations(n, rng),
        object_translation=rng.normal(size=(n, 3)) * 0.1,
        hand_vertices=rng.normal(size=(n, V, 3)) * 0.05,
        hand_contact=rng.random((n, V)),
        object_points=rng.normal(size=(n, P, 3)) * 0.03,
        object_contact=rng.random((n, P)),
        loss_traces=np.where(np.arange(T) < 5, rng.random((n, T)), np.nan),
        reference_index=np.arange(n, dtype=np.int64)[::-1].copy(),
        metadata=[{"source": "test", "i": i, "tags": ["a", "b"], "score": 0.5 * i} for i in range(n)],
        attrs={"reference": "gt.npz", "protocol": {"sigma_t_m": 0.05}},
    )


def _rewrite(src, dst, mutate):
    """Load the raw npz entries, let ``mutate`` edit the dict (header as a dict), and save with np.savez."""
    with np.load(src, allow_pickle=False) as d:
        raw = {k: np.array(d[k]) for k in d.files}
    header = json.loads(str(raw.pop("header")))
    mutate(header, raw)
    np.savez(dst, header=np.str_(json.dumps(header)), **raw)
    return dst


@pytest.fixture()
def saved(objects, tmp_path):
    gs = _full_set(objects)
    path = tmp_path / "grasps.npz"
    save_grasps(path, gs)
    return gs, path


# ---------------------------------------------------------------- round trip
def test_round_trip_all_fields_exact(saved):
    gs, path = saved
    back = load_grasps(path)
    assert len(back) == N and back.hand_model == "mano" and back.side == "left"
    for name in (
        "global_orient",
        "hand_pose",
        "betas",
        "transl",
        "object_rotation",
        "object_translation",
        "hand_vertices",
        "hand_contact",
        "object_points",
        "object_contact",
    ):
        a, b = getattr(gs, name), getattr(back, name)
        assert b.dtype == np.float64
        np.testing.assert_array_equal(a, b)  # float64 bit-exact
    np.testing.assert_array_equal(back.loss_traces, gs.loss_traces)  # NaN padding preserved
    assert back.reference_index.dtype == np.int64
    np.testing.assert_array_equal(back.reference_index, gs.reference_index)
    assert back.metadata == gs.metadata
    assert back.attrs == {**gs.attrs, "reference": str(path.parent.resolve() / "gt.npz")}
    assert back.object_ids == gs.object_ids
    assert set(back.objects) == set(gs.objects)
    for key, obj in gs.objects.items():
        got = back.objects[key]
        assert got.name == obj.name and got.content_hash == key
        assert got.is_watertight == obj.is_watertight
        assert got.analytic_volume_m3 == obj.analytic_volume_m3
        assert got.primitive == obj.primitive
        np.testing.assert_array_equal(got.vertices, obj.vertices)


def test_minimal_set_round_trip(objects, tmp_path):
    gs = GraspSet.from_arrays(
        hand_model="openhand",
        side="right",
        global_orient=np.zeros((2, 3)),
        hand_pose=np.zeros((2, 45)),
        objects=objects[0],
        num_betas=0,
    )
    assert gs.betas.shape == (2, 0) and gs.metadata == [{}, {}]
    save_grasps(tmp_path / "m.npz", gs)
    back = load_grasps(tmp_path / "m.npz")
    assert back.optional_fields() == [] and back.betas.shape == (2, 0)
    np.testing.assert_array_equal(back.object_rotation, np.broadcast_to(np.eye(3), (2, 3, 3)))


def test_objects_stored_once_and_never_pickled(saved):
    gs, path = saved
    names = zipfile.ZipFile(path).namelist()
    assert sum(n.endswith("/vertices.npy") for n in names) == 2  # 6 grasps, 2 objects
    with np.load(path, allow_pickle=False) as d:
        for k in d.files:
            assert d[k].dtype != object
        header = json.loads(str(d["header"]))
    assert header["format"] == "contactkit.grasps" and header["version"] == GRASP_FORMAT_VERSION
    assert header["units"] == "m"


def test_save_is_atomic_on_failure(saved, monkeypatch):
    gs, path = saved
    before = path.read_bytes()
    import contactkit.io.atomic as atomic

    def boom(*a, **k):
        raise OSError("simulated")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OutputError):
        save_grasps(path, gs.subset([0]))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["grasps.npz"]


# ---------------------------------------------------------------- reading errors
def test_truncated_file(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    for cut in (len(data) // 2, 100, len(data) - 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(GraspFileError, match="truncated or corrupt") as info:
            load_grasps(bad)
        assert info.value.__cause__ is None


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "g.npz"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(GraspFileError, match="truncated or corrupt"):
        load_grasps(bad)
    with pytest.raises(GraspFileError, match="grasp file not found"):
        load_grasps(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(GraspFileError, match="not a contactkit grasp file"):
        load_grasps(tmp_path / "other.npz")


def test_pickled_content_is_refused(saved, tmp_path):
    _, path = saved
    with np.load(path, allow_pickle=False) as d:
        raw = {k: np.array(d[k]) for k in d.files}
    raw["transl"] = np.array([{"evil": 1}] * N, dtype=object)
    np.savez(tmp_path / "p.npz", **raw)
    with pytest.raises(GraspFileError, match="pickled or malformed"):
        load_grasps(tmp_path / "p.npz")


def test_wrong_version(saved, tmp_path):
    _, path = saved
    bad = _rewrite(path, tmp_path / "v2.npz", lambda h, r: h.update(version=2))
    with pytest.raises(
        GraspFileError, match=r"unsupported contactkit.grasps version 2; this contactkit reads"
    ):
        load_grasps(bad)
    bad = _rewrite(path, tmp_path / "fmt.npz", lambda h, r: h.update(format="something.else"))
    with pytest.raises(GraspFileError, match="not a contactkit grasp file"):
        load_grasps(bad)
    bad = _rewrite(path, tmp_path / "mm.npz", lambda h, r: h.update(units="mm"))
    with pytest.raises(GraspFileError, match="units must be 'm'"):
        load_grasps(bad)


def test_nan_in_record_3_is_named(saved, tmp_path):
    _, path = saved

    def mutate(header, raw):
        raw["transl"][3, 1] = np.nan

    with pytest.raises(GraspFileError, match="grasp 3: transl contains NaN"):
        load_grasps(_rewrite(path, tmp_path / "nan.npz", mutate))

    def mutate_hv(header, raw):
        raw["hand_vertices"][4, 10, 0] = np.inf

    with pytest.raises(GraspFileError, match="grasp 4: hand_vertices contains NaN or inf"):
        load_grasps(_rewrite(path, tmp_path / "inf.npz", mutate_hv))


def test_millimetres_are_detected(saved, tmp_path):
    _, path = saved

    def mutate(header, raw):
        raw["transl"][2] *= 1000
        raw["transl"][2, 0] = 250.0

    with pytest.raises(GraspFileError, match="grasp 2: transl has a coordinate of 250 m.*millimetres"):
        load_grasps(_rewrite(path, tmp_path / "mm.npz", mutate))


def test_missing_object_is_named(saved, tmp_path):
    gs, path = saved
    box_id = gs.object_ids[1]

    def mutate(header, raw):
        del raw[f"objects/{box_id}/vertices"]
        del raw[f"objects/{box_id}/faces"]
        del header["objects"][box_id]

    with pytest.raises(GraspFileError, match=rf"grasp 1: object id '{box_id}' is not stored in the file"):
        load_grasps(_rewrite(path, tmp_path / "noobj.npz", mutate))


def test_edited_object_geometry_is_detected(saved, tmp_path):
    gs, path = saved
    box_id = gs.object_ids[1]

    def mutate(header, raw):
        raw[f"objects/{box_id}/vertices"][0, 0] += 1e-3

    with pytest.raises(GraspFileError, match=rf"object {box_id}: stored geometry hashes to"):
        load_grasps(_rewrite(path, tmp_path / "edited.npz", mutate))


def test_inconsistent_record_counts(saved, tmp_path):
    _, path = saved

    def mutate(header, raw):
        raw["hand_pose"] = raw["hand_pose"][:-1]

    with pytest.raises(GraspFileError, match=r"array 'hand_pose' has 5 records, header says 6"):
        load_grasps(_rewrite(path, tmp_path / "short.npz", mutate))

    def mutate_shape(header, raw):
        raw["hand_pose"] = raw["hand_pose"][:, :40]

    with pytest.raises(GraspFileError, match=r"hand_pose must have shape \(N, 45\).*got \(6, 40\)"):
        load_grasps(_rewrite(path, tmp_path / "shape.npz", mutate_shape))

    def mutate_missing(header, raw):
        del raw["object_contact"]

    with pytest.raises(GraspFileError, match="array 'object_contact' is missing"):
        load_grasps(_rewrite(path, tmp_path / "missing.npz", mutate_missing))


def test_bad_values_named(saved, tmp_path):
    _, path = saved

    def contact(header, raw):
        raw["hand_contact"][5, 0] = 1.5

    with pytest.raises(GraspFileError, match=r"grasp 5: hand_contact must lie in \[0, 1\]"):
        load_grasps(_rewrite(path, tmp_path / "c.npz", contact))

    def roundoff(header, raw):
        raw["hand_contact"][5, 0] = 1 + 1e-9
        raw["loss_traces"][0, 0] = np.inf  # a diverged run is still recorded

    back = load_grasps(_rewrite(path, tmp_path / "ok.npz", roundoff))
    assert back.hand_contact[5, 0] == 1 + 1e-9 and np.isinf(back.loss_traces[0, 0])

    def rotation(header, raw):
        raw["object_rotation"][2] *= 2

    with pytest.raises(GraspFileError, match="grasp 2: object_rotation is not a rotation matrix"):
        load_grasps(_rewrite(path, tmp_path / "r.npz", rotation))


# ---------------------------------------------------------------- in-memory validation and helpers
def test_construction_errors(objects):
    gs = _full_set(objects)
    with pytest.raises(ShapeError, match=r"hand_pose must have shape \(N, 45\) with N = 6, got \(6, 44\)"):
        gs.replace(hand_pose=np.zeros((N, 44)))
    bad = np.array(gs.transl)
    bad[3, 0] = np.nan
    with pytest.raises(ShapeError, match="grasp 3: transl contains NaN"):
        gs.replace(transl=bad)
    with pytest.raises(UnitsError, match="grasp 0: object_translation .*millimetres"):
        gs.replace(object_translation=np.full((N, 3), 120.0))
    with pytest.raises(ShapeError, match="side must be 'right' or 'left'"):
        gs.replace(side="both")
    with pytest.raises(ShapeError, match="grasp 4: object id 'deadbeef' is not among the stored objects"):
        gs.replace(object_ids=[*gs.object_ids[:4], "deadbeef", gs.object_ids[5]])
    with pytest.raises(ShapeError, match="metadata of grasp 1 must be JSON-serialisable"):
        gs.replace(metadata=[{}, {"x": object()}, {}, {}, {}, {}])
    with pytest.raises(ShapeError, match="object_contact needs object_points"):
        gs.replace(object_points=None)
    big = make_primitive("sphere", radius=20.0, subdivisions=1)
    with pytest.raises(UnitsError, match="looks like millimetres"):
        GraspSet.from_arrays(
            hand_model="mano",
            side="right",
            global_orient=np.zeros((1, 3)),
            hand_pose=np.zeros((1, 45)),
            objects=big,
        )


def test_arrays_are_read_only_copies(objects):
    gs = _full_set(objects)
    assert not gs.transl.flags.writeable
    src = np.zeros((1, 3))
    one = GraspSet.from_arrays(
        hand_model="mano", side="right", global_orient=src, hand_pose=np.zeros((1, 45)), objects=objects[0]
    )
    src[0, 0] = 1.0
    assert one.global_orient[0, 0] == 0.0
    with pytest.raises(AttributeError):
        gs.side = "right"


def test_subset_and_concat(objects):
    gs = _full_set(objects)
    sub = gs.subset([4, 0, 2])
    assert len(sub) == 3 and list(sub.objects) == [gs.object_ids[0]]  # only spheres: box dropped
    np.testing.assert_array_equal(sub.hand_pose, gs.hand_pose[[4, 0, 2]])
    assert sub.metadata[0]["i"] == 4
    mask = np.zeros(N, dtype=bool)
    mask[[1, 5]] = True
    np.testing.assert_array_equal(gs.subset(mask).transl, gs.transl[[1, 5]])
    np.testing.assert_array_equal(gs.subset(slice(0, 2)).betas, gs.betas[:2])
    np.testing.assert_array_equal(gs.subset([-1]).transl, gs.transl[[5]])
    with pytest.raises(ShapeError, match="idx out of range"):
        gs.subset([6])
    both = GraspSet.concat([gs.subset([0, 1]), gs.subset([2, 3, 4, 5])])
    for name in ("hand_pose", "hand_vertices", "loss_traces", "reference_index"):
        np.testing.assert_array_equal(getattr(both, name), getattr(gs, name))
    assert both.object_ids == gs.object_ids and both.metadata == gs.metadata and both.attrs == gs.attrs
    with pytest.raises(ShapeError, match="optional fields"):
        GraspSet.concat([gs, gs.replace(loss_traces=None)])
    with pytest.raises(ShapeError, match="set 1 has hand"):
        GraspSet.concat([gs, gs.replace(side="right")])
    mixed = GraspSet.concat([gs, gs.replace(attrs={"other": 1})])
    assert mixed.attrs == {"concat_of": [gs.attrs, {"other": 1}]}


def test_hand_and_object_tensors(objects):
    gs = _full_set(objects)
    t = gs.hand_tensors(dtype=torch.float64)
    assert set(t) >= {"global_orient", "hand_pose", "betas", "transl", "hand_vertices", "hand_contact"}
    assert t["hand_pose"].shape == (N, 45) and t["hand_pose"].dtype == torch.float64
    assert gs.hand_tensors()["transl"].dtype == torch.float32
    box = objects[1]
    world, faces, idx = gs.object_tensors(box.content_hash, dtype=torch.float64)
    np.testing.assert_array_equal(idx.numpy(), [1, 3, 5])
    assert world.shape == (3, box.num_vertices, 3) and faces.shape == (box.num_faces, 3)
    for k, i in enumerate(idx.tolist()):
        ref = box.vertices @ gs.object_rotation[i].T + gs.object_translation[i]
        np.testing.assert_allclose(world[k].numpy(), ref, atol=1e-15)
    assert gs.object_of(1) is box
    groups = gs.object_groups()
    np.testing.assert_array_equal(groups[objects[0].content_hash], [0, 2, 4])
    with pytest.raises(ShapeError, match="not in this set"):
        gs.object_tensors("ffff")


def test_empty_set_round_trip(objects, tmp_path):
    empty = _full_set(objects).subset([])
    assert len(empty) == 0 and empty.objects == {}
    save_grasps(tmp_path / "e.npz", empty)
    back = load_grasps(tmp_path / "e.npz")
    assert len(back) == 0 and back.hand_vertices.shape == (0, V, 3)
    assert back.attrs == {**empty.attrs, "reference": str(tmp_path.resolve() / "gt.npz")}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tensors_on_cuda(objects):
    gs = _full_set(objects)
    t = gs.hand_tensors(device="cuda", dtype=torch.float64)
    assert t["hand_pose"].is_cuda
    np.testing.assert_array_equal(t["hand_pose"].cpu().numpy(), gs.hand_pose)
    world, faces, idx = gs.object_tensors(objects[1].content_hash, device="cuda")
    assert world.is_cuda and faces.is_cuda and idx.is_cuda


def test_relative_reference_is_resolved_beside_the_file(objects, tmp_path, monkeypatch):
    gs = GraspSet.from_arrays(
        hand_model="openhand",
        side="right",
        global_orient=np.zeros((1, 3)),
        hand_pose=np.zeros((1, 45)),
        objects=objects[0],
        num_betas=0,
    )
    (tmp_path / "sets").mkdir()
    save_grasps(tmp_path / "sets" / "noisy.npz", gs.replace(attrs={"reference": "gt.npz"}))
    save_grasps(tmp_path / "sets" / "abs.npz", gs.replace(attrs={"reference": "/data/gt.npz"}))
    monkeypatch.chdir(tmp_path)  # read from another directory than the file's
    assert load_grasps("sets/noisy.npz").attrs["reference"] == str((tmp_path / "sets" / "gt.npz").resolve())
    assert load_grasps("sets/abs.npz").attrs["reference"] == "/data/gt.npz"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("analytic_volume_m3", "abc", "header field 'analytic_volume_m3' must be a number or null, got 'abc'"),
        ("analytic_volume_m3", -1.0, "analytic_volume_m3 must be a positive number"),
        ("is_watertight", "yes", "header field 'is_watertight' must be true or false"),
        ("name", 3, "header field 'name' must be a string"),
        ("primitive", [1], "header field 'primitive' must be an object or null"),
    ],
)
def test_object_header_field_of_the_wrong_type_is_named(saved, tmp_path, field, value, message):
    gs, path = saved
    key = gs.object_ids[0]

    def mutate(header, raw):
        header["objects"][key][field] = value

    with pytest.raises(GraspFileError, match=rf"object {key}: {message}".replace("[", r"\[").replace("(", r"\(")):
        load_grasps(_rewrite(path, tmp_path / "bad.npz", mutate))


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda h: h.update(num_grasps=True), "'num_grasps' must be a count"),
        (lambda h: h.update(object_ids=[[1]] * N), "'object_ids' must list strings"),
        (lambda h: h["attrs"].update(reference=3), r"attrs\['reference'\] must be the path"),
        (lambda h: h["attrs"].update(reference=""), r"attrs\['reference'\] must be the path"),
    ],
)
def test_header_fields_of_the_wrong_type_are_named(saved, tmp_path, mutation, message):
    _, path = saved
    with pytest.raises(GraspFileError, match=message):
        load_grasps(_rewrite(path, tmp_path / "bad.npz", lambda header, raw: mutation(header)))


def test_check_hand_names_the_mismatch(objects):
    gs = _full_set(objects)  # a left "mano" set storing V = 50 vertices per grasp

    class Hand:
        name, side, num_verts, num_betas = "mano", "left", 778, 10

    with pytest.raises(ShapeError, match="hand_vertices stores 50 vertices per grasp but the left mano hand model"):
        gs.check_hand(Hand())
    Hand.side = "right"
    with pytest.raises(ShapeError, match="the grasps are for the left mano hand, got a right mano hand model"):
        gs.check_hand(Hand())
    Hand.side, Hand.num_verts = "left", V
    gs.check_hand(Hand())

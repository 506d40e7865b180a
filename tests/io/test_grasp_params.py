"""The parameter-only grasp file contactkit.grasp_params: exact round trip through the object library, the
synthesiser's derived arrays recomputed value for value, and refusals naming the problem."""

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from contactkit.errors import GraspFileError
from contactkit.hands import load_hand
from contactkit.io import GraspSet, load_grasp_params, load_grasps, read_grasp_params_header, save_grasp_params
from contactkit.io.grasps import save_grasps
from contactkit.objects import load_object
from contactkit.synth.synthesis import SynthesisConfig, synthesize, with_contact_maps

N = 6
SPECS = ("sphere:radius=0.03", "box:extents=0.04/0.05/0.1")
# optimisation-free acceptance (as tests/synth/test_synthesis.py's FAST): exercises the output, not the quality
FAST = SynthesisConfig(batch_size=2, iterations=3, simulate=False, min_fingers=0, require_opposition=False,
                       min_coverage=0.0, max_penetration_m=1.0, max_intersection_m3=1.0, n_object_points=32,
                       sdf_resolution=24)
DERIVED = ("hand_vertices", "hand_contact", "object_points", "object_contact")


def _rotations(n, rng):
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    return q * np.sign(np.linalg.det(q))[:, None, None]


@pytest.fixture(scope="module")
def grasps_and_specs():
    rng = np.random.default_rng(0)
    objs = [load_object(s) for s in SPECS]
    pick = [i % 2 for i in range(N)]
    g = GraspSet(
        hand_model="mano",
        side="left",
        # float32 values (as a float32 optimiser gives them): stored as float32, read back bit for bit
        global_orient=rng.normal(size=(N, 3)).astype(np.float32).astype(np.float64),
        hand_pose=rng.normal(size=(N, 45)) * 0.3,
        betas=rng.normal(size=(N, 10)),
        transl=rng.normal(size=(N, 3)) * 0.1,
        object_ids=[objs[k].content_hash for k in pick],
        objects={o.content_hash: o for o in objs},
        object_rotation=_rotations(N, rng),
        object_translation=rng.normal(size=(N, 3)) * 0.1,
        hand_contact=rng.random((N, 20)),
        reference_index=np.arange(N, dtype=np.int64)[::-1].copy(),
        metadata=[{"i": i, "tags": ["a"], "score": 0.5 * i} for i in range(N)],
        attrs={"protocol": {"sigma_t_m": 0.05}},
    )
    return g, [SPECS[k] for k in pick]


def _assert_same_grasps(a, b, fields=("global_orient", "hand_pose", "betas", "transl", "object_rotation",
                                      "object_translation", "reference_index")):
    for name in fields:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name
    assert a.object_ids == b.object_ids and sorted(a.objects) == sorted(b.objects)
    for key, obj in a.objects.items():
        assert np.asarray(obj.vertices).tobytes() == np.asarray(b.objects[key].vertices).tobytes()
    assert (a.hand_model, a.side, a.metadata, a.attrs) == (b.hand_model, b.side, b.metadata, b.attrs)


def test_round_trip_is_bit_exact_and_records_what_was_dropped(tmp_path, grasps_and_specs):
    g, specs = grasps_and_specs
    path = tmp_path / "p.npz"
    save_grasp_params(path, g, specs, attrs={"command": "make it"})
    back = load_grasp_params(path)
    _assert_same_grasps(g, back)
    assert back.hand_contact is None  # derived arrays are not stored ...
    header = read_grasp_params_header(path)
    assert header["dropped"] == {"hand_contact": [N, 20]}  # ... but recorded
    assert header["attrs"] == {"command": "make it"} and header["format"] == "contactkit.grasp_params"
    assert [o["spec"] for o in header["objects"]] == list(SPECS)
    with np.load(path, allow_pickle=False) as raw:
        assert raw["global_orient"].dtype == np.float32  # exact in float32: stored narrow
        assert raw["hand_pose"].dtype == np.float64  # not exact: kept float64
        assert not any(k.startswith("objects/") for k in raw.files)  # no mesh in the file


def test_save_refuses_specs_that_do_not_give_the_grasp_objects(tmp_path, grasps_and_specs):
    g, specs = grasps_and_specs
    with pytest.raises(GraspFileError, match=r"grasp 0: object spec 'sphere:radius=0.031' loads .* hashes to"):
        save_grasp_params(tmp_path / "p.npz", g, ["sphere:radius=0.031", *specs[1:]])
    with pytest.raises(GraspFileError, match="names 5 objects, expected one"):
        save_grasp_params(tmp_path / "p.npz", g, ["mug+cracker_box+mustard_bottle+sphere+box", *specs[1:]])
    with pytest.raises(GraspFileError, match="grasp 2: object [0-9a-f]{16} has two specs, 'sphere:radius=0.03' and "
                                             "'sphere:radius=0.030'"):
        save_grasp_params(tmp_path / "p.npz", g, [*specs[:2], "sphere:radius=0.030", *specs[3:]])
    with pytest.raises(GraspFileError, match="must be 6 strings"):
        save_grasp_params(tmp_path / "p.npz", g, specs[:-1])
    assert not (tmp_path / "p.npz").exists()


def _rewrite(src, dst, mutate):
    with np.load(src, allow_pickle=False) as d:
        raw = {k: np.array(d[k]) for k in d.files}
    header = json.loads(str(raw.pop("header")))
    mutate(header, raw)
    np.savez(dst, header=np.asarray(json.dumps(header)), **raw)


@pytest.fixture
def saved(tmp_path, grasps_and_specs):
    g, specs = grasps_and_specs
    save_grasp_params(tmp_path / "p.npz", g, specs)
    return tmp_path / "p.npz"


def _set_spec(h, raw):
    h["objects"][0]["spec"] = "sphere:radius=0.031"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set_spec, r"object 0: spec 'sphere:radius=0.031' now loads geometry hashing to [0-9a-f]{16}, but the "
                    r"grasps were made on geometry hashing to [0-9a-f]{16}"),
        (lambda h, r: r.update(hand_pose=r["hand_pose"][:, :40]), r"hand_pose must have shape \(N, 45\) with N = 6, "
                                                                  r"got \(6, 40\)"),
        (lambda h, r: r.update(transl=r["transl"][:5]), r"transl must have shape \(N, 3\) with N = 6, got \(5, 3\)"),
        (lambda h, r: r.update(object_index=r["object_index"][:, None]), r"object_index must have shape \(N,\)"),
        (lambda h, r: r.update(betas=r["betas"].astype(np.int64)), "'betas' has dtype int64, expected float64 or"),
        (lambda h, r: r["object_index"].__setitem__(3, 2), "grasp 3: object_index 2 is not one of the 2 objects"),
        (lambda h, r: r.pop("object_rotation"), "array 'object_rotation' is missing"),
        (lambda h, r: r.update(hand_vertices=np.zeros((6, 2, 3))), r"unknown arrays \['hand_vertices'\]"),
        (lambda h, r: h.update(version=2), "unsupported contactkit.grasp_params version 2; this contactkit reads"),
        (lambda h, r: h.update(format="contactkit.grasps"), "not a grasp parameter file"),
        (lambda h, r: h.update(units="mm"), "units must be 'm'"),
        (lambda h, r: h.update(num_grasps=True), "header field 'num_grasps' missing or not a int"),
        (lambda h, r: h["objects"][1].update(content_hash="xyz"), "object 1: header entry must be"),
        (lambda h, r: h.update(metadata=h["metadata"][:5]), "header lists 5 metadata entries for 6 grasps"),
        (lambda h, r: r["transl"].__setitem__((2, 0), 250.0), "grasp 2: transl has a coordinate of 250 m"),
    ],
)
def test_malformed_files_are_refused_with_the_reason(tmp_path, saved, mutate, message):
    bad = tmp_path / "bad.npz"
    _rewrite(saved, bad, mutate)
    with pytest.raises(GraspFileError, match=message) as err:
        load_grasp_params(bad)
    assert str(bad) in str(err.value)


def test_truncated_missing_and_pickled_files_are_refused(tmp_path, saved):
    data = saved.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(GraspFileError, match="truncated or corrupt"):
        load_grasp_params(cut)
    with pytest.raises(GraspFileError, match="grasp parameter file not found"):
        load_grasp_params(tmp_path / "absent.npz")
    pickled = tmp_path / "pickled.npz"
    _rewrite(saved, pickled, lambda h, r: r.update(hand_pose=np.array([{"x": 1}] * 6, dtype=object)))
    with pytest.raises(GraspFileError, match="pickled"):
        load_grasp_params(pickled)


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory):
    """Two objects' synthesised grasps (with the synthesiser's hand vertices and contact maps)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sets = [synthesize(s, 2, config=FAST, seed=0, max_batches=1).grasps for s in SPECS]
    return sets


def test_derived_arrays_are_recomputed_value_for_value(tmp_path, synthesised):
    g = GraspSet.concat(synthesised)
    specs = [s for s, part in zip(SPECS, synthesised, strict=True) for _ in range(len(part))]
    save_grasp_params(tmp_path / "p.npz", g, specs)
    assert read_grasp_params_header(tmp_path / "p.npz")["dropped"]["object_points"] == [len(g), 32, 3]
    back = load_grasp_params(tmp_path / "p.npz")
    full = with_contact_maps(back, load_hand(g.hand_model, g.side), n_object_points=32)
    _assert_same_grasps(g, full, fields=("global_orient", "hand_pose", "betas", "transl", *DERIVED))


def _script():
    path = Path(__file__).resolve().parents[2] / "scripts" / "jointdiffusion_grasps.py"
    spec = importlib.util.spec_from_file_location("jointdiffusion_grasps_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_unpack_gives_the_build_files(tmp_path):
    """A build folder of random-urdfs grasps (one object skipped) packs and unpacks to the concatenated set."""
    pytest.importorskip("pybullet_data", reason="pybullet (contactkit[objects]) is not installed")
    from contactkit.objects.library import check_object, resolve_objects

    build = tmp_path / "build"
    (build / "objects").mkdir(parents=True)
    sets = []
    for k in (1, 2):
        mesh, _ = check_object(resolve_objects(f"random-urdfs:{k}-{k}")[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sets.append(synthesize(mesh, 2, config=FAST, seed=0, max_batches=1).grasps)
        save_grasps(build / "objects" / f"random-urdfs_00{k}.npz", sets[-1])
    (build / "objects" / "random-urdfs_003.none").write_text("object check: not watertight\n")
    script = _script()
    sizes = script.pack([build], tmp_path / "p.npz", "pack build")
    assert sizes == {"grasps": 4, "objects": 2, "skipped": 1}
    attrs = read_grasp_params_header(tmp_path / "p.npz")["attrs"]
    assert attrs["skipped"] == {"random-urdfs/003": "object check: not watertight"}
    assert attrs["builds"] == [{"folder": str(build), "complete": False, "split": None}]
    out = tmp_path / "unpacked"
    assert script.unpack([tmp_path / "p.npz"], out, copies=2, seed=0) == {"grasps": 4, "noisy": 8}
    gt = load_grasps(out / "gt_test.npz")
    _assert_same_grasps(GraspSet.concat(sets), gt, fields=("global_orient", "hand_pose", "betas", "transl", *DERIVED))
    noisy = load_grasps(out / "noisy_test.npz")
    assert noisy.attrs["reference"] == str((out / "gt_test.npz").resolve())
    np.testing.assert_array_equal(noisy.reference_index, np.repeat(np.arange(4), 2))

    # a set built in two parts (two sessions) unpacks to the same grasps; parts sharing an object are refused
    for k in (1, 2):
        part = tmp_path / f"part{k}"
        (part / "objects").mkdir(parents=True)
        save_grasps(part / "objects" / f"random-urdfs_00{k}.npz", sets[k - 1])
        script.pack([part], tmp_path / f"p{k}.npz", f"pack part{k}")
    assert script.unpack([tmp_path / "p1.npz", tmp_path / "p2.npz"], tmp_path / "two", copies=0, seed=0) == {
        "grasps": 4}
    _assert_same_grasps(gt, load_grasps(tmp_path / "two" / "gt_test.npz"),
                        fields=("global_orient", "hand_pose", "betas", "transl", *DERIVED))
    with pytest.raises(SystemExit, match="disjoint objects"):
        script.unpack([tmp_path / "p.npz", tmp_path / "p2.npz"], tmp_path / "overlap", copies=0, seed=0)

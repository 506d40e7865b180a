"""Benchmark set (splits, manifest, identical rebuild) and the perturb / convert / synth CLI commands."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import trimesh

from contactkit.cli.main import main
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps
from contactkit.objects import load_object
from contactkit.synth.benchmark import benchmark_objects, build_benchmark_set, split_by_grasp, split_by_object
from contactkit.synth.synthesis import SynthesisConfig

FAST = SynthesisConfig(batch_size=2, iterations=3, simulate=False, min_fingers=0, require_opposition=False,
                       min_coverage=0.0, max_penetration_m=1.0,
                       max_intersection_m3=1.0, n_object_points=16, sdf_resolution=16)
OBJECTS = ["box", "sphere:radius=0.03", "cylinder", "capsule"]


def test_splits_are_disjoint_and_complete():
    s = split_by_object(["a", "b", "c", "d", "e", "f", "g"], 0)
    allv = s["train"] + s["val"] + s["test"]
    assert sorted(allv) == list("abcdefg") and len(s["test"]) == 1 and len(s["val"]) == 1
    g = split_by_grasp(20, 1)
    assert sorted(np.concatenate(list(g.values())).tolist()) == list(range(20))
    assert (len(g["train"]), len(g["val"]), len(g["test"])) == (16, 2, 2)
    assert split_by_object(["a", "b", "c"], 5) == split_by_object(["c", "b", "a"], 5)


def test_benchmark_objects_include_bundled_and_dedupe_shared(tmp_path):
    trimesh.creation.box(extents=(0.05, 0.05, 0.05)).export(tmp_path / "003_cracker_box.obj")
    trimesh.creation.box(extents=(0.05, 0.05, 0.05)).export(tmp_path / "061_foam_brick.obj")
    names = [n for n, _ in benchmark_objects(tmp_path)]
    assert "mug" in names and "foam_brick" in names and names.count("cracker_box") == 1


def test_benchmark_set_builds_and_rebuilds_identically(tmp_path):
    m1 = build_benchmark_set(tmp_path / "a", objects=OBJECTS, grasps_per_object=3, config=FAST, seed=4)
    m2 = build_benchmark_set(tmp_path / "b", objects=OBJECTS, grasps_per_object=3, config=FAST, seed=4)
    assert m1["splits"] == m2["splits"] and m1["objects"] == m2["objects"]
    for part in ("train", "val", "test"):
        a = load_grasps(tmp_path / "a" / "split_grasp" / f"{part}.npz")
        b = load_grasps(tmp_path / "b" / "split_grasp" / f"{part}.npz")
        np.testing.assert_array_equal(a.hand_pose, b.hand_pose)
    test_objects = set(m1["splits"]["object"]["test"])
    train = load_grasps(tmp_path / "a" / "split_object" / "train.npz")
    assert not test_objects & {o.name for o in train.objects.values()}
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 4 and "torch" in manifest["versions"] and manifest["grasps_per_object"] == 3
    # resuming an existing folder reuses the per-object files
    m3 = build_benchmark_set(tmp_path / "a", objects=OBJECTS, grasps_per_object=3, config=FAST, seed=4)
    assert m3["objects"] == m1["objects"]


def test_perturb_cli_links_ground_truth(tmp_path, capsys):
    rng = np.random.default_rng(0)
    g = GraspSet.from_arrays(hand_model="openhand", side="right", global_orient=rng.normal(size=(3, 3)),
                             hand_pose=np.zeros((3, 45)), objects=load_object("box"), num_betas=8)
    save_grasps(tmp_path / "gt.npz", g)
    rc = main(["perturb", str(tmp_path / "gt.npz"), "--protocol", "choir", "--copies", "4", "--seed", "2",
               "--out", str(tmp_path / "p.npz")])
    assert rc == 0
    p = load_grasps(tmp_path / "p.npz")
    assert len(p) == 12 and p.attrs["reference"] == str((tmp_path / "gt.npz").resolve())
    assert p.reference_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    with pytest.raises(SystemExit) as stop:  # refused at the argument, before any work (cli._args)
        main(["perturb", str(tmp_path / "gt.npz"), "--protocol", "choir", "--copies", "0",
              "--out", str(tmp_path / "q.npz")])
    assert stop.value.code == 2
    assert "argument --copies: expected an integer in [1, 1000], got 0" in capsys.readouterr().err


def test_convert_cli_ho3d(tmp_path):
    meta = tmp_path / "HO3D_v2" / "train" / "MC1" / "meta"
    meta.mkdir(parents=True)
    models = tmp_path / "models" / "006_mustard_bottle"
    models.mkdir(parents=True)
    trimesh.creation.box(extents=(0.05, 0.05, 0.1)).export(models / "textured_simple.obj")
    rec = {"handPose": np.zeros(48), "handTrans": np.zeros(3), "handBeta": np.zeros(10),
           "objRot": np.zeros((3, 1)), "objTrans": np.array([0.0, 0.0, 0.5]), "objName": "006_mustard_bottle"}
    (meta / "0000.pkl").write_bytes(pickle.dumps(rec, protocol=2))
    rc = main(["convert", "ho3d", str(tmp_path / "HO3D_v2"), "--models-dir", str(tmp_path / "models"),
               "--out", str(tmp_path / "ho3d.npz")])
    assert rc == 0
    g = load_grasps(tmp_path / "ho3d.npz")
    assert len(g) == 1 and g.hand_model == "mano" and g.object_translation[0, 2] == pytest.approx(0.5)


def test_synth_cli_help_lists_options(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    out = capsys.readouterr().out
    assert "--object" in out and "--workers" in out and "resumes" in out

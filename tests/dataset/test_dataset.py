"""Rendered datasets: a build on objects no other test uses, the sample contract, kill-and-resume, Ray = serial.

The objects are meshes written by this module (a sphere, a box and a cylinder of graspable size); synthesis
runs with a small budget and without the simulation, opposition and coverage checks to keep the suite fast
(the checks themselves are tested in tests/synth)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from contactkit.cli.main import main
from contactkit.dataset import RenderedDataset, build_dataset
from contactkit.dataset.build import assign_splits
from contactkit.errors import ContactkitError
from contactkit.render.mujoco_backend import gl_available

GL_OK, GL_WHY = gl_available()
pytestmark = pytest.mark.skipif(not GL_OK, reason=f"offscreen GL unavailable: {GL_WHY}")

SYNTH = {"batch_size": 8, "iterations": 40, "simulate": False, "sdf_resolution": 32, "require_opposition": False,
         "min_coverage": 0.0}
KW = {"grasps_per_object": 2, "views": 2, "seed": 3, "synthesis": SYNTH, "max_batches": 2,
      "render": {"width": 64, "height": 64}}


@pytest.fixture(scope="module")
def objects_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("unseen_objects")
    trimesh.creation.icosphere(subdivisions=3, radius=0.03).export(d / "ball.obj")
    trimesh.creation.box(extents=(0.04, 0.055, 0.09)).export(d / "brick.obj")
    trimesh.creation.cylinder(radius=0.025, height=0.1, sections=24).export(d / "can.stl")
    return d


@pytest.fixture(scope="module")
def serial(objects_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "ds"
    info = build_dataset(str(objects_dir), out, **KW)
    return out, info


def _arrays(root: Path) -> dict[str, np.ndarray]:
    """Every array of every shard (npz contents and decoded PNGs), keyed by shard/file/name."""
    from PIL import Image

    out = {}
    for shard in sorted((root / "shards").iterdir()):
        for f in sorted(shard.rglob("*")):
            rel = f"{shard.name}/{f.relative_to(shard)}"
            if f.suffix == ".npz":
                with np.load(f, allow_pickle=False) as z:
                    out.update({f"{rel}:{k}": np.array(z[k]) for k in z.files if k != "header"})
            elif f.suffix == ".png":
                out[rel] = np.asarray(Image.open(f))
            elif f.name == "shard.json":
                meta = json.loads(f.read_text())
                meta.pop("seconds")
                out[rel] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    return out


def _assert_same(a: Path, b: Path) -> None:
    xa, xb = _arrays(a), _arrays(b)
    assert sorted(xa) == sorted(xb)
    for k in xa:
        np.testing.assert_array_equal(xa[k], xb[k], err_msg=k)


def test_build_writes_every_split_with_grasps_and_views(serial):
    out, info = serial
    assert info["shards_missing"] == 0 and info["objects_checked_ok"] == 3
    man = json.loads((out / "dataset.json").read_text())
    ids = [o["object_id"] for o in man["objects"]]
    assert {o["object_id"]: o["split"] for o in man["objects"]} == assign_splits(ids, 3)
    assert sorted(o["split"] for o in man["objects"]) == ["test", "train", "val"]
    total = sum(d["grasps"] for d in info["splits"].values())
    assert total >= 3  # the budget accepts grasps on these shapes
    for split, d in info["splits"].items():
        if d["grasps"] == 0:
            continue
        ds = RenderedDataset(out, split)
        assert len(ds) == d["views"] == 2 * len(ds.grasps)
        assert set(ds.grasps.object_ids) == {o["content_hash"] for o in man["objects"] if o["split"] == split}


def test_samples_follow_the_contract_and_project_consistently(serial):
    out, info = serial
    split = next(s for s, d in info["splits"].items() if d["views"])
    ds = RenderedDataset(out, split)
    both = 0
    for i in range(len(ds)):
        s = ds[i]
        assert s["rgb"].shape == (64, 64, 3) and s["rgb"].dtype == np.uint8
        assert s["depth"].dtype == np.float32 and s["hand_mask"].dtype == bool
        for key, shape in (("K", (3, 3)), ("cam_from_world", (4, 4)), ("hand_keypoints_3d", (21, 3)),
                           ("hand_keypoints_2d", (21, 2)), ("object_corners_3d", (8, 3)),
                           ("object_corners_2d", (8, 2))):
            assert s[key].shape == shape and s[key].dtype == np.float32
        p = s["hand_keypoints_3d"].astype(np.float64) @ s["K"].astype(np.float64).T
        assert np.abs(p[:, :2] / p[:, 2:] - s["hand_keypoints_2d"]).max() < 0.5
        q = s["object_corners_3d"].astype(np.float64) @ s["K"].astype(np.float64).T
        assert np.abs(q[:, :2] / q[:, 2:] - s["object_corners_2d"]).max() < 0.5
        assert ((s["depth"] > 0) == (s["hand_mask"] | s["object_mask"])).mean() > 0.995
        assert s["hand_mask"].any() or s["object_mask"].any()  # one may hide the other from some viewpoints
        both += bool(s["hand_mask"].any() and s["object_mask"].any())
        # the stored hand keypoints are the grasp's keypoints moved by the stored extrinsics
        g = ds.grasps.subset([s["grasp_index"]])
        import torch

        from contactkit.hands import load_hand

        hand = load_hand("openhand", "right")
        with torch.no_grad():
            kp = hand(torch.tensor(np.array(g.global_orient), dtype=torch.float32),
                      torch.tensor(np.array(g.hand_pose), dtype=torch.float32), None,
                      torch.tensor(np.array(g.transl), dtype=torch.float32)).keypoints[0].double().numpy()
        T = s["cam_from_world"].astype(np.float64)
        np.testing.assert_allclose(s["hand_keypoints_3d"], kp @ T[:3, :3].T + T[:3, 3], atol=1e-4)
        assert s["object_id"] in {o["object_id"] for o in ds.manifest["objects"]}
    assert both >= 0.5 * len(ds)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_stored_object_corners_are_the_one_object_box(serial):
    """``object_corners_3d/2d`` are contactkit's one object box (objects.library.object_box_corners) posed by the
    grasp's object pose and the view's extrinsics, and projected by ``K``."""
    from contactkit.objects.library import object_box_corners
    from contactkit.vision.data import OneBoxSamples

    out, info = serial
    for split, d in info["splits"].items():
        if not d["views"]:
            continue
        ds = RenderedDataset(out, split)
        rederived = OneBoxSamples(ds)
        for i in range(len(ds)):
            s = ds[i]
            for key in ("object_corners_3d", "object_corners_2d"):  # the re-derivation for older builds agrees
                np.testing.assert_allclose(rederived[i][key], s[key], atol=1e-4)
            g = s["grasp_index"]
            box, _ = object_box_corners(ds.grasps.objects[ds.grasps.object_ids[g]])
            world = box @ np.asarray(ds.grasps.object_rotation[g]).T + np.asarray(ds.grasps.object_translation[g])
            T = s["cam_from_world"].astype(np.float64)
            cam = world @ T[:3, :3].T + T[:3, 3]
            np.testing.assert_allclose(s["object_corners_3d"], cam, atol=1e-5)
            q = cam @ s["K"].astype(np.float64).T
            np.testing.assert_allclose(s["object_corners_2d"], q[:, :2] / q[:, 2:], atol=1e-3)


def test_other_settings_are_refused_and_info_reports(serial, capsys):
    out, _ = serial
    with pytest.raises(ContactkitError, match="other settings"):
        build_dataset(KW and str(out.parent), out, **{**KW, "views": 3})
    assert main(["dataset", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 passed the checks" in text and "0 missing" in text
    with pytest.raises(ContactkitError, match="split"):
        RenderedDataset(out, "validation")  # type: ignore[arg-type]


def test_statistics_agree_with_the_shards(serial, capsys):
    from contactkit.dataset.stats import dataset_statistics

    out, info = serial
    st = dataset_statistics(out)
    kept = st["kept"]
    metas = [json.loads(p.read_text()) for p in sorted((out / "shards").glob("*/shard.json"))]
    assert st["shards"] == len(metas) == 3
    assert kept["grasps"] == sum(m["n_grasps"] for m in metas) == sum(d["grasps"] for d in info["splits"].values())
    assert st["synthesis"]["candidates"] == sum(m["synthesis"]["candidates"] for m in metas)
    assert st["synthesis"]["yield"] == pytest.approx(st["synthesis"]["accepted"] / st["synthesis"]["candidates"])
    assert sum(kept["fingers_in_contact_histogram"]) == kept["grasps"]
    cov = kept["coverage_percent"]
    assert 0.0 <= cov["p10"] <= cov["p50"] <= cov["p90"] <= 100.0
    assert main(["dataset", "info", str(out), "--stats"]) == 0
    assert "kept grasps: " in capsys.readouterr().out


def test_killed_build_resumes_with_nothing_lost_or_duplicated(objects_dir, serial, tmp_path):
    out = tmp_path / "ds"
    code = (
        "import sys; from contactkit.dataset import build_dataset; "
        f"build_dataset({str(objects_dir)!r}, {str(out)!r}, **{KW!r})"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-c", code], env=env)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and not (out / "shards" / "00000" / "shard.json").is_file():
            time.sleep(0.05)
            assert proc.poll() is None, "the build finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sorted(p.name for p in (out / "shards").iterdir() if not p.name.startswith("."))
    assert 1 <= len(done) < 3  # killed mid-build
    (out / "shards" / ".tmp-00002-999").mkdir()  # what a kill during a shard's write leaves
    info = build_dataset(str(objects_dir), out, **KW)
    assert info["built_this_run"] == 3 - len(done) and info["shards_missing"] == 0
    assert not list((out / "shards").glob(".tmp-*"))
    _assert_same(out, serial[0])


@pytest.mark.slow
def test_ray_with_two_workers_builds_the_same_dataset(objects_dir, serial, tmp_path, ray_local):
    out = tmp_path / "ds"
    info = build_dataset(str(objects_dir), out, use_ray=True, workers=2, **KW)
    assert info["built_this_run"] == 3
    _assert_same(out, serial[0])


def test_an_object_that_breaks_synthesis_becomes_an_empty_shard_with_its_reason(objects_dir, monkeypatch):
    import contactkit.synth.synthesis as synthesis
    from contactkit.dataset.shard import ShardTask, make_shard

    def broken(*args, **kwargs):
        raise ValueError("mesh 'o15' has coplanar vertices")

    monkeypatch.setattr(synthesis, "synthesize", broken)
    task = ShardTask(index=0, object_id=f"file/{objects_dir / 'ball.obj'}", object_spec=str(objects_dir / "ball.obj"),
                     split="train", seed=1, grasps=1, views=1)
    res = make_shard(task)
    assert res["files"] == {} and res["meta"]["n_grasps"] == 0
    assert res["meta"]["reason"] == "synthesis failed: ValueError: mesh 'o15' has coplanar vertices"

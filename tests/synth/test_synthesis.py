"""Grasp synthesis: accepted grasps re-measured by the metrics code, resumability, determinism, diversity."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from contactkit.errors import ContactkitError
from contactkit.hands import load_hand
from contactkit.io.grasps import load_grasps
from contactkit.metrics.contact import hand_contact_mask
from contactkit.metrics.intersection import intersection_volume
from contactkit.metrics.penetration import penetration_depth
from contactkit.metrics.simulation import simulation_displacement
from contactkit.synth.synthesis import SynthesisConfig, _finger_vertex_groups, diversity, synthesize

# optimisation-free acceptance: exercises batching and files only
FAST = SynthesisConfig(batch_size=2, iterations=3, simulate=False, min_fingers=0, require_opposition=False,
                       min_coverage=0.0, max_penetration_m=1.0,
                       max_intersection_m3=1.0, n_object_points=32, sdf_resolution=24)


@pytest.fixture(scope="module")
def sphere_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "sphere.npz"
    cfg = SynthesisConfig(batch_size=8, iterations=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = synthesize("sphere:radius=0.04", 2, config=cfg, out=out, seed=0)
    return res, out, cfg


def test_accepted_grasps_pass_thresholds_when_remeasured(sphere_run):
    res, out, cfg = sphere_run
    g = load_grasps(out)
    assert len(g) == 2 and g.hand_contact is not None and g.object_contact is not None
    hand = load_hand("openhand")
    obj = g.objects[g.object_ids[0]]
    verts = g.hand_vertices
    assert np.all(penetration_depth(verts, obj.vertices, obj.faces) <= cfg.max_penetration_m)
    closed = hand.closed_faces.numpy()
    vol = intersection_volume(verts, closed, obj.vertices, obj.faces).volume_m3
    assert np.all(vol <= cfg.max_intersection_m3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        disp = simulation_displacement(verts, closed, obj.vertices, obj.faces)
    assert np.all(disp <= cfg.max_displacement_m)
    mask = hand_contact_mask(verts, obj.vertices, obj.faces)
    groups = _finger_vertex_groups(hand)
    for i in range(len(g)):
        touching = [f for f, idx in groups.items() if mask[i, idx].any()]
        fingers = [f for f in touching if f != "palm"]
        assert "thumb" in fingers and len(fingers) >= 2  # fingers, not only the palm, touch
        assert len(fingers) >= 3 or "palm" in touching  # opposition: thumb against two fingers or the palm
        assert mask[i].mean() >= cfg.min_coverage
    # ranked by the quality measure, recorded per grasp
    batches = [m["synthesis"]["batch"] for m in g.metadata]
    assert batches == sorted(batches)
    for b in set(batches):  # ranked within each batch
        eps = [m["synthesis"]["epsilon"] for m in g.metadata if m["synthesis"]["batch"] == b]
        assert eps == sorted(eps, reverse=True)
    assert res.stats["accepted"] >= 2 and 0 < res.stats["yield"] <= 1
    assert res.stats["diversity"]["rotation_deg"] > 0


def test_stopping_after_n_accepted_keeps_the_same_grasps(sphere_run):
    """Simulating in epsilon order until ``n`` passed returns the grasps the full check returns, simulating
    fewer candidates."""
    res, _, cfg = sphere_run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = synthesize("sphere:radius=0.04", 2, config=cfg.with_updates(stop_after_accepted=2), seed=0)
    for name in ("global_orient", "hand_pose", "transl", "hand_vertices", "hand_contact", "object_contact"):
        np.testing.assert_array_equal(getattr(short.grasps, name), getattr(res.grasps, name), err_msg=name)
    assert short.stats["accepted"] == 2 <= res.stats["accepted"]
    # every candidate that passed the cheaper checks is accepted, rejected by the simulation or not simulated
    full = res.stats["accepted"] + res.stats["rejected"]["displacement"]
    assert short.stats["accepted"] + short.stats["rejected"]["displacement"] + short.stats["not_simulated"] == full
    assert res.stats["not_simulated"] == 0


def test_resume_after_kill_loses_nothing_and_duplicates_nothing(tmp_path):
    class Killed(Exception):
        pass

    def kill_after_second(b, stats):
        if b == 1:
            raise Killed

    out = tmp_path / "run.npz"
    with pytest.raises(Killed):
        synthesize("box", 6, config=FAST, out=out, seed=3, on_batch=kill_after_second)
    parts = sorted(p.name for p in (tmp_path / "run.npz.parts").glob("batch_*.npz"))
    assert parts == ["batch_000000.npz", "batch_000001.npz"] and not out.exists()
    seen = []
    res = synthesize("box", 6, config=FAST, out=out, seed=3, on_batch=lambda b, s: seen.append(b))
    assert seen == [2]  # finished batches were skipped
    ref = synthesize("box", 6, config=FAST, out=tmp_path / "ref.npz", seed=3)
    g, r = load_grasps(out), ref.grasps
    assert len(g) == 6
    np.testing.assert_array_equal(g.global_orient, r.global_orient)
    np.testing.assert_array_equal(g.transl, r.transl)
    keys = [(m["synthesis"]["batch"], m["synthesis"]["candidate"]) for m in g.metadata]
    assert len(set(keys)) == 6
    assert res.stats["candidates"] == 6


def test_resume_refuses_other_settings(tmp_path):
    out = tmp_path / "run.npz"
    synthesize("box", 1, config=FAST, out=out, seed=0)
    with pytest.raises(ContactkitError, match="different settings"):
        synthesize("box", 1, config=FAST.with_updates(iterations=4), out=out, seed=0)


def test_config_rejects_unknown_keys_and_bad_n():
    with pytest.raises(ContactkitError, match=r"unknown synthesis setting\(s\) \['iters'\]"):
        SynthesisConfig().with_updates(iters=3)
    with pytest.raises(ContactkitError, match="n must be an integer >= 1"):
        synthesize("box", 0, config=FAST)


def test_diversity_of_identical_and_distinct_grasps(sphere_run):
    g = sphere_run[0].grasps
    same = g.subset([0, 0])
    d = diversity(same)
    assert d["rotation_deg"] == pytest.approx(0.0, abs=1e-4) and d["translation_cm"] == 0.0
    assert diversity(g)["rotation_deg"] > 1.0
    manifest = json.loads((sphere_run[1].parent / "sphere.npz.parts" / "run.json").read_text())
    assert manifest["seed"] == 0 and manifest["config"]["batch_size"] == 8


@pytest.mark.slow
def test_ray_batches_give_the_serial_result(tmp_path, ray_local, one_torch_thread):
    cfg = FAST.with_updates(batch_size=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = synthesize("sphere:radius=0.04", 5, config=cfg, seed=4).grasps
        on_ray = synthesize("sphere:radius=0.04", 5, config=cfg, seed=4, ray="", workers=2,
                            out=tmp_path / "ray.npz").grasps
    assert len(serial) == len(on_ray) == 5
    for name in ("global_orient", "hand_pose", "transl", "hand_vertices", "hand_contact"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(on_ray, name), err_msg=name)
    assert (tmp_path / "ray.npz.parts" / "batch_000000.json").is_file()


def test_no_accepted_grasp_names_the_checks_that_rejected_every_candidate():
    """With coverage above 100 % nothing can pass: the error counts every candidate under the check it failed."""
    cfg = FAST.with_updates(min_coverage=1.01)
    with warnings.catch_warnings(), pytest.raises(ContactkitError) as err:
        warnings.simplefilter("ignore")
        synthesize("sphere:radius=0.04", 1, config=cfg, seed=0, max_batches=2)
    counts = dict(re.findall(r"(\w+) (\d+)", str(err.value).split("first failed check: ")[1].split(")")[0]))
    assert counts == {"coverage": "4"}, str(err.value)  # 2 batches x 2 candidates, all past the earlier checks

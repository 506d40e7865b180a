import json

import numpy as np
import pytest
import torch
from metric_meshes import random_rigid

from contactkit.cli.main import main as cli_main
from contactkit.errors import ContactkitError
from contactkit.hands import load_hand
from contactkit.io.grasps import GraspSet, save_grasps
from contactkit.metrics.evaluate import PosedGrasps, evaluate, evaluate_posed
from contactkit.metrics.registry import METRICS, resolve_metrics
from contactkit.objects.primitives import make_primitive

NON_SIM = [m for m in METRICS if not m.startswith("simulation")]


@pytest.fixture(scope="module")
def hand():
    return load_hand("openhand")


@pytest.fixture(scope="module")
def grasps(hand):
    """Three grasps of a sphere pressed into the palm side of a flat hand, at three depths."""
    obj = make_primitive("sphere", radius=0.04)
    n = 3
    with torch.no_grad():
        out = hand(torch.zeros(1, 3, dtype=torch.float32), torch.zeros(1, 45))
    verts = out.vertices[0].double().numpy()
    palm = torch.as_tensor(hand.annotations.palm_normal).numpy()
    centre = verts.mean(0) + palm * (0.04 + np.array([0.0, 0.01, 0.02]))[:, None] * 0.6
    return GraspSet.from_arrays(
        hand_model="openhand",
        side="right",
        global_orient=np.zeros((n, 3)),
        hand_pose=np.zeros((n, 45)),
        objects=obj,
        object_translation=centre,
    )


def test_reference_against_itself_is_perfect(grasps, hand):
    ev = evaluate(grasps, grasps, NON_SIM, hand=hand)
    for m in ("mpjpe_mm", "r_mpjpe_mm", "pa_mpjpe_mm", "mpvpe_mm", "object_mpvpe_mm", "chamfer_mm"):
        assert ev[m].mean == pytest.approx(0.0, abs=1e-6), m
    for m in ("contact_f1_pct", "contact_precision_pct", "contact_recall_pct", "object_contact_f1_pct"):
        np.testing.assert_allclose(ev[m].values, 100.0)
    assert ev["pck_3d_auc"].mean == pytest.approx(1.0)
    assert np.all(ev["contact_coverage_pct"].values > 0)
    assert np.all(ev["intersection_volume_cm3"].values > 0) and not ev["intersection_volume_cm3"].fallback.any()
    assert np.all(np.diff(ev["penetration_depth_mm"].values) < 0)  # deeper sphere first
    assert ev["intersection_volume_cm3"].unit == "cm3" and ev["penetration_depth_mm"].unit == "mm"
    # the voxel variants stay near the exact value
    exact = ev["intersection_volume_cm3"].values
    np.testing.assert_allclose(ev["intersection_volume_voxel2mm_choir"].values, exact, rtol=0.25)
    np.testing.assert_allclose(ev["solid_intersection_volume_cpf"].values, exact, rtol=0.25)


def test_evaluate_matches_the_pure_functions(grasps, hand):
    """evaluate skips exact distances far from the object; the values must equal the exact pure functions."""
    from contactkit.metrics import contact, penetration

    ev = evaluate(grasps, None, ["penetration_depth_mm", "contact_coverage_pct", "disjointedness_mm"], hand=hand)
    with torch.no_grad():
        hv = hand(torch.zeros(3, 3), torch.zeros(3, 45)).vertices.double().numpy()
    obj = grasps.objects[grasps.object_ids[0]]
    ov = obj.vertices + grasps.object_translation[:, None, :]
    regions = [np.nonzero(hand.annotations.region_of_vertex == r)[0] for r in hand.annotations.fingertip_regions]
    np.testing.assert_allclose(
        ev["penetration_depth_mm"].values, penetration.penetration_depth(hv, ov, obj.faces) * 1e3
    )
    np.testing.assert_allclose(
        ev["disjointedness_mm"].values, penetration.disjointedness(hv, ov, obj.faces, regions) * 1e3, atol=1e-9
    )
    cov = contact.contact_coverage(contact.hand_contact_mask(hv, ov, obj.faces)) * 100
    np.testing.assert_allclose(ev["contact_coverage_pct"].values, cov)


def test_perturbed_set_finds_its_reference_and_json_round_trip(grasps, hand, tmp_path):
    gt_path = tmp_path / "gt.npz"
    save_grasps(gt_path, grasps)
    moved = grasps.subset([2, 0]).replace(
        transl=grasps.transl[[2, 0]] + [0.003, 0.004, 0.0],
        attrs={"reference": str(gt_path)},
        reference_index=np.array([2, 0]),
    )
    ev = evaluate(moved, metrics=["pose", "contact_coverage_pct"], hand=hand)
    assert ev.reference == str(gt_path)
    np.testing.assert_allclose(ev["mpjpe_mm"].values, 5.0, atol=1e-6)
    np.testing.assert_allclose(ev["r_mpjpe_mm"].values, 0.0, atol=1e-6)
    data = json.loads(ev.to_json(tmp_path / "out.json"))
    assert data == json.loads((tmp_path / "out.json").read_text())
    assert data["metrics"]["mpjpe_mm"]["unit"] == "mm" and len(data["metrics"]["mpjpe_mm"]["values"]) == 2
    assert "mean_curve" in data["metrics"]["pck_3d_auc"]["extra"]
    assert "mpjpe_mm" in ev.table() and "±" in ev.table()


def test_metrics_invariant_under_common_rigid_motion(grasps, hand):
    ev = evaluate(grasps, None, [m for m in NON_SIM if not METRICS[m].needs_reference], hand=hand)
    with torch.no_grad():
        out = hand(torch.zeros(3, 3), torch.zeros(3, 45))
    obj = grasps.objects[grasps.object_ids[0]]
    rot, t = random_rigid(9)
    base = dict(
        hand_faces=hand.closed_faces.numpy(),
        object_ids=list(grasps.object_ids),
        objects={grasps.object_ids[0]: (obj.vertices, obj.faces)},
        fingertip_regions=[
            np.nonzero(hand.annotations.region_of_vertex == r)[0] for r in hand.annotations.fingertip_regions
        ],
    )
    hv, kp = out.vertices.double().numpy(), out.keypoints.double().numpy()
    moved = PosedGrasps(
        hand_verts=hv @ rot.T + t,
        keypoints=kp @ rot.T + t,
        object_rotation=np.stack([rot] * 3),
        object_translation=grasps.object_translation @ rot.T + t,
        **base,
    )
    ev2 = evaluate_posed(moved, None, list(ev.results))
    for name in ev.results:
        np.testing.assert_allclose(ev2[name].values, ev[name].values, rtol=1e-6, atol=1e-6, err_msg=name)


def _shallower(grasps, hand, i, metres):
    """Grasp ``i`` with its object moved ``metres`` farther out of the palm."""
    g = grasps.subset([i])
    return g.replace(object_translation=g.object_translation + metres * np.asarray(hand.annotations.palm_normal))


def test_simulation_metric_runs_through_evaluate(grasps, hand):
    ev = evaluate(_shallower(grasps, hand, 2, 0.005), None, ["simulation_displacement_cm_obman"], hand=hand)
    assert ev["simulation_displacement_cm_obman"].unit == "cm"
    assert np.all(np.isfinite(ev["simulation_displacement_cm_obman"].values))
    assert ev["simulation_displacement_cm_obman"].extra["protocol"]["n_steps"] == 35
    assert ev["simulation_displacement_cm_obman"].extra["not_simulable"] == 0


def test_dropped_samples_counted_in_the_output(grasps, hand):
    # the deepest sphere (about 21 mm into the palm) is not simulated: NaN, excluded from the mean, and counted
    both = GraspSet.concat([grasps.subset([0]), _shallower(grasps, hand, 2, 0.005)])
    ev = evaluate(both, None, ["simulation_displacement_cm", "penetration_depth_mm"], hand=hand)
    r = ev["simulation_displacement_cm"]
    assert ev["penetration_depth_mm"].values[0] > 10.0
    assert np.isnan(r.values[0]) and np.isfinite(r.values[1]) and r.count == 1
    assert r.mean == pytest.approx(r.values[1])
    assert r.extra["not_simulable"] == 1 and "mm deep" in r.extra["not_simulable_reasons"]["0"]
    assert "(1 not simulable)" in ev.table()
    d = ev.to_dict()["metrics"]["simulation_displacement_cm"]
    assert d["not_computed"] == 1 and d["values"][0] is None


@pytest.mark.slow
def test_simulations_on_ray_give_the_serial_result(grasps, hand, ray_local):
    """``evaluate(..., ray="")``: the MuJoCo runs are tasks of a 2-CPU Ray; values and extras are the serial ones."""
    both = GraspSet.concat([_shallower(grasps, hand, 2, 0.005), _shallower(grasps, hand, 2, 0.006)])
    names = ["simulation_displacement_cm_obman", "penetration_depth_mm"]
    serial = evaluate(both, None, names, hand=hand).to_dict()
    on_ray = evaluate(both, None, names, hand=hand, ray="", workers=2).to_dict()
    assert on_ray == serial


def test_cli_prints_table_and_writes_json(grasps, tmp_path, capsys):
    path = tmp_path / "g.npz"
    save_grasps(path, grasps)
    rc = cli_main(
        [
            "evaluate",
            str(path),
            "--reference",
            str(path),
            "--metrics",
            "mpjpe_mm",
            "contact_f1_pct",
            "--json",
            str(tmp_path / "e.json"),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "mpjpe_mm" in printed and "0.000 ± 0.000" in printed
    assert json.loads((tmp_path / "e.json").read_text())["metrics"]["contact_f1_pct"]["mean"] == 100.0
    assert cli_main(["evaluate", str(path), "--metrics", "mpjpe_mm"]) == 2
    assert "needs a reference" in capsys.readouterr().err


def test_cli_keeps_every_metrics_value_repeated_or_comma_separated(grasps, tmp_path, capsys):
    path = tmp_path / "g.npz"
    save_grasps(path, grasps)
    out = tmp_path / "e.json"
    rc = cli_main(["evaluate", str(path), "--reference", str(path), "--metrics", "mpjpe_mm,contact_f1_pct",
                   "--metrics", "penetration_depth_mm", "mpjpe_mm", "--json", str(out)])
    assert rc == 0
    assert list(json.loads(out.read_text())["metrics"]) == ["mpjpe_mm", "contact_f1_pct", "penetration_depth_mm"]
    assert cli_main(["evaluate", str(path), "--metrics", " , "]) == 2
    assert "names no metric" in capsys.readouterr().err


def test_metric_selection_errors():
    with pytest.raises(ContactkitError, match="unknown metric 'iou'"):
        resolve_metrics(["iou"], has_reference=True)
    with pytest.raises(ContactkitError, match="needs a reference"):
        resolve_metrics(["mpjpe_mm"], has_reference=False)
    assert "mpjpe_mm" not in resolve_metrics(None, has_reference=False)
    assert "intersection_volume_voxel5mm_obman" in resolve_metrics(["all"], has_reference=False)
    assert resolve_metrics(["physics"], has_reference=False)[0] == "penetration_depth_mm"


def test_cached_reference_gives_fresh_results_and_respects_new_contact_maps(grasps, hand):
    """The reference's geometry is cached across calls; every value must equal a cold evaluation, and a reference
    with the same geometry but other stored contact maps must use its own maps."""
    import importlib

    ev_mod = importlib.import_module("contactkit.metrics.evaluate")  # the package re-exports the function
    metrics = ["contact_f1_pct", "object_contact_f1_pct", "penetration_depth_mm"]
    moved = grasps.replace(transl=grasps.transl + np.array([0.0, 0.0, 0.002]))
    ev_mod._REFERENCE_CONTEXTS.clear()
    cold = evaluate(moved, grasps, metrics, hand=hand)
    assert len(ev_mod._REFERENCE_CONTEXTS) == 1
    warm = evaluate(moved, grasps, metrics, hand=hand)
    assert len(ev_mod._REFERENCE_CONTEXTS) == 1  # hit, not a second entry
    for m in metrics:
        np.testing.assert_array_equal(warm[m].values, cold[m].values)
    assert not np.allclose(cold["contact_f1_pct"].values, 100.0)  # the moved hand differs from the reference
    # a reference whose hand moved is another entry with other values
    other = evaluate(moved, moved, metrics, hand=hand)
    assert len(ev_mod._REFERENCE_CONTEXTS) == 2
    np.testing.assert_allclose(other["contact_f1_pct"].values, 100.0)
    # stored hand contact maps (all zero) on the cached geometry are read from the new reference
    empty = grasps.replace(hand_contact=np.zeros((len(grasps), hand.num_verts)))
    with_maps = evaluate(moved, empty, ["contact_recall_pct"], hand=hand, reference_contact="stored")
    np.testing.assert_allclose(with_maps["contact_recall_pct"].values, 100.0)  # empty reference: recall 1


def _ellipsoid_and_flat_hand(hand):
    """A closed 4 x 3 x 6 cm ellipsoid (vertices, faces) and the flat hand at the origin: vertices, keypoints, palm
    normal and the vertices of each fingertip region."""
    import trimesh

    ell = trimesh.creation.icosphere(subdivisions=3)
    ell.apply_scale([0.04, 0.03, 0.06])
    ov, of = np.asarray(ell.vertices), np.asarray(ell.faces, dtype=np.int64)
    with torch.no_grad():
        out = hand(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 45, dtype=torch.float64))
    palm = np.asarray(hand.annotations.palm_normal)
    regions = [np.nonzero(hand.annotations.region_of_vertex == r)[0] for r in hand.annotations.fingertip_regions]
    return ov, of, out.vertices[0].numpy(), out.keypoints[0].numpy(), palm, regions


def _poses_around_the_hand(hv, palm, n, seed, reach, jitter):
    """``n`` seeded object poses near the flat hand: random rotations (N, 3, 3) and centres (N, 3), metres — the
    hand's centroid moved along the palm normal by a uniform draw in ``reach`` (lo, hi) plus Gaussian ``jitter``."""
    rng = np.random.default_rng(seed)
    rot = np.stack([random_rigid(int(s))[0] for s in rng.integers(0, 1000, n)])
    centre = hv.mean(0) + palm * rng.uniform(*reach, (n, 1)) + rng.normal(0, jitter, (n, 3))
    return rot, centre


def _flat_hands_posed(hand, hv, kp, regions, rot, centre, objects, object_ids):
    """PosedGrasps of the flat hand ``hv`` (V, 3) / ``kp`` repeated for every object pose ``rot`` (N, 3, 3),
    ``centre`` (N, 3) of :func:`_poses_around_the_hand`, against ``objects`` by ``object_ids`` (N,)."""
    n = len(rot)
    return PosedGrasps(
        hand_verts=np.repeat(hv[None], n, 0), keypoints=np.repeat(kp[None], n, 0),
        hand_faces=hand.closed_faces.numpy(), object_ids=list(object_ids), objects=objects,
        object_rotation=rot, object_translation=centre, fingertip_regions=regions,
    )  # fmt: skip


def test_evaluate_skipped_distances_never_change_a_value(hand):
    """evaluate bounds the distances of far or fingertip vertices (object-side grid, nearest-vertex bounds) instead
    of computing them; over random poses around a closed ellipsoid, penetration, coverage, disjointedness and the
    object-side contact must equal the exact pure functions."""
    from contactkit.metrics import contact, penetration

    ov, of, hv, kp, palm, regions = _ellipsoid_and_flat_hand(hand)
    n = 6
    rot, centre = _poses_around_the_hand(hv, palm, n, 11, (0.02, 0.04), 0.01)
    g = _flat_hands_posed(hand, hv, kp, regions, rot, centre, {"e": (ov, of)}, ["e"] * n)
    ev = evaluate_posed(g, None, ["penetration_depth_mm", "contact_coverage_pct", "disjointedness_mm"])
    world = np.einsum("nij,vj->nvi", rot, ov) + centre[:, None]
    sd = np.stack([penetration.hand_signed_distances(hv[None], world[i], of)[0] for i in range(n)])
    assert (sd.min(1) < 0).any() and (np.abs(sd) <= 0.002).any()  # the poses touch and penetrate
    np.testing.assert_allclose(ev["penetration_depth_mm"].values, penetration.penetration_depth_from_sd(sd) * 1e3)
    np.testing.assert_allclose(ev["contact_coverage_pct"].values, contact.contact_coverage(np.abs(sd) <= 0.002) * 100)
    np.testing.assert_allclose(
        ev["disjointedness_mm"].values, penetration.disjointedness_from_sd(sd, regions) * 1e3, atol=1e-9
    )


def test_reordered_reference_is_paired_through_reference_index(grasps, hand, tmp_path):
    # regression: a perturbed set whose rows are in another order than its ground truth (same count) must be
    # scored against each row's own ground truth (reference_index), not the reference's row i
    gt = grasps.replace(transl=np.array([[0.0, 0, 0], [0.02, 0, 0], [0.0, 0.04, 0]]))  # three distinct hands
    gt_path = tmp_path / "gt.npz"
    save_grasps(gt_path, gt)
    noisy = gt.replace(  # each hand 1 mm off its ground truth along x, y and z: MPJPE sqrt(3) mm
        transl=gt.transl + 0.001, attrs={"reference": str(gt_path)}, reference_index=np.arange(3)
    )
    swapped = noisy.subset([1, 0, 2])
    assert swapped.reference_index.tolist() == [1, 0, 2]
    ev = evaluate(noisy, None, ["mpjpe_mm"], hand=hand)
    ev_swapped = evaluate(swapped, None, ["mpjpe_mm"], hand=hand)
    np.testing.assert_allclose(ev["mpjpe_mm"].values, np.sqrt(3.0), rtol=1e-9)
    np.testing.assert_allclose(ev_swapped["mpjpe_mm"].values, np.sqrt(3.0), rtol=1e-9)
    # pairing row i with reference row i instead would score the set against other grasps' poses
    wrong = evaluate(swapped.replace(reference_index=None), None, ["mpjpe_mm"], hand=hand)
    assert wrong["mpjpe_mm"].values[0] > ev_swapped["mpjpe_mm"].values[0] + 10.0


def test_references_that_do_not_resolve_or_do_not_match_are_errors(grasps, hand, tmp_path):
    with pytest.raises(ContactkitError, match="which does not exist"):
        evaluate(grasps.replace(attrs={"reference": str(tmp_path / "nowhere.npz")}), None, ["mpjpe_mm"], hand=hand)
    other = GraspSet.from_arrays(
        hand_model="openhand",
        side="right",
        global_orient=np.zeros((3, 3)),
        hand_pose=np.zeros((3, 45)),
        objects=make_primitive("box", extents=[0.05, 0.05, 0.05]),
    )
    save_grasps(tmp_path / "other.npz", other)
    with pytest.raises(ContactkitError, match="does not match the set: no grasp holds the same object"):
        evaluate(grasps.replace(attrs={"reference": str(tmp_path / "other.npz")}), None, ["mpjpe_mm"], hand=hand)
    with pytest.warns(UserWarning, match="does not match the set"):
        evaluate(grasps, other, ["mpjpe_mm"], hand=hand)
    left = other.replace(side="left")
    with pytest.raises(ContactkitError, match="holds left openhand grasps, the set right openhand grasps"):
        evaluate(grasps, left, ["mpjpe_mm"], hand=hand)
    with pytest.raises(ContactkitError, match="reference must be a GraspSet or a path"):
        evaluate(grasps, 3, ["mpjpe_mm"], hand=hand)


def test_empty_sets_and_foreign_hand_vertices_are_named(grasps, hand):
    with pytest.raises(ContactkitError, match="the grasp set is empty"):
        evaluate(grasps.subset([]), None, hand=hand)
    wrong = grasps.replace(hand_vertices=np.zeros((len(grasps), 778, 3)))
    with pytest.raises(ContactkitError, match="hand_vertices stores 778 vertices per grasp but the right openhand"):
        evaluate(wrong, None, ["penetration_depth_mm"], hand=hand)


def _hand_sd_per_grasp(ctx):
    """The naive twin of ``_Context.hand_sd``: the same bounds and exact queries, one grasp at a time."""
    from contactkit.metrics import _geom
    from contactkit.metrics.evaluate import _NV_EPS, _SD_BAND, _region_min

    sd = np.zeros(ctx.hv_obj.shape[:2])
    regions = [np.asarray(r, dtype=np.int64) for r in ctx.g.fingertip_regions or []]
    for key, idx in ctx.groups.items():
        ov, of = ctx.g.objects[key]
        bounds = ctx.bounds(ov, of)
        for i in idx:
            pts = ctx.hv_obj[i]
            bound = bounds.outside_bound(pts)
            need = bound <= _SD_BAND
            if regions:
                every = np.concatenate(regions)
                known_out = bound[every] > 0.0
                lower, d_nv = bound[every], np.full(len(every), np.inf)
                todo = np.ones(len(every), dtype=bool)
                for eps in _NV_EPS:
                    d = bounds.nearest_vertex(pts[every[todo]], eps=eps)
                    d_nv[todo] = np.minimum(d_nv[todo], d)
                    tighter = np.where(known_out[todo], bounds.surface_lower_bound(d, eps), -np.inf)
                    lower[todo] = np.maximum(lower[todo], tighter)
                    todo &= known_out & ~(lower > np.maximum(_SD_BAND, _region_min(d_nv, regions)))
                np.logical_or.at(need, every, ~(lower > np.maximum(_SD_BAND, _region_min(d_nv, regions))))
                bound[every] = lower
            bound[need] = _geom.signed_distance(pts[need], ov, of, index=ctx.index(ov, of))
            sd[i] = bound
    return sd


def test_batched_hand_distances_equal_the_per_grasp_twin_bitwise(hand):
    from contactkit.metrics.evaluate import _Context

    ov, of, hv, kp, palm, regions = _ellipsoid_and_flat_hand(hand)
    regions[1] = np.concatenate([regions[1], regions[0][:3]])  # a vertex in two regions
    n = 7
    rot, centre = _poses_around_the_hand(hv, palm, n, 5, (0.0, 0.04), 0.01)
    objects = {"e": (ov, of), "f": (ov[:, [1, 0, 2]] * 1.2, of[:, [0, 2, 1]])}
    g = _flat_hands_posed(hand, hv, kp, regions, rot, centre, objects, ["e", "f", "e", "e", "f", "e", "f"])
    fast = _Context(g, 64).hand_sd
    naive = _hand_sd_per_grasp(_Context(g, 64))
    assert (fast < 0).any() and (np.abs(fast) <= 0.002).any()
    np.testing.assert_array_equal(fast, naive)


def test_bounded_hand_distances_give_the_values_of_exact_distances_bitwise(hand):
    """``_Context.hand_sd`` computes exactly only what the metrics read (near vertices, each fingertip region's
    candidates for its nearest vertex after the nearest-object-vertex passes) and bounds the rest: penetration,
    contact masks and disjointedness must be bitwise those of exact signed distances at every vertex."""
    from contactkit.metrics import _geom, penetration
    from contactkit.metrics.evaluate import _SD_BAND, _Context

    ov, of, hv, kp, palm, regions = _ellipsoid_and_flat_hand(hand)
    n = 12
    rot, centre = _poses_around_the_hand(hv, palm, n, 19, (0.0, 0.05), 0.015)
    g = _flat_hands_posed(hand, hv, kp, regions, rot, centre, {"e": (ov, of)}, ["e"] * n)
    ctx = _Context(g, 64)
    fast = ctx.hand_sd
    index = ctx.index(*g.objects["e"])
    exact = np.stack([_geom.signed_distance(ctx.hv_obj[i], *g.objects["e"], index=index) for i in range(n)])
    bounded = fast != exact
    every = np.concatenate(regions)
    assert bounded[:, every].sum() > 100 and (exact < 0).any() and (np.abs(exact) <= 0.002).any()
    assert np.all(fast[bounded] <= exact[bounded]) and np.all(fast[bounded] > _SD_BAND)  # true lower bounds
    disj = penetration.disjointedness_from_sd
    assert (disj(exact, regions) > 0.0).sum() > 3  # regions apart from the object, whose minima are read
    np.testing.assert_array_equal(disj(fast, regions), disj(exact, regions))
    depth = penetration.penetration_depth_from_sd
    np.testing.assert_array_equal(depth(fast), depth(exact))
    np.testing.assert_array_equal(np.abs(fast) <= 0.002, np.abs(exact) <= 0.002)
    # a reference's context (contact masks only) skips the fingertip regions: the same masks and depths
    masks_only = _Context(g, 64, fingertips=False).hand_sd
    assert (masks_only != exact).sum() > bounded.sum()  # fewer exact distances
    np.testing.assert_array_equal(np.abs(masks_only) <= 0.002, np.abs(exact) <= 0.002)
    np.testing.assert_array_equal(depth(masks_only), depth(exact))


def test_surface_lower_bound_from_the_nearest_vertex_is_a_bound_and_tight_far_away(hand):
    """``ObjectBounds.surface_lower_bound`` (``sqrt(v^2 - L^2)``) never exceeds the exact distance to the surface,
    near (inside, on and just off the surface, above face centres: the farthest points from the corners) or far,
    for exact and approximate nearest-vertex queries, on the ellipsoid and a regular icosahedron (equilateral
    faces: ``L / 2`` in place of ``L`` would fail there); and it is within a fifth of the longest edge ``L`` of
    the distance 3-10 cm from the ellipsoid (where ``v - L`` is off by about ``L``)."""
    import trimesh

    from contactkit.geometry.mesh_distance import MeshIndex
    from contactkit.metrics import _geom

    ov, of, *_ = _ellipsoid_and_flat_hand(hand)
    ico = trimesh.creation.icosahedron()
    rng = np.random.default_rng(2)
    for verts, faces in ((ov, of), (np.asarray(ico.vertices) * 0.03, np.asarray(ico.faces, dtype=np.int64))):
        index = MeshIndex(verts, faces)
        bounds = _geom.ObjectBounds(verts, faces, index, closed=True, margin=0.0025)
        dirs = rng.normal(size=(4000, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        radius = np.concatenate([rng.uniform(0.0, 0.08, 2000), rng.uniform(0.1, 0.16, 2000)])
        tri = verts[faces]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        above = tri.mean(1) + normal * rng.choice([0.0005, 0.05], len(faces))[:, None]
        pts = np.concatenate([dirs * radius[:, None], above])
        exact = np.sqrt(index.query(pts)[0])
        for eps in (0.0, 0.1, 0.5):
            lower = bounds.surface_lower_bound(bounds.nearest_vertex(pts, eps=eps), eps)
            assert np.all(lower <= exact)
        if verts is ov:  # many edges away (the icosahedron's edges are 3 cm long)
            far = np.concatenate([radius > 0.1, np.zeros(len(faces), dtype=bool)])
            lower = bounds.surface_lower_bound(bounds.nearest_vertex(pts), 0.0)
            assert np.all(exact[far] - lower[far] < 0.2 * bounds.max_edge)


def test_outside_bound_on_coordinate_rows_equals_the_row_wise_twin_bitwise(hand):
    """``ObjectBounds.outside_bound`` (coordinate rows, ``norm3``) against its naive twin on ``(N, 3)`` rows with
    ``np.linalg.norm``: the same values bit for bit, for points inside, near and far from the object (in and out
    of its grid)."""
    from contactkit.geometry.mesh_distance import MeshIndex
    from contactkit.metrics import _arrays, _geom

    ov, of, *_ = _ellipsoid_and_flat_hand(hand)
    b = _geom.ObjectBounds(ov, of, MeshIndex(ov, of), closed=True, margin=0.0025)
    rng = np.random.default_rng(6)
    pts = rng.normal(size=(5000, 3)) * [0.03, 0.025, 0.05]

    def naive(points):
        box = np.linalg.norm(np.maximum(np.maximum(b.lo - points, points - b.hi), 0.0), axis=1)
        out = np.where(box > 0.0, box, -np.inf)
        k = np.rint((points - b.grid_lo) / b.pitch).astype(np.int64)
        on = np.all((k >= 0) & (k < b.shape), axis=1)
        kk = k[on]
        bound = b.sd[kk[:, 0], kk[:, 1], kk[:, 2]] - np.linalg.norm(points[on] - (b.grid_lo + kk * b.pitch), axis=1)
        out[on] = np.maximum(out[on], np.where(bound > 0.0, bound, -np.inf))
        return out

    fast = b.outside_bound(pts)
    assert np.isinf(fast).sum() > 100 and (fast > 0.01).sum() > 100 and ((fast > 0) & (fast < 0.0025)).sum() > 100
    np.testing.assert_array_equal(fast, naive(pts))
    v = rng.normal(size=(1000, 3))
    np.testing.assert_array_equal(_arrays.norm3(*v.T), np.linalg.norm(v, axis=1))


def test_object_frame_equals_the_einsum_twin_bitwise():
    """``PosedGrasps.to_object_frame`` on coordinate planes against its einsum twin: the same values and signs of
    zero, for random rotations, the identity and a permutation, and points at (and signed zeros around) the
    translation."""
    rng = np.random.default_rng(12)
    n = 6
    rot = np.linalg.qr(rng.normal(size=(n, 3, 3)))[0]
    rot[0], rot[1] = np.eye(3), np.eye(3)[[1, 0, 2]]
    transl = rng.normal(size=(n, 3)) * 0.1
    transl[0] = 0.0
    pts = rng.normal(size=(n, 50, 3)) * 0.05
    pts[0, :10], pts[0, 10:20, 1], pts[1, :5] = -0.0, -0.0, transl[1]
    g = PosedGrasps(
        hand_verts=pts, keypoints=pts[:, :21], hand_faces=np.array([[0, 1, 2]]), object_ids=["o"] * n,
        objects={"o": (np.eye(3), np.array([[0, 1, 2]]))}, object_rotation=rot, object_translation=transl,
    )  # fmt: skip
    fast = g.to_object_frame(pts)
    naive = np.einsum("nmj,nji->nmi", pts - transl[:, None, :], rot)
    assert np.array_equal(fast, naive) and np.array_equal(np.signbit(fast), np.signbit(naive))
    assert np.signbit(naive).any() and (naive == 0.0).any()

"""Every named method with oracle targets lowers MPJPE on perturbed synthetic ground-truth grasps (OpenHand),
CHOIR encode -> decode recovers the hand, and the GraspSet API / CLI round trip works."""

import numpy as np
import pytest
import torch
from tests.grasp_fixtures import posed_sphere_grasps

from contactkit.errors import ContactkitError
from contactkit.refine.api import refine, run_method
from contactkit.refine.methods import MethodSpec, get_method, list_methods
from contactkit.targets import HandParamsInit, method_label, objects_from_grasps, oracle_targets

from .conftest import mpjpe_mm, perturb

ITERATIONS = {"contactopt": 60, "obman": 60, "cpf": 100, "cpf_object": 80, "choir": 80, "affinity": 40}


@pytest.fixture(scope="module")
def gt_and_noisy(openhand):
    gt = posed_sphere_grasps(openhand, copies=2)
    return gt, perturb(gt, seed=0)


def test_methods_listed():
    assert set(list_methods()) == set(ITERATIONS)
    with pytest.raises(ContactkitError, match="unknown refinement method 'nope'; valid: affinity"):
        get_method("nope")


@pytest.mark.parametrize("method", sorted(ITERATIONS))
def test_oracle_refinement_lowers_mpjpe(openhand, gt_and_noisy, method):
    gt, noisy = gt_and_noisy
    out = refine(noisy, method, targets=gt, hand=openhand, iterations=ITERATIONS[method], restarts=1)
    # obman's oracle supervision is root-relative (as in ObMan) and its contact loss leaves the palm free to slide
    # over a sphere, so on this fixture only the root-aligned error must fall
    root_aligned = method == "obman"
    before = mpjpe_mm(openhand, noisy, gt, root_aligned=root_aligned)
    after = mpjpe_mm(openhand, out, gt, root_aligned=root_aligned)
    assert float(after.mean()) < float(before.mean()), (method, before, after)
    assert out.loss_traces is not None and out.loss_traces.shape[0] == len(gt)
    # the best loss is the last stage's (each stage's trace is its own objective)
    last = get_method(method).with_settings(iterations=ITERATIONS[method]).stages[-1].settings.iterations
    assert np.nanmin(out.loss_traces[:, -last:], axis=1).tolist() == pytest.approx(
        [md["refine"]["best_loss"] for md in out.metadata], rel=1e-5
    )
    assert out.attrs["refine"]["method"] == method


def _one_sphere_grasp(openhand, **grasp_kwargs):
    """One sphere grasp (``posed_sphere_grasps`` settings), its objects, hand parameters, oracle targets and
    vertices (no gradient)."""
    gt = posed_sphere_grasps(openhand, copies=1, **grasp_kwargs)
    objects = objects_from_grasps(gt)
    t = gt.hand_tensors()
    ref = HandParamsInit(t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    targets = oracle_targets(openhand, ref, objects)
    with torch.no_grad():
        verts = openhand(ref.global_orient, ref.hand_pose, ref.betas, ref.transl).vertices
    return gt, objects, ref, targets, verts


def test_choir_encode_decode_recovers_hand(openhand):
    _, objects, ref, targets, _ = _one_sphere_grasp(openhand)
    g = torch.Generator().manual_seed(0)
    init = HandParamsInit(
        ref.global_orient + 0.1 * torch.randn(1, 3, generator=g),
        ref.hand_pose + 0.15 * torch.randn(1, 45, generator=g),
        ref.betas, ref.transl + 0.01 * torch.randn(1, 3, generator=g),
    )
    stage1 = MethodSpec("choir_decode", "", get_method("choir").stages[:1])
    res = run_method(openhand, init, objects, stage1, targets)
    with torch.no_grad():
        kp = openhand(res.global_orient, res.hand_pose, res.betas, res.transl).keypoints
    err_mm = float((kp - targets.ref_keypoints).norm(dim=-1).mean()) * 1000.0
    assert err_mm < 2.0


def test_cli_refine_round_trip(openhand, gt_and_noisy, tmp_path, capsys):
    from contactkit.cli.main import main
    from contactkit.io.grasps import load_grasps, save_grasps

    gt, noisy = gt_and_noisy
    save_grasps(tmp_path / "gt.npz", gt)
    save_grasps(tmp_path / "noisy.npz", noisy)
    rc = main(["refine", str(tmp_path / "noisy.npz"), "--method", "affinity", "--targets", str(tmp_path / "gt.npz"),
               "--out", str(tmp_path / "out.npz"), "--iterations", "5", "--no-progress"])
    assert rc == 0
    out = load_grasps(tmp_path / "out.npz")
    assert len(out) == 2 and out.loss_traces.shape == (2, 6)
    assert out.metadata[0]["refine"]["method"] == "affinity"
    # a reference file is ground truth: recorded and labelled as oracle
    assert out.attrs["targets"] == f"file:{tmp_path / 'gt.npz'}" and out.attrs["refine"]["oracle"] is True
    assert out.metadata[1]["refine"]["targets"] == out.attrs["targets"]
    assert "affinity (oracle)" in capsys.readouterr().out
    rc = main(["refine", str(tmp_path / "noisy.npz"), "--method", "affinity", "--out", str(tmp_path / "x.npz"),
               "--iterations", "1", "--no-progress"])
    assert rc == 0  # in the wild: no targets needed
    wild = load_grasps(tmp_path / "x.npz")
    assert wild.attrs["targets"] == "none" and wild.attrs["refine"]["oracle"] is False
    rc = main(["refine", str(tmp_path / "noisy.npz"), "--method", "contactopt", "--out", str(tmp_path / "y.npz"),
               "--iterations", "2", "--no-progress"])
    assert rc == 0
    assert load_grasps(tmp_path / "y.npz").attrs["refine"]["targets"] == "learned:deepcontact"
    capsys.readouterr()
    rc = main(["refine", str(tmp_path / "noisy.npz"), "--method", "contactopt", "--targets", "oracle",
               "--out", str(tmp_path / "z.npz"), "--no-progress"])
    assert rc == 2  # oracle asked for but no linked ground truth: an error, not a fallback
    assert "linked to its ground truth" in capsys.readouterr().err


def test_choir_without_targets_names_jointdiffusion(openhand, gt_and_noisy, tmp_path, monkeypatch):
    """With no JointDiffusion weights installed, choir in the wild is a clear error, never the ground truth."""
    from contactkit.diffusion import predictor

    monkeypatch.setattr(predictor, "shipped_weights", lambda context: tmp_path / f"jointdiffusion_{context}.pt")
    _, noisy = gt_and_noisy
    with pytest.raises(ContactkitError, match="no learned CHOIR predictor is installed for hand 'openhand'.*"
                       "contactkit train jointdiffusion"):
        refine(noisy, "choir", hand=openhand, iterations=1)


def test_missing_estimator_is_an_error_not_a_fallback(openhand, gt_and_noisy, tmp_path, monkeypatch):
    from contactkit.io.grasps import save_grasps
    from contactkit.learn import estimators

    gt, noisy = gt_and_noisy
    save_grasps(tmp_path / "gt.npz", gt)
    linked = noisy.replace(attrs={**noisy.attrs, "reference": str(tmp_path / "gt.npz")},
                           reference_index=np.arange(len(noisy)))
    monkeypatch.setattr(estimators, "shipped_weights_exist", lambda kind, name="openhand": False)
    for method in ("contactopt", "cpf"):
        with pytest.raises(ContactkitError, match="no (deepcontact|picr) weights are installed.*--targets oracle"):
            refine(linked, method, hand=openhand, iterations=1)


def test_no_hidden_oracle_linked_and_unlinked_copies_refine_identically(openhand, gt_and_noisy, tmp_path):
    from contactkit.io.grasps import save_grasps

    gt, noisy = gt_and_noisy
    save_grasps(tmp_path / "gt.npz", gt)
    linked = noisy.replace(attrs={**noisy.attrs, "reference": str(tmp_path / "gt.npz")},
                           reference_index=np.arange(len(noisy)))
    for method in ("contactopt", "obman", "affinity"):
        a = refine(noisy, method, hand=openhand, iterations=3, restarts=1)
        b = refine(linked, method, hand=openhand, iterations=3, restarts=1)
        np.testing.assert_array_equal(a.hand_pose, b.hand_pose)
        np.testing.assert_array_equal(a.transl, b.transl)
        assert a.attrs["targets"] == b.attrs["targets"] != "oracle"
        oracle = refine(linked, method, targets="oracle", hand=openhand, iterations=3, restarts=1)
        assert oracle.attrs["targets"] == "oracle"
        assert method_label(method, oracle.attrs["targets"]) == f"{method} (oracle)"
        assert not np.array_equal(oracle.hand_pose, a.hand_pose)


def test_oracle_pairs_rows_through_reference_index_after_reorder(openhand):
    """Regression: a set reordered with subset([1, 0, 3, 2, 5, 4]) has as many rows as its ground truth, and was
    paired 1:1 instead of through reference_index."""
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.primitives import make_primitive
    from contactkit.targets import reference_targets

    sphere = posed_sphere_grasps(openhand, copies=3)
    box = GraspSet.from_arrays(
        hand_model="openhand", side="right", global_orient=sphere.global_orient, hand_pose=sphere.hand_pose,
        betas=sphere.betas, transl=sphere.transl, objects=make_primitive("box"), num_betas=openhand.num_betas,
    )
    gt = GraspSet.concat([sphere, box]).subset(np.array([0, 3, 1, 4, 2, 5]))  # objects alternate
    gt = gt.replace(transl=gt.transl + np.arange(6)[:, None] * 0.003)  # every row distinct
    noisy = gt.replace(reference_index=np.arange(6)).subset(np.array([1, 0, 3, 2, 5, 4]))
    objects = objects_from_grasps(noisy)
    got = reference_targets(openhand, gt, noisy, objects, "cpu", torch.float32)
    want = reference_targets(openhand, gt.subset(np.array([1, 0, 3, 2, 5, 4])), noisy.replace(reference_index=None),
                             objects, "cpu", torch.float32)
    torch.testing.assert_close(got.ref_keypoints, want.ref_keypoints)
    t = gt.hand_tensors()
    with torch.no_grad():
        kp = openhand(t["global_orient"], t["hand_pose"], t["betas"], t["transl"]).keypoints
    torch.testing.assert_close(got.ref_keypoints, kp[[1, 0, 3, 2, 5, 4]])


#: Methods runnable in the wild, their iterations on the fixture.
IN_THE_WILD = {"contactopt": 60, "obman": 100, "affinity": 60, "cpf": 100}
_CPF_SHORTFALL = pytest.mark.xfail(
    strict=True, reason="known shortfall: in the wild, cpf with PiCR's springs removes most of the intersection "
    "but raises MPJPE on this fixture (20.7 -> 26.2 mm); see docs/refinement.md",
)


@pytest.fixture(scope="module")
def wild_fixture(openhand):
    """Four sphere grasps perturbed by 1 cm / 5 degrees / 0.1 rad; the refiner never sees the ground truth."""
    gt = posed_sphere_grasps(openhand, copies=4)
    return gt, perturb(gt, seed=0)


@pytest.mark.parametrize(
    "method", [pytest.param(m, marks=_CPF_SHORTFALL) if m == "cpf" else m for m in sorted(IN_THE_WILD)]
)
def test_in_the_wild_method_improves_without_reference(openhand, wild_fixture, method):
    from contactkit.metrics.evaluate import evaluate

    gt, noisy = wild_fixture
    assert noisy.reference_index is None and "reference" not in noisy.attrs and noisy.hand_contact is None
    out = refine(noisy, method, hand=openhand, iterations=IN_THE_WILD[method], restarts=1)
    assert out.attrs["refine"]["oracle"] is False

    def scores(g):
        ev = evaluate(g, reference=gt, metrics=["mpjpe_mm", "intersection_volume_cm3"], hand=openhand)
        return ev["mpjpe_mm"].mean, ev["intersection_volume_cm3"].mean

    mpjpe0, iv0 = scores(noisy)
    mpjpe1, iv1 = scores(out)
    assert iv1 < 0.5 * iv0, (method, iv0, iv1)
    assert mpjpe1 < mpjpe0, (method, mpjpe0, mpjpe1)


def _fake_chumpy(monkeypatch):
    """A module ``chumpy.ch`` with a class ``Ch``, so a pickle references ``chumpy.ch Ch`` like MANO's files."""
    import sys
    import types

    pkg, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()
            self.dterms = ("x",)

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch, pkg.ch = Ch, ch
    monkeypatch.setitem(sys.modules, "chumpy", pkg)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    return Ch


def test_cli_in_the_wild_on_a_mano_hand(tmp_path, monkeypatch, capsys):
    """Done-when of issue 12: ``contactkit refine NOISY --method M --out OUT`` exits 0 for every in-the-wild method
    with a MANO hand (``CONTACTKIT_MANO_DIR``; a MANO-format file written from the tests' synthetic 778-vertex
    hand), on a file with no ground-truth link and no contact maps. The hand has no shipped weights or zones of
    its own: it gets OpenHand's through the correspondence."""
    import pickle
    import sys
    from pathlib import Path

    import scipy.sparse

    from contactkit.cli.main import main
    from contactkit.geometry.normals import vertex_normals
    from contactkit.hands import load_hand
    from contactkit.io.grasps import GraspSet, load_grasps, save_grasps
    from contactkit.objects.primitives import make_primitive

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hands"))
    import hand_fixtures as hf

    rest = hf.synthetic_rest()
    v = len(rest.vertices)
    # MANO's 1538 faces: open the closed test surface at the wrist (the 14 faces nearest the wrist end)
    axis = rest.joints[10] - rest.joints[0]  # wrist -> middle root
    depth = (rest.vertices[rest.faces].mean(1) - rest.joints[0]) @ axis
    faces = np.delete(rest.faces, np.argsort(depth)[: len(rest.faces) - 1538], axis=0)
    ch = _fake_chumpy(monkeypatch)
    arrays = {
        "v_template": ch(rest.vertices), "f": faces.astype(np.uint32),
        "J_regressor": scipy.sparse.csc_matrix(hf.regressor_for(rest.vertices, rest.joints)),
        "weights": rest.weights, "posedirs": np.zeros((v, 3, 135)),
        "shapedirs": ch(np.zeros((v, 3, 10))), "hands_components": np.eye(45),
        "hands_mean": np.zeros(45), "bs_style": "lbs", "bs_type": "lrotmin",
        "kintree_table": np.array([[4294967295, *hf.KINTREE_PARENTS[1:]], list(range(16))], dtype=np.int64),
    }
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(arrays, protocol=2))
    monkeypatch.setenv("CONTACTKIT_MANO_DIR", str(tmp_path))
    mano = load_hand("mano")
    z = mano.zero_params(1)
    with torch.no_grad():
        verts = mano(z.global_orient, z.hand_pose, z.betas, z.transl).vertices[0]
    palm = torch.as_tensor(mano.annotations.contact_zones["palm"])
    n_palm = torch.nn.functional.normalize(vertex_normals(verts, mano.faces)[palm].mean(0), dim=0)
    centre = verts[palm].mean(0) + n_palm * 0.029
    noisy = GraspSet.from_arrays(
        hand_model="mano", side="right", global_orient=np.zeros((2, 3)), hand_pose=np.zeros((2, 45)),
        betas=np.zeros((2, mano.num_betas)), num_betas=mano.num_betas, objects=make_primitive("sphere", radius=0.03),
        transl=(-centre).double().repeat(2, 1).numpy() + [[0, 0, 0.004], [0.003, 0, 0]],
    )
    save_grasps(tmp_path / "noisy.npz", noisy)
    for method, source in (("contactopt", "learned:deepcontact"), ("cpf", "learned:picr"),
                           ("cpf_object", "learned:picr"), ("obman", "statistics:contact-zones"),
                           ("affinity", "none")):
        rc = main(["refine", str(tmp_path / "noisy.npz"), "--method", method, "--out", str(tmp_path / "out.npz"),
                   "--iterations", "2", "--restarts", "1", "--no-progress"])
        assert rc == 0, capsys.readouterr().err
        out = load_grasps(tmp_path / "out.npz")
        assert out.hand_model == "mano" and out.attrs["targets"] == source and not out.attrs["refine"]["oracle"]
        assert np.isfinite(out.hand_pose).all() and np.isfinite(out.loss_traces[:, 0]).all()
        if source.startswith("learned"):
            assert out.attrs["refine"]["estimator_hand"] == "openhand"
        if method == "obman":
            assert out.attrs["refine"]["zones"] == "shipped:openhand_right via correspondence"


@pytest.mark.slow
def test_ray_batches_give_the_serial_result(openhand, ray_local, one_torch_thread):
    """``refine(..., ray="")``: the batches run as tasks of a 2-CPU Ray and the result is the serial one (at the
    tasks' one torch thread)."""
    noisy = perturb(posed_sphere_grasps(openhand, copies=4), seed=3)
    kw = dict(hand=openhand, seed=5, batch_size=2, iterations=6)
    serial = refine(noisy, "affinity", **kw)
    on_ray = refine(noisy, "affinity", ray="", **kw)
    for name in ("global_orient", "hand_pose", "transl", "hand_vertices", "loss_traces"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(on_ray, name), err_msg=name)
    assert [m["refine"]["restart"] for m in serial.metadata] == [m["refine"]["restart"] for m in on_ray.metadata]


def test_cpf_penetration_is_not_negligible_against_the_springs(openhand):
    """On a hand pushed 1 cm into the object, cpf's penetration gradient outweighs the attractive springs': at
    ContactOpt's weight (2) it was ~1e-4 of theirs and moved nothing (issue 12)."""
    from contactkit.contact.diffcontact import SDFPenetrationTerm
    from contactkit.refine.methods import MethodContext
    from contactkit.refine.refiner import build_state

    _, objects, ref, targets, verts = _one_sphere_grasp(openhand)
    ctx = MethodContext(openhand, ref, verts, objects, targets, ref)
    terms = {term.name: term for term in get_method("cpf").stages[0].build(ctx)}
    assert isinstance(terms["penetration"], SDFPenetrationTerm)
    # push the hand 1 cm along the palm normal into the sphere (the sphere sits at the origin)
    centre_dir = torch.nn.functional.normalize(-verts[0].mean(0), dim=0)
    transl = (ref.transl + 0.01 * centre_dir).requires_grad_(True)
    state = build_state(openhand, ref.global_orient, ref.hand_pose, ref.betas, transl, objects, torch.arange(1))
    grads = {}
    for name in ("penetration", "attractive_springs"):
        (g,) = torch.autograd.grad(terms[name].weight * terms[name](state).sum(), transl, retain_graph=True)
        grads[name] = float(g.norm())
    # 1 cm deep, the penetration must outweigh the springs' pull (weight 1e6: ~44x; weight 2: ~1e-4x)
    assert grads["penetration"] > grads["attractive_springs"], grads


def test_cpf_settle_stage_removes_the_penetration_geo_tolerates(openhand):
    """cpf's closing settle stage continues GeO's energy with 0.5 mm of tolerated penetration instead of 2 mm: a hand
    1.5 mm inside the object costs nothing to GeO's penetration terms and is pushed out by the settle stage, which
    moves its keypoints by millimetres only."""
    from contactkit.refine.methods import CPF_SETTLE_DEPTH_M, MethodContext
    from contactkit.refine.refiner import build_state

    # a flat hand, the sphere (at the origin) against the palm
    gt, objects, ref, targets, verts = _one_sphere_grasp(openhand, bend=0.0)
    sphere = gt.object_of(0)

    def deepest_mm(v: torch.Tensor) -> float:
        return -1000.0 * float(np.min(sphere.signed_distance(v[0].double().numpy())))

    # 1.2 mm further in along the palm's normal (toward the centre): ~1.5 mm deep, inside GeO's 2 mm tolerance
    palm = torch.as_tensor(openhand.annotations.contact_zones["palm"])
    inward = torch.nn.functional.normalize(-verts[0, palm].mean(0), dim=0)
    pushed = HandParamsInit(ref.global_orient, ref.hand_pose, ref.betas, ref.transl + 1.2e-3 * inward)
    with torch.no_grad():
        pushed_verts = openhand(pushed.global_orient, pushed.hand_pose, pushed.betas, pushed.transl).vertices
    depth0 = deepest_mm(pushed_verts)
    assert 2.0 > depth0 > 1.0, depth0
    ctx = MethodContext(openhand, pushed, pushed_verts, objects, targets, pushed)
    geo, settle = get_method("cpf").stages
    state = build_state(openhand, pushed.global_orient, pushed.hand_pose, pushed.betas, pushed.transl, objects,
                        torch.arange(1))
    for stage, tolerated in ((geo, True), (settle, False)):
        terms = {term.name: term for term in stage.build(ctx)}
        assert (float(terms["penetration"](state).sum()) == 0.0) is tolerated, stage.name
    assert {term.name: term for term in settle.build(ctx)}["penetration"].depth == CPF_SETTLE_DEPTH_M
    res = run_method(openhand, pushed, objects, MethodSpec("settle", "", [settle]), targets)
    after = res.hand_params()
    with torch.no_grad():
        out = openhand(after.global_orient, after.hand_pose, after.betas, after.transl)
        start = openhand(pushed.global_orient, pushed.hand_pose, pushed.betas, pushed.transl).keypoints
    assert deepest_mm(out.vertices) < 0.5 * depth0, (depth0, deepest_mm(out.vertices))
    moved = float((out.keypoints - start).norm(dim=-1).mean()) * 1000.0
    assert moved < 6.0, moved  # millimetres: a short, slow stage (lr 2e-3), not a new fit

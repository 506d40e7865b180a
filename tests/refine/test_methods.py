"""Every named method with oracle targets lowers MPJPE on perturbed synthetic ground-truth grasps (OpenHand),
CHOIR encode -> decode recovers the hand, and the GraspSet API / CLI round trip works."""

import numpy as np
import pytest
import torch

from contactkit.errors import ContactkitError
from contactkit.refine.api import refine, run_method
from contactkit.refine.methods import MethodSpec, get_method, list_methods
from contactkit.targets import HandParamsInit, method_label, objects_from_grasps, oracle_targets

from .conftest import make_sphere_grasps, mpjpe_mm, perturb

ITERATIONS = {"contactopt": 60, "obman": 60, "cpf": 100, "cpf_object": 80, "choir": 80, "affinity": 40}


@pytest.fixture(scope="module")
def gt_and_noisy(openhand):
    gt = make_sphere_grasps(openhand, n=2)
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
    assert np.nanmin(out.loss_traces, axis=1).tolist() == pytest.approx(
        [md["refine"]["best_loss"] for md in out.metadata], rel=1e-5
    )
    assert out.attrs["refine"]["method"] == method


def test_choir_encode_decode_recovers_hand(openhand):
    gt = make_sphere_grasps(openhand, n=1)
    objects = objects_from_grasps(gt)
    t = gt.hand_tensors()
    ref = HandParamsInit(t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    targets = oracle_targets(openhand, ref, objects)
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


def test_choir_without_targets_names_jointdiffusion(openhand, gt_and_noisy):
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

    sphere = make_sphere_grasps(openhand, n=3)
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
    "but raises MPJPE on this fixture (20.7 -> 25.0 mm); see docs/refinement.md",
)


@pytest.fixture(scope="module")
def wild_fixture(openhand):
    """Four sphere grasps perturbed by 1 cm / 5 degrees / 0.1 rad; the refiner never sees the ground truth."""
    gt = make_sphere_grasps(openhand, n=4)
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


def test_every_in_the_wild_method_runs_on_a_mano_format_hand():
    """A MANO-format hand (tests/hands fixture, no shipped weights or zones of its own) gets learned targets and
    statistics zones through the correspondence with OpenHand."""
    import sys
    from pathlib import Path

    from contactkit.geometry.normals import vertex_normals
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.primitives import make_primitive

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hands"))
    import hand_fixtures as hf

    mano = hf.as_hand_model(hf.synthetic_rest()).float()
    z = mano.zero_params(1)
    with torch.no_grad():
        verts = mano(z.global_orient, z.hand_pose, None, z.transl).vertices[0]
    palm = torch.as_tensor(mano.annotations.contact_zones["palm"])
    n_palm = torch.nn.functional.normalize(vertex_normals(verts, mano.faces)[palm].mean(0), dim=0)
    centre = verts[palm].mean(0) + n_palm * 0.029
    noisy = GraspSet.from_arrays(
        hand_model="mano", side="right", global_orient=np.zeros((2, 3)), hand_pose=np.zeros((2, 45)),
        betas=np.zeros((2, 0)), transl=(-centre).double().repeat(2, 1).numpy() + [[0, 0, 0.004], [0.003, 0, 0]],
        objects=make_primitive("sphere", radius=0.03), num_betas=0,
    )
    for method, source in (("contactopt", "learned:deepcontact"), ("cpf", "learned:picr"),
                           ("cpf_object", "learned:picr"), ("obman", "statistics:contact-zones"),
                           ("affinity", "none")):
        out = refine(noisy, method, hand=mano, iterations=2, restarts=1)
        assert out.attrs["targets"] == source and not out.attrs["refine"]["oracle"]
        assert np.isfinite(out.hand_pose).all() and np.isfinite(out.loss_traces[:, 0]).all()
        if source.startswith("learned"):
            assert out.attrs["refine"]["estimator_hand"] == "openhand"
        if method == "obman":
            assert out.attrs["refine"]["zones"] == "shipped:openhand_right via correspondence"

import numpy as np
import pytest
import trimesh
from metric_meshes import box, random_rigid, sphere

from contactkit.errors import ContactkitError, MeshError, ShapeError
from contactkit.metrics import simulation as sim

OV, OF = box([0.04, 0.05, 0.06])


def _far_hand():
    hv, hf = sphere(0.01, centre=(0.3, 0.0, 0.0), subdivisions=1)
    return hv, hf


def _plates(squeeze=0.0005):
    """Two 1 cm plates touching the +-x faces of OV, each pressed ``squeeze`` metres into the box."""
    pv, pf = box([0.01, 0.08, 0.08])
    off = 0.02 + 0.005 - squeeze
    hv = np.concatenate([pv + [off, 0, 0], pv - [off, 0, 0]])
    hf = np.concatenate([pf, pf + len(pv)])
    return hv, hf, np.repeat([0, 1], len(pv))


@pytest.mark.parametrize("protocol", ["default", "obman"])
def test_unsupported_object_falls_freely(protocol):
    hv, hf = _far_hand()
    p = sim.get_protocol(protocol)
    d = sim.simulation_displacement(hv[None], hf, OV, OF, protocol=protocol)
    assert d[0] == pytest.approx(0.5 * p.gravity * p.duration_s**2, rel=0.05)


def test_six_directions_of_free_fall_average_the_same():
    hv, hf = _far_hand()
    p = sim.get_protocol("obman", gravity_directions="six")
    d = sim.simulation_displacement(hv[None], hf, OV, OF, protocol=p)
    assert d[0] == pytest.approx(0.5 * p.gravity * p.duration_s**2, rel=0.05)


@pytest.mark.parametrize("shape", ["faces", "regions"])
@pytest.mark.parametrize("protocol", ["default", "obman"])
def test_box_between_two_plates_barely_moves(protocol, shape):
    hv, hf, labels = _plates()
    p = sim.get_protocol(protocol, hand_shape=shape)
    d = sim.simulation_displacement(hv[None], hf, OV, OF, hand_labels=labels, protocol=p)
    free = 0.5 * p.gravity * p.duration_s**2
    assert d[0] < 0.0005 and d[0] < 0.01 * free


def test_translation_and_rotation_about_gravity_do_not_change_displacement():
    hv, hf, labels = _plates(0.0005)
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    t = np.array([0.2, -0.1, 0.5])
    a = sim.simulation_displacement(hv[None], hf, OV, OF, protocol="obman")
    b = sim.simulation_displacement((hv @ rot.T + t)[None], hf, OV, OF, rot[None], t[None], protocol="obman")
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_convex_decomposition_is_cached_on_disk(tmp_path):
    # an L-shaped (non-convex) object
    a = trimesh.creation.box(extents=[0.06, 0.02, 0.02])
    b = trimesh.creation.box(extents=[0.02, 0.06, 0.02])
    b.apply_translation([-0.02, 0.02, 0.0])
    mesh = trimesh.boolean.union([a, b], engine="manifold")
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)
    pieces = sim.object_convex_pieces(v, f, max_hulls=8)
    assert len(pieces) >= 2
    cached = list((tmp_path / "cache" / "objects").glob("*/convex_pieces_8_*.npz"))
    assert len(cached) == 1
    sim.MEMORY_CACHE.clear()
    again = sim.object_convex_pieces(v, f, max_hulls=8)
    assert len(again) == len(pieces) and all(np.array_equal(x, y) for x, y in zip(pieces, again, strict=True))
    # a convex object is its own single piece
    assert len(sim.object_convex_pieces(OV, OF)) == 1


def test_parallel_workers_match_serial():
    hv, hf, _ = _plates()
    batch = np.stack([hv, hv + [0.3, 0, 0]])
    serial = sim.simulation_displacement(batch, hf, OV, OF, protocol="obman")
    parallel = sim.simulation_displacement(batch, hf, OV, OF, protocol="obman", workers=2)
    np.testing.assert_allclose(serial, parallel)
    assert serial[0] < 0.002 < serial[1]


def test_bad_settings_raise_clear_errors():
    hv, hf = _far_hand()
    with pytest.raises(ContactkitError, match="unknown simulation protocol 'pybullet'"):
        sim.get_protocol("pybullet")
    with pytest.raises(ContactkitError, match=r"unknown simulation protocol field\(s\) \['frction'\]"):
        sim.get_protocol("default", frction=2.0)
    with pytest.raises(ContactkitError, match="restitution"):
        sim.get_protocol("default", restitution=1.5)
    with pytest.raises(ShapeError, match="hand_labels"):
        sim.simulation_displacement(hv[None], hf, OV, OF, protocol=sim.get_protocol("default", hand_shape="regions"))
    with pytest.raises(ShapeError, match="object frame"):
        sim.simulation_displacement(hv[None], hf, np.stack([OV, OV]), OF)


def _l_object():
    """A non-convex L-shaped block (V-HACD splits it), object frame at its long arm's centre."""
    a = trimesh.creation.box(extents=[0.08, 0.02, 0.03])
    b = trimesh.creation.box(extents=[0.02, 0.06, 0.03])
    b.apply_translation([-0.03, 0.02, 0.0])
    mesh = trimesh.boolean.union([a, b], engine="manifold")
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)


def test_same_world_geometry_in_several_object_frames_gives_the_same_displacement():
    # two plates pinch the far end of the L's long arm; gravity makes it swing a little (about 0.2 mm)
    v, f = _l_object()
    pv, pf = box([0.02, 0.01, 0.04])
    hv = np.concatenate([pv + [0.025, 0.0147, 0], pv + [0.025, -0.0147, 0]])
    hf = np.concatenate([pf, pf + len(pv)])
    out = []
    for seed in range(4):
        # the object stored in another frame, x_stored = R^T (x - t), posed back to the same world place
        rot, t = (np.eye(3), np.zeros(3)) if seed == 0 else random_rigid(seed)
        out.append(sim.simulation_displacement(hv[None], hf, (v - t) @ rot, f, rot[None], t[None])[0])
    assert out[0] > 1e-4  # it does move (a test of invariance on a motionless object would prove nothing)
    np.testing.assert_allclose(out, out[0], rtol=0.01)


def test_canonical_frame_moves_with_the_object():
    v, f = _l_object()
    rot, t = random_rigid(7)
    axes, com = sim.canonical_frame(v, f)
    axes2, com2 = sim.canonical_frame(v @ rot.T + t, f)
    np.testing.assert_allclose(com2, rot @ com + t, atol=1e-12)
    np.testing.assert_allclose(axes2, rot @ axes, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(axes), 1.0)


def test_hand_sunk_deep_into_the_object_is_flagged_not_simulated():
    # a fingertip-sized ball sunk 20 mm into the box (its lowest point 20 mm from every face): the object would be
    # pinned whatever the gravity; the same ball 1 mm in is a grasp
    hv, hf = sphere(0.008, centre=(0.0, 0.0, 0.03 + 0.008 - 0.020), subdivisions=3)
    shallow, _ = sphere(0.008, centre=(0.0, 0.0, 0.03 + 0.008 - 0.001), subdivisions=3)
    res = sim.simulate(np.stack([hv, shallow]), hf, OV, OF)
    assert res.simulable.tolist() == [False, True]
    assert res.not_simulable == 1
    assert res.penetration[0] == pytest.approx(0.020, abs=2e-4)
    assert res.penetration[1] == pytest.approx(0.001, abs=2e-4)
    assert np.isnan(res.displacement[0]) and np.isfinite(res.displacement[1])
    assert "mm deep (> max_penetration 10.0 mm)" in res.reasons[0] and res.reasons[1] is None
    # the threshold is a protocol setting; None simulates everything
    p = sim.get_protocol("default", max_penetration=None)
    assert sim.simulate(hv[None], hf, OV, OF, protocol=p).simulable.all()


def test_gravity_direction_matters_for_a_loose_grasp():
    # the box rests on a flat plate (a hand that supports but does not hold it)
    hv, hf = box([0.1, 0.1, 0.01], centre=(0.0, 0.0, -0.03 - 0.005 + 0.0002))
    p = sim.get_protocol("default")
    down = sim.simulation_displacement(hv[None], hf, OV, OF, protocol=p)[0]
    up = sim.simulation_displacement(hv[None], hf, OV, OF, protocol=p.with_updates(gravity_direction=(0, 0, 1)))[0]
    free = 0.5 * p.gravity * p.duration_s**2
    assert down < 0.001
    assert up == pytest.approx(free, rel=0.05)
    # rotating the whole scene about gravity changes nothing; tilting it (gravity along the plate) does
    c, s = np.cos(1.1), np.sin(1.1)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    spun = sim.simulation_displacement((hv @ rz.T)[None], hf, OV, OF, rz[None], protocol=p)[0]
    assert spun == pytest.approx(down, abs=1e-6)
    rx = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    tilted = sim.simulation_displacement((hv @ rx.T)[None], hf, OV, OF, rx[None], protocol=p)[0]
    assert tilted > 10 * max(down, 1e-4)


def test_flat_object_is_a_clear_error():
    # regression: a flat plane as object raised qhull's / numpy's errors from deep inside the simulation
    v, f = box([0.05, 0.05, 0.05])
    hv, hf = _far_hand()
    with pytest.raises(MeshError, match="flat or degenerate"):
        sim.simulation_displacement(hv[None], hf, v * [1.0, 1.0, 0.0], f)


def test_object_too_small_for_mujoco_is_a_clear_error():
    # regression: a 1-micrometre mesh raised MuJoCo's ValueError ("mesh volume is too small") from the worker
    v, f = box([1e-6, 1e-6, 1e-6])
    hv, hf = _far_hand()
    with pytest.raises(MeshError, match="MuJoCo cannot simulate"):
        sim.simulation_displacement(hv[None], hf, v, f)

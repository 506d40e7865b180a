"""The object library: set specs, sources (folders, globs, pybullet's random URDFs), per-object checks."""

import numpy as np
import pytest
import trimesh

from contactkit.cli.main import main
from contactkit.errors import ContactkitError
from contactkit.objects import PRIMITIVE_KINDS, make_primitive
from contactkit.objects.library import (
    LibraryEntry,
    ObjectChecks,
    check_object,
    object_box_corners,
    resolve_objects,
)


def _box_file(path, extents):
    trimesh.creation.box(extents=extents).export(path)
    return path


def test_bundled_and_primitives_sets_and_deduplication():
    ids = [e.object_id for e in resolve_objects("bundled + primitives + bundled + mug")]
    assert ids[:3] == ["bundled/cracker_box", "bundled/mug", "bundled/mustard_bottle"]
    assert ids[3:3 + len(PRIMITIVE_KINDS)] == [f"primitive/{k}" for k in PRIMITIVE_KINDS]
    assert len(ids) == len(set(ids)) == 3 + len(PRIMITIVE_KINDS)  # "mug" is bundled/mug again
    assert [e.object_id for e in resolve_objects("sphere:radius=0.03")] == ["primitive/sphere:radius=0.03"]


def test_directory_and_glob_are_sorted_mesh_files(tmp_path):
    _box_file(tmp_path / "b.obj", (0.05, 0.04, 0.03))
    _box_file(tmp_path / "a.stl", (0.05, 0.04, 0.03))
    (tmp_path / "notes.txt").write_text("not a mesh")
    ids = [e.object_id for e in resolve_objects(str(tmp_path))]
    assert ids == [f"file/{tmp_path / 'a.stl'}", f"file/{tmp_path / 'b.obj'}"]
    assert [e.object_id for e in resolve_objects(str(tmp_path / "*.obj"))] == [f"file/{tmp_path / 'b.obj'}"]
    mesh = resolve_objects(str(tmp_path / "*.obj"))[0].load()
    np.testing.assert_allclose(np.sort(mesh.extents), [0.03, 0.04, 0.05], atol=1e-9)


@pytest.mark.parametrize("spec", ["", "  ", "bundled+", "random-urdfs:x", "random-urdfs:5-2", "nonexistent_thing"])
def test_bad_specs_raise_contactkit_error(spec):
    with pytest.raises(ContactkitError):
        resolve_objects(spec)


def test_empty_directory_and_glob_raise(tmp_path):
    with pytest.raises(ContactkitError, match="no mesh file"):
        resolve_objects(str(tmp_path))
    with pytest.raises(ContactkitError, match="matches no mesh"):
        resolve_objects(str(tmp_path / "*.ply"))


@pytest.mark.parametrize(
    ("extents", "reason"),
    [
        ((0.05, 0.05, 0.10), ""),
        ((50.0, 50.0, 100.0), "units"),                 # millimetres read as metres
        ((0.4, 0.05, 0.05), "too large"),
        ((0.01, 0.01, 0.015), "too small"),
        ((0.2, 0.2, 0.2), "too wide"),
    ],
)
def test_size_and_unit_checks_give_a_reason(tmp_path, extents, reason):
    path = _box_file(tmp_path / "box.obj", extents)
    _, res = check_object(resolve_objects(str(path))[0])
    assert res.ok == (reason == "")
    assert reason in res.reason
    np.testing.assert_allclose(res.extents_m, sorted(extents, reverse=True), rtol=1e-9)


def test_open_mesh_is_skipped_unless_allowed(tmp_path):
    box = trimesh.creation.box(extents=(0.05, 0.05, 0.1))
    # two boxes sharing nothing but one edge pair -> non-manifold edges that hole filling cannot fix
    other = box.copy()
    other.apply_translation((0.05, 0.05, 0.0))
    mesh = trimesh.Trimesh(np.vstack([box.vertices, other.vertices]), np.vstack([box.faces[2:], other.faces + 8]),
                           process=False)
    mesh.export(tmp_path / "open.ply")
    entry = resolve_objects(str(tmp_path / "open.ply"))[0]
    _, res = check_object(entry)
    assert not res.ok and "not watertight" in res.reason
    _, res2 = check_object(entry, ObjectChecks(require_watertight=False))
    assert res2.ok and not res2.is_watertight


def test_load_failure_is_a_reason_not_an_exception(tmp_path):
    bad = tmp_path / "garbage.ply"
    bad.write_bytes(b"ply\nthis is not a mesh")
    mesh, res = check_object(resolve_objects(str(bad))[0])
    assert mesh is None and not res.ok and res.reason.startswith("could not load")
    mesh2, res2 = check_object(LibraryEntry("x/y", "test", "none", lambda: make_primitive("sphere", radius=-1)))
    assert mesh2 is None and "could not load" in res2.reason


def test_object_box_is_the_axis_aligned_box_in_the_object_frame():
    """The one object box (papers 003/004): the box of the vertices in the object's own frame, corner bits (x, y, z),
    equal to the torch op the affinity refinement uses on object-frame points."""
    import torch

    from contactkit.contact.affinity import box_corners

    brick = make_primitive("box", extents=(0.12, 0.07, 0.03))
    corners, ext = object_box_corners(brick)
    np.testing.assert_allclose(ext, [0.12, 0.07, 0.03], atol=1e-12)
    np.testing.assert_allclose(corners[0], [-0.06, -0.035, -0.015], atol=1e-12)
    np.testing.assert_allclose(corners[1] - corners[0], [0.12, 0.0, 0.0], atol=1e-12)  # bit 0: x
    np.testing.assert_allclose(corners[2] - corners[0], [0.0, 0.07, 0.0], atol=1e-12)  # bit 1: y
    np.testing.assert_allclose(corners[4] - corners[0], [0.0, 0.0, 0.03], atol=1e-12)  # bit 2: z
    # a rotated object has the box of its rotated vertices (the frame defines the box, not the shape's axes)
    rot = trimesh.transformations.random_rotation_matrix(np.random.default_rng(0).random(3))[:3, :3]
    turned = brick.transformed(rot, [0.01, 0.02, 0.03])
    c2, _ = object_box_corners(turned)
    v = np.asarray(turned.vertices)
    np.testing.assert_allclose(c2[0], v.min(0), atol=1e-12)
    np.testing.assert_allclose(c2[7], v.max(0), atol=1e-12)
    ref = box_corners(torch.tensor(v)[None])[0].numpy()
    np.testing.assert_allclose(c2, ref, atol=1e-12)
def test_random_urdfs_are_scaled_by_their_urdf():
    pytest.importorskip("pybullet_data", reason="pybullet (contactkit[objects]) is not installed")
    from contactkit.objects.library import random_urdfs_root

    entries = resolve_objects("random-urdfs:3")
    assert [e.object_id for e in entries] == ["random-urdfs/000", "random-urdfs/001", "random-urdfs/002"]
    assert [e.object_id for e in resolve_objects("random-urdfs:998-999")] == ["random-urdfs/998",
                                                                              "random-urdfs/999"]
    raw = trimesh.load(random_urdfs_root() / "000" / "000.obj", force="mesh")
    mesh, res = check_object(entries[0])
    assert res.ok, res.reason
    np.testing.assert_allclose(mesh.extents, raw.extents * 0.015, rtol=1e-6)  # scale="0.015 0.015 0.015"
    _, bad = check_object(resolve_objects("random-urdfs:168-168")[0])  # this file has NaN vertices
    assert not bad.ok and "NaN" in bad.reason


def test_cli_objects_list_reports_skips(tmp_path, capsys):
    _box_file(tmp_path / "ok.obj", (0.05, 0.04, 0.03))
    _box_file(tmp_path / "wide.obj", (0.3, 0.2, 0.15))
    assert main(["objects", "list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ok   file/" in out and "too wide" in out and "1 of 2 objects pass" in out
    assert main(["objects", "show", str(tmp_path / "wide.obj")]) == 1

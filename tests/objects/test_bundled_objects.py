"""Bundled YCB objects and the one-string object loader."""

from pathlib import Path

import numpy as np
import pytest

import contactkit.objects as objects_pkg
from contactkit.errors import ContactkitError, MeshError
from contactkit.objects import list_bundled_objects, load_bundled, load_object
from contactkit.objects.bundled import bundled_object_info

DATA = Path(objects_pkg.__file__).parent / "data"


def test_list_bundled_objects():
    assert list_bundled_objects() == ["cracker_box", "mug", "mustard_bottle"]


@pytest.mark.filterwarnings("ignore:.*not watertight")
@pytest.mark.parametrize("name", ["cracker_box", "mug", "mustard_bottle"])
def test_bundled_objects_load(name):
    obj = load_object(name)
    assert obj.name == name
    assert 2000 <= obj.num_faces <= 4000
    assert 0.05 < obj.extents.max() < 0.25  # metres, hand-held
    assert np.abs(obj.vertices.mean(axis=0)).max() < 0.03  # roughly centred
    assert "CC BY 4.0" in obj.source
    assert load_object(name) is obj  # cached per process
    info = bundled_object_info(name)
    assert info["ycb_id"].endswith(name if name != "mug" else "025_mug")


def test_mug_is_flagged_not_watertight_with_warning():
    load_bundled.cache_clear()
    with pytest.warns(UserWarning, match=r"mug: mesh is not watertight .*generalised winding numbers"):
        mug = load_object("mug")
    assert not mug.is_watertight
    assert mug.volume_is_estimate
    # YCB mug: about 138 cm^3 of ceramic; the winding-number estimate lands within 10 %
    assert mug.volume_m3 == pytest.approx(1.38e-4, rel=0.1)
    # the cavity is not inside the material; points just under the surface (in the wall) are
    assert not mug.contains(np.array([[0.0, 0.0, 0.0]]))[0]
    pts, nrm = mug.sample_surface(200, seed=0)
    assert mug.contains(pts - 0.0003 * nrm).mean() > 0.9  # 0.3 mm into the ceramic
    assert not mug.contains(pts + 0.003 * nrm).any()  # 3 mm out, in the air


def test_cracker_box_is_watertight():
    box = load_object("cracker_box")
    assert box.is_watertight and not box.volume_is_estimate
    assert box.volume_m3 == pytest.approx(0.00217, rel=0.01)
    np.testing.assert_array_equal(box.contains(np.zeros((1, 3))), [True])


def test_bundled_data_is_small_and_credited():
    total = sum(p.stat().st_size for p in DATA.glob("*.npz"))
    assert total < 1_000_000
    text = (DATA / "LICENSE-YCB.md").read_text()
    assert "CC BY 4.0" in text and "Calli" in text and "Changes made" in text
    for name in list_bundled_objects():
        with np.load(DATA / f"{name}.npz", allow_pickle=False) as d:
            assert d["vertices"].dtype == np.float32 and d["faces"].dtype == np.int32


def test_load_object_specs(tmp_path):
    sphere = load_object("sphere:radius=0.03")
    assert sphere.primitive == {"kind": "sphere", "radius": 0.03}
    assert load_object(sphere) is sphere
    path = tmp_path / "ball.stl"
    sphere.to_trimesh().export(path)
    assert load_object(str(path)).num_faces == sphere.num_faces
    assert load_object(path).num_faces == sphere.num_faces
    with pytest.raises(
        ContactkitError, match=r"unknown object 'banana'.*cracker_box, mug, mustard_bottle.*sphere"
    ):
        load_object("banana")
    with pytest.raises(MeshError, match="mesh file not found"):
        load_object(str(tmp_path / "missing.obj"))
    with pytest.raises(ContactkitError, match="unknown bundled object"):
        load_bundled("banana")

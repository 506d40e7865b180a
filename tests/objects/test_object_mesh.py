"""ObjectMesh: loading, validation, repair, units, hashing, caches and transforms."""

import math
import os
import warnings

import numpy as np
import pytest
import torch
import trimesh

from contactkit.errors import ContactkitError, MeshError, ShapeError, UnitsError
from contactkit.objects import ObjectMesh, cache, make_primitive
from contactkit.objects.mesh import SUPPORTED_SUFFIXES

R = 0.04


def _sphere_arrays(subdivisions=3, radius=R):
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(s.vertices), np.asarray(s.faces)


def _rotation(seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@pytest.fixture(scope="module")
def sphere_obj():
    v, f = _sphere_arrays()
    return ObjectMesh.from_arrays(v, f, name="ball", units="m")


# ---------------------------------------------------------------- construction and validation
def test_from_arrays_basic(sphere_obj):
    assert sphere_obj.is_watertight
    assert sphere_obj.vertices.dtype == np.float64 and sphere_obj.faces.dtype == np.int64
    assert not sphere_obj.vertices.flags.writeable and not sphere_obj.faces.flags.writeable
    assert sphere_obj.volume_m3 == pytest.approx(4 / 3 * math.pi * R**3, rel=1e-2)
    assert not sphere_obj.volume_is_estimate
    np.testing.assert_allclose(sphere_obj.extents, [2 * R] * 3, rtol=1e-6)
    assert sphere_obj.surface_area_m2 == pytest.approx(4 * math.pi * R**2, rel=1e-2)


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".off", ".glb"])
def test_from_file_all_formats(tmp_path, suffix):
    v, f = _sphere_arrays(2)
    path = tmp_path / f"ball{suffix}"
    trimesh.Trimesh(v, f, process=False).export(path)
    obj = ObjectMesh.from_file(path)
    assert obj.name == "ball"
    assert obj.num_faces == len(f)
    assert obj.num_vertices == len(v)  # duplicate vertices (STL) merged
    assert obj.is_watertight
    assert obj.volume_m3 == pytest.approx(trimesh.Trimesh(v, f).volume, rel=1e-6)
    assert suffix in SUPPORTED_SUFFIXES


def test_duplicate_vertices_are_merged():
    v, f = _sphere_arrays(1)
    soup_v = v[f].reshape(-1, 3)  # every face has its own three vertices
    soup_f = np.arange(len(soup_v)).reshape(-1, 3)
    obj = ObjectMesh.from_arrays(soup_v, soup_f, units="m")
    assert obj.num_vertices == len(v)
    assert obj.is_watertight


def _write(path, data):
    with open(path, "wb") as fh:
        fh.write(data)
    return path


MALFORMED = {
    "empty": ("empty.obj", b"", r"empty\.obj: file is empty"),
    "nan_vertex": (
        "nan.obj",
        b"v 0 0 0\nv nan 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\n",
        r"nan\.obj: 1 vertices contain NaN or inf \(first: vertex 1",
    ),
    "faces_out_of_range": (
        "oor.obj",
        b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 9\n",
        r"oor\.obj: .*face indices out of range",
    ),
    "no_faces": ("nofaces.obj", b"# only a comment\n", r"no triangles could be read"),
    "garbage_ply": ("garbage.ply", bytes(range(256)) * 8, r"garbage\.ply: could not read the file as PLY"),
    # trimesh >= 5 parses binary garbage as an OBJ with nothing in it (no exception): the same one clear error
    "garbage_obj": ("garbage.obj", bytes(range(256)) * 8,
                    r"garbage\.obj: (could not read the file as OBJ|no triangles could be read .* not a valid OBJ)"),
    "garbage_glb": ("garbage.glb", os.urandom(1000), r"garbage\.glb: could not read the file as GLB"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_give_one_clear_mesh_error(tmp_path, case):
    name, data, pattern = MALFORMED[case]
    path = _write(tmp_path / name, data)
    with pytest.raises(MeshError, match=pattern) as info:
        ObjectMesh.from_file(path)
    err = info.value  # no chained traceback from inside a library
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


@pytest.mark.parametrize("suffix", [".ply", ".stl", ".glb", ".off", ".obj"])
def test_truncated_files(tmp_path, suffix):
    v, f = _sphere_arrays(2)
    full = tmp_path / f"full{suffix}"
    trimesh.Trimesh(v, f, process=False).export(full)
    data = full.read_bytes()
    path = _write(tmp_path / f"cut{suffix}", data[: len(data) // 2])
    with pytest.raises(MeshError, match=rf"cut\{suffix}: (could not read|no triangles)"):
        ObjectMesh.from_file(path)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(MeshError, match="mesh file not found"):
        ObjectMesh.from_file(tmp_path / "nope.obj")
    p = _write(tmp_path / "mesh.xyz", b"1 2 3\n")
    with pytest.raises(MeshError, match=r"unsupported mesh format '\.xyz'"):
        ObjectMesh.from_file(p)


def test_array_validation_messages():
    v, f = _sphere_arrays(1)
    with pytest.raises(MeshError, match=r"vertices must have shape \(V, 3\), got \(42, 2\)"):
        ObjectMesh.from_arrays(v[:, :2], f)
    with pytest.raises(MeshError, match=r"faces must have shape \(F, 3\)"):
        ObjectMesh.from_arrays(v, f[:, :2])
    with pytest.raises(MeshError, match="mesh is empty"):
        ObjectMesh.from_arrays(np.zeros((0, 3)), np.zeros((0, 3), dtype=int))
    bad = v.copy()
    bad[5, 1] = np.inf
    with pytest.raises(MeshError, match=r"vertices contain NaN or inf \(first: vertex 5"):
        ObjectMesh.from_arrays(bad, f)
    f2 = f.copy()
    f2[7, 2] = len(v)
    with pytest.raises(MeshError, match=r"face indices out of range \[0, 42\).*face 7"):
        ObjectMesh.from_arrays(v, f2)
    with pytest.raises(MeshError, match="faces must be integer"):
        ObjectMesh.from_arrays(v, f + 0.5)


def test_degenerate_faces_removed_with_warning():
    v, f = _sphere_arrays(2)
    extra = np.array([[0, 0, 1], [3, 4, 5]])  # repeated index, and a duplicate of an existing face below
    extra[1] = f[10]
    with pytest.warns(UserWarning, match=r"removed 2 degenerate face\(s\)"):
        obj = ObjectMesh.from_arrays(v, np.concatenate([f, extra]), units="m")
    assert obj.num_faces == len(f)
    assert obj.is_watertight
    with pytest.raises(MeshError, match="all 1 faces are degenerate"):
        ObjectMesh.from_arrays(
            np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0.0]]), np.array([[0, 1, 2]]), units="m"
        )


# ---------------------------------------------------------------- units
def test_millimetre_mesh_warns_and_is_not_rescaled():
    v, f = _sphere_arrays(2)
    with pytest.warns(UserWarning, match="looks like millimetres.*units='mm'.*NOT rescaled") as record:
        obj = ObjectMesh.from_arrays(v * 1000, f)
    assert record[0].filename == __file__  # attributed to the caller, not to contactkit internals
    assert obj.extents.max() == pytest.approx(2 * R * 1000, rel=1e-6)


def test_units_mm_rescales_without_warning():
    v, f = _sphere_arrays(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obj = ObjectMesh.from_arrays(v * 1000, f, units="mm")
        cm = ObjectMesh.from_arrays(v * 100, f, units="cm")
    np.testing.assert_allclose(obj.vertices, cm.vertices, atol=1e-12)
    assert obj.extents.max() == pytest.approx(2 * R, rel=1e-6)
    with pytest.raises(UnitsError, match="units must be one of"):
        ObjectMesh.from_arrays(v, f, units="inch")


def test_metre_mesh_gives_no_units_warning(sphere_obj):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ObjectMesh.from_arrays(sphere_obj.vertices, sphere_obj.faces)


# ---------------------------------------------------------------- watertightness and repair
def _holed_sphere():
    v, f = _sphere_arrays(3)
    return v, f[1:]  # one triangle removed: a small hole


def test_open_mesh_is_repaired_by_filling_holes():
    v, f = _holed_sphere()
    with pytest.warns(UserWarning, match="closed it by filling holes"):
        obj = ObjectMesh.from_arrays(v, f, units="m")
    assert obj.is_watertight
    assert obj.num_faces == len(f) + 1


def test_open_mesh_kept_and_flagged_when_not_repaired():
    v, f = _holed_sphere()
    with pytest.warns(UserWarning, match=r"not watertight \(3 boundary edges.*generalised winding numbers"):
        obj = ObjectMesh.from_arrays(v, f, units="m", repair=False)
    assert not obj.is_watertight
    assert obj.volume_is_estimate
    # winding-number estimate on a 48^3 grid, close to the sphere volume
    assert obj.volume_m3 == pytest.approx(4 / 3 * math.pi * R**3, rel=0.03)
    # inside test right away from the hole
    pts = np.array([[0.0, 0.0, 0.0], [0.01, -0.01, 0.02], [0.0, 0.0, 0.05], [0.03, 0.03, 0.03]])
    np.testing.assert_array_equal(obj.contains(pts), [True, True, False, False])


def test_inverted_mesh_is_flipped():
    v, f = _sphere_arrays(2)
    with pytest.warns(UserWarning, match="flipped them to face outward"):
        obj = ObjectMesh.from_arrays(v, f[:, ::-1], units="m")
    assert obj.mesh_volume_m3 > 0


# ---------------------------------------------------------------- hashing and caches
def test_content_hash_depends_on_geometry_not_name(sphere_obj):
    renamed = sphere_obj.with_name("other")
    assert renamed.content_hash == sphere_obj.content_hash
    v = np.array(sphere_obj.vertices)
    again = ObjectMesh(  # same arrays through the trusted constructor
        "copy", v, sphere_obj.faces, is_watertight=True
    )
    assert again.content_hash == sphere_obj.content_hash
    v[3, 0] += 1e-9
    moved = ObjectMesh("copy", v, sphere_obj.faces, is_watertight=True)
    assert moved.content_hash != sphere_obj.content_hash
    assert len(sphere_obj.content_hash) == 16
    assert cache.content_hash(sphere_obj.vertices, sphere_obj.faces) == sphere_obj.content_hash


def test_sample_surface_cached_and_deterministic(sphere_obj):
    cache.MEMORY_CACHE.clear()
    pts, nrm = sphere_obj.sample_surface(500, seed=3)
    assert (sphere_obj.content_hash, "samples", 500, 3) in cache.MEMORY_CACHE
    pts2, _ = sphere_obj.with_name("x").sample_surface(500, seed=3)  # same content hash -> cache hit
    np.testing.assert_array_equal(pts, pts2)
    assert pts.shape == (500, 3) and nrm.shape == (500, 3)
    pts2[:] = 0.0  # returned arrays are copies: the cache is not corrupted
    np.testing.assert_array_equal(sphere_obj.sample_surface(500, seed=3)[0], pts)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), R, rtol=0.02)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, rtol=1e-9)
    assert (np.einsum("ij,ij->i", pts, nrm) > 0).all()  # outward
    other, _ = sphere_obj.sample_surface(500, seed=4)
    assert not np.array_equal(pts, other)
    vn = sphere_obj.vertex_normals()
    np.testing.assert_allclose(vn, sphere_obj.vertices / R, atol=0.02)


def test_sdf_grid_disk_cache_roundtrip(sphere_obj, tmp_path, monkeypatch):
    monkeypatch.setenv("CONTACTKIT_CACHE", str(tmp_path / "c"))
    obj = ObjectMesh("ball2", np.array(sphere_obj.vertices) * 1.01, sphere_obj.faces, is_watertight=True)
    grid = obj.sdf_grid(resolution=12, padding=0.01)
    files = list((tmp_path / "c" / "objects" / obj.content_hash).glob("sdf_12_*.npz"))
    assert len(files) == 1
    assert obj.sdf_grid(resolution=12, padding=0.01) is grid  # memory cache
    cache.MEMORY_CACHE.clear()
    from_disk = obj.sdf_grid(resolution=12, padding=0.01)
    assert from_disk is not grid
    assert torch.equal(from_disk.values, grid.values)
    # value at the centre: about -radius (within a grid spacing)
    centre = torch.zeros(1, 1, 3, dtype=from_disk.values.dtype)
    assert float(from_disk.sample(centre)) == pytest.approx(-R * 1.01, abs=from_disk.spacing)
    # a corrupt cache file is rebuilt with a warning
    files[0].write_bytes(b"not an npz")
    cache.MEMORY_CACHE.clear()
    with pytest.warns(UserWarning, match="unreadable cache file"):
        rebuilt = obj.sdf_grid(resolution=12, padding=0.01)
    assert torch.equal(rebuilt.values, grid.values)


def test_queries_numpy_and_torch(sphere_obj):
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.06]])
    np.testing.assert_array_equal(sphere_obj.contains(pts), [True, False])
    sd = sphere_obj.signed_distance(pts)
    assert isinstance(sd, np.ndarray)
    np.testing.assert_allclose(sd, [-R, 0.02], atol=5e-4)
    t = torch.tensor(pts[None], dtype=torch.float32, requires_grad=True)
    sdt = sphere_obj.signed_distance(t)
    assert sdt.shape == (1, 2) and sdt.dtype == torch.float32
    sdt.sum().backward()
    np.testing.assert_allclose(t.grad[0, 1].numpy(), [0, 0, 1], atol=0.05)
    with pytest.raises(ShapeError, match=r"points must have shape \(N, 3\) or \(B, N, 3\)"):
        sphere_obj.contains(np.zeros((4, 2)))
    with pytest.raises(ContactkitError, match="positive number of samples"):
        sphere_obj.sample_surface(0)


# ---------------------------------------------------------------- transforms and conversion
def test_transformed_is_rigid(sphere_obj):
    obj = make_primitive("box", extents=[0.05, 0.03, 0.1])
    rot, t = _rotation(1), np.array([0.1, -0.2, 0.3])
    moved = obj.transformed(rot, t)
    np.testing.assert_allclose(moved.vertices, obj.vertices @ rot.T + t, atol=1e-15)
    assert moved.content_hash != obj.content_hash
    assert moved.mesh_volume_m3 == pytest.approx(obj.mesh_volume_m3, rel=1e-10)
    assert moved.analytic_volume_m3 == obj.analytic_volume_m3 and moved.is_watertight
    back = moved.transformed(rot.T, -rot.T @ t)
    np.testing.assert_allclose(back.vertices, obj.vertices, atol=1e-15)
    # torch input works the same
    moved_t = obj.transformed(torch.as_tensor(rot), torch.as_tensor(t))
    assert moved_t.content_hash == moved.content_hash
    with pytest.raises(ShapeError, match="proper rotation"):
        obj.transformed(np.diag([1.0, 1.0, -1.0]), t)
    with pytest.raises(ShapeError, match=r"rot must have shape \(3, 3\)"):
        obj.transformed(np.eye(4), t)


def test_to_torch_and_principal_axes():
    obj = make_primitive("box", extents=[0.02, 0.1, 0.05])
    v, f = obj.to_torch(dtype=torch.float64)
    assert v.shape == (8, 3) and v.dtype == torch.float64 and f.dtype == torch.long
    v32, _ = obj.to_torch()
    assert v32.dtype == torch.float32
    centre, axes = obj.principal_axes()
    np.testing.assert_allclose(centre, 0, atol=1e-12)
    np.testing.assert_allclose(np.abs(axes[0]), [0, 1, 0], atol=1e-9)  # longest side first
    np.testing.assert_allclose(np.abs(axes[2]), [1, 0, 0], atol=1e-9)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_queries_on_cuda(sphere_obj):
    v, f = sphere_obj.to_torch(device="cuda", dtype=torch.float64)
    assert v.is_cuda and f.dtype == torch.long
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.06]]], device="cuda", dtype=torch.float64)
    inside = sphere_obj.contains(pts)
    assert inside.is_cuda and inside.cpu().tolist() == [[True, False]]
    sd = sphere_obj.signed_distance(pts)
    assert sd.is_cuda
    np.testing.assert_allclose(sd.cpu().numpy(), [[-R, 0.02]], atol=5e-4)
    grid = sphere_obj.sdf_grid(resolution=12, padding=0.01).to("cuda", torch.float32)
    assert grid.sample(pts.float()).is_cuda

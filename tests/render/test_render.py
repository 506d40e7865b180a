"""Rendered views: camera conventions checked against the rendered pixels, masks against depth, keypoints
against the hand model, determinism. Skipped (with the reason) only when no offscreen GL library is present."""

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

from contactkit.geometry import signed_distance
from contactkit.hands import load_hand
from contactkit.objects import make_primitive
from contactkit.objects.library import object_box_corners
from contactkit.render.camera import intrinsics, look_at, project, to_camera
from contactkit.render.mujoco_backend import PairRenderer, gl_available
from contactkit.render.views import render_grasp_views

GL_OK, GL_WHY = gl_available()
pytestmark = pytest.mark.skipif(not GL_OK, reason=f"offscreen GL unavailable: {GL_WHY}")

ROT = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # object pose: 90 degrees about z
TRANSL = np.array([0.01, -0.02, 0.005])


@pytest.fixture(scope="module")
def scene():
    hand = load_hand("openhand", "right")
    with torch.no_grad():
        out = hand(torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.0, 0.0]]), torch.zeros(2, 45), None,
                   torch.tensor([[0.0, 0.0, 0.09], [0.0, 0.06, 0.08]]))
    hv, kp = out.vertices.double().numpy(), out.keypoints.double().numpy()
    obj = make_primitive("box", extents=(0.05, 0.07, 0.1))
    corners, _ = object_box_corners(obj)
    faces = hand.closed_faces.numpy()
    renderer = PairRenderer(obj.vertices, obj.faces, hv, faces)
    ov_world = np.asarray(obj.vertices) @ ROT.T + TRANSL
    views = render_grasp_views(renderer, 1, hv[1], kp[1], ov_world, corners @ ROT.T + TRANSL, ROT, TRANSL, 3,
                               np.random.default_rng(7))
    again = render_grasp_views(renderer, 1, hv[1], kp[1], ov_world, corners @ ROT.T + TRANSL, ROT, TRANSL, 3,
                               np.random.default_rng(7))
    yield {"views": views, "again": again, "hv": hv[1], "kp": kp[1], "faces": faces, "obj": obj,
           "corners": corners, "renderer": renderer}
    renderer.close()


def test_contract_shapes_and_dtypes(scene):
    v = scene["views"][0]
    assert v["rgb"].shape == (256, 256, 3) and v["rgb"].dtype == np.uint8
    assert v["depth"].shape == (256, 256) and v["depth"].dtype == np.float32
    assert v["hand_mask"].dtype == bool and v["object_mask"].dtype == bool
    for key, shape in (("K", (3, 3)), ("cam_from_world", (4, 4)), ("hand_keypoints_3d", (21, 3)),
                       ("hand_keypoints_2d", (21, 2)), ("object_corners_3d", (8, 3)), ("object_corners_2d", (8, 2))):
        assert v[key].shape == shape and v[key].dtype == np.float32, key


def test_reprojection_of_stored_3d_equals_stored_2d(scene):
    for v in scene["views"]:
        K = v["K"].astype(np.float64)
        T = v["cam_from_world"].astype(np.float64)
        np.testing.assert_allclose(v["hand_keypoints_3d"], scene["kp"] @ T[:3, :3].T + T[:3, 3], atol=1e-6)
        corners_world = scene["corners"] @ ROT.T + TRANSL
        np.testing.assert_allclose(v["object_corners_3d"], corners_world @ T[:3, :3].T + T[:3, 3], atol=1e-6)
        for k3, k2 in (("hand_keypoints_3d", "hand_keypoints_2d"), ("object_corners_3d", "object_corners_2d")):
            p = v[k3].astype(np.float64) @ K.T
            uv = p[:, :2] / p[:, 2:]
            assert np.abs(uv - v[k2]).max() < 0.5, k2


def test_masks_agree_with_depth(scene):
    for v in scene["views"]:
        drawn = v["depth"] > 0
        assert not (v["hand_mask"] & v["object_mask"]).any()
        assert (drawn == (v["hand_mask"] | v["object_mask"])).mean() > 0.999
        assert v["hand_mask"].sum() > 200 and v["object_mask"].sum() > 200


def test_depth_unprojects_onto_the_rendered_surfaces(scene):
    """Pixel centres unprojected with the stored K, depth and extrinsics land on the meshes: this pins the
    pixel-centre convention, the focal length and the world frame."""
    obj = scene["obj"]
    for v in scene["views"]:
        K, T = v["K"].astype(np.float64), v["cam_from_world"].astype(np.float64)
        for mask, verts, faces in ((v["object_mask"], np.asarray(obj.vertices) @ ROT.T + TRANSL, obj.faces),
                                   (v["hand_mask"], scene["hv"], scene["faces"])):
            rows, cols = np.nonzero(mask)
            z = v["depth"][rows, cols].astype(np.float64)
            cam = np.stack([(cols - K[0, 2]) / K[0, 0] * z, (rows - K[1, 2]) / K[1, 1] * z, z], 1)
            world = (cam - T[:3, 3]) @ T[:3, :3]
            sd = signed_distance(torch.as_tensor(world)[None], torch.tensor(np.array(verts)),
                                 torch.tensor(np.array(faces)))
            assert np.percentile(np.abs(sd.numpy()), 95) < 5e-4
            assert np.abs(sd.numpy()).max() < 5e-3


def test_box_silhouette_matches_projected_hull(scene):
    """A box alone: pixels whose centre lies > 0.3 px inside the projected hull are drawn, > 0.3 px outside are
    not (a half-pixel error in the principal point would break this)."""
    obj = scene["obj"]
    renderer = scene["renderer"]
    K = intrinsics(45.0, 256, 256)
    T = look_at(np.array([0.25, -0.2, 0.15]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    from contactkit.render.camera import Camera

    cam = Camera(K, T, 256, 256, 45.0)
    img = renderer.render(0, cam, object_rotation=np.eye(3), object_translation=np.zeros(3),
                          hand_rgb=np.ones(3), object_rgb=np.ones(3), light_dirs=np.ones((2, 3)),
                          light_rgb=np.ones((2, 3)))
    uv = project(to_camera(np.asarray(obj.vertices), T), K)
    hull = ConvexHull(uv)
    rows, cols = np.mgrid[0:256, 0:256]
    pix = np.stack([cols.ravel(), rows.ravel()], 1).astype(np.float64)
    signed = (pix @ hull.equations[:, :2].T + hull.equations[:, 2]).max(1).reshape(256, 256)  # > 0 outside
    drawn = img["object_mask"] | img["hand_mask"]
    assert drawn[signed < -0.3].all()  # the hand may hide part of the box, never leave a hole
    assert not (img["object_mask"] & (signed > 0.3)).any()
    assert drawn.sum() > 1000


def test_visible_keypoints_fall_on_the_hand(scene):
    hits = total = 0
    for v in scene["views"]:
        uv = np.round(v["hand_keypoints_2d"]).astype(int)
        inside = (uv >= 0).all(1) & (uv[:, 0] < 256) & (uv[:, 1] < 256)
        for (u, r), z in zip(uv[inside], v["hand_keypoints_3d"][inside, 2], strict=True):
            d = v["depth"][r, u]
            if d > 0 and z <= d + 0.02:  # not hidden behind the object (joints lie ~1 cm inside the skin)
                total += 1
                hits += bool(v["hand_mask"][max(r - 2, 0):r + 3, max(u - 2, 0):u + 3].any())
    assert total >= 10 and hits / total > 0.9, (hits, total)


def test_views_are_fixed_by_the_seed_and_differ_between_views(scene):
    for a, b in zip(scene["views"], scene["again"], strict=True):
        for key in ("rgb", "depth", "hand_mask", "cam_from_world", "hand_keypoints_2d"):
            np.testing.assert_array_equal(a[key], b[key])
    v0, v1 = scene["views"][:2]
    assert not np.allclose(v0["cam_from_world"], v1["cam_from_world"])
    assert v0["appearance"] != v1["appearance"]
    bg = ~(v0["hand_mask"] | v0["object_mask"])
    assert v0["rgb"][bg].std() > 1.0  # a random background, not flat black

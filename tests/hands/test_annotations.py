"""Tests of contactkit.hands.annotations, regions and anchors on OpenHand and a synthetic 778-vertex hand."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import igl
import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).parent))
import hand_fixtures as hf  # noqa: E402

from contactkit.errors import ContactkitError, ShapeError  # noqa: E402
from contactkit.hands.anatomy import FINGER_JOINTS, joint_frames, twist_splay_bend_to_pose  # noqa: E402
from contactkit.hands.anchors import anchors_from_vertices, ray_mesh_first_hit  # noqa: E402
from contactkit.hands.annotations import HandAnnotations, derive_annotations  # noqa: E402
from contactkit.hands.lbs import lbs  # noqa: E402
from contactkit.hands.regions import (  # noqa: E402
    FINGERTIP_REGIONS,
    PALM_CARPAL,
    PALM_METACARPAL,
    REGION_NAMES,
    make_regions_connected,
    vertex_adjacency,
)

HANDS = ["openhand", "synthetic778", "openhand_left", "synthetic778_left"]


@functools.cache
def rest_hand(name: str) -> hf.RestHand:
    if name == "openhand":
        return hf.openhand_rest("right")
    if name == "openhand_left":
        return hf.openhand_rest("left")
    if name == "synthetic778":
        return hf.synthetic_rest()
    if name == "synthetic778_left":
        return hf.mirrored(hf.synthetic_rest())
    raise KeyError(name)


@functools.cache
def annotations(name: str) -> HandAnnotations:
    h = rest_hand(name)
    return derive_annotations(h.vertices, h.faces, h.joints, h.weights, h.tips, h.side)


def _random_poses(n: int, seed: int, scale: float = 0.35) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, 16, 3, generator=g, dtype=torch.float64)


def _posed(h: hf.RestHand, pose: torch.Tensor) -> torch.Tensor:
    parents = torch.as_tensor(hf.KINTREE_PARENTS)
    out = lbs(
        pose, None, torch.tensor(h.vertices), None, None, torch.tensor(h.joints), None, parents,
        torch.tensor(h.weights),
    )  # fmt: skip
    return out.vertices


def test_synthetic_hand_is_mano_sized_and_closed() -> None:
    h = rest_hand("synthetic778")
    assert h.vertices.shape == (778, 3) and h.faces.shape == (1552, 3)
    assert rest_hand("openhand").vertices.shape == (1159, 3)


@pytest.mark.parametrize("name", HANDS)
def test_fields_shapes_and_counts(name: str) -> None:
    h, a = rest_hand(name), annotations(name)
    v = len(h.vertices)
    assert a.region_of_vertex.shape == (v,) and a.region_of_vertex.dtype == np.int64
    assert a.region_of_vertex.min() >= 0 and a.region_of_vertex.max() < 17
    assert a.region_names == REGION_NAMES and len(a.region_names) == 17
    assert a.anchor_faces.shape == (32,) and a.anchor_bary.shape == (32, 3) and a.anchor_region.shape == (32,)
    assert a.palmar_mask.shape == (v,) and a.palmar_mask.dtype == bool
    np.testing.assert_array_equal(a.fingertip_vertices, h.tips)
    np.testing.assert_array_equal(a.fingertip_regions, FINGERTIP_REGIONS)
    counts = np.bincount(a.anchor_region, minlength=17)
    expected = np.ones(17, dtype=np.int64)
    expected[list(FINGERTIP_REGIONS)] = 3
    expected[PALM_METACARPAL], expected[PALM_CARPAL] = 4, 3
    np.testing.assert_array_equal(counts, expected)
    assert np.all(np.diff(a.anchor_region) >= 0)  # anchors ordered by region
    assert np.all(a.anchor_bary >= -1e-12)
    np.testing.assert_allclose(a.anchor_bary.sum(1), 1.0, atol=1e-12)
    assert set(a.contact_zones) == {"palm", "thumb", "index", "middle", "ring", "little"}


@pytest.mark.parametrize("name", HANDS)
def test_regions_non_empty_and_connected(name: str) -> None:
    h, a = rest_hand(name), annotations(name)
    adj = vertex_adjacency(h.faces, len(h.vertices))
    for r in range(17):
        idx = np.flatnonzero(a.region_of_vertex == r)
        assert len(idx) > 0, REGION_NAMES[r]
        n_comp, _ = connected_components(adj[idx][:, idx], directed=False)
        assert n_comp == 1, f"{REGION_NAMES[r]} has {n_comp} components"


@pytest.mark.parametrize("name", HANDS)
def test_regions_follow_the_skeleton(name: str) -> None:
    """Each finger region's vertices lie closer to their own finger's bones than to any other finger's."""
    h, a = rest_hand(name), annotations(name)
    tips = h.vertices[h.tips]
    chains = [np.vstack([h.joints[list(js)], tips[f]]) for f, js in enumerate(FINGER_JOINTS)]

    def dist_to_chain(p: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.min([hf._seg_dist(p, c[k], c[k + 1]) for k in range(3)], axis=0)

    for f in range(5):
        idx = np.flatnonzero(a.region_of_vertex // 3 == f)
        own = dist_to_chain(h.vertices[idx], chains[f])
        other = np.min([dist_to_chain(h.vertices[idx], chains[g]) for g in range(5) if g != f], axis=0)
        assert np.mean(own < other) > 0.97
    # distal regions contain their fingertip vertex
    np.testing.assert_array_equal(a.region_of_vertex[h.tips], FINGERTIP_REGIONS)


def test_island_relabelling_makes_regions_connected() -> None:
    # a strip of 6 vertices in a path: labels 0 0 1 0 0 0 -> the lone 1 stays, islands of 0 merge
    faces = np.array([[0, 1, 6], [1, 2, 6], [2, 3, 6], [3, 4, 6], [4, 5, 6]])
    adj = vertex_adjacency(faces, 7)
    region = np.array([0, 0, 1, 0, 0, 0, 1])
    fixed = make_regions_connected(region, adj, num_regions=2)
    for r in range(2):
        idx = np.flatnonzero(fixed == r)
        assert connected_components(adj[idx][:, idx], directed=False)[0] == 1
    # path 0-1-2 of label 0 and an island vertex 4 of label 0 cut off by label-1 vertices
    faces2 = np.array([[0, 1, 5], [1, 2, 5], [2, 3, 5], [3, 4, 5]])
    adj2 = vertex_adjacency(faces2, 6)
    region2 = np.array([0, 0, 0, 1, 0, 1])
    fixed2 = make_regions_connected(region2, adj2, num_regions=2)
    assert fixed2[4] == 1 and (fixed2[:3] == 0).all()


@pytest.mark.parametrize("name", ["openhand", "synthetic778"])
def test_anchors_on_surface_for_random_poses(name: str) -> None:
    h, a = rest_hand(name), annotations(name)
    verts = _posed(h, _random_poses(4, seed=1))
    anchors = anchors_from_vertices(verts, torch.tensor(h.faces), a.anchor_faces, a.anchor_bary)
    assert anchors.shape == (4, 32, 3)
    for b in range(4):
        v = verts[b].numpy()
        sq, _, _ = igl.point_mesh_squared_distance(anchors[b].numpy(), v, h.faces)
        assert np.sqrt(sq).max() < 1e-4
    rest = anchors_from_vertices(
        torch.tensor(h.vertices)[None], torch.tensor(h.faces), a.anchor_faces, a.anchor_bary
    )
    sq, _, _ = igl.point_mesh_squared_distance(rest[0].numpy(), h.vertices, h.faces)
    assert np.sqrt(sq).max() < 1e-9


@pytest.mark.parametrize("name", HANDS)
def test_anchors_on_the_palmar_side(name: str) -> None:
    """Every anchor lies on the palm side of its control point's bone (the rays went palmar)."""
    h, a = rest_hand(name), annotations(name)
    anchors = a.anchors(torch.tensor(h.vertices)[None], torch.tensor(h.faces))[0].numpy()
    n = a.palm_normal
    wrist = h.joints[0]
    frames = joint_frames(torch.tensor(h.joints), h.side, rest_tips=torch.tensor(h.vertices[h.tips])).numpy()
    for k, r in enumerate(a.anchor_region):
        if r >= 15:
            assert (anchors[k] - wrist) @ n > 0.0
        else:
            f, p = divmod(int(r), 3)
            chain = [*h.joints[list(FINGER_JOINTS[f])], h.vertices[h.tips[f]]]
            mid = 0.5 * (chain[p] + chain[p + 1])
            bone = chain[p + 1] - chain[p]
            off = anchors[k] - mid
            off = off - (off @ bone) / (bone @ bone) * bone
            palmar = frames[FINGER_JOINTS[f][p]][:, 1]  # the splay axis: the bone's palmar direction
            assert off @ palmar > 0.0, (name, k, REGION_NAMES[r])
            if f > 0:  # fingers: also on the palm side of the palm normal
                assert off @ n > 0.0, (name, k, REGION_NAMES[r])


def _natural_poses(
    h: hf.RestHand, n: int, seed: int, max_flex: float = 1.2, max_splay: float = 0.15
) -> torch.Tensor:
    """Random plausible poses: flexion in [0, max_flex] rad, |splay| <= max_splay rad, no twist."""
    g = torch.Generator().manual_seed(seed)
    frames = joint_frames(torch.tensor(h.joints), h.side, rest_tips=torch.tensor(h.vertices[h.tips]))
    comp = torch.zeros(n, 15, 3, dtype=torch.float64)
    comp[..., 2] = max_flex * torch.rand(n, 15, generator=g, dtype=torch.float64)
    comp[..., 1] = 2 * max_splay * (torch.rand(n, 15, generator=g, dtype=torch.float64) - 0.5)
    pose = twist_splay_bend_to_pose(comp, frames).reshape(n, 15, 3)
    return torch.cat([torch.zeros(n, 1, 3, dtype=torch.float64), pose], dim=1)


@pytest.mark.parametrize("name", HANDS)
def test_fingertip_anchors_closest_to_own_tip(name: str) -> None:
    """At rest and in randomly flexed poses (no adduction: tips stay apart), each fingertip anchor is nearest
    to its own finger's tip. (When two fingertips touch, as in a pinch, no such rule can hold.)"""
    h, a = rest_hand(name), annotations(name)
    poses = _natural_poses(h, 4, seed=3, max_flex=0.6, max_splay=0.0)
    verts = torch.cat([torch.tensor(h.vertices)[None], _posed(h, poses)])
    anchors = anchors_from_vertices(verts, torch.tensor(h.faces), a.anchor_faces, a.anchor_bary).numpy()
    for b in range(len(verts)):
        tips = verts[b].numpy()[h.tips]
        for f, r in enumerate(FINGERTIP_REGIONS):
            ks = np.flatnonzero(a.anchor_region == r)
            assert len(ks) == 3
            d = np.linalg.norm(anchors[b, ks, None] - tips[None], axis=-1)
            assert (d.argmin(axis=1) == f).all(), (name, b, f, d)


@pytest.mark.parametrize("name", HANDS)
def test_palmar_mask_points_to_palm_side(name: str) -> None:
    h, a = rest_hand(name), annotations(name)
    import trimesh

    normals = trimesh.Trimesh(h.vertices, h.faces, process=False).vertex_normals
    palm = (a.region_of_vertex >= 15) & a.palmar_mask
    assert np.mean(normals[palm] @ a.palm_normal > 0) > 0.9
    # independent of normals: masked palm vertices lie in front of the plane through wrist and MCPs
    mcps = h.joints[[0, 1, 4, 7, 10]].mean(0)
    assert np.mean((h.vertices[palm] - mcps) @ a.palm_normal > 0) > 0.9
    # and the unmasked palm vertices mostly behind it
    back = (a.region_of_vertex >= 15) & ~a.palmar_mask
    assert np.mean((h.vertices[back] - mcps) @ a.palm_normal < 0) > 0.75
    assert 0.3 < a.palmar_mask.mean() < 0.7


@pytest.mark.parametrize("name", HANDS)
def test_contact_zones(name: str) -> None:
    h, a = rest_hand(name), annotations(name)
    tips = h.vertices[h.tips]
    for f, finger in enumerate(("thumb", "index", "middle", "ring", "little")):
        z = a.contact_zones[finger]
        assert len(z) >= 3 and z.dtype == np.int64
        assert (a.region_of_vertex[z] == FINGERTIP_REGIONS[f]).all()
        assert a.palmar_mask[z].all()
        d = np.linalg.norm(h.vertices[z][:, None] - tips[None], axis=-1)
        assert (d.argmin(1) == f).all()
    palm = a.contact_zones["palm"]
    assert len(palm) >= 10 and (a.region_of_vertex[palm] >= 15).all() and a.palmar_mask[palm].all()


def test_mirror_equivariance() -> None:
    """The mirrored right hand, declared left, gets the same regions and mirrored anchors."""
    right = rest_hand("synthetic778")
    ra, la = annotations("synthetic778"), annotations("synthetic778_left")
    np.testing.assert_array_equal(ra.region_of_vertex, la.region_of_vertex)
    np.testing.assert_array_equal(ra.palmar_mask, la.palmar_mask)
    left = rest_hand("synthetic778_left")
    pr = ra.anchors(torch.tensor(right.vertices)[None], torch.tensor(right.faces))[0].numpy()
    pl = la.anchors(torch.tensor(left.vertices)[None], torch.tensor(left.faces))[0].numpy()
    np.testing.assert_allclose(pl, pr * np.array([-1.0, 1.0, 1.0]), atol=1e-9)


def test_invariance_under_rigid_motion() -> None:
    h, a = rest_hand("openhand"), annotations("openhand")
    rot = torch.linalg.matrix_exp(
        torch.tensor([[0.0, -0.7, 0.3], [0.7, 0.0, -1.1], [-0.3, 1.1, 0.0]], dtype=torch.float64)
    ).numpy()
    t = np.array([0.3, -0.2, 0.5])
    b = derive_annotations(h.vertices @ rot.T + t, h.faces, h.joints @ rot.T + t, h.weights, h.tips, h.side)
    np.testing.assert_array_equal(a.region_of_vertex, b.region_of_vertex)
    np.testing.assert_array_equal(a.anchor_faces, b.anchor_faces)
    np.testing.assert_allclose(a.anchor_bary, b.anchor_bary, atol=1e-7)
    for k in a.contact_zones:
        np.testing.assert_array_equal(a.contact_zones[k], b.contact_zones[k])


def test_ray_mesh_first_hit_known_answer() -> None:
    verts = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    hits = ray_mesh_first_hit(
        np.array([[0.1, 0.2, 0.3], [0.1, 0.1, 0.1]]), np.array([[0.0, 0, -1], [1, 0, 0]]), verts, faces
    )
    assert hits.face[0] == 0 and abs(hits.t[0] - 0.3) < 1e-12
    np.testing.assert_allclose(hits.bary[0] @ verts[faces[0]], [0.1, 0.2, 0.0], atol=1e-12)
    assert hits.face[1] == 3 and abs(hits.t[1] - 0.7) < 1e-12
    miss = ray_mesh_first_hit(np.array([[2.0, 2, 2]]), np.array([[1.0, 0, 0]]), verts, faces)
    assert miss.face[0] == -1 and np.isinf(miss.t[0])


def test_anchors_from_vertices_reference_gradcheck_and_dtype() -> None:
    g = torch.Generator().manual_seed(0)
    verts = torch.randn(2, 10, 3, generator=g, dtype=torch.float64, requires_grad=True)
    faces = torch.randint(0, 10, (7, 3), generator=g)
    af = torch.randint(0, 7, (32,), generator=g)
    bary = torch.rand(32, 3, generator=g, dtype=torch.float64)
    bary = bary / bary.sum(1, keepdim=True)
    out = anchors_from_vertices(verts, faces, af, bary)
    naive = torch.stack(
        [
            torch.stack([sum(bary[k, c] * verts[b, faces[af[k], c]] for c in range(3)) for k in range(32)])
            for b in range(2)
        ]
    )
    torch.testing.assert_close(out, naive)
    assert torch.autograd.gradcheck(lambda v: anchors_from_vertices(v, faces, af, bary), (verts,))
    out32 = anchors_from_vertices(verts.detach().float(), faces, af.numpy(), bary.numpy())
    assert out32.dtype == torch.float32 and out32.shape == (2, 32, 3)


def test_anchors_from_vertices_bad_input() -> None:
    with pytest.raises(ShapeError, match=r"vertices must be a \(B, V, 3\)"):
        anchors_from_vertices(
            torch.zeros(10, 3), torch.zeros(1, 3, dtype=torch.long), [0], np.ones((1, 3)) / 3
        )
    with pytest.raises(ShapeError, match="anchor_bary"):
        anchors_from_vertices(
            torch.zeros(1, 10, 3), torch.zeros(1, 3, dtype=torch.long), [0, 0], np.ones((1, 3))
        )


def test_derive_annotations_bad_input() -> None:
    h = rest_hand("synthetic778")
    with pytest.raises(ShapeError, match=r"rest_joints must be \(16, 3\)"):
        derive_annotations(h.vertices, h.faces, h.joints[:15], h.weights, h.tips, "right")
    with pytest.raises(ShapeError, match=r"skinning_weights must be \(V, 16\)"):
        derive_annotations(h.vertices, h.faces, h.joints, h.weights[:, :15], h.tips, "right")
    with pytest.raises(ShapeError, match="fingertip_vertices"):
        derive_annotations(h.vertices, h.faces, h.joints, h.weights, h.tips[:4], "right")
    with pytest.raises(ContactkitError, match="side must be"):
        derive_annotations(h.vertices, h.faces, h.joints, h.weights, h.tips, "both")  # type: ignore[arg-type]
    with pytest.raises(ContactkitError, match="faces index vertices"):
        derive_annotations(h.vertices, h.faces + 1000, h.joints, h.weights, h.tips, "right")


def test_wrong_side_warns() -> None:
    h = rest_hand("synthetic778")
    with pytest.warns(UserWarning, match="thumb lies on the back"):
        derive_annotations(h.vertices, h.faces, h.joints, h.weights, h.tips, "left")


def test_arrays_round_trip(tmp_path: Path) -> None:
    a = annotations("synthetic778")
    np.savez(tmp_path / "ann.npz", **a.to_arrays())
    with np.load(tmp_path / "ann.npz") as z:
        b = HandAnnotations.from_arrays(dict(z))
    np.testing.assert_array_equal(a.region_of_vertex, b.region_of_vertex)
    np.testing.assert_array_equal(a.anchor_faces, b.anchor_faces)
    np.testing.assert_array_equal(a.anchor_bary, b.anchor_bary)
    assert a.region_names == b.region_names
    for k in a.contact_zones:
        np.testing.assert_array_equal(a.contact_zones[k], b.contact_zones[k])
    with pytest.raises(ContactkitError, match="lack 'anchor_faces'"):
        HandAnnotations.from_arrays({k: v for k, v in a.to_arrays().items() if k != "anchor_faces"})


def test_hand_model_annotations_match_direct_derivation() -> None:
    """A MANO-format HandModel (synthetic, 778 vertices) derives the same annotations; anchors follow it."""
    h = rest_hand("synthetic778")
    model = hf.as_hand_model(h)
    a = model.annotations
    np.testing.assert_array_equal(a.region_of_vertex, annotations("synthetic778").region_of_vertex)
    pose = 0.3 * torch.randn(3, 45, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    out = model(torch.zeros(3, 3, dtype=torch.float64), pose)
    anchors = anchors_from_vertices(out.vertices, model.faces, a.anchor_faces, a.anchor_bary)
    for b in range(3):
        sq, _, _ = igl.point_mesh_squared_distance(anchors[b].numpy(), out.vertices[b].numpy(), h.faces)
        assert np.sqrt(sq).max() < 1e-4


def _load_openhand_model():  # noqa: ANN202
    try:
        from contactkit.hands import load_hand  # type: ignore[attr-defined]

        return load_hand("openhand", dtype=torch.float64)
    except Exception as exc:  # the hand model is another module; skip cleanly if it cannot load
        pytest.skip(f"OpenHand model not loadable: {exc}")


def test_openhand_model_anchors_follow_random_poses() -> None:
    """Through the real OpenHand layer (global rotation, translation, random pose): anchors within 0.1 mm."""
    hand = _load_openhand_model()
    g = torch.Generator().manual_seed(11)
    b = 4
    out = hand(
        torch.randn(b, 3, generator=g, dtype=torch.float64),
        0.4 * torch.randn(b, 45, generator=g, dtype=torch.float64),
        None,
        0.1 * torch.randn(b, 3, generator=g, dtype=torch.float64),
    )
    ann = hand.annotations
    anchors = anchors_from_vertices(out.vertices, hand.faces, ann.anchor_faces, ann.anchor_bary)
    torch.testing.assert_close(anchors, hand.anchors(out.vertices))
    faces = hand.faces.numpy()
    for k in range(b):
        sq, _, _ = igl.point_mesh_squared_distance(anchors[k].numpy(), out.vertices[k].numpy(), faces)
        assert np.sqrt(sq).max() < 1e-4

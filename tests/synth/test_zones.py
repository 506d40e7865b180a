"""Contact zones from grasp statistics: thresholds, connected regions, labels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from contactkit.errors import ShapeError
from contactkit.geometry.normals import vertex_normals
from contactkit.hands import load_hand
from contactkit.io.grasps import GraspSet
from contactkit.objects import load_object
from contactkit.synth.zones import ZONE_NAMES, contact_frequency, derive_contact_zones, zones_from_frequency


@pytest.fixture(scope="module")
def hand():
    return load_hand("openhand", "right")


def test_contact_frequency_counts_inside_and_near():
    sd = np.array([[-0.01, 0.002, 0.004], [0.001, 0.0031, 0.003], [0.5, 0.0, 0.01]])
    np.testing.assert_allclose(contact_frequency(sd, 0.003), [2 / 3, 2 / 3, 1 / 3])
    with pytest.raises(ShapeError, match=r"signed_dist must have shape \(N, V\)"):
        contact_frequency(np.zeros(3))


def test_zones_from_frequency_on_a_strip():
    # a strip of 8 quads (vertices 0..17): two separated hot patches, labelled by majority region
    top = np.arange(9)
    bottom = top + 9
    faces = np.concatenate([np.stack([top[:-1], bottom[:-1], top[1:]], 1),
                            np.stack([top[1:], bottom[:-1], bottom[1:]], 1)])
    freq = np.zeros(18)
    freq[[0, 1, 9, 10]] = 0.5  # patch A
    freq[[6, 7, 8, 16, 17]] = 0.2  # patch B
    freq[4] = 0.07  # below 8 %
    regions = np.zeros(18, dtype=np.int64)
    regions[[6, 7, 8, 16]] = 1
    names = ["thumb_distal", "index_distal"]
    z = zones_from_frequency(freq, faces, regions, names, mode="obman")
    assert z.n_components == 2 and sorted(z.component_labels) == ["index", "thumb"]
    assert z.zones["thumb"].tolist() == [0, 1, 9, 10]
    assert z.zones["index"].tolist() == [6, 7, 8, 16, 17]
    assert all(z.zones[k].size == 0 for k in ("palm", "middle", "ring", "little"))
    assert z.components[4] == -1
    # per finger: vertex 17 (thumb region) hanging on the index patch is split off and loses to patch A
    zf = zones_from_frequency(freq, faces, regions, names)
    assert zf.zones["thumb"].tolist() == [0, 1, 9, 10] and zf.zones["index"].tolist() == [6, 7, 8, 16]
    # a patch bridging two fingers: one region in "obman" mode, split per finger by default
    bridge = np.zeros(18)
    bridge[[3, 4, 5, 12, 13]] = 0.5
    reg2 = np.zeros(18, dtype=np.int64)
    reg2[[5, 13, 14]] = 1
    ob = zones_from_frequency(bridge, faces, reg2, names, mode="obman")
    assert ob.n_components == 1 and ob.zones["thumb"].tolist() == [3, 4, 5, 12, 13]
    pf = zones_from_frequency(bridge, faces, reg2, names)
    assert pf.zones["thumb"].tolist() == [3, 4, 12] and pf.zones["index"].tolist() == [5, 13]
    # two separate patches of one finger: the one of larger total frequency is the zone
    two = np.zeros(18)
    two[[0, 9]] = 0.3
    two[[7, 8, 16, 17]] = 0.2
    pf2 = zones_from_frequency(two, faces, np.zeros(18, dtype=np.int64), names)
    assert pf2.zones["thumb"].tolist() == [7, 8, 16, 17] and pf2.n_components == 1
    with pytest.raises(ShapeError, match="mode must be 'per_finger' or 'obman'"):
        zones_from_frequency(two, faces, regions, names, mode="all")
    with pytest.raises(ShapeError, match=r"region_of_vertex must have shape \(18,\)"):
        zones_from_frequency(freq, faces, regions[:5], names)


def test_derive_zones_from_synthetic_grasps(hand):
    """Tiny spheres touching the thumb tip in 10 grasps, the index tip in 9 and the middle tip in 1 (5 %)."""
    with torch.no_grad():
        rest = hand(torch.zeros(1, 3), torch.zeros(1, 45), None, torch.zeros(1, 3)).vertices.double()
    normals = vertex_normals(rest, hand.faces)[0].numpy()
    verts = rest[0].numpy()
    tips = np.asarray(hand.annotations.fingertip_vertices)
    radius = 0.006
    sphere = load_object(f"sphere:radius={radius}")
    which = [0] * 10 + [1] * 9 + [2]
    centres = np.stack([verts[tips[f]] + normals[tips[f]] * (radius + 0.0005) for f in which])
    n = len(which)
    g = GraspSet.from_arrays(hand_model="openhand", side="right", global_orient=np.zeros((n, 3)),
                             hand_pose=np.zeros((n, 45)), objects=sphere, num_betas=hand.num_betas,
                             object_translation=centres)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = derive_contact_zones(g, hand)
    assert set(z.zones) == set(ZONE_NAMES)
    assert z.zones["thumb"].size > 0 and z.zones["index"].size > 0
    assert tips[0] in z.zones["thumb"] and tips[1] in z.zones["index"]
    assert z.zones["middle"].size == 0  # 1 grasp in 20 = 5 % < 8 %
    assert z.frequency[tips[0]] == pytest.approx(0.5) and z.frequency[tips[1]] == pytest.approx(0.45)
    assert sorted(z.component_labels) == ["index", "thumb"]
    # each zone is one connected region of the hand mesh
    assert len(set(z.components[z.zones["thumb"]])) == 1 and len(set(z.components[z.zones["index"]])) == 1

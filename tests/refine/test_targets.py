"""The target contract: source labels and per-row subsets (shared zones stay whole)."""

import torch

from contactkit.contact.choir import encode
from contactkit.targets import ContactTargets, is_oracle_source, method_label, target_source_of


def test_method_label_marks_every_oracle_source():
    for source in ("oracle", "reference", "file:/data/gt.npz", "given:reference"):
        assert is_oracle_source(source) and method_label("obman", source) == "obman (oracle)"
    for source in ("learned:deepcontact", "learned:picr", "statistics:contact-zones", "none", "given", None):
        assert not is_oracle_source(source) and method_label("obman", source) == "obman"


def test_target_source_of_reads_the_refined_set():
    class Set:
        attrs = {"refine": {"targets": "learned:picr"}}

    assert target_source_of(Set()) == "learned:picr"
    Set.attrs = {"targets": "oracle", "refine": {"targets": "oracle"}}
    assert target_source_of(Set()) == "oracle"
    Set.attrs = {}
    assert target_source_of(Set()) is None


def test_subset_indexes_rows_and_keeps_shared_zones_whole():
    """Regression: with as many grasps as zones (6), a batch subset must not cut the (Z, V) zone mask."""
    g = torch.Generator().manual_seed(0)
    zones = torch.rand(6, 50, generator=g) > 0.5
    hand_contact = torch.rand(6, 50, generator=g)
    pts = torch.randn(6, 40, 3, generator=g, dtype=torch.float64) * 0.04
    verts = torch.randn(6, 60, 3, generator=g, dtype=torch.float64) * 0.05
    normals = torch.nn.functional.normalize(torch.randn(6, 60, 3, generator=g, dtype=torch.float64), dim=-1)
    field = encode(pts, verts, normals, verts[:, :32], resolution=4)
    t = ContactTargets(hand_contact=hand_contact, contact_zones=zones, choir=field)
    idx = torch.tensor([4, 1])
    sub = t.subset(idx)
    torch.testing.assert_close(sub.hand_contact, hand_contact[idx])
    assert torch.equal(sub.contact_zones, zones)
    torch.testing.assert_close(sub.choir.gauss_mean, field.gauss_mean[idx])
    torch.testing.assert_close(sub.choir.assignment, field.assignment)
    assert not t.uses_reference and ContactTargets(ref_keypoints=torch.zeros(1, 21, 3)).uses_reference

"""Procedural primitives: watertight meshes whose volume matches the analytic formula."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from contactkit.errors import ContactkitError
from contactkit.objects import PRIMITIVE_KINDS, load_object, make_primitive
from contactkit.objects.primitives import _stub_overlap_integral, mug, mug_volume_m3, parse_primitive_spec

# (kind, params, analytic volume, Euler characteristic)
CASES = [
    ("sphere", {"radius": 0.04}, 4 / 3 * math.pi * 0.04**3, 2),
    ("box", {"extents": [0.05, 0.03, 0.1]}, 0.05 * 0.03 * 0.1, 2),
    ("cylinder", {"radius": 0.03, "height": 0.12}, math.pi * 0.03**2 * 0.12, 2),
    ("capsule", {"radius": 0.02, "height": 0.08}, math.pi * 0.02**2 * 0.08 + 4 / 3 * math.pi * 0.02**3, 2),
    ("torus", {"major_radius": 0.05, "minor_radius": 0.015}, 2 * math.pi**2 * 0.05 * 0.015**2, 0),
]


@pytest.mark.parametrize(("kind", "params", "volume", "euler"), CASES, ids=[c[0] for c in CASES])
def test_primitive_volume_matches_analytic(kind, params, volume, euler):
    obj = make_primitive(kind, **params)
    assert obj.analytic_volume_m3 == pytest.approx(volume, rel=1e-12)
    assert obj.volume_m3 == obj.analytic_volume_m3
    assert obj.is_watertight
    # inscribed tessellation: slightly smaller, within 1 %
    assert obj.mesh_volume_m3 <= volume * (1 + 1e-9)
    assert obj.mesh_volume_m3 == pytest.approx(volume, rel=1e-2)
    assert obj.to_trimesh().euler_number == euler
    assert obj.primitive["kind"] == kind


def test_box_is_exact_and_centred():
    obj = make_primitive("box", extents=[0.05, 0.03, 0.1])
    assert obj.mesh_volume_m3 == pytest.approx(0.05 * 0.03 * 0.1, rel=1e-12)
    np.testing.assert_allclose(obj.bounds, [[-0.025, -0.015, -0.05], [0.025, 0.015, 0.05]], atol=1e-15)


def test_stub_overlap_closed_form_matches_quadrature():
    """int 2 sqrt(b^2 - y^2) sqrt(R^2 - y^2) dy, by quadrature after y = b sin(phi) (smooth integrand)."""
    for big, small in [(0.04, 0.006), (0.05, 0.02), (1.0, 0.5)]:

        def integrand(phi, b=small, r=big):
            return 2 * (b * math.cos(phi)) ** 2 * math.sqrt(r * r - (b * math.sin(phi)) ** 2)

        ref = quad(integrand, -math.pi / 2, math.pi / 2, epsabs=0, epsrel=1e-13)[0]
        assert _stub_overlap_integral(big, small) == pytest.approx(ref, rel=1e-10)


def test_mug_is_single_watertight_genus_one_surface():
    obj = make_primitive("mug")
    tm = obj.to_trimesh()
    assert obj.is_watertight
    assert tm.euler_number == 0  # genus 1: the handle makes a hole
    assert len(tm.split(only_watertight=False)) == 1
    assert obj.mesh_volume_m3 == pytest.approx(obj.analytic_volume_m3, rel=2e-3)


@pytest.mark.parametrize("offset", [0.012, 0.03])
def test_mug_volume_formula_converges_with_resolution(offset):
    """The mesh volume converges to the closed form as the tessellation is refined (error ~ 1/n^2)."""
    coarse = mug(handle_offset=offset, sections=48, tube_sections=16)
    fine = mug(handle_offset=offset, sections=384, tube_sections=128)
    exact = fine.analytic_volume_m3
    err_coarse = abs(coarse.mesh_volume_m3 / exact - 1)
    err_fine = abs(fine.mesh_volume_m3 / exact - 1)
    assert err_fine < 1.5e-4
    assert err_fine < err_coarse / 8


def test_mug_volume_decomposition_against_body_only():
    """Without the handle terms the formula is the cup alone (a pure cylinder difference)."""
    r, h, w, t = 0.04, 0.095, 0.004, 0.006
    cup = math.pi * r**2 * h - math.pi * (r - w) ** 2 * (h - t)
    full = mug_volume_m3(r, h, w, t, 0.025, 0.006, 0.012)
    handle = full - cup
    # handle volume lies between the half torus alone and half torus + two full stubs
    half_torus = math.pi**2 * 0.025 * 0.006**2
    stubs = 2 * math.pi * 0.006**2 * (0.012 + w / 2)
    assert half_torus < handle < half_torus + stubs


def test_primitive_errors_are_clear():
    with pytest.raises(ContactkitError, match="unknown primitive 'cone'.*sphere, box"):
        make_primitive("cone")
    with pytest.raises(ContactkitError, match="radius must be a positive finite length"):
        make_primitive("sphere", radius=-1.0)
    with pytest.raises(ContactkitError, match="minor_radius < major_radius"):
        make_primitive("torus", major_radius=0.01, minor_radius=0.02)
    with pytest.raises(ContactkitError, match="bad parameters"):
        make_primitive("sphere", diameter=0.1)
    with pytest.raises(ContactkitError, match="too large for the wall"):
        make_primitive("mug", handle_thickness=0.015, handle_radius=0.03)


def test_parse_primitive_spec_and_load_object():
    assert parse_primitive_spec("box:extents=0.05/0.05/0.1") == ("box", {"extents": [0.05, 0.05, 0.1]})
    assert parse_primitive_spec("sphere:radius=0.04") == ("sphere", {"radius": 0.04})
    assert parse_primitive_spec("torus") == ("torus", {})
    obj = load_object("cylinder:radius=0.02,height=0.1")
    assert obj.analytic_volume_m3 == pytest.approx(math.pi * 0.02**2 * 0.1)
    assert load_object("mug:").primitive["kind"] == "mug"
    with pytest.raises(ContactkitError, match="not a number"):
        parse_primitive_spec("sphere:radius=big")
    with pytest.raises(ContactkitError, match="expected key=value"):
        parse_primitive_spec("sphere:0.04")
    assert set(PRIMITIVE_KINDS) == {"sphere", "box", "cylinder", "capsule", "torus", "mug"}

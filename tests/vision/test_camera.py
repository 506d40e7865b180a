"""Pinhole camera helpers: projection, normalised coordinates, translation from projections, random cameras."""

from __future__ import annotations

import torch

from contactkit.vision.camera import (
    camera_to_world,
    look_at,
    pixels_to_normalized,
    project,
    random_cameras,
    translation_from_projections,
)


def test_projection_round_trip_and_opencv_convention():
    k = torch.tensor([[[500.0, 0, 320], [0, 400.0, 240], [0, 0, 1]]], dtype=torch.float64)
    pts = torch.tensor([[[0.1, -0.05, 0.5], [0.0, 0.0, 2.0]]], dtype=torch.float64)
    uv = project(pts, k)
    torch.testing.assert_close(uv, torch.tensor([[[420.0, 200.0], [320.0, 240.0]]], dtype=torch.float64))
    torch.testing.assert_close(pixels_to_normalized(uv, k), pts[..., :2] / pts[..., 2:])


def test_translation_from_exact_projections_is_exact():
    gen = torch.Generator().manual_seed(0)
    rel = 0.05 * torch.randn(4, 21, 3, generator=gen, dtype=torch.float64)
    t = torch.tensor([[0.02, -0.03, 0.5], [0.0, 0.1, 0.8], [-0.1, 0.0, 0.4], [0.05, 0.05, 1.2]], dtype=torch.float64)
    pts = rel + t[:, None]
    torch.testing.assert_close(translation_from_projections(rel, pts[..., :2] / pts[..., 2:]), t)


def test_translation_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(1)
    rel = (0.05 * torch.randn(1, 8, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    pts = rel.detach() + torch.tensor([0.0, 0.0, 0.6], dtype=torch.float64)
    norm = (pts[..., :2] / pts[..., 2:] + 0.01 * torch.randn(1, 8, 2, generator=gen, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda r, n: translation_from_projections(r, n), (rel, norm.requires_grad_()))


def test_look_at_and_random_cameras_see_the_target():
    eye = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    rot = look_at(eye, torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64)[None])
    assert torch.det(rot).item() > 0
    # world up appears upward in the image: camera y (down) points along -up
    assert (rot[0, 1] @ torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)).item() < -0.99
    centres = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    k, ext = random_cameras(centres, torch.Generator().manual_seed(3), jitter=0.0, image_size=200)
    cam = (ext[:, :3, :3] @ centres[..., None]).squeeze(-1) + ext[:, :3, 3]
    assert (cam[:, 2] >= 0.35 - 1e-9).all() and (cam[:, 2] <= 0.7 + 1e-9).all()
    torch.testing.assert_close(project(cam[:, None], k)[:, 0], torch.full((16, 2), 100.0, dtype=torch.float64))


def test_camera_to_world_inverts_the_extrinsics():
    centres = torch.zeros(3, 3, dtype=torch.float64)
    _, ext = random_cameras(centres, torch.Generator().manual_seed(5))
    world = torch.randn(3, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    cam = world @ ext[:, :3, :3].transpose(1, 2) + ext[:, None, :3, 3]
    torch.testing.assert_close(camera_to_world(cam, ext), world)

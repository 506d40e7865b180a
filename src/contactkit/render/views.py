"""ObMan-style rendered views of grasps: K cameras around each hand–object pair, with randomised appearance.

For each view (all randomness from one numpy generator, so a view is fixed by its seed):

* **camera**: a uniform random direction around the centre of the pair's bounding box, random image roll, at
  the distance where the pair's bounding sphere spans 80 % of the image (:func:`render.camera.sample_cameras`);
* **hand colour**: one of six skin tones (light to dark) with ±6 % jitter per channel;
* **object colour**: uniform hue, saturation 0.3–0.9, value 0.4–1.0;
* **lighting**: two directional lights with random directions and warm/cool white colours of random intensity,
  plus a dim headlight;
* **background**: the renderer draws on black; background pixels (neither mask) are replaced by a random image
  (a two-colour gradient at a random angle times smooth low-frequency noise) — compositing as ObMan did with
  real photographs (paper 001 §3.3), none of which can be downloaded here.

Per view the ground truth is: depth, hand and object masks, the 21 hand keypoints and the object's 8 box
corners (:func:`contactkit.objects.library.object_box_corners`) in the camera frame (metres) and in pixels,
``K`` and ``cam_from_world``.
"""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np

from contactkit.render.camera import Camera, project, sample_cameras, to_camera

__all__ = ["SKIN_TONES", "ViewSettings", "random_background", "render_grasp_views"]

#: sRGB skin tones in [0, 1], light to dark (approximate Fitzpatrick I–VI)
SKIN_TONES: np.ndarray = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.92, 0.72, 0.58],
        [0.83, 0.62, 0.47],
        [0.70, 0.49, 0.34],
        [0.52, 0.35, 0.24],
        [0.36, 0.24, 0.17],
    ]
)


class ViewSettings:
    """Image size and camera settings of rendered views (``width``, ``height`` pixels; ``fovy_deg``; ``fill``:
    fraction of the image height the pair's bounding sphere spans)."""

    def __init__(self, width: int = 256, height: int = 256, fovy_deg: float = 45.0, fill: float = 0.8) -> None:
        self.width, self.height, self.fovy_deg, self.fill = int(width), int(height), float(fovy_deg), float(fill)

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "fovy_deg": self.fovy_deg, "fill": self.fill}


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random ``(H, W, 3) uint8`` background: two-colour linear gradient times smooth noise."""
    c0, c1 = rng.uniform(0.05, 0.95, size=(2, 3))
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    s = (np.cos(ang) * xx / max(width - 1, 1) + np.sin(ang) * yy / max(height - 1, 1))
    s = (s - s.min()) / max(float(np.ptp(s)), 1e-9)
    img = c0 * (1 - s[..., None]) + c1 * s[..., None]
    coarse = rng.uniform(0.6, 1.2, size=(5, 5))
    ys = np.linspace(0, 4, height)
    xs = np.linspace(0, 4, width)
    y0, x0 = np.clip(ys.astype(int), 0, 3), np.clip(xs.astype(int), 0, 3)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    noise = (coarse[y0][:, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1][:, x0] * fy * (1 - fx)
             + coarse[y0][:, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1][:, x0 + 1] * fy * fx)
    return (np.clip(img * noise[..., None], 0, 1) * 255).round().astype(np.uint8)


def _appearance(rng: np.random.Generator) -> dict[str, np.ndarray]:
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.94, 1.06, size=3)
    obj = np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.3, 0.9), rng.uniform(0.4, 1.0)))
    dirs = rng.normal(size=(2, 3))
    warm = np.array([1.0, 0.93, 0.85]) if rng.uniform() < 0.5 else np.array([0.88, 0.94, 1.0])
    light = np.stack([warm * rng.uniform(0.4, 0.8), np.ones(3) * rng.uniform(0.1, 0.4)])
    return {"hand_rgb": np.clip(tone, 0, 1), "object_rgb": obj, "light_dirs": dirs, "light_rgb": light}


def render_grasp_views(
    renderer: Any,
    hand_index: int,
    hand_vertices: np.ndarray,
    keypoints_world: np.ndarray,
    object_vertices_world: np.ndarray,
    corners_world: np.ndarray,
    object_rotation: np.ndarray,
    object_translation: np.ndarray,
    n_views: int,
    rng: np.random.Generator,
    settings: ViewSettings | None = None,
) -> list[dict[str, Any]]:
    """Render ``n_views`` views of one grasp (see the module docstring).

    Args:
        renderer: a :class:`contactkit.render.mujoco_backend.PairRenderer` holding this grasp's hand at
            ``hand_index``.
        hand_vertices: ``(Vh, 3)`` posed hand, world frame (for framing the cameras).
        keypoints_world: ``(21, 3)`` hand keypoints, world frame.
        object_vertices_world: ``(Vo, 3)`` object vertices in the world frame (for framing).
        corners_world: ``(8, 3)`` object box corners in the world frame.
        object_rotation, object_translation: the object's pose ``x_world = R x_obj + t``.
        rng: the only source of randomness.

    Returns:
        One dict per view: ``rgb, depth, hand_mask, object_mask, K (3, 3) float32, cam_from_world (4, 4)
        float32, hand_keypoints_3d (21, 3), hand_keypoints_2d (21, 2), object_corners_3d (8, 3),
        object_corners_2d (8, 2)`` (float32; 3D in the camera frame, metres; 2D in pixels), plus ``appearance``
        (the colours and lights used, JSON-ready).
    """
    s = settings or ViewSettings()
    pts = np.concatenate([np.asarray(hand_vertices), np.asarray(object_vertices_world)])
    lo, hi = pts.min(0), pts.max(0)
    center = (lo + hi) / 2
    radius = float(np.linalg.norm(hi - lo) / 2)
    cams: list[Camera] = sample_cameras(center, radius, n_views, rng, width=s.width, height=s.height,
                                        fovy_deg=s.fovy_deg, fill=s.fill)
    out = []
    for cam in cams:
        app = _appearance(rng)
        img = renderer.render(hand_index, cam, object_rotation=object_rotation,
                              object_translation=object_translation, **app)
        bg = random_background(rng, s.height, s.width)
        fg = img["hand_mask"] | img["object_mask"]
        rgb = np.where(fg[..., None], img["rgb"], bg)
        kp3 = to_camera(keypoints_world, cam.cam_from_world)
        co3 = to_camera(corners_world, cam.cam_from_world)
        out.append({
            "rgb": rgb,
            "depth": img["depth"],
            "hand_mask": img["hand_mask"],
            "object_mask": img["object_mask"],
            "K": cam.K.astype(np.float32),
            "cam_from_world": cam.cam_from_world.astype(np.float32),
            "hand_keypoints_3d": kp3.astype(np.float32),
            "hand_keypoints_2d": project(kp3, cam.K).astype(np.float32),
            "object_corners_3d": co3.astype(np.float32),
            "object_corners_2d": project(co3, cam.K).astype(np.float32),
            "appearance": {k: np.round(v, 4).tolist() for k, v in app.items()},
        })
    return out

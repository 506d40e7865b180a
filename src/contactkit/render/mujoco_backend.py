"""Offscreen rendering of hand–object pairs with MuJoCo's own renderer over Debian's Mesa (EGL or OSMesa).

One :class:`PairRenderer` holds one compiled MuJoCo model with the object's mesh and the hand meshes of all
grasps of that object (one geom each; the hands not being rendered have alpha 0, which MuJoCo leaves out of the
scene) and one ``mujoco.Renderer`` (a GL context on Mesa's software rasteriser, llvmpipe). Per view it sets the
fixed camera, the lights and the colours, and renders three passes: RGB, depth (metres along the camera axis)
and segmentation (geom ids → hand / object masks). Multisampling is off so that segmentation ids are exact
(an edge pixel is never a blend of two ids).

The GL platform is ``$MUJOCO_GL`` when it is ``egl`` or ``osmesa``, else ``egl``; the context is MuJoCo's own
wrapper of that platform (``mujoco.egl`` / ``mujoco.osmesa``), created once per process, so the choice does not
depend on what imported ``mujoco`` first. The render loop is MuJoCo's (``mjv_updateScene``, ``mjr_render``,
``mjr_readPixels``): RGB and depth come from one pass, the segmentation from a second.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from contactkit.errors import ContactkitError
from contactkit.render.camera import Camera

__all__ = ["PairRenderer", "gl_available"]

#: the GL platforms MuJoCo supports without a display
HEADLESS_PLATFORMS = ("egl", "osmesa")


def _platform() -> str:
    env = os.environ.get("MUJOCO_GL", "").lower().strip()
    return env if env in HEADLESS_PLATFORMS else "egl"


@functools.cache
def _gl_context() -> Any:
    """The process's offscreen GL context (created once, made current; MuJoCo's EGL or OSMesa wrapper)."""
    import importlib

    platform = _platform()
    module = importlib.import_module(f"mujoco.{platform}")
    ctx = module.GLContext(64, 64)
    ctx.make_current()
    return ctx


@functools.cache
def gl_available() -> tuple[bool, str]:
    """Whether an offscreen GL context can be created: ``(ok, platform or reason)``; the reason names the
    missing Debian package (EGL: ``libegl1 libgl1-mesa-dri``; OSMesa: ``libosmesa6``)."""
    platform = _platform()
    try:
        _gl_context()
    except Exception as err:  # noqa: BLE001 - any failure means no GL; the reason is reported
        pkg = "libegl1 libgl1-mesa-dri" if platform == "egl" else "libosmesa6"
        return False, f"no offscreen GL ({platform}): {type(err).__name__}: {err} (apt-get install {pkg})"
    return True, platform


def _quat_of(rot: np.ndarray) -> np.ndarray:
    import mujoco

    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(rot, dtype=np.float64).ravel())
    return q


def _mat_of(quat: np.ndarray) -> np.ndarray:
    import mujoco

    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(quat, dtype=np.float64))
    return m.reshape(3, 3)


class PairRenderer:
    """Renders one object with any of a set of posed hands.

    Args:
        object_vertices: ``(Vo, 3)`` object mesh in its own frame (metres); ``object_faces (Fo, 3)``.
        hand_vertices: ``(N, Vh, 3)`` posed hands in the world (grasp) frame; ``hand_faces (Fh, 3)`` (closed).
        width, height: image size in pixels.
        n_lights: directional lights (their directions and colours are set per view).
    """

    def __init__(
        self,
        object_vertices: np.ndarray,
        object_faces: np.ndarray,
        hand_vertices: np.ndarray,
        hand_faces: np.ndarray,
        *,
        width: int = 256,
        height: int = 256,
        n_lights: int = 2,
    ) -> None:
        ok, why = gl_available()
        if not ok:
            raise ContactkitError(f"cannot render: {why}")
        import mujoco

        hv = np.asarray(hand_vertices, dtype=np.float64)
        if hv.ndim != 3 or hv.shape[-1] != 3 or hv.shape[0] < 1:
            raise ContactkitError(f"hand_vertices must be (N, V, 3) with N >= 1, got {hv.shape}")
        spec = mujoco.MjSpec()
        spec.visual.global_.offwidth = width
        spec.visual.global_.offheight = height
        spec.visual.quality.offsamples = 0
        spec.visual.headlight.ambient = [0.3, 0.3, 0.3]
        spec.visual.headlight.diffuse = [0.3, 0.3, 0.3]
        spec.visual.headlight.specular = [0.0, 0.0, 0.0]
        hf = np.asarray(hand_faces, dtype=np.int32).ravel().tolist()
        for i, v in enumerate(hv):
            mesh = spec.add_mesh()
            mesh.name = f"hand{i}"
            mesh.uservert = v.astype(np.float32).ravel().tolist()
            mesh.userface = hf
            geom = spec.worldbody.add_geom()
            geom.type = mujoco.mjtGeom.mjGEOM_MESH
            geom.meshname = mesh.name
            geom.contype = geom.conaffinity = 0
        mesh = spec.add_mesh()
        mesh.name = "object"
        mesh.uservert = np.asarray(object_vertices, dtype=np.float32).ravel().tolist()
        mesh.userface = np.asarray(object_faces, dtype=np.int32).ravel().tolist()
        mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL
        geom = spec.worldbody.add_geom()
        geom.type = mujoco.mjtGeom.mjGEOM_MESH
        geom.meshname = "object"
        geom.contype = geom.conaffinity = 0
        cam = spec.worldbody.add_camera()
        cam.name = "view"
        for _ in range(n_lights):
            light = spec.worldbody.add_light()
            light.type = mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
            light.castshadow = False
        try:
            self.model = spec.compile()
        except Exception as err:  # noqa: BLE001 - MuJoCo's compiler errors are ValueError/RuntimeError
            raise ContactkitError(f"MuJoCo could not compile the render scene: {err}") from None
        self.data = mujoco.MjData(self.model)
        self.n_hands = hv.shape[0]
        self.object_geom = self.n_hands
        # the compiler moves each mesh to its own frame; keep the object's offset to pose it per grasp
        self._obj_pos0 = self.model.geom_pos[self.object_geom].copy()
        self._obj_rot0 = _mat_of(self.model.geom_quat[self.object_geom])
        self.width, self.height = width, height
        _gl_context().make_current()
        self._context = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(self.model, maxgeom=16)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = 0
        self._rect = mujoco.MjrRect(0, 0, width, height)

    def close(self) -> None:
        """Release the GL resources."""
        self._context.free()

    def __enter__(self) -> PairRenderer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def render(
        self,
        hand_index: int,
        camera: Camera,
        *,
        object_rotation: np.ndarray,
        object_translation: np.ndarray,
        hand_rgb: np.ndarray,
        object_rgb: np.ndarray,
        light_dirs: np.ndarray,
        light_rgb: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Render hand ``hand_index`` with the object at pose ``x_world = R x_obj + t``.

        Args:
            camera: the view (its ``K`` must come from :func:`contactkit.render.camera.intrinsics` with the
                camera's ``fovy_deg``, width and height: MuJoCo is parametrised by the field of view).
            hand_rgb, object_rgb: ``(3,)`` colours in [0, 1].
            light_dirs: ``(L, 3)`` world directions the lights shine along; ``light_rgb (L, 3)`` diffuse colours.

        Returns:
            ``rgb (H, W, 3) uint8`` on black, ``depth (H, W) float32`` metres along the camera z axis (0 where
            nothing is drawn, read from the depth pass), ``hand_mask``/``object_mask (H, W) bool`` (segmentation
            pass).
        """
        import mujoco

        if not 0 <= hand_index < self.n_hands:
            raise ContactkitError(f"hand_index must be in [0, {self.n_hands}), got {hand_index}")
        if (camera.width, camera.height) != (self.width, self.height):
            raise ContactkitError(f"camera is {camera.width}x{camera.height}, renderer {self.width}x{self.height}")
        m = self.model
        m.geom_rgba[: self.n_hands, 3] = 0.0
        m.geom_rgba[hand_index] = [*np.asarray(hand_rgb, dtype=np.float64), 1.0]
        m.geom_rgba[self.object_geom] = [*np.asarray(object_rgb, dtype=np.float64), 1.0]
        r_cw = camera.cam_from_world[:3, :3]
        t_cw = camera.cam_from_world[:3, 3]
        # MuJoCo's camera frame: x right, y up, looking along -z (OpenCV's with y and z negated)
        m.cam_pos[0] = -r_cw.T @ t_cw
        m.cam_quat[0] = _quat_of(r_cw.T @ np.diag([1.0, -1.0, -1.0]))
        m.cam_fovy[0] = camera.fovy_deg
        for i, (d, c) in enumerate(zip(np.asarray(light_dirs), np.asarray(light_rgb), strict=True)):
            m.light_dir[i] = d / np.linalg.norm(d)
            m.light_pos[i] = -d
            m.light_diffuse[i] = c
        mujoco.mj_forward(m, self.data)
        # world-body geoms are static in MuJoCo (never recomputed): pose the object in the data directly
        rot = np.asarray(object_rotation, dtype=np.float64)
        self.data.geom_xpos[self.object_geom] = rot @ self._obj_pos0 + np.asarray(object_translation, np.float64)
        self.data.geom_xmat[self.object_geom] = (rot @ self._obj_rot0).ravel()
        _gl_context().make_current()
        mujoco.mjv_updateScene(m, self.data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL,
                               self._scene)
        rgb = np.empty((self.height, self.width, 3), dtype=np.uint8)
        zbuf = np.empty((self.height, self.width), dtype=np.float32)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(rgb, zbuf, self._rect, self._context)
        # segmentation pass: flat colours encoding (scene geom index + 1); 0 is the background
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = True
        self._scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
        ids = np.empty((self.height, self.width, 3), dtype=np.uint8)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(ids, None, self._rect, self._context)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = False
        self._scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = False
        ids64 = ids.astype(np.int64)
        segid = ids64[..., 0] + 256 * ids64[..., 1] + 65536 * ids64[..., 2]
        lut = np.full(self._scene.ngeom + 1, -1, dtype=np.int64)
        for g in self._scene.geoms[: self._scene.ngeom]:
            if g.segid >= 0:
                lut[g.segid + 1] = g.objid
        seg = np.flipud(lut[segid])
        rgb = np.flipud(rgb).copy()
        # reversed-Z perspective depth buffer -> metres along the camera axis (as mujoco.Renderer does)
        near = np.float32(m.vis.map.znear * m.stat.extent)
        far = np.float32(m.vis.map.zfar * m.stat.extent)
        c = -(far + near) / (far - near)
        d = -(np.float32(2) * far * near) / (far - near)
        c, d = np.float32(-0.5) * c - np.float32(0.5), np.float32(-0.5) * d
        z = np.flipud(zbuf).astype(np.float64)
        drawn = z > 0  # ZEROFAR: the far plane (nothing drawn) reads 0
        depth = np.where(drawn, d / np.where(drawn, z + c, 1.0), 0.0).astype(np.float32)
        return {
            "rgb": rgb,
            "depth": depth,
            "hand_mask": seg == hand_index,
            "object_mask": seg == self.object_geom,
        }

"""contactkit.render: offscreen rendering of hand–object grasps (ObMan-style views) with MuJoCo's renderer over
Debian's Mesa (EGL or OSMesa). See ``docs/dataset.md``.

Submodules: :mod:`~contactkit.render.camera` (OpenCV pinhole cameras, placement, projection),
:mod:`~contactkit.render.mujoco_backend` (:class:`PairRenderer`, :func:`gl_available`),
:mod:`~contactkit.render.views` (randomised views of a grasp with 2D/3D keypoints and box corners).
"""

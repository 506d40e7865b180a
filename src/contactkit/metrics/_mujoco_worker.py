"""One MuJoCo simulation-displacement run, in a module free of torch so spawned workers start quickly.

Top-level functions only (picklable by reference for ``ProcessPoolExecutor`` with the ``spawn`` context).
"""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np


def _damping_ratio(restitution: float) -> float:
    if restitution <= 0:
        return 1.0
    ln = math.log(restitution)
    return -ln / math.sqrt(math.pi**2 + ln**2)


def simulate_job(job: dict[str, Any]) -> list[float]:
    """MuJoCo runs of one grasp: the object's centre-of-mass displacement (m) per gravity direction.

    The model is compiled once; each direction restarts from the initial state (inf if the state blew up).

    ``job`` keys: ``protocol`` (dict of :class:`~contactkit.metrics.simulation.SimulationProtocol` fields),
    ``gravity_dirs`` (G, 3) unit vectors, ``hand_pieces`` (list of (n, 3) world-frame vertex sets, static convex hulls),
    ``obj_pieces`` (list of (n, 3) object-frame hull vertices), ``rot`` (3, 3), ``transl`` (3,), ``com`` (3,)
    object frame, ``mass`` kg, ``inertia`` (3, 3) kg m^2 about the COM in the object frame.
    """

    p = job["protocol"]
    spec = mujoco.MjSpec()
    spec.option.timestep = p["timestep"]
    spec.option.cone = (
        mujoco.mjtCone.mjCONE_ELLIPTIC if p.get("cone", "elliptic") == "elliptic" else mujoco.mjtCone.mjCONE_PYRAMIDAL
    )
    spec.option.impratio = float(p.get("impratio", 10.0))
    spec.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_FALSE
    timeconst = max(0.02, 2.0 * p["timestep"])
    solref = [timeconst, _damping_ratio(p["restitution"])]
    friction = [p["friction"], 0.005, 0.0001]
    mesh_type = mujoco.mjtGeom.mjGEOM_MESH
    for i, piece in enumerate(job["hand_pieces"]):
        spec.add_mesh(name=f"h{i}", uservert=piece.ravel().tolist())
        spec.worldbody.add_geom(
            type=mesh_type, meshname=f"h{i}", friction=friction, solref=solref, contype=1, conaffinity=2
        )
    rot, transl, com = job["rot"], job["transl"], job["com"]
    body = spec.worldbody.add_body(pos=(rot @ com + transl).tolist(), quat=_rotmat_to_quat(rot).tolist())
    body.add_freejoint()
    body.explicitinertial = True
    body.ipos = [0.0, 0.0, 0.0]  # the body frame sits at the centre of mass (set explicitly: MjSpec copies pos)
    body.mass = job["mass"]
    evals, evecs = np.linalg.eigh(job["inertia"])
    if np.linalg.det(evecs) < 0:
        evecs[:, 0] *= -1
    body.inertia = np.maximum(evals, 1e-12).tolist()
    body.iquat = _rotmat_to_quat(evecs).tolist()
    for j, piece in enumerate(job["obj_pieces"]):
        spec.add_mesh(name=f"o{j}", uservert=(piece - com).ravel().tolist())
        body.add_geom(type=mesh_type, meshname=f"o{j}", friction=friction, solref=solref, contype=2, conaffinity=1)
    model = spec.compile()
    data = mujoco.MjData(model)
    out = []
    for direction in np.asarray(job["gravity_dirs"], dtype=np.float64).reshape(-1, 3):
        mujoco.mj_resetData(model, data)
        model.opt.gravity[:] = p["gravity"] * direction
        mujoco.mj_forward(model, data)
        start = data.xipos[1].copy()
        for _ in range(int(p["n_steps"])):
            mujoco.mj_step(model, data)
        end = data.xipos[1]
        out.append(float(np.linalg.norm(end - start)) if np.all(np.isfinite(end)) else float("inf"))
    return out


def _rotmat_to_quat(r: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix (MuJoCo's convention)."""
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(r, dtype=np.float64).ravel())
    return q

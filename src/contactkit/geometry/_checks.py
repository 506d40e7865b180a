"""Input validation shared by the geometry functions (private).

Every check raises a :class:`contactkit.errors.ShapeError` (points, transforms) or
:class:`contactkit.errors.MeshError` (vertices, faces) naming the argument and the expected shape, so that bad
input never surfaces as a traceback from deep inside torch, scipy or libigl.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from contactkit.errors import MeshError, ShapeError


def shape_str(x: Any) -> str:
    """Return ``(a, b, c)`` for a tensor or array shape, for error messages."""
    return "(" + ", ".join(str(int(s)) for s in tuple(x.shape)) + ")"


def check_tensor(x: Any, name: str) -> torch.Tensor:
    """Return ``x`` if it is a floating torch tensor, else raise :class:`ShapeError`."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be a floating-point tensor (float32 or float64), got {x.dtype}")
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise :class:`ShapeError` when ``x`` holds NaN or infinite values."""
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ShapeError(f"{name} contains NaN or infinite values")


def check_points(x: Any, name: str, *, batched: bool = True, finite: bool = True) -> torch.Tensor:
    """Validate a point tensor of shape ``(B, N, 3)`` (``batched``) or ``(N, 3)``."""
    x = check_tensor(x, name)
    want = "(B, N, 3)" if batched else "(N, 3)"
    if x.dim() != (3 if batched else 2) or x.shape[-1] != 3:
        raise ShapeError(f"{name} must have shape {want}, got {shape_str(x)}")
    if finite:
        check_finite(x, name)
    return x


def check_verts(verts: Any, name: str = "verts", *, allow_batch: bool = True) -> torch.Tensor:
    """Validate mesh vertices ``(V, 3)`` (or ``(B, V, 3)`` when ``allow_batch``); numpy is converted."""
    if isinstance(verts, np.ndarray):
        verts = torch.as_tensor(np.array(verts, dtype=np.float64))  # a copy: inputs may be read-only
    if not isinstance(verts, torch.Tensor):
        raise MeshError(f"{name} must be a torch.Tensor or numpy array, got {type(verts).__name__}")
    if not verts.is_floating_point():
        raise MeshError(f"{name} must be floating point, got {verts.dtype}")
    dims = (2, 3) if allow_batch else (2,)
    if verts.dim() not in dims or verts.shape[-1] != 3:
        want = "(V, 3) or (B, V, 3)" if allow_batch else "(V, 3)"
        raise MeshError(f"{name} must have shape {want}, got {shape_str(verts)}")
    if verts.shape[-2] == 0:
        raise MeshError(f"{name} is empty: the mesh has no vertices")
    if not bool(torch.isfinite(verts).all()):
        raise MeshError(f"{name} contains NaN or infinite values")
    return verts


def check_faces(faces: Any, num_verts: int, name: str = "faces") -> np.ndarray:
    """Validate triangle indices ``(F, 3)`` into ``num_verts`` vertices; return them as C-contiguous int64."""
    if isinstance(faces, torch.Tensor):
        if faces.is_floating_point() or faces.dtype == torch.bool:
            raise MeshError(f"{name} must be an integer tensor, got {faces.dtype}")
        arr = faces.detach().cpu().numpy()
    elif isinstance(faces, np.ndarray):
        if not np.issubdtype(faces.dtype, np.integer):
            raise MeshError(f"{name} must be an integer array, got {faces.dtype}")
        arr = faces
    else:
        raise MeshError(f"{name} must be a torch.Tensor or numpy array, got {type(faces).__name__}")
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise MeshError(f"{name} must have shape (F, 3), got {shape_str(arr)}")
    if arr.shape[0] == 0:
        raise MeshError(f"{name} is empty: the mesh has no triangles")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= num_verts:
        raise MeshError(
            f"{name} index out of range: values span [{lo}, {hi}] but there are {num_verts} vertices"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def faces_tensor(faces_np: np.ndarray, device: torch.device) -> torch.Tensor:
    """Faces as an int64 tensor on ``device``."""
    if not faces_np.flags.writeable:  # torch warns on read-only arrays (e.g. ObjectMesh's)
        faces_np = faces_np.copy()
    return torch.as_tensor(faces_np, dtype=torch.long, device=device)


def verts_numpy(verts: torch.Tensor) -> np.ndarray:
    """Detached float64 C-contiguous numpy copy of a vertex tensor (any leading dims)."""
    return np.ascontiguousarray(verts.detach().cpu().numpy(), dtype=np.float64)


def safe_norm(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last dim with a zero (finite) gradient at the zero vector."""
    sq = (v * v).sum(-1)
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))

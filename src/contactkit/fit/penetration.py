"""Hand-object penetration of the fit stage: how deep the hand's vertices lie inside the placed object.

For row ``b`` with object pose ``x_world = R_b x_object + t_b`` and the object's signed distance grid ``sdf_b``
(:meth:`contactkit.objects.mesh.ObjectMesh.sdf_grid`: negative inside, trilinear, differentiable):

``cost_b = sum_v max(0, -sdf_b(R_b^T (x_v - t_b)))^2 / (1 mm)^2``

over the hand's vertices ``x_v`` (world frame, metres) — ObMan's repulsion idea (paper 001) in the squared form
that L-BFGS handles well. :func:`~contactkit.fit.hand_ik.fit_hand_to_keypoints` adds it to the keypoint energy
(``IKSettings.penetration_weight``) so the fitted hand keeps out of the object placed from its box corners.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from contactkit.contact.terms import check_points
from contactkit.errors import ContactkitError
from contactkit.geometry.sdf import SDFGrid
from contactkit.objects.mesh import ObjectMesh

__all__ = ["PenetrationCost"]


class PenetrationCost:
    """Callable ``(B, V, 3) hand vertices -> (B,)`` penetration cost (module docstring), mm^2.

    Args:
        meshes: B objects, one per row (repeated objects share one grid).
        rotation: (B, 3, 3) object rotations; translation: (B, 3) metres.
        resolution: nodes per axis of each object's signed distance grid.
    """

    def __init__(self, meshes: Sequence[ObjectMesh], rotation: Tensor, translation: Tensor, *,
                 resolution: int = 64) -> None:
        b = len(meshes)
        if rotation.shape != (b, 3, 3) or translation.shape != (b, 3):
            raise ContactkitError(f"rotation (B, 3, 3) and translation (B, 3) must match the {b} objects, got "
                                  f"{tuple(rotation.shape)} and {tuple(translation.shape)}")
        self.rotation, self.translation = rotation, translation
        groups: dict[str, list[int]] = {}
        for i, mesh in enumerate(meshes):
            groups.setdefault(mesh.content_hash, []).append(i)
        by_hash = {m.content_hash: m for m in meshes}
        self._groups = [(torch.tensor(rows), by_hash[h].sdf_grid(resolution)) for h, rows in groups.items()]
        self._converted: dict[tuple[torch.device, torch.dtype], list[SDFGrid]] = {}

    def depth(self, verts: Tensor) -> Tensor:
        """(B, V) depth of each vertex inside its row's object, metres (0 outside)."""
        check_points("verts", verts, batch=self.rotation.shape[0])
        rot = self.rotation.to(verts)
        local = (verts - self.translation.to(verts).unsqueeze(1)) @ rot  # R^T (x - t), row vectors
        out = torch.zeros(verts.shape[:2], dtype=verts.dtype, device=verts.device)
        key = (verts.device, verts.dtype)
        if key not in self._converted:
            self._converted[key] = [grid.to(verts.device, verts.dtype) for _, grid in self._groups]
        for (rows, _), grid in zip(self._groups, self._converted[key], strict=True):
            rows = rows.to(verts.device)
            sd = grid.sample(local[rows])
            out = out.index_put((rows,), (-sd).clamp_min(0.0))
        return out

    def __call__(self, verts: Tensor) -> Tensor:
        return (self.depth(verts) * 1000.0).pow(2).sum(-1)

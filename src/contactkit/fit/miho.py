"""CPF's MIHO pipeline (paper 004 §4): HoNet -> PiCR -> GeO, from images of a known object to a fitted grasp.

1. **HoNet** (:class:`~contactkit.vision.honet.HoNet`) estimates the hand and the object's 6D pose from the image;
   the rows are moved to the world frame (:func:`~contactkit.fit.obman.hand_to_world`).
2. **PiCR** predicts vertex contact, contact region and anchor elasticity on the object's surface samples:
   ``contact="image"`` with the image PiCR (:class:`~contactkit.vision.picr_image.ImagePiCR`, image features at
   the projected points), ``contact="geometry"`` with contactkit's geometric PiCR (the shipped estimator, from
   the HoNet hand and object alone), ``contact="none"`` skips PiCR and GeO (HoNet's output; the "no GeO" row of
   paper 004's ablation).
3. **GeO** fits the hand to the contact potential field (:func:`contactkit.refine.refine` with method ``cpf``).

The image PiCR's springs follow paper 004 Alg. 1 as the geometric estimator does: every object point with
``VC > t_vc`` ties the anchors of its predicted subregion with elasticity ``AE``; t_vc is the image PiCR's
validation-tuned ``vc_threshold`` (paper 004's 0.8 when its checkpoint records none: at 0.8 the shipped image PiCR
activates no point on HoNet's rows, so GeO would only repel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.fit.obman import hand_to_world
from contactkit.io.grasps import GraspSet
from contactkit.learn.estimators import PiCRPrediction
from contactkit.objects.mesh import ObjectMesh
from contactkit.targets import ContactTargets
from contactkit.vision.backbone import normalize_images
from contactkit.vision.heads import resize_to_square
from contactkit.vision.honet import HoNet, HoNetOutput
from contactkit.vision.picr_image import ImagePiCR

__all__ = ["ContactSource", "honet_grasps", "image_picr_targets", "miho"]

ContactSource = Literal["image", "geometry", "none"]


@torch.no_grad()
def _run_honet(net: HoNet, images: Tensor, k: Tensor, batch_size: int = 16) -> HoNetOutput:
    net.eval()
    parts = [net(images[s:s + batch_size], k[s:s + batch_size]) for s in range(0, images.shape[0], batch_size)]
    fields = HoNetOutput.__dataclass_fields__
    return HoNetOutput(**{n: torch.cat([getattr(p, n).float().cpu() for p in parts]) for n in fields})


def honet_grasps(net: HoNet, out: HoNetOutput, meshes: Sequence[ObjectMesh], cam_from_world: Tensor, *,
                 metadata: list[dict[str, Any]] | None = None, attrs: dict[str, Any] | None = None,
                 reference_index: np.ndarray | None = None) -> GraspSet:
    """HoNet's rows as a :class:`GraspSet` in the world frame (object ``meshes[i]`` at the predicted pose)."""
    b = out.root.shape[0]
    w = hand_to_world(net.hand, out.global_orient, out.hand_pca, out.betas, out.root, cam_from_world)
    r_wc, t_wc = w["world_rotation"], w["world_translation"]
    root = out.root.double()
    rot = r_wc @ out.object_rotation.double()
    transl = (r_wc @ (root + out.object_translation.double()).unsqueeze(-1)).squeeze(-1) + t_wc
    return GraspSet(hand_model=net.hand.name, side=net.hand.side, global_orient=w["global_orient"].numpy(),
                    hand_pose=w["hand_pose"].numpy(), betas=w["betas"].numpy(), transl=w["transl"].numpy(),
                    object_ids=[m.content_hash for m in meshes], objects={m.content_hash: m for m in meshes},
                    object_rotation=rot.numpy(), object_translation=transl.numpy(), reference_index=reference_index,
                    metadata=[dict(m) for m in metadata] if metadata is not None else [{} for _ in range(b)],
                    attrs={**(attrs or {}), "estimated_by": "honet"})


@torch.no_grad()
def image_picr_targets(picr: ImagePiCR, images: Tensor, k: Tensor, grasps: GraspSet, cam_from_world: Tensor, *,
                       num_points: int = 2048, seed: int = 0, vc_threshold: float | None = None
                       ) -> ContactTargets:
    """``object_contact`` (N, P) and ``k_atr`` (N, 32, P) of the image PiCR on the rows of ``grasps``.

    The object points are each object's ``sample_surface(num_points, seed)``, the samples
    :func:`contactkit.refine.refine` draws with the same ``num_points`` and ``seed``, so the targets line up.

    Args:
        images: (N, 3, S, S) normalised images; k: (N, 3, 3) their intrinsics; cam_from_world: (N, 4, 4).
        vc_threshold: t_vc; default ``picr.vc_threshold``.
    """
    picr.eval()
    hand = picr.hand
    t = grasps.hand_tensors(dtype=torch.float32, device=hand.device)
    verts = hand(t["global_orient"], t["hand_pose"], t["betas"] if hand.num_betas else None, t["transl"]).vertices
    samples = {oid: grasps.objects[oid].sample_surface(num_points, seed=seed) for oid in set(grasps.object_ids)}
    pts = torch.stack([torch.as_tensor(np.array(samples[o][0]), dtype=torch.float32) for o in grasps.object_ids])
    nrm = torch.stack([torch.as_tensor(np.array(samples[o][1]), dtype=torch.float32) for o in grasps.object_ids])
    rot = torch.as_tensor(np.array(grasps.object_rotation), dtype=torch.float32)
    tr = torch.as_tensor(np.array(grasps.object_translation), dtype=torch.float32)
    ext = cam_from_world.float()
    r_cw, t_cw = ext[:, :3, :3], ext[:, :3, 3]
    to_cam = r_cw @ rot
    pts_c = pts @ to_cam.transpose(1, 2) + (r_cw @ tr.unsqueeze(-1)).squeeze(-1)[:, None] + t_cw[:, None]
    nrm_c = nrm @ to_cam.transpose(1, 2)
    verts_c = verts.float().cpu() @ r_cw.transpose(1, 2) + t_cw[:, None]
    out = picr(images, k, verts_c, pts_c, nrm_c)
    n = verts.shape[1]
    fields = PiCRPrediction(vc=torch.sigmoid(out.vc[:, n:]), region=out.cr[:, n:].argmax(dim=-1),
                            elasticity=torch.sigmoid(out.ae[:, n:]))
    t_vc = picr.vc_threshold if vc_threshold is None else vc_threshold
    return fields.targets(torch.as_tensor(hand.annotations.anchor_region, dtype=torch.long), t_vc)


def miho(honet: HoNet, rgb: Tensor, k: Tensor, meshes: Sequence[ObjectMesh], *, contact: ContactSource = "image",
         picr: ImagePiCR | None = None, cam_from_world: Tensor | None = None, seed: int = 0, num_points: int = 2048,
         metadata: list[dict[str, Any]] | None = None, attrs: dict[str, Any] | None = None,
         reference_index: np.ndarray | None = None, **geo_settings: Any) -> GraspSet:
    """Run the MIHO pipeline (module docstring) on ``rgb (N, H, W, 3)`` uint8 with intrinsics ``k (N, 3, 3)`` and
    one known object mesh per image; ``num_points`` object samples per grasp (PiCR and GeO), ``geo_settings``
    override GeO's settings (e.g. ``iterations``).

    Raises:
        ContactkitError: ``contact="image"`` without ``picr``, or bad shapes.
    """
    from contactkit.refine.api import refine

    if rgb.ndim != 4 or rgb.shape[-1] != 3 or k.shape != (rgb.shape[0], 3, 3) or len(meshes) != rgb.shape[0]:
        raise ContactkitError(f"rgb must be (N, H, W, 3) with K (N, 3, 3) and N meshes; got {tuple(rgb.shape)}, "
                              f"{tuple(k.shape)}, {len(meshes)}")
    if contact not in ("image", "geometry", "none"):
        raise ContactkitError(f"contact must be 'image', 'geometry' or 'none', got {contact!r}")
    if (contact == "image") != (picr is not None):
        raise ContactkitError("the image PiCR (picr=) is needed by contact='image' and used by nothing else")
    b = rgb.shape[0]
    ext = cam_from_world if cam_from_world is not None else torch.eye(4).expand(b, 4, 4)
    img, kk = resize_to_square(rgb, k.float(), honet.config.image_size)
    out = _run_honet(honet, normalize_images(img), kk)
    grasps = honet_grasps(honet, out, meshes, ext, metadata=metadata, reference_index=reference_index,
                          attrs={**(attrs or {}), "miho_contact": contact})
    if contact == "none":
        return grasps
    targets: ContactTargets | None = None
    if picr is not None:
        img_p, k_p = resize_to_square(rgb, k.float(), picr.config.image_size)
        targets = image_picr_targets(picr, normalize_images(img_p), k_p, grasps, ext, num_points=num_points,
                                     seed=seed)
    return refine(grasps, "cpf", targets=targets, seed=seed, num_points=num_points, **geo_settings)

"""``contactkit estimate --model obman-net|miho``: the image networks of papers 001 and 004 on images or a rendered
dataset (rows linked to its ground truth)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from contactkit.cli._images import not_images, read_images
from contactkit.errors import ContactkitError


def _inputs(args: argparse.Namespace, inputs: list[Path]) -> dict[str, Any]:
    """Images, intrinsics, extrinsics, metadata and (for a dataset) the ground truth of ``INPUT``."""
    import numpy as np
    import torch

    from contactkit.io.grasps import save_grasps

    if len(inputs) == 1 and inputs[0].is_dir():
        from contactkit.dataset import RenderedDataset

        ds = RenderedDataset(inputs[0], args.split)
        reference = args.out.with_name(args.out.stem + ".reference.npz")
        save_grasps(reference, ds.grasps)
        samples = [ds[i] for i in range(len(ds))]
        meta = [{"view_index": int(s["view_index"]), "grasp_index": int(s["grasp_index"])} for s in samples]
        return {"rgb": torch.as_tensor(np.stack([s["rgb"] for s in samples])),
                "k": torch.as_tensor(np.stack([s["K"] for s in samples])),
                "ext": torch.as_tensor(np.stack([s["cam_from_world"] for s in samples])), "metadata": meta,
                "meshes": [ds.grasps.objects[ds.grasps.object_ids[m["grasp_index"]]] for m in meta],
                "attrs": {"reference": str(reference.resolve()), "dataset": str(inputs[0]), "split": args.split},
                "reference_index": np.array([m["grasp_index"] for m in meta], dtype=np.int64)}
    bad = not_images(inputs)
    if bad:
        raise ContactkitError(f"INPUT must be one dataset folder or image files; not {bad}")
    rgb, k, f = read_images(inputs, args.focal)
    return {"rgb": rgb, "k": k, "ext": torch.eye(4).expand(len(inputs), 4, 4),
            "metadata": [{"image": str(p)} for p in inputs], "meshes": None,
            "attrs": {"frame": "camera", "focal_px": f}, "reference_index": None}


def estimate_miho(args: argparse.Namespace, inputs: list[Path]) -> Any:
    """The grasp set of ``contactkit estimate --model miho`` (CPF's HoNet -> PiCR -> GeO)."""
    from contactkit.fit.miho import miho
    from contactkit.vision.train_obman import honet_from_checkpoint
    from contactkit.vision.weights import default_honet_path, default_picr_image_path

    if args.picr_weights is not None and args.contact != "image":
        raise ContactkitError("--picr-weights (an image-PiCR checkpoint) goes with --contact image, and only with it")
    weights = args.weights if args.weights is not None else default_honet_path()
    honet, training = honet_from_checkpoint(weights)
    picr = None
    if args.contact == "image":
        from contactkit.vision.train_picr_image import image_picr_from_checkpoint

        picr, _ = image_picr_from_checkpoint(args.picr_weights if args.picr_weights is not None
                                             else default_picr_image_path())
    data = _inputs(args, inputs)
    meshes = data["meshes"]
    if meshes is None:
        if args.object is None:
            raise ContactkitError("image files need --object MESH (HoNet estimates the pose of a known object)")
        from contactkit.objects import load_object

        meshes = [load_object(args.object)] * data["rgb"].shape[0]
    geo = {} if args.geo_iterations is None else {"iterations": args.geo_iterations}
    return miho(honet, data["rgb"], data["k"], meshes, contact=args.contact, picr=picr, cam_from_world=data["ext"],
                seed=args.seed, metadata=data["metadata"], reference_index=data["reference_index"],
                attrs={**data["attrs"], "weights": str(weights), "trained_on": training.get("dataset")}, **geo)


def estimate_obman(args: argparse.Namespace, inputs: list[Path]) -> Any:
    """The grasp set of ``contactkit estimate --model obman-net`` (rows linked to the ground truth for a dataset)."""
    from contactkit.fit.obman import grasps_from_obman, run_obman
    from contactkit.vision.train_obman import obman_from_checkpoint
    from contactkit.vision.weights import default_obman_net_path

    if args.object is not None:
        raise ContactkitError("--model obman-net reconstructs the object; --object does not apply")
    weights = args.weights if args.weights is not None else default_obman_net_path()
    net, training = obman_from_checkpoint(weights)
    data = _inputs(args, inputs)
    out = run_obman(net, data["rgb"], data["k"])
    return grasps_from_obman(net, out, data["ext"], metadata=data["metadata"], reference_index=data["reference_index"],
                             attrs={**data["attrs"], "weights": str(weights), "trained_on": training.get("dataset")})
